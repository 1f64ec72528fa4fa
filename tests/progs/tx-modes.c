// SPDX-License-Identifier: MIT
/*
 * tx-modes: the send engine's zerocopy and copy modes end to end, a
 * receiver thread checking every byte; the auto policy's fallback and its
 * reason; devmem refused with a clear error; region checks.
 *
 * usage: tx-modes [-i IFNAME -a PEER_ADDR -n PEER_NETNS] [-m MIB]
 * Default: over lo (127.0.0.1) in this network namespace.  With -n the
 * receiver listens on PEER_ADDR inside /run/netns/PEER_NETNS and the
 * sender leaves through IFNAME (a veth end: see tests/host/tx.t).
 */
#include "tx-common.h"

#include <net/if.h>
#include <stdlib.h>

#define WINDOW (1u << 20)

struct opt {
	const char *ifname, *addr, *netns;
	uint64_t total;
};

/* Region sizes that wander: odd, small and large, wrapping the window. */
static size_t next_len(uint32_t *seed)
{
	*seed = *seed * 1103515245 + 12345;
	switch ((*seed >> 16) % 4) {
	case 0:
		return 1 + (*seed >> 8) % 512;
	case 1:
		return 4096;
	default:
		return 1 + (*seed >> 4) % (96 << 10);
	}
}

/* Send total bytes of the pattern through tx; 0 or the failing -errno. */
static int pump(struct dmt_tx *tx, struct dmt_dmabuf *buf, uint64_t total)
{
	uint32_t seed = 42;
	uint64_t pos = 0;
	int ret;

	ret = tx_pump(tx, buf, &pos, total, 0, next_len, &seed);
	return ret ? ret : dmt_tx_drain(tx, 20000);
}

static void transfer(struct ktap *t, const struct opt *o, enum dmt_mode mode)
{
	DMT_OPTS(dmt_dmabuf_opts, bo, .provider = test_provider(), .size = WINDOW);
	DMT_OPTS(dmt_txbind_opts, po, .policy = mode);
	const char *name = dmt_mode_name(mode);
	struct tx_link l = TX_LINK_INIT;
	struct dmt_txbind *bind = NULL;
	struct dmt_dmabuf *buf = NULL;
	struct dmt_tx_stats st = { 0 };
	struct dmt_tx *tx = NULL;
	struct timespec t0;
	struct dmt_err err;
	int ret;
	double s;

	buf = dmt_dmabuf_new(&bo, &err);
	if (!check(t, buf, "%s over %s: %s buffer", name, o->ifname,
		   dmt_provider_name(bo.provider))) {
		diag_err("dmt_dmabuf_new", &err);
		return;
	}
	bind = dmt_txbind_new(o->ifname, buf, &po, &err);
	if (!check(t, bind && dmt_txbind_mode(bind) == mode,
		   "%s over %s: binding in %s mode", name, o->ifname, name)) {
		if (!bind)
			diag_err("dmt_txbind_new", &err);
		goto out;
	}
	ret = tx_link_open(&l, o->netns, o->addr, 0);
	if (ret) {
		check(t, false, "%s over %s: sockets", name, o->ifname);
		printf("# listen/socket: %s\n", strerror(-ret));
		goto out;
	}
	/*
	 * SO_BINDTODEVICE works before connect (best: the route is chosen
	 * once) and after it (the cached route is reset): zerocopy attaches
	 * the engine before, copy after.
	 */
	if (mode == DMT_MODE_ZEROCOPY) {
		tx = dmt_tx_new(l.fd, bind, NULL, &err);
		if (!check(t, tx, "%s over %s: dmt_tx_new before connect", name, o->ifname)) {
			diag_err("dmt_tx_new", &err);
			goto out;
		}
	}
	ret = tx_link_connect(&l, o->addr);
	if (!check(t, !ret, "%s over %s: connect to %s port %u", name, o->ifname,
		   o->addr, l.port)) {
		printf("# %s\n", strerror(-ret));
		goto out;
	}
	if (mode != DMT_MODE_ZEROCOPY) {
		tx = dmt_tx_new(l.fd, bind, NULL, &err);
		if (!check(t, tx, "%s over %s: dmt_tx_new after connect", name, o->ifname)) {
			diag_err("dmt_tx_new", &err);
			goto out;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ret = pump(tx, buf, o->total);
	s = secs_since(&t0);
	if (!check(t, !ret, "%s over %s: %llu bytes sent and every send completed",
		   name, o->ifname, (unsigned long long)o->total))
		diag_err("send", dmt_tx_error(tx));
	tx_link_finish(&l);
	dmt_tx_get_stats(tx, &st);
	printf("# %s over %s: %llu bytes in %.2f s (%.0f MB/s), %llu sends (%llu partial), "
	       "%llu completions in %llu notifications, %llu copied, %llu ENOBUFS, %llu EAGAIN\n",
	       name, o->ifname, (unsigned long long)st.bytes, s, s > 0 ? st.bytes / s / 1e6 : 0,
	       (unsigned long long)st.sends, (unsigned long long)st.partial,
	       (unsigned long long)st.completions, (unsigned long long)st.notifications,
	       (unsigned long long)st.copied, (unsigned long long)st.enobufs,
	       (unsigned long long)st.eagain);
	if (l.rx.err)
		printf("# receiver: %s\n", strerror(-l.rx.err));
	if (l.rx.bad >= 0)
		printf("# first wrong byte at stream position %lld\n", (long long)l.rx.bad);
	check(t, !l.rx.err && l.rx.bytes == o->total && l.rx.bad < 0,
	      "%s over %s: receiver validated all %llu bytes (got %llu)", name, o->ifname,
	      (unsigned long long)o->total, (unsigned long long)l.rx.bytes);
	if (mode == DMT_MODE_ZEROCOPY)
		check(t, st.completions == st.sends && !st.inflight_bytes,
		      "%s over %s: one completion per send (%llu of %llu), none in flight",
		      name, o->ifname, (unsigned long long)st.completions,
		      (unsigned long long)st.sends);
	else
		check(t, !st.completions && !st.inflight_bytes,
		      "%s over %s: no completions, nothing in flight", name, o->ifname);
out:
	tx_link_close(&l, tx);
	dmt_txbind_free(bind);
	dmt_dmabuf_free(buf);
}

/* Auto policy and devmem policy against an interface without netmem TX. */
static void policies(struct ktap *t, const struct opt *o)
{
	DMT_OPTS(dmt_dmabuf_opts, bo, .provider = test_provider(), .size = WINDOW);
	DMT_OPTS(dmt_txbind_opts, auto_o, .policy = DMT_MODE_AUTO);
	DMT_OPTS(dmt_txbind_opts, dev_o, .policy = DMT_MODE_DEVMEM);
	struct dmt_txbind *bind;
	struct dmt_dmabuf *buf;
	struct dmt_err err;
	char s[768];

	buf = dmt_dmabuf_new(&bo, &err);
	if (!buf) {
		check(t, false, "policies on %s: buffer", o->ifname);
		diag_err("dmt_dmabuf_new", &err);
		return;
	}
	bind = dmt_txbind_new(o->ifname, buf, &auto_o, &err);
	if (bind) {
		printf("# auto on %s: mode %s, reason: %s\n", o->ifname,
		       dmt_mode_name(dmt_txbind_mode(bind)), dmt_txbind_fallback_reason(bind));
		check(t, dmt_txbind_mode(bind) == DMT_MODE_ZEROCOPY &&
		      dmt_txbind_fallback_reason(bind)[0] && !dmt_txbind_id(bind),
		      "auto on %s with a %s buffer falls back to zerocopy, with a reason",
		      o->ifname, dmt_provider_name(bo.provider));
		dmt_txbind_free(bind);
	} else {
		check(t, false, "auto on %s with a %s buffer falls back to zerocopy, with a reason",
		      o->ifname, dmt_provider_name(bo.provider));
		diag_err("dmt_txbind_new", &err);
	}

	bind = dmt_txbind_new(o->ifname, buf, &dev_o, &err);
	printf("# devmem on %s: %s\n", o->ifname,
	       bind ? "bound?!" : dmt_err_str(&err, s, sizeof(s)));
	check(t, !bind && err.code < 0 && err.what[0],
	      "devmem policy on %s refused with an error naming the step", o->ifname);
	dmt_txbind_free(bind);

	bind = dmt_txbind_new("dmt-no-such0", buf, &auto_o, &err);
	printf("# unknown interface: %s\n", bind ? "bound?!" : dmt_err_str(&err, s, sizeof(s)));
	check(t, !bind && err.code == -ENODEV && strstr(err.what, "dmt-no-such0"),
	      "unknown interface: -ENODEV naming it");
	dmt_txbind_free(bind);
	dmt_dmabuf_free(buf);
}

/* Bad regions are refused before anything is queued. */
static void regions(struct ktap *t, const struct opt *o)
{
	DMT_OPTS(dmt_dmabuf_opts, bo, .provider = DMT_PROVIDER_HOST, .size = WINDOW);
	DMT_OPTS(dmt_txbind_opts, po, .policy = DMT_MODE_COPY);
	DMT_OPTS(dmt_tx_opts, to, .window_off = 4096, .window_len = 65536);
	struct dmt_region r, r2, bad;
	struct dmt_txbind *bind;
	struct dmt_dmabuf *buf;
	struct dmt_tx *tx;
	struct dmt_err err;
	int fd, ok = 1;

	buf = dmt_dmabuf_new(&bo, &err);
	bind = buf ? dmt_txbind_new(o->ifname, buf, &po, &err) : NULL;
	fd = tcp_socket_for("127.0.0.1");
	tx = bind && fd >= 0 ? dmt_tx_new(fd, bind, &to, &err) : NULL;
	if (!check(t, tx, "regions: engine on an unconnected socket")) {
		diag_err("setup", &err);
		goto out;
	}
	ok &= dmt_tx_alloc(tx, 0, &r) == -EINVAL;
	ok &= dmt_tx_alloc(tx, 65537, &r) == -EINVAL;
	check(t, ok, "alloc of 0 bytes or more than the window: -EINVAL");

	ok = !dmt_tx_alloc(tx, 40000, &r) && r.off == 4096 && r.len == 40000;
	ok &= dmt_tx_alloc(tx, 30000, &r2) == -EAGAIN;
	ok &= !dmt_tx_alloc(tx, 20000, &r2) && r2.off == 4096 + 40000;
	check(t, ok, "alloc hands out the window in order, -EAGAIN when full");

	bad = (struct dmt_region){ .off = r.off, .len = 0 };
	ok = dmt_tx_send(tx, &bad, 1) == -EINVAL;
	bad = (struct dmt_region){ .off = WINDOW - 10, .len = 20 };
	ok &= dmt_tx_send(tx, &bad, 1) == -ERANGE;
	bad = (struct dmt_region){ .off = 0, .len = 100 };
	ok &= dmt_tx_send(tx, &bad, 1) == -ERANGE;
	ok &= dmt_tx_send(tx, &r2, 1) == -EINVAL;
	if (!ok)
		diag_err("last refusal", dmt_tx_error(tx));
	check(t, ok && dmt_tx_pending(tx) == 0,
	      "send refuses len 0 (-EINVAL), outside buffer/window (-ERANGE), out of order (-EINVAL)");

	ok = !dmt_tx_unalloc(tx, &r2) && dmt_tx_unalloc(tx, &r) == -EINVAL;
	ok &= !dmt_tx_alloc(tx, 20000, &r2) && r2.off == 4096 + 40000;
	check(t, ok, "unalloc gives back the latest reservation only");
out:
	dmt_tx_free(tx);
	if (fd >= 0)
		close(fd);
	dmt_txbind_free(bind);
	dmt_dmabuf_free(buf);
}

int main(int argc, char **argv)
{
	struct opt o = { .ifname = "lo", .addr = "127.0.0.1", .total = 64ull << 20 };
	struct ktap t = { 0 };
	int c;

	while ((c = getopt(argc, argv, "i:a:n:m:")) != -1) {
		switch (c) {
		case 'i': o.ifname = optarg; break;
		case 'a': o.addr = optarg; break;
		case 'n': o.netns = optarg; break;
		case 'm': o.total = strtoull(optarg, NULL, 0) << 20; break;
		default:
			fprintf(stderr, "usage: tx-modes [-i IFNAME -a PEER_ADDR -n PEER_NETNS] [-m MIB]\n");
			return 2;
		}
	}
	if (!if_nametoindex(o.ifname)) {
		skip(&t, "tx-modes", "no such interface");
		return ktap_exit(&t);
	}
	transfer(&t, &o, DMT_MODE_ZEROCOPY);
	transfer(&t, &o, DMT_MODE_COPY);
	policies(&t, &o);
	if (!o.netns)
		regions(&t, &o);
	return ktap_exit(&t);
}
