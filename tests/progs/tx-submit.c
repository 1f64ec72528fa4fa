// SPDX-License-Identifier: MIT
/*
 * tx-submit: the 0.2 send API on lo.  Requests of caller-owned runs from
 * two buffers, several runs per request switching buffers, driven by one
 * non-blocking loop (poll on dmt_tx_poll_events, dmt_tx_progress,
 * dmt_tx_reap) in zerocopy and copy modes, cookies by reap and by
 * callback; every region is poisoned as soon as its cookie is reported, so
 * a request reported before the kernel was done with it shows up as a bad
 * byte at the receiver, which checks every byte.  Then the refusals
 * (bad runs, another interface, another mode, max_requests, a ring send
 * while requests are unsent, a send into the ring's skip), the options
 * checks, the error queue's other messages (SO_TIMESTAMPING) kept and
 * handed out, and the socket options dmt_tx_new leaves.
 */
#include "tx-common.h"

#include <linux/errqueue.h>
#include <linux/net_tstamp.h>
#include <net/if.h>
#include <poll.h>
#include <stdlib.h>

#define SLOTS 32		/* requests in flight, NCCL's per connection */
#define SLOT_LEN (64 << 10)	/* the most bytes of one request */
#define TOTAL (16 << 20)

struct sender {
	struct dmt_txbind *a, *b;
	struct dmt_dmabuf *ba, *bb;
	uint64_t slot_pos[SLOTS];	/* stream position of the slot's request */
	bool busy[SLOTS];
	unsigned done, dup, unknown, cb_calls;
	uint64_t cb_cookies[SLOTS * 4];
	unsigned cb_n;
};

static uint32_t rnd(uint32_t *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 8;
}

static void on_done(uint64_t cookie, void *arg)
{
	struct sender *s = arg;

	s->cb_calls++;
	if (s->cb_n < sizeof(s->cb_cookies) / sizeof(s->cb_cookies[0]))
		s->cb_cookies[s->cb_n++] = cookie;
}

/* The request in slot is done: check, poison its regions, free the slot. */
static void retire(struct sender *s, uint64_t cookie)
{
	unsigned slot = cookie & 0xffff;

	if (slot >= SLOTS || !s->busy[slot]) {
		s->unknown++;
		return;
	}
	s->busy[slot] = false;
	s->done++;
	memset((char *)dmt_dmabuf_map(s->ba) + (size_t)slot * SLOT_LEN, 0xff, SLOT_LEN);
	memset((char *)dmt_dmabuf_map(s->bb) + (size_t)slot * SLOT_LEN, 0xff, SLOT_LEN);
}

static int listen_lo(uint16_t *port, int rcvbuf)
{
	return listen_in(NULL, "127.0.0.1", rcvbuf, port);
}

/* Requests of 1-3 runs over both buffers until TOTAL bytes, validated. */
static void run_mode(struct ktap *t, enum dmt_mode mode, bool callback)
{
	DMT_OPTS(dmt_dmabuf_opts, bo, .provider = DMT_PROVIDER_HOST, .size = SLOTS * SLOT_LEN);
	DMT_OPTS(dmt_txbind_opts, po, .policy = mode);
	DMT_OPTS(dmt_tx_opts, to, .max_requests = SLOTS, .max_vecs = 4);
	const char *m = dmt_mode_name(mode);
	struct sender s = { 0 };
	struct dmt_tx_stats_v2 st = { .sz = sizeof(st) };
	struct tx_link l = TX_LINK_INIT;
	struct dmt_tx *tx = NULL;
	struct dmt_err err;
	uint64_t pos = 0, seq = 0;
	uint32_t seed = 7;
	unsigned wakeups = 0;
	int ret = 0;

	if (callback) {
		to.on_done = on_done;
		to.arg = &s;
	}
	s.ba = dmt_dmabuf_new(&bo, &err);
	s.bb = s.ba ? dmt_dmabuf_new(&bo, &err) : NULL;
	s.a = s.bb ? dmt_txbind_new("lo", s.ba, &po, &err) : NULL;
	s.b = s.a ? dmt_txbind_new("lo", s.bb, &po, &err) : NULL;
	if (s.b && !tx_link_open(&l, NULL, "127.0.0.1", 0) && !tx_link_connect(&l, "127.0.0.1") &&
	    fcntl(l.fd, F_SETFL, O_NONBLOCK) == 0)
		tx = dmt_tx_new(l.fd, s.a, &to, &err);
	if (!check(t, tx != NULL, "%s%s: two host buffers, two bindings, one engine", m,
		   callback ? " (on_done)" : "")) {
		diag_err("setup", &err);
		goto out;
	}

	while (s.done < seq || pos < TOTAL) {
		uint64_t cookies[SLOTS];
		struct pollfd p;
		int n;

		/* submit into every free slot */
		for (unsigned slot = 0; slot < SLOTS && pos < TOTAL; slot++) {
			struct dmt_txvec v[3];
			uint64_t len = rnd(&seed) % SLOT_LEN + 1, at = 0;
			unsigned nv = rnd(&seed) % 3 + 1;

			if (s.busy[slot])
				continue;
			if (len > TOTAL - pos)
				len = TOTAL - pos;
			if (len < nv)
				nv = 1;
			dmt_pattern_fill((char *)dmt_dmabuf_map(s.ba) + (size_t)slot * SLOT_LEN,
					 len, pos, TX_PERIOD);
			dmt_pattern_fill((char *)dmt_dmabuf_map(s.bb) + (size_t)slot * SLOT_LEN,
					 len, pos, TX_PERIOD);
			for (unsigned i = 0; i < nv; i++) {
				uint64_t run = i == nv - 1 ? len - at : len / nv;

				v[i] = (struct dmt_txvec){ .bind = i % 2 ? s.b : s.a,
					.off = (uint64_t)slot * SLOT_LEN + at, .len = run };
				at += run;
			}
			ret = dmt_tx_submit(tx, v, nv, seq << 16 | slot);
			if (ret == -EAGAIN)
				break;
			if (ret < 0)
				goto fail;
			s.busy[slot] = true;
			s.slot_pos[slot] = pos;
			pos += len;
			seq++;
		}
		/*
		 * Requests can finish inside dmt_tx_submit (copy mode: once
		 * sent): progress and reap before sleeping, sleep only when
		 * that found nothing.
		 */
		ret = dmt_tx_progress(tx);
		if (ret < 0)
			goto fail;
		n = ret;
		if (callback) {
			for (unsigned i = 0; i < s.cb_n; i++)
				retire(&s, s.cb_cookies[i]);
			s.cb_n = 0;
		} else {
			n = dmt_tx_reap(tx, cookies, SLOTS);
			for (int i = 0; i < n; i++)
				retire(&s, cookies[i]);
		}
		if (n)
			continue;
		p = (struct pollfd){ .fd = l.fd, .events = dmt_tx_poll_events(tx) };
		if (poll(&p, 1, 2000) <= 0) {
			printf("# no event in 2 s\n");
			ret = -ETIMEDOUT;
			goto fail;
		}
		wakeups++;
	}
	ret = 0;
fail:
	if (ret < 0)
		diag_err("send", dmt_tx_error(tx));
	check(t, ret == 0 && pos == TOTAL && s.done == seq && !s.unknown,
	      "%s: %llu requests of 1-3 runs (%llu bytes) done, each cookie once, in %u wake-ups",
	      m, (unsigned long long)seq, (unsigned long long)pos, wakeups);
	dmt_tx_query_stats(tx, &st);
	printf("# %s: %llu sends (%llu partial), %llu completions (%llu copied), %llu EAGAIN\n",
	       m, (unsigned long long)st.sends, (unsigned long long)st.partial,
	       (unsigned long long)st.completions, (unsigned long long)st.copied,
	       (unsigned long long)st.eagain);
	check(t, st.sz == sizeof(st) && st.requests == seq && st.requests_done == seq &&
	      st.requests_active == 0 && st.bytes == TOTAL &&
	      (mode == DMT_MODE_COPY || st.completions == st.sends) && st.inflight_bytes == 0,
	      "%s: stats: %llu requests done, %llu bytes, every send completed", m,
	      (unsigned long long)st.requests_done, (unsigned long long)st.bytes);
	if (callback)
		check(t, s.cb_calls == seq, "%s: on_done called once per request (%u)", m,
		      s.cb_calls);
	tx_link_finish(&l);
	check(t, l.rx.err == 0 && l.rx.bad < 0 && l.rx.bytes == TOTAL,
	      "%s: the receiver validated every byte (%llu of %u%s)", m,
	      (unsigned long long)l.rx.bytes, TOTAL, l.rx.bad >= 0 ? ", a bad byte" : "");
out:
	tx_link_close(&l, tx);
	dmt_txbind_free(s.a);
	dmt_txbind_free(s.b);
	dmt_dmabuf_free(s.ba);
	dmt_dmabuf_free(s.bb);
}

/* The first interface that is not lo, "" if none. */
static void other_interface(char *name)
{
	struct if_nameindex *ifs = if_nameindex(), *i;

	name[0] = '\0';
	for (i = ifs; i && i->if_index; i++)
		if (strcmp(i->if_name, "lo")) {
			snprintf(name, IF_NAMESIZE, "%s", i->if_name);
			break;
		}
	if (ifs)
		if_freenameindex(ifs);
}

static void refusals(struct ktap *t)
{
	DMT_OPTS(dmt_dmabuf_opts, bo, .provider = DMT_PROVIDER_HOST, .size = 64 << 10);
	DMT_OPTS(dmt_txbind_opts, zc, .policy = DMT_MODE_ZEROCOPY);
	DMT_OPTS(dmt_txbind_opts, cp, .policy = DMT_MODE_COPY);
	DMT_OPTS(dmt_tx_opts, to, .max_requests = 2, .window_len = 16 << 10);
	struct dmt_dmabuf *buf = dmt_dmabuf_new(&bo, NULL);
	struct dmt_txbind *a = buf ? dmt_txbind_new("lo", buf, &zc, NULL) : NULL;
	struct dmt_txbind *c = buf ? dmt_txbind_new("lo", buf, &cp, NULL) : NULL;
	struct dmt_txbind *o = NULL;
	struct dmt_tx_stats_v2 st = { .sz = sizeof(st) };
	struct dmt_region r1, r2, whole;
	struct tx_link l = TX_LINK_INIT;
	struct dmt_tx *tx = NULL;
	char other[IF_NAMESIZE], dev[IF_NAMESIZE] = "x";
	socklen_t dlen = sizeof(dev);
	uint16_t port;
	int lfd, fd, ret, zcopt = 0;
	socklen_t zlen = sizeof(zcopt);

	/* a peer that never reads: connected, never accepted */
	lfd = listen_lo(&port, 4096);
	fd = tcp_socket_for("127.0.0.1");
	if (a && c && lfd >= 0 && fd >= 0 &&
	    !setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &(int){ 4096 }, sizeof(int)) &&
	    !tcp_connect(fd, "127.0.0.1", port) &&
	    fcntl(fd, F_SETFL, O_NONBLOCK) == 0)
		tx = dmt_tx_new(fd, a, &to, NULL);
	if (!check(t, tx != NULL, "refusals: zerocopy engine on lo, max_requests 2"))
		goto out;
	check(t, getsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, dev, &dlen) == 0 && dlen == 0 &&
	      getsockopt(fd, SOL_SOCKET, SO_ZEROCOPY, &zcopt, &zlen) == 0 && zcopt == 1,
	      "zerocopy mode: SO_ZEROCOPY on, no SO_BINDTODEVICE (only devmem binds the device)");

	ret = dmt_tx_submit(tx, NULL, 1, 1);
	check(t, ret == -EINVAL, "submit of NULL runs: -EINVAL (%d)", ret);
	ret = dmt_tx_submit(tx, &(struct dmt_txvec){ .bind = a, .off = 60 << 10, .len = 8 << 10 },
			    1, 1);
	diag_err("past the end", dmt_tx_error(tx));
	check(t, ret == -ERANGE && strstr(dmt_tx_error(tx)->what, "run 0"),
	      "a run past the buffer's end: -ERANGE naming the run");
	ret = dmt_tx_submit(tx, (struct dmt_txvec[]){ { a, 0, 10 }, { NULL, 0, 10 } }, 2, 1);
	check(t, ret == -EINVAL && strstr(dmt_tx_error(tx)->what, "run 1"),
	      "a run without a binding: -EINVAL naming run 1");
	ret = dmt_tx_submit(tx, &(struct dmt_txvec){ .bind = c, .off = 0, .len = 10 }, 1, 1);
	diag_err("other mode", dmt_tx_error(tx));
	check(t, ret == -EINVAL && strstr(dmt_tx_error(tx)->what, "copy binding on a zerocopy"),
	      "a copy binding on a zerocopy engine: -EINVAL");
	other_interface(other);
	if (!other[0]) {
		skip(t, "a binding of another interface", "no interface but lo here");
	} else {
		o = dmt_txbind_new(other, buf, &zc, NULL);
		ret = o ? dmt_tx_submit(tx, &(struct dmt_txvec){ o, 0, 10 }, 1, 1) : -1;
		diag_err("other interface", dmt_tx_error(tx));
		check(t, ret == -EINVAL && strstr(dmt_tx_error(tx)->what, other) &&
		      strstr(dmt_tx_error(tx)->fix, "interface"),
		      "a binding of %s on a lo engine: -EINVAL naming both", other);
	}
	dmt_tx_query_stats(tx, &st);
	check(t, st.requests == 0 && dmt_tx_pending(tx) == 0, "nothing queued by the refusals");

	/* max_requests: the peer reads nothing (rcvbuf 4 KiB), 32 KiB each */
	ret = dmt_tx_submit(tx, &(struct dmt_txvec){ a, 0, 32 << 10 }, 1, 1);
	ret = ret ?: dmt_tx_submit(tx, &(struct dmt_txvec){ a, 32 << 10, 32 << 10 }, 1, 2);
	check(t, ret == 0, "two requests accepted");
	ret = dmt_tx_submit(tx, &(struct dmt_txvec){ a, 0, 1 }, 1, 3);
	dmt_tx_query_stats(tx, &st);
	check(t, ret == -EAGAIN && st.requests == 2,
	      "a third with max_requests 2: -EAGAIN, nothing queued (%d)", ret);
	ret = dmt_tx_reap(tx, (uint64_t[2]){ 0 }, 2);
	check(t, ret == 0, "nothing reaped while the peer does not read (%d)", ret);

	/* a ring send while requests have unsent bytes would reorder */
	if (dmt_tx_pending(tx)) {
		ret = dmt_tx_alloc(tx, 100, &r1);
		ret = ret ?: (int)dmt_tx_send(tx, &r1, 1);
		check(t, ret == -EBUSY, "dmt_tx_send while requests are unsent: -EBUSY (%d)", ret);
	} else {
		skip(t, "dmt_tx_send while requests are unsent", "the socket took 64 KiB");
	}
out:
	dmt_tx_free(tx);
	if (fd >= 0)
		close(fd);
	if (lfd >= 0)
		close(lfd);

	/* the ring's skip: 16 KiB window, 12 KiB then 8 KiB skips 4 KiB */
	tx = NULL;
	if (!tx_link_open(&l, NULL, "127.0.0.1", 0) && !tx_link_connect(&l, "127.0.0.1"))
		tx = dmt_tx_new(l.fd, c, &to, NULL);
	ret = tx ? dmt_tx_alloc(tx, 12 << 10, &r1) : -1;
	ret = ret ?: (int)dmt_tx_send(tx, &r1, 1);
	ret = ret < 0 ? ret : dmt_tx_alloc(tx, 2 << 10, &r1);	/* [12K, 14K) */
	ret = ret ?: dmt_tx_alloc(tx, 8 << 10, &r2);		/* skips [14K, 16K) */
	check(t, ret == 0 && r2.off == 0, "skip: a reservation that wraps starts at 0 (%d)", ret);
	whole = (struct dmt_region){ .off = r1.off, .len = 4 << 10 };
	ret = tx ? (int)dmt_tx_send(tx, &whole, 1) : -1;
	diag_err("into the skip", dmt_tx_error(tx));
	check(t, ret == -EINVAL && strstr(dmt_tx_error(tx)->what, "skipped"),
	      "a region running into the skip: -EINVAL naming it (%d)", ret);
	if (tx) {
		dmt_pattern_fill((char *)dmt_dmabuf_map(buf) + r1.off, r1.len, 12 << 10, TX_PERIOD);
		dmt_pattern_fill((char *)dmt_dmabuf_map(buf) + r2.off, r2.len, 14 << 10, TX_PERIOD);
	}
	ret = tx ? (int)dmt_tx_send(tx, (struct dmt_region[]){ r1, r2 }, 2) : -1;
	check(t, ret == 10 << 10, "the regions as reserved are sent (%d bytes)", ret);
	if (tx)
		dmt_tx_drain(tx, 2000);
	if (tx)
		tx_link_finish(&l);
	/* first 12 KiB were not filled with the pattern: the receiver's first bad
	 * byte is at 0 unless the buffer started as it; check the tail only */
	check(t, l.rx.bytes == 22 << 10, "the receiver got 22 KiB, none of the skip (%llu)",
	      (unsigned long long)l.rx.bytes);
	tx_link_close(&l, tx);
	dmt_txbind_free(o);
	dmt_txbind_free(a);
	dmt_txbind_free(c);
	dmt_dmabuf_free(buf);
}

/* libbpf's rules: bytes past the last known field must be zero. */
static void options(struct ktap *t)
{
	DMT_OPTS(dmt_dmabuf_opts, bo, .provider = DMT_PROVIDER_HOST, .size = 4096);
	struct dmt_dmabuf *buf = dmt_dmabuf_new(&bo, NULL);
	struct {
		struct dmt_tx_opts o;
		uint64_t more;
	} big;
	struct {
		struct dmt_txbind_opts o;
		uint64_t more;
	} pb;
	struct dmt_tx_stats_v2 st;
	struct dmt_txbind *bind;
	struct dmt_tx *tx;
	struct dmt_err err;
	int fd = tcp_socket_for("127.0.0.1");

	/*
	 * The padding after policy is 0.1's tail padding: 0.1's DMT_OPTS
	 * did not zero it, so a 0.1 caller may pass garbage there.  It is
	 * never read (and never becomes a field); a byte past the struct,
	 * from a newer caller, is refused.
	 */
	memset(&pb, 0, sizeof(pb));
	pb.o.sz = sizeof(pb.o);
	pb.o.policy = DMT_MODE_COPY;
	memset((char *)&pb.o + offsetof(struct dmt_txbind_opts, policy) + sizeof(int), 0xa5,
	       sizeof(pb.o) - offsetof(struct dmt_txbind_opts, policy) - sizeof(int));
	bind = dmt_txbind_new("lo", buf, &pb.o, &err);
	if (!bind)
		diag_err("0.1 padding", &err);
	check(t, bind && dmt_txbind_mode(bind) == DMT_MODE_COPY,
	      "dmt_txbind_opts with garbage in 0.1's padding after policy (a 0.1 caller): "
	      "accepted, not read");
	dmt_txbind_free(bind);
	pb.o.sz = sizeof(pb);
	pb.more = 1;
	bind = dmt_txbind_new("lo", buf, &pb.o, &err);
	diag_err("bigger", &err);
	check(t, !bind && err.code == -EINVAL && strstr(err.what, "non-zero byte at 16"),
	      "dmt_txbind_opts from a newer caller, a non-zero byte past the struct: -EINVAL");
	pb.o = (struct dmt_txbind_opts){ .sz = sizeof(pb.o), .policy = DMT_MODE_COPY };
	bind = dmt_txbind_new("lo", buf, &pb.o, &err);
	check(t, bind != NULL, "the same at the struct's size: accepted");

	memset(&big, 0, sizeof(big));
	big.o.sz = sizeof(big);
	big.more = 1;
	tx = dmt_tx_new(fd, bind, &big.o, &err);
	diag_err("bigger", &err);
	check(t, !tx && err.code == -EINVAL, "dmt_tx_opts from a newer caller, a non-zero "
	      "unknown field: -EINVAL");
	dmt_tx_free(tx);
	big.more = 0;
	big.o.max_requests = 3;
	big.o.sz = offsetof(struct dmt_tx_opts, max_requests);	/* a 0.1 caller */
	tx = dmt_tx_new(fd, bind, &big.o, &err);
	if (tx) {
		for (int i = 0; i < 3; i++)
			dmt_tx_submit(tx, &(struct dmt_txvec){ bind, 0, 1 }, 1, i);
	}
	memset(&st, 0, sizeof(st));
	st.sz = offsetof(struct dmt_tx_stats_v2, requests);	/* an older caller */
	check(t, tx && dmt_tx_query_stats(tx, &st) == 0 &&
	      st.sz == offsetof(struct dmt_tx_stats_v2, requests) && st.requests == 0,
	      "dmt_tx_stats_v2 of an older size: filled up to it only");
	st.sz = sizeof(st);
	check(t, tx && dmt_tx_query_stats(tx, &st) == 0 && st.requests == 3,
	      "0.1-sized dmt_tx_opts: max_requests past its end is not read (default, 3 accepted)");
	dmt_tx_free(tx);
	close(fd);
	dmt_txbind_free(bind);
	dmt_dmabuf_free(buf);
}

/* SO_TIMESTAMPING on the engine's socket: its messages are kept. */
static void errqueue_other(struct ktap *t)
{
	DMT_OPTS(dmt_dmabuf_opts, bo, .provider = DMT_PROVIDER_HOST, .size = 64 << 10);
	DMT_OPTS(dmt_txbind_opts, zc, .policy = DMT_MODE_ZEROCOPY);
	struct dmt_dmabuf *buf = dmt_dmabuf_new(&bo, NULL);
	struct dmt_txbind *bind = buf ? dmt_txbind_new("lo", buf, &zc, NULL) : NULL;
	struct dmt_tx_stats_v2 st = { .sz = sizeof(st) };
	union {
		char b[512];
		struct cmsghdr align;
	} ctl;
	struct tx_link l = TX_LINK_INIT;
	struct dmt_tx *tx = NULL;
	unsigned got = 0, ts = 0;
	int ret = -1, flags, tsf = SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE |
		SOF_TIMESTAMPING_OPT_TSONLY | SOF_TIMESTAMPING_OPT_ID;
	ssize_t n;

	if (bind && !tx_link_open(&l, NULL, "127.0.0.1", 0) && !tx_link_connect(&l, "127.0.0.1") &&
	    setsockopt(l.fd, SOL_SOCKET, SO_TIMESTAMPING, &tsf, sizeof(tsf)) == 0)
		tx = dmt_tx_new(l.fd, bind, NULL, NULL);
	if (tx) {
		dmt_pattern_fill(dmt_dmabuf_map(buf), 64 << 10, 0, TX_PERIOD);
		for (int i = 0; i < 4; i++) {
			ret = dmt_tx_submit(tx, &(struct dmt_txvec){ bind, i * (16 << 10), 16 << 10 },
					    1, i);
			if (ret)
				break;
		}
		ret = ret ?: dmt_tx_drain(tx, 2000);
	}
	check(t, ret == 0, "SO_TIMESTAMPING socket: 4 requests sent and drained");
	dmt_tx_query_stats(tx, &st);
	while (tx && (n = dmt_tx_errqueue_msg(tx, ctl.b, sizeof(ctl.b), &flags)) > 0) {
		struct msghdr m = { .msg_control = ctl.b, .msg_controllen = n };

		got++;
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm))
			ts += cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SO_TIMESTAMPING;
	}
	check(t, st.errq_other > 0 && got == st.errq_pending && got > 0 && ts == got &&
	      st.completions == st.sends,
	      "timestamps kept, not dropped: %llu seen, %u read back with SCM_TIMESTAMPING, "
	      "every completion still counted", (unsigned long long)st.errq_other, got);
	check(t, tx && dmt_tx_errqueue_msg(tx, ctl.b, sizeof(ctl.b), NULL) == 0,
	      "then none is left");
	if (tx)
		tx_link_finish(&l);
	check(t, l.rx.bytes == 64 << 10 && l.rx.bad < 0, "the receiver validated 64 KiB");
	tx_link_close(&l, tx);
	dmt_txbind_free(bind);
	dmt_dmabuf_free(buf);
}

/* The host provider wrapping the caller's memory (host_addr). */
static void wrapped(struct ktap *t)
{
	size_t size = 256 << 10;
	char *mem = aligned_alloc(4096, size);
	DMT_OPTS(dmt_dmabuf_opts, bo, .provider = DMT_PROVIDER_HOST, .size = size,
		 .host_addr = mem);
	DMT_OPTS(dmt_dmabuf_opts, bad, .provider = DMT_PROVIDER_UDMABUF, .size = size,
		 .host_addr = mem);
	DMT_OPTS(dmt_txbind_opts, zc, .policy = DMT_MODE_ZEROCOPY);
	struct dmt_dmabuf *buf = mem ? dmt_dmabuf_new(&bo, NULL) : NULL;
	struct dmt_txbind *bind = buf ? dmt_txbind_new("lo", buf, &zc, NULL) : NULL;
	struct dmt_err err;
	struct tx_link l = TX_LINK_INIT;
	struct dmt_tx *tx = NULL;
	uint64_t ck[4];
	unsigned got = 0;
	int ret = -1;

	check(t, !dmt_dmabuf_new(&bad, &err) && err.code == -EINVAL,
	      "host_addr with the udmabuf provider: -EINVAL");
	check(t, buf && dmt_dmabuf_map(buf) == mem && dmt_dmabuf_size(buf) == size &&
	      dmt_dmabuf_fd(buf) < 0 && dmt_txbind_mode(bind) == DMT_MODE_ZEROCOPY,
	      "host provider over the caller's memory: mapped there, no fd, zerocopy binding");
	if (bind && !tx_link_open(&l, NULL, "127.0.0.1", 0) && !tx_link_connect(&l, "127.0.0.1"))
		tx = dmt_tx_new(l.fd, bind, NULL, NULL);
	if (tx) {
		dmt_pattern_fill(mem, size, 0, TX_PERIOD);
		for (int i = 0; i < 4; i++)
			ret = dmt_tx_submit(tx, &(struct dmt_txvec){ bind, i * (size / 4), size / 4 },
					    1, i);
		for (int i = 0; i < 200 && got < 4 && ret >= 0; i++) {
			ret = dmt_tx_progress(tx);
			got += dmt_tx_reap(tx, ck, 4);
			if (got < 4 && ret >= 0)
				poll(&(struct pollfd){ .fd = l.fd, .events = dmt_tx_poll_events(tx) },
				     1, 50);
		}
	}
	check(t, got == 4, "4 requests from the caller's memory done (%u)", got);
	if (tx)
		tx_link_finish(&l);
	check(t, l.rx.bytes == size && l.rx.bad < 0, "the receiver validated %zu bytes", size);
	tx_link_close(&l, tx);
	dmt_txbind_free(bind);
	dmt_dmabuf_free(buf);
	if (mem)
		mem[size - 1] = 1;	/* still the caller's: not unmapped */
	free(mem);
}

int main(void)
{
	struct ktap t = { 0 };
	int fds = count_fds();

	printf("TAP version 13\n");
	run_mode(&t, DMT_MODE_ZEROCOPY, false);
	run_mode(&t, DMT_MODE_COPY, false);
	run_mode(&t, DMT_MODE_ZEROCOPY, true);
	refusals(&t);
	options(&t);
	errqueue_other(&t);
	wrapped(&t);
	check(&t, count_fds() == fds, "no fd leaked (%d open, %d at start)", count_fds(), fds);
	return ktap_exit(&t);
}
