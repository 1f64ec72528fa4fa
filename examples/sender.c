// SPDX-License-Identifier: MIT
/*
 * sender.c - a transport's send side on libdevmemtcp 0.2, in one file.
 *
 * A collective-communication transport owns its device buffers and sends
 * "messages" out of them: this program plays one.  It has two dma-bufs (a
 * and b), each bound for TX on the interface, and a table of slots; a
 * message occupies one slot and is sent as two runs: the first half from
 * buffer a, the second half (the larger, for an odd length) from buffer b.  The kernel takes one dma-buf
 * per sendmsg, so each message is at least two sendmsgs; the library hides
 * that.  Each message is submitted with a cookie (here: its slot), and the
 * slot is written again only after that cookie comes back: then every
 * sendmsg that carried its bytes has been completed by the kernel.
 *
 * One thread, one non-blocking connection, no busy loop:
 *
 *   submit while a slot is free      dmt_tx_submit  (never blocks)
 *   move things along                dmt_tx_progress (never blocks)
 *   collect finished messages        dmt_tx_reap
 *   sleep when nothing happened      poll(dmt_tx_poll_events)
 *
 * The payload is the pattern `ncdevmem -l -v PERIOD` and `devmemtcp recv
 * --validate PERIOD` check (here the "GPU kernel" that fills a slot is
 * dmt_dmabuf_fill).
 *
 *   sender --dev IFNAME --to HOST:PORT [--bytes N] [--msg N] [--period P]
 *          [--mode devmem|zerocopy|copy|auto] [--provider udmabuf|host]
 *
 * It prints one line, key=value: mode, bytes, messages, sendmsgs,
 * completions, wake-ups.  Exit 0 when every message was sent and
 * completed, 1 on an error (one line on stderr), 2 on bad usage.
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
#include <sys/socket.h>
#include <unistd.h>

#include <devmemtcp.h>

#define SLOTS 32		/* messages in flight (NCCL: 32 per connection) */

struct sender {
	struct dmt_dmabuf *buf[2];	/* the transport's device memory */
	struct dmt_txbind *bind[2];	/* each bound for TX on the interface */
	struct dmt_tx *tx;		/* the connection's send engine */
	size_t msg;			/* bytes per message */
	unsigned period;
	int fd;
	/* slot s: bytes [s * h, (s + 1) * h) of each buffer, h = slot_half() */
	bool busy[SLOTS];
	uint64_t messages, done;
};

static int fail(const char *what, const struct dmt_err *err)
{
	char buf[768];

	fprintf(stderr, "sender: %s: %s\n", what, dmt_err_str(err, buf, sizeof(buf)));
	return 1;
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
 * The message of stream bytes [pos, pos + len) into slot: the "device"
 * writes the first half into buffer a and the second half into buffer b,
 * and the transport submits the two runs as one request whose cookie is
 * the slot.
 */
static int send_message(struct sender *s, unsigned slot, uint64_t pos, size_t len)
{
	size_t off = (size_t)slot * slot_half(s);
	size_t la = len / 2, lb = len - la;	/* lb <= slot_half() */
	struct dmt_txvec v[2] = {
		{ .bind = s->bind[0], .off = off, .len = la },
		{ .bind = s->bind[1], .off = off, .len = lb },
	};
	int ret;

	ret = la ? dmt_dmabuf_fill(s->buf[0], off, la, pos, s->period) : 0;
	if (!ret)
		ret = dmt_dmabuf_fill(s->buf[1], off, lb, pos + la, s->period);
	if (ret)
		return ret;
	/* 0: accepted whole (the engine sends the rest later); -EAGAIN: full */
	return la ? dmt_tx_submit(s->tx, v, 2, slot) : dmt_tx_submit(s->tx, v + 1, 1, slot);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "dev", required_argument, NULL, 'd' },
		{ "to", required_argument, NULL, 't' },
		{ "bytes", required_argument, NULL, 'b' },
		{ "msg", required_argument, NULL, 'm' },
		{ "period", required_argument, NULL, 'v' },
		{ "mode", required_argument, NULL, 'M' },
		{ "provider", required_argument, NULL, 'P' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dev = NULL, *to = NULL;
	enum dmt_mode policy = DMT_MODE_DEVMEM;
	enum dmt_provider provider = DMT_PROVIDER_UDMABUF;
	uint64_t total = 64 << 20, pos = 0;
	struct sender s = { .msg = 256 << 10, .period = 7, .fd = -1 };
	struct dmt_tx_stats_v2 st = { .sz = sizeof(st) };
	struct sockaddr_storage peer;
	socklen_t plen = 0;
	struct dmt_err err;
	unsigned wakeups = 0;
	int c, ret = 1;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': dev = optarg; break;
		case 't': to = optarg; break;
		case 'b': total = strtoull(optarg, NULL, 0); break;
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
	    s.period < 2 || s.period > 255)
		goto usage;

	/* 1. Two buffers, each bound for TX on the interface. */
	for (int i = 0; i < 2; i++) {
		DMT_OPTS(dmt_dmabuf_opts, bo, .provider = provider, .size = SLOTS * slot_half(&s));
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

	/*
	 * 2. The connection: the engine before connect() (in devmem mode it
	 * binds the socket to the device, which routing must see), then
	 * non-blocking.  Requests are bounded by max_requests: SLOTS.
	 */
	s.fd = socket(peer.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s.fd < 0) {
		perror("sender: socket");
		goto out;
	}
	{
		DMT_OPTS(dmt_tx_opts, to_opts, .max_requests = SLOTS, .max_vecs = 2);

		s.tx = dmt_tx_new(s.fd, s.bind[0], &to_opts, &err);
	}
	if (!s.tx) {
		fail("send engine", &err);
		goto out;
	}
	if (connect(s.fd, (struct sockaddr *)&peer, plen) < 0) {
		fprintf(stderr, "sender: connect to %s: %s\n", to, strerror(errno));
		goto out;
	}
	fcntl(s.fd, F_SETFL, fcntl(s.fd, F_GETFL) | O_NONBLOCK);

	/* 3. The loop. */
	while (pos < total || s.done < s.messages) {
		uint64_t cookies[SLOTS];
		int n, progressed = 0;

		for (unsigned slot = 0; slot < SLOTS && pos < total; slot++) {
			size_t len = total - pos < s.msg ? total - pos : s.msg;

			if (s.busy[slot])
				continue;
			ret = send_message(&s, slot, pos, len);
			if (ret == -EAGAIN)
				break;
			if (ret < 0) {
				ret = fail("submit", dmt_tx_error(s.tx));
				goto out;
			}
			s.busy[slot] = true;
			s.messages++;
			pos += len;
			progressed = 1;
		}
		ret = dmt_tx_progress(s.tx);
		if (ret < 0) {
			ret = fail("send", dmt_tx_error(s.tx));
			goto out;
		}
		n = dmt_tx_reap(s.tx, cookies, SLOTS);
		for (int i = 0; i < n; i++)
			s.busy[cookies[i]] = false;	/* the slot is ours again */
		s.done += n;
		if (n || progressed)
			continue;
		/* nothing moved: sleep until the socket or a completion wakes us */
		poll(&(struct pollfd){ .fd = s.fd, .events = dmt_tx_poll_events(s.tx) }, 1, 1000);
		wakeups++;
	}

	dmt_tx_query_stats(s.tx, &st);
	printf("mode=%s bytes=%llu messages=%llu sendmsgs=%llu completions=%llu copied=%llu "
	       "wakeups=%u\n", dmt_mode_name(dmt_tx_mode(s.tx)), (unsigned long long)st.bytes,
	       (unsigned long long)s.done, (unsigned long long)st.sends,
	       (unsigned long long)st.completions, (unsigned long long)st.copied, wakeups);
	ret = st.bytes == total ? 0 : 1;
out:
	/* 4. Tear down: the engine before its bindings, bindings before buffers. */
	dmt_tx_free(s.tx);
	if (s.fd >= 0)
		close(s.fd);
	for (int i = 0; i < 2; i++) {
		dmt_txbind_free(s.bind[i]);
		dmt_dmabuf_free(s.buf[i]);
	}
	return ret;
usage:
	fprintf(stderr, "usage: sender --dev IFNAME --to HOST:PORT [--bytes N] [--msg N] "
		"[--period 2..255] [--mode devmem|zerocopy|copy|auto] [--provider udmabuf|host]\n");
	return 2;
}
