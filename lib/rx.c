// SPDX-License-Identifier: MIT
/*
 * rx.c - the RX side: a binding (bind-rx of a dma-buf to RX queues, or the
 * copy fallback the policy allows) and the receive engine of one TCP
 * connection.
 *
 * Devmem mode: one recvmsg(MSG_SOCK_DEVMEM) per dmt_rx_recv.  Its iov is a
 * linear buffer of max_bytes, and its length is the byte budget for all
 * payload: SCM_DEVMEM_LINEAR bytes are copied there, packed in order;
 * SCM_DEVMEM_DMABUF frags stay in the dma-buf but count against it too
 * (devmem contract 2.3).  The control buffer holds one cmsg per fragment
 * the caller can take; the kernel never writes a partial devmem cmsg and
 * stops early instead (put_cmsg_notrunc), so the cmsgs describe exactly
 * the bytes returned, in stream order.  Every DMABUF frag carries a token
 * the engine keeps; the next dmt_rx_recv or dmt_rx_release sorts them,
 * merges runs of consecutive tokens into ranges and gives them back with
 * SO_DEVMEM_DONTNEED, at most 128 ranges and 1024 frags per call (the
 * kernel's MAX_DONTNEED_TOKENS and MAX_DONTNEED_FRAGS); each call must
 * release exactly the frags it named.
 *
 * Copy mode: plain recv() into the host mapping of the buffer used as a
 * ring; a call returns at most max_bytes (and never more than the buffer),
 * so its frags are not overwritten before the next call.
 *
 * Nothing is allocated per call: the linear buffer, the control buffer and
 * the token array are allocated by dmt_rx_new (or given by the caller).
 *
 * 0.2, held chunks: dmt_rx_recv_hold hands the tokens to the caller, and
 * dmt_rx_put (any thread: SO_DEVMEM_DONTNEED takes no socket lock) gives
 * them back.  What is held is a bitmap indexed by token (the kernel hands
 * out the lowest free token, so it stays about as large as what is held),
 * under a mutex shared with the receiving thread: a put checks each token
 * against it (a token given back twice, or of another engine, is never
 * sent), then sorts, merges and sends outside the lock.  The engine's
 * counters (received, released, held, lost) live under the same mutex.
 * Copy mode holds ring pieces in a FIFO instead (token = sequence number);
 * the ring's tail is the oldest piece not yet given back.  The engine
 * keeps its own duplicate of the caller's fd: puts (any thread) and what a
 * call finds after the caller closed its fd go through it, so tokens never
 * go to a socket that reused a closed number; a receive, while the
 * caller's fd still names the socket, uses that fd (own_fd).  A fragment of a
 * dmabuf id no binding of the engine has is handed out flagged (0.1's
 * dmt_rx_recv keeps its -EPROTO).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <pthread.h>
#include <unistd.h>

#include "internal.h"
#include "dmt-uapi.h"

#define RX_DEFAULT_FRAGS 256
#define RX_DEFAULT_BYTES (1u << 20)
#define RX_MAX_FRAGS (1u << 16)
#define RX_MAX_BYTES (1u << 30)		/* below MAX_RW_COUNT, fits an int */
#define RX_MAX_QUEUES 65536
#define DONTNEED_MAX_RANGES 128		/* MAX_DONTNEED_TOKENS */
#define DONTNEED_MAX_FRAGS 1024		/* MAX_DONTNEED_FRAGS */
#define ETOOSMALL_KERNEL 525		/* include/linux/errno.h, not UAPI */
/* An options struct's size up to the end of its last field (libbpf's way:
 * a field added later is never in tail padding an old library ignores). */
/* ------------------------------------------------------------ RX binding */

/* Count RX queues of the binding's device; note a bound/busy one of ours. */
struct rxq_scan {
	unsigned start, count;
	uint32_t rx_queues;
	int busy;		/* first of our queues already bound, -1 */
	uint32_t busy_dmabuf;
	bool busy_io_uring;
};

static int rxq_scan_cb(const struct dmt_queue_info *q, void *arg)
{
	struct rxq_scan *s = arg;

	if (q->type != NETDEV_QUEUE_TYPE_RX)
		return 0;
	s->rx_queues++;
	if (s->busy < 0 && q->id >= s->start && q->id - s->start < s->count &&
	    (q->dmabuf || q->io_uring)) {
		s->busy = q->id;
		s->busy_dmabuf = q->dmabuf;
		s->busy_io_uring = q->io_uring;
	}
	return 0;
}

static bool rxq_scan(struct dmt_rxbind *bind, struct dmt_nl *nl,
		     struct rxq_scan *s)
{
	struct dmt_err saved = nl->err;
	int ret;

	*s = (struct rxq_scan){ .start = bind->queue_start,
				.count = bind->queue_count, .busy = -1 };
	ret = dmt_queue_dump(nl, bind->c.ifindex, rxq_scan_cb, s);
	nl->err = saved;
	return ret >= 0;
}

/*
 * The fix for a refused bind-rx, with the interface and queues named;
 * written into buf (NULL when there is nothing better than netlink.c's).
 */
static const char *bind_fix(struct dmt_rxbind *bind, struct dmt_nl *nl, int ret,
			    char *buf, size_t len)
{
	const char *x = nl->err.extack, *ifn = bind->c.ifname;
	unsigned last = bind->queue_start + bind->queue_count - 1;
	struct rxq_scan s;

	switch (ret) {
	case -EINVAL:
		if (strstr(x, "tcp-data-split is disabled")) {
			snprintf(buf, len, "enable header split: ethtool -G %s tcp-data-split on "
				 "(devmemtcp recv does it unless --no-setup)", ifn);
			return buf;
		}
		if (strstr(x, "hds-thresh")) {
			snprintf(buf, len, "set the header-split threshold to 0: "
				 "ethtool -G %s hds-thresh 0 (devmemtcp recv does it unless "
				 "--no-setup)", ifn);
			return buf;
		}
		if ((!x[0] || strstr(x, ".id")) && rxq_scan(bind, nl, &s) &&
		    last >= s.rx_queues) {
			snprintf(buf, len, "queue %u is out of range: %s has %u RX queue%s "
				 "(0-%u); pick a lower queue or add channels with "
				 "ethtool -L %s combined N",
				 bind->queue_start > s.rx_queues ? bind->queue_start : s.rx_queues,
				 ifn, s.rx_queues,
				 s.rx_queues == 1 ? "" : "s",
				 s.rx_queues ? s.rx_queues - 1 : 0, ifn);
			return buf;
		}
		return NULL;
	case -EEXIST:
		if (strstr(x, "already memory provider bound")) {
			if (rxq_scan(bind, nl, &s) && s.busy >= 0 && s.busy_dmabuf)
				snprintf(buf, len, "queue %d of %s is bound by another process "
					 "(dmabuf id %u): stop it, or pick another queue",
					 s.busy, ifn, s.busy_dmabuf);
			else if (s.busy >= 0 && s.busy_io_uring)
				snprintf(buf, len, "queue %d of %s is used by an io_uring zcrx "
					 "area: close it, or pick another queue", s.busy, ifn);
			else
				snprintf(buf, len, "a queue of %s %u-%u is bound by another "
					 "process: stop it, or pick another queue", ifn,
					 bind->queue_start, last);
			return buf;
		}
		if (strstr(x, "XDP")) {
			snprintf(buf, len, "detach the XDP program: ip link set dev %s xdp off",
				 ifn);
			return buf;
		}
		return NULL;
	case -ENODEV:
		snprintf(buf, len, "%s is not present (removed, or in another namespace)", ifn);
		return buf;
	}
	return NULL;
}

/* Try bind-rx; on refusal fill e (what failed, errno, extack, fix). */
static int try_devmem(struct dmt_rxbind *bind, struct dmt_err *e)
{
	unsigned start = bind->queue_start, count = bind->queue_count;
	char fixbuf[sizeof(e->fix)];
	uint32_t *queues, id = 0;
	struct dmt_nl *nl;
	int ret;

	queues = calloc(count, sizeof(*queues));
	if (!queues)
		return dmt_err_set(e, -ENOMEM, NULL, "%u queue ids", count);
	for (unsigned i = 0; i < count; i++)
		queues[i] = start + i;
	nl = dmt_bindcore_nl(&bind->c, "RX", e);
	ret = nl ? dmt_bind_rx_page(nl, bind->c.ifindex, dmt_dmabuf_fd(bind->c.buf),
				    queues, count, bind->rx_page_size, &id) : e->code;
	free(queues);
	if (!nl)
		return ret;
	if (ret < 0)
		return dmt_bindcore_refused(nl, ret,
					    bind_fix(bind, nl, ret, fixbuf, sizeof(fixbuf)), e,
					    "bind-rx of dma-buf fd %d on %s queue%s %u%s%.0u%s%.0u",
					    dmt_dmabuf_fd(bind->c.buf), bind->c.ifname,
					    count > 1 ? "s" : "", start, count > 1 ? "-" : "",
					    count > 1 ? start + count - 1 : 0,
					    bind->rx_page_size ? ", rx-page-size " : "",
					    bind->rx_page_size);
	dmt_bindcore_bound(&bind->c, nl, id);
	return 0;
}

DMT_API struct dmt_rxbind *dmt_rxbind_new(const char *ifname,
					  struct dmt_dmabuf *buf,
					  const struct dmt_rxbind_opts *opts,
					  struct dmt_err *err)
{
	struct dmt_rxbind *bind;
	struct dmt_err e = { 0 };
	enum dmt_mode policy;
	unsigned start, count;
	int ret;

	dmt_err_clear(err);
	if (dmt_opts_check(opts, DMT_OPTS_END(dmt_rxbind_opts, rx_page_size), err,
			   "dmt_rxbind_opts"))
		return NULL;
	policy = DMT_OPT(opts, policy, DMT_MODE_AUTO);
	start = DMT_OPT(opts, queue_start, 0);
	count = DMT_OPT(opts, queue_count, 0);
	if (!count)
		count = 1;
	if (policy != DMT_MODE_AUTO && policy != DMT_MODE_DEVMEM &&
	    policy != DMT_MODE_COPY) {
		dmt_err_set(err, -EINVAL, "use auto, devmem or copy (zerocopy is TX only)",
			    "RX binding: policy %s", dmt_mode_name(policy));
		return NULL;
	}
	if (count > RX_MAX_QUEUES || start > UINT32_MAX - count) {
		dmt_err_set(err, -EINVAL, NULL, "RX binding: queues %u + %u", start, count);
		return NULL;
	}
	bind = calloc(1, sizeof(*bind));
	if (!bind) {
		dmt_err_set(err, -ENOMEM, NULL, "RX binding on %s", ifname ? ifname : "");
		return NULL;
	}
	bind->queue_start = start;
	bind->queue_count = count;
	bind->rx_page_size = DMT_OPT(opts, rx_page_size, 0);
	if (dmt_bindcore_init(&bind->c, ifname, buf, "RX binding",
			      "name the interface the connection arrives on", err))
		goto err_free;

	if (policy == DMT_MODE_DEVMEM || policy == DMT_MODE_AUTO) {
		ret = dmt_bindcore_settle(&bind->c, policy, try_devmem(bind, &e), &e,
					  true, err);
		if (ret > 0)
			return bind;
		if (ret < 0)
			goto err_free;
	}
	if (!dmt_dmabuf_writable(buf)) {
		if (policy == DMT_MODE_AUTO && err) {
			char fix[sizeof(err->fix)];

			snprintf(fix, sizeof(fix), "%.100s%sno copy fallback either: the %s "
				 "buffer has no host mapping and no copy calls", e.fix,
				 e.fix[0] ? "; " : "", dmt_provider_name(buf->provider));
			dmt_err_copy(err, &e);
			snprintf(err->fix, sizeof(err->fix), "%s", fix);
		} else if (policy != DMT_MODE_AUTO) {
			dmt_err_set(err, -EINVAL, "use a buffer the CPU can write (udmabuf, heap, "
				    "host, cuda)",
				    "copy RX into a %s buffer: it has no host mapping and no "
				    "copy calls", dmt_provider_name(buf->provider));
		}
		goto err_free;
	}
	bind->c.mode = DMT_MODE_COPY;
	return bind;

err_free:
	free(bind);
	return NULL;
}

DMT_API void dmt_rxbind_free(struct dmt_rxbind *bind)
{
	if (!bind)
		return;
	dmt_bindcore_fini(&bind->c);	/* the queues restart */
	free(bind);
}

DMT_API enum dmt_mode dmt_rxbind_mode(const struct dmt_rxbind *bind)
{
	return bind ? bind->c.mode : DMT_MODE_AUTO;
}

DMT_API uint32_t dmt_rxbind_id(const struct dmt_rxbind *bind)
{
	return bind && bind->c.mode == DMT_MODE_DEVMEM ? bind->c.id : 0;
}

DMT_API const char *dmt_rxbind_fallback_reason(const struct dmt_rxbind *bind)
{
	return bind ? bind->c.reason : "";
}

/* --------------------------------------------------------- receive engine */

#define RX_MAX_BINDS 16
#define RX_COPY_HELD 4096		/* copy mode: chunks held at once */
#define RX_BOUNCE (1u << 20)		/* copy mode, unmapped buffer: per recv */
#define HELD_INIT_BITS 65536		/* token bitmap to start with */
#define CMSG_DEVMEM CMSG_SPACE(sizeof(struct dmabuf_cmsg))

/* Copy mode, dmt_rx_recv_hold: one held piece of the ring. */
struct copy_piece {
	uint64_t pos;		/* stream position; ring offset pos % size */
	uint32_t len;
	bool released;
};

struct dmt_rx {
	int fd;			/* our duplicate of the caller's socket */
	int user_fd;		/* the caller's number */
	dev_t sock_dev;		/* the socket's identity (fstat) */
	ino_t sock_ino;
	int rfd;		/* this receive call's: own_fd() */
	enum dmt_mode mode;
	struct dmt_rxbind *bind;	/* binds[0] */
	struct dmt_rxbind *binds[RX_MAX_BINDS];
	unsigned nbinds;
	struct dmt_dmabuf *buf;
	unsigned max_frags;	/* per call, and what the control buffer holds */
	size_t max_bytes;

	/* devmem */
	char *linear;		/* linear_len bytes: the iov */
	size_t linear_len;
	void *control;		/* max_frags (+1 if ours) devmem cmsgs */
	size_t control_len;
	bool own_linear, own_control;
	uint32_t *tokens;	/* the last call's; 0.1: held until the next */
	unsigned ntokens;
	struct dmt_rx_chunk *scratch;	/* dmt_rx_recv parses into these */

	/* copy */
	char *map;		/* NULL: recv into bounce, then the provider's
				 * copy call (CUDA) puts it into the buffer */
	char *bounce;
	size_t bounce_len;
	bool bounce_own;	/* the provider's staging memory (CUDA: pinned) */
	size_t size;
	uint64_t pos;		/* stream position; ring offset pos % size */
	int deferred;		/* -errno met after bytes were returned */

	/* what dmt_rx_put (any thread) shares with the receiving thread */
	pthread_mutex_t lock;
	uint64_t *held;		/* devmem: bit t set while token t is held */
	size_t held_bits;
	struct copy_piece *pieces;	/* copy: RX_COPY_HELD, a FIFO */
	uint64_t piece_tail, piece_head;	/* sequence numbers [tail, head) */
	struct dmt_rx_stats st;
	struct dmt_rx_counters cnt;
	struct dmt_err err;
};

/* Set rx->err (extack cleared) and return code. */
#define rx_fail(rx, code, fix, ...) \
	(dmt_err_clear(&(rx)->err), dmt_err_set(&(rx)->err, (code), (fix), __VA_ARGS__))

static int check_socket(int fd, struct dmt_err *err)
{
	int type = 0, proto = 0, domain = 0;
	socklen_t len = sizeof(int);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
		return dmt_err_set(err, -errno, "pass a connected TCP socket",
				   "fd %d is not a socket", fd);
	len = sizeof(int);
	getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len);
	len = sizeof(int);
	getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len);
	if (type != SOCK_STREAM || proto != IPPROTO_TCP ||
	    (domain != AF_INET && domain != AF_INET6))
		return dmt_err_set(err, -EINVAL, "devmem RX needs TCP over IPv4 or IPv6",
				   "fd %d is not a TCP/IP socket", fd);
	return 0;
}

static bool bind_usable(const struct dmt_rxbind *bind)
{
	return bind && bind->c.buf &&
	       (bind->c.mode == DMT_MODE_DEVMEM || bind->c.mode == DMT_MODE_COPY);
}

DMT_API struct dmt_rx *dmt_rx_new(int fd, struct dmt_rxbind *bind,
				  const struct dmt_rx_opts *opts, struct dmt_err *err)
{
	void *linear, *control;
	size_t bytes, linear_len, control_len;
	struct dmt_rx *rx;
	unsigned frags;

	dmt_err_clear(err);
	if (dmt_opts_check(opts, DMT_OPTS_END(dmt_rx_opts, control_len), err, "dmt_rx_opts"))
		return NULL;
	if (!bind_usable(bind)) {
		dmt_err_set(err, -EINVAL, "make one with dmt_rxbind_new",
			    "receive engine: no RX binding");
		return NULL;
	}
	frags = DMT_OPT(opts, max_frags, 0);
	bytes = DMT_OPT(opts, max_bytes, 0);
	linear = DMT_OPT(opts, linear, NULL);
	linear_len = DMT_OPT(opts, linear_len, 0);
	control = DMT_OPT(opts, control, NULL);
	control_len = DMT_OPT(opts, control_len, 0);
	if (!linear != !linear_len || !control != !control_len) {
		dmt_err_set(err, -EINVAL, "give a buffer and its length, or neither",
			    "receive engine: linear buffer %p of %zu bytes, control buffer %p "
			    "of %zu bytes", linear, linear_len, control, control_len);
		return NULL;
	}
	if (control && (control_len < CMSG_DEVMEM ||
			(frags && control_len / CMSG_DEVMEM < frags))) {
		dmt_err_set(err, -EINVAL, "give CMSG_SPACE(24) = 40 bytes of control buffer per "
			    "fragment (max_frags of them)",
			    "receive engine: control buffer of %zu bytes for %u frags",
			    control_len, frags ? frags : 1);
		return NULL;
	}
	if (control && !frags)
		frags = control_len / CMSG_DEVMEM;
	if (!frags)
		frags = RX_DEFAULT_FRAGS;
	if (!bytes)
		bytes = linear ? linear_len : RX_DEFAULT_BYTES;
	if (frags > RX_MAX_FRAGS || bytes > RX_MAX_BYTES) {
		dmt_err_set(err, -EINVAL, "at most 65536 frags and 1 GiB per call",
			    "receive engine: max_frags %u, max_bytes %zu", frags, bytes);
		return NULL;
	}
	if (linear && bytes > linear_len) {
		dmt_err_set(err, -EINVAL, "max_bytes is at most the linear buffer's length",
			    "receive engine: max_bytes %zu with a linear buffer of %zu bytes",
			    bytes, linear_len);
		return NULL;
	}
	if (check_socket(fd, err))
		return NULL;

	rx = calloc(1, sizeof(*rx));
	if (!rx) {
		dmt_err_set(err, -ENOMEM, NULL, "receive engine");
		return NULL;
	}
	pthread_mutex_init(&rx->lock, NULL);
	rx->user_fd = fd;
	/* our own reference to the socket: a number the caller closes and
	 * the kernel hands out again never gets our tokens */
	rx->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (rx->fd < 0) {
		dmt_err_set(err, -errno, "raise the open-file limit (ulimit -n)",
			    "receive engine: duplicate fd %d", fd);
		goto err_free;
	}
	{
		struct stat st;

		if (fstat(rx->fd, &st) == 0) {
			rx->sock_dev = st.st_dev;
			rx->sock_ino = st.st_ino;
		}
	}
	rx->bind = bind;
	rx->binds[0] = bind;
	rx->nbinds = 1;
	rx->buf = bind->c.buf;
	rx->mode = bind->c.mode;
	rx->max_frags = frags;
	rx->max_bytes = bytes;
	rx->size = dmt_dmabuf_size(bind->c.buf);
	rx->cnt.sz = sizeof(rx->cnt);
	if (rx->mode == DMT_MODE_DEVMEM) {
		rx->linear = linear;
		rx->linear_len = linear ? linear_len : bytes;
		rx->control = control;
		rx->control_len = control ? control_len : CMSG_DEVMEM * ((size_t)frags + 1);
		rx->own_linear = !linear;
		rx->own_control = !control;
		if (!linear)
			rx->linear = malloc(bytes);
		if (!control)
			rx->control = calloc(1, rx->control_len);
		rx->tokens = calloc(frags, sizeof(*rx->tokens));
		rx->scratch = calloc(frags, sizeof(*rx->scratch));
		rx->held_bits = HELD_INIT_BITS;
		rx->held = calloc(HELD_INIT_BITS / 64, sizeof(*rx->held));
		if (!rx->linear || !rx->control || !rx->tokens || !rx->scratch || !rx->held) {
			dmt_err_set(err, -ENOMEM, NULL,
				    "receive buffers (%zu linear bytes, %u frags)", bytes, frags);
			goto err_free;
		}
	} else {
		rx->map = dmt_dmabuf_map(bind->c.buf);
		if (!rx->size || !dmt_dmabuf_writable(bind->c.buf)) {
			dmt_err_set(err, -EINVAL, "copy mode needs a buffer the CPU can write",
				    "copy RX into a %s buffer without a host mapping or copy calls",
				    dmt_provider_name(bind->c.buf->provider));
			goto err_free;
		}
		if (!rx->map) {
			rx->bounce_len = rx->size < RX_BOUNCE ? rx->size : RX_BOUNCE;
			rx->bounce = dmt_dmabuf_staging_alloc(rx->buf, rx->bounce_len,
								&rx->bounce_own);
		}
		rx->scratch = calloc(frags, sizeof(*rx->scratch));
		rx->pieces = calloc(RX_COPY_HELD, sizeof(*rx->pieces));
		rx->piece_tail = rx->piece_head = 1;
		if (!rx->scratch || !rx->pieces || (!rx->map && !rx->bounce)) {
			dmt_err_set(err, -ENOMEM, NULL, "receive engine (%u frags)", frags);
			goto err_free;
		}
	}
	return rx;

err_free:
	dmt_rx_free(rx);
	return NULL;
}

DMT_API int dmt_rx_add_bind(struct dmt_rx *rx, struct dmt_rxbind *bind)
{
	if (!rx)
		return -EINVAL;
	if (!bind_usable(bind))
		return rx_fail(rx, -EINVAL, "make one with dmt_rxbind_new",
			       "add a binding to the engine of fd %d: no RX binding", rx->user_fd);
	if (rx->mode != DMT_MODE_DEVMEM || bind->c.mode != DMT_MODE_DEVMEM)
		return rx_fail(rx, -EINVAL, "only devmem engines take more bindings (copy mode "
			       "receives into its own buffer)",
			       "add a %s binding to the %s engine of fd %d",
			       dmt_mode_name(bind->c.mode), dmt_mode_name(rx->mode), rx->user_fd);
	for (unsigned i = 0; i < rx->nbinds; i++)
		if (rx->binds[i] == bind || rx->binds[i]->c.id == bind->c.id)
			return rx_fail(rx, -EEXIST, NULL,
				       "binding of dmabuf id %u is already on the engine of fd %d",
				       bind->c.id, rx->user_fd);
	if (rx->nbinds == RX_MAX_BINDS)
		return rx_fail(rx, -ENOSPC, "use another engine, or fewer dma-bufs",
			       "the engine of fd %d has %u bindings already", rx->user_fd,
			       RX_MAX_BINDS);
	rx->binds[rx->nbinds++] = bind;
	return 0;
}

/* ----------------------------------------------------------------- tokens */

static void sift_down(uint32_t *a, size_t root, size_t n)
{
	for (;;) {
		size_t c = 2 * root + 1;
		uint32_t t;

		if (c >= n)
			return;
		if (c + 1 < n && a[c + 1] > a[c])
			c++;
		if (a[root] >= a[c])
			return;
		t = a[root];
		a[root] = a[c];
		a[c] = t;
		root = c;
	}
}

/* Sort in place without allocating (qsort may malloc); usually sorted. */
static void sort_tokens(uint32_t *a, size_t n)
{
	size_t i;

	for (i = 1; i < n && a[i - 1] <= a[i]; i++)
		;
	if (i >= n)
		return;
	for (i = n / 2; i-- > 0;)
		sift_down(a, i, n);
	for (i = n; i-- > 1;) {
		uint32_t t = a[0];

		a[0] = a[i];
		a[i] = t;
		sift_down(a, 0, i);
	}
}

static bool held_test(const struct dmt_rx *rx, uint32_t t)
{
	return t < rx->held_bits && (rx->held[t / 64] >> (t % 64) & 1);
}

/*
 * Record tokens t[0..n) as held (under the lock).  Grows the bitmap as the
 * kernel's tokens grow (they are the lowest free, so they stay near the
 * number held).  -ENOMEM when it cannot.
 */
static int hold_tokens(struct dmt_rx *rx, const uint32_t *t, unsigned n)
{
	uint32_t top = 0;
	int ret = 0;

	for (unsigned i = 0; i < n; i++)
		if (t[i] > top)
			top = t[i];
	pthread_mutex_lock(&rx->lock);
	if (top >= rx->held_bits) {
		size_t bits = rx->held_bits, words;
		uint64_t *h;

		while (bits <= top)
			bits *= 2;
		words = bits / 64;
		h = realloc(rx->held, words * sizeof(*h));
		if (!h) {
			ret = -ENOMEM;
			goto out;
		}
		memset(h + rx->held_bits / 64, 0, (words - rx->held_bits / 64) * sizeof(*h));
		rx->held = h;
		rx->held_bits = bits;
	}
	for (unsigned i = 0; i < n; i++) {
		if (held_test(rx, t[i]))
			continue;	/* the kernel never hands one out twice */
		rx->held[t[i] / 64] |= 1ull << (t[i] % 64);
		rx->cnt.frags_received++;
		rx->cnt.frags_held++;
	}
out:
	pthread_mutex_unlock(&rx->lock);
	return ret;
}

/*
 * The fd for what the caller's own call does on its socket (receive, and
 * the tokens a receive or dmt_rx_release gives back): the caller's, while
 * it still names the socket the engine was made on, as recv(2) on it
 * would (so interposers, seccomp filters and tracers keyed on that fd see
 * the engine's calls); else the engine's duplicate (the caller closed it,
 * and the number may name another socket by now).  dmt_rx_put, from any
 * thread at any time, always uses the duplicate.
 */
static int own_fd(const struct dmt_rx *rx)
{
	struct stat st;

	if (rx->sock_ino && fstat(rx->user_fd, &st) == 0 &&
	    st.st_ino == rx->sock_ino && st.st_dev == rx->sock_dev)
		return rx->user_fd;
	return rx->fd;
}

/* Mark tokens held again after a failed SO_DEVMEM_DONTNEED. */
static void rehold(struct dmt_rx *rx, const uint32_t *t, unsigned n)
{
	pthread_mutex_lock(&rx->lock);
	for (unsigned i = 0; i < n; i++) {
		rx->held[t[i] / 64] |= 1ull << (t[i] % 64);
		rx->cnt.frags_held++;
	}
	pthread_mutex_unlock(&rx->lock);
}

/* One SO_DEVMEM_DONTNEED: released frags, or -errno. */
static int dontneed(struct dmt_rx *rx, int fd, const struct dmabuf_token *r, unsigned nr,
		    unsigned frags)
{
	int ret, e;

	ret = setsockopt(fd, SOL_SOCKET, SO_DEVMEM_DONTNEED, r, nr * sizeof(*r));
	e = errno;
	pthread_mutex_lock(&rx->lock);
	if (ret < 0) {
		rx_fail(rx, -e, e == EBADF ? "the socket is not TCP" : NULL,
			"setsockopt(SO_DEVMEM_DONTNEED) of %u frags in %u ranges on fd %d",
			frags, nr, rx->user_fd);
		pthread_mutex_unlock(&rx->lock);
		return -e;
	}
	rx->st.dontneed_calls++;
	rx->st.tokens += ret;
	rx->cnt.dontneed_calls++;
	rx->cnt.frags_released += ret;
	if ((unsigned)ret != frags) {
		rx->cnt.frags_lost += frags - ret;
		ret = rx_fail(rx, -EPROTO,
			      "tokens lost: the kernel did not know some (given back twice, "
			      "or not this socket's)",
			      "SO_DEVMEM_DONTNEED on fd %d released %d of %u frags "
			      "(ranges %u+%u .. %u+%u)", rx->user_fd, ret, frags,
			      r[0].token_start, r[0].token_count,
			      r[nr - 1].token_start, r[nr - 1].token_count);
	}
	pthread_mutex_unlock(&rx->lock);
	return ret;
}

/*
 * Give tokens t[0..n) back (t is reordered): those not held are dropped
 * and counted in *notheld; the rest are sorted, merged into ranges of
 * consecutive tokens and returned, at most DONTNEED_MAX_RANGES ranges and
 * DONTNEED_MAX_FRAGS frags per call.  Returns the frags released, or
 * -errno.  After a failed setsockopt the tokens not yet given back stay
 * held, moved to t[0..*left) (a later call tries again); a short count
 * drops them (the kernel has erased what it knew) and gives -EPROTO.
 */
static int put_tokens(struct dmt_rx *rx, int fd, uint32_t *t, unsigned n, unsigned *notheld,
		      unsigned *left)
{
	struct dmabuf_token r[DONTNEED_MAX_RANGES];
	unsigned nr = 0, frags = 0, batch_first = 0, k = 0, i;
	int total = 0, lost = 0, ret;

	*left = 0;
	pthread_mutex_lock(&rx->lock);
	for (i = 0; i < n; i++) {
		if (!held_test(rx, t[i])) {
			(*notheld)++;	/* also a token twice: given back once */
			continue;
		}
		rx->held[t[i] / 64] &= ~(1ull << (t[i] % 64));
		rx->cnt.frags_held--;
		t[k++] = t[i];
	}
	pthread_mutex_unlock(&rx->lock);
	if (!k)
		return 0;
	sort_tokens(t, k);
	for (i = 0; i <= k; i++) {
		bool flush = i == k;

		if (!flush && nr && frags < DONTNEED_MAX_FRAGS &&
		    t[i] == r[nr - 1].token_start + r[nr - 1].token_count) {
			r[nr - 1].token_count++;
			frags++;
			continue;
		}
		if (!flush && nr < DONTNEED_MAX_RANGES && frags < DONTNEED_MAX_FRAGS) {
			r[nr++] = (struct dmabuf_token){ .token_start = t[i], .token_count = 1 };
			frags++;
			continue;
		}
		if (nr) {
			ret = dontneed(rx, fd, r, nr, frags);
			if (ret == -EPROTO) {
				lost = ret;
			} else if (ret < 0) {
				/* nothing of this batch was released: keep it */
				rehold(rx, t + batch_first, k - batch_first);
				memmove(t, t + batch_first, (k - batch_first) * sizeof(*t));
				*left = k - batch_first;
				return ret;
			} else {
				total += ret;
			}
		}
		if (flush)
			break;
		batch_first = i;
		r[0] = (struct dmabuf_token){ .token_start = t[i], .token_count = 1 };
		nr = 1;
		frags = 1;
	}
	return lost ? lost : total;
}

/* The tokens of the last dmt_rx_recv (0.1): valid until the next receive. */
static int return_tokens(struct dmt_rx *rx, int fd)
{
	unsigned notheld = 0, left = 0;
	int ret;

	if (!rx->ntokens)
		return 0;
	ret = put_tokens(rx, fd, rx->tokens, rx->ntokens, &notheld, &left);
	rx->ntokens = left;
	return ret;
}

DMT_API int dmt_rx_release(struct dmt_rx *rx)
{
	if (!rx)
		return -EINVAL;
	return return_tokens(rx, own_fd(rx));
}

/* Copy mode: chunk seq given back; the ring's tail moves past the oldest. */
static int put_pieces(struct dmt_rx *rx, const struct dmt_rx_chunk *c, unsigned n,
		      unsigned *notheld)
{
	int done = 0;

	pthread_mutex_lock(&rx->lock);
	for (unsigned i = 0; i < n; i++) {
		uint64_t seq;
		struct copy_piece *p;

		if (c[i].flags & DMT_RX_CHUNK_LINEAR)
			continue;
		seq = rx->piece_tail + (uint32_t)(c[i].token - (uint32_t)rx->piece_tail);
		p = &rx->pieces[seq % RX_COPY_HELD];
		if (!c[i].token || seq >= rx->piece_head || p->released ||
		    p->len != c[i].len) {
			(*notheld)++;
			continue;
		}
		p->released = true;
		rx->cnt.frags_released++;
		rx->cnt.frags_held--;
		done++;
	}
	while (rx->piece_tail < rx->piece_head &&
	       rx->pieces[rx->piece_tail % RX_COPY_HELD].released)
		rx->piece_tail++;
	pthread_mutex_unlock(&rx->lock);
	return done;
}

DMT_API int dmt_rx_put(struct dmt_rx *rx, const struct dmt_rx_chunk *chunks, unsigned n)
{
	uint32_t batch[DONTNEED_MAX_FRAGS];
	unsigned notheld = 0, k = 0, left;
	int total = 0, ret = 0;

	if (!rx)
		return -EINVAL;
	if (!chunks && n) {
		pthread_mutex_lock(&rx->lock);
		rx_fail(rx, -EINVAL, NULL, "give back %u chunks at NULL", n);
		pthread_mutex_unlock(&rx->lock);
		return -EINVAL;
	}
	if (rx->mode != DMT_MODE_DEVMEM) {
		total = put_pieces(rx, chunks, n, &notheld);
	} else {
		for (unsigned i = 0; i <= n; i++) {
			if (i < n && (chunks[i].flags & DMT_RX_CHUNK_LINEAR))
				continue;
			if (i < n && k < DONTNEED_MAX_FRAGS) {
				batch[k++] = chunks[i].token;
				continue;
			}
			ret = put_tokens(rx, rx->fd, batch, k, &notheld, &left);
			if (ret < 0 && ret != -EPROTO)
				return ret;	/* these stay held: the caller may retry */
			if (ret > 0)
				total += ret;
			k = 0;
			if (i < n)
				batch[k++] = chunks[i].token;
			else
				break;
		}
		if (ret == -EPROTO)
			return ret;
	}
	if (notheld) {
		pthread_mutex_lock(&rx->lock);
		rx_fail(rx, -ENOENT, "give each chunk back once, to the engine it came from",
			"%u of %u chunks given back on fd %d were not held", notheld, n,
			rx->user_fd);
		pthread_mutex_unlock(&rx->lock);
		return -ENOENT;
	}
	return total;
}

DMT_API void dmt_rx_free(struct dmt_rx *rx)
{
	if (!rx)
		return;
	if (rx->held && rx->fd >= 0) {
		/* everything still held: the 0.1 call's and the caller's */
		uint32_t batch[DONTNEED_MAX_FRAGS];
		unsigned k = 0, notheld = 0, left;
		int fd = own_fd(rx);

		for (size_t w = 0; w < rx->held_bits / 64; w++) {
			for (uint64_t bits = rx->held[w]; bits; bits &= bits - 1) {
				batch[k++] = w * 64 + __builtin_ctzll(bits);
				if (k == DONTNEED_MAX_FRAGS) {
					put_tokens(rx, fd, batch, k, &notheld, &left);
					k = 0;
				}
			}
		}
		if (k)
			put_tokens(rx, fd, batch, k, &notheld, &left);
	}
	if (rx->fd >= 0)
		close(rx->fd);	/* else the kernel keeps them until close */
	if (rx->own_linear)
		free(rx->linear);
	if (rx->own_control)
		free(rx->control);
	free(rx->tokens);
	free(rx->scratch);
	free(rx->held);
	free(rx->pieces);
	if (rx->bounce)
		dmt_dmabuf_staging_free(rx->buf, rx->bounce, rx->bounce_own);
	pthread_mutex_destroy(&rx->lock);
	free(rx);
}

DMT_API const struct dmt_err *dmt_rx_error(const struct dmt_rx *rx)
{
	return rx ? &rx->err : NULL;
}

DMT_API void dmt_rx_get_stats(const struct dmt_rx *rx, struct dmt_rx_stats *st)
{
	struct dmt_rx *w = (struct dmt_rx *)rx;	/* the lock only */

	if (!rx || !st)
		return;
	pthread_mutex_lock(&w->lock);
	*st = rx->st;
	pthread_mutex_unlock(&w->lock);
}

DMT_API int dmt_rx_get_counters(const struct dmt_rx *rx, struct dmt_rx_counters *c)
{
	struct dmt_rx *w = (struct dmt_rx *)rx;	/* the lock only */
	struct dmt_rx_counters snap;
	size_t sz;

	if (!rx || !c || c->sz < sizeof(c->sz))
		return -EINVAL;
	sz = c->sz < sizeof(snap) ? c->sz : sizeof(snap);
	pthread_mutex_lock(&w->lock);
	snap = rx->cnt;
	pthread_mutex_unlock(&w->lock);
	memcpy((char *)c + sizeof(c->sz), (char *)&snap + sizeof(snap.sz), sz - sizeof(c->sz));
	return 0;
}

/* ------------------------------------------------------------- receiving */

static const char *recv_fix(const struct dmt_rx *rx, int e)
{
	switch (e) {
	case EFAULT:
		return rx->mode == DMT_MODE_COPY ?
		       "the flow is steered to a devmem RX queue, whose data only "
		       "recvmsg(MSG_SOCK_DEVMEM) can read: receive in devmem mode, or steer "
		       "the flow to a queue without a binding" :
		       "the kernel's skb chain ran short, or the linear buffer is unwritable";
	case ENODEV:
		return "a devmem skb held a fragment that is not devmem memory";
	case ECONNRESET:
		return "the peer reset the connection";
	case ENOTCONN:
		return "connect or accept the socket first";
	case ENOMEM:
	case EBUSY:
		return rx->mode == DMT_MODE_DEVMEM ?
		       "the kernel could not allocate a token: give fragments back sooner" :
		       NULL;
	default:
		return NULL;
	}
}

static struct dmt_rxbind *find_bind(const struct dmt_rx *rx, uint32_t id)
{
	for (unsigned i = 0; i < rx->nbinds; i++)
		if (rx->binds[i]->c.id == id)
			return rx->binds[i];
	return NULL;
}

/*
 * Walk the cmsgs of one recvmsg (which returned ret bytes into linear) into
 * chunks, in stream order.  Every token is kept in rx->tokens, also when
 * the message turns out malformed, so that it is given back.  strict (0.1):
 * a fragment of another binding than the engine's first is an error;
 * else it is handed out flagged DMT_RX_CHUNK_UNKNOWN.
 */
static int parse_devmem(struct dmt_rx *rx, struct msghdr *msg, size_t ret,
			const char *linear, struct dmt_rx_chunk *ch, unsigned max,
			bool strict)
{
	struct cmsghdr *cm;
	size_t lin = 0, sum = 0;
	unsigned n = 0, ncm = 0;
	uint64_t nfrags = 0, nunknown = 0;
	int bad = 0;

	for (cm = CMSG_FIRSTHDR(msg); cm; cm = CMSG_NXTHDR(msg, cm)) {
		struct dmt_rxbind *b;
		struct dmabuf_cmsg dc;

		if (cm->cmsg_level != SOL_SOCKET ||
		    (cm->cmsg_type != SCM_DEVMEM_LINEAR && cm->cmsg_type != SCM_DEVMEM_DMABUF))
			continue;	/* timestamps, TCP_INQ: not ours */
		ncm++;
		if (cm->cmsg_len < CMSG_LEN(sizeof(dc))) {
			if (!bad)
				bad = rx_fail(rx, -EPROTO, NULL,
					      "short devmem cmsg (%zu bytes) on fd %d",
					      (size_t)cm->cmsg_len, rx->user_fd);
			continue;
		}
		memcpy(&dc, CMSG_DATA(cm), sizeof(dc));
		if (cm->cmsg_type == SCM_DEVMEM_DMABUF && rx->ntokens < rx->max_frags)
			rx->tokens[rx->ntokens++] = dc.frag_token;	/* held either way */
		sum += dc.frag_size;
		if (bad)
			continue;
		if (n >= max) {
			bad = rx_fail(rx, -EPROTO, NULL,
				      "more devmem cmsgs on fd %d than the %u the control "
				      "buffer holds", rx->user_fd, max);
			continue;
		}
		if (cm->cmsg_type == SCM_DEVMEM_LINEAR) {
			if (dc.frag_size > ret - lin) {
				bad = rx_fail(rx, -EPROTO, NULL,
					      "linear cmsg of %u bytes on fd %d past the %zu "
					      "returned", dc.frag_size, rx->user_fd, ret);
				continue;
			}
			ch[n++] = (struct dmt_rx_chunk){
				.len = dc.frag_size, .flags = DMT_RX_CHUNK_LINEAR,
				.data = linear + lin,
			};
			lin += dc.frag_size;
			continue;
		}
		b = strict ? (dc.dmabuf_id == rx->bind->c.id ? rx->bind : NULL) :
			     find_bind(rx, dc.dmabuf_id);
		if (!b && strict) {
			bad = rx_fail(rx, -EPROTO,
				      "another binding's queue got this flow: steer it to the "
				      "queues bound here",
				      "fragment of dmabuf id %u on fd %d, bound here is id %u",
				      dc.dmabuf_id, rx->user_fd, rx->bind->c.id);
		} else if (b && (dc.frag_offset > b->c.buf->size ||
				 dc.frag_size > b->c.buf->size - dc.frag_offset)) {
			bad = rx_fail(rx, -EPROTO, NULL,
				      "fragment [%llu, +%u) on fd %d outside the %zu-byte dma-buf",
				      (unsigned long long)dc.frag_offset, dc.frag_size,
				      rx->user_fd, b->c.buf->size);
		} else {
			ch[n++] = (struct dmt_rx_chunk){
				.off = dc.frag_offset, .len = dc.frag_size,
				.token = dc.frag_token, .dmabuf_id = dc.dmabuf_id,
				.flags = b ? 0 : DMT_RX_CHUNK_UNKNOWN,
				.bind = b, .buf = b ? b->c.buf : NULL,
			};
			nfrags++;
			nunknown += !b;
		}
	}
	if (!bad && !ncm) {
		/* no devmem cmsg: ordinary bytes, all in the iov (contract 2.3) */
		ch[n++] = (struct dmt_rx_chunk){
			.len = ret, .flags = DMT_RX_CHUNK_LINEAR, .data = linear,
		};
		lin = ret;
		sum = ret;
	}
	if (!bad && sum != ret)
		bad = rx_fail(rx, -EPROTO, NULL,
			      "recvmsg on fd %d returned %zu bytes, its cmsgs describe %zu",
			      rx->user_fd, ret, sum);
	if (bad)
		return bad;
	pthread_mutex_lock(&rx->lock);
	rx->st.frags += nfrags;
	rx->st.linear_bytes += lin;
	rx->st.bytes += ret;
	rx->cnt.bytes += ret;
	rx->cnt.linear_bytes += lin;
	rx->cnt.frags_unknown += nunknown;
	pthread_mutex_unlock(&rx->lock);
	return n;
}

/*
 * One recvmsg(MSG_SOCK_DEVMEM) of at most budget bytes into linear.  The
 * tokens it brought are in rx->tokens and held.  strict: 0.1's behaviour
 * (EINTR retried, fragments of another binding an error).
 */
static int recv_devmem(struct dmt_rx *rx, struct dmt_rx_chunk *ch, unsigned max,
		       size_t budget, char *linear, int flags, bool strict)
{
	ssize_t ret;
	int n, e;

	for (;;) {
		struct iovec iov = { .iov_base = linear, .iov_len = budget };
		struct msghdr msg = {
			.msg_iov = &iov,
			.msg_iovlen = 1,
			.msg_control = rx->control,
			/* exactly max devmem cmsgs: never more frags than fit */
			.msg_controllen = CMSG_DEVMEM * max,
		};

		pthread_mutex_lock(&rx->lock);
		rx->st.recv_calls++;
		rx->cnt.recv_calls++;
		pthread_mutex_unlock(&rx->lock);
		ret = recvmsg(rx->rfd, &msg, MSG_SOCK_DEVMEM | flags);
		if (ret > 0) {
			n = parse_devmem(rx, &msg, ret, linear, ch, max, strict);
			e = hold_tokens(rx, rx->tokens, rx->ntokens);
			if (e) {
				/* cannot track them: straight back */
				struct dmabuf_token r = { 0 };

				for (unsigned i = 0; i < rx->ntokens; i++) {
					r.token_start = rx->tokens[i];
					r.token_count = 1;
					setsockopt(rx->rfd, SOL_SOCKET, SO_DEVMEM_DONTNEED, &r,
						   sizeof(r));
				}
				n = rx->ntokens;
				rx->ntokens = 0;
				return rx_fail(rx, e, NULL, "track %d tokens on fd %d", n,
					       rx->user_fd);
			}
			return n;
		}
		if (!ret)
			return 0;
		switch (errno) {
		case EINTR:
			if (strict)
				continue;
			return -EINTR;
		case EAGAIN:
			return -EAGAIN;
		case ETOOSMALL_KERNEL:
			/* the first cmsg did not fit: ask for less */
			if (budget > 1) {
				budget /= 2;
				continue;
			}
			return rx_fail(rx, -ENOBUFS,
				       "raise max_frags (the control buffer holds one cmsg per frag)",
				       "recvmsg(MSG_SOCK_DEVMEM) on fd %d: control buffer of %zu "
				       "bytes too small for one cmsg (ETOOSMALL)", rx->user_fd,
				       (size_t)msg.msg_controllen);
		default:
			return rx_fail(rx, -errno, recv_fix(rx, errno),
				       "recvmsg(MSG_SOCK_DEVMEM) of %zu bytes on fd %d (dmabuf id %u)",
				       budget, rx->user_fd, rx->bind->c.id);
		}
	}
}

/*
 * Copy mode: recv() into the ring, at most budget bytes and never over a
 * held chunk.  hold (dmt_rx_recv_hold): each piece is held until put.
 * A buffer without a mapping (CUDA) is filled through the bounce buffer
 * and the provider's copy call; its chunks have no data pointer.
 */
static int recv_copy(struct dmt_rx *rx, struct dmt_rx_chunk *ch, unsigned max,
		     size_t budget, int flags, bool hold)
{
	size_t total = 0, used;
	unsigned n = 0;

	if (rx->deferred) {
		int e = rx->deferred;

		rx->deferred = 0;
		return rx_fail(rx, e, recv_fix(rx, -e), "recv on fd %d", rx->user_fd);
	}
	pthread_mutex_lock(&rx->lock);
	used = rx->piece_tail < rx->piece_head ?
	       rx->pos - rx->pieces[rx->piece_tail % RX_COPY_HELD].pos : 0;
	if (hold && rx->piece_head - rx->piece_tail + max > RX_COPY_HELD)
		max = RX_COPY_HELD - (rx->piece_head - rx->piece_tail);
	pthread_mutex_unlock(&rx->lock);
	if (budget > rx->size - used)
		budget = rx->size - used;
	if (!budget || !max)
		return rx_fail(rx, -ENOBUFS, "give chunks back with dmt_rx_put",
			       "copy RX on fd %d: the %zu-byte buffer is full of held chunks",
			       rx->user_fd, rx->size);
	while (n < max && total < budget) {
		size_t off = rx->pos % rx->size;
		size_t len = budget - total;
		ssize_t ret;
		int e;

		if (len > rx->size - off)
			len = rx->size - off;	/* up to the end: wrap next */
		if (!rx->map && len > rx->bounce_len)
			len = rx->bounce_len;
		dmt_dmabuf_cpu_sync(rx->buf, true, DMA_BUF_SYNC_WRITE);
		ret = recv(rx->rfd, rx->map ? rx->map + off : rx->bounce, len,
			   n ? MSG_DONTWAIT : flags);
		e = errno;
		dmt_dmabuf_cpu_sync(rx->buf, false, DMA_BUF_SYNC_WRITE);
		if (ret > 0 && !rx->map) {
			int w = dmt_dmabuf_write(rx->buf, off, rx->bounce, ret);

			if (w < 0) {	/* the bytes are gone from the stream */
				rx_fail(rx, w, NULL, "copy of %zd received bytes into the %s "
					"buffer at offset %zu", ret,
					dmt_provider_name(rx->buf->provider), off);
				if (!n)
					return w;
				rx->deferred = w;
				break;
			}
		}
		pthread_mutex_lock(&rx->lock);
		rx->st.recv_calls++;
		rx->cnt.recv_calls++;
		if (ret > 0) {
			ch[n] = (struct dmt_rx_chunk){
				.off = off, .len = ret, .data = rx->map ? rx->map + off : NULL,
				.bind = rx->bind, .buf = rx->buf,
			};
			if (hold) {
				struct copy_piece *p = &rx->pieces[rx->piece_head % RX_COPY_HELD];

				*p = (struct copy_piece){ .pos = rx->pos, .len = ret };
				ch[n].token = (uint32_t)rx->piece_head++;
				rx->cnt.frags_received++;
				rx->cnt.frags_held++;
			}
			rx->st.bytes += ret;
			rx->st.frags++;
			rx->cnt.bytes += ret;
		}
		pthread_mutex_unlock(&rx->lock);
		if (ret < 0) {
			if (e == EINTR && !n && !hold)
				continue;
			if (n) {
				/* keep what we have; report the error next time */
				if (e != EAGAIN && e != EWOULDBLOCK && e != EINTR)
					rx->deferred = -e;
				break;
			}
			if (e == EAGAIN || e == EWOULDBLOCK)
				return -EAGAIN;
			if (e == EINTR)
				return -EINTR;
			return rx_fail(rx, -e, recv_fix(rx, e), "recv of %zu bytes on fd %d", len,
				       rx->user_fd);
		}
		if (!ret)
			break;	/* end of stream: 0 now, or on the next call */
		n++;
		rx->pos += ret;
		total += ret;
		if ((size_t)ret < len || off + ret < rx->size)
			break;	/* short, or room left: the next call goes on */
	}
	return n;
}

DMT_API int dmt_rx_recv(struct dmt_rx *rx, struct dmt_rx_frag *frags, unsigned max)
{
	int ret;

	if (!rx)
		return -EINVAL;
	if (!frags || !max)
		return rx_fail(rx, -EINVAL, NULL, "receiving into %u frags at %p", max,
			       (void *)frags);
	if (max > rx->max_frags)
		max = rx->max_frags;
	rx->rfd = own_fd(rx);
	ret = return_tokens(rx, rx->rfd);
	if (ret < 0)
		return ret;
	if (rx->mode == DMT_MODE_DEVMEM)
		ret = recv_devmem(rx, rx->scratch, max, rx->max_bytes, rx->linear, 0, true);
	else
		ret = recv_copy(rx, rx->scratch, max,
				rx->max_bytes < rx->size ? rx->max_bytes : rx->size, 0, false);
	for (int i = 0; i < ret; i++) {
		const struct dmt_rx_chunk *c = &rx->scratch[i];

		frags[i] = (struct dmt_rx_frag){
			.off = c->off, .len = c->len,
			.linear = c->flags & DMT_RX_CHUNK_LINEAR, .data = c->data,
		};
	}
	return ret;
}

DMT_API int dmt_rx_recv_hold(struct dmt_rx *rx, struct dmt_rx_chunk *chunks, unsigned max,
			     const struct dmt_rx_recv_opts *opts)
{
	size_t budget, linear_len;
	uint64_t flags;
	char *linear;
	int ret;

	if (!rx)
		return -EINVAL;
	if (dmt_opts_check(opts, DMT_OPTS_END(dmt_rx_recv_opts, linear_len), &rx->err,
			   "dmt_rx_recv_opts"))
		return rx->err.code;
	if (!chunks || !max)
		return rx_fail(rx, -EINVAL, NULL, "receiving into %u chunks at %p", max,
			       (void *)chunks);
	flags = DMT_OPT(opts, flags, 0);
	budget = DMT_OPT(opts, max_bytes, 0);
	linear = DMT_OPT(opts, linear, NULL);
	linear_len = DMT_OPT(opts, linear_len, 0);
	if (flags & ~(uint64_t)DMT_RX_DONTWAIT)
		return rx_fail(rx, -EINVAL, "known flags: DMT_RX_DONTWAIT",
			       "dmt_rx_recv_hold on fd %d: flags 0x%llx", rx->user_fd,
			       (unsigned long long)flags);
	if (!linear != !linear_len)
		return rx_fail(rx, -EINVAL, "give a linear buffer and its length, or neither",
			       "dmt_rx_recv_hold on fd %d: linear buffer %p of %zu bytes",
			       rx->user_fd, (void *)linear, linear_len);
	if (!budget)
		budget = linear ? linear_len : rx->max_bytes;
	if (!linear) {
		linear = rx->linear;
		linear_len = rx->linear_len;
	}
	if (rx->mode == DMT_MODE_DEVMEM && budget > linear_len)
		budget = linear_len;	/* the iov bounds devmem bytes too */
	if (budget > RX_MAX_BYTES)
		budget = RX_MAX_BYTES;
	if (max > rx->max_frags)
		max = rx->max_frags;
	rx->rfd = own_fd(rx);
	ret = return_tokens(rx, rx->rfd);	/* a 0.1 call's */
	if (ret < 0)
		return ret;
	if (rx->mode != DMT_MODE_DEVMEM)
		return recv_copy(rx, chunks, max, budget,
				 flags & DMT_RX_DONTWAIT ? MSG_DONTWAIT : 0, true);
	ret = recv_devmem(rx, chunks, max, budget, linear,
			  flags & DMT_RX_DONTWAIT ? MSG_DONTWAIT : 0, false);
	if (ret < 0 && rx->ntokens) {
		/* a malformed message: its tokens go straight back */
		struct dmt_err keep = rx->err;

		return_tokens(rx, rx->rfd);
		rx->err = keep;
	}
	rx->ntokens = 0;	/* the caller holds them now */
	return ret;
}
