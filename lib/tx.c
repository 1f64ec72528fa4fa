// SPDX-License-Identifier: MIT
/*
 * tx.c - the TX side: a binding (bind-tx, or the zerocopy/copy fallback the
 * policy allows) and the send engine of one TCP connection.
 *
 * The engine's window is a ring of bytes addressed by 64-bit positions that
 * only grow; byte position p lives at window_off + p % window_len.  Four
 * positions split it:
 *
 *   tail <= sent <= queued <= head
 *   [tail, sent)    sent, waiting for completions (released in order)
 *   [sent, queued)  queued by dmt_tx_send, not yet accepted by the kernel
 *   [queued, head)  reserved by dmt_tx_alloc, not yet queued
 *   [head, tail + window_len)  free
 *
 * A reservation that does not fit before the end of the window skips the
 * rest of the window (a "skip", never sent) and starts at its beginning;
 * only the latest skip can lie in [tail, head), since two would span more
 * than the window.  Every sendmsg that queues bytes in the devmem and
 * zerocopy modes consumes one notification id (devmem contract 3.5) and
 * gets a record in a fixed ring: its id (implicit: first_id + index) and the
 * position just past its bytes.  Completions mark records in any order;
 * tail then moves over the completed prefix, so a byte is handed out again
 * only after every send that covered it completed.  In copy mode the
 * kernel owns nothing after sendmsg returns, so tail follows sent.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/errqueue.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "dmt-uapi.h"

#ifndef SO_EE_ORIGIN_ZEROCOPY
#define SO_EE_ORIGIN_ZEROCOPY 5
#endif
#ifndef SO_EE_CODE_ZEROCOPY_COPIED
#define SO_EE_CODE_ZEROCOPY_COPIED 1
#endif
#ifndef SO_ZEROCOPY
#define SO_ZEROCOPY 60
#endif
#ifndef MSG_ZEROCOPY
#define MSG_ZEROCOPY 0x4000000
#endif

#define TX_MAX_IOV 1024			/* UIO_MAXIOV */
#define TX_MAX_SEND (1u << 30)		/* bytes per sendmsg, below MAX_RW_COUNT */
#define TX_BOUNCE_MAX (256u << 10)	/* copy mode without a host mapping */
#define TX_DEFAULT_INFLIGHT 1024
#define TX_MAX_INFLIGHT (1u << 20)
#define TX_ENOBUFS_IDLE_MS 200		/* ENOBUFS with nothing in flight */

/* ------------------------------------------------------------ TX binding */

static const char *const mode_names[] = {
	[DMT_MODE_AUTO] = "auto",
	[DMT_MODE_DEVMEM] = "devmem",
	[DMT_MODE_ZEROCOPY] = "zerocopy",
	[DMT_MODE_COPY] = "copy",
};

DMT_API const char *dmt_mode_name(enum dmt_mode mode)
{
	if ((unsigned)mode >= sizeof(mode_names) / sizeof(mode_names[0]))
		return "unknown";
	return mode_names[mode];
}

DMT_API int dmt_mode_parse(const char *name, enum dmt_mode *mode)
{
	for (unsigned i = 0; name && i < sizeof(mode_names) / sizeof(mode_names[0]); i++) {
		if (!strcmp(name, mode_names[i])) {
			if (mode)
				*mode = i;
			return 0;
		}
	}
	return -EINVAL;
}

/*
 * Can MSG_ZEROCOPY pin the buffer's pages?  Only through a mapping of
 * ordinary memory: the host provider's memfd, or a udmabuf's backing
 * memfd.  The mappings of dma-bufs themselves are PFN maps (udmabuf and
 * the system heap insert PFNs), which get_user_pages refuses: EFAULT.
 */
static bool zc_capable(const struct dmt_dmabuf *buf)
{
	if (buf->provider == DMT_PROVIDER_HOST)
		return dmt_dmabuf_map(buf) != NULL;
	return buf->memfd >= 0;
}

static const char *zc_refusal(const struct dmt_dmabuf *buf)
{
	if (buf->provider == DMT_PROVIDER_HOST)
		return "the host buffer has no mapping";
	return "its host mapping is a PFN map that MSG_ZEROCOPY cannot pin "
	       "(only host and udmabuf buffers can)";
}

/* Try bind-tx; on refusal fill e (what failed, errno, extack, fix). */
static int try_devmem(struct dmt_txbind *bind, struct dmt_err *e)
{
	struct dmt_nl *nl;
	uint32_t id = 0;
	int ret;

	nl = dmt_bindcore_nl(&bind->c, "TX", e);
	if (!nl)
		return e->code;
	ret = dmt_bind_tx(nl, bind->c.ifindex, dmt_dmabuf_fd(bind->c.buf), &id);
	if (ret < 0)	/* netlink.c's fix is the one */
		return dmt_bindcore_refused(nl, ret, NULL, e, "bind-tx of dma-buf fd %d on %s",
					    dmt_dmabuf_fd(bind->c.buf), bind->c.ifname);
	dmt_bindcore_bound(&bind->c, nl, id);
	return 0;
}

DMT_API struct dmt_txbind *dmt_txbind_new(const char *ifname,
					  struct dmt_dmabuf *buf,
					  const struct dmt_txbind_opts *opts,
					  struct dmt_err *err)
{
	enum dmt_mode policy;
	struct dmt_txbind *bind;
	struct dmt_err e = { 0 };
	int ret;

	dmt_err_clear(err);
	if (dmt_opts_check(opts, sizeof(*opts), err, "dmt_txbind_opts"))
		return NULL;
	policy = DMT_OPT(opts, policy, DMT_MODE_AUTO);
	if ((unsigned)policy > DMT_MODE_COPY) {
		dmt_err_set(err, -EINVAL, "use auto, devmem, zerocopy or copy",
			    "TX binding: unknown policy %d", (int)policy);
		return NULL;
	}
	bind = calloc(1, sizeof(*bind));
	if (!bind) {
		dmt_err_set(err, -ENOMEM, NULL, "TX binding on %s", ifname ? ifname : "");
		return NULL;
	}
	if (dmt_bindcore_init(&bind->c, ifname, buf, "TX binding",
			      "name the interface the connection leaves through", err))
		goto err_free;

	if (policy == DMT_MODE_DEVMEM || policy == DMT_MODE_AUTO) {
		ret = dmt_bindcore_settle(&bind->c, policy, try_devmem(bind, &e), &e,
					  false, err);
		if (ret > 0)
			return bind;
		if (ret < 0)
			goto err_free;
	}

	if (policy == DMT_MODE_ZEROCOPY && !zc_capable(buf)) {
		dmt_err_set(err, -EINVAL, "use the copy mode for this buffer",
			    "zerocopy from a %s buffer: %s",
			    dmt_provider_name(buf->provider), zc_refusal(buf));
		goto err_free;
	}
	if (policy == DMT_MODE_COPY || !zc_capable(buf))
		bind->c.mode = DMT_MODE_COPY;
	else
		bind->c.mode = DMT_MODE_ZEROCOPY;
	if (policy == DMT_MODE_AUTO && bind->c.mode == DMT_MODE_COPY) {
		size_t n = strlen(bind->c.reason);

		snprintf(bind->c.reason + n, sizeof(bind->c.reason) - n,
			 "; no zerocopy either: %s", zc_refusal(buf));
	}
	return bind;

err_free:
	free(bind);
	return NULL;
}

DMT_API void dmt_txbind_free(struct dmt_txbind *bind)
{
	if (!bind)
		return;
	dmt_bindcore_fini(&bind->c);
	free(bind);
}

DMT_API enum dmt_mode dmt_txbind_mode(const struct dmt_txbind *bind)
{
	return bind ? bind->c.mode : DMT_MODE_AUTO;
}

DMT_API uint32_t dmt_txbind_id(const struct dmt_txbind *bind)
{
	return bind && bind->c.mode == DMT_MODE_DEVMEM ? bind->c.id : 0;
}

DMT_API unsigned dmt_txbind_ifindex(const struct dmt_txbind *bind)
{
	return bind ? bind->c.ifindex : 0;
}

DMT_API const char *dmt_txbind_fallback_reason(const struct dmt_txbind *bind)
{
	return bind ? bind->c.reason : "";
}

/* ------------------------------------------------------------ send engine */

struct tx_rec {
	uint64_t end;		/* position just past the send's bytes */
	uint64_t bytes;		/* bytes the send carried */
	bool done;
};

struct dmt_tx {
	int fd;
	enum dmt_mode mode;
	struct dmt_txbind *bind;
	struct dmt_dmabuf *buf;
	const char *base;	/* host address of buffer byte 0, NULL: none */
	void *memfd_map;	/* our mapping of a udmabuf's memfd */
	char *bounce;		/* copy mode without a mapping */
	size_t bounce_len;

	size_t win_off, win_len;
	uint64_t tail, sent, queued, head;
	uint64_t skip_lo, skip_hi;	/* latest skip [lo, hi), empty if equal */
	uint64_t last_lo, last_at;	/* latest reservation, skip included */
	size_t last_len;		/* 0: nothing to give back */

	struct tx_rec *rec;	/* ring: rec[(rec_first + k) % rec_cap] */
	unsigned rec_cap, rec_first, rec_n;
	uint32_t first_id;	/* id of rec[rec_first]; next id = first_id + rec_n */

	void (*on_complete)(const struct dmt_tx_completion *c, void *arg);
	void *arg;
	struct dmt_tx_stats st;
	struct dmt_err err;
};

/* Set tx->err (extack cleared) and return code. */
#define tx_fail(tx, code, fix, ...) \
	(dmt_err_clear(&(tx)->err), dmt_err_set(&(tx)->err, (code), (fix), __VA_ARGS__))

static bool skip_active(const struct dmt_tx *tx)
{
	return tx->skip_hi > tx->skip_lo;
}

/* Position n bytes of data past p, jumping the skip if it lies between. */
static uint64_t ring_advance(const struct dmt_tx *tx, uint64_t p, uint64_t n)
{
	if (n && skip_active(tx) && p <= tx->skip_lo && p + n > tx->skip_lo)
		return p + n + (tx->skip_hi - tx->skip_lo);
	return p + n;
}

static size_t ring_off(const struct dmt_tx *tx, uint64_t p)
{
	return tx->win_off + p % tx->win_len;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool zc_mode(const struct dmt_tx *tx)
{
	return tx->mode == DMT_MODE_DEVMEM || tx->mode == DMT_MODE_ZEROCOPY;
}

static int check_socket(struct dmt_tx *tx, struct dmt_err *err)
{
	int type = 0, proto = 0, domain = 0;
	socklen_t len = sizeof(int);

	if (getsockopt(tx->fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
		return dmt_err_set(err, -errno, "pass a connected (or to be connected) TCP socket",
				   "fd %d is not a socket", tx->fd);
	len = sizeof(int);
	getsockopt(tx->fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len);
	len = sizeof(int);
	getsockopt(tx->fd, SOL_SOCKET, SO_DOMAIN, &domain, &len);
	if (type != SOCK_STREAM || proto != IPPROTO_TCP ||
	    (domain != AF_INET && domain != AF_INET6))
		return dmt_err_set(err, -EINVAL, "devmem and MSG_ZEROCOPY need TCP over IPv4 or IPv6",
				   "fd %d is not a TCP/IP socket", tx->fd);
	return 0;
}

static int setup_socket(struct dmt_tx *tx, struct dmt_err *err)
{
	const char *ifname = tx->bind->c.ifname;
	int one = 1;

	if (zc_mode(tx) &&
	    setsockopt(tx->fd, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof(one)) < 0)
		return dmt_err_set(err, -errno,
				   errno == ENOPROTOOPT || errno == EOPNOTSUPP ?
				   "the kernel lacks MSG_ZEROCOPY for TCP (Linux >= 4.14)" : NULL,
				   "setsockopt(SO_ZEROCOPY) on fd %d", tx->fd);
	/*
	 * The route must leave through the bound device (contract 3.4).  Best
	 * set before connect; afterwards the kernel resets the cached route,
	 * and changing an existing device binding needs CAP_NET_RAW.
	 */
	if (setsockopt(tx->fd, SOL_SOCKET, SO_BINDTODEVICE, ifname,
		       strlen(ifname) + 1) < 0)
		return dmt_err_set(err, -errno,
				   errno == EPERM ?
				   "the socket is bound to another device: rebinding needs CAP_NET_RAW" :
				   errno == ENODEV ?
				   "the interface is not in the socket's network namespace, or is gone" :
				   NULL,
				   "setsockopt(SO_BINDTODEVICE, %s) on fd %d", ifname, tx->fd);
	return 0;
}

static int setup_memory(struct dmt_tx *tx, struct dmt_err *err)
{
	struct dmt_dmabuf *buf = tx->buf;

	if (tx->mode == DMT_MODE_ZEROCOPY) {
		if (buf->provider == DMT_PROVIDER_HOST) {
			tx->base = dmt_dmabuf_map(buf);
		} else if (buf->memfd >= 0) {
			/* pinnable pages: the backing memfd, not the PFN map */
			void *m = mmap(NULL, buf->size, PROT_READ, MAP_SHARED,
				       buf->memfd, 0);

			if (m == MAP_FAILED)
				return dmt_err_set(err, -errno, NULL,
						   "mapping the udmabuf's memfd for zerocopy");
			tx->memfd_map = m;
			tx->base = m;
		}
		if (!tx->base)
			return dmt_err_set(err, -EINVAL, "use the copy mode for this buffer",
					   "zerocopy from a %s buffer: %s",
					   dmt_provider_name(buf->provider), zc_refusal(buf));
	} else if (tx->mode == DMT_MODE_COPY) {
		tx->base = dmt_dmabuf_map(buf);
		if (!tx->base) {
			tx->bounce_len = tx->win_len < TX_BOUNCE_MAX ? tx->win_len : TX_BOUNCE_MAX;
			tx->bounce = malloc(tx->bounce_len);
			if (!tx->bounce)
				return dmt_err_set(err, -ENOMEM, NULL,
						   "bounce buffer of %zu bytes", tx->bounce_len);
		}
	}
	return 0;
}

DMT_API struct dmt_tx *dmt_tx_new(int fd, struct dmt_txbind *bind,
				  const struct dmt_tx_opts *opts,
				  struct dmt_err *err)
{
	size_t size, off, len;
	unsigned cap;
	struct dmt_tx *tx;

	dmt_err_clear(err);
	if (dmt_opts_check(opts, sizeof(*opts), err, "dmt_tx_opts"))
		return NULL;
	if (!bind || bind->c.mode == DMT_MODE_AUTO || !bind->c.buf) {
		dmt_err_set(err, -EINVAL, "make one with dmt_txbind_new",
			    "send engine: no TX binding");
		return NULL;
	}
	size = dmt_dmabuf_size(bind->c.buf);
	off = DMT_OPT(opts, window_off, 0);
	len = DMT_OPT(opts, window_len, 0);
	if (off >= size || (len && len > size - off)) {
		dmt_err_set(err, -ERANGE, "keep the window inside the buffer",
			    "send window [%zu, +%zu) outside the %zu-byte buffer",
			    off, len, size);
		return NULL;
	}
	if (!len)
		len = size - off;
	cap = DMT_OPT(opts, max_inflight, 0);
	if (!cap)
		cap = TX_DEFAULT_INFLIGHT;
	if (cap > TX_MAX_INFLIGHT) {
		dmt_err_set(err, -EINVAL, NULL, "max_inflight %u above %u", cap,
			    TX_MAX_INFLIGHT);
		return NULL;
	}

	tx = calloc(1, sizeof(*tx));
	if (!tx) {
		dmt_err_set(err, -ENOMEM, NULL, "send engine");
		return NULL;
	}
	tx->fd = fd;
	tx->bind = bind;
	tx->buf = bind->c.buf;
	tx->mode = bind->c.mode;
	tx->win_off = off;
	tx->win_len = len;
	tx->rec_cap = cap;
	tx->on_complete = DMT_OPT(opts, on_complete, NULL);
	tx->arg = DMT_OPT(opts, arg, NULL);
	tx->rec = calloc(cap, sizeof(*tx->rec));
	if (!tx->rec) {
		dmt_err_set(err, -ENOMEM, NULL, "%u send records", cap);
		goto err_free;
	}
	if (check_socket(tx, err) || setup_socket(tx, err) ||
	    setup_memory(tx, err))
		goto err_free;
	return tx;

err_free:
	dmt_tx_free(tx);
	return NULL;
}

DMT_API void dmt_tx_free(struct dmt_tx *tx)
{
	if (!tx)
		return;
	if (tx->memfd_map)
		munmap(tx->memfd_map, tx->buf->size);
	free(tx->bounce);
	free(tx->rec);
	free(tx);
}

DMT_API const struct dmt_err *dmt_tx_error(const struct dmt_tx *tx)
{
	return tx ? &tx->err : NULL;
}

DMT_API enum dmt_mode dmt_tx_mode(const struct dmt_tx *tx)
{
	return tx ? tx->mode : DMT_MODE_AUTO;
}

DMT_API int dmt_tx_fd(const struct dmt_tx *tx)
{
	return tx ? tx->fd : -EINVAL;
}

/* ------------------------------------------------------ region allocator */

DMT_API int dmt_tx_alloc(struct dmt_tx *tx, size_t len, struct dmt_region *r)
{
	uint64_t at;
	size_t phys;

	if (!len || len > tx->win_len)
		return tx_fail(tx, -EINVAL, "ask for 1 byte up to the window size",
			       "reserving %zu bytes of a %zu-byte window", len, tx->win_len);
	at = tx->head;
	phys = at % tx->win_len;
	if (phys + len > tx->win_len) {
		at += tx->win_len - phys;
		if (tx->tail == tx->head) {
			/* empty: restart at the window's beginning for free */
			tx->tail = tx->sent = tx->queued = tx->head = at;
		}
	}
	if (at + len - tx->tail > tx->win_len)
		return -EAGAIN;
	if (at != tx->head) {
		tx->skip_lo = tx->head;
		tx->skip_hi = at;
	}
	tx->last_lo = tx->head;
	tx->last_at = at;
	tx->last_len = len;
	tx->head = at + len;
	if (r) {
		r->off = ring_off(tx, at);
		r->len = len;
	}
	return 0;
}

DMT_API int dmt_tx_unalloc(struct dmt_tx *tx, const struct dmt_region *r)
{
	if (!r || !tx->last_len || r->len != tx->last_len ||
	    r->off != ring_off(tx, tx->last_at) || tx->head != tx->last_at + r->len)
		return tx_fail(tx, -EINVAL, "only the latest reservation can be given back, once",
			       "giving back region [%zu, +%zu)", r ? r->off : 0,
			       r ? r->len : 0);
	if (tx->queued > tx->last_at)
		return tx_fail(tx, -EBUSY, NULL,
			       "giving back region [%zu, +%zu): already queued",
			       r->off, r->len);
	tx->head = tx->last_lo;
	if (tx->skip_lo == tx->last_lo)
		tx->skip_hi = tx->skip_lo;
	tx->last_len = 0;
	return 0;
}

/* ---------------------------------------------------------- error queue */

/* Release records over the completed prefix; tail follows. */
static void release_completed(struct dmt_tx *tx)
{
	while (tx->rec_n && tx->rec[tx->rec_first].done) {
		struct tx_rec *rec = &tx->rec[tx->rec_first];

		tx->tail = rec->end;
		tx->st.inflight_bytes -= rec->bytes;
		rec->done = false;
		tx->rec_first = (tx->rec_first + 1) % tx->rec_cap;
		tx->rec_n--;
		tx->first_id++;
	}
}

static int complete_range(struct dmt_tx *tx, uint32_t lo, uint32_t hi, bool copied)
{
	uint32_t klo = lo - tx->first_id, khi = hi - tx->first_id;
	struct dmt_tx_completion c = { .lo = lo, .hi = hi, .copied = copied };

	if (klo > khi || khi >= tx->rec_n) {
		if (!tx->rec_n)
			return tx_fail(tx, -EPROTO,
				       "was the socket used with MSG_ZEROCOPY before dmt_tx_new?",
				       "completion for send ids %u-%u with none outstanding",
				       lo, hi);
		return tx_fail(tx, -EPROTO,
			       "was the socket used with MSG_ZEROCOPY before dmt_tx_new?",
			       "completion for send ids %u-%u outside the outstanding %u-%u",
			       lo, hi, tx->first_id, tx->first_id + tx->rec_n - 1);
	}
	for (uint32_t k = klo;; k++) {
		tx->rec[(tx->rec_first + k) % tx->rec_cap].done = true;
		if (k == khi)
			break;
	}
	tx->st.completions += (uint64_t)(khi - klo) + 1;
	if (copied)
		tx->st.copied += (uint64_t)(khi - klo) + 1;
	tx->st.notifications++;
	release_completed(tx);
	if (tx->on_complete)
		tx->on_complete(&c, tx->arg);
	return (int)(khi - klo) + 1;
}

/* Read every queued notification without waiting: ids completed or -errno. */
static int read_errqueue(struct dmt_tx *tx)
{
	int got = 0;

	for (;;) {
		union {
			char buf[CMSG_SPACE(sizeof(struct sock_extended_err) +
					    sizeof(struct sockaddr_in6)) + 64];
			struct cmsghdr align;
		} control;
		struct msghdr msg = {
			.msg_control = control.buf,
			.msg_controllen = sizeof(control.buf),
		};
		struct cmsghdr *cm;
		int ret;

		if (recvmsg(tx->fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return got;
			return tx_fail(tx, -errno, NULL, "reading the error queue of fd %d",
				       tx->fd);
		}
		if (msg.msg_flags & MSG_CTRUNC)
			return tx_fail(tx, -EPROTO, NULL,
				       "error-queue message on fd %d truncated (MSG_CTRUNC)",
				       tx->fd);
		for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
			struct sock_extended_err ee;

			if (!((cm->cmsg_level == SOL_IP && cm->cmsg_type == IP_RECVERR) ||
			      (cm->cmsg_level == SOL_IPV6 && cm->cmsg_type == IPV6_RECVERR)))
				continue;
			if (cm->cmsg_len < CMSG_LEN(sizeof(ee)))
				return tx_fail(tx, -EPROTO, NULL,
					       "short extended error on fd %d", tx->fd);
			memcpy(&ee, CMSG_DATA(cm), sizeof(ee));
			/* not ours (the user's timestamps, ICMP): leave it */
			if (ee.ee_origin != SO_EE_ORIGIN_ZEROCOPY)
				continue;
			if (ee.ee_errno)
				return tx_fail(tx, -EPROTO, NULL,
					       "zerocopy notification on fd %d carries errno %u",
					       tx->fd, ee.ee_errno);
			ret = complete_range(tx, ee.ee_info, ee.ee_data,
					     ee.ee_code & SO_EE_CODE_ZEROCOPY_COPIED);
			if (ret < 0)
				return ret;
			got += ret;
		}
	}
}

/*
 * Wait up to timeout_ms (-1: forever) for POLLERR (or one of events), then
 * read.  A POLLHUP or a pending socket error wakes poll without a
 * notification: such wake-ups sleep 1 ms so that waiting never spins.
 */
static int wait_errqueue(struct dmt_tx *tx, int timeout_ms, short events)
{
	int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;

	for (;;) {
		struct pollfd p = { .fd = tx->fd, .events = events };
		int left = -1, ret;

		if (deadline >= 0) {
			int64_t d = deadline - now_ms();

			left = d < 0 ? 0 : d > INT_MAX ? INT_MAX : (int)d;
		}
		ret = poll(&p, 1, left);
		if (ret < 0 && errno != EINTR)
			return tx_fail(tx, -errno, NULL, "poll on fd %d", tx->fd);
		if (ret > 0 && (p.revents & POLLNVAL))
			return tx_fail(tx, -EBADF, "keep the socket open while the engine uses it",
				       "poll on fd %d: not open", tx->fd);
		ret = read_errqueue(tx);
		if (ret || left == 0 || (p.revents & events))
			return ret;
		if (!tx->rec_n && !events)
			return 0;
		if (p.revents)
			nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
	}
}

DMT_API int dmt_tx_poll(struct dmt_tx *tx, int timeout_ms)
{
	if (!zc_mode(tx))
		return 0;
	if (timeout_ms == 0 || !tx->rec_n)
		return read_errqueue(tx);
	return wait_errqueue(tx, timeout_ms, 0);
}

/* ------------------------------------------------------------- sending */

static bool nonblocking(const struct dmt_tx *tx)
{
	int fl = fcntl(tx->fd, F_GETFL);

	return fl >= 0 && (fl & O_NONBLOCK);
}

/*
 * The queued bytes [sent, queued) as (offset, length) runs: split at the
 * window's end and at the skip; at most max_bytes in all.
 */
static unsigned queued_runs(const struct dmt_tx *tx, struct iovec *iov,
			    unsigned max_iov, size_t max_bytes)
{
	uint64_t p = tx->sent;
	size_t total = 0;
	unsigned n = 0;

	while (p < tx->queued && n < max_iov && total < max_bytes) {
		uint64_t end = tx->queued;
		size_t phys;

		if (skip_active(tx) && p == tx->skip_lo) {
			p = tx->skip_hi;
			continue;
		}
		phys = p % tx->win_len;
		if (end - p > tx->win_len - phys)
			end = p + (tx->win_len - phys);
		if (skip_active(tx) && p < tx->skip_lo && end > tx->skip_lo)
			end = tx->skip_lo;
		if (end - p > max_bytes - total)
			end = p + (max_bytes - total);
		iov[n].iov_base = (void *)(tx->win_off + phys);
		iov[n].iov_len = end - p;
		total += end - p;
		n++;
		p = end;
	}
	return n;
}

static const char *send_fix(const struct dmt_tx *tx, int e)
{
	switch (e) {
	case EPIPE:
		return "the peer closed the connection";
	case ECONNRESET:
		return "the peer reset the connection";
	case EHOSTUNREACH:
		return "no route to the peer through the bound interface";
	case ENODEV:
		return tx->mode == DMT_MODE_DEVMEM ?
		       "the route to the peer does not use the bound interface: the socket must "
		       "leave through it (SO_BINDTODEVICE / routing)" :
		       "the bound interface is gone";
	case EFAULT:
		return tx->mode == DMT_MODE_DEVMEM ?
		       "an offset lies past the end of the dma-buf" :
		       "the buffer's mapping cannot be read or pinned";
	case EINVAL:
		return tx->mode == DMT_MODE_DEVMEM ?
		       "the binding is gone (its netlink socket closed or the device left) "
		       "or SO_ZEROCOPY is off" : NULL;
	case ENOTCONN:
		return "connect the socket first";
	default:
		return NULL;
	}
}

/* ENOBUFS with nothing in flight: optmem is too small for one record. */
static int enobufs_fail(struct dmt_tx *tx)
{
	char val[32] = "?";
	FILE *f = fopen("/proc/sys/net/core/optmem_max", "re");

	if (f) {
		if (!fgets(val, sizeof(val), f))
			snprintf(val, sizeof(val), "?");
		val[strcspn(val, "\n")] = '\0';
		fclose(f);
	}
	return tx_fail(tx, -ENOBUFS,
		       "raise net.core.optmem_max (sysctl -w net.core.optmem_max=131072)",
		       "sendmsg(MSG_ZEROCOPY) on fd %d: no option memory for a completion "
		       "record with nothing in flight (net.core.optmem_max = %s)", tx->fd, val);
}

/* Copy mode without a mapping: read queued bytes into the bounce buffer. */
static int fill_bounce(struct dmt_tx *tx, size_t *fill)
{
	struct iovec runs[4];
	unsigned n = queued_runs(tx, runs, 4, tx->bounce_len);

	*fill = 0;
	for (unsigned i = 0; i < n; i++) {
		size_t off = (size_t)runs[i].iov_base;
		int ret = dmt_dmabuf_read(tx->buf, off, tx->bounce + *fill,
					  runs[i].iov_len);

		if (ret < 0)
			return tx_fail(tx, ret, NULL, "reading [%zu, +%zu) of the buffer",
				       off, runs[i].iov_len);
		*fill += runs[i].iov_len;
	}
	return 0;
}

/*
 * One sendmsg of the queued bytes (in copy mode without a mapping: of the
 * *tried bytes in the bounce buffer): bytes accepted, or -errno.
 */
static ssize_t send_once(struct dmt_tx *tx, size_t *tried)
{
	struct iovec iov[TX_MAX_IOV];
	union {
		char buf[CMSG_SPACE(sizeof(uint32_t))];
		struct cmsghdr align;
	} control;
	struct msghdr msg = { .msg_iov = iov };
	int flags = MSG_NOSIGNAL;
	unsigned n;
	ssize_t ret;

	if (tx->bounce) {
		iov[0].iov_base = tx->bounce;
		iov[0].iov_len = *tried;	/* filled by fill_bounce */
		msg.msg_iovlen = 1;
	} else {
		n = queued_runs(tx, iov, TX_MAX_IOV, TX_MAX_SEND);
		*tried = 0;
		for (unsigned i = 0; i < n; i++) {
			*tried += iov[i].iov_len;
			if (tx->base)
				iov[i].iov_base = (char *)tx->base + (size_t)iov[i].iov_base;
		}
		msg.msg_iovlen = n;
	}
	if (tx->mode == DMT_MODE_DEVMEM) {
		struct cmsghdr *cm;

		memset(&control, 0, sizeof(control));
		msg.msg_control = control.buf;
		msg.msg_controllen = sizeof(control.buf);
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_DEVMEM_DMABUF;
		cm->cmsg_len = CMSG_LEN(sizeof(uint32_t));
		memcpy(CMSG_DATA(cm), &tx->bind->c.id, sizeof(uint32_t));
	}
	if (zc_mode(tx))
		flags |= MSG_ZEROCOPY;

	if (tx->mode == DMT_MODE_COPY && tx->base && dmt_dmabuf_is_dmabuf(tx->buf))
		dmt_dmabuf_sync(tx->buf, true, DMA_BUF_SYNC_READ);
	ret = sendmsg(tx->fd, &msg, flags);
	if (ret < 0)
		ret = -errno;
	if (tx->mode == DMT_MODE_COPY && tx->base && dmt_dmabuf_is_dmabuf(tx->buf))
		dmt_dmabuf_sync(tx->buf, false, DMA_BUF_SYNC_READ);
	return ret;
}

/* Account n accepted bytes: one id and one record in the zerocopy modes. */
static void sent_bytes(struct dmt_tx *tx, size_t n, size_t tried)
{
	tx->sent = ring_advance(tx, tx->sent, n);
	tx->st.bytes += n;
	tx->st.sends++;
	if (n < tried)
		tx->st.partial++;
	if (!zc_mode(tx)) {
		tx->tail = tx->sent;	/* the kernel copied: free now */
		return;
	}
	tx->rec[(tx->rec_first + tx->rec_n) % tx->rec_cap] = (struct tx_rec){
		.end = tx->sent, .bytes = n,
	};
	tx->rec_n++;
	tx->st.inflight_bytes += n;
}

/* Send what is queued until done, EAGAIN, or an error. */
static ssize_t push(struct dmt_tx *tx)
{
	int64_t idle_since = -1;
	ssize_t total = 0;

	while (tx->sent < tx->queued) {
		size_t tried;
		ssize_t n;
		int ret;

		if (zc_mode(tx) && tx->rec_n == tx->rec_cap) {
			/* every record in use: a free one comes with a completion */
			ret = read_errqueue(tx);
			if (!ret && nonblocking(tx))
				return total;
			if (!ret)
				ret = wait_errqueue(tx, 1000, 0);
			if (ret < 0)
				return ret;
			continue;
		}
		if (tx->bounce && (ret = fill_bounce(tx, &tried)) < 0)
			return ret;
		n = send_once(tx, &tried);
		if (n > 0) {
			sent_bytes(tx, n, tried);
			total += n;
			idle_since = -1;
			continue;
		}
		if (n == 0)	/* nothing taken and no error: like EAGAIN */
			n = -EAGAIN;
		switch (-n) {
		case EINTR:
			continue;
		case EAGAIN:
			tx->st.eagain++;
			return total;
		case ENOBUFS:
			/*
			 * Option memory holds the records in flight and the
			 * unread notifications: read them, retry; with sends
			 * in flight their completions free it.
			 */
			tx->st.enobufs++;
			ret = read_errqueue(tx);
			if (ret < 0)
				return ret;
			if (ret > 0)
				continue;
			if (tx->rec_n) {
				if (nonblocking(tx))
					return total;
				ret = wait_errqueue(tx, 1000, 0);
				if (ret < 0)
					return ret;
				continue;
			}
			if (idle_since < 0)
				idle_since = now_ms();
			else if (now_ms() - idle_since > TX_ENOBUFS_IDLE_MS)
				return enobufs_fail(tx);
			poll(&(struct pollfd){ .fd = tx->fd }, 1, 10);
			continue;
		default:
			return tx_fail(tx, (int)n, send_fix(tx, (int)-n),
				       "sendmsg of %zu bytes on fd %d (%s%s%.0u)", tried, tx->fd,
				       dmt_mode_name(tx->mode),
				       tx->mode == DMT_MODE_DEVMEM ? ", dmabuf id " : "",
				       tx->mode == DMT_MODE_DEVMEM ? tx->bind->c.id : 0);
		}
	}
	return total;
}

DMT_API ssize_t dmt_tx_send(struct dmt_tx *tx, const struct dmt_region *r,
			    unsigned nr)
{
	size_t size = tx->buf->size;
	uint64_t q = tx->queued;

	if (!r && nr)
		return tx_fail(tx, -EINVAL, NULL, "sending %u regions from NULL", nr);
	/* check every region first: all are queued, or none */
	for (unsigned i = 0; i < nr; i++) {
		uint64_t at = q;

		if (!r[i].len)
			return tx_fail(tx, -EINVAL, NULL, "sending region %u: length 0", i);
		if (r[i].off > size || r[i].len > size - r[i].off)
			return tx_fail(tx, -ERANGE, NULL,
				       "sending region [%zu, +%zu): outside the %zu-byte buffer",
				       r[i].off, r[i].len, size);
		if (r[i].off < tx->win_off || r[i].off - tx->win_off + r[i].len > tx->win_len)
			return tx_fail(tx, -ERANGE, NULL,
				       "sending region [%zu, +%zu): outside the window [%zu, +%zu)",
				       r[i].off, r[i].len, tx->win_off, tx->win_len);
		if (skip_active(tx) && at == tx->skip_lo)
			at = tx->skip_hi;
		if (r[i].off != ring_off(tx, at) || r[i].len > tx->head - at)
			return tx_fail(tx, -EINVAL,
				       "send reserved regions, in the order dmt_tx_alloc gave them",
				       "sending region [%zu, +%zu): not the next reserved bytes "
				       "(next: %zu, %llu reserved)", r[i].off, r[i].len,
				       ring_off(tx, at), (unsigned long long)(tx->head - at));
		q = at + r[i].len;
	}
	tx->queued = q;
	if (q > tx->last_at)
		tx->last_len = 0;	/* the latest reservation is queued */
	return push(tx);
}

DMT_API ssize_t dmt_tx_flush(struct dmt_tx *tx)
{
	return push(tx);
}

DMT_API size_t dmt_tx_pending(const struct dmt_tx *tx)
{
	uint64_t n = tx->queued - tx->sent;

	if (skip_active(tx) && tx->sent <= tx->skip_lo && tx->queued >= tx->skip_hi)
		n -= tx->skip_hi - tx->skip_lo;
	return n;
}

DMT_API int dmt_tx_drain(struct dmt_tx *tx, int timeout_ms)
{
	int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;

	for (;;) {
		int64_t left = -1;
		ssize_t ret;

		if (tx->sent < tx->queued) {
			ret = push(tx);
			if (ret < 0)
				return ret;
		}
		if (tx->sent == tx->queued && !tx->rec_n)
			return 0;
		if (deadline >= 0) {
			left = deadline - now_ms();
			if (left <= 0)
				return tx_fail(tx, -ETIMEDOUT,
					       "the peer is not reading, or acknowledgements are lost",
					       "draining fd %d: %u sends (%llu bytes) in flight and "
					       "%zu bytes queued after %d ms", tx->fd, tx->rec_n,
					       (unsigned long long)tx->st.inflight_bytes,
					       dmt_tx_pending(tx), timeout_ms);
		}
		if (left > 1000 || left < 0)
			left = 1000;
		ret = wait_errqueue(tx, (int)left,
				    tx->sent < tx->queued ? POLLOUT : 0);
		if (ret < 0)
			return ret;
	}
}

DMT_API short dmt_tx_poll_events(const struct dmt_tx *tx)
{
	return (tx->sent < tx->queued ? POLLOUT : 0) | POLLERR;
}

DMT_API void dmt_tx_get_stats(const struct dmt_tx *tx, struct dmt_tx_stats *st)
{
	if (st)
		*st = tx->st;
}
