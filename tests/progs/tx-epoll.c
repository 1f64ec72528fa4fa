// SPDX-License-Identifier: MIT
/*
 * tx-epoll: many connections from one thread.  NCONN non-blocking
 * sockets over lo share one buffer, each engine owning its own window of
 * it; a single epoll loop refills and sends whichever connection can take
 * more, reads completions on EPOLLERR and waits on EPOLLOUT only while a
 * connection has bytes queued (dmt_tx_poll_events).  One receiver thread
 * per connection checks every byte.  Zerocopy, then copy mode.
 */
#include "tx-common.h"

#include <stdlib.h>
#include <sys/epoll.h>

#define NCONN 8
#define WIN (256u << 10)
#define PER_CONN (8u << 20)
#define CHUNK (24u << 10)

struct conn {
	int fd;
	struct dmt_tx *tx;
	struct rx rx;
	uint64_t pos;		/* stream bytes handed to dmt_tx_send */
	bool rx_started, done;
};

/* Fill and send until the socket or the window is full; 1 when finished. */
static int feed(struct conn *c, struct dmt_dmabuf *buf)
{
	for (;;) {
		struct dmt_region r;
		size_t len;
		ssize_t n;
		int ret;

		dmt_tx_poll(c->tx, 0);
		if (dmt_tx_pending(c->tx)) {
			n = dmt_tx_flush(c->tx);
			if (n < 0)
				return n;
			if (dmt_tx_pending(c->tx))
				return 0;	/* socket full: EPOLLOUT */
		}
		if (c->pos == PER_CONN)
			return 1;
		len = PER_CONN - c->pos < CHUNK ? PER_CONN - c->pos : CHUNK;
		ret = dmt_tx_alloc(c->tx, len, &r);
		if (ret == -EAGAIN)
			return 0;		/* window full: EPOLLERR brings completions */
		if (ret < 0)
			return ret;
		ret = dmt_dmabuf_fill(buf, r.off, r.len, c->pos, TX_PERIOD);
		if (ret < 0)
			return ret;
		n = dmt_tx_send(c->tx, &r, 1);
		if (n < 0)
			return n;
		c->pos += len;
	}
}

static int arm(int ep, struct conn *c, int op)
{
	struct epoll_event ev = { .data.ptr = c };

	ev.events = dmt_tx_poll_events(c->tx);	/* POLLOUT/POLLERR == EPOLL* */
	return epoll_ctl(ep, op, c->fd, &ev) < 0 ? -errno : 0;
}

/* Feed c; when it has sent everything, drain it and take it off epoll. */
static int step(int ep, struct conn *c, struct dmt_dmabuf *buf, unsigned *left)
{
	int ret = feed(c, buf);

	if (ret < 0)
		return ret;
	if (ret == 1 && !dmt_tx_pending(c->tx)) {
		ret = dmt_tx_drain(c->tx, 10000);
		if (ret < 0)
			return ret;
		c->done = true;
		(*left)--;
		shutdown(c->fd, SHUT_WR);
		return epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL) < 0 ? -errno : 0;
	}
	return arm(ep, c, EPOLL_CTL_MOD);
}

static void run_mode(struct ktap *t, struct dmt_dmabuf *buf, enum dmt_mode mode)
{
	DMT_OPTS(dmt_txbind_opts, po, .policy = mode);
	const char *name = dmt_mode_name(mode);
	struct conn c[NCONN];
	struct dmt_txbind *bind;
	unsigned i, left = NCONN, loops = 0;
	uint64_t eagain = 0, total = 0;
	struct dmt_err err;
	int ep = -1, ret = 0;
	bool ok = true;

	memset(c, 0, sizeof(c));
	for (i = 0; i < NCONN; i++)
		c[i].fd = c[i].rx.lfd = -1;
	bind = dmt_txbind_new("lo", buf, &po, &err);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (!check(t, bind && ep >= 0, "%s: binding and epoll", name)) {
		diag_err("dmt_txbind_new", &err);
		goto out;
	}
	for (i = 0; i < NCONN && !ret; i++) {
		DMT_OPTS(dmt_tx_opts, to, .window_off = i * WIN, .window_len = WIN);
		uint16_t port = 0;
		int fl, sndbuf = 8192;	/* small: EAGAIN must happen */

		c[i].rx.bad = -1;
		c[i].rx.lfd = listen_in(NULL, "127.0.0.1", 0, &port);
		c[i].fd = tcp_socket_for("127.0.0.1");
		if (c[i].fd >= 0)
			setsockopt(c[i].fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
		c[i].tx = c[i].fd >= 0 ? dmt_tx_new(c[i].fd, bind, &to, &err) : NULL;
		ret = c[i].tx && c[i].rx.lfd >= 0 ? rx_start(&c[i].rx) : -EINVAL;
		c[i].rx_started = !ret;
		if (!ret)
			ret = tcp_connect(c[i].fd, "127.0.0.1", port);
		fl = fcntl(c[i].fd, F_GETFL);
		if (!ret && fcntl(c[i].fd, F_SETFL, fl | O_NONBLOCK) < 0)
			ret = -errno;
		if (!ret)
			ret = arm(ep, &c[i], EPOLL_CTL_ADD);
	}
	if (!check(t, !ret, "%s: %d non-blocking connections, windows of %u KiB in one buffer",
		   name, NCONN, WIN >> 10)) {
		diag_err("setup", &err);
		goto stop;
	}
	/* kick every connection once, then let epoll drive */
	for (i = 0; i < NCONN; i++) {
		ret = step(ep, &c[i], buf, &left);
		if (ret < 0)
			goto stop;
	}
	while (left) {
		struct epoll_event ev[NCONN];
		int n = epoll_wait(ep, ev, NCONN, 10000);

		if (n <= 0) {
			ret = n < 0 ? -errno : -ETIMEDOUT;
			break;
		}
		loops++;
		for (int k = 0; k < n; k++) {
			struct conn *cc = ev[k].data.ptr;

			if (cc->done)
				continue;
			ret = step(ep, cc, buf, &left);
			if (ret < 0)
				goto stop;
		}
	}
stop:
	if (!check(t, !ret && !left, "%s: one thread sent %u x %u MiB (%u epoll wake-ups)",
		   name, NCONN, PER_CONN >> 20, loops))
		printf("# %s (%u connections unfinished)\n", strerror(-ret), left);
	for (i = 0; i < NCONN; i++) {
		struct dmt_tx_stats st;

		if (c[i].fd >= 0)
			shutdown(c[i].fd, c[i].done ? SHUT_WR : SHUT_RDWR);
		if (c[i].rx.lfd >= 0)
			shutdown(c[i].rx.lfd, SHUT_RDWR);	/* wakes an accept */
		if (c[i].tx) {
			dmt_tx_get_stats(c[i].tx, &st);
			eagain += st.eagain;
		}
		if (c[i].rx_started) {
			rx_join(&c[i].rx);
			total += c[i].rx.bytes;
			ok &= !c[i].rx.err && c[i].rx.bytes == PER_CONN && c[i].rx.bad < 0;
		}
	}
	check(t, ok, "%s: every receiver validated its %u MiB (%llu bytes in all)",
	      name, PER_CONN >> 20, (unsigned long long)total);
	check(t, eagain > 0, "%s: the sockets filled up and EAGAIN was absorbed (%llu times)",
	      name, (unsigned long long)eagain);
out:
	for (i = 0; i < NCONN; i++) {
		dmt_tx_free(c[i].tx);
		if (c[i].fd >= 0)
			close(c[i].fd);
		if (c[i].rx.lfd >= 0)
			close(c[i].rx.lfd);
	}
	if (ep >= 0)
		close(ep);
	dmt_txbind_free(bind);
}

int main(void)
{
	DMT_OPTS(dmt_dmabuf_opts, bo, .provider = test_provider(), .size = NCONN * WIN);
	struct ktap t = { 0 };
	struct dmt_dmabuf *buf;
	struct dmt_err err;

	buf = dmt_dmabuf_new(&bo, &err);
	if (!check(&t, buf, "%s buffer of %u KiB", dmt_provider_name(bo.provider),
		   NCONN * WIN >> 10)) {
		diag_err("dmt_dmabuf_new", &err);
		return ktap_exit(&t);
	}
	run_mode(&t, buf, DMT_MODE_ZEROCOPY);
	run_mode(&t, buf, DMT_MODE_COPY);
	dmt_dmabuf_free(buf);
	return ktap_exit(&t);
}
