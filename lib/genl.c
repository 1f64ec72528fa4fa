// SPDX-License-Identifier: MIT
/*
 * genl.c - the netlink exchange netlink.c and ethtool.c share, through
 * libmnl: a socket with extended and capped acks, generic netlink family
 * resolution, and the request/ack (or dump) exchange.
 *
 * Every request carries NLM_F_ACK and runs until its ack (or NLMSG_DONE for
 * a dump); replies with another sequence number or port are left alone (a
 * dump stopped early leaves such replies behind).  The kernel's extended
 * ack is parsed here, because libmnl's default NLMSG_ERROR handling drops
 * it: its message, and the name of the attribute it points at.
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

#define NL_RECV_SIZE 32768	/* what the kernel fills a dump skb up to */

int dmt_nls_open(struct dmt_nls *s, int bus, struct dmt_err *err)
{
	const char *kind = bus == NETLINK_GENERIC ? "generic netlink" : "netlink";
	int one = 1;

	s->sock = mnl_socket_open2(bus, SOCK_CLOEXEC);
	if (!s->sock)
		return dmt_err_set(err, -errno, NULL, "open a %s socket", kind);
	if (mnl_socket_setsockopt(s->sock, NETLINK_EXT_ACK, &one, sizeof(one)) ||
	    mnl_socket_setsockopt(s->sock, NETLINK_CAP_ACK, &one, sizeof(one)))
		return dmt_err_set(err, -errno, NULL,
				   "set NETLINK_EXT_ACK and NETLINK_CAP_ACK");
	if (mnl_socket_bind(s->sock, 0, MNL_SOCKET_AUTOPID) < 0)
		return dmt_err_set(err, -errno, NULL, "bind the %s socket", kind);
	s->portid = mnl_socket_get_portid(s->sock);
	s->seq = time(NULL);
	return 0;
}

void dmt_nls_close(struct dmt_nls *s)
{
	if (s->sock)
		mnl_socket_close(s->sock);
	s->sock = NULL;
}

struct nlmsghdr *dmt_genl_msg(struct dmt_nls *s, void *buf, size_t len,
			      uint16_t family, uint8_t cmd, uint8_t version,
			      uint16_t flags)
{
	struct nlmsghdr *nlh;
	struct genlmsghdr *genl;

	memset(buf, 0, len);
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = family;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	nlh->nlmsg_seq = ++s->seq;
	genl = mnl_nlmsg_put_extra_header(nlh, sizeof(*genl));
	genl->cmd = cmd;
	genl->version = version;
	return nlh;
}

/* ------------------------------------------------------------- extack */

static const char *name_of(const char *const *names, unsigned nr,
			   unsigned type)
{
	return names && type < nr ? names[type] : NULL;
}

/*
 * The name of the request's attribute at byte offset offs: "fd", "7" for
 * one without a name, or one level down in a nest when the caller named
 * nest attributes ("queues[2].id", the index counting the nests before);
 * NULL if no attribute starts there.
 */
static const char *attr_at(const struct dmt_nlreq *req, uint32_t offs,
			   char *buf, size_t len)
{
	size_t hdrlen = req->hdrlen ? req->hdrlen : sizeof(struct genlmsghdr);
	const struct nlattr *a, *n;
	const char *name, *nname;
	unsigned idx = 0, type;

	mnl_attr_for_each(a, req->nlh, hdrlen) {
		uint32_t at = (const char *)a - (const char *)req->nlh;

		type = mnl_attr_get_type(a);
		name = name_of(req->names, req->nr_names, type);
		if (at == offs) {
			if (name)
				return name;
			snprintf(buf, len, "%u", type);
			return buf;
		}
		if (!(a->nla_type & NLA_F_NESTED))
			continue;
		if (!req->nest_names || offs <= at || offs >= at + a->nla_len) {
			idx++;
			continue;
		}
		mnl_attr_for_each_nested(n, a) {
			if ((const char *)n - (const char *)req->nlh != offs)
				continue;
			nname = name_of(req->nest_names, req->nr_nest_names,
					mnl_attr_get_type(n));
			snprintf(buf, len, "%s[%u].%s", name ? name : "nest", idx,
				 nname ? nname : "?");
			return buf;
		}
		return NULL;
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
 * bytes into err->extack: the message, and the attribute it points at.
 */
static void nls_extack(const struct dmt_nlreq *req, const struct nlmsghdr *nlh,
		       size_t hdrlen, struct dmt_err *err)
{
	struct extack x = { .miss_type = -1 };
	char text[sizeof(err->extack)], num[48];
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
	dmt_err_extack(err, text);
}

/* NLMSG_ERROR: 0 for an ack, else -errno with the extack kept. */
static int nls_error_msg(const struct dmt_nlreq *req,
			 const struct nlmsghdr *nlh, struct dmt_err *err)
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
	nls_extack(req, nlh, hdrlen, err);
	return e->error < 0 ? e->error : -e->error;
}

/* NLMSG_DONE ends a dump; it carries the dump's error, and extack. */
static int nls_done_msg(const struct dmt_nlreq *req,
			const struct nlmsghdr *nlh, struct dmt_err *err)
{
	int error;

	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(int)))
		return 0;
	memcpy(&error, mnl_nlmsg_get_payload(nlh), sizeof(error));
	if (error)
		nls_extack(req, nlh, sizeof(int), err);
	return error < 0 ? error : -error;
}

/* ----------------------------------------------------------- exchange */

int dmt_nls_exchange(struct dmt_nls *s, const struct dmt_nlreq *req,
		     dmt_nl_cb cb, void *arg, struct dmt_err *err)
{
	const struct nlmsghdr *nlh;
	uint32_t seq = req->nlh->nlmsg_seq;
	bool done = false, intr = false;
	int ret = 0, r, n;
	char *buf;

	buf = malloc(NL_RECV_SIZE);
	if (!buf)
		return -ENOMEM;
	if (mnl_socket_sendto(s->sock, req->nlh, req->nlh->nlmsg_len) < 0) {
		ret = -errno;
		goto out;
	}
	while (!done) {
		n = mnl_socket_recvfrom(s->sock, buf, NL_RECV_SIZE);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			break;
		}
		for (nlh = (const void *)buf; mnl_nlmsg_ok(nlh, n);
		     nlh = mnl_nlmsg_next(nlh, &n)) {
			if (nlh->nlmsg_seq != seq ||
			    (nlh->nlmsg_pid && nlh->nlmsg_pid != s->portid))
				continue;	/* not ours, or left from before */
			if (nlh->nlmsg_flags & NLM_F_DUMP_INTR)
				intr = true;
			switch (nlh->nlmsg_type) {
			case NLMSG_ERROR:
				r = nls_error_msg(req, nlh, err);
				done = true;
				break;
			case NLMSG_DONE:
				r = nls_done_msg(req, nlh, err);
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

int dmt_genl_family(struct dmt_nls *s, const char *name, uint16_t *id,
		    uint64_t *ops, struct dmt_err *err)
{
	static const char *const names[] = {
		[CTRL_ATTR_FAMILY_NAME] = "family-name",
	};
	char buf[256] __attribute__((aligned(8)));
	struct dmt_nlreq req = {
		.names = names,
		.nr_names = sizeof(names) / sizeof(names[0]),
	};
	struct family f = { 0 };
	int ret;

	req.nlh = dmt_genl_msg(s, buf, sizeof(buf), GENL_ID_CTRL,
			       CTRL_CMD_GETFAMILY, 1, 0);
	mnl_attr_put_strz(req.nlh, CTRL_ATTR_FAMILY_NAME, name);
	ret = dmt_nls_exchange(s, &req, family_cb, &f, err);
	if (!ret && !f.id)
		ret = -EPROTO;
	*id = f.id;
	if (ops)
		*ops = f.ops;
	return ret;
}
