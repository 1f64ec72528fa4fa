// SPDX-License-Identifier: MIT
/*
 * rx-engine: the RX binding and the receive engine.
 *
 * Host part (always):
 * - copy mode end to end over lo: a sender thread writes the period-7
 *   pattern, every byte is checked through the frags' data; the ring wraps
 *   (frags split at the buffer's end); a slow consumer with a small receive
 *   buffer; -EAGAIN on a non-blocking socket; 0 at end of stream.
 * - policies on lo: devmem fails with a clear error, auto falls back to copy
 *   with a reason, copy is copy, zerocopy is refused; bind-rx of a memfd on
 *   lo through dmt_bind_rx fails with text.
 * - devmem mode against a fake kernel: recvmsg and setsockopt are
 *   interposed for one socket (this program defines them; the static
 *   library's calls land here) to play tcp_recvmsg_dmabuf and
 *   sock_devmem_dontneed: linear and dma-buf frags, frags split by the byte
 *   budget, plain data without cmsgs, a full control buffer, one ETOOSMALL,
 *   tokens out of order; every token must come back, sorted and merged, at
 *   most 128 ranges and 1024 frags per call.  The binding is forged from
 *   lib/internal.h (white box), since this host cannot bind-rx.
 * - 0.2, against the same fake: chunks held over several calls, unpacked
 *   (validated through their dma-buf) and given back out of order, one by
 *   one and in batches, by a worker thread while the receiving thread goes
 *   on; the engine's counters (received = released, held 0, lost 0) and
 *   the fake's (every token back, merged, within the kernel's limits)
 *   agree; caller-provided linear and control buffers and a per-call byte
 *   limit bound each call; a second binding's frags name it, an unknown
 *   dmabuf id is handed out flagged and given back; after close(fd) and a
 *   new socket on the same number, puts and dmt_rx_free reach the old
 *   socket only; a chunk given back twice is -ENOENT.  Copy mode on lo
 *   with held chunks: never overwritten while held.  Options checked up
 *   to their last field, counters sized by the caller.
 * - no fd leaked.
 *
 * Devmem part (with -i IFNAME -a LOCAL_ADDR -p PORT, e.g. in the VM on
 * dmveth, after the NIC is set up: tcp-data-split on, RSS off the bound
 * queue, the flow steered to it): bind queue(s) -q START -c COUNT with a
 * udmabuf of -s MIB, listen on LOCAL_ADDR:PORT, accept one connection and
 * validate every byte (period -v, 7) through the udmabuf's host mapping;
 * -n BYTES checks the total; -R FD gets one byte once listening; -S sets
 * the NIC up itself (dmt_nic_prepare_rx, dmt_nic_steer) and restores it.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "devmemtcp.h"
#include "internal.h"	/* the fake-kernel part forges a devmem binding */
#include "dmt-uapi.h"
#include "ktap.h"

#define PERIOD 7

static void show_err(const char *what, const struct dmt_err *err)
{
	char line[1024];

	printf("# %s: %s\n", what, dmt_err_str(err, line, sizeof(line)));
}

/* ------------------------------------------------------- sockets over lo */

static int listen_lo(int rcvbuf, uint16_t *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (rcvbuf && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) < 0) ||
	    bind(fd, (struct sockaddr *)&sa, len) < 0 || listen(fd, 1) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	*port = ntohs(sa.sin_port);
	return fd;
}

struct sender {
	uint16_t port;
	uint64_t total;
	unsigned delay_us;	/* before starting */
	int err;		/* out: -errno */
	pthread_t thread;
};

/* Connect to 127.0.0.1:port, write the pattern in wandering chunks, close. */
static void *sender_main(void *arg)
{
	struct sender *s = arg;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(s->port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	static __thread unsigned char buf[70000];
	uint32_t seed = 7;
	uint64_t pos = 0;
	int fd;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		s->err = -errno;
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	if (s->delay_us)
		usleep(s->delay_us);
	while (pos < s->total) {
		size_t len;
		ssize_t n;

		seed = seed * 1103515245 + 12345;
		len = 1 + (seed >> 8) % sizeof(buf);
		if (len > s->total - pos)
			len = s->total - pos;
		dmt_pattern_fill(buf, len, pos, PERIOD);
		n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			s->err = -errno;
			break;
		}
		pos += n;
	}
	close(fd);
	return NULL;
}

/* ------------------------------------------------------------- copy mode */

struct copy_run {
	const char *name;
	size_t bufsize, max_bytes;
	unsigned max_frags, max;	/* engine's and per call */
	int rcvbuf;
	unsigned sleep_us;		/* after each call: a slow consumer */
	uint64_t total;
};

static void copy_transfer(struct ktap *t, const struct copy_run *r)
{
	DMT_OPTS(dmt_dmabuf_opts, bo, .provider = DMT_PROVIDER_HOST, .size = r->bufsize);
	DMT_OPTS(dmt_rxbind_opts, po, .policy = DMT_MODE_AUTO);
	DMT_OPTS(dmt_rx_opts, ro, .max_frags = r->max_frags, .max_bytes = r->max_bytes);
	struct sender snd = { .total = r->total };
	struct dmt_rx_frag frags[64];
	struct dmt_rxbind *bind = NULL;
	struct dmt_dmabuf *buf = NULL;
	struct dmt_rx *rx = NULL;
	struct dmt_rx_stats st;
	struct dmt_err err;
	uint64_t pos = 0, nfrags = 0, wraps = 0, calls = 0, split = 0;
	int64_t bad = -1;
	bool shape_ok = true, started = false;
	unsigned max_seen = 0;
	int lfd, fd = -1, n;
	char *map;
	size_t size;

	buf = dmt_dmabuf_new(&bo, &err);
	if (!check(t, buf, "%s: host buffer of %zu bytes", r->name, r->bufsize)) {
		show_err("dmt_dmabuf_new", &err);
		return;
	}
	map = dmt_dmabuf_map(buf);
	size = dmt_dmabuf_size(buf);
	bind = dmt_rxbind_new("lo", buf, &po, &err);
	if (!check(t, bind && dmt_rxbind_mode(bind) == DMT_MODE_COPY,
		   "%s: auto binding on lo is copy", r->name)) {
		if (!bind)
			show_err("dmt_rxbind_new", &err);
		goto out;
	}
	lfd = listen_lo(r->rcvbuf, &snd.port);
	if (lfd < 0 || pthread_create(&snd.thread, NULL, sender_main, &snd)) {
		check(t, false, "%s: listen and start the sender", r->name);
		if (lfd >= 0)
			close(lfd);
		goto out;
	}
	started = true;
	fd = accept(lfd, NULL, NULL);
	close(lfd);
	if (!check(t, fd >= 0, "%s: accept", r->name))
		goto join;
	rx = dmt_rx_new(fd, bind, &ro, &err);
	if (!check(t, rx, "%s: dmt_rx_new", r->name)) {
		show_err("dmt_rx_new", &err);
		goto join;
	}
	for (;;) {
		n = dmt_rx_recv(rx, frags, r->max ? r->max : 64);
		if (n <= 0)
			break;
		calls++;
		if ((unsigned)n > max_seen)
			max_seen = n;
		if (n > 1)
			split++;
		for (int i = 0; i < n; i++) {
			const struct dmt_rx_frag *f = &frags[i];
			ssize_t at;

			if (f->linear || !f->len || f->off != pos % size ||
			    f->off + f->len > size || f->data != map + f->off) {
				if (shape_ok)
					printf("# frag %d of call %llu: off %llu len %u linear %d "
					       "(stream %llu)\n", i, (unsigned long long)calls,
					       (unsigned long long)f->off, f->len, f->linear,
					       (unsigned long long)pos);
				shape_ok = false;
			}
			if (f->off == 0 && pos)
				wraps++;
			at = dmt_pattern_check(f->data, f->len, pos, PERIOD);
			if (at >= 0 && bad < 0)
				bad = pos + at;
			pos += f->len;
			nfrags++;
		}
		if (r->sleep_us)
			usleep(r->sleep_us);
	}
	if (!check(t, n == 0, "%s: end of stream after %llu bytes", r->name,
		   (unsigned long long)pos))
		show_err("dmt_rx_recv", dmt_rx_error(rx));
	dmt_rx_get_stats(rx, &st);
	printf("# %s: %llu bytes in %llu frags over %llu calls, %llu ring wraps, %llu calls "
	       "with 2+ frags, recv calls %llu\n", r->name, (unsigned long long)st.bytes,
	       (unsigned long long)st.frags, (unsigned long long)calls,
	       (unsigned long long)wraps, (unsigned long long)split,
	       (unsigned long long)st.recv_calls);
	if (bad >= 0)
		printf("# first wrong byte at stream position %lld\n", (long long)bad);
	check(t, pos == r->total && bad < 0, "%s: every one of %llu bytes matches the pattern",
	      r->name, (unsigned long long)r->total);
	check(t, shape_ok, "%s: frags follow the ring (off = pos %% size, data = map + off, "
	      "not linear)", r->name);
	check(t, wraps > 0 && max_seen <= (r->max ? r->max : 64),
	      "%s: the ring wrapped %llu times; at most %u frags per call", r->name,
	      (unsigned long long)wraps, r->max ? r->max : 64);
	check(t, st.bytes == r->total && st.frags == nfrags && !st.linear_bytes &&
	      !st.tokens && !st.dontneed_calls,
	      "%s: stats (bytes, frags, no linear bytes, no tokens)", r->name);
join:
	if (started)
		pthread_join(snd.thread, NULL);
	if (snd.err)
		printf("# sender: %s\n", strerror(-snd.err));
out:
	dmt_rx_free(rx);
	if (fd >= 0)
		close(fd);
	dmt_rxbind_free(bind);
	dmt_dmabuf_free(buf);
}

/* A non-blocking socket: -EAGAIN first, then the data, then 0. */
static void copy_nonblocking(struct ktap *t)
{
	DMT_OPTS(dmt_dmabuf_opts, bo, .provider = DMT_PROVIDER_HOST, .size = 1 << 16);
	DMT_OPTS(dmt_rxbind_opts, po, .policy = DMT_MODE_COPY);
	struct sender snd = { .total = 100000, .delay_us = 100000 };
	struct dmt_rx_frag frags[8];
	struct dmt_rxbind *bind = NULL;
	struct dmt_dmabuf *buf;
	struct dmt_rx *rx = NULL;
	struct dmt_err err;
	uint64_t pos = 0;
	int lfd, fd = -1, n, first;
	bool ok = true;

	buf = dmt_dmabuf_new(&bo, &err);
	bind = buf ? dmt_rxbind_new("lo", buf, &po, &err) : NULL;
	if (!check(t, bind && dmt_rxbind_mode(bind) == DMT_MODE_COPY &&
		   !dmt_rxbind_fallback_reason(bind)[0] && !dmt_rxbind_id(bind),
		   "copy policy: copy mode, no reason, id 0")) {
		show_err("binding", &err);
		goto out;
	}
	lfd = listen_lo(0, &snd.port);
	if (lfd < 0 || pthread_create(&snd.thread, NULL, sender_main, &snd)) {
		check(t, false, "non-blocking: listen and start the sender");
		if (lfd >= 0)
			close(lfd);
		goto out;
	}
	fd = accept(lfd, NULL, NULL);
	close(lfd);
	if (fd >= 0)
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	rx = fd >= 0 ? dmt_rx_new(fd, bind, NULL, &err) : NULL;
	first = rx ? dmt_rx_recv(rx, frags, 8) : -EBADF;
	check(t, first == -EAGAIN, "non-blocking: -EAGAIN before the sender writes (%d)", first);
	for (;;) {
		n = rx ? dmt_rx_recv(rx, frags, 8) : -EBADF;
		if (n == -EAGAIN) {
			usleep(1000);
			continue;
		}
		if (n <= 0)
			break;
		for (int i = 0; i < n; i++) {
			ok &= dmt_pattern_check(frags[i].data, frags[i].len, pos, PERIOD) < 0;
			pos += frags[i].len;
		}
	}
	check(t, n == 0 && ok && pos == snd.total,
	      "non-blocking: all %llu bytes valid, then 0", (unsigned long long)pos);
	n = rx ? dmt_rx_recv(rx, frags, 8) : -EBADF;
	check(t, n == 0, "after the end of stream: 0 again");
	n = rx ? dmt_rx_recv(rx, NULL, 8) : -EBADF;
	check(t, n == -EINVAL && dmt_rx_error(rx)->code == -EINVAL,
	      "dmt_rx_recv into NULL frags: -EINVAL");
	pthread_join(snd.thread, NULL);
out:
	dmt_rx_free(rx);
	if (fd >= 0)
		close(fd);
	dmt_rxbind_free(bind);
	dmt_dmabuf_free(buf);
}

/* ------------------------------------------------------------ policies */

static void policies(struct ktap *t)
{
	DMT_OPTS(dmt_dmabuf_opts, bo, .provider = DMT_PROVIDER_HOST, .size = 1 << 16);
	DMT_OPTS(dmt_rxbind_opts, dev_o, .policy = DMT_MODE_DEVMEM);
	DMT_OPTS(dmt_rxbind_opts, auto_o, .policy = DMT_MODE_AUTO);
	DMT_OPTS(dmt_rxbind_opts, zc_o, .policy = DMT_MODE_ZEROCOPY);
	struct dmt_rxbind *bind;
	struct dmt_dmabuf *buf;
	struct dmt_err err;
	char line[1024];

	buf = dmt_dmabuf_new(&bo, &err);
	if (!check(t, buf, "policies: host buffer")) {
		show_err("dmt_dmabuf_new", &err);
		return;
	}
	bind = dmt_rxbind_new("lo", buf, &dev_o, &err);
	show_err("devmem policy on lo", &err);
	check(t, !bind && err.code == -EINVAL && strstr(err.what, "not a dma-buf") &&
	      err.fix[0], "devmem policy on lo with a host buffer fails: not a dma-buf");
	dmt_rxbind_free(bind);

	bind = dmt_rxbind_new("lo", buf, &auto_o, &err);
	if (bind)
		printf("# auto on lo: %s: %s\n", dmt_mode_name(dmt_rxbind_mode(bind)),
		       dmt_rxbind_fallback_reason(bind));
	check(t, bind && dmt_rxbind_mode(bind) == DMT_MODE_COPY &&
	      strstr(dmt_rxbind_fallback_reason(bind), "not a dma-buf") &&
	      !dmt_rxbind_id(bind) && !err.code,
	      "auto policy on lo falls back to copy, with the reason");
	dmt_rxbind_free(bind);

	bind = dmt_rxbind_new("lo", buf, &zc_o, &err);
	check(t, !bind && err.code == -EINVAL, "zerocopy policy for RX: -EINVAL");
	bind = dmt_rxbind_new("no-such-if0", buf, &auto_o, &err);
	check(t, !bind && err.code == -ENODEV, "missing interface: -ENODEV");
	dmt_rxbind_free(bind);

	/* a real dma-buf where the kernel has udmabuf: the kernel refuses lo */
	if (access("/dev/udmabuf", R_OK | W_OK) == 0) {
		DMT_OPTS(dmt_dmabuf_opts, uo, .provider = DMT_PROVIDER_UDMABUF, .size = 1 << 20);
		struct dmt_dmabuf *ubuf = dmt_dmabuf_new(&uo, &err);

		bind = ubuf ? dmt_rxbind_new("lo", ubuf, &dev_o, &err) : NULL;
		dmt_err_str(&err, line, sizeof(line));
		printf("# udmabuf, devmem on lo: %s\n", line);
		check(t, ubuf && !bind && err.code == -EOPNOTSUPP &&
		      strstr(err.fix, "queue management"),
		      "udmabuf: bind-rx on lo refused by the kernel, with a fix");
		dmt_rxbind_free(bind);
		bind = ubuf ? dmt_rxbind_new("lo", ubuf, &auto_o, &err) : NULL;
		if (bind)
			printf("# udmabuf, auto on lo: %s\n", dmt_rxbind_fallback_reason(bind));
		check(t, bind && dmt_rxbind_mode(bind) == DMT_MODE_COPY &&
		      strstr(dmt_rxbind_fallback_reason(bind), "bind-rx"),
		      "udmabuf: auto on lo falls back to copy after the kernel's refusal");
		dmt_rxbind_free(bind);
		dmt_dmabuf_free(ubuf);
	} else {
		skip(t, "udmabuf: bind-rx on lo refused by the kernel", "no /dev/udmabuf");
		skip(t, "udmabuf: auto on lo falls back to copy", "no /dev/udmabuf");
	}
	dmt_dmabuf_free(buf);
}

static void bind_rx_lo(struct ktap *t)
{
	uint32_t q[2] = { 0, 0 }, id = 0;
	const struct dmt_err *e;
	struct dmt_nl *nl;
	struct dmt_err err;
	int memfd, ret;

	nl = dmt_nl_open(&err);
	if (!nl) {
		show_err("dmt_nl_open", &err);
		if (err.code == -ENOENT)
			skip(t, "bind-rx of a memfd on lo", "kernel has no netdev family");
		else
			check(t, false, "bind-rx: netlink socket");
		return;
	}
	e = dmt_nl_error(nl);
	ret = dmt_bind_rx(nl, 1, -1, q, 1, &id);
	check(t, ret == -EBADF && e->code == -EBADF, "bind-rx of fd -1: EBADF");
	ret = dmt_bind_rx(nl, 1, 0, q, 0, &id);
	check(t, ret == -EINVAL && e->what[0], "bind-rx with no queues: EINVAL");

	memfd = memfd_create("rx-engine", MFD_CLOEXEC);
	if (memfd < 0 || ftruncate(memfd, 1 << 16) < 0) {
		check(t, false, "memfd: %s", strerror(errno));
		dmt_nl_close(nl);
		return;
	}
	ret = dmt_bind_rx(nl, if_nametoindex("lo"), memfd, q, 2, &id);
	show_err("bind-rx of a memfd on lo", e);
	if (ret == -EOPNOTSUPP && !e->extack[0] && strstr(e->fix, "6.12")) {
		skip(t, "bind-rx of a memfd on lo", "kernel has no bind-rx (Linux < 6.12)");
	} else {
		check(t, ret < 0 && e->code == ret && id == 0 && e->what[0] &&
		      (e->extack[0] || e->fix[0]),
		      "bind-rx of a memfd on lo fails with text (extack \"%s\", fix \"%s\")",
		      e->extack, e->fix);
	}
	ret = dmt_bind_rx(nl, 0, memfd, q, 1, &id);
	show_err("bind-rx on ifindex 0", e);
	check(t, ret < 0 && (strstr(e->extack, "ifindex") || ret == -ENODEV),
	      "bind-rx on ifindex 0 fails naming ifindex");
	close(memfd);
	dmt_nl_close(nl);
}

/* ------------------------------------------------------- the fake kernel */

#define FK_PAGE 4096u
#define FK_TOKENS (1u << 20)

enum seg_kind { SEG_FRAG, SEG_LINEAR, SEG_PLAIN };

struct fake {
	int fd;				/* the socket we play the kernel for */
	uint32_t id;			/* binding id */
	char *map;			/* the dma-buf's mapping */
	size_t size;
	uint64_t total, pos;		/* stream: total bytes, next to produce */
	uint32_t seed;
	/* the current segment */
	enum seg_kind kind;
	uint32_t seg_len, seg_done;
	uint64_t page;			/* SEG_FRAG: page counter */
	/* tokens: held[t] != 0 while the user holds t */
	uint8_t *held;
	uint64_t outstanding, issued, released;
	uint32_t last_token;
	/* several bindings: 1 frag in 3 of alt_id (into alt_map), 1 in 7 of
	 * unknown_id (no buffer), the rest of id */
	uint32_t alt_id, unknown_id, seg_id;
	char *alt_map;
	uint64_t unknown_frags;
	/* like a page pool: a page is written only when no token holds it.
	 * slot_refs[map * pages + page]: tokens on it; tok_slot[token]: its
	 * page; overwrites: pages written while held (a fake gone wrong) */
	uint32_t *slot_refs, *tok_slot, seg_slot;
	uint64_t overwrites;
	/* identity of the socket (its number may be reused after close) */
	dev_t dev;
	ino_t ino;
	unsigned other_dontneed;	/* DONTNEED calls on any other socket */
	unsigned jump;			/* 1 in jump tokens starts anywhere */
	/* knobs and observations */
	unsigned etoosmall_at;		/* fail recvmsg number N with 525 */
	unsigned wrong_id_at;		/* cmsgs of recvmsg N carry id + 1 */
	bool plain;			/* allow SEG_PLAIN / SEG_LINEAR */
	unsigned calls, etoosmall_done;
	unsigned dn_calls, dn_max_ranges, dn_max_frags, dn_violations;
	unsigned max_cmsgs;
};

static struct fake *fk;	/* the one being played, NULL: pass through */
/* The kernel serialises a socket's token table (recvmsg on one thread,
 * SO_DEVMEM_DONTNEED on another); the fake does it with this lock. */
static pthread_mutex_t fk_lock = PTHREAD_MUTEX_INITIALIZER;

/*
 * Is fd the fake's socket?  By identity, not number: the engine works on
 * its own duplicate of the caller's fd.
 */
static bool fk_is(int fd)
{
	struct stat a, b;

	if (!fk || fd < 0 || fstat(fd, &a))
		return false;
	if (!fk->ino && fk->fd >= 0 && fstat(fk->fd, &b) == 0) {
		fk->ino = b.st_ino;
		fk->dev = b.st_dev;
	}
	return a.st_ino == fk->ino && a.st_dev == fk->dev;
}

static ssize_t (*real_recvmsg)(int, struct msghdr *, int);
static int (*real_setsockopt)(int, int, int, const void *, socklen_t);

static uint32_t fk_rand(struct fake *f)
{
	f->seed = f->seed * 1103515245 + 12345;
	return f->seed >> 8;
}

static void fk_next_segment(struct fake *f)
{
	uint32_t r = fk_rand(f) % 100;

	f->seg_done = 0;
	if (f->plain && r < 4) {
		f->kind = SEG_PLAIN;
		f->seg_len = 1 + fk_rand(f) % 20000;
	} else if (f->plain && r < 12) {
		f->kind = SEG_LINEAR;
		f->seg_len = 1 + fk_rand(f) % 300;
	} else {
		f->kind = SEG_FRAG;
		f->seg_len = 1 + fk_rand(f) % FK_PAGE;
		f->page++;
		f->seg_id = f->id;
		if (f->alt_id && f->page % 3 == 1)
			f->seg_id = f->alt_id;
		if (f->unknown_id && f->page % 7 == 3)
			f->seg_id = f->unknown_id;
	}
	if (f->seg_len > f->total - f->pos)
		f->seg_len = f->total - f->pos;
	if (f->kind == SEG_FRAG && f->slot_refs) {
		f->seg_slot = (f->seg_id == f->alt_id && f->alt_id) * (f->size / FK_PAGE) +
			      f->page % (f->size / FK_PAGE);
		f->overwrites += f->slot_refs[f->seg_slot] != 0;
	}
	if (f->kind == SEG_FRAG)	/* the "device" writes the whole frag */
		dmt_pattern_fill((f->seg_id == f->alt_id && f->alt_id ? f->alt_map : f->map) +
				 (f->page % (f->size / FK_PAGE)) * FK_PAGE,
				 f->seg_len, f->pos, PERIOD);
}

/*
 * A token like the kernel's xarray: the lowest free one, from a start that
 * follows the last token (runs to merge) but 1 time in f->jump jumps.
 */
static uint32_t fk_token(struct fake *f)
{
	uint32_t t = fk_rand(f) % f->jump ? f->last_token + 1 : 1 + fk_rand(f) % (FK_TOKENS / 2);

	if (!t || t >= FK_TOKENS)
		t = 1;
	while (f->held[t])
		t = t + 1 < FK_TOKENS ? t + 1 : 1;
	f->held[t] = 1;
	f->last_token = t;
	f->outstanding++;
	f->issued++;
	return t;
}

static bool fk_put_cmsg(struct msghdr *msg, size_t *used, int type,
			const struct dmabuf_cmsg *dc)
{
	struct cmsghdr *cm = (struct cmsghdr *)((char *)msg->msg_control + *used);

	if (msg->msg_controllen - *used < CMSG_LEN(sizeof(*dc)))
		return false;	/* put_cmsg_notrunc: no partial cmsg */
	cm->cmsg_len = CMSG_LEN(sizeof(*dc));
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = type;
	memcpy(CMSG_DATA(cm), dc, sizeof(*dc));
	*used += CMSG_SPACE(sizeof(*dc));
	if (*used > msg->msg_controllen)
		*used = msg->msg_controllen;
	return true;
}

/* tcp_recvmsg with MSG_SOCK_DEVMEM, over the fake stream. */
static ssize_t fk_recvmsg(struct fake *f, struct msghdr *msg)
{
	size_t budget = 0, used = 0, copied = 0, lin = 0;
	unsigned ncm = 0;
	int devmem = -1;

	for (size_t i = 0; i < msg->msg_iovlen; i++)
		budget += msg->msg_iov[i].iov_len;
	f->calls++;
	if (f->calls == f->etoosmall_at && !f->etoosmall_done) {
		f->etoosmall_done = 1;
		errno = 525;
		return -1;
	}
	while (copied < budget && f->pos < f->total) {
		uint32_t left, n;

		if (f->seg_done == f->seg_len)
			fk_next_segment(f);
		left = f->seg_len - f->seg_done;
		n = left < budget - copied ? left : budget - copied;
		/* one call never mixes readable and devmem data */
		if (devmem == -1)
			devmem = f->kind != SEG_PLAIN;
		else if (devmem != (f->kind != SEG_PLAIN))
			break;
		if (f->kind == SEG_PLAIN) {
			dmt_pattern_fill((char *)msg->msg_iov[0].iov_base + lin, n, f->pos, PERIOD);
			lin += n;
		} else {
			struct dmabuf_cmsg dc = { .frag_size = n };

			if (f->kind == SEG_LINEAR) {
				if (!fk_put_cmsg(msg, &used, SCM_DEVMEM_LINEAR, &dc))
					break;
				dmt_pattern_fill((char *)msg->msg_iov[0].iov_base + lin, n,
						 f->pos, PERIOD);
				lin += n;
			} else {
				dc.frag_offset = (f->page % (f->size / FK_PAGE)) * FK_PAGE +
						 f->seg_done;
				dc.dmabuf_id = f->seg_id + (f->calls == f->wrong_id_at);
				if (msg->msg_controllen - used < CMSG_LEN(sizeof(dc)))
					break;
				f->unknown_frags += f->unknown_id && f->seg_id == f->unknown_id;
				dc.frag_token = fk_token(f);
				if (f->slot_refs) {
					f->tok_slot[dc.frag_token] = f->seg_slot;
					f->slot_refs[f->seg_slot]++;
				}
				fk_put_cmsg(msg, &used, SCM_DEVMEM_DMABUF, &dc);
			}
			ncm++;
		}
		f->seg_done += n;
		f->pos += n;
		copied += n;
	}
	if (ncm > f->max_cmsgs)
		f->max_cmsgs = ncm;
	if (!copied && f->pos < f->total) {
		errno = 525;	/* the first cmsg did not fit */
		return -1;
	}
	msg->msg_controllen = used;
	msg->msg_flags = 0;
	return copied;
}

/* sock_devmem_dontneed. */
static int fk_dontneed(struct fake *f, const void *val, socklen_t len)
{
	const struct dmabuf_token *r = val;
	unsigned nr = len / sizeof(*r), frags = 0, released = 0;

	if (len % sizeof(*r) || nr > 128) {
		f->dn_violations++;
		errno = EINVAL;
		return -1;
	}
	f->dn_calls++;
	if (nr > f->dn_max_ranges)
		f->dn_max_ranges = nr;
	for (unsigned i = 0; i < nr; i++) {
		/* merged and sorted: ranges ascend and never touch */
		if (i && (uint64_t)r[i - 1].token_start + r[i - 1].token_count >= r[i].token_start)
			f->dn_violations++;
		for (uint32_t j = 0; j < r[i].token_count; j++) {
			uint32_t t = r[i].token_start + j;

			if (++frags > 1024) {
				f->dn_violations++;
				goto out;
			}
			if (t < FK_TOKENS && f->held[t]) {
				f->held[t] = 0;
				released++;
				if (f->slot_refs)
					f->slot_refs[f->tok_slot[t]]--;
			}
		}
	}
out:
	if (frags > f->dn_max_frags)
		f->dn_max_frags = frags;
	f->outstanding -= released;
	f->released += released;
	return released;
}

ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	if ((flags & MSG_SOCK_DEVMEM) && fk_is(fd)) {
		ssize_t n;

		pthread_mutex_lock(&fk_lock);
		n = fk_recvmsg(fk, msg);
		pthread_mutex_unlock(&fk_lock);
		return n;
	}
	if (!real_recvmsg)
		real_recvmsg = (ssize_t (*)(int, struct msghdr *, int))dlsym(RTLD_NEXT, "recvmsg");
	return real_recvmsg(fd, msg, flags);
}

int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	if (level == SOL_SOCKET && name == SO_DEVMEM_DONTNEED && fk_is(fd)) {
		int n;

		pthread_mutex_lock(&fk_lock);
		n = fk_dontneed(fk, val, len);
		pthread_mutex_unlock(&fk_lock);
		return n;
	}
	if (fk && level == SOL_SOCKET && name == SO_DEVMEM_DONTNEED)
		fk->other_dontneed++;
	if (!real_setsockopt)
		real_setsockopt = (int (*)(int, int, int, const void *, socklen_t))
				  dlsym(RTLD_NEXT, "setsockopt");
	return real_setsockopt(fd, level, name, val, len);
}

struct fake_run {
	const char *name;
	unsigned max_frags, max;
	size_t max_bytes;
	uint64_t total;
	bool plain;
	unsigned etoosmall_at, wrong_id_at;
	unsigned jump;		/* 0: 64 */
};

static void fake_transfer(struct ktap *t, const struct fake_run *r)
{
	DMT_OPTS(dmt_dmabuf_opts, bo, .provider = DMT_PROVIDER_HOST, .size = 16 << 20);
	DMT_OPTS(dmt_rx_opts, ro, .max_frags = r->max_frags, .max_bytes = r->max_bytes);
	struct dmt_rxbind bind = { .c = { .mode = DMT_MODE_DEVMEM, .id = 42 }, .queue_count = 1 };
	struct fake f = { .id = 42, .total = r->total, .seed = 99, .plain = r->plain,
			  .etoosmall_at = r->etoosmall_at, .wrong_id_at = r->wrong_id_at,
			  .jump = r->jump ? r->jump : 64 };
	unsigned max = r->max ? r->max : r->max_frags, calls = 0;
	struct dmt_rx_frag *frags = calloc(max, sizeof(*frags));
	unsigned char *tmp = malloc(FK_PAGE);
	uint64_t pos = 0, lin = 0, dfr = 0;
	struct dmt_dmabuf *buf = NULL;
	struct dmt_rx *rx = NULL;
	struct dmt_rx_stats st;
	struct dmt_err err;
	int64_t bad = -1;
	bool shape = true;
	int n, eproto = 0;

	f.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	f.held = calloc(FK_TOKENS, 1);
	buf = dmt_dmabuf_new(&bo, &err);
	if (!buf || !frags || !tmp || !f.held || f.fd < 0) {
		check(t, false, "%s: setup", r->name);
		goto out;
	}
	f.map = dmt_dmabuf_map(buf);
	f.size = dmt_dmabuf_size(buf);
	bind.c.buf = buf;
	snprintf(bind.c.ifname, sizeof(bind.c.ifname), "fake0");
	rx = dmt_rx_new(f.fd, &bind, &ro, &err);
	if (!check(t, rx, "%s: dmt_rx_new on a forged devmem binding", r->name)) {
		show_err("dmt_rx_new", &err);
		goto out;
	}
	fk = &f;
	for (;;) {
		n = dmt_rx_recv(rx, frags, max);
		if (n == -EPROTO && r->wrong_id_at && !eproto) {
			show_err("wrong id", dmt_rx_error(rx));
			eproto++;
			/* that call's bytes are gone: resynchronise */
			pos = f.pos;
			continue;
		}
		if (n <= 0)
			break;
		calls++;
		if ((unsigned)n > max)
			shape = false;
		for (int i = 0; i < n; i++) {
			const struct dmt_rx_frag *fr = &frags[i];
			const void *p = fr->data;
			ssize_t at;

			if (!fr->linear) {
				if (fr->len > FK_PAGE || fr->data ||
				    dmt_dmabuf_read(buf, fr->off, tmp, fr->len)) {
					shape = false;
					continue;
				}
				p = tmp;
				dfr++;
			} else {
				lin += fr->len;
			}
			at = dmt_pattern_check(p, fr->len, pos, PERIOD);
			if (at >= 0 && bad < 0)
				bad = pos + at;
			pos += fr->len;
		}
	}
	if (!check(t, n == 0, "%s: end of stream", r->name))
		show_err("dmt_rx_recv", dmt_rx_error(rx));
	dmt_rx_get_stats(rx, &st);
	printf("# %s: %llu bytes, %llu frags (%llu linear bytes) in %u calls (%u recvmsg), "
	       "%llu tokens back in %llu DONTNEED calls (max %u ranges, %u frags), "
	       "max %u cmsgs per call\n", r->name, (unsigned long long)st.bytes,
	       (unsigned long long)st.frags, (unsigned long long)st.linear_bytes, calls,
	       f.calls, (unsigned long long)st.tokens, (unsigned long long)st.dontneed_calls,
	       f.dn_max_ranges, f.dn_max_frags, f.max_cmsgs);
	if (bad >= 0)
		printf("# first wrong byte at stream position %lld\n", (long long)bad);
	if (r->wrong_id_at)
		check(t, eproto == 1 && strstr(dmt_rx_error(rx)->what, "dmabuf id 43"),
		      "%s: a frag of another binding gives -EPROTO naming the id", r->name);
	else
		check(t, pos == r->total && bad < 0 && shape,
		      "%s: all %llu bytes valid, read through the buffer at frag off/len",
		      r->name, (unsigned long long)r->total);
	check(t, !f.outstanding && st.tokens == f.issued && f.issued >= st.frags &&
	      !f.dn_violations && f.dn_max_ranges <= 128 && f.dn_max_frags <= 1024,
	      "%s: every token back (%llu of %llu), sorted and merged, <= 128 ranges and "
	      "<= 1024 frags per call", r->name, (unsigned long long)f.released,
	      (unsigned long long)f.issued);
	if (!r->wrong_id_at)
		check(t, st.frags == dfr && st.linear_bytes == lin && st.bytes == r->total &&
		      f.max_cmsgs <= max && (!r->etoosmall_at || f.etoosmall_done),
		      "%s: stats match; <= %u cmsgs per call%s", r->name, max,
		      r->etoosmall_at ? "; ETOOSMALL retried" : "");
out:
	fk = NULL;
	dmt_rx_free(rx);
	if (f.fd >= 0)
		close(f.fd);
	dmt_dmabuf_free(buf);
	free(f.held);
	free(frags);
	free(tmp);
}

/* dmt_rx_free gives back what the last call held. */
static void fake_free_returns(struct ktap *t)
{
	DMT_OPTS(dmt_dmabuf_opts, bo, .provider = DMT_PROVIDER_HOST, .size = 4 << 20);
	struct dmt_rxbind bind = { .c = { .mode = DMT_MODE_DEVMEM, .id = 5 }, .queue_count = 1 };
	struct fake f = { .id = 5, .total = 1 << 20, .seed = 3, .jump = 64 };
	struct dmt_rx_frag frags[256];
	struct dmt_dmabuf *buf;
	struct dmt_rx *rx = NULL;
	struct dmt_err err;
	int n = -1, n2 = -1;

	f.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	f.held = calloc(FK_TOKENS, 1);
	buf = dmt_dmabuf_new(&bo, &err);
	if (buf && f.held && f.fd >= 0) {
		f.map = dmt_dmabuf_map(buf);
		f.size = dmt_dmabuf_size(buf);
		bind.c.buf = buf;
		rx = dmt_rx_new(f.fd, &bind, NULL, &err);
	}
	fk = &f;
	if (rx) {
		n = dmt_rx_recv(rx, frags, 256);
		n2 = dmt_rx_release(rx);
		dmt_rx_recv(rx, frags, 256);
	}
	check(t, n > 0 && n2 == n, "fake: dmt_rx_release returns the %d tokens of a call (%d)",
	      n, n2);
	dmt_rx_free(rx);
	check(t, rx && f.issued > (uint64_t)n && !f.outstanding,
	      "fake: dmt_rx_free gives back the tokens still held (%llu issued)",
	      (unsigned long long)f.issued);
	fk = NULL;
	if (f.fd >= 0)
		close(f.fd);
	dmt_dmabuf_free(buf);
	free(f.held);
}

/* ------------------------------------------- 0.2: held chunks, any thread */

#define SET_CAP 4096

/* Chunks received over a few calls, held, handed to the worker at once. */
struct hold_set {
	struct dmt_rx_chunk c[SET_CAP];
	uint64_t pos[SET_CAP];	/* stream position of each */
	bool checked[SET_CAP];	/* validated at receive time (linear) */
	unsigned n;
	char *lin;		/* this set's linear buffer (caller_linear) */
	size_t lin_used;
};

struct hold_worker {
	struct dmt_rx *rx;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct hold_set *queue[8];	/* sets to unpack, FIFO */
	unsigned qh, qt;
	struct hold_set *free_sets[8];
	unsigned nfree;
	bool done;
	/* results */
	uint64_t bytes_ok, bytes_unknown, unknown, bad_data, put_calls, put_single;
	uint64_t put_errors, released, alt_frags;
	struct dmt_rxbind *alt_bind;
	int64_t first_bad;
	unsigned char tmp[FK_PAGE];
};

/* Validate a set's chunks (reading devmem ones through their dma-buf). */
static void unpack_set(struct hold_worker *w, struct hold_set *s)
{
	for (unsigned i = 0; i < s->n; i++) {
		const struct dmt_rx_chunk *c = &s->c[i];
		const void *p = c->data;

		if (c->flags & DMT_RX_CHUNK_UNKNOWN) {
			w->unknown++;
			w->bytes_unknown += c->len;
			continue;
		}
		if (s->checked[i]) {
			w->bytes_ok += c->len;
			continue;
		}
		if (!p) {
			if (c->len > FK_PAGE || dmt_dmabuf_read(c->buf, c->off, w->tmp, c->len)) {
				w->bad_data++;
				continue;
			}
			p = w->tmp;
			w->alt_frags += c->bind == w->alt_bind && w->alt_bind;
		}
		if (dmt_pattern_check(p, c->len, s->pos[i], PERIOD) >= 0) {
			if (w->first_bad < 0)
				w->first_bad = s->pos[i];
			w->bad_data++;
		} else {
			w->bytes_ok += c->len;
		}
	}
}

/* Give a set back out of order: odd ones one by one from the end, then the
 * even ones in batches of 100. */
static void release_set(struct hold_worker *w, struct hold_set *s)
{
	struct dmt_rx_chunk batch[100];
	unsigned k = 0;
	int ret;

	for (unsigned i = s->n; i-- > 0;) {
		if (!(i & 1))
			continue;
		ret = dmt_rx_put(w->rx, &s->c[i], 1);
		w->put_calls++;
		w->put_single++;
		if (ret < 0)
			w->put_errors++;
		else
			w->released += ret;
	}
	for (unsigned i = 0; i < s->n; i += 2) {
		batch[k++] = s->c[i];
		if (k == 100 || i + 2 >= s->n) {
			ret = dmt_rx_put(w->rx, batch, k);
			w->put_calls++;
			if (ret < 0)
				w->put_errors++;
			else
				w->released += ret;
			k = 0;
		}
	}
}

static void *worker_main(void *arg)
{
	struct hold_worker *w = arg;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		struct hold_set *s;

		while (w->qh == w->qt && !w->done)
			pthread_cond_wait(&w->cv, &w->mu);
		if (w->qh == w->qt)
			break;
		s = w->queue[w->qh++ % 8];
		pthread_mutex_unlock(&w->mu);
		unpack_set(w, s);
		release_set(w, s);
		s->n = 0;
		s->lin_used = 0;
		pthread_mutex_lock(&w->mu);
		w->free_sets[w->nfree++] = s;
		pthread_cond_broadcast(&w->cv);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static void hand_over(struct hold_worker *w, struct hold_set *s)
{
	pthread_mutex_lock(&w->mu);
	w->queue[w->qt++ % 8] = s;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static struct hold_set *next_set(struct hold_worker *w)
{
	struct hold_set *s;

	pthread_mutex_lock(&w->mu);
	while (!w->nfree)
		pthread_cond_wait(&w->cv, &w->mu);
	s = w->free_sets[--w->nfree];
	pthread_mutex_unlock(&w->mu);
	return s;
}

struct hold_run {
	const char *name;
	unsigned max;			/* chunks per call */
	size_t max_bytes;		/* per call (recv opts), 0: engine's */
	unsigned calls_per_set;
	bool caller_linear, caller_control, alt, unknown, plain;
	uint64_t total;
};

/*
 * The receive loop both hold runs share: recv_hold into sets, linear
 * bytes checked at once (they live in the engine's buffer until its next
 * receive), sets handed to the worker thread, which validates and gives
 * them back out of order while the next calls run.  Returns the last
 * dmt_rx_recv_hold result; *pos the stream bytes.
 */
static int hold_loop(struct dmt_rx *rx, struct hold_worker *w, const struct hold_run *r,
		     uint64_t *pos_out, uint64_t *max_call_bytes, uint64_t *enobufs)
{
	struct hold_set *s = next_set(w);
	unsigned calls = 0;
	uint64_t pos = 0;
	int n;

	for (;;) {
		DMT_OPTS(dmt_rx_recv_opts, ro, .max_bytes = r->max_bytes);
		unsigned room = SET_CAP - s->n, max = r->max < room ? r->max : room;
		uint64_t call_bytes = 0;

		if (r->caller_linear) {
			ro.linear = s->lin + s->lin_used;
			ro.linear_len = (1 << 20) - s->lin_used;
		}
		n = dmt_rx_recv_hold(rx, s->c + s->n, max, &ro);
		if (n == -ENOBUFS) {	/* copy ring full of held chunks */
			(*enobufs)++;
			if (s->n) {
				hand_over(w, s);
				s = next_set(w);
				calls = 0;
			} else {
				usleep(200);
			}
			continue;
		}
		if (n <= 0)
			break;
		for (int i = 0; i < n; i++) {
			struct dmt_rx_chunk *c = &s->c[s->n + i];

			s->pos[s->n + i] = pos;
			s->checked[s->n + i] = false;
			if (c->flags & DMT_RX_CHUNK_LINEAR) {
				if (dmt_pattern_check(c->data, c->len, pos, PERIOD) >= 0) {
					if (w->first_bad < 0)
						w->first_bad = pos;
					w->bad_data++;
				}
				s->checked[s->n + i] = true;
				if (r->caller_linear)
					s->lin_used += c->len;
			}
			pos += c->len;
			call_bytes += c->len;
		}
		if (call_bytes > *max_call_bytes)
			*max_call_bytes = call_bytes;
		s->n += n;
		if (++calls >= r->calls_per_set || s->n + r->max > SET_CAP ||
		    (r->caller_linear && s->lin_used + (64 << 10) > (1 << 20))) {
			hand_over(w, s);
			s = next_set(w);
			calls = 0;
		}
	}
	if (s->n)
		hand_over(w, s);
	else
		w->free_sets[w->nfree++] = s;	/* unused: only this thread takes sets */
	*pos_out = pos;
	return n;
}

static bool worker_start(struct hold_worker *w, struct dmt_rx *rx, struct hold_set *sets,
			 pthread_t *th)
{
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	w->rx = rx;
	w->first_bad = -1;
	for (unsigned i = 0; i < 3; i++) {
		sets[i].lin = malloc(1 << 20);
		if (!sets[i].lin)
			return false;
		w->free_sets[w->nfree++] = &sets[i];
	}
	return !pthread_create(th, NULL, worker_main, w);
}

static void worker_stop(struct hold_worker *w, struct hold_set *sets, pthread_t th)
{
	pthread_mutex_lock(&w->mu);
	w->done = true;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(th, NULL);
	for (unsigned i = 0; i < 3; i++)
		free(sets[i].lin);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
}

static void fake_hold(struct ktap *t, const struct hold_run *r)
{
	/* 16384 pages a buffer: more than the 3 sets of SET_CAP chunks the
	 * user can hold, so the fake device always finds its next page free,
	 * as a page pool large enough for the receive window would */
	DMT_OPTS(dmt_dmabuf_opts, bo, .provider = DMT_PROVIDER_HOST, .size = 64 << 20);
	struct dmt_rxbind bind = { .c = { .mode = DMT_MODE_DEVMEM, .id = 42 }, .queue_count = 1 };
	struct dmt_rxbind alt = { .c = { .mode = DMT_MODE_DEVMEM, .id = 44 }, .queue_count = 1 };
	struct fake f = { .id = 42, .total = r->total, .seed = 17, .plain = r->plain, .jump = 16,
			  .alt_id = r->alt ? 44 : 0, .unknown_id = r->unknown ? 43 : 0 };
	DMT_OPTS(dmt_rx_opts, eo, .max_frags = 1024);
	struct hold_set *sets = calloc(3, sizeof(*sets));
	struct hold_worker w = { 0 };
	struct dmt_dmabuf *buf = NULL, *abuf = NULL;
	struct dmt_rx *rx = NULL;
	struct dmt_rx_counters cn = { .sz = sizeof(cn) };
	char *control = NULL;
	uint64_t pos = 0, max_call = 0, enobufs = 0;
	pthread_t th;
	struct dmt_err err;
	int n;

	f.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	f.held = calloc(FK_TOKENS, 1);
	f.tok_slot = calloc(FK_TOKENS, sizeof(*f.tok_slot));
	buf = dmt_dmabuf_new(&bo, &err);
	abuf = dmt_dmabuf_new(&bo, &err);
	if (r->caller_control) {
		eo.max_frags = 0;	/* from the buffer: 300 cmsgs */
		eo.control_len = 300 * CMSG_SPACE(sizeof(struct dmabuf_cmsg));
		eo.control = control = malloc(eo.control_len);
	}
	if (!sets || !buf || !abuf || !f.held || !f.tok_slot || f.fd < 0 || (r->caller_control && !control)) {
		check(t, false, "%s: setup", r->name);
		goto out;
	}
	f.map = dmt_dmabuf_map(buf);
	f.alt_map = dmt_dmabuf_map(abuf);
	f.size = dmt_dmabuf_size(buf);
	f.slot_refs = calloc(2 * (f.size / FK_PAGE), sizeof(*f.slot_refs));
	if (!check(t, f.slot_refs != NULL, "%s: page table", r->name))
		goto out;
	bind.c.buf = buf;
	alt.c.buf = abuf;
	rx = dmt_rx_new(f.fd, &bind, &eo, &err);
	if (!check(t, rx, "%s: engine", r->name)) {
		show_err("dmt_rx_new", &err);
		goto out;
	}
	if (r->alt)
		check(t, dmt_rx_add_bind(rx, &alt) == 0 && dmt_rx_add_bind(rx, &alt) == -EEXIST,
		      "%s: a second binding added (again: -EEXIST)", r->name);
	w.alt_bind = r->alt ? &alt : NULL;
	if (!worker_start(&w, rx, sets, &th)) {
		check(t, false, "%s: worker thread", r->name);
		goto out;
	}
	fk = &f;
	n = hold_loop(rx, &w, r, &pos, &max_call, &enobufs);
	worker_stop(&w, sets, th);
	if (!check(t, n == 0, "%s: end of stream (%d)", r->name, n))
		show_err("dmt_rx_recv_hold", dmt_rx_error(rx));
	dmt_rx_get_counters(rx, &cn);
	printf("# %s: %llu bytes, %llu frags received, %llu released in %llu puts (%llu single) "
	       "and %llu DONTNEED calls (max %u ranges, %u frags), %llu of another binding, "
	       "%llu unknown; most bytes in a call %llu\n", r->name,
	       (unsigned long long)cn.bytes, (unsigned long long)cn.frags_received,
	       (unsigned long long)cn.frags_released, (unsigned long long)w.put_calls,
	       (unsigned long long)w.put_single, (unsigned long long)cn.dontneed_calls,
	       f.dn_max_ranges, f.dn_max_frags, (unsigned long long)w.alt_frags,
	       (unsigned long long)cn.frags_unknown, (unsigned long long)max_call);
	if (w.first_bad >= 0)
		printf("# first wrong byte near stream position %lld\n", (long long)w.first_bad);
	check(t, !f.overwrites, "%s: the fake device never wrote a page a held token "
	      "was on (%llu times)", r->name, (unsigned long long)f.overwrites);
	check(t, pos == r->total && !w.bad_data && w.bytes_ok + w.bytes_unknown == r->total,
	      "%s: all %llu bytes valid (%llu in unknown-id frags), unpacked on another thread",
	      r->name, (unsigned long long)r->total, (unsigned long long)w.bytes_unknown);
	check(t, cn.frags_received == f.issued && cn.frags_released == cn.frags_received &&
	      !cn.frags_held && !cn.frags_lost && !f.outstanding && !w.put_errors &&
	      w.released == f.issued && !f.dn_violations && f.dn_max_ranges <= 128 &&
	      f.dn_max_frags <= 1024,
	      "%s: no token leaked: counters received %llu = released %llu, held 0, lost 0; "
	      "the kernel got every one back, merged, within its limits", r->name,
	      (unsigned long long)cn.frags_received, (unsigned long long)cn.frags_released);
	if (r->max_bytes)
		check(t, max_call <= r->max_bytes, "%s: no call returned more than %zu bytes "
		      "(most: %llu)", r->name, r->max_bytes, (unsigned long long)max_call);
	if (r->caller_control)
		check(t, f.max_cmsgs <= 300, "%s: the caller's control buffer bounds a call: "
		      "<= 300 cmsgs (most: %u)", r->name, f.max_cmsgs);
	if (r->alt)
		check(t, w.alt_frags > 0, "%s: frags of the second binding name it and read "
		      "right through its buffer (%llu)", r->name, (unsigned long long)w.alt_frags);
	if (r->unknown)
		check(t, w.unknown == f.unknown_frags && cn.frags_unknown == f.unknown_frags &&
		      w.unknown > 0, "%s: frags of an unknown dmabuf id handed out flagged, "
		      "not lost (%llu of %llu), and given back", r->name,
		      (unsigned long long)w.unknown, (unsigned long long)f.unknown_frags);
out:
	fk = NULL;
	dmt_rx_free(rx);
	if (f.fd >= 0)
		close(f.fd);
	dmt_dmabuf_free(buf);
	dmt_dmabuf_free(abuf);
	free(f.held);
	free(f.tok_slot);
	free(f.slot_refs);
	free(sets);
	free(control);
}

/*
 * Held chunks after close(fd): the number is reused by a new socket; puts
 * and dmt_rx_free still reach the socket the tokens came from, never the
 * new one.  Also: a chunk given back twice is -ENOENT, nothing sent.
 */
static void fake_fd_reuse(struct ktap *t)
{
	DMT_OPTS(dmt_dmabuf_opts, bo, .provider = DMT_PROVIDER_HOST, .size = 4 << 20);
	struct dmt_rxbind bind = { .c = { .mode = DMT_MODE_DEVMEM, .id = 5 }, .queue_count = 1 };
	struct fake f = { .id = 5, .total = 1 << 20, .seed = 3, .jump = 64 };
	struct dmt_rx_chunk ch[256];
	struct dmt_rx_counters cn = { .sz = sizeof(cn) };
	struct dmt_dmabuf *buf;
	struct dmt_rx *rx = NULL;
	struct dmt_err err;
	int n = -1, num, other = -1, half = -1, again = -1, fds;
	unsigned sent;

	f.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	f.held = calloc(FK_TOKENS, 1);
	buf = dmt_dmabuf_new(&bo, &err);
	fk = &f;
	fk_is(f.fd);	/* remember its identity */
	fds = count_fds();
	if (buf && f.held && f.fd >= 0) {
		f.map = dmt_dmabuf_map(buf);
		f.size = dmt_dmabuf_size(buf);
		bind.c.buf = buf;
		rx = dmt_rx_new(f.fd, &bind, NULL, &err);
	}
	check(t, rx && count_fds() == fds + 1, "fd reuse: the engine holds its own duplicate "
	      "of the socket (one fd more)");
	if (rx)
		n = dmt_rx_recv_hold(rx, ch, 256, NULL);
	num = f.fd;
	close(f.fd);
	f.fd = -1;
	other = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (n > 1) {
		half = dmt_rx_put(rx, ch, n / 2);
		sent = f.dn_calls;
		again = dmt_rx_put(rx, ch, 1);
		check(t, again == -ENOENT && f.dn_calls == sent &&
		      strstr(dmt_rx_error(rx)->what, "not held"),
		      "a chunk given back twice: -ENOENT, nothing sent to the kernel (%d)", again);
	}
	dmt_rx_get_counters(rx, &cn);
	dmt_rx_free(rx);
	check(t, n > 1 && other == num && half == n / 2 && !f.outstanding && !f.other_dontneed &&
	      f.released == f.issued,
	      "fd reuse: after close(fd) and a new socket on fd %d, puts and dmt_rx_free "
	      "return all %llu tokens to the old socket, none to the new (%u)", num,
	      (unsigned long long)f.issued, f.other_dontneed);
	check(t, cn.frags_received == (uint64_t)n && cn.frags_held == (uint64_t)(n - n / 2),
	      "counters while held: received %llu, held %llu", (unsigned long long)cn.frags_received,
	      (unsigned long long)cn.frags_held);
	fk = NULL;
	if (other >= 0)
		close(other);
	dmt_dmabuf_free(buf);
	free(f.held);
}

/* Copy mode over lo: held chunks keep their bytes until given back. */
static void copy_hold(struct ktap *t)
{
	DMT_OPTS(dmt_dmabuf_opts, bo, .provider = DMT_PROVIDER_HOST, .size = 64 << 10);
	DMT_OPTS(dmt_rxbind_opts, po, .policy = DMT_MODE_COPY);
	DMT_OPTS(dmt_rx_opts, eo, .max_bytes = 9000);
	struct hold_run r = { .name = "copy, held", .max = 16, .calls_per_set = 5,
			      .total = 16ull << 20 };
	struct sender snd = { .total = r.total };
	struct hold_set *sets = calloc(3, sizeof(*sets));
	struct hold_worker w = { 0 };
	struct dmt_rx_counters cn = { .sz = sizeof(cn) };
	struct dmt_rxbind *bind = NULL;
	struct dmt_dmabuf *buf;
	struct dmt_rx *rx = NULL;
	struct dmt_err err;
	uint64_t pos = 0, max_call = 0, enobufs = 0;
	pthread_t th;
	int lfd, fd = -1, n;

	buf = dmt_dmabuf_new(&bo, &err);
	bind = buf ? dmt_rxbind_new("lo", buf, &po, &err) : NULL;
	lfd = bind ? listen_lo(0, &snd.port) : -1;
	if (!sets || lfd < 0 || pthread_create(&snd.thread, NULL, sender_main, &snd)) {
		check(t, false, "copy, held: setup");
		if (lfd >= 0)
			close(lfd);
		goto out;
	}
	fd = accept(lfd, NULL, NULL);
	close(lfd);
	rx = fd >= 0 ? dmt_rx_new(fd, bind, &eo, &err) : NULL;
	if (rx && worker_start(&w, rx, sets, &th)) {
		n = hold_loop(rx, &w, &r, &pos, &max_call, &enobufs);
		worker_stop(&w, sets, th);
		check(t, n == 0, "copy, held: end of stream");
	}
	pthread_join(snd.thread, NULL);
	dmt_rx_get_counters(rx, &cn);
	printf("# copy, held: %llu bytes, %llu chunks held and given back out of order, "
	       "%llu times the ring was full of held chunks (-ENOBUFS)\n",
	       (unsigned long long)cn.bytes, (unsigned long long)cn.frags_received,
	       (unsigned long long)enobufs);
	check(t, rx && pos == r.total && !w.bad_data && w.bytes_ok == r.total,
	      "copy, held: all %llu bytes valid when unpacked on the worker (never overwritten "
	      "while held)", (unsigned long long)r.total);
	check(t, rx && cn.frags_received > 0 && cn.frags_released == cn.frags_received &&
	      !cn.frags_held && !w.put_errors,
	      "copy, held: counters received %llu = released %llu, held 0",
	      (unsigned long long)cn.frags_received, (unsigned long long)cn.frags_released);
out:
	dmt_rx_free(rx);
	if (fd >= 0)
		close(fd);
	dmt_rxbind_free(bind);
	dmt_dmabuf_free(buf);
	free(sets);
}

/* Options: checked up to their last field; no tail padding; sized output. */
static void opts_022(struct ktap *t)
{
	DMT_OPTS(dmt_dmabuf_opts, bo, .provider = DMT_PROVIDER_HOST, .size = 1 << 16);
	struct {
		struct dmt_rxbind_opts o;
		uint32_t more;
	} big = { .o = { .sz = sizeof(big), .policy = DMT_MODE_COPY }, .more = 1 };
	struct {
		struct dmt_rx_counters c;
		uint64_t guard;
	} small = { .c = { .sz = offsetof(struct dmt_rx_counters, linear_bytes) },
		    .guard = 0x5a5a };
	struct dmt_rx_chunk ch[4];
	struct dmt_rxbind *bind;
	struct dmt_dmabuf *buf;
	struct dmt_rx *rx = NULL;
	struct dmt_err err;
	int sv[2] = { -1, -1 }, ret;
	bool ok;

	/* dmt_rxbind_opts: 0.1's tail padding, then rx_page_size, then
	 * explicit padding (checked: DMT_OPTS zeroes it) */
	check(t, sizeof(struct dmt_rxbind_opts) ==
		 offsetof(struct dmt_rxbind_opts, rx_page_size) + 2 * sizeof(uint32_t) &&
	      offsetof(struct dmt_rxbind_opts, rx_page_size) ==
		 offsetof(struct dmt_rxbind_opts, queue_count) + 2 * sizeof(uint32_t) &&
	      sizeof(struct dmt_rx_opts) ==
		 offsetof(struct dmt_rx_opts, control_len) + sizeof(size_t) &&
	      sizeof(struct dmt_rx_recv_opts) ==
		 offsetof(struct dmt_rx_recv_opts, linear_len) + sizeof(size_t),
	      "0.2 options structs end with their last field or explicit padding; "
	      "rx_page_size after 0.1's tail padding");
	buf = dmt_dmabuf_new(&bo, &err);
	bind = buf ? dmt_rxbind_new("lo", buf, &big.o, &err) : NULL;
	check(t, !bind && err.code == -EINVAL && strstr(err.what, "non-zero byte at 32"),
	      "dmt_rxbind_opts: a byte set past the struct is refused (%s)", err.what);
	dmt_rxbind_free(bind);
	big.more = 0;
	((unsigned char *)&big.o)[offsetof(struct dmt_rxbind_opts, rx_page_size) + 4] = 1;
	bind = buf ? dmt_rxbind_new("lo", buf, &big.o, &err) : NULL;
	check(t, !bind && err.code == -EINVAL && strstr(err.what, "non-zero byte at 28"),
	      "dmt_rxbind_opts: a byte set in the padding after rx_page_size is refused (%s)",
	      err.what);
	dmt_rxbind_free(bind);
	/* a 0.1 caller: its sz is 24, 0.1's padding (20..23) may hold garbage */
	memset(&big, 0, sizeof(big));
	big.o.sz = offsetof(struct dmt_rxbind_opts, rx_page_size);
	big.o.policy = DMT_MODE_COPY;
	memset((char *)&big.o + offsetof(struct dmt_rxbind_opts, queue_count) + 4, 0xa5, 4);
	bind = buf ? dmt_rxbind_new("lo", buf, &big.o, &err) : NULL;
	check(t, bind && dmt_rxbind_mode(bind) == DMT_MODE_COPY,
	      "dmt_rxbind_opts of a 0.1 caller (sz 24, garbage in its tail padding): accepted, "
	      "rx_page_size not read");
	dmt_rxbind_free(bind);
	{
		DMT_OPTS(dmt_rxbind_opts, po, .policy = DMT_MODE_COPY);

		bind = buf ? dmt_rxbind_new("lo", buf, &po, &err) : NULL;
	}
	if (bind && socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0) {
		int lfd;
		uint16_t port;
		struct sockaddr_in sa = { .sin_family = AF_INET,
					  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

		lfd = listen_lo(0, &port);
		sa.sin_port = htons(port);
		close(sv[0]);
		close(sv[1]);
		sv[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (lfd >= 0 && connect(sv[0], (struct sockaddr *)&sa, sizeof(sa)) == 0)
			sv[1] = accept(lfd, NULL, NULL);
		if (lfd >= 0)
			close(lfd);
		rx = sv[1] >= 0 ? dmt_rx_new(sv[1], bind, NULL, &err) : NULL;
	}
	if (!check(t, rx, "options: a copy engine on lo"))
		goto out;
	{
		DMT_OPTS(dmt_rx_recv_opts, ro, .flags = 0x80);

		ret = dmt_rx_recv_hold(rx, ch, 4, &ro);
		check(t, ret == -EINVAL && strstr(dmt_rx_error(rx)->fix, "DMT_RX_DONTWAIT"),
		      "dmt_rx_recv_hold: an unknown flag is -EINVAL");
		ro.flags = DMT_RX_DONTWAIT;
		ret = dmt_rx_recv_hold(rx, ch, 4, &ro);
		check(t, ret == -EAGAIN, "DMT_RX_DONTWAIT on a blocking socket with nothing "
		      "to read: -EAGAIN (%d)", ret);
	}
	ret = dmt_rx_get_counters(rx, &small.c);
	check(t, ret == 0 && small.c.bytes == 0 && small.guard == 0x5a5a,
	      "dmt_rx_get_counters writes no further than the caller's sz");
	ok = dmt_rx_add_bind(rx, bind) == -EINVAL;
	check(t, ok, "dmt_rx_add_bind on a copy engine: -EINVAL");
out:
	dmt_rx_free(rx);
	for (int i = 0; i < 2; i++)
		if (sv[i] >= 0)
			close(sv[i]);
	dmt_rxbind_free(bind);
	dmt_dmabuf_free(buf);
}

/* ----------------------------------------------------------- devmem part */

struct opt {
	const char *ifname, *addr;
	uint16_t port;
	unsigned queue, count, period, size_mib;
	uint64_t expect;
	int ready_fd;
	bool setup;		/* -S: NIC setup through dmt_nic_*, undone after */
};

static int queue_bound_cb(const struct dmt_queue_info *q, void *arg)
{
	uint32_t *want = arg;	/* [0] queue, [1] id, [2] out: found */

	if (q->type == 0 && q->id == want[0])
		want[2] = q->dmabuf == want[1];
	return 0;
}

static void devmem_rx(struct ktap *t, const struct opt *o)
{
	DMT_OPTS(dmt_dmabuf_opts, bo, .provider = DMT_PROVIDER_UDMABUF,
		 .size = (size_t)o->size_mib << 20);
	DMT_OPTS(dmt_rxbind_opts, po, .policy = DMT_MODE_DEVMEM, .queue_start = o->queue,
		 .queue_count = o->count);
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct dmt_rx_frag frags[256];
	struct dmt_rxbind *rb = NULL;
	struct dmt_dmabuf *buf = NULL;
	struct dmt_nic *nic = NULL;
	struct dmt_rx *rx = NULL;
	struct dmt_rx_stats st;
	struct dmt_err err;
	unsigned char *tmp = malloc(1 << 16);
	uint64_t pos = 0, dfr = 0;
	int64_t bad = -1;
	int lfd = -1, fd = -1, n = -1, one = 1;
	socklen_t sl;
	struct timespec t0, t1;
	double secs;

	if (o->setup) {
		nic = dmt_nic_open(o->ifname, &err);
		if (!check(t, nic && dmt_nic_prepare_rx(nic, o->queue, o->count) == 0,
			   "devmem: NIC %s prepared for queues %u-%u (header split, RSS off them)",
			   o->ifname, o->queue, o->queue + o->count - 1)) {
			show_err("dmt_nic_*", nic ? dmt_nic_error(nic) : &err);
			goto out;
		}
	}
	buf = dmt_dmabuf_new(&bo, &err);
	if (!check(t, buf && tmp, "devmem: udmabuf of %u MiB", o->size_mib)) {
		show_err("dmt_dmabuf_new", &err);
		goto out;
	}
	rb = dmt_rxbind_new(o->ifname, buf, &po, &err);
	if (!check(t, rb && dmt_rxbind_mode(rb) == DMT_MODE_DEVMEM && dmt_rxbind_id(rb),
		   "devmem: bind-rx on %s queues %u-%u", o->ifname, o->queue,
		   o->queue + o->count - 1)) {
		show_err("dmt_rxbind_new", &err);
		goto out;
	}
	printf("# bound: dmabuf id %u\n", dmt_rxbind_id(rb));
	{
		uint32_t want[3] = { o->queue, dmt_rxbind_id(rb), 0 };
		struct dmt_nl *nl = dmt_nl_open(&err);

		if (nl)
			dmt_queue_dump(nl, if_nametoindex(o->ifname), queue_bound_cb, want);
		dmt_nl_close(nl);
		check(t, want[2], "devmem: queue-get shows queue %u bound to id %u", o->queue,
		      want[1]);
	}
	if (inet_pton(AF_INET6, o->addr, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(o->port);
		sl = sizeof(*s6);
	} else if (inet_pton(AF_INET, o->addr, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(o->port);
		sl = sizeof(*s4);
	} else {
		check(t, false, "devmem: address %s", o->addr);
		goto out;
	}
	lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(lfd, (struct sockaddr *)&ss, sl) < 0 || listen(lfd, 1) < 0) {
		check(t, false, "devmem: listen on %s port %u: %s", o->addr, o->port,
		      strerror(errno));
		goto out;
	}
	if (nic) {
		struct dmt_flow flow;
		uint32_t loc;

		memset(&flow, 0, sizeof(flow));
		memcpy(&flow.local, &ss, sl);
		if (!check(t, dmt_nic_steer(nic, &flow, o->queue, &loc) == 0,
			   "devmem: flows to port %u steered to queue %u", o->port, o->queue)) {
			show_err("dmt_nic_steer", dmt_nic_error(nic));
			goto out;
		}
	}
	printf("# listening on %s port %u\n", o->addr, o->port);
	fflush(stdout);
	if (o->ready_fd >= 0) {
		if (write(o->ready_fd, "1", 1) < 0)
			printf("# ready fd %d: %s\n", o->ready_fd, strerror(errno));
		close(o->ready_fd);
	}
	fd = accept(lfd, NULL, NULL);
	if (!check(t, fd >= 0, "devmem: accept"))
		goto out;
	rx = dmt_rx_new(fd, rb, NULL, &err);
	if (!check(t, rx, "devmem: dmt_rx_new")) {
		show_err("dmt_rx_new", &err);
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		n = dmt_rx_recv(rx, frags, 256);
		if (n <= 0)
			break;
		for (int i = 0; i < n; i++) {
			const struct dmt_rx_frag *f = &frags[i];
			const void *p = f->data;
			ssize_t at;

			if (!f->linear) {
				if (f->len > (1 << 16) || dmt_dmabuf_read(buf, f->off, tmp, f->len)) {
					if (bad < 0)
						bad = pos;
					pos += f->len;
					continue;
				}
				p = tmp;
				dfr++;
			}
			at = dmt_pattern_check(p, f->len, pos, o->period);
			if (at >= 0 && bad < 0)
				bad = pos + at;
			pos += f->len;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (!check(t, n == 0, "devmem: end of stream"))
		show_err("dmt_rx_recv", dmt_rx_error(rx));
	dmt_rx_release(rx);
	dmt_rx_get_stats(rx, &st);
	secs = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("# devmem: %llu bytes in %.2f s (%.0f MB/s), %llu frags, %llu linear bytes, "
	       "%llu tokens returned in %llu DONTNEED calls, %llu recvmsg calls\n",
	       (unsigned long long)st.bytes, secs, secs > 0 ? st.bytes / secs / 1e6 : 0,
	       (unsigned long long)st.frags, (unsigned long long)st.linear_bytes,
	       (unsigned long long)st.tokens, (unsigned long long)st.dontneed_calls,
	       (unsigned long long)st.recv_calls);
	if (bad >= 0)
		printf("# first wrong byte at stream position %lld\n", (long long)bad);
	check(t, bad < 0 && pos == st.bytes && pos > 0 && (!o->expect || pos == o->expect),
	      "devmem: all %llu bytes match the period-%u pattern%s", (unsigned long long)pos,
	      o->period, o->expect ? " and the expected total" : "");
	check(t, st.frags > 0 && st.frags == dfr && st.tokens == st.frags,
	      "devmem: tokens returned (%llu) == frags received (%llu)",
	      (unsigned long long)st.tokens, (unsigned long long)st.frags);
	check(t, st.linear_bytes == 0, "devmem: no linear bytes (the flow is steered): %llu",
	      (unsigned long long)st.linear_bytes);
out:
	dmt_rx_free(rx);
	if (fd >= 0)
		close(fd);
	if (lfd >= 0)
		close(lfd);
	dmt_rxbind_free(rb);
	if (nic)
		check(t, dmt_nic_restore(nic) == 0, "devmem: NIC restored after the unbind");
	dmt_nic_close(nic);
	dmt_dmabuf_free(buf);
	free(tmp);
}

static int usage(const char *argv0)
{
	fprintf(stderr, "usage: %s [-i IFNAME -a LOCAL_ADDR -p PORT [-q QUEUE] [-c COUNT] "
		"[-v PERIOD] [-s MIB] [-n BYTES] [-R FD] [-S]]\n", argv0);
	return 2;
}

int main(int argc, char **argv)
{
	struct opt o = { .count = 1, .queue = 1, .period = PERIOD, .size_mib = 64,
			 .ready_fd = -1 };
	struct ktap t = { 0 };
	int fds_before, fds_after, c;

	while ((c = getopt(argc, argv, "i:a:p:q:c:v:s:n:R:S")) != -1) {
		switch (c) {
		case 'i': o.ifname = optarg; break;
		case 'a': o.addr = optarg; break;
		case 'p': o.port = atoi(optarg); break;
		case 'q': o.queue = atoi(optarg); break;
		case 'c': o.count = atoi(optarg); break;
		case 'v': o.period = atoi(optarg); break;
		case 's': o.size_mib = atoi(optarg); break;
		case 'n': o.expect = strtoull(optarg, NULL, 0); break;
		case 'R': o.ready_fd = atoi(optarg); break;
		case 'S': o.setup = true; break;
		default: return usage(argv[0]);
		}
	}
	if ((o.ifname || o.addr || o.port) && !(o.ifname && o.addr && o.port))
		return usage(argv[0]);

	fds_before = count_fds();
	if (o.ifname) {
		devmem_rx(&t, &o);
	} else {
		copy_transfer(&t, &(struct copy_run){
			.name = "copy", .bufsize = 96 << 10, .max_bytes = 40000,
			.total = 32ull << 20 });
		copy_transfer(&t, &(struct copy_run){
			.name = "copy, slow consumer", .bufsize = 64 << 10, .max_bytes = 5000,
			.max = 2, .rcvbuf = 8192, .sleep_us = 50, .total = 4ull << 20 });
		copy_nonblocking(&t);
		policies(&t);
		bind_rx_lo(&t);
		fake_transfer(&t, &(struct fake_run){
			.name = "fake devmem", .max_frags = 256, .total = 64ull << 20,
			.plain = true, .etoosmall_at = 5 });
		fake_transfer(&t, &(struct fake_run){
			.name = "fake devmem, 2000 frags per call", .max_frags = 2000,
			.max_bytes = 16 << 20, .total = 64ull << 20 });
		fake_transfer(&t, &(struct fake_run){
			.name = "fake devmem, 2000 scattered tokens per call", .max_frags = 2000,
			.max_bytes = 16 << 20, .total = 16ull << 20, .jump = 1 });
		fake_transfer(&t, &(struct fake_run){
			.name = "fake devmem, 3 frags per call, 10000-byte budget",
			.max_frags = 256, .max = 3, .max_bytes = 10000, .total = 4ull << 20,
			.plain = true });
		fake_transfer(&t, &(struct fake_run){
			.name = "fake devmem, wrong dmabuf id", .max_frags = 256,
			.total = 8ull << 20, .wrong_id_at = 3 });
		fake_free_returns(&t);
		fake_hold(&t, &(struct hold_run){
			.name = "fake devmem, held", .max = 256, .calls_per_set = 6,
			.total = 32ull << 20, .plain = true });
		fake_hold(&t, &(struct hold_run){
			.name = "fake devmem, held, caller's buffers, 20000 bytes a call",
			.max = 1024, .max_bytes = 20000, .calls_per_set = 9,
			.caller_linear = true, .caller_control = true, .total = 16ull << 20,
			.plain = true });
		fake_hold(&t, &(struct hold_run){
			.name = "fake devmem, held, two bindings and an unknown id", .max = 512,
			.calls_per_set = 4, .alt = true, .unknown = true,
			.total = 16ull << 20 });
		fake_fd_reuse(&t);
		copy_hold(&t);
		opts_022(&t);
	}
	fds_after = count_fds() + (o.ready_fd >= 0);	/* -R's fd is closed on purpose */
	if (!check(&t, fds_before >= 0 && fds_after == fds_before, "no fd leaked"))
		printf("# %d fds open at start, %d at the end\n", fds_before, fds_after);
	return ktap_exit(&t);
}
