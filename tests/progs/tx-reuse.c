// SPDX-License-Identifier: MIT
/*
 * tx-reuse: the send engine never hands out a byte whose send has not
 * completed, proven under ENOBUFS storms and a slow receiver.
 *
 * In a private network namespace (so the host is untouched: optmem_max is
 * per namespace, and the namespace goes away with this process), with
 * net.core.optmem_max tiny, a sender in zerocopy mode pushes a long stream
 * through a small window while a receiver thread reads in small chunks
 * with small sleeps from a small receive buffer, checking every byte.
 *
 * The test keeps its own account of what is in flight, independent of the
 * engine's allocator: every byte is marked when its region is queued and
 * cleared only once every send id that could have carried it has been
 * reported complete through on_complete (ids: one per sendmsg that queued
 * bytes, counted by stats.sends; contract 3.5).  Each region dmt_tx_alloc
 * returns must be entirely unmarked, and the sender poisons it (0xA5) and
 * then rewrites it with the pattern at once; a region handed out early
 * would be rewritten under a zerocopy send that still references its pages,
 * and the receiver, which checks every byte, would see it.
 *
 * Last, optmem_max below one completion record: the send must fail with
 * -ENOBUFS and an error naming net.core.optmem_max.
 */
#include "tx-common.h"

#include <net/if.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/ioctl.h>

#define WINDOW (256u << 10)
#define TOTAL_MIB 24ull
#define OPTMEM_TINY 1024		/* one completion record fits, two do not */
#define OPTMEM_ROOMY 131072
#define PHASE_SHIFT 21			/* optmem flips every 2 MiB of stream */
#define OPTMEM_PATH "/proc/sys/net/core/optmem_max"
#define NREG (1u << 16)		/* regions queued and not yet cleared */
#define NBATCH (1u << 16)
#define IDS (1u << 16)		/* > max_inflight: ids mod IDS are unique */

struct shadow {
	unsigned char mark[WINDOW];	/* 1: in flight per the test's account */
	struct { size_t off, len; uint64_t spos; } reg[NREG];
	unsigned reg_first, reg_n;
	size_t reg_cleared;		/* bytes of reg[reg_first] already cleared */
	struct { uint64_t end; uint32_t first_id, last_id; } batch[NBATCH];
	unsigned batch_first, batch_n;
	unsigned char done[IDS];	/* id completed, by id % IDS */
	uint64_t completed_to;		/* stream bytes whose sends all completed */
	uint64_t violations, bad_ids;
	uint64_t max_sends_inflight, max_bytes_inflight;
	size_t first_bad_off;
};

static int write_sysctl(const char *path, long val)
{
	FILE *f = fopen(path, "we");
	int ret = 0;

	if (!f)
		return -errno;
	if (fprintf(f, "%ld\n", val) < 0)
		ret = -EIO;
	if (fclose(f) && !ret)
		ret = -errno;
	return ret;
}

static long read_sysctl(const char *path)
{
	FILE *f = fopen(path, "re");
	long v = -1;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

static int lo_up(void)
{
	struct ifreq ifr = { 0 };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), ret = 0;

	if (fd < 0)
		return -errno;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		ret = -errno;
	ifr.ifr_flags |= IFF_UP;
	if (!ret && ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

static void on_complete(const struct dmt_tx_completion *c, void *arg)
{
	struct shadow *sh = arg;

	for (uint32_t id = c->lo;; id++) {
		if (sh->done[id % IDS])
			sh->bad_ids++;	/* reported twice */
		sh->done[id % IDS] = 1;
		if (id == c->hi)
			break;
	}
}

/* Clear the marks of every stream byte below completed_to. */
static void clear_completed(struct shadow *sh)
{
	while (sh->batch_n) {
		unsigned b = sh->batch_first;
		bool all = true;

		for (uint32_t id = sh->batch[b].first_id;; id++) {
			all &= sh->done[id % IDS];
			if (id == sh->batch[b].last_id)
				break;
		}
		if (!all)
			break;
		for (uint32_t id = sh->batch[b].first_id;; id++) {
			sh->done[id % IDS] = 0;
			if (id == sh->batch[b].last_id)
				break;
		}
		sh->completed_to = sh->batch[b].end;
		sh->batch_first = (b + 1) % NBATCH;
		sh->batch_n--;
	}
	while (sh->reg_n) {
		unsigned i = sh->reg_first;
		uint64_t done = sh->completed_to > sh->reg[i].spos ?
				sh->completed_to - sh->reg[i].spos : 0;
		size_t upto = done < sh->reg[i].len ? done : sh->reg[i].len;

		if (upto > sh->reg_cleared) {
			memset(sh->mark + sh->reg[i].off + sh->reg_cleared, 0,
			       upto - sh->reg_cleared);
			sh->reg_cleared = upto;
		}
		if (upto < sh->reg[i].len)
			break;
		sh->reg_first = (i + 1) % NREG;
		sh->reg_n--;
		sh->reg_cleared = 0;
	}
}

/* After a call that may have sent: the ids it used carried its bytes. */
static void note_sends(struct shadow *sh, const struct dmt_tx_stats *before,
		       const struct dmt_tx_stats *after)
{
	unsigned b;

	if (after->sends == before->sends)
		return;
	b = (sh->batch_first + sh->batch_n++) % NBATCH;
	sh->batch[b].end = after->bytes;
	sh->batch[b].first_id = (uint32_t)before->sends;
	sh->batch[b].last_id = (uint32_t)(after->sends - 1);
}

static void check_free(struct shadow *sh, const struct dmt_region *r)
{
	for (size_t i = 0; i < r->len; i++) {
		if (sh->mark[r->off + i]) {
			if (!sh->violations++)
				sh->first_bad_off = r->off + i;
			return;
		}
	}
}

/* Stream total bytes; 0 or -errno. */
/* Overwrite a freshly handed-out region with 0xA5 (never in the pattern). */
static int poison(struct dmt_dmabuf *buf, const struct dmt_region *r)
{
	static const unsigned char junk[4096] = { [0 ... 4095] = 0xA5 };
	size_t done, n;
	int ret;

	for (done = 0; done < r->len; done += n) {
		n = r->len - done < sizeof(junk) ? r->len - done : sizeof(junk);
		ret = dmt_dmabuf_write(buf, r->off + done, junk, n);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int run(struct dmt_tx *tx, struct dmt_dmabuf *buf, struct shadow *sh,
	       uint64_t total)
{
	struct dmt_tx_stats before, after;
	uint64_t pos = 0, phase = ~0ull;
	uint32_t seed = 7;
	int ret;

	while (pos < total) {
		struct dmt_region r;
		size_t len;
		ssize_t n;

		/*
		 * Tiny optmem: ENOBUFS on nearly every send, one record in
		 * flight at a time.  Roomy: many sends in flight, the window
		 * wrapping under them, max_inflight reached.  Alternate.
		 */
		if (pos >> PHASE_SHIFT != phase) {
			phase = pos >> PHASE_SHIFT;
			ret = write_sysctl(OPTMEM_PATH, phase & 1 ? OPTMEM_ROOMY : OPTMEM_TINY);
			if (ret < 0)
				return ret;
		}

		seed = seed * 1103515245 + 12345;
		len = 1 + (seed >> 8) % (8 << 10);
		if (len > total - pos)
			len = total - pos;
		ret = dmt_tx_alloc(tx, len, &r);
		if (ret == -EAGAIN) {
			ret = dmt_tx_poll(tx, 1000);
			if (ret < 0)
				return ret;
			clear_completed(sh);
			continue;
		}
		if (ret < 0)
			return ret;
		check_free(sh, &r);
		/*
		 * Poison the region the moment it is handed out, then write
		 * the pattern: a region still referenced by a zerocopy send
		 * would carry poison or a later stream position to the
		 * receiver, which checks every byte.
		 */
		ret = poison(buf, &r);
		if (ret < 0)
			return ret;
		ret = dmt_dmabuf_fill(buf, r.off, r.len, pos, TX_PERIOD);
		if (ret < 0)
			return ret;
		memset(sh->mark + r.off, 1, r.len);
		sh->reg[(sh->reg_first + sh->reg_n++) % NREG].off = r.off;
		sh->reg[(sh->reg_first + sh->reg_n - 1) % NREG].len = r.len;
		sh->reg[(sh->reg_first + sh->reg_n - 1) % NREG].spos = pos;
		dmt_tx_get_stats(tx, &before);
		n = dmt_tx_send(tx, &r, 1);
		dmt_tx_get_stats(tx, &after);
		note_sends(sh, &before, &after);
		if (n < 0)
			return n;
		if (after.sends - after.completions > sh->max_sends_inflight)
			sh->max_sends_inflight = after.sends - after.completions;
		if (after.inflight_bytes > sh->max_bytes_inflight)
			sh->max_bytes_inflight = after.inflight_bytes;
		pos += len;
		clear_completed(sh);
	}
	dmt_tx_get_stats(tx, &before);
	ret = dmt_tx_drain(tx, 30000);
	dmt_tx_get_stats(tx, &after);
	note_sends(sh, &before, &after);
	clear_completed(sh);
	return ret;
}

/* Where the storm runs: lo in a private netns, or IFNAME towards ADDR in NS. */
struct path {
	const char *addr;
	const char *netns;	/* the receiver's, NULL: this one */
	uint64_t total;
};

static void storm(struct ktap *t, struct dmt_txbind *bind, struct dmt_dmabuf *buf,
		  const struct path *p)
{
	DMT_OPTS(dmt_tx_opts, to, .window_len = WINDOW, .max_inflight = 64);
	/* a slow receiver: 2 KiB reads, 20 us apart */
	struct tx_link l = { .rx = { .lfd = -1, .chunk = 2048, .delay_us = 20 }, .fd = -1 };
	struct dmt_tx_stats st = { 0 };
	struct shadow *sh = calloc(1, sizeof(*sh));
	struct dmt_tx *tx = NULL;
	struct timespec t0;
	int ret, sndbuf = 4096, mss = 4096;
	struct dmt_err err;
	double s;

	to.on_complete = on_complete;
	to.arg = sh;
	if (!sh || tx_link_open(&l, p->netns, p->addr, 32768) ||
	    setsockopt(l.fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)) < 0 ||
	    /*
	     * lo's MSS (~64 KiB) is larger than the slow receiver's window
	     * (SO_RCVBUF 32 KiB): a segment that does not fit waits for the
	     * persist timer (sender-side SWS avoidance) and the transfer
	     * crawls at ~100 KB/s, past the test's cap.  Segments well below
	     * the window keep the stream moving.
	     */
	    setsockopt(l.fd, IPPROTO_TCP, TCP_MAXSEG, &mss, sizeof(mss)) < 0) {
		check(t, false, "storm: sockets");
		goto out;
	}
	tx = dmt_tx_new(l.fd, bind, &to, &err);
	if (!check(t, tx, "storm: engine in %s mode", dmt_mode_name(dmt_txbind_mode(bind)))) {
		diag_err("dmt_tx_new", &err);
		goto out;
	}
	ret = tx_link_connect(&l, p->addr);
	if (!check(t, !ret, "storm: connect"))
		goto out;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ret = run(tx, buf, sh, p->total);
	s = secs_since(&t0);
	if (!check(t, !ret, "storm: %llu bytes sent, every send completed",
		   (unsigned long long)p->total))
		diag_err("send", dmt_tx_error(tx));
	tx_link_finish(&l);
	dmt_tx_get_stats(tx, &st);
	printf("# %llu bytes in %.2f s through a %u KiB window: %llu sends (%llu partial), "
	       "%llu completions in %llu notifications (%llu copied)\n",
	       (unsigned long long)st.bytes, s, WINDOW >> 10, (unsigned long long)st.sends,
	       (unsigned long long)st.partial, (unsigned long long)st.completions,
	       (unsigned long long)st.notifications, (unsigned long long)st.copied);
	printf("# at most %llu sends (%llu bytes) in flight at once\n",
	       (unsigned long long)sh->max_sends_inflight,
	       (unsigned long long)sh->max_bytes_inflight);
	printf("# ENOBUFS %llu, EAGAIN %llu; test's account: %llu early reuses, "
	       "%llu ids reported twice, %u sends left uncleared\n",
	       (unsigned long long)st.enobufs, (unsigned long long)st.eagain,
	       (unsigned long long)sh->violations, (unsigned long long)sh->bad_ids,
	       sh->batch_n);
	if (sh->violations)
		printf("# first early reuse at buffer offset %zu\n", sh->first_bad_off);
	check(t, st.enobufs > 0, "storm: ENOBUFS happened (%llu times) and was survived",
	      (unsigned long long)st.enobufs);
	check(t, !sh->violations && !sh->bad_ids && !sh->batch_n && !sh->reg_n,
	      "storm: dmt_tx_alloc never handed out a byte still in flight");
	if (l.rx.err)
		printf("# receiver: %s\n", strerror(-l.rx.err));
	if (l.rx.bad >= 0)
		printf("# first wrong byte at stream position %lld\n", (long long)l.rx.bad);
	check(t, !l.rx.err && l.rx.bytes == p->total && l.rx.bad < 0,
	      "storm: slow receiver validated all %llu bytes (got %llu)",
	      (unsigned long long)p->total, (unsigned long long)l.rx.bytes);
	check(t, st.completions == st.sends && !st.inflight_bytes,
	      "storm: one completion per send (%llu of %llu)",
	      (unsigned long long)st.completions, (unsigned long long)st.sends);
out:
	tx_link_close(&l, tx);
	free(sh);
}

/* optmem_max below one record: a clear -ENOBUFS, not a hang. */
static void no_optmem(struct ktap *t, struct dmt_txbind *bind, struct dmt_dmabuf *buf)
{
	struct dmt_region r;
	struct dmt_tx *tx = NULL;
	struct dmt_err err;
	uint16_t port = 0;
	int lfd, fd, ret;
	ssize_t n = 0;
	char s[768];

	lfd = listen_in(NULL, "127.0.0.1", 0, &port);
	fd = tcp_socket_for("127.0.0.1");
	tx = lfd >= 0 && fd >= 0 ? dmt_tx_new(fd, bind, NULL, &err) : NULL;
	ret = tx ? tcp_connect(fd, "127.0.0.1", port) : -EINVAL;
	if (!ret)
		ret = write_sysctl(OPTMEM_PATH, 64);
	if (!ret)
		ret = dmt_tx_alloc(tx, 4096, &r);
	if (!ret)
		ret = dmt_dmabuf_fill(buf, r.off, r.len, 0, TX_PERIOD);
	if (!check(t, !ret, "no optmem: setup")) {
		printf("# %s\n", strerror(-ret));
		goto out;
	}
	n = dmt_tx_send(tx, &r, 1);
	printf("# dmt_tx_send: %zd: %s\n", n, dmt_err_str(dmt_tx_error(tx), s, sizeof(s)));
	check(t, n == -ENOBUFS && strstr(dmt_tx_error(tx)->fix, "net.core.optmem_max"),
	      "optmem_max below one record: -ENOBUFS naming net.core.optmem_max");
out:
	dmt_tx_free(tx);
	if (fd >= 0)
		close(fd);
	if (lfd >= 0)
		close(lfd);
}

/*
 * tx-reuse -i IFNAME -a ADDR -n NETNS [-m MIB]: the storm in devmem mode
 * from IFNAME (in this netns, which gets the tiny optmem_max) to a receiver
 * at ADDR in NETNS; a device whose transmit holds the pages (dmveth's DMA
 * engine copies on the peer's NAPI poll, retransmits re-read them) is where
 * an early reuse reaches the receiver.
 */
static int devmem_storm(const char *ifname, const struct path *p)
{
	DMT_OPTS(dmt_dmabuf_opts, bo, .provider = DMT_PROVIDER_UDMABUF, .size = WINDOW);
	DMT_OPTS(dmt_txbind_opts, po, .policy = DMT_MODE_DEVMEM);
	struct dmt_txbind *bind = NULL;
	struct dmt_dmabuf *buf;
	struct ktap t = { 0 };
	struct dmt_err err;
	long saved = read_sysctl(OPTMEM_PATH);
	int ret = saved > 0 ? write_sysctl(OPTMEM_PATH, OPTMEM_TINY) : -EIO;

	if (!check(&t, !ret, "devmem storm: net.core.optmem_max %d (was %ld)",
		   OPTMEM_TINY, saved))
		return ktap_exit(&t);
	buf = dmt_dmabuf_new(&bo, &err);
	bind = buf ? dmt_txbind_new(ifname, buf, &po, &err) : NULL;
	if (check(&t, bind, "udmabuf buffer, devmem binding on %s (id %u)", ifname,
		  bind ? dmt_txbind_id(bind) : 0))
		storm(&t, bind, buf, p);
	else
		diag_err("setup", &err);
	write_sysctl(OPTMEM_PATH, saved);
	dmt_txbind_free(bind);
	dmt_dmabuf_free(buf);
	return ktap_exit(&t);
}

int main(int argc, char **argv)
{
	DMT_OPTS(dmt_dmabuf_opts, bo, .provider = test_provider(), .size = WINDOW);
	DMT_OPTS(dmt_txbind_opts, po, .policy = DMT_MODE_ZEROCOPY);
	struct path lo = { .addr = "127.0.0.1", .total = TOTAL_MIB << 20 };
	struct path dev = { .total = TOTAL_MIB << 20 };
	struct dmt_txbind *bind = NULL;
	const char *ifname = NULL;
	struct dmt_dmabuf *buf;
	struct ktap t = { 0 };
	struct dmt_err err;
	long saved;
	int ret, c;

	while ((c = getopt(argc, argv, "i:a:n:m:")) != -1) {
		switch (c) {
		case 'i': ifname = optarg; break;
		case 'a': dev.addr = optarg; break;
		case 'n': dev.netns = optarg; break;
		case 'm': dev.total = strtoull(optarg, NULL, 0) << 20; break;
		default:
			fprintf(stderr, "usage: tx-reuse [-i IFNAME -a ADDR -n NETNS [-m MIB]]\n");
			return 2;
		}
	}
	if (ifname) {
		if (!dev.addr || !dev.total) {
			fprintf(stderr, "tx-reuse: -i needs -a ADDR (and -m > 0)\n");
			return 2;
		}
		return devmem_storm(ifname, &dev);
	}

	if (unshare(CLONE_NEWNET) < 0) {
		skip(&t, "tx-reuse", errno == EPERM ? "needs CAP_SYS_ADMIN for a private netns" :
			 "cannot create a network namespace");
		return ktap_exit(&t);
	}
	ret = lo_up();
	saved = read_sysctl(OPTMEM_PATH);
	if (!ret)
		ret = write_sysctl(OPTMEM_PATH, OPTMEM_TINY);
	if (!check(&t, !ret && saved > 0,
		   "private netns: lo up, net.core.optmem_max %d (was %ld)", OPTMEM_TINY, saved)) {
		printf("# %s\n", strerror(-ret));
		return ktap_exit(&t);
	}
	buf = dmt_dmabuf_new(&bo, &err);
	bind = buf ? dmt_txbind_new("lo", buf, &po, &err) : NULL;
	if (!check(&t, bind, "%s buffer, zerocopy binding on lo", dmt_provider_name(bo.provider))) {
		diag_err("setup", &err);
		goto out;
	}
	storm(&t, bind, buf, &lo);
	no_optmem(&t, bind, buf);
out:
	/* the namespace dies with this process; restore anyway */
	write_sysctl(OPTMEM_PATH, saved);
	dmt_txbind_free(bind);
	dmt_dmabuf_free(buf);
	return ktap_exit(&t);
}
