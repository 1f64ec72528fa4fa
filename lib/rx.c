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
 * the token array are allocated by dmt_rx_new.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

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
	ret = nl ? dmt_bind_rx(nl, bind->c.ifindex, dmt_dmabuf_fd(bind->c.buf),
			       queues, count, &id) : e->code;
	free(queues);
	if (!nl)
		return ret;
	if (ret < 0)
		return dmt_bindcore_refused(nl, ret,
					    bind_fix(bind, nl, ret, fixbuf, sizeof(fixbuf)), e,
					    "bind-rx of dma-buf fd %d on %s queue%s %u%s%.0u",
					    dmt_dmabuf_fd(bind->c.buf), bind->c.ifname,
					    count > 1 ? "s" : "", start, count > 1 ? "-" : "",
					    count > 1 ? start + count - 1 : 0);
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
	if (dmt_opts_check(opts, sizeof(*opts), err, "dmt_rxbind_opts"))
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
	if (!dmt_dmabuf_map(buf)) {
		if (policy == DMT_MODE_AUTO && err) {
			char fix[sizeof(err->fix)];

			snprintf(fix, sizeof(fix), "%.100s%sno copy fallback either: the %s "
				 "buffer has no host mapping", e.fix, e.fix[0] ? "; " : "",
				 dmt_provider_name(buf->provider));
			dmt_err_copy(err, &e);
			snprintf(err->fix, sizeof(err->fix), "%s", fix);
		} else if (policy != DMT_MODE_AUTO) {
			dmt_err_set(err, -EINVAL, "use a host-mappable buffer (udmabuf, heap, host)",
				    "copy RX into a %s buffer: it has no host mapping",
				    dmt_provider_name(buf->provider));
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

struct dmt_rx {
	int fd;
	enum dmt_mode mode;
	struct dmt_rxbind *bind;
	struct dmt_dmabuf *buf;
	unsigned max_frags;
	size_t max_bytes;

	/* devmem */
	char *linear;		/* max_bytes: the iov */
	void *control;		/* (max_frags + 1) devmem cmsgs */
	size_t control_len;
	uint32_t *tokens;	/* held, max_frags */
	unsigned ntokens;

	/* copy */
	char *map;
	size_t size;
	uint64_t pos;		/* stream position; ring offset pos % size */
	int deferred;		/* -errno met after bytes were returned */

	struct dmt_rx_stats st;
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

DMT_API struct dmt_rx *dmt_rx_new(int fd, struct dmt_rxbind *bind,
				  const struct dmt_rx_opts *opts, struct dmt_err *err)
{
	struct dmt_rx *rx;
	unsigned frags;
	size_t bytes;

	dmt_err_clear(err);
	if (dmt_opts_check(opts, sizeof(*opts), err, "dmt_rx_opts"))
		return NULL;
	if (!bind || !bind->c.buf ||
	    (bind->c.mode != DMT_MODE_DEVMEM && bind->c.mode != DMT_MODE_COPY)) {
		dmt_err_set(err, -EINVAL, "make one with dmt_rxbind_new",
			    "receive engine: no RX binding");
		return NULL;
	}
	frags = DMT_OPT(opts, max_frags, 0);
	bytes = DMT_OPT(opts, max_bytes, 0);
	if (!frags)
		frags = RX_DEFAULT_FRAGS;
	if (!bytes)
		bytes = RX_DEFAULT_BYTES;
	if (frags > RX_MAX_FRAGS || bytes > RX_MAX_BYTES) {
		dmt_err_set(err, -EINVAL, "at most 65536 frags and 1 GiB per call",
			    "receive engine: max_frags %u, max_bytes %zu", frags, bytes);
		return NULL;
	}
	if (check_socket(fd, err))
		return NULL;

	rx = calloc(1, sizeof(*rx));
	if (!rx) {
		dmt_err_set(err, -ENOMEM, NULL, "receive engine");
		return NULL;
	}
	rx->fd = fd;
	rx->bind = bind;
	rx->buf = bind->c.buf;
	rx->mode = bind->c.mode;
	rx->max_frags = frags;
	rx->max_bytes = bytes;
	rx->size = dmt_dmabuf_size(bind->c.buf);
	if (rx->mode == DMT_MODE_DEVMEM) {
		rx->control_len = CMSG_SPACE(sizeof(struct dmabuf_cmsg)) * ((size_t)frags + 1);
		rx->linear = malloc(bytes);
		rx->control = calloc(1, rx->control_len);
		rx->tokens = calloc(frags, sizeof(*rx->tokens));
		if (!rx->linear || !rx->control || !rx->tokens) {
			dmt_err_set(err, -ENOMEM, NULL,
				    "receive buffers (%zu linear bytes, %u frags)", bytes, frags);
			goto err_free;
		}
	} else {
		rx->map = dmt_dmabuf_map(bind->c.buf);
		if (!rx->map || !rx->size) {
			dmt_err_set(err, -EINVAL, "copy mode needs a host-mappable buffer",
				    "copy RX into a %s buffer without a host mapping",
				    dmt_provider_name(bind->c.buf->provider));
			goto err_free;
		}
	}
	return rx;

err_free:
	dmt_rx_free(rx);
	return NULL;
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

/* One SO_DEVMEM_DONTNEED: released frags, or -errno. */
static int dontneed(struct dmt_rx *rx, const struct dmabuf_token *r, unsigned nr,
		    unsigned frags)
{
	int ret;

	ret = setsockopt(rx->fd, SOL_SOCKET, SO_DEVMEM_DONTNEED, r,
			 nr * sizeof(*r));
	if (ret < 0)
		return rx_fail(rx, -errno, errno == EBADF ? "the socket is not TCP" : NULL,
			       "setsockopt(SO_DEVMEM_DONTNEED) of %u frags in %u ranges on fd %d",
			       frags, nr, rx->fd);
	rx->st.dontneed_calls++;
	rx->st.tokens += ret;
	if ((unsigned)ret != frags)
		return rx_fail(rx, -EPROTO,
			       "tokens lost: the kernel did not know some (given back twice, "
			       "or not this socket's)",
			       "SO_DEVMEM_DONTNEED on fd %d released %d of %u frags "
			       "(ranges %u+%u .. %u+%u)", rx->fd, ret, frags,
			       r[0].token_start, r[0].token_count,
			       r[nr - 1].token_start, r[nr - 1].token_count);
	return ret;
}

/*
 * Give every held token back: sorted, merged into ranges of consecutive
 * tokens, at most DONTNEED_MAX_RANGES ranges and DONTNEED_MAX_FRAGS frags
 * per call.  Returns the frags released, or -errno.  After a failed
 * setsockopt the tokens not yet given back stay held (a later call tries
 * again); a short count drops them (the kernel has erased what it knew).
 */
static int return_tokens(struct dmt_rx *rx)
{
	struct dmabuf_token r[DONTNEED_MAX_RANGES];
	unsigned nr = 0, frags = 0, batch_first = 0, i;
	int total = 0, lost = 0, ret;
	uint32_t *t = rx->tokens;

	if (!rx->ntokens)
		return 0;
	sort_tokens(t, rx->ntokens);
	for (i = 0; i <= rx->ntokens; i++) {
		bool flush = i == rx->ntokens;

		if (!flush && nr && t[i] == t[i - 1])
			continue;	/* a token twice: give it back once */
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
			ret = dontneed(rx, r, nr, frags);
			if (ret == -EPROTO) {
				lost = ret;
			} else if (ret < 0) {
				/* nothing of this batch was released: keep it */
				memmove(t, t + batch_first,
					(rx->ntokens - batch_first) * sizeof(*t));
				rx->ntokens -= batch_first;
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
	rx->ntokens = 0;
	return lost ? lost : total;
}

DMT_API int dmt_rx_release(struct dmt_rx *rx)
{
	if (!rx)
		return -EINVAL;
	return return_tokens(rx);
}

DMT_API void dmt_rx_free(struct dmt_rx *rx)
{
	if (!rx)
		return;
	if (rx->ntokens)
		return_tokens(rx);	/* else the kernel keeps them until close */
	free(rx->linear);
	free(rx->control);
	free(rx->tokens);
	free(rx);
}

DMT_API const struct dmt_err *dmt_rx_error(const struct dmt_rx *rx)
{
	return rx ? &rx->err : NULL;
}

DMT_API void dmt_rx_get_stats(const struct dmt_rx *rx, struct dmt_rx_stats *st)
{
	if (rx && st)
		*st = rx->st;
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

/*
 * Walk the cmsgs of one recvmsg (which returned ret bytes) into frags, in
 * stream order.  Every token is kept, also when the message turns out
 * malformed, so that it is given back.
 */
static int parse_devmem(struct dmt_rx *rx, struct msghdr *msg, size_t ret,
			struct dmt_rx_frag *frags, unsigned max)
{
	struct cmsghdr *cm;
	size_t lin = 0, sum = 0;
	unsigned n = 0, ncm = 0;
	int bad = 0;

	for (cm = CMSG_FIRSTHDR(msg); cm; cm = CMSG_NXTHDR(msg, cm)) {
		struct dmabuf_cmsg dc;

		if (cm->cmsg_level != SOL_SOCKET ||
		    (cm->cmsg_type != SCM_DEVMEM_LINEAR && cm->cmsg_type != SCM_DEVMEM_DMABUF))
			continue;	/* timestamps, TCP_INQ: not ours */
		ncm++;
		if (cm->cmsg_len < CMSG_LEN(sizeof(dc))) {
			if (!bad)
				bad = rx_fail(rx, -EPROTO, NULL,
					      "short devmem cmsg (%zu bytes) on fd %d",
					      (size_t)cm->cmsg_len, rx->fd);
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
				      "buffer holds", rx->fd, max);
		} else if (cm->cmsg_type == SCM_DEVMEM_LINEAR) {
			if (dc.frag_size > ret - lin) {
				bad = rx_fail(rx, -EPROTO, NULL,
					      "linear cmsg of %u bytes on fd %d past the %zu "
					      "returned", dc.frag_size, rx->fd, ret);
				continue;
			}
			frags[n++] = (struct dmt_rx_frag){
				.len = dc.frag_size, .linear = true, .data = rx->linear + lin,
			};
			lin += dc.frag_size;
			rx->st.linear_bytes += dc.frag_size;
		} else if (dc.dmabuf_id != rx->bind->c.id) {
			bad = rx_fail(rx, -EPROTO,
				      "another binding's queue got this flow: steer it to the "
				      "queues bound here",
				      "fragment of dmabuf id %u on fd %d, bound here is id %u",
				      dc.dmabuf_id, rx->fd, rx->bind->c.id);
		} else if (dc.frag_offset > rx->size ||
			   dc.frag_size > rx->size - dc.frag_offset) {
			bad = rx_fail(rx, -EPROTO, NULL,
				      "fragment [%llu, +%u) on fd %d outside the %zu-byte dma-buf",
				      (unsigned long long)dc.frag_offset, dc.frag_size, rx->fd,
				      rx->size);
		} else {
			frags[n++] = (struct dmt_rx_frag){
				.off = dc.frag_offset, .len = dc.frag_size,
			};
			rx->st.frags++;
		}
	}
	if (bad)
		return bad;
	if (!ncm) {
		/* no devmem cmsg: ordinary bytes, all in the iov (contract 2.3) */
		frags[n++] = (struct dmt_rx_frag){ .len = ret, .linear = true, .data = rx->linear };
		rx->st.linear_bytes += ret;
		sum = ret;
	}
	if (sum != ret)
		return rx_fail(rx, -EPROTO, NULL,
			       "recvmsg on fd %d returned %zu bytes, its cmsgs describe %zu",
			       rx->fd, ret, sum);
	rx->st.bytes += ret;
	return n;
}

static int recv_devmem(struct dmt_rx *rx, struct dmt_rx_frag *frags, unsigned max)
{
	size_t budget = rx->max_bytes;
	ssize_t ret;

	for (;;) {
		struct iovec iov = { .iov_base = rx->linear, .iov_len = budget };
		struct msghdr msg = {
			.msg_iov = &iov,
			.msg_iovlen = 1,
			.msg_control = rx->control,
			/* exactly max devmem cmsgs: never more frags than fit */
			.msg_controllen = CMSG_SPACE(sizeof(struct dmabuf_cmsg)) * max,
		};

		rx->st.recv_calls++;
		ret = recvmsg(rx->fd, &msg, MSG_SOCK_DEVMEM);
		if (ret >= 0)
			return ret ? parse_devmem(rx, &msg, ret, frags, max) : 0;
		switch (errno) {
		case EINTR:
			continue;
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
				       "bytes too small for one cmsg (ETOOSMALL)", rx->fd,
				       (size_t)msg.msg_controllen);
		default:
			return rx_fail(rx, -errno, recv_fix(rx, errno),
				       "recvmsg(MSG_SOCK_DEVMEM) of %zu bytes on fd %d (dmabuf id %u)",
				       budget, rx->fd, rx->bind->c.id);
		}
	}
}

static int recv_copy(struct dmt_rx *rx, struct dmt_rx_frag *frags, unsigned max)
{
	size_t budget = rx->max_bytes < rx->size ? rx->max_bytes : rx->size;
	size_t total = 0;
	unsigned n = 0;

	if (rx->deferred) {
		int e = rx->deferred;

		rx->deferred = 0;
		return rx_fail(rx, e, recv_fix(rx, -e), "recv on fd %d", rx->fd);
	}
	while (n < max && total < budget) {
		size_t off = rx->pos % rx->size;
		size_t len = budget - total;
		ssize_t ret;
		int e;

		if (len > rx->size - off)
			len = rx->size - off;	/* up to the end: wrap next */
		dmt_dmabuf_sync(rx->buf, true, DMA_BUF_SYNC_WRITE);
		rx->st.recv_calls++;
		ret = recv(rx->fd, rx->map + off, len, n ? MSG_DONTWAIT : 0);
		e = errno;
		dmt_dmabuf_sync(rx->buf, false, DMA_BUF_SYNC_WRITE);
		if (ret < 0) {
			if (e == EINTR && !n)
				continue;
			if (n) {
				/* keep what we have; report the error next time */
				if (e != EAGAIN && e != EWOULDBLOCK && e != EINTR)
					rx->deferred = -e;
				break;
			}
			if (e == EAGAIN || e == EWOULDBLOCK)
				return -EAGAIN;
			return rx_fail(rx, -e, recv_fix(rx, e), "recv of %zu bytes on fd %d", len,
				       rx->fd);
		}
		if (!ret)
			break;	/* end of stream: 0 now, or on the next call */
		frags[n++] = (struct dmt_rx_frag){
			.off = off, .len = ret, .data = rx->map + off,
		};
		rx->pos += ret;
		total += ret;
		rx->st.bytes += ret;
		rx->st.frags++;
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
	ret = return_tokens(rx);
	if (ret < 0)
		return ret;
	if (rx->mode == DMT_MODE_DEVMEM)
		return recv_devmem(rx, frags, max);
	return recv_copy(rx, frags, max);
}
