// SPDX-License-Identifier: MIT
/*
 * tx-devmem: the 0.2 send API in devmem mode, on a NIC with netmem TX
 * (dmveth in the VM).  Requests whose runs alternate between two udmabufs
 * bound with bind-tx, sent to a plain receiver in the peer's network
 * namespace that checks every byte; the socket options dmt_tx_new sets in
 * devmem mode (SO_ZEROCOPY, SO_BINDTODEVICE), and what it leaves when
 * SO_BINDTODEVICE fails (a socket bound elsewhere, CAP_NET_RAW dropped):
 * the socket as it was.
 *
 *   tx-devmem -i IFNAME -a PEER_ADDR -n PEER_NETNS [-m MiB]
 */
#include "tx-common.h"

#include <net/if.h>
#include <poll.h>
#include <stdlib.h>

#define SLOTS 16
#define MSG (128 << 10)

int main(int argc, char **argv)
{
	DMT_OPTS(dmt_dmabuf_opts, bo, .provider = DMT_PROVIDER_UDMABUF, .size = SLOTS * MSG / 2);
	DMT_OPTS(dmt_txbind_opts, po, .policy = DMT_MODE_DEVMEM);
	DMT_OPTS(dmt_tx_opts, to, .max_requests = SLOTS, .max_vecs = 2);
	struct dmt_tx_stats_v2 st = { .sz = sizeof(st) };
	const char *ifname = NULL, *peer = NULL, *netns = NULL;
	struct dmt_dmabuf *buf[2] = { 0 };
	struct dmt_txbind *bind[2] = { 0 };
	struct ktap t = { 0 };
	struct tx_link l = TX_LINK_INIT;
	struct dmt_tx *tx = NULL;
	struct dmt_err err = { 0 };
	uint64_t total = 16 << 20, pos = 0, seq = 0, done = 0;
	bool busy[SLOTS] = { 0 };
	char dev[IFNAMSIZ] = "";
	socklen_t dlen = sizeof(dev), zl = sizeof(int);
	int fd = -1, c, ret = 0, zc = 0, fds = count_fds();

	while ((c = getopt(argc, argv, "i:a:n:m:")) != -1) {
		switch (c) {
		case 'i': ifname = optarg; break;
		case 'a': peer = optarg; break;
		case 'n': netns = optarg; break;
		case 'm': total = strtoull(optarg, NULL, 0) << 20; break;
		default: return 2;
		}
	}
	if (!ifname || !peer || !netns) {
		fprintf(stderr, "usage: tx-devmem -i IFNAME -a PEER_ADDR -n PEER_NETNS [-m MiB]\n");
		return 2;
	}
	printf("TAP version 13\n");
	for (int i = 0; i < 2; i++) {
		buf[i] = dmt_dmabuf_new(&bo, &err);
		bind[i] = buf[i] ? dmt_txbind_new(ifname, buf[i], &po, &err) : NULL;
	}
	if (!check(&t, bind[0] && bind[1], "two udmabufs bound with bind-tx on %s (ids %u, %u)",
		   ifname, dmt_txbind_id(bind[0]), dmt_txbind_id(bind[1]))) {
		diag_err("bind", &err);
		goto out;
	}
	if (!tx_link_open(&l, netns, peer, 0))
		tx = dmt_tx_new(l.fd, bind[0], &to, &err);
	if (!check(&t, tx && !tx_link_connect(&l, peer) &&
		   !fcntl(l.fd, F_SETFL, O_NONBLOCK), "devmem engine, connected to %s", peer)) {
		diag_err("engine", &err);
		goto out;
	}
	getsockopt(l.fd, SOL_SOCKET, SO_BINDTODEVICE, dev, &dlen);
	getsockopt(l.fd, SOL_SOCKET, SO_ZEROCOPY, &zc, &zl);
	check(&t, !strcmp(dev, ifname) && zc == 1,
	      "devmem mode: SO_BINDTODEVICE %s (\"%s\"), SO_ZEROCOPY on", ifname, dev);

	/* messages of MSG bytes: first half from buffer 0, second from 1 */
	while (pos < total || done < seq) {
		uint64_t ck[SLOTS];
		int n;

		for (unsigned s = 0; s < SLOTS && pos < total; s++) {
			size_t off = (size_t)s * MSG / 2, half = MSG / 2;

			if (busy[s])
				continue;
			dmt_dmabuf_fill(buf[0], off, half, pos, TX_PERIOD);
			dmt_dmabuf_fill(buf[1], off, half, pos + half, TX_PERIOD);
			ret = dmt_tx_submit(tx, (struct dmt_txvec[]){ { bind[0], off, half },
								 { bind[1], off, half } },
					    2, s);
			if (ret == -EAGAIN)
				break;
			if (ret < 0)
				goto fail;
			busy[s] = true;
			pos += MSG;
			seq++;
		}
		ret = dmt_tx_progress(tx);
		if (ret < 0)
			goto fail;
		n = dmt_tx_reap(tx, ck, SLOTS);
		for (int i = 0; i < n; i++) {
			busy[ck[i]] = false;
			/* poison: a region reported early shows at the receiver */
			dmt_dmabuf_fill(buf[0], ck[i] * MSG / 2, MSG / 2, 0, 2);
			dmt_dmabuf_fill(buf[1], ck[i] * MSG / 2, MSG / 2, 0, 2);
		}
		done += n;
		if (!n && !ret)
			poll(&(struct pollfd){ .fd = l.fd, .events = dmt_tx_poll_events(tx) }, 1, 1000);
	}
	ret = 0;
fail:
	if (ret)
		diag_err("send", dmt_tx_error(tx));
	dmt_tx_query_stats(tx, &st);
	check(&t, ret == 0 && done == seq && st.bytes == total && st.completions == st.sends &&
	      st.sends >= 2 * seq,
	      "%llu requests of two bindings (%llu bytes): %llu sendmsgs, all completed",
	      (unsigned long long)seq, (unsigned long long)st.bytes,
	      (unsigned long long)st.sends);
	tx_link_finish(&l);
	check(&t, l.rx.err == 0 && l.rx.bad < 0 && l.rx.bytes == total,
	      "the receiver validated every byte (%llu of %llu)", (unsigned long long)l.rx.bytes,
	      (unsigned long long)total);
	tx_link_close(&l, tx);
	tx = NULL;

	/* dmt_tx_new failing at SO_BINDTODEVICE leaves the socket as it was */
	fd = tcp_socket_for(peer);
	ret = setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, "lo", 3);
	ret = ret ?: drop_cap(CAP_NET_RAW);
	if (ret) {
		skip(&t, "dmt_tx_new undoes SO_ZEROCOPY", "cannot bind to lo and drop CAP_NET_RAW");
	} else {
		tx = dmt_tx_new(fd, bind[0], &to, &err);
		diag_err("bound elsewhere", &err);
		zc = -1;
		zl = sizeof(zc);
		dlen = sizeof(dev);
		getsockopt(fd, SOL_SOCKET, SO_ZEROCOPY, &zc, &zl);
		getsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, dev, &dlen);
		check(&t, !tx && err.code == -EPERM && zc == 0 && !strcmp(dev, "lo"),
		      "socket bound to lo, no CAP_NET_RAW: -EPERM, SO_ZEROCOPY back off, still "
		      "bound to \"%s\"", dev);
	}
out:
	tx_link_close(&l, tx);
	if (fd >= 0)
		close(fd);
	for (int i = 0; i < 2; i++) {
		dmt_txbind_free(bind[i]);
		dmt_dmabuf_free(buf[i]);
	}
	check(&t, count_fds() == fds, "no fd leaked (%d open, %d at start)", count_fds(), fds);
	return ktap_exit(&t);
}
