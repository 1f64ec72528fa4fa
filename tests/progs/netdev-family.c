// SPDX-License-Identifier: GPL-2.0
/*
 * netdev genl family: resolve generic netlink family "netdev" through nlctrl,
 * check that it offers bind-rx (13) and bind-tx (15) and the multicast groups
 * "mgmt" and "page-pool", then send a real bind-tx for "lo" with a udmabuf
 * and check that it is refused with EOPNOTSUPP and the kernel's extack text.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>

#include "dmt-uapi.h"
#include "ktap.h"

#define BUF_SIZE 32768
#define DMABUF_SIZE (64u << 10)
#define BIND_TX_REFUSAL "Driver does not support netmem TX"

/* What one request/reply exchange saw. */
struct exchange {
	int error;		/* positive errno from NLMSG_ERROR, 0 on ack */
	const char *extack;	/* NLMSGERR_ATTR_MSG, or NULL */
	char extack_buf[256];
	int miss_type;		/* NLMSGERR_ATTR_MISS_TYPE, or -1 */
	void *data;		/* for the data callback */
};

struct family {
	uint16_t id;
	uint32_t version;
	uint64_t ops;		/* bit n set: op id n offered (ids < 64) */
	bool mgmt, page_pool;
	char groups[128];	/* names, for the log */
};

static const char *errname(int e)
{
	const char *s = strerrorname_np(e);

	return s ? s : "E?";
}

static int extack_attr_cb(const struct nlattr *attr, void *data)
{
	struct exchange *x = data;

	if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG &&
	    mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0) {
		snprintf(x->extack_buf, sizeof(x->extack_buf), "%s",
			 mnl_attr_get_str(attr));
		x->extack = x->extack_buf;
	}
	if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MISS_TYPE &&
	    mnl_attr_validate(attr, MNL_TYPE_U32) == 0)
		x->miss_type = mnl_attr_get_u32(attr);
	return MNL_CB_OK;
}

/*
 * libmnl's default NLMSG_ERROR handler drops the extack TLVs, so parse them
 * here: they follow struct nlmsgerr, whose copy of the request is capped to
 * its header when NETLINK_CAP_ACK is on (NLM_F_CAPPED), else is whole.
 */
static int error_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlmsgerr *err = mnl_nlmsg_get_payload(nlh);
	struct exchange *x = data;
	unsigned int off = sizeof(*err);

	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*err))) {
		errno = EBADMSG;
		return MNL_CB_ERROR;
	}
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
		off += err->msg.nlmsg_len - sizeof(err->msg);
	if ((nlh->nlmsg_flags & NLM_F_ACK_TLVS) &&
	    mnl_nlmsg_size(off) <= nlh->nlmsg_len)
		mnl_attr_parse(nlh, off, extack_attr_cb, x);

	x->error = err->error < 0 ? -err->error : err->error;
	if (!x->error)
		return MNL_CB_STOP;
	errno = x->error;
	return MNL_CB_ERROR;
}

static int done_cb(const struct nlmsghdr *nlh, void *data)
{
	(void)nlh;
	(void)data;
	return MNL_CB_STOP;
}

/* Send one NLM_F_ACK request and run replies until the ack. 0 or -errno. */
static int exchange(struct mnl_socket *nl, const struct nlmsghdr *req,
		    mnl_cb_t data_cb, struct exchange *x)
{
	mnl_cb_t ctl[NLMSG_MIN_TYPE] = {
		[NLMSG_ERROR] = error_cb,
		[NLMSG_DONE] = done_cb,
	};
	char buf[BUF_SIZE];
	unsigned int portid = mnl_socket_get_portid(nl);
	ssize_t n;
	int ret;

	x->error = 0;
	x->extack = NULL;
	x->miss_type = -1;
	if (mnl_socket_sendto(nl, req, req->nlmsg_len) < 0)
		return -errno;
	do {
		n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (n < 0)
			return -errno;
		ret = mnl_cb_run2(buf, n, req->nlmsg_seq, portid, data_cb, x,
				  ctl, MNL_ARRAY_SIZE(ctl));
	} while (ret > 0);
	if (ret < 0)
		return x->error ? -x->error : -errno;
	return 0;
}

static struct nlmsghdr *genl_request(char *buf, uint16_t type, uint8_t cmd,
				     uint8_t version, unsigned int seq)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct genlmsghdr *genl;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = seq;
	genl = mnl_nlmsg_put_extra_header(nlh, sizeof(*genl));
	genl->cmd = cmd;
	genl->version = version;
	return nlh;
}

static int ctrl_attr_cb(const struct nlattr *attr, void *data)
{
	const struct nlattr **tb = data;

	/* Skip what this program does not know (newer kernels). */
	if (mnl_attr_type_valid(attr, CTRL_ATTR_MAX) > 0)
		tb[mnl_attr_get_type(attr)] = attr;
	return MNL_CB_OK;
}

static int family_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *tb[CTRL_ATTR_MAX + 1] = { 0 };
	struct family *f = ((struct exchange *)data)->data;
	const struct nlattr *nest, *a;

	mnl_attr_parse(nlh, sizeof(struct genlmsghdr), ctrl_attr_cb, tb);
	if (!tb[CTRL_ATTR_FAMILY_ID] || !tb[CTRL_ATTR_VERSION] ||
	    mnl_attr_validate(tb[CTRL_ATTR_FAMILY_ID], MNL_TYPE_U16) < 0 ||
	    mnl_attr_validate(tb[CTRL_ATTR_VERSION], MNL_TYPE_U32) < 0) {
		errno = EBADMSG;
		return MNL_CB_ERROR;
	}
	f->id = mnl_attr_get_u16(tb[CTRL_ATTR_FAMILY_ID]);
	f->version = mnl_attr_get_u32(tb[CTRL_ATTR_VERSION]);

	if (tb[CTRL_ATTR_OPS])
		mnl_attr_for_each_nested(nest, tb[CTRL_ATTR_OPS])
			mnl_attr_for_each_nested(a, nest)
				if (mnl_attr_get_type(a) == CTRL_ATTR_OP_ID &&
				    mnl_attr_validate(a, MNL_TYPE_U32) == 0 &&
				    mnl_attr_get_u32(a) < 64)
					f->ops |= 1ull << mnl_attr_get_u32(a);

	if (tb[CTRL_ATTR_MCAST_GROUPS])
		mnl_attr_for_each_nested(nest, tb[CTRL_ATTR_MCAST_GROUPS])
			mnl_attr_for_each_nested(a, nest) {
				const char *name;

				if (mnl_attr_get_type(a) != CTRL_ATTR_MCAST_GRP_NAME ||
				    mnl_attr_validate(a, MNL_TYPE_NUL_STRING) < 0)
					continue;
				name = mnl_attr_get_str(a);
				snprintf(f->groups + strlen(f->groups),
					 sizeof(f->groups) - strlen(f->groups),
					 " %s", name);
				f->mgmt |= !strcmp(name, NETDEV_MCGRP_MGMT);
				f->page_pool |= !strcmp(name, NETDEV_MCGRP_PAGE_POOL);
			}
	return MNL_CB_OK;
}

/* A udmabuf over a sealed memfd; the memfd is closed before returning. */
static int make_udmabuf(int dev)
{
	struct udmabuf_create c = {
		.flags = UDMABUF_FLAGS_CLOEXEC,
		.size = DMABUF_SIZE,
	};
	int memfd, fd = -1;

	memfd = memfd_create("netdev-family", MFD_ALLOW_SEALING | MFD_CLOEXEC);
	if (memfd < 0)
		return -1;
	if (ftruncate(memfd, DMABUF_SIZE) == 0 &&
	    fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK) == 0) {
		c.memfd = memfd;
		fd = ioctl(dev, UDMABUF_CREATE, &c);
	}
	close(memfd);
	return fd;
}

static void check_bind_tx(struct ktap *t, struct mnl_socket *nl,
			  const struct family *f, unsigned int seq)
{
	static const char name[] = "bind-tx on lo refused: EOPNOTSUPP \"" BIND_TX_REFUSAL "\"";
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct exchange x = { 0 };
	struct nlmsghdr *nlh;
	unsigned int ifindex;
	int dev, dmabuf, ret;
	bool ok;

	dev = open("/dev/udmabuf", O_RDWR | O_CLOEXEC);
	if (dev < 0 && (errno == ENOENT || errno == ENODEV || errno == ENXIO)) {
		skip(t, name, "/dev/udmabuf absent, no dma-buf to bind");
		return;
	}
	dmabuf = dev < 0 ? -1 : make_udmabuf(dev);
	if (dmabuf < 0) {
		printf("# udmabuf: %s\n", strerror(errno));
		check(t, false, "%s", name);
		goto out_dev;
	}
	ifindex = if_nametoindex("lo");
	if (!ifindex) {
		printf("# if_nametoindex(lo): %s\n", strerror(errno));
		check(t, false, "%s", name);
		goto out_dmabuf;
	}

	nlh = genl_request(buf, f->id, NETDEV_CMD_BIND_TX, NETDEV_FAMILY_VERSION, seq);
	mnl_attr_put_u32(nlh, NETDEV_A_DMABUF_IFINDEX, ifindex);
	mnl_attr_put_u32(nlh, NETDEV_A_DMABUF_FD, dmabuf);
	ret = exchange(nl, nlh, NULL, &x);

	printf("# bind-tx ifindex %u fd %d: %s\n", ifindex, dmabuf,
	       ret ? errname(-ret) : "accepted");
	printf("# extack: %s\n", x.extack ? x.extack : "(none)");
	if (x.miss_type >= 0)
		printf("# missing attribute type %d\n", x.miss_type);
	ok = ret == -EOPNOTSUPP && x.extack && !strcmp(x.extack, BIND_TX_REFUSAL);
	check(t, ok, "%s", name);
	/* Were it accepted, closing the socket would unbind it. */
out_dmabuf:
	close(dmabuf);
out_dev:
	if (dev >= 0)
		close(dev);
}

int main(void)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct family f = { 0 };
	struct exchange x = { .data = &f };
	struct ktap t = { 0 };
	unsigned int seq = time(NULL);
	struct mnl_socket *nl;
	struct nlmsghdr *nlh;
	int one = 1, ret;

	nl = mnl_socket_open(NETLINK_GENERIC);
	if (!nl || mnl_socket_setsockopt(nl, NETLINK_EXT_ACK, &one, sizeof(one)) < 0 ||
	    mnl_socket_setsockopt(nl, NETLINK_CAP_ACK, &one, sizeof(one)) < 0 ||
	    mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		printf("# generic netlink socket: %s\n", strerror(errno));
		check(&t, false, "netdev genl family resolved");
		goto out;
	}

	nlh = genl_request(buf, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1, seq++);
	mnl_attr_put_strz(nlh, CTRL_ATTR_FAMILY_NAME, NETDEV_FAMILY_NAME);
	ret = exchange(nl, nlh, family_cb, &x);
	if (ret == -ENOENT) {
		printf("# CTRL_CMD_GETFAMILY: %s%s%s\n", errname(ENOENT),
		       x.extack ? ", extack: " : "", x.extack ? x.extack : "");
		skip(&t, "netdev genl family",
		     "family \"netdev\" not registered (ENOENT from nlctrl)");
		goto out;
	}
	if (!check(&t, ret == 0, "netdev genl family resolved")) {
		printf("# CTRL_CMD_GETFAMILY: %s (%s), extack: %s\n", errname(-ret),
		       strerror(-ret), x.extack ? x.extack : "(none)");
		goto out;
	}
	printf("# family id %u version %u, ops:", f.id, f.version);
	for (int i = 0; i < 64; i++)
		if (f.ops & (1ull << i))
			printf(" %d", i);
	printf("\n# mcast groups:%s\n", f.groups);

	check(&t, f.ops & (1ull << NETDEV_CMD_BIND_RX), "op bind-rx (%d) offered",
	      NETDEV_CMD_BIND_RX);
	check(&t, f.ops & (1ull << NETDEV_CMD_BIND_TX), "op bind-tx (%d) offered",
	      NETDEV_CMD_BIND_TX);
	check(&t, f.mgmt, "mcast group \"%s\" offered", NETDEV_MCGRP_MGMT);
	check(&t, f.page_pool, "mcast group \"%s\" offered", NETDEV_MCGRP_PAGE_POOL);
	check_bind_tx(&t, nl, &f, seq++);
out:
	if (nl)
		mnl_socket_close(nl);
	return ktap_exit(&t);
}
