/* SPDX-License-Identifier: MIT */
/*
 * tx-common.h - what the send-engine tests share: KTAP lines, a listening
 * socket made in another network namespace, a receiver thread that checks
 * every byte against the ncdevmem pattern, a connection to it with its
 * teardown (tx_link), a capability drop, and a provider choice (udmabuf
 * when /dev/udmabuf exists, else host memory).
 */
#ifndef TX_COMMON_H
#define TX_COMMON_H

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "devmemtcp.h"
#include "ktap.h"

#define TX_PERIOD 251	/* pattern period: not a divisor of any chunk size */

static inline void diag_err(const char *what, const struct dmt_err *e)
{
	char buf[768];

	printf("# %s: %s\n", what, dmt_err_str(e, buf, sizeof(buf)));
}

static inline double secs_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) + (t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* udmabuf when the kernel has it, else plain host memory. */
static inline enum dmt_provider test_provider(void)
{
	return access("/dev/udmabuf", R_OK | W_OK) == 0 ? DMT_PROVIDER_UDMABUF :
							   DMT_PROVIDER_HOST;
}

/*
 * A listening TCP socket on addr (port 0: any) in network namespace netns
 * (a name under /run/netns, NULL: this one), with SO_RCVBUF rcvbuf when
 * non-zero.  The socket keeps its namespace; the calling thread returns
 * to its own.  Port in *port.  -errno on failure.
 */
static inline int listen_in(const char *netns, const char *addr, int rcvbuf,
			    uint16_t *port)
{
	struct sockaddr_in6 s6 = { .sin6_family = AF_INET6 };
	struct sockaddr_in s4 = { .sin_family = AF_INET };
	struct sockaddr *sa = (struct sockaddr *)&s4;
	socklen_t len = sizeof(s4);
	int home = -1, fd = -1, e = 0, one = 1;

	if (inet_pton(AF_INET6, addr, &s6.sin6_addr) == 1) {
		sa = (struct sockaddr *)&s6;
		len = sizeof(s6);
	} else if (inet_pton(AF_INET, addr, &s4.sin_addr) != 1) {
		return -EINVAL;
	}
	if (netns) {
		char path[256];
		int nsfd;

		snprintf(path, sizeof(path), "/run/netns/%s", netns);
		home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
		nsfd = open(path, O_RDONLY | O_CLOEXEC);
		if (home < 0 || nsfd < 0 || setns(nsfd, CLONE_NEWNET) < 0) {
			e = -errno;
			if (nsfd >= 0)
				close(nsfd);
			if (home >= 0)
				close(home);
			return e;
		}
		close(nsfd);
	}
	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (rcvbuf && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) < 0) ||
	    bind(fd, sa, len) < 0 || listen(fd, 1) < 0 ||
	    getsockname(fd, sa, &len) < 0)
		e = -errno;
	if (home >= 0) {
		if (setns(home, CLONE_NEWNET) < 0 && !e)
			e = -errno;
		close(home);
	}
	if (e) {
		if (fd >= 0)
			close(fd);
		return e;
	}
	*port = ntohs(sa->sa_family == AF_INET6 ? s6.sin6_port : s4.sin_port);
	return fd;
}

/* A TCP socket of addr's family, not connected yet; -errno on failure. */
static inline int tcp_socket_for(const char *addr)
{
	struct in6_addr a6;
	int fd = socket(inet_pton(AF_INET6, addr, &a6) == 1 ? AF_INET6 : AF_INET,
			SOCK_STREAM | SOCK_CLOEXEC, 0);

	return fd < 0 ? -errno : fd;
}

static inline int tcp_connect(int fd, const char *addr, uint16_t port)
{
	struct sockaddr_in6 s6 = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
	struct sockaddr_in s4 = { .sin_family = AF_INET, .sin_port = htons(port) };

	if (inet_pton(AF_INET6, addr, &s6.sin6_addr) == 1)
		return connect(fd, (struct sockaddr *)&s6, sizeof(s6)) < 0 ? -errno : 0;
	if (inet_pton(AF_INET, addr, &s4.sin_addr) != 1)
		return -EINVAL;
	return connect(fd, (struct sockaddr *)&s4, sizeof(s4)) < 0 ? -errno : 0;
}

/*
 * The receiver: accepts one connection on lfd, reads until EOF in chunks
 * of at most chunk bytes, sleeping delay_us after each read (a slow
 * reader), and checks every byte against the pattern.
 */
struct rx {
	int lfd;
	size_t chunk;
	unsigned delay_us;
	uint64_t bytes;		/* out: received */
	int64_t bad;		/* out: stream position of the first wrong byte, -1 */
	int err;		/* out: -errno of accept/read, 0 */
	pthread_t thread;
};

static inline void *rx_main(void *arg)
{
	struct rx *rx = arg;
	unsigned char buf[65536];
	size_t chunk = rx->chunk && rx->chunk < sizeof(buf) ? rx->chunk : sizeof(buf);
	int fd = accept(rx->lfd, NULL, NULL);

	rx->bad = -1;
	if (fd < 0) {
		rx->err = -errno;
		return NULL;
	}
	for (;;) {
		ssize_t n = read(fd, buf, chunk);
		ssize_t at;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rx->err = -errno;
			break;
		}
		if (n == 0)
			break;
		at = dmt_pattern_check(buf, n, rx->bytes, TX_PERIOD);
		if (at >= 0 && rx->bad < 0)
			rx->bad = rx->bytes + at;
		rx->bytes += n;
		if (rx->delay_us)
			nanosleep(&(struct timespec){ .tv_nsec = rx->delay_us * 1000L }, NULL);
	}
	close(fd);
	return NULL;
}

static inline int rx_start(struct rx *rx)
{
	return -pthread_create(&rx->thread, NULL, rx_main, rx);
}

static inline void rx_join(struct rx *rx)
{
	pthread_join(rx->thread, NULL);
}

/*
 * One connection under test: the receiver at the far end (a listener on
 * addr in netns, its thread checking every byte) and the sender's socket
 * of addr's family.  tx_link_open makes both and starts the receiver;
 * the test connects (tx_link_connect) before or after making its engine;
 * tx_link_finish ends the stream and waits for the receiver to read it
 * all; tx_link_close frees the engine and closes everything, waking a
 * receiver still waiting in accept().  Declare with TX_LINK_INIT (set
 * rx.chunk and rx.delay_us for a slow receiver: tx_link_open keeps them).
 */
struct tx_link {
	struct rx rx;
	int fd;			/* the sender's socket */
	uint16_t port;		/* the listener's */
	bool started, joined;	/* the receiver thread */
};

#define TX_LINK_INIT { .rx = { .lfd = -1 }, .fd = -1 }

static inline int tx_link_open(struct tx_link *l, const char *netns, const char *addr,
			       int rcvbuf)
{
	struct rx keep = l->rx;		/* the receiver's pace: chunk, delay_us */
	int ret;

	*l = (struct tx_link)TX_LINK_INIT;
	l->rx.chunk = keep.chunk;
	l->rx.delay_us = keep.delay_us;
	l->rx.lfd = listen_in(netns, addr, rcvbuf, &l->port);
	if (l->rx.lfd < 0)
		return l->rx.lfd;
	l->fd = tcp_socket_for(addr);
	if (l->fd < 0)
		return l->fd;
	ret = rx_start(&l->rx);
	l->started = !ret;
	return ret;
}

static inline int tx_link_connect(struct tx_link *l, const char *addr)
{
	return tcp_connect(l->fd, addr, l->port);
}

/* End of stream: shut the socket's write side, wait for the receiver. */
static inline void tx_link_finish(struct tx_link *l)
{
	if (l->fd >= 0)
		shutdown(l->fd, SHUT_WR);
	if (l->started && !l->joined) {
		rx_join(&l->rx);
		l->joined = true;
	}
}

/* Free tx (may be NULL), then close the socket and the listener. */
static inline void tx_link_close(struct tx_link *l, struct dmt_tx *tx)
{
	dmt_tx_free(tx);
	if (l->started && !l->joined) {
		/* not connected, or abandoned: wake accept() and read() */
		if (l->fd >= 0)
			shutdown(l->fd, SHUT_RDWR);
		shutdown(l->rx.lfd, SHUT_RDWR);
		rx_join(&l->rx);
		l->joined = true;
	}
	if (l->fd >= 0)
		close(l->fd);
	if (l->rx.lfd >= 0)
		close(l->rx.lfd);
	l->fd = l->rx.lfd = -1;
}

/*
 * Drop capability cap (CAP_IPC_LOCK, CAP_NET_RAW, ...) from this
 * process's effective, permitted and inheritable sets: 0 or -errno.
 */
static inline int drop_cap(unsigned cap)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2];
	uint32_t bit = 1u << (cap % 32);

	if (syscall(SYS_capget, &h, d))
		return -errno;
	d[cap / 32].effective &= ~bit;
	d[cap / 32].permitted &= ~bit;
	d[cap / 32].inheritable &= ~bit;
	return syscall(SYS_capset, &h, d) ? -errno : 0;
}

/* Whether cap is in this process's effective set. */
static inline bool has_cap(unsigned cap)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2];

	return !syscall(SYS_capget, &h, d) && (d[cap / 32].effective & (1u << (cap % 32)));
}

/*
 * Send the pattern from stream position *pos up to end through tx, in
 * regions of next_len(arg) bytes (NULL: chunk bytes): alloc, waiting up
 * to 1 s at a time for completions while the window is full; fill; send;
 * reap what completed.  *pos advances past what was sent.  0 or -errno.
 */
static inline int tx_pump(struct dmt_tx *tx, struct dmt_dmabuf *buf,
			  uint64_t *pos, uint64_t end, size_t chunk,
			  size_t (*next_len)(uint32_t *seed), uint32_t *seed)
{
	while (*pos < end) {
		size_t len = next_len ? next_len(seed) : chunk;
		struct dmt_region r;
		ssize_t n;
		int ret;

		if (len > end - *pos)
			len = end - *pos;
		while ((ret = dmt_tx_alloc(tx, len, &r)) == -EAGAIN) {
			ret = dmt_tx_poll(tx, 1000);
			if (ret < 0)
				return ret;
		}
		if (ret < 0)
			return ret;
		ret = dmt_dmabuf_fill(buf, r.off, r.len, *pos, TX_PERIOD);
		if (ret < 0) {
			printf("# dmt_dmabuf_fill: %s\n", strerror(-ret));
			return ret;
		}
		n = dmt_tx_send(tx, &r, 1);
		if (n < 0)
			return n;
		*pos += len;
		ret = dmt_tx_poll(tx, 0);
		if (ret < 0)
			return ret;
	}
	return 0;
}

#endif /* TX_COMMON_H */
