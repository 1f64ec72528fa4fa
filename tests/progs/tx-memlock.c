// SPDX-License-Identifier: MIT
/*
 * tx-memlock: MSG_ZEROCOPY from host memory accounts every sendmsg's pages
 * against RLIMIT_MEMLOCK (mm_account_pinned_pages) unless the process has
 * CAP_IPC_LOCK, which root has: so the test drops CAP_IPC_LOCK (capset)
 * and lowers the limit.  With 64 KiB, a 1 MiB region (ring) and a 512 KiB
 * request are sent in sendmsgs the limit allows and every byte arrives;
 * with 0, the send fails with -ENOBUFS naming RLIMIT_MEMLOCK, not
 * optmem_max.
 */
#include "tx-common.h"

#include <poll.h>
#include <sys/resource.h>

#define SIZE (1 << 20)

static int set_memlock(rlim_t cur)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_MEMLOCK, &rl))
		return -errno;
	rl.rlim_cur = cur;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < cur)
		rl.rlim_max = cur;
	return setrlimit(RLIMIT_MEMLOCK, &rl) ? -errno : 0;
}

int main(void)
{
	DMT_OPTS(dmt_dmabuf_opts, bo, .provider = DMT_PROVIDER_HOST, .size = SIZE);
	DMT_OPTS(dmt_txbind_opts, zc, .policy = DMT_MODE_ZEROCOPY);
	struct dmt_tx_stats_v2 st = { .sz = sizeof(st) };
	struct ktap t = { 0 };
	struct dmt_dmabuf *buf;
	struct dmt_txbind *bind = NULL;
	struct dmt_tx *tx = NULL;
	struct dmt_region r;
	struct tx_link l = TX_LINK_INIT;
	struct dmt_err err;
	uint64_t cookie = 0;
	int ret, fds = count_fds();
	ssize_t n;

	printf("TAP version 13\n");
	ret = drop_cap(CAP_IPC_LOCK);
	if (ret || has_cap(CAP_IPC_LOCK)) {
		skip(&t, "RLIMIT_MEMLOCK and zerocopy", "cannot drop CAP_IPC_LOCK (capset)");
		return ktap_exit(&t);
	}
	ret = set_memlock(64 << 10);
	check(&t, ret == 0, "CAP_IPC_LOCK dropped, RLIMIT_MEMLOCK 64 KiB");

	buf = dmt_dmabuf_new(&bo, &err);
	bind = buf ? dmt_txbind_new("lo", buf, &zc, &err) : NULL;
	if (bind && !tx_link_open(&l, NULL, "127.0.0.1", 0) && !tx_link_connect(&l, "127.0.0.1"))
		tx = dmt_tx_new(l.fd, bind, NULL, &err);
	if (!check(&t, tx != NULL, "zerocopy engine on lo, 1 MiB host buffer")) {
		diag_err("setup", &err);
		goto out;
	}
	dmt_tx_query_stats(tx, &st);
	check(&t, st.max_send && st.max_send <= (64 << 10) - 8192,
	      "sendmsg capped at %llu bytes: its pages + 2 fit 64 KiB",
	      (unsigned long long)st.max_send);

	ret = dmt_tx_alloc(tx, SIZE, &r);
	if (!ret)
		ret = dmt_dmabuf_fill(buf, r.off, r.len, 0, TX_PERIOD);
	n = ret ? ret : dmt_tx_send(tx, &r, 1);
	ret = n < 0 ? (int)n : dmt_tx_drain(tx, 10000);
	if (ret)
		diag_err("ring", dmt_tx_error(tx));
	dmt_tx_query_stats(tx, &st);
	check(&t, ret == 0 && st.bytes == SIZE && st.completions == st.sends,
	      "a 1 MiB region (one dmt_tx_send) goes out in %llu sendmsgs, all completed",
	      (unsigned long long)st.sends);

	/* a request of 512 KiB, bytes [1 MiB, 1.5 MiB) of the stream */
	dmt_dmabuf_fill(buf, 0, SIZE / 2, SIZE, TX_PERIOD);
	ret = dmt_tx_submit(tx, &(struct dmt_txvec){ bind, 0, SIZE / 2 }, 1, 42);
	for (int i = 0; !ret && i < 1000 && !dmt_tx_reap(tx, &cookie, 1); i++) {
		ret = dmt_tx_progress(tx);
		ret = ret < 0 ? ret : 0;
		if (!ret)
			poll(&(struct pollfd){ .fd = l.fd, .events = dmt_tx_poll_events(tx) }, 1, 100);
	}
	if (ret)
		diag_err("request", dmt_tx_error(tx));
	check(&t, ret == 0 && cookie == 42, "a 512 KiB request is done (cookie %llu)",
	      (unsigned long long)cookie);
	tx_link_finish(&l);
	check(&t, l.rx.err == 0 && l.rx.bad < 0 && l.rx.bytes == SIZE + SIZE / 2,
	      "the receiver validated all %d bytes (got %llu)", SIZE + SIZE / 2,
	      (unsigned long long)l.rx.bytes);
	tx_link_close(&l, tx);
	tx = NULL;

	/* RLIMIT_MEMLOCK 0: nothing can be pinned */
	set_memlock(0);
	if (!tx_link_open(&l, NULL, "127.0.0.1", 0) && !tx_link_connect(&l, "127.0.0.1"))
		tx = dmt_tx_new(l.fd, bind, NULL, &err);
	ret = tx ? dmt_tx_alloc(tx, 64 << 10, &r) : -1;
	n = ret ? ret : dmt_tx_send(tx, &r, 1);
	if (tx)
		diag_err("memlock 0", dmt_tx_error(tx));
	check(&t, n == -ENOBUFS && strstr(dmt_tx_error(tx)->what, "RLIMIT_MEMLOCK") &&
	      !strstr(dmt_tx_error(tx)->what, "optmem") &&
	      strstr(dmt_tx_error(tx)->fix, "ulimit -l"),
	      "RLIMIT_MEMLOCK 0: -ENOBUFS naming RLIMIT_MEMLOCK, not optmem_max (%zd)", n);
	if (tx)
		tx_link_finish(&l);
out:
	tx_link_close(&l, tx);
	dmt_txbind_free(bind);
	dmt_dmabuf_free(buf);
	check(&t, count_fds() == fds, "no fd leaked (%d open, %d at start)", count_fds(), fds);
	return ktap_exit(&t);
}
