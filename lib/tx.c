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
#include <sys/resource.h>
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
#define TX_DEFAULT_REQUESTS 64
#define TX_MAX_REQUESTS 65536
#define TX_DEFAULT_VECS 16
#define TX_ERRQ_KEEP 16			/* foreign error-queue messages kept */
#define TX_ERRQ_CTL 512			/* control bytes read per message */

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
	if (!dmt_dmabuf_map(buf))
		return "it has no host pages to pin (only host and udmabuf buffers can)";
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
	/* bytes [12, 16) are 0.1's tail padding, which 0.1 callers may have
	 * left unset: not checked (sizeof, not the end of policy) */
	if (dmt_opts_check(opts, sizeof(struct dmt_txbind_opts), err, "dmt_txbind_opts"))
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
	if (bind->c.mode == DMT_MODE_ZEROCOPY && buf->provider != DMT_PROVIDER_HOST) {
		/* pinnable pages: the backing memfd, not the dma-buf's PFN map */
		void *m = mmap(NULL, buf->size, PROT_READ, MAP_SHARED, buf->memfd, 0);

		if (m == MAP_FAILED) {
			dmt_err_set(err, -errno, NULL, "mapping the udmabuf's memfd for zerocopy");
			goto err_free;
		}
		bind->zc_map = m;
	}
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
	if (bind->zc_map)
		munmap(bind->zc_map, bind->c.buf->size);
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
	uint64_t end;		/* ring sends: position just past its bytes */
	uint64_t bytes;		/* bytes the send carried */
	int32_t req;		/* request slot, -1: a ring send */
	bool done;
};

/* A dmt_tx_submit request, in a slot of tx->req. */
struct tx_req {
	uint64_t cookie;
	struct dmt_txvec *v;	/* its runs: tx->vecs + slot * max_vecs */
	unsigned nvec;
	unsigned cur;		/* the run being sent */
	uint64_t cur_off;	/* bytes of v[cur] accepted */
	uint64_t left;		/* bytes not accepted yet */
	unsigned zc_out;	/* its sendmsgs without a completion yet */
};

/* An error-queue message that was not one of our completions. */
struct tx_errmsg {
	uint32_t len;
	int flags;
	unsigned char ctl[TX_ERRQ_CTL];
};

struct dmt_tx {
	int fd;
	enum dmt_mode mode;
	struct dmt_txbind *bind;
	struct dmt_dmabuf *buf;
	const char *base;	/* host address of buffer byte 0, NULL: none */
	char *bounce;		/* copy mode without a mapping */
	size_t bounce_len;
	bool bounce_own;	/* the provider's staging memory (CUDA: pinned) */

	size_t win_off, win_len;
	uint64_t tail, sent, queued, head;
	uint64_t skip_lo, skip_hi;	/* latest skip [lo, hi), empty if equal */
	uint64_t last_lo, last_at;	/* latest reservation, skip included */
	size_t last_len;		/* 0: nothing to give back */

	struct tx_rec *rec;	/* ring: rec[(rec_first + k) % rec_cap] */
	unsigned rec_cap, rec_first, rec_n;
	uint32_t first_id;	/* id of rec[rec_first]; next id = first_id + rec_n */

	/* requests: slots, the send order, the done cookies */
	struct tx_req *req;
	struct dmt_txvec *vecs;
	unsigned req_cap, max_vecs;
	unsigned *free_slot, nfree;
	unsigned *sq, sq_first, sq_n;	/* slots with bytes to send, in order */
	uint64_t *dq;			/* done cookies not yet reaped */
	unsigned dq_first, dq_n;
	uint64_t req_bytes;		/* bytes of requests not accepted yet */
	int deferred;			/* a send error seen in dmt_tx_submit */
	unsigned done_new;		/* requests done since dmt_tx_progress */
	bool in_cb;

	bool blocked;		/* sending waits for a completion */
	bool intr;		/* the last push was cut short by a signal */
	int64_t idle_since;	/* ENOBUFS with nothing in flight since */
	size_t max_send;	/* bytes per sendmsg */
	unsigned long long memlock;	/* RLIMIT_MEMLOCK when it caps us, 0 */

	struct tx_errmsg errq[TX_ERRQ_KEEP];
	unsigned eq_first, eq_n;

	void (*on_complete)(const struct dmt_tx_completion *c, void *arg);
	void (*on_done)(uint64_t cookie, void *arg);
	void *arg;
	struct dmt_tx_stats st;
	uint64_t st_requests, st_done, st_stalls, st_splits;
	uint64_t st_errq_other, st_errq_lost;
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

/* Bytes to send: the ring's queued bytes, then the requests in order. */
static bool have_work(const struct dmt_tx *tx)
{
	return tx->sent < tx->queued || tx->sq_n;
}

static void stall(struct dmt_tx *tx)
{
	if (!tx->blocked)
		tx->st_stalls++;
	tx->blocked = true;
}

/* CAP_IPC_LOCK in the effective set: pinned pages are not accounted. */
static bool cap_ipc_lock(void)
{
	char buf[2048], *p;
	unsigned long long eff;
	ssize_t n;
	int fd;

	fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	p = strstr(buf, "\nCapEff:");
	if (!p || sscanf(p + 8, "%llx", &eff) != 1)
		return false;
	return eff & (1ull << 14);	/* CAP_IPC_LOCK */
}

/*
 * MSG_ZEROCOPY from host memory accounts each sendmsg's pages, plus 2, in
 * the user's locked_vm against RLIMIT_MEMLOCK (mm_account_pinned_pages)
 * unless the caller has CAP_IPC_LOCK; a sendmsg larger than the limit
 * fails with ENOBUFS however long one waits.  Keep each one below it.
 * Devmem sends are not accounted.
 */
static void set_max_send(struct dmt_tx *tx)
{
	size_t page = sysconf(_SC_PAGESIZE);
	struct rlimit rl;
	unsigned long long pages;

	tx->max_send = TX_MAX_SEND;
	tx->memlock = 0;
	if (tx->mode != DMT_MODE_ZEROCOPY || getrlimit(RLIMIT_MEMLOCK, &rl) ||
	    rl.rlim_cur == RLIM_INFINITY || cap_ipc_lock())
		return;
	tx->memlock = rl.rlim_cur | 1;	/* non-zero: the limit applies */
	pages = rl.rlim_cur / page;
	if (pages > 2 && (pages - 2) * page < tx->max_send)
		tx->max_send = (pages - 2) * page;
	else if (pages <= 2)
		tx->max_send = page;
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

/*
 * SO_ZEROCOPY in the devmem and zerocopy modes; SO_BINDTODEVICE in devmem
 * mode only (the fallbacks send from host memory and may take any route).
 * On failure the socket is left as it was found.
 */
static int setup_socket(struct dmt_tx *tx, struct dmt_err *err)
{
	const char *ifname = tx->bind->c.ifname;
	int one = 1, was_zc = 0, e;
	socklen_t len = sizeof(was_zc);

	if (!zc_mode(tx))
		return 0;
	getsockopt(tx->fd, SOL_SOCKET, SO_ZEROCOPY, &was_zc, &len);
	if (setsockopt(tx->fd, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof(one)) < 0)
		return dmt_err_set(err, -errno,
				   errno == ENOPROTOOPT || errno == EOPNOTSUPP ?
				   "the kernel lacks MSG_ZEROCOPY for TCP (Linux >= 4.14)" : NULL,
				   "setsockopt(SO_ZEROCOPY) on fd %d", tx->fd);
	if (tx->mode != DMT_MODE_DEVMEM)
		return 0;
	/*
	 * The route must leave through the bound device (contract 3.4).  Best
	 * set before connect; afterwards the kernel resets the cached route,
	 * and changing an existing device binding needs CAP_NET_RAW.
	 */
	if (setsockopt(tx->fd, SOL_SOCKET, SO_BINDTODEVICE, ifname,
		       strlen(ifname) + 1) < 0) {
		e = errno;
		if (!was_zc)
			setsockopt(tx->fd, SOL_SOCKET, SO_ZEROCOPY, &was_zc, sizeof(was_zc));
		return dmt_err_set(err, -e,
				   e == EPERM ?
				   "the socket is bound to another device: rebinding needs CAP_NET_RAW" :
				   e == ENODEV ?
				   "the interface is not in the socket's network namespace, or is gone" :
				   NULL,
				   "setsockopt(SO_BINDTODEVICE, %s) on fd %d", ifname, tx->fd);
	}
	return 0;
}

/*
 * The host address of a binding's byte 0 for sendmsg, NULL when its
 * iovecs are not addresses (devmem: offsets) or there is no mapping (copy
 * mode reads through a bounce buffer).
 */
static const char *bind_base(const struct dmt_txbind *bind)
{
	switch (bind->c.mode) {
	case DMT_MODE_ZEROCOPY:
		if (bind->c.buf->provider == DMT_PROVIDER_HOST)
			return dmt_dmabuf_map(bind->c.buf);
		return bind->zc_map;
	case DMT_MODE_COPY:
		return dmt_dmabuf_map(bind->c.buf);
	default:
		return NULL;
	}
}

static int need_bounce(struct dmt_tx *tx, size_t len)
{
	if (tx->bounce)
		return 0;
	tx->bounce_len = len < TX_BOUNCE_MAX ? len : TX_BOUNCE_MAX;
	tx->bounce = dmt_dmabuf_staging_alloc(tx->buf, tx->bounce_len, &tx->bounce_own);
	if (!tx->bounce)
		return tx_fail(tx, -ENOMEM, NULL, "bounce buffer of %zu bytes", tx->bounce_len);
	return 0;
}

static int setup_memory(struct dmt_tx *tx, struct dmt_err *err)
{
	struct dmt_dmabuf *buf = tx->buf;

	tx->base = bind_base(tx->bind);
	if (tx->mode == DMT_MODE_ZEROCOPY && !tx->base)
		return dmt_err_set(err, -EINVAL, "use the copy mode for this buffer",
				   "zerocopy from a %s buffer: %s",
				   dmt_provider_name(buf->provider), zc_refusal(buf));
	if (tx->mode == DMT_MODE_COPY && !tx->base && need_bounce(tx, tx->win_len))
		return dmt_err_copy(err, &tx->err);
	return 0;
}

DMT_API struct dmt_tx *dmt_tx_new(int fd, struct dmt_txbind *bind,
				  const struct dmt_tx_opts *opts,
				  struct dmt_err *err)
{
	size_t size, off, len;
	unsigned cap, reqs, vecs;
	struct dmt_tx *tx;

	dmt_err_clear(err);
	if (dmt_opts_check(opts, DMT_OPTS_END(dmt_tx_opts, on_done), err, "dmt_tx_opts"))
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
	reqs = DMT_OPT(opts, max_requests, 0);
	if (!reqs)
		reqs = TX_DEFAULT_REQUESTS;
	vecs = DMT_OPT(opts, max_vecs, 0);
	if (!vecs)
		vecs = TX_DEFAULT_VECS;
	if (cap > TX_MAX_INFLIGHT || reqs > TX_MAX_REQUESTS || vecs > TX_MAX_IOV) {
		dmt_err_set(err, -EINVAL, NULL, "max_inflight %u (up to %u), max_requests %u "
			    "(up to %u), max_vecs %u (up to %u)", cap, TX_MAX_INFLIGHT,
			    reqs, TX_MAX_REQUESTS, vecs, TX_MAX_IOV);
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
	tx->req_cap = reqs;
	tx->max_vecs = vecs;
	tx->idle_since = -1;
	tx->on_complete = DMT_OPT(opts, on_complete, NULL);
	tx->on_done = DMT_OPT(opts, on_done, NULL);
	tx->arg = DMT_OPT(opts, arg, NULL);
	tx->rec = calloc(cap, sizeof(*tx->rec));
	tx->req = calloc(reqs, sizeof(*tx->req));
	tx->vecs = calloc((size_t)reqs * vecs, sizeof(*tx->vecs));
	tx->free_slot = calloc(reqs, sizeof(*tx->free_slot));
	tx->sq = calloc(reqs, sizeof(*tx->sq));
	tx->dq = calloc(reqs, sizeof(*tx->dq));
	if (!tx->rec || !tx->req || !tx->vecs || !tx->free_slot || !tx->sq || !tx->dq) {
		dmt_err_set(err, -ENOMEM, NULL, "%u send records, %u requests", cap, reqs);
		goto err_free;
	}
	for (unsigned i = 0; i < reqs; i++) {
		tx->free_slot[i] = reqs - 1 - i;
		tx->req[i].v = tx->vecs + (size_t)i * vecs;
	}
	tx->nfree = reqs;
	set_max_send(tx);
	/* the socket last: nothing after it can fail */
	if (check_socket(tx, err) || setup_memory(tx, err) || setup_socket(tx, err))
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
	if (tx->bounce)
		dmt_dmabuf_staging_free(tx->buf, tx->bounce, tx->bounce_own);
	free(tx->rec);
	free(tx->req);
	free(tx->vecs);
	free(tx->free_slot);
	free(tx->sq);
	free(tx->dq);
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

/* ------------------------------------------------------------- requests */

/* Every byte accepted and every sendmsg completed: the cookie is done. */
static void req_done(struct dmt_tx *tx, unsigned slot)
{
	struct tx_req *r = &tx->req[slot];

	tx->dq[(tx->dq_first + tx->dq_n) % tx->req_cap] = r->cookie;
	tx->dq_n++;
	tx->free_slot[tx->nfree++] = slot;
	tx->st_done++;
	tx->done_new++;
}

/* Hand done cookies to opts.on_done, outside the engine's own loops. */
static void deliver_done(struct dmt_tx *tx)
{
	if (!tx->on_done || tx->in_cb)
		return;
	tx->in_cb = true;
	while (tx->dq_n) {
		uint64_t c = tx->dq[tx->dq_first];

		tx->dq_first = (tx->dq_first + 1) % tx->req_cap;
		tx->dq_n--;
		tx->on_done(c, tx->arg);
	}
	tx->in_cb = false;
}

/* ---------------------------------------------------------- error queue */

/* Release records over the completed prefix; tail follows. */
static void release_completed(struct dmt_tx *tx)
{
	while (tx->rec_n && tx->rec[tx->rec_first].done) {
		struct tx_rec *rec = &tx->rec[tx->rec_first];

		if (rec->req < 0)
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
		struct tx_rec *rec = &tx->rec[(tx->rec_first + k) % tx->rec_cap];

		if (!rec->done && rec->req >= 0) {
			struct tx_req *r = &tx->req[rec->req];

			if (!--r->zc_out && !r->left)
				req_done(tx, rec->req);
		}
		rec->done = true;
		if (k == khi)
			break;
	}
	tx->st.completions += (uint64_t)(khi - klo) + 1;
	if (copied)
		tx->st.copied += (uint64_t)(khi - klo) + 1;
	tx->st.notifications++;
	tx->blocked = false;
	release_completed(tx);
	if (tx->on_complete)
		tx->on_complete(&c, tx->arg);
	return (int)(khi - klo) + 1;
}

/* Not a completion of ours: keep it for dmt_tx_errqueue_msg. */
static void keep_errmsg(struct dmt_tx *tx, const struct msghdr *msg)
{
	struct tx_errmsg *m;

	if (tx->eq_n == TX_ERRQ_KEEP) {		/* full: the oldest goes */
		tx->eq_first = (tx->eq_first + 1) % TX_ERRQ_KEEP;
		tx->eq_n--;
		tx->st_errq_lost++;
	}
	m = &tx->errq[(tx->eq_first + tx->eq_n) % TX_ERRQ_KEEP];
	m->len = msg->msg_controllen < TX_ERRQ_CTL ? msg->msg_controllen : TX_ERRQ_CTL;
	memcpy(m->ctl, msg->msg_control, m->len);
	m->flags = msg->msg_flags;
	tx->eq_n++;
	tx->st_errq_other++;
}

/* Read every queued notification without waiting: ids completed or -errno. */
static int read_errqueue(struct dmt_tx *tx)
{
	int got = 0;

	for (;;) {
		union {
			char buf[TX_ERRQ_CTL];
			struct cmsghdr align;
		} control;
		struct msghdr msg = {
			.msg_control = control.buf,
			.msg_controllen = sizeof(control.buf),
		};
		struct sock_extended_err ee;
		struct cmsghdr *cm, *zc = NULL;
		int ret;

		if (recvmsg(tx->fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return got;
			return tx_fail(tx, -errno, NULL, "reading the error queue of fd %d",
				       tx->fd);
		}
		/*
		 * Ours: an extended error of origin zerocopy (other control
		 * messages beside it, such as IP_PKTINFO, only decorate it).
		 * Anything else (the user's timestamps, ICMP errors) was
		 * dequeued by this read and would be lost: keep it.
		 */
		for (cm = CMSG_FIRSTHDR(&msg); cm && !zc; cm = CMSG_NXTHDR(&msg, cm)) {
			if (((cm->cmsg_level == SOL_IP && cm->cmsg_type == IP_RECVERR) ||
			     (cm->cmsg_level == SOL_IPV6 && cm->cmsg_type == IPV6_RECVERR)) &&
			    cm->cmsg_len >= CMSG_LEN(sizeof(ee))) {
				memcpy(&ee, CMSG_DATA(cm), sizeof(ee));
				if (ee.ee_origin == SO_EE_ORIGIN_ZEROCOPY)
					zc = cm;
			}
		}
		if (!zc) {
			keep_errmsg(tx, &msg);
			continue;
		}
		memcpy(&ee, CMSG_DATA(zc), sizeof(ee));
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

/*
 * Wait up to timeout_ms (-1: forever) for POLLERR (or one of events), then
 * read.  A POLLHUP or a pending socket error wakes poll without a
 * notification: such wake-ups sleep 1 ms so that waiting never spins.  A
 * signal ends the wait: -EINTR (poll(2) is never restarted).
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
		if (ret < 0 && errno == EINTR) {
			tx->intr = true;
			return tx_fail(tx, -EINTR, NULL,
				       "waiting for completions on fd %d: interrupted by a signal",
				       tx->fd);
		}
		if (ret < 0)
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
	int ret;

	if (!zc_mode(tx))
		ret = 0;
	else if (timeout_ms == 0 || !tx->rec_n)
		ret = read_errqueue(tx);
	else
		ret = wait_errqueue(tx, timeout_ms, 0);
	deliver_done(tx);
	return ret;
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

/*
 * ENOBUFS with nothing in flight and sendmsg at its smallest: say which
 * limit, RLIMIT_MEMLOCK when it applies, else option memory.
 */
static int enobufs_fail(struct dmt_tx *tx, size_t tried)
{
	char val[32] = "?";
	FILE *f;

	if (tx->memlock)
		return tx_fail(tx, -ENOBUFS,
			       "the user's pinned pages are over it: raise it (ulimit -l, "
			       "LimitMEMLOCK=), give the process CAP_IPC_LOCK, or use the copy mode",
			       "MSG_ZEROCOPY of %zu bytes on fd %d: over RLIMIT_MEMLOCK (%llu KiB)",
			       tried, tx->fd, tx->memlock >> 10);
	f = fopen("/proc/sys/net/core/optmem_max", "re");
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

/* Copy mode without a mapping: read runs of buf into the bounce buffer. */
static int fill_bounce(struct dmt_tx *tx, struct dmt_dmabuf *buf,
		       const struct iovec *runs, unsigned n, size_t *fill)
{
	*fill = 0;
	for (unsigned i = 0; i < n && *fill < tx->bounce_len; i++) {
		size_t off = (size_t)runs[i].iov_base;
		size_t len = runs[i].iov_len;
		int ret;

		if (len > tx->bounce_len - *fill)
			len = tx->bounce_len - *fill;
		ret = dmt_dmabuf_read(buf, off, tx->bounce + *fill, len);
		if (ret < 0)
			return tx_fail(tx, ret, NULL, "reading [%zu, +%zu) of the buffer", off, len);
		*fill += len;
	}
	return 0;
}

/*
 * One sendmsg of runs (offsets into bind's buffer) of bind: iovecs are
 * offsets in devmem mode, addresses where the buffer is mapped, else a
 * bounce copy.  Bytes accepted, or -errno; *tried gets what was offered.
 */
static ssize_t send_runs(struct dmt_tx *tx, struct dmt_txbind *bind,
			 struct iovec *iov, unsigned n, bool nowait, size_t *tried)
{
	union {
		char buf[CMSG_SPACE(sizeof(uint32_t))];
		struct cmsghdr align;
	} control;
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = n };
	struct dmt_dmabuf *buf = bind->c.buf;
	const char *base = bind == tx->bind ? tx->base : bind_base(bind);
	int flags = MSG_NOSIGNAL | (nowait ? MSG_DONTWAIT : 0);
	bool sync;
	ssize_t ret;

	*tried = 0;
	if (tx->mode == DMT_MODE_COPY && !base) {
		ret = fill_bounce(tx, buf, iov, n, tried);
		if (ret < 0)
			return ret;
		iov[0].iov_base = tx->bounce;
		iov[0].iov_len = *tried;
		msg.msg_iovlen = 1;
	} else {
		for (unsigned i = 0; i < n; i++) {
			*tried += iov[i].iov_len;
			if (base)
				iov[i].iov_base = (char *)base + (size_t)iov[i].iov_base;
		}
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
		memcpy(CMSG_DATA(cm), &bind->c.id, sizeof(uint32_t));
	}
	if (zc_mode(tx))
		flags |= MSG_ZEROCOPY;

	sync = tx->mode == DMT_MODE_COPY && base && dmt_dmabuf_is_dmabuf(buf);
	if (sync)
		dmt_dmabuf_cpu_sync(buf, true, DMA_BUF_SYNC_READ);
	ret = sendmsg(tx->fd, &msg, flags);
	if (ret < 0)
		ret = -errno;
	if (sync)
		dmt_dmabuf_cpu_sync(buf, false, DMA_BUF_SYNC_READ);
	return ret;
}

/* A send record for n accepted bytes (zerocopy modes: one id each). */
static void add_rec(struct dmt_tx *tx, uint64_t end, size_t n, int32_t req)
{
	tx->rec[(tx->rec_first + tx->rec_n) % tx->rec_cap] = (struct tx_rec){
		.end = end, .bytes = n, .req = req,
	};
	tx->rec_n++;
	tx->st.inflight_bytes += n;
}

static void count_send(struct dmt_tx *tx, size_t n, size_t tried)
{
	tx->st.bytes += n;
	tx->st.sends++;
	if (n < tried)
		tx->st.partial++;
}

/* The ring's queued bytes: one sendmsg; accounting done.  Accepted or -errno. */
static ssize_t send_ring(struct dmt_tx *tx, bool nowait, size_t *tried)
{
	struct iovec iov[TX_MAX_IOV];
	unsigned n = queued_runs(tx, iov, TX_MAX_IOV, tx->max_send);
	ssize_t ret = send_runs(tx, tx->bind, iov, n, nowait, tried);

	if (ret <= 0)
		return ret;
	tx->sent = ring_advance(tx, tx->sent, ret);
	count_send(tx, ret, *tried);
	if (!zc_mode(tx))
		tx->tail = tx->sent;	/* the kernel copied: free now */
	else
		add_rec(tx, tx->sent, ret, -1);
	return ret;
}

/* The oldest request with bytes to send: one sendmsg of one binding's runs. */
static ssize_t send_req(struct dmt_tx *tx, bool nowait, size_t *tried)
{
	unsigned slot = tx->sq[tx->sq_first];
	struct tx_req *r = &tx->req[slot];
	struct dmt_txbind *bind = r->v[r->cur].bind;
	struct iovec iov[TX_MAX_IOV];
	uint64_t off = r->cur_off, total = 0, n;
	unsigned k = 0;
	ssize_t ret;

	for (unsigned i = r->cur; i < r->nvec && r->v[i].bind == bind &&
	     k < TX_MAX_IOV && total < tx->max_send; i++) {
		uint64_t len = r->v[i].len - off;

		if (len > tx->max_send - total)
			len = tx->max_send - total;
		iov[k].iov_base = (void *)(uintptr_t)(r->v[i].off + off);
		iov[k].iov_len = len;
		k++;
		total += len;
		off = 0;
	}
	ret = send_runs(tx, bind, iov, k, nowait, tried);
	if (ret <= 0)
		return ret;
	count_send(tx, ret, *tried);
	r->left -= ret;
	tx->req_bytes -= ret;
	for (n = ret; n;) {
		uint64_t rest = r->v[r->cur].len - r->cur_off;

		if (n < rest) {
			r->cur_off += n;
			break;
		}
		n -= rest;
		r->cur++;
		r->cur_off = 0;
	}
	if (zc_mode(tx)) {
		add_rec(tx, 0, ret, slot);
		r->zc_out++;
	}
	if (!r->left) {
		tx->sq_first = (tx->sq_first + 1) % tx->req_cap;
		tx->sq_n--;
		if (!r->zc_out)
			req_done(tx, slot);
	}
	return ret;
}

/*
 * Send what is queued (the ring's bytes first, then the requests) until
 * done, EAGAIN, a wait for completions that nowait forbids, a signal
 * (tx->intr), or an error.  Returns the bytes sent, or -errno.
 */
static ssize_t push(struct dmt_tx *tx, bool nowait)
{
	ssize_t total = 0;

	tx->intr = false;
	while (have_work(tx)) {
		size_t tried = 0;
		ssize_t n;
		int ret;

		if (zc_mode(tx) && tx->rec_n == tx->rec_cap) {
			/* every record in use: a free one comes with a completion */
			ret = read_errqueue(tx);
			if (ret < 0)
				return ret;
			if (ret)
				continue;
			stall(tx);
			if (nowait)
				return total;
			ret = wait_errqueue(tx, 1000, 0);
			if (ret == -EINTR)
				return total ? total : ret;
			if (ret < 0)
				return ret;
			continue;
		}
		if (tx->sent < tx->queued)
			n = send_ring(tx, nowait, &tried);
		else
			n = send_req(tx, nowait, &tried);
		if (n > 0) {
			total += n;
			tx->blocked = false;
			tx->idle_since = -1;
			if (!nowait && (size_t)n < tried) {
				/* a blocking sendmsg stops short only for a signal
				 * (or SO_SNDTIMEO): return like write(2) */
				tx->intr = true;
				return total;
			}
			continue;
		}
		if (n == 0)	/* nothing taken and no error: like EAGAIN */
			n = -EAGAIN;
		switch (-n) {
		case EINTR:
			tx->intr = true;
			if (total)
				return total;
			return tx_fail(tx, -EINTR, NULL, "sendmsg on fd %d: interrupted by a signal",
				       tx->fd);
		case EAGAIN:
			tx->st.eagain++;
			return total;
		case ENOBUFS:
			/*
			 * Option memory holds the records in flight and the
			 * unread notifications, and RLIMIT_MEMLOCK the pages
			 * of zerocopy sends in flight: read them, retry; with
			 * sends in flight their completions free both.
			 */
			tx->st.enobufs++;
			ret = read_errqueue(tx);
			if (ret < 0)
				return ret;
			if (ret > 0)
				continue;
			if (tx->rec_n) {
				stall(tx);
				if (nowait)
					return total;
				ret = wait_errqueue(tx, 1000, 0);
				if (ret == -EINTR)
					return total ? total : ret;
				if (ret < 0)
					return ret;
				continue;
			}
			/* nothing in flight: a smaller sendmsg may fit the limit */
			set_max_send(tx);
			if (tx->memlock && tried > (size_t)sysconf(_SC_PAGESIZE) &&
			    tx->max_send >= tried) {
				tx->max_send = tried / 2;
				tx->st_splits++;
				continue;
			}
			if (tx->idle_since < 0)
				tx->idle_since = now_ms();
			else if (now_ms() - tx->idle_since > TX_ENOBUFS_IDLE_MS)
				return enobufs_fail(tx, tried);
			if (nowait)
				return total;
			if (poll(&(struct pollfd){ .fd = tx->fd }, 1, 10) < 0 && errno == EINTR) {
				tx->intr = true;
				if (total)
					return total;
				return tx_fail(tx, -EINTR, NULL,
					       "sendmsg on fd %d: interrupted by a signal", tx->fd);
			}
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

/* A blocking call's push: 0 bytes and a signal is -EINTR. */
static ssize_t push_blocking(struct dmt_tx *tx)
{
	ssize_t ret = push(tx, nonblocking(tx));

	if (ret == 0 && tx->intr)
		return tx_fail(tx, -EINTR, NULL, "sending on fd %d: interrupted by a signal",
			       tx->fd);
	return ret;
}

DMT_API ssize_t dmt_tx_send(struct dmt_tx *tx, const struct dmt_region *r,
			    unsigned nr)
{
	size_t size = tx->buf->size;
	uint64_t q = tx->queued;
	ssize_t ret;

	if (!r && nr)
		return tx_fail(tx, -EINVAL, NULL, "sending %u regions from NULL", nr);
	if (tx->sq_n && nr)
		return tx_fail(tx, -EBUSY,
			       "call dmt_tx_progress until dmt_tx_pending() is 0 first",
			       "sending ring regions on fd %d while submitted requests still have "
			       "%llu bytes to send (the stream would reorder)", tx->fd,
			       (unsigned long long)tx->req_bytes);
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
		if (skip_active(tx) && at < tx->skip_lo && at + r[i].len > tx->skip_lo)
			return tx_fail(tx, -EINVAL,
				       "send each region dmt_tx_alloc gave (or a prefix of it): "
				       "the window's tail it skipped is never sent",
				       "sending region [%zu, +%zu): runs %llu bytes into the skipped "
				       "end of the window [%zu, +%llu)", r[i].off, r[i].len,
				       (unsigned long long)(at + r[i].len - tx->skip_lo),
				       ring_off(tx, tx->skip_lo),
				       (unsigned long long)(tx->skip_hi - tx->skip_lo));
		q = at + r[i].len;
	}
	tx->queued = q;
	if (q > tx->last_at)
		tx->last_len = 0;	/* the latest reservation is queued */
	ret = push_blocking(tx);
	deliver_done(tx);
	return ret;
}

DMT_API ssize_t dmt_tx_flush(struct dmt_tx *tx)
{
	ssize_t ret = push_blocking(tx);

	deliver_done(tx);
	return ret;
}

DMT_API size_t dmt_tx_pending(const struct dmt_tx *tx)
{
	uint64_t n = tx->queued - tx->sent;

	if (skip_active(tx) && tx->sent <= tx->skip_lo && tx->queued >= tx->skip_hi)
		n -= tx->skip_hi - tx->skip_lo;
	return n + tx->req_bytes;
}

DMT_API int dmt_tx_drain(struct dmt_tx *tx, int timeout_ms)
{
	int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;

	for (;;) {
		int64_t left = -1;
		ssize_t ret;

		if (have_work(tx)) {
			ret = push(tx, nonblocking(tx));
			if (ret < 0)
				return ret;
			if (tx->intr)
				return tx_fail(tx, -EINTR, NULL,
					       "draining fd %d: interrupted by a signal", tx->fd);
		}
		deliver_done(tx);
		if (!have_work(tx) && !tx->rec_n)
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
		/* waiting for completions: POLLOUT would spin on a writable socket */
		ret = wait_errqueue(tx, (int)left,
				    have_work(tx) && !tx->blocked ? POLLOUT : 0);
		if (ret < 0)
			return ret;
	}
}

DMT_API short dmt_tx_poll_events(const struct dmt_tx *tx)
{
	return (have_work(tx) && !tx->blocked ? POLLOUT : 0) | POLLERR;
}

DMT_API void dmt_tx_get_stats(const struct dmt_tx *tx, struct dmt_tx_stats *st)
{
	if (st)
		*st = tx->st;
}

/* ================================================== 0.2: caller's regions */

DMT_API int dmt_tx_submit(struct dmt_tx *tx, const struct dmt_txvec *v,
			  unsigned n, uint64_t cookie)
{
	uint64_t total = 0;
	unsigned slot;
	struct tx_req *r;
	ssize_t ret;

	if (!tx)
		return -EINVAL;
	if (!v || !n)
		return tx_fail(tx, -EINVAL, NULL, "request %#llx: no runs (%u from %p)",
			       (unsigned long long)cookie, n, (const void *)v);
	if (n > tx->max_vecs)
		return tx_fail(tx, -EINVAL, "split the request, or raise dmt_tx_opts.max_vecs",
			       "request %#llx: %u runs, more than max_vecs %u",
			       (unsigned long long)cookie, n, tx->max_vecs);
	for (unsigned i = 0; i < n; i++) {
		const struct dmt_txbind *b = v[i].bind;
		size_t size;

		if (!b || !b->c.buf)
			return tx_fail(tx, -EINVAL, "make one with dmt_txbind_new",
				       "request %#llx run %u: no binding",
				       (unsigned long long)cookie, i);
		if (b->c.ifindex != tx->bind->c.ifindex)
			return tx_fail(tx, -EINVAL,
				       "bind every buffer on the interface the connection leaves through",
				       "request %#llx run %u: binding on %s (ifindex %u), the engine's "
				       "on %s (ifindex %u)", (unsigned long long)cookie, i,
				       b->c.ifname, b->c.ifindex, tx->bind->c.ifname,
				       tx->bind->c.ifindex);
		if (b->c.mode != tx->mode)
			return tx_fail(tx, -EINVAL,
				       "bind every buffer of a connection with the same policy",
				       "request %#llx run %u: a %s binding on a %s engine",
				       (unsigned long long)cookie, i, dmt_mode_name(b->c.mode),
				       dmt_mode_name(tx->mode));
		size = b->c.buf->size;
		if (!v[i].len || v[i].off > size || v[i].len > size - v[i].off)
			return tx_fail(tx, v[i].len ? -ERANGE : -EINVAL, NULL,
				       "request %#llx run %u: [%llu, +%llu) of the %zu-byte buffer",
				       (unsigned long long)cookie, i,
				       (unsigned long long)v[i].off,
				       (unsigned long long)v[i].len, size);
		if (tx->mode == DMT_MODE_COPY && !bind_base(b) && need_bounce(tx, TX_BOUNCE_MAX))
			return tx->err.code;
		total += v[i].len;
	}
	if (!tx->nfree || tx->req_cap - tx->nfree + tx->dq_n >= tx->req_cap)
		return -EAGAIN;		/* dmt_tx_progress and dmt_tx_reap free slots */

	slot = tx->free_slot[--tx->nfree];
	r = &tx->req[slot];
	memcpy(r->v, v, n * sizeof(*v));
	r->nvec = n;
	r->cookie = cookie;
	r->cur = 0;
	r->cur_off = 0;
	r->left = total;
	r->zc_out = 0;
	tx->sq[(tx->sq_first + tx->sq_n) % tx->req_cap] = slot;
	tx->sq_n++;
	tx->req_bytes += total;
	tx->st_requests++;

	/* accepted: a send error now is the next dmt_tx_progress's to report */
	ret = push(tx, true);
	if (ret < 0 && !tx->deferred)
		tx->deferred = (int)ret;
	return 0;
}

DMT_API int dmt_tx_progress(struct dmt_tx *tx)
{
	ssize_t ret = 0;
	int done;

	if (!tx)
		return -EINVAL;
	if (tx->deferred) {
		ret = tx->deferred;
		tx->deferred = 0;
	}
	if (!ret && zc_mode(tx))
		ret = read_errqueue(tx);
	if (ret >= 0)
		ret = push(tx, true);
	deliver_done(tx);
	if (ret < 0)
		return (int)ret;
	done = (int)tx->done_new;
	tx->done_new = 0;
	return done;
}

DMT_API int dmt_tx_reap(struct dmt_tx *tx, uint64_t *cookies, unsigned max)
{
	unsigned n = 0;

	if (!tx || (!cookies && max))
		return -EINVAL;
	while (n < max && tx->dq_n) {
		cookies[n++] = tx->dq[tx->dq_first];
		tx->dq_first = (tx->dq_first + 1) % tx->req_cap;
		tx->dq_n--;
	}
	return (int)n;
}

DMT_API int dmt_tx_query_stats(const struct dmt_tx *tx, struct dmt_tx_stats_v2 *st)
{
	struct dmt_tx_stats_v2 s = { .sz = sizeof(s) };
	size_t sz;

	if (!tx || !st || st->sz < sizeof(st->sz))
		return -EINVAL;
	sz = st->sz < sizeof(s) ? st->sz : sizeof(s);
	s.bytes = tx->st.bytes;
	s.sends = tx->st.sends;
	s.partial = tx->st.partial;
	s.completions = tx->st.completions;
	s.copied = tx->st.copied;
	s.notifications = tx->st.notifications;
	s.enobufs = tx->st.enobufs;
	s.eagain = tx->st.eagain;
	s.inflight_bytes = tx->st.inflight_bytes;
	s.requests = tx->st_requests;
	s.requests_done = tx->st_done;
	s.requests_active = tx->req_cap - tx->nfree;
	s.stalls = tx->st_stalls;
	s.max_send = tx->max_send;
	s.memlock_splits = tx->st_splits;
	s.errq_other = tx->st_errq_other;
	s.errq_pending = tx->eq_n;
	s.errq_lost = tx->st_errq_lost;
	s.sz = sz;
	memcpy(st, &s, sz);
	return 0;
}

DMT_API ssize_t dmt_tx_errqueue_msg(struct dmt_tx *tx, void *control, size_t len,
				    int *flags)
{
	struct tx_errmsg *m;

	if (!tx || (!control && len))
		return -EINVAL;
	if (!tx->eq_n)
		return 0;
	m = &tx->errq[tx->eq_first];
	if (len < m->len)
		return -EMSGSIZE;
	memcpy(control, m->ctl, m->len);
	if (flags)
		*flags = m->flags;
	tx->eq_first = (tx->eq_first + 1) % TX_ERRQ_KEEP;
	tx->eq_n--;
	return m->len;
}
