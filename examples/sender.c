// SPDX-License-Identifier: MIT
/*
 * sender.c - a transport's send side on libdevmemtcp 0.2, in one file.
 *
 * A collective-communication transport owns its device buffers and sends
 * "messages" out of them, on many connections from one thread: this
 * program plays one.  It has two dma-bufs (a and b), each bound for TX on
 * the interface once and shared by every connection, and CONNS
 * connections, each with its own send engine (dmt_tx) and its own table
 * of SLOTS slots in the two buffers.  A message occupies one slot and is
 * sent as two runs: the first half from buffer a, the second half (the
 * larger, for an odd length) from buffer b.  The kernel takes one dma-buf
 * per sendmsg, so each message is at least two sendmsgs; the library
 * hides that.  Each message is submitted with a cookie (here: its slot),
 * and the slot is written again only after that cookie comes back: then
 * every sendmsg that carried its bytes has been completed by the kernel.
 *
 * One thread, CONNS non-blocking connections, one epoll set, no busy loop:
 *
 *   submit while a slot is free      dmt_tx_submit  (never blocks)
 *   move things along                dmt_tx_progress (never blocks)
 *   collect finished messages        dmt_tx_reap
 *   sleep when nothing happened      epoll_wait, each connection asking
 *                                    for what dmt_tx_poll_events says
 *                                    (POLLERR while it waits for
 *                                    completions, POLLOUT as well while
 *                                    it waits for the socket)
 *
 * Each connection's stream is the pattern `ncdevmem -l -v PERIOD`,
 * `devmemtcp recv --validate PERIOD` and examples/receiver check, from
 * stream position 0 (here the "GPU kernel" that fills a slot is
 * dmt_dmabuf_fill).
 *
 *   sender --dev IFNAME --to HOST:PORT [--conns N] [--bytes N] [--msg N]
 *          [--period P] [--mode devmem|zerocopy|copy|auto]
 *          [--provider udmabuf|host]
 *
 * --conns: connections (default 8, at most 64); --bytes: bytes sent on
 * EACH connection (default 8 MiB); --msg: bytes per message (256 KiB).
 * It prints one line, key=value: mode, conns, bytes (all connections),
 * messages, sendmsgs, completions, copied, wake-ups.  Exit 0 when every
 * message of every connection was sent and completed, 1 on an error (one
 * line on stderr), 2 on bad usage.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <devmemtcp.h>

#define SLOTS 32		/* messages in flight per connection (NCCL: 32) */
#define MAX_CONNS 64

/* One connection: its engine, its slots, how far its stream is. */
struct conn {
	int fd;
	struct dmt_tx *tx;		/* the connection's send engine */
	unsigned idx;			/* its slots: [idx * SLOTS, (idx + 1) * SLOTS) */
	uint64_t pos;			/* stream bytes submitted */
	uint64_t messages, done;	/* submitted, and reaped */
	uint32_t events;		/* what epoll waits for now */
	bool busy[SLOTS];
};

struct sender {
	struct dmt_dmabuf *buf[2];	/* the transport's device memory */
	struct dmt_txbind *bind[2];	/* each bound for TX on the interface */
	struct conn conn[MAX_CONNS];
	unsigned conns, active;		/* connections, and those not done */
	size_t msg;			/* bytes per message */
	uint64_t bytes;			/* bytes per connection */
	unsigned period;
	int ep;				/* the epoll set */
	struct dmt_tx_stats_v2 sum;	/* of the connections done */
	enum dmt_mode mode;
};

static int fail(const char *what, const struct dmt_err *err)
{
	char buf[768];

	fprintf(stderr, "sender: %s: %s\n", what, dmt_err_str(err, buf, sizeof(buf)));
	return -1;
}

/* HOST:PORT or [HOST6]:PORT into a sockaddr. */
static int parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[128];
	const char *colon = strrchr(s, ':');
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	size_t n;

	if (!colon)
		return -EINVAL;
	n = colon - s;
	if (s[0] == '[' && n >= 2 && s[n - 1] == ']') {
		s++;
		n -= 2;
	}
	if (n >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, n);
	host[n] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(atoi(colon + 1));
		*len = sizeof(*s6);
	} else if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(atoi(colon + 1));
		*len = sizeof(*s4);
	} else {
		return -EINVAL;
	}
	return 0;
}

/* A slot's part of each buffer: half a message, rounded up. */
static size_t slot_half(const struct sender *s)
{
	return (s->msg + 1) / 2;
}

/*
 * The message of stream bytes [pos, pos + len) of connection c into its
 * slot: the "device" writes the first half into buffer a and the second
 * half into buffer b, and the transport submits the two runs as one
 * request whose cookie is the slot.
 */
static int send_message(struct sender *s, struct conn *c, unsigned slot, size_t len)
{
	size_t off = ((size_t)c->idx * SLOTS + slot) * slot_half(s);
	size_t la = len / 2, lb = len - la;	/* lb <= slot_half() */
	struct dmt_txvec v[2] = {
		{ .bind = s->bind[0], .off = off, .len = la },
		{ .bind = s->bind[1], .off = off, .len = lb },
	};
	int ret;

	ret = la ? dmt_dmabuf_fill(s->buf[0], off, la, c->pos, s->period) : 0;
	if (!ret)
		ret = dmt_dmabuf_fill(s->buf[1], off, lb, c->pos + la, s->period);
	if (ret)
		return ret;
	/* 0: accepted whole (the engine sends the rest later); -EAGAIN: full */
	return la ? dmt_tx_submit(c->tx, v, 2, slot) : dmt_tx_submit(c->tx, v + 1, 1, slot);
}

/* dmt_tx_poll_events() is in poll(2) bits; epoll wants its own. */
static uint32_t epoll_events(const struct conn *c)
{
	short ev = dmt_tx_poll_events(c->tx);

	return (ev & POLLOUT ? EPOLLOUT : 0) | (ev & POLLERR ? EPOLLERR : 0);
}

/* A connection whose every message is done: its figures, then close it. */
static void conn_finish(struct sender *s, struct conn *c)
{
	struct dmt_tx_stats_v2 st = { .sz = sizeof(st) };

	dmt_tx_query_stats(c->tx, &st);
	s->sum.bytes += st.bytes;
	s->sum.sends += st.sends;
	s->sum.completions += st.completions;
	s->sum.copied += st.copied;
	s->sum.requests_done += c->done;
	s->mode = dmt_tx_mode(c->tx);
	/* out of the epoll set before the close; the peer sees the end */
	epoll_ctl(s->ep, EPOLL_CTL_DEL, c->fd, NULL);
	dmt_tx_free(c->tx);
	c->tx = NULL;
	close(c->fd);
	c->fd = -1;
	s->active--;
}

/*
 * Everything that can happen on connection c without waiting: submit
 * messages into free slots, let the engine send and read completions,
 * take back the slots of finished messages; again while anything moved.
 * Then wait for what the engine says it waits for.  -1 on an error.
 */
static int conn_service(struct sender *s, struct conn *c)
{
	uint64_t cookies[SLOTS];
	int moved, n, ret;

	if (!c->tx)	/* done and closed already */
		return 0;
	do {
		moved = 0;
		for (unsigned slot = 0; slot < SLOTS && c->pos < s->bytes; slot++) {
			size_t len = s->bytes - c->pos < s->msg ? s->bytes - c->pos : s->msg;

			if (c->busy[slot])
				continue;
			ret = send_message(s, c, slot, len);
			if (ret == -EAGAIN)
				break;
			if (ret < 0)
				return fail("submit", dmt_tx_error(c->tx));
			c->busy[slot] = true;
			c->messages++;
			c->pos += len;
			moved = 1;
		}
		ret = dmt_tx_progress(c->tx);
		if (ret < 0)
			return fail("send", dmt_tx_error(c->tx));
		n = dmt_tx_reap(c->tx, cookies, SLOTS);
		for (int i = 0; i < n; i++)
			c->busy[cookies[i]] = false;	/* the slot is ours again */
		c->done += n;
	} while (n > 0 || moved);

	if (c->pos == s->bytes && c->done == c->messages) {
		conn_finish(s, c);
		return 0;
	}
	/* level-triggered: change the interest only when it changed */
	if (epoll_events(c) != c->events) {
		struct epoll_event ev = { .events = epoll_events(c), .data.ptr = c };

		if (epoll_ctl(s->ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
			perror("sender: epoll_ctl");
			return -1;
		}
		c->events = ev.events;
	}
	return 0;
}

/*
 * Connection i: the engine before connect() (in devmem mode it binds the
 * socket to the device, which routing must see), then non-blocking, then
 * into the epoll set.  Requests are bounded by max_requests: SLOTS.
 */
static int conn_open(struct sender *s, unsigned i, const struct sockaddr_storage *peer,
		     socklen_t plen, const char *to)
{
	DMT_OPTS(dmt_tx_opts, to_opts, .max_requests = SLOTS, .max_vecs = 2);
	struct conn *c = &s->conn[i];
	struct epoll_event ev;
	struct dmt_err err;

	c->idx = i;
	c->fd = socket(peer->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		perror("sender: socket");
		return -1;
	}
	c->tx = dmt_tx_new(c->fd, s->bind[0], &to_opts, &err);
	if (!c->tx)
		return fail("send engine", &err);
	if (connect(c->fd, (const struct sockaddr *)peer, plen) < 0) {
		fprintf(stderr, "sender: connect to %s: %s\n", to, strerror(errno));
		return -1;
	}
	fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
	c->events = epoll_events(c);
	ev = (struct epoll_event){ .events = c->events, .data.ptr = c };
	if (epoll_ctl(s->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
		perror("sender: epoll_ctl");
		return -1;
	}
	s->active++;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "dev", required_argument, NULL, 'd' },
		{ "to", required_argument, NULL, 't' },
		{ "conns", required_argument, NULL, 'c' },
		{ "bytes", required_argument, NULL, 'b' },
		{ "msg", required_argument, NULL, 'm' },
		{ "period", required_argument, NULL, 'v' },
		{ "mode", required_argument, NULL, 'M' },
		{ "provider", required_argument, NULL, 'P' },
		{ NULL, 0, NULL, 0 },
	};
	static struct sender s = { .conns = 8, .bytes = 8 << 20, .msg = 256 << 10,
				   .period = 7, .ep = -1 };
	const char *dev = NULL, *to = NULL;
	enum dmt_mode policy = DMT_MODE_DEVMEM;
	enum dmt_provider provider = DMT_PROVIDER_UDMABUF;
	struct sockaddr_storage peer;
	socklen_t plen = 0;
	struct dmt_err err;
	unsigned wakeups = 0, opened = 0;
	int c, ret = 1;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': dev = optarg; break;
		case 't': to = optarg; break;
		case 'c': s.conns = atoi(optarg); break;
		case 'b': s.bytes = strtoull(optarg, NULL, 0); break;
		case 'm': s.msg = strtoull(optarg, NULL, 0); break;
		case 'v': s.period = atoi(optarg); break;
		case 'M':
			if (dmt_mode_parse(optarg, &policy))
				goto usage;
			break;
		case 'P':
			if (dmt_provider_parse(optarg, &provider))
				goto usage;
			break;
		default:
			goto usage;
		}
	}
	if (!dev || !to || parse_addr(to, &peer, &plen) || s.msg < 2 || s.msg > 64 << 20 ||
	    s.period < 2 || s.period > 255 || s.conns < 1 || s.conns > MAX_CONNS)
		goto usage;

	/* 1. Two buffers, each bound for TX on the interface, for all. */
	for (int i = 0; i < 2; i++) {
		DMT_OPTS(dmt_dmabuf_opts, bo, .provider = provider,
			 .size = (size_t)s.conns * SLOTS * slot_half(&s));
		DMT_OPTS(dmt_txbind_opts, po, .policy = policy);

		s.buf[i] = dmt_dmabuf_new(&bo, &err);
		if (!s.buf[i]) {
			fail("dma-buf", &err);
			goto out;
		}
		s.bind[i] = dmt_txbind_new(dev, s.buf[i], &po, &err);
		if (!s.bind[i]) {
			fail("TX binding", &err);
			goto out;
		}
	}

	/* 2. The connections, one engine each, in one epoll set. */
	s.ep = epoll_create1(EPOLL_CLOEXEC);
	if (s.ep < 0) {
		perror("sender: epoll_create1");
		goto out;
	}
	for (; opened < s.conns; opened++)
		if (conn_open(&s, opened, &peer, plen, to) < 0) {
			opened++;	/* its fd and engine are freed below */
			goto out;
		}

	/* 3. The loop: everything that can move, then sleep until an event. */
	for (unsigned i = 0; i < s.conns; i++)
		if (conn_service(&s, &s.conn[i]) < 0)
			goto out;
	while (s.active) {
		struct epoll_event evs[MAX_CONNS];
		int n = epoll_wait(s.ep, evs, MAX_CONNS, 1000);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			perror("sender: epoll_wait");
			goto out;
		}
		wakeups++;
		if (n == 0) {	/* a second without an event: look at every one */
			for (unsigned i = 0; i < s.conns; i++)
				if (s.conn[i].tx && conn_service(&s, &s.conn[i]) < 0)
					goto out;
			continue;
		}
		for (int i = 0; i < n; i++)
			if (conn_service(&s, evs[i].data.ptr) < 0)
				goto out;
	}

	printf("mode=%s conns=%u bytes=%llu messages=%llu sendmsgs=%llu completions=%llu "
	       "copied=%llu wakeups=%u\n", dmt_mode_name(s.mode), s.conns,
	       (unsigned long long)s.sum.bytes, (unsigned long long)s.sum.requests_done,
	       (unsigned long long)s.sum.sends, (unsigned long long)s.sum.completions,
	       (unsigned long long)s.sum.copied, wakeups);
	ret = s.sum.bytes == s.bytes * s.conns ? 0 : 1;
out:
	/* 4. Tear down: engines before their bindings, bindings before buffers. */
	for (unsigned i = 0; i < opened; i++) {
		dmt_tx_free(s.conn[i].tx);
		if (s.conn[i].fd >= 0)
			close(s.conn[i].fd);
	}
	if (s.ep >= 0)
		close(s.ep);
	for (int i = 0; i < 2; i++) {
		dmt_txbind_free(s.bind[i]);
		dmt_dmabuf_free(s.buf[i]);
	}
	return ret;
usage:
	fprintf(stderr, "usage: sender --dev IFNAME --to HOST:PORT [--conns 1..%d] [--bytes N] "
		"[--msg N] [--period 2..255] [--mode devmem|zerocopy|copy|auto] "
		"[--provider udmabuf|host]\n", MAX_CONNS);
	return 2;
}
