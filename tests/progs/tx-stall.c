// SPDX-License-Identifier: MIT
/*
 * tx-stall: waiting without spinning, and signals.  The receiver accepts
 * but does not read until released, so the sender stalls with its sends
 * in flight (max_inflight reached) on a socket that is still writable.
 * Then, for the ring (dmt_tx_alloc/send) and for requests (dmt_tx_submit),
 * a non-blocking loop sleeping in poll on dmt_tx_poll_events must wake
 * fewer than 100 times a second, and a non-blocking dmt_tx_drain with a
 * timeout must not burn CPU.  Last, blocking calls stalled the same way
 * (sendmsg on a full socket in copy mode, a wait for completions in
 * zerocopy mode) return -EINTR (or the bytes sent) when a signal whose
 * handler has no SA_RESTART arrives, as read(2) does.  Every byte is
 * validated once the receiver is released.
 */
#include "tx-common.h"

#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>

#define WIN (256 << 10)
#define CHUNK (4 << 10)

/* A receiver that holds off reading until released. */
struct grx {
	struct rx rx;
	int gate[2];
};

static void *grx_main(void *arg)
{
	struct grx *g = arg;
	int fd = accept(g->rx.lfd, NULL, NULL);
	unsigned char buf[65536];
	char c;

	g->rx.bad = -1;
	if (fd < 0) {
		g->rx.err = -errno;
		return NULL;
	}
	while (read(g->gate[0], &c, 1) < 0 && errno == EINTR)
		;
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		ssize_t at;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			g->rx.err = n < 0 ? -errno : 0;
			break;
		}
		at = dmt_pattern_check(buf, n, g->rx.bytes, TX_PERIOD);
		if (at >= 0 && g->rx.bad < 0)
			g->rx.bad = g->rx.bytes + at;
		g->rx.bytes += n;
	}
	close(fd);
	return NULL;
}

static void grx_release(struct grx *g)
{
	if (g->gate[1] >= 0) {
		(void)!write(g->gate[1], "x", 1);
		close(g->gate[1]);
		g->gate[1] = -1;
	}
}

struct conn {
	struct dmt_dmabuf *buf;
	struct dmt_txbind *bind;
	struct dmt_tx *tx;
	struct grx g;
	int fd;
	uint64_t pos;		/* stream bytes queued */
};

static bool conn_open(struct conn *c, enum dmt_mode mode, bool nonblock)
{
	DMT_OPTS(dmt_dmabuf_opts, bo, .provider = DMT_PROVIDER_HOST, .size = WIN);
	DMT_OPTS(dmt_txbind_opts, po, .policy = mode);
	DMT_OPTS(dmt_tx_opts, to, .max_inflight = 4, .max_requests = 32);
	struct dmt_err err = { 0 };
	uint16_t port = 0;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->g.gate[0] = c->g.gate[1] = -1;
	c->g.rx.lfd = listen_in(NULL, "127.0.0.1", 8192, &port);
	if (c->g.rx.lfd < 0 || pipe(c->g.gate) < 0 ||
	    pthread_create(&c->g.rx.thread, NULL, grx_main, &c->g))
		return false;
	c->buf = dmt_dmabuf_new(&bo, &err);
	c->bind = c->buf ? dmt_txbind_new("lo", c->buf, &po, &err) : NULL;
	c->fd = tcp_socket_for("127.0.0.1");
	if (!c->bind || c->fd < 0 ||
	    (mode == DMT_MODE_COPY &&
	     setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &(int){ 8192 }, sizeof(int))) ||
	    tcp_connect(c->fd, "127.0.0.1", port) ||
	    (nonblock && fcntl(c->fd, F_SETFL, O_NONBLOCK)))
		return false;
	c->tx = dmt_tx_new(c->fd, c->bind, &to, &err);
	if (!c->tx)
		diag_err("dmt_tx_new", &err);
	return c->tx != NULL;
}

/* Release the receiver, drain, and check every byte arrived. */
static void conn_close(struct ktap *t, struct conn *c, const char *name)
{
	int ret = -1;

	grx_release(&c->g);
	if (c->tx) {
		ret = dmt_tx_drain(c->tx, 10000);
		if (ret)
			diag_err("drain", dmt_tx_error(c->tx));
	}
	if (c->fd >= 0)
		shutdown(c->fd, SHUT_WR);
	if (c->g.rx.lfd >= 0 && c->g.gate[0] >= 0)
		pthread_join(c->g.rx.thread, NULL);
	check(t, ret == 0 && c->g.rx.err == 0 && c->g.rx.bad < 0 && c->g.rx.bytes == c->pos,
	      "%s: released, drained, the receiver validated all %llu bytes (got %llu)", name,
	      (unsigned long long)c->pos, (unsigned long long)c->g.rx.bytes);
	dmt_tx_free(c->tx);
	if (c->fd >= 0)
		close(c->fd);
	if (c->g.rx.lfd >= 0)
		close(c->g.rx.lfd);
	if (c->g.gate[0] >= 0)
		close(c->g.gate[0]);
	dmt_txbind_free(c->bind);
	dmt_dmabuf_free(c->buf);
}

/* One more ring region of CHUNK bytes queued if there is room: 1, 0, -errno. */
static int ring_more(struct conn *c)
{
	struct dmt_region r;
	ssize_t n;
	int ret;

	if (dmt_tx_pending(c->tx))
		return 0;
	ret = dmt_tx_alloc(c->tx, CHUNK, &r);
	if (ret == -EAGAIN)
		return 0;
	if (ret < 0)
		return ret;
	dmt_pattern_fill((char *)dmt_dmabuf_map(c->buf) + r.off, r.len, c->pos, TX_PERIOD);
	n = dmt_tx_send(c->tx, &r, 1);
	if (n < 0)
		return n;
	c->pos += CHUNK;
	return 1;
}

/* One more request of CHUNK bytes (slots over the buffer): 1, 0, -errno. */
static int req_more(struct conn *c)
{
	uint64_t done[64];
	size_t off = c->pos % WIN;
	int ret, n;

	n = dmt_tx_reap(c->tx, done, 64);
	(void)n;
	/* 32 requests of 4 KiB in flight at most: 128 KiB of a 256 KiB buffer */
	dmt_pattern_fill((char *)dmt_dmabuf_map(c->buf) + off, CHUNK, c->pos, TX_PERIOD);
	ret = dmt_tx_submit(c->tx, &(struct dmt_txvec){ c->bind, off, CHUNK }, 1, c->pos);
	if (ret == -EAGAIN)
		return 0;
	if (ret < 0)
		return ret;
	c->pos += CHUNK;
	return 1;
}

static double cpu_secs(void)
{
	struct rusage ru;

	getrusage(RUSAGE_THREAD, &ru);
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/*
 * Drive c from one non-blocking loop: queue more while possible, sleep in
 * poll on dmt_tx_poll_events, make progress.  After the stall is reached,
 * count wake-ups and CPU for one second.
 */
static void stall_loop(struct ktap *t, struct conn *c, bool requests, const char *name)
{
	struct dmt_tx_stats_v2 st = { .sz = sizeof(st) };
	struct timespec t0;
	unsigned wakeups = 0;
	double cpu0, cpu, secs;
	uint64_t bytes0;
	int ret = 0;

	/* fill until the engine waits for completions */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (secs_since(&t0) < 5) {
		ret = requests ? req_more(c) : ring_more(c);
		if (ret < 0)
			break;
		ret = requests ? dmt_tx_progress(c->tx) : (int)dmt_tx_flush(c->tx);
		if (ret < 0)
			break;
		dmt_tx_query_stats(c->tx, &st);
		if (st.stalls && dmt_tx_pending(c->tx) && dmt_tx_poll_events(c->tx) == POLLERR)
			break;
		poll(&(struct pollfd){ .fd = c->fd, .events = dmt_tx_poll_events(c->tx) }, 1, 10);
	}
	if (!check(t, ret >= 0 && st.stalls && dmt_tx_pending(c->tx),
		   "%s: stalled with %llu bytes queued behind %u sends in flight, socket writable",
		   name, (unsigned long long)dmt_tx_pending(c->tx), 4)) {
		diag_err("stall", dmt_tx_error(c->tx));
		return;
	}
	check(t, dmt_tx_poll_events(c->tx) == POLLERR,
	      "%s: dmt_tx_poll_events asks for POLLERR only (%#x)", name,
	      (unsigned)dmt_tx_poll_events(c->tx));

	bytes0 = st.bytes;
	cpu0 = cpu_secs();
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while ((secs = secs_since(&t0)) < 1.0) {
		struct pollfd p = { .fd = c->fd, .events = dmt_tx_poll_events(c->tx) };

		poll(&p, 1, (int)((1.0 - secs) * 1000) + 1);
		wakeups++;
		ret = requests ? dmt_tx_progress(c->tx) : (int)dmt_tx_flush(c->tx);
		if (ret < 0)
			break;
		if (!requests)
			dmt_tx_poll(c->tx, 0);
	}
	cpu = cpu_secs() - cpu0;
	secs = secs_since(&t0);
	dmt_tx_query_stats(c->tx, &st);
	check(t, ret >= 0 && wakeups / secs < 100,
	      "%s: %u wake-ups in %.2f s while stalled (< 100/s; %llu bytes went out meanwhile)",
	      name, wakeups, secs, (unsigned long long)(st.bytes - bytes0));
	check(t, cpu < 0.1, "%s: %.3f s of CPU in that second (< 0.1)", name, cpu);

	cpu0 = cpu_secs();
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ret = dmt_tx_drain(c->tx, 500);
	secs = secs_since(&t0);
	cpu = cpu_secs() - cpu0;
	check(t, ret == -ETIMEDOUT && secs >= 0.45 && cpu < 0.05,
	      "%s: non-blocking dmt_tx_drain(500 ms): -ETIMEDOUT after %.2f s, %.3f s CPU", name,
	      secs, cpu);
}

static void on_signal(int sig)
{
	(void)sig;
}

struct kicker {
	pthread_t target, thread;
	unsigned delay_ms;
	struct grx *g;
	volatile bool cancel;
};

/* Signal the target after delay_ms; 3 s later, release the receiver. */
static void *kick_main(void *arg)
{
	struct kicker *k = arg;

	nanosleep(&(struct timespec){ .tv_nsec = k->delay_ms * 1000000L }, NULL);
	if (k->cancel)
		return NULL;
	pthread_kill(k->target, SIGUSR1);
	for (int i = 0; i < 300 && !k->cancel; i++)
		nanosleep(&(struct timespec){ .tv_nsec = 10000000L }, NULL);
	if (!k->cancel)
		grx_release(k->g);	/* the call did not return: unblock it */
	return NULL;
}

static void kick(struct kicker *k, struct grx *g)
{
	k->target = pthread_self();
	k->delay_ms = 300;
	k->g = g;
	k->cancel = false;
	pthread_create(&k->thread, NULL, kick_main, k);
}

static void kick_done(struct kicker *k)
{
	k->cancel = true;
	pthread_join(k->thread, NULL);
}

static void eintr(struct ktap *t, enum dmt_mode mode)
{
	const char *m = dmt_mode_name(mode);
	struct sigaction sa = { .sa_handler = on_signal };	/* no SA_RESTART */
	struct dmt_region r;
	struct kicker k;
	struct timespec t0;
	struct conn c;
	ssize_t n = -1;
	int ret;
	double secs;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	if (!check(t, conn_open(&c, mode, false), "%s: blocking socket, receiver not reading", m))
		goto out;
	if (mode == DMT_MODE_COPY) {
		/* 128 KiB into a socket that takes ~16 KiB: sendmsg blocks */
		ret = dmt_tx_alloc(c.tx, 128 << 10, &r);
		if (!ret)
			dmt_pattern_fill((char *)dmt_dmabuf_map(c.buf) + r.off, r.len, 0, TX_PERIOD);
		c.pos = 128 << 10;
		kick(&k, &c.g);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		n = ret ? ret : dmt_tx_send(c.tx, &r, 1);
		secs = secs_since(&t0);
		kick_done(&k);
		check(t, secs < 2 && ((n > 0 && n < 128 << 10) || n == -EINTR),
		      "%s: blocking dmt_tx_send interrupted after %.2f s: returns %zd "
		      "(the bytes sent, or -EINTR), the rest stays queued", m, secs, n);
	} else {
		/* 4 sends in flight that cannot complete, 4 KiB more queued */
		for (int i = 0; i < 5; i++) {
			ret = dmt_tx_alloc(c.tx, CHUNK, &r);
			if (ret)
				break;
			dmt_pattern_fill((char *)dmt_dmabuf_map(c.buf) + r.off, r.len, c.pos,
					 TX_PERIOD);
			c.pos += CHUNK;
			/* queue only: a non-blocking flush sends what it can */
			fcntl(c.fd, F_SETFL, O_NONBLOCK);
			dmt_tx_send(c.tx, &r, 1);
			fcntl(c.fd, F_SETFL, 0);
		}
		kick(&k, &c.g);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		ret = dmt_tx_poll(c.tx, -1);
		secs = secs_since(&t0);
		kick_done(&k);
		/* loopback may complete a send or two first: then wait again */
		check(t, (ret == -EINTR && secs < 2) || ret > 0,
		      "%s: dmt_tx_poll(-1) waiting for completions: %d after %.2f s", m, ret, secs);
	}
	kick(&k, &c.g);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ret = dmt_tx_drain(c.tx, -1);
	secs = secs_since(&t0);
	kick_done(&k);
	diag_err("drain", dmt_tx_error(c.tx));
	check(t, ret == -EINTR && secs < 2 && strstr(dmt_tx_error(c.tx)->what, "signal"),
	      "%s: blocking dmt_tx_drain(-1) interrupted after %.2f s: -EINTR (%d)", m, secs, ret);
out:
	conn_close(t, &c, m);
}

int main(void)
{
	struct ktap t = { 0 };
	int fds = count_fds();
	struct conn c;

	printf("TAP version 13\n");
	signal(SIGPIPE, SIG_IGN);
	if (check(&t, conn_open(&c, DMT_MODE_ZEROCOPY, true), "ring: zerocopy engine on lo"))
		stall_loop(&t, &c, false, "ring");
	conn_close(&t, &c, "ring");
	if (check(&t, conn_open(&c, DMT_MODE_ZEROCOPY, true), "requests: zerocopy engine on lo"))
		stall_loop(&t, &c, true, "requests");
	conn_close(&t, &c, "requests");
	eintr(&t, DMT_MODE_COPY);
	eintr(&t, DMT_MODE_ZEROCOPY);
	check(&t, count_fds() == fds, "no fd leaked (%d open, %d at start)", count_fds(), fds);
	return ktap_exit(&t);
}
