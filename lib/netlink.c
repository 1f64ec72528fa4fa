// SPDX-License-Identifier: MIT
/*
 * netlink.c - the generic netlink family "netdev" through libmnl: bind-tx,
 * dev-get and the queue-get dump.
 *
 * Every request carries NLM_F_ACK and runs until its ack (or NLMSG_DONE for
 * a dump); replies with another sequence number or port are left alone (a
 * dump stopped early leaves such replies behind).  The kernel's extended
 * ack is parsed here, because libmnl's default NLMSG_ERROR handling drops
 * it, and kept in nl->err.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>

#include "internal.h"
#include "dmt-uapi.h"

#define NL_RECV_SIZE 32768	/* what the kernel fills a dump skb up to */

/* Attribute names of one request, for "bad attribute fd" in errors. */
struct nl_req {
	struct nlmsghdr *nlh;
	const char *const *attr_names;
	unsigned nr_attr_names;
};

/* Returns >= 0 to go on, < 0 (a -errno) to stop. */
typedef int (*nl_data_cb)(const struct nlmsghdr *nlh, void *arg);

static struct nlmsghdr *nl_msg(struct dmt_nl *nl, void *buf, size_t len,
			       uint16_t type, uint8_t cmd, uint8_t version,
			       uint16_t flags)
{
	struct nlmsghdr *nlh;
	struct genlmsghdr *genl;

	memset(buf, 0, len);
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	nlh->nlmsg_seq = ++nl->seq;
	genl = mnl_nlmsg_put_extra_header(nlh, sizeof(*genl));
	genl->cmd = cmd;
	genl->version = version;
	return nlh;
}

/* The name of the request's attribute at byte offset offs, or NULL. */
static const char *attr_at(const struct nl_req *req, uint32_t offs,
			   char *buf, size_t len)
{
	const struct nlattr *a;
	unsigned type;

	mnl_attr_for_each(a, req->nlh, sizeof(struct genlmsghdr)) {
		if ((const char *)a - (const char *)req->nlh != offs)
			continue;
		type = mnl_attr_get_type(a);
		if (type < req->nr_attr_names && req->attr_names[type])
			return req->attr_names[type];
		snprintf(buf, len, "%u", type);
		return buf;
	}
	return NULL;
}

struct extack {
	const char *msg;
	uint32_t offs;		/* NLMSGERR_ATTR_OFFS, 0: none */
	int miss_type;		/* NLMSGERR_ATTR_MISS_TYPE, -1: none */
};

static int extack_attr_cb(const struct nlattr *a, void *data)
{
	struct extack *x = data;

	switch (mnl_attr_get_type(a)) {
	case NLMSGERR_ATTR_MSG:
		if (!mnl_attr_validate(a, MNL_TYPE_NUL_STRING))
			x->msg = mnl_attr_get_str(a);
		break;
	case NLMSGERR_ATTR_OFFS:
		if (!mnl_attr_validate(a, MNL_TYPE_U32))
			x->offs = mnl_attr_get_u32(a);
		break;
	case NLMSGERR_ATTR_MISS_TYPE:
		if (!mnl_attr_validate(a, MNL_TYPE_U32))
			x->miss_type = mnl_attr_get_u32(a);
		break;
	}
	return MNL_CB_OK;
}

/*
 * Parse the TLVs that follow an NLMSG_ERROR or NLMSG_DONE payload of hdrlen
 * bytes into nl->err.extack: the message, and the attribute it points at.
 */
static void nl_extack(struct dmt_nl *nl, const struct nl_req *req,
		      const struct nlmsghdr *nlh, size_t hdrlen)
{
	struct extack x = { .miss_type = -1 };
	char text[sizeof(nl->err.extack)], num[16];
	const char *attr = NULL;

	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS) ||
	    mnl_nlmsg_size(MNL_ALIGN(hdrlen)) > nlh->nlmsg_len)
		return;
	mnl_attr_parse(nlh, hdrlen, extack_attr_cb, &x);

	if (x.offs)
		attr = attr_at(req, x.offs, num, sizeof(num));
	if (x.msg && attr)
		snprintf(text, sizeof(text), "%s (attribute %s)", x.msg, attr);
	else if (x.msg)
		snprintf(text, sizeof(text), "%s", x.msg);
	else if (attr)
		snprintf(text, sizeof(text), "bad attribute %s", attr);
	else if (x.miss_type >= 0)
		snprintf(text, sizeof(text), "missing attribute %d", x.miss_type);
	else
		return;
	dmt_err_extack(&nl->err, text);
}

/* NLMSG_ERROR: 0 for an ack, else -errno with the extack kept. */
static int nl_error_msg(struct dmt_nl *nl, const struct nl_req *req,
			const struct nlmsghdr *nlh)
{
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
	size_t hdrlen = sizeof(*e);

	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*e)))
		return -EBADMSG;
	if (!e->error)
		return 0;
	/* without NETLINK_CAP_ACK the whole request is echoed */
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED) && e->msg.nlmsg_len > sizeof(e->msg))
		hdrlen += e->msg.nlmsg_len - sizeof(e->msg);
	nl_extack(nl, req, nlh, hdrlen);
	return e->error < 0 ? e->error : -e->error;
}

/* NLMSG_DONE ends a dump; it carries the dump's error, and extack. */
static int nl_done_msg(struct dmt_nl *nl, const struct nl_req *req,
		       const struct nlmsghdr *nlh)
{
	int error;

	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(int)))
		return 0;
	memcpy(&error, mnl_nlmsg_get_payload(nlh), sizeof(error));
	if (error)
		nl_extack(nl, req, nlh, sizeof(int));
	return error < 0 ? error : -error;
}

/*
 * Send req and read until its ack, error or NLMSG_DONE, handing data
 * messages to cb.  Returns 0, cb's first negative value, or -errno (with
 * the extack in nl->err).  Once cb stops, the rest is read and dropped.
 */
static int nl_exchange(struct dmt_nl *nl, const struct nl_req *req,
		       nl_data_cb cb, void *arg)
{
	const struct nlmsghdr *nlh;
	uint32_t seq = req->nlh->nlmsg_seq;
	bool done = false, intr = false;
	int ret = 0, r, n;
	char *buf;

	buf = malloc(NL_RECV_SIZE);
	if (!buf)
		return -ENOMEM;
	if (mnl_socket_sendto(nl->sock, req->nlh, req->nlh->nlmsg_len) < 0) {
		ret = -errno;
		goto out;
	}
	while (!done) {
		n = mnl_socket_recvfrom(nl->sock, buf, NL_RECV_SIZE);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			break;
		}
		for (nlh = (const void *)buf; mnl_nlmsg_ok(nlh, n);
		     nlh = mnl_nlmsg_next(nlh, &n)) {
			if (nlh->nlmsg_seq != seq ||
			    (nlh->nlmsg_pid && nlh->nlmsg_pid != nl->portid))
				continue;	/* not ours, or left from before */
			if (nlh->nlmsg_flags & NLM_F_DUMP_INTR)
				intr = true;
			switch (nlh->nlmsg_type) {
			case NLMSG_ERROR:
				r = nl_error_msg(nl, req, nlh);
				done = true;
				break;
			case NLMSG_DONE:
				r = nl_done_msg(nl, req, nlh);
				done = true;
				break;
			case NLMSG_NOOP:
			case NLMSG_OVERRUN:
				r = 0;
				break;
			default:
				r = cb && !ret ? cb(nlh, arg) : 0;
				break;
			}
			if (r < 0 && !ret)
				ret = r;
			if (done)
				break;
		}
	}
	if (!ret && intr)
		ret = -EAGAIN;
out:
	free(buf);
	return ret;
}

/* A u32 or u64 attribute (the kernel's "uint" is either). */
static bool attr_uint(const struct nlattr *a, uint64_t *v)
{
	switch (mnl_attr_get_payload_len(a)) {
	case 4:
		*v = mnl_attr_get_u32(a);
		return true;
	case 8:
		*v = mnl_attr_get_u64(a);
		return true;
	}
	return false;
}

/* ------------------------------------------------------------- family */

struct family {
	uint16_t id;
	uint64_t ops;		/* bit n: command n offered (n < 64) */
};

static int family_cb(const struct nlmsghdr *nlh, void *arg)
{
	struct family *f = arg;
	const struct nlattr *a, *op, *oa;

	mnl_attr_for_each(a, nlh, sizeof(struct genlmsghdr)) {
		switch (mnl_attr_get_type(a)) {
		case CTRL_ATTR_FAMILY_ID:
			if (!mnl_attr_validate(a, MNL_TYPE_U16))
				f->id = mnl_attr_get_u16(a);
			break;
		case CTRL_ATTR_OPS:
			mnl_attr_for_each_nested(op, a)
				mnl_attr_for_each_nested(oa, op)
					if (mnl_attr_get_type(oa) == CTRL_ATTR_OP_ID &&
					    !mnl_attr_validate(oa, MNL_TYPE_U32) &&
					    mnl_attr_get_u32(oa) < 64)
						f->ops |= 1ull << mnl_attr_get_u32(oa);
			break;
		}
	}
	return 0;
}

static int nl_family(struct dmt_nl *nl, struct family *f)
{
	static const char *const names[] = {
		[CTRL_ATTR_FAMILY_NAME] = "family-name",
	};
	char buf[256] __attribute__((aligned(8)));
	struct nl_req req = { .attr_names = names, .nr_attr_names = 3 };
	int ret;

	req.nlh = nl_msg(nl, buf, sizeof(buf), GENL_ID_CTRL, CTRL_CMD_GETFAMILY,
			 1, 0);
	mnl_attr_put_strz(req.nlh, CTRL_ATTR_FAMILY_NAME, NETDEV_FAMILY_NAME);
	memset(f, 0, sizeof(*f));
	ret = nl_exchange(nl, &req, family_cb, f);
	if (!ret && !f->id)
		ret = -EPROTO;
	return ret;
}

DMT_API struct dmt_nl *dmt_nl_open(struct dmt_err *err)
{
	struct family f;
	struct dmt_nl *nl;
	int one = 1, ret;

	dmt_err_clear(err);
	nl = calloc(1, sizeof(*nl));
	if (!nl) {
		dmt_err_set(err, -ENOMEM, NULL, "allocate a netlink handle");
		return NULL;
	}
	nl->sock = mnl_socket_open2(NETLINK_GENERIC, SOCK_CLOEXEC);
	if (!nl->sock) {
		dmt_err_set(err, -errno, NULL, "open a generic netlink socket");
		goto fail;
	}
	if (mnl_socket_setsockopt(nl->sock, NETLINK_EXT_ACK, &one, sizeof(one)) ||
	    mnl_socket_setsockopt(nl->sock, NETLINK_CAP_ACK, &one, sizeof(one))) {
		dmt_err_set(err, -errno, NULL,
			    "set NETLINK_EXT_ACK and NETLINK_CAP_ACK");
		goto fail;
	}
	if (mnl_socket_bind(nl->sock, 0, MNL_SOCKET_AUTOPID) < 0) {
		dmt_err_set(err, -errno, NULL, "bind the generic netlink socket");
		goto fail;
	}
	nl->portid = mnl_socket_get_portid(nl->sock);
	nl->seq = time(NULL);

	ret = nl_family(nl, &f);
	if (ret) {
		dmt_err_copy(err, &nl->err);
		dmt_err_set(err, ret, ret == -ENOENT ?
			    "kernel has no netdev netlink family (needs Linux "
			    ">= 6.12 for RX, >= 6.16 for TX)" : NULL,
			    "resolve generic netlink family \"%s\"",
			    NETDEV_FAMILY_NAME);
		goto fail;
	}
	nl->family = f.id;
	return nl;
fail:
	dmt_nl_close(nl);
	return NULL;
}

DMT_API void dmt_nl_close(struct dmt_nl *nl)
{
	if (!nl)
		return;
	if (nl->sock)
		mnl_socket_close(nl->sock);
	free(nl);
}

DMT_API const struct dmt_err *dmt_nl_error(const struct dmt_nl *nl)
{
	return nl ? &nl->err : NULL;
}

/* After an EOPNOTSUPP without a message: does the kernel know cmd at all? */
static bool nl_knows_cmd(struct dmt_nl *nl, unsigned cmd)
{
	struct dmt_err saved = nl->err;
	struct family f;
	bool known;

	known = nl_family(nl, &f) || (f.ops & (1ull << cmd));
	nl->err = saved;
	return known;
}

/* ------------------------------------------------------------ bind-tx */

static int bind_cb(const struct nlmsghdr *nlh, void *arg)
{
	const struct nlattr *a;
	uint64_t v;

	mnl_attr_for_each(a, nlh, sizeof(struct genlmsghdr))
		if (mnl_attr_get_type(a) == NETDEV_A_DMABUF_ID && attr_uint(a, &v))
			*(uint32_t *)arg = v;
	return 0;
}

static const char *bind_tx_fix(struct dmt_nl *nl, int ret)
{
	switch (ret) {
	case -EOPNOTSUPP:
		if (!nl->err.extack[0] && !nl_knows_cmd(nl, NETDEV_CMD_BIND_TX))
			return "bind-tx needs Linux >= 6.16";
		return "the device cannot send from a dma-buf: use the zerocopy "
		       "or copy mode";
	case -ENODEV:
		return "no such interface in this network namespace";
	case -EBADF:
		return "pass an fd open in this process";
	case -EINVAL:
		if (!nl->err.extack[0])
			return "pass a dma-buf fd (the kernel refuses other files "
			       "with EINVAL)";
		return NULL;
	}
	return NULL;
}

DMT_API int dmt_bind_tx(struct dmt_nl *nl, unsigned ifindex, int dmabuf_fd,
			uint32_t *id)
{
	static const char *const names[] = {
		[NETDEV_A_DMABUF_IFINDEX] = "ifindex",
		[NETDEV_A_DMABUF_FD] = "fd",
	};
	char buf[256] __attribute__((aligned(8)));
	struct nl_req req = { .attr_names = names, .nr_attr_names = 4 };
	uint32_t got = 0;
	int ret;

	if (!nl)
		return -EINVAL;
	dmt_err_clear(&nl->err);
	if (dmabuf_fd < 0)
		return dmt_err_set(&nl->err, -EBADF, "pass a dma-buf fd",
				   "bind-tx of fd %d on ifindex %u", dmabuf_fd,
				   ifindex);
	req.nlh = nl_msg(nl, buf, sizeof(buf), nl->family, NETDEV_CMD_BIND_TX,
			 NETDEV_FAMILY_VERSION, 0);
	mnl_attr_put_u32(req.nlh, NETDEV_A_DMABUF_IFINDEX, ifindex);
	mnl_attr_put_u32(req.nlh, NETDEV_A_DMABUF_FD, dmabuf_fd);
	ret = nl_exchange(nl, &req, bind_cb, &got);
	if (!ret && !got)
		ret = -EPROTO;
	if (ret)
		return dmt_err_set(&nl->err, ret, bind_tx_fix(nl, ret),
				   "bind-tx of dma-buf fd %d on ifindex %u",
				   dmabuf_fd, ifindex);
	if (id)
		*id = got;
	return 0;
}

/* ------------------------------------------------------------ dev-get */

static int dev_cb(const struct nlmsghdr *nlh, void *arg)
{
	struct dmt_dev_info *info = arg;
	const struct nlattr *a;
	uint64_t v;

	mnl_attr_for_each(a, nlh, sizeof(struct genlmsghdr)) {
		if (!attr_uint(a, &v))
			continue;	/* flags, nests, or something newer */
		switch (mnl_attr_get_type(a)) {
		case NETDEV_A_DEV_IFINDEX:
			info->ifindex = v;
			break;
		case NETDEV_A_DEV_XDP_FEATURES:
			info->xdp_features = v;
			break;
		case NETDEV_A_DEV_XDP_ZC_MAX_SEGS:
			info->xdp_zc_max_segs = v;
			break;
		case NETDEV_A_DEV_XDP_RX_METADATA_FEATURES:
			info->xdp_rx_metadata_features = v;
			break;
		case NETDEV_A_DEV_XSK_FEATURES:
			info->xsk_features = v;
			break;
		}
	}
	return 0;
}

DMT_API int dmt_dev_get(struct dmt_nl *nl, unsigned ifindex,
			struct dmt_dev_info *info)
{
	static const char *const names[] = {
		[NETDEV_A_DEV_IFINDEX] = "ifindex",
	};
	char buf[256] __attribute__((aligned(8)));
	struct nl_req req = { .attr_names = names, .nr_attr_names = 2 };
	struct dmt_dev_info tmp = { 0 };
	int ret;

	if (!nl)
		return -EINVAL;
	dmt_err_clear(&nl->err);
	req.nlh = nl_msg(nl, buf, sizeof(buf), nl->family, NETDEV_CMD_DEV_GET,
			 NETDEV_FAMILY_VERSION, 0);
	mnl_attr_put_u32(req.nlh, NETDEV_A_DEV_IFINDEX, ifindex);
	ret = nl_exchange(nl, &req, dev_cb, &tmp);
	if (ret)
		return dmt_err_set(&nl->err, ret, ret == -ENODEV ?
				   "no such interface in this network namespace" :
				   NULL, "dev-get of ifindex %u", ifindex);
	if (info)
		*info = tmp;
	return 0;
}

/* ---------------------------------------------------------- queue-get */

struct queue_dump {
	int (*cb)(const struct dmt_queue_info *q, void *arg);
	void *arg;
	int count;
	int stop;		/* cb's negative value, 0 if it never stopped */
};

static int queue_cb(const struct nlmsghdr *nlh, void *arg)
{
	struct queue_dump *d = arg;
	struct dmt_queue_info q = { 0 };
	const struct nlattr *a;
	uint64_t v;

	mnl_attr_for_each(a, nlh, sizeof(struct genlmsghdr)) {
		if (mnl_attr_get_type(a) == NETDEV_A_QUEUE_IO_URING) {
			q.io_uring = true;
			continue;
		}
		if (!attr_uint(a, &v))
			continue;
		switch (mnl_attr_get_type(a)) {
		case NETDEV_A_QUEUE_ID:
			q.id = v;
			break;
		case NETDEV_A_QUEUE_IFINDEX:
			q.ifindex = v;
			break;
		case NETDEV_A_QUEUE_TYPE:
			q.type = v;
			break;
		case NETDEV_A_QUEUE_NAPI_ID:
			q.napi_id = v;
			break;
		case NETDEV_A_QUEUE_DMABUF:
			q.dmabuf = v;
			break;
		}
	}
	d->count++;
	if (d->cb && (d->stop = d->cb(&q, d->arg)) > 0)
		d->stop = 0;
	return d->stop;
}

DMT_API int dmt_queue_dump(struct dmt_nl *nl, unsigned ifindex,
			   int (*cb)(const struct dmt_queue_info *q, void *arg),
			   void *arg)
{
	static const char *const names[] = {
		[NETDEV_A_QUEUE_IFINDEX] = "ifindex",
	};
	char buf[256] __attribute__((aligned(8)));
	struct nl_req req = { .attr_names = names, .nr_attr_names = 3 };
	struct queue_dump d = { .cb = cb, .arg = arg };
	int ret;

	if (!nl)
		return -EINVAL;
	dmt_err_clear(&nl->err);
	req.nlh = nl_msg(nl, buf, sizeof(buf), nl->family, NETDEV_CMD_QUEUE_GET,
			 NETDEV_FAMILY_VERSION, NLM_F_DUMP);
	if (ifindex)	/* 0: every device */
		mnl_attr_put_u32(req.nlh, NETDEV_A_QUEUE_IFINDEX, ifindex);
	ret = nl_exchange(nl, &req, queue_cb, &d);
	if (d.stop)
		return d.stop;	/* the caller's own value */
	if (ret)
		return dmt_err_set(&nl->err, ret, ret == -ENODEV ?
				   "no such interface in this network namespace" :
				   ret == -EAGAIN ? "the queues changed meanwhile: retry" :
				   NULL, "queue-get dump of ifindex %u", ifindex);
	return d.count;
}
