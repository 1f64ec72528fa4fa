// SPDX-License-Identifier: MIT
/*
 * netlink.c - the generic netlink family "netdev" through libmnl: bind-tx,
 * bind-rx, dev-get and the queue-get dump.
 *
 * The exchange itself (acks, dumps, the kernel's extended ack) is genl.c's;
 * the extack of a failed request is kept in nl->err.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>

#include "internal.h"
#include "dmt-uapi.h"

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

/* ------------------------------------------------------------- handle */

DMT_API struct dmt_nl *dmt_nl_open(struct dmt_err *err)
{
	struct dmt_nl *nl;
	int ret;

	dmt_err_clear(err);
	nl = calloc(1, sizeof(*nl));
	if (!nl) {
		dmt_err_set(err, -ENOMEM, NULL, "allocate a netlink handle");
		return NULL;
	}
	if (dmt_nls_open(&nl->nls, NETLINK_GENERIC, err))
		goto fail;
	ret = dmt_genl_family(&nl->nls, NETDEV_FAMILY_NAME, &nl->family, NULL,
			      &nl->err);
	if (ret) {
		dmt_err_copy(err, &nl->err);
		dmt_err_set(err, ret, ret == -ENOENT ?
			    "kernel has no netdev netlink family (needs Linux "
			    ">= 6.12 for RX, >= 6.16 for TX)" : NULL,
			    "resolve generic netlink family \"%s\"",
			    NETDEV_FAMILY_NAME);
		goto fail;
	}
	return nl;
fail:
	dmt_nl_close(nl);
	return NULL;
}

DMT_API void dmt_nl_close(struct dmt_nl *nl)
{
	if (!nl)
		return;
	dmt_nls_close(&nl->nls);
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
	uint64_t ops;
	uint16_t id;
	bool known;

	known = dmt_genl_family(&nl->nls, NETDEV_FAMILY_NAME, &id, &ops,
				&nl->err) || (ops & (1ull << cmd));
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
		return "the driver of this interface cannot send from device memory: "
		       "use a NIC with netmem TX, or the zerocopy/copy mode";
	case -ENODEV:
		return "no such interface in this network namespace";
	case -EBADF:
		return "pass an fd open in this process";
	case -EINVAL:
		if (!nl->err.extack[0])
			return "pass a dma-buf fd (the kernel refuses other files "
			       "with EINVAL)";
		if (strstr(nl->err.extack, "PAGE_SIZE"))
			return "make the dma-buf size a multiple of the page size";
		return NULL;
	}
	return NULL;
}

/* ------------------------------------------------------------ bind-rx */

#define BIND_RX_MAX_QUEUES 65536	/* bounds the request we build */

static const char *bind_rx_fix(struct dmt_nl *nl, int ret)
{
	const char *x = nl->err.extack;

	switch (ret) {
	case -EPERM:
		return "bind-rx needs CAP_NET_ADMIN (run as root)";
	case -EOPNOTSUPP:
		if (strstr(x, "rx_page_size"))
			return "the driver has no rx-page-size support (QCFG_RX_PAGE_SIZE; in "
			       "Linux 7.3 bnxt and mlx5): leave rx_page_size 0";
		if (!x[0] && !nl_knows_cmd(nl, NETDEV_CMD_BIND_RX))
			return "bind-rx needs Linux >= 6.12";
		/* no message, or only "bad attribute ifindex" (no ops lock) */
		if (!x[0] || !strcmp(x, "bad attribute ifindex"))
			return "the driver has no queue management ops (devmem RX "
			       "needs gve, bnxt, mlx5, fbnic or dmveth)";
		return NULL;
	case -ENODATA:
		return "the driver ignores unreadable page pools "
		       "(PP_FLAG_ALLOW_UNREADABLE_NETMEM): it cannot receive into a dma-buf";
	case -ENODEV:
		return "no such interface in this network namespace, or it is not present";
	case -EBADF:
		return "pass an fd open in this process";
	case -EINVAL:
		if (strstr(x, "rx-page-size must be a power of 2"))
			return "give rx_page_size as a power of two, at least the page size";
		if (strstr(x, "not aligned to niov size"))
			return "every piece of the dma-buf must be aligned to rx_page_size: "
			       "back it with huge pages (udmabuf: hugepages)";
		if (strstr(x, "rx-page-size") && strstr(x, "range"))
			return "rx_page_size is at least the page size (4096)";
		if (strstr(x, "rx-page-size") || strstr(x, "Unknown attribute"))
			return "rx-page-size needs Linux >= 7.3: leave rx_page_size 0";
		if (strstr(x, "tcp-data-split"))
			return "enable header split: ethtool -G IF tcp-data-split on";
		if (strstr(x, "hds-thresh"))
			return "set the header-split threshold to 0: ethtool -G IF hds-thresh 0";
		if (strstr(x, ".id"))
			return "the queue index is not below the device's RX queue count";
		if (!x[0])
			return "pass a dma-buf fd (the kernel refuses other files "
			       "with EINVAL)";
		return NULL;
	case -EEXIST:
		if (strstr(x, "already memory provider bound"))
			return "another binding (another process, or io_uring zcrx) holds "
			       "the queue: free it or pick another queue";
		if (strstr(x, "XDP"))
			return "detach the XDP program: ip link set dev IF xdp off";
		return NULL;
	case -E2BIG:
		return "the driver's page pool order does not match rx_page_size";
	case -EBUSY:
		if (strstr(x, "AF_XDP"))
			return "an AF_XDP socket uses the queue: close it or pick another queue";
		return NULL;
	}
	return NULL;
}

/* bind-tx (no queues) or bind-rx: build the request, send it, read the id. */
static int bind_dmabuf(struct dmt_nl *nl, unsigned cmd, unsigned ifindex,
		       int dmabuf_fd, const uint32_t *queues, unsigned nqueues,
		       uint32_t rx_page_size, uint32_t *id)
{
	static const char *const names[] = {
		[NETDEV_A_DMABUF_IFINDEX] = "ifindex",
		[NETDEV_A_DMABUF_QUEUES] = "queues",
		[NETDEV_A_DMABUF_FD] = "fd",
		[NETDEV_A_DMABUF_RX_PAGE_SIZE] = "rx-page-size",
	};
	static const char *const qnames[] = {
		[NETDEV_A_QUEUE_ID] = "id",
		[NETDEV_A_QUEUE_TYPE] = "type",
	};
	struct dmt_nlreq req = {
		.names = names,
		.nr_names = sizeof(names) / sizeof(names[0]),
		.nest_names = qnames,
		.nr_nest_names = sizeof(qnames) / sizeof(qnames[0]),
	};
	bool rx = cmd == NETDEV_CMD_BIND_RX;
	uint32_t got = 0;
	size_t len;
	void *buf;
	int ret;

	if (!nl)
		return -EINVAL;
	dmt_err_clear(&nl->err);
	if (dmabuf_fd < 0)
		return dmt_err_set(&nl->err, -EBADF, "pass a dma-buf fd",
				   "%s of fd %d on ifindex %u", rx ? "bind-rx" : "bind-tx",
				   dmabuf_fd, ifindex);
	if (rx && (!queues || !nqueues || nqueues > BIND_RX_MAX_QUEUES))
		return dmt_err_set(&nl->err, -EINVAL, "name 1 to 65536 RX queues",
				   "bind-rx of dma-buf fd %d on ifindex %u with %u queues",
				   dmabuf_fd, ifindex, queues ? nqueues : 0);
	/* header, ifindex, fd, rx-page-size, then per queue a nest with id
	 * and type */
	len = MNL_ALIGN(sizeof(struct nlmsghdr)) + MNL_ALIGN(sizeof(struct genlmsghdr)) +
	      3 * MNL_ATTR_HDRLEN + 3 * MNL_ALIGN(sizeof(uint32_t)) +
	      (size_t)nqueues * (3 * MNL_ATTR_HDRLEN + 2 * MNL_ALIGN(sizeof(uint32_t)));
	buf = malloc(len);
	if (!buf)
		return dmt_err_set(&nl->err, -ENOMEM, NULL,
				   "bind request for %u queues", nqueues);
	req.nlh = dmt_genl_msg(&nl->nls, buf, len, nl->family, cmd,
			       NETDEV_FAMILY_VERSION, 0);
	mnl_attr_put_u32(req.nlh, NETDEV_A_DMABUF_IFINDEX, ifindex);
	mnl_attr_put_u32(req.nlh, NETDEV_A_DMABUF_FD, dmabuf_fd);
	if (rx && rx_page_size)	/* Linux 7.3; 0: the page size, not sent */
		mnl_attr_put_u32(req.nlh, NETDEV_A_DMABUF_RX_PAGE_SIZE, rx_page_size);
	for (unsigned i = 0; i < nqueues; i++) {
		struct nlattr *nest = mnl_attr_nest_start(req.nlh, NETDEV_A_DMABUF_QUEUES);

		mnl_attr_put_u32(req.nlh, NETDEV_A_QUEUE_ID, queues[i]);
		mnl_attr_put_u32(req.nlh, NETDEV_A_QUEUE_TYPE, NETDEV_QUEUE_TYPE_RX);
		mnl_attr_nest_end(req.nlh, nest);
		nest->nla_type |= NLA_F_NESTED;	/* the kernel parses it strictly */
	}
	ret = dmt_nls_exchange(&nl->nls, &req, bind_cb, &got, &nl->err);
	free(buf);
	if (!ret && !got)
		ret = -EPROTO;
	if (ret && !rx)
		return dmt_err_set(&nl->err, ret, bind_tx_fix(nl, ret),
				   "bind-tx of dma-buf fd %d on ifindex %u",
				   dmabuf_fd, ifindex);
	if (ret && rx_page_size)
		return dmt_err_set(&nl->err, ret, bind_rx_fix(nl, ret),
				   nqueues > 1 ? "bind-rx of dma-buf fd %d on ifindex %u, %u queues from %u, rx-page-size %u" :
				   "bind-rx of dma-buf fd %d on ifindex %u, queue %.0u%u, rx-page-size %u",
				   dmabuf_fd, ifindex, nqueues > 1 ? nqueues : 0, queues[0],
				   rx_page_size);
	if (ret)
		return dmt_err_set(&nl->err, ret, bind_rx_fix(nl, ret),
				   nqueues > 1 ? "bind-rx of dma-buf fd %d on ifindex %u, %u queues from %u" :
				   "bind-rx of dma-buf fd %d on ifindex %u, queue %.0u%u",
				   dmabuf_fd, ifindex, nqueues > 1 ? nqueues : 0, queues[0]);
	if (id)
		*id = got;
	return 0;
}

DMT_API int dmt_bind_tx(struct dmt_nl *nl, unsigned ifindex, int dmabuf_fd,
			uint32_t *id)
{
	return bind_dmabuf(nl, NETDEV_CMD_BIND_TX, ifindex, dmabuf_fd, NULL, 0, 0, id);
}

DMT_API int dmt_bind_rx(struct dmt_nl *nl, unsigned ifindex, int dmabuf_fd,
			const uint32_t *queues, unsigned nqueues, uint32_t *id)
{
	return bind_dmabuf(nl, NETDEV_CMD_BIND_RX, ifindex, dmabuf_fd, queues,
			   nqueues, 0, id);
}

int dmt_bind_rx_page(struct dmt_nl *nl, unsigned ifindex, int dmabuf_fd,
		     const uint32_t *queues, unsigned nqueues, uint32_t rx_page_size,
		     uint32_t *id)
{
	return bind_dmabuf(nl, NETDEV_CMD_BIND_RX, ifindex, dmabuf_fd, queues,
			   nqueues, rx_page_size, id);
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
	struct dmt_nlreq req = {
		.names = names,
		.nr_names = sizeof(names) / sizeof(names[0]),
	};
	struct dmt_dev_info tmp = { 0 };
	int ret;

	if (!nl)
		return -EINVAL;
	dmt_err_clear(&nl->err);
	req.nlh = dmt_genl_msg(&nl->nls, buf, sizeof(buf), nl->family,
			       NETDEV_CMD_DEV_GET, NETDEV_FAMILY_VERSION, 0);
	mnl_attr_put_u32(req.nlh, NETDEV_A_DEV_IFINDEX, ifindex);
	ret = dmt_nls_exchange(&nl->nls, &req, dev_cb, &tmp, &nl->err);
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
	struct dmt_nlreq req = {
		.names = names,
		.nr_names = sizeof(names) / sizeof(names[0]),
	};
	struct queue_dump d = { .cb = cb, .arg = arg };
	int ret;

	if (!nl)
		return -EINVAL;
	dmt_err_clear(&nl->err);
	req.nlh = dmt_genl_msg(&nl->nls, buf, sizeof(buf), nl->family,
			       NETDEV_CMD_QUEUE_GET, NETDEV_FAMILY_VERSION, NLM_F_DUMP);
	if (ifindex)	/* 0: every device */
		mnl_attr_put_u32(req.nlh, NETDEV_A_QUEUE_IFINDEX, ifindex);
	ret = dmt_nls_exchange(&nl->nls, &req, queue_cb, &d, &nl->err);
	if (d.stop)
		return d.stop;	/* the caller's own value */
	if (ret)
		return dmt_err_set(&nl->err, ret, ret == -ENODEV ?
				   "no such interface in this network namespace" :
				   ret == -EAGAIN ? "the queues changed meanwhile: retry" :
				   NULL, "queue-get dump of ifindex %u", ifindex);
	return d.count;
}
