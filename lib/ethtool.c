// SPDX-License-Identifier: MIT
/*
 * ethtool.c - NIC setup for devmem RX: read what the NIC offers (channels
 * and rings through ethtool netlink, the RX queues through the netdev
 * queue-get dump, the RSS indirection table and the ntuple rules through
 * the SIOCETHTOOL ioctl, XDP through rtnetlink), make queues ready for
 * bind-rx (tcp-data-split on, hds-thresh 0, the queues out of the default
 * RSS context, the ntuple feature on) and steer flows to them with ntuple
 * rules.
 *
 * Every change goes into the handle's undo log before the call returns;
 * dmt_nic_restore undoes the log newest first.  The log holds the values
 * seen before the first change of each kind (rings, RSS table, ntuple
 * feature) and one entry per rule inserted, so restore brings back the NIC
 * as it was at the first change however often prepare and steer ran.  An entry whose undo
 * fails stays in the log (a later restore tries again: tcp-data-split
 * cannot be turned off while a binding exists); the others go.  An undo
 * first checks that the setting is still the one this handle made, and
 * leaves alone what someone else has changed since.
 *
 * The netlink exchange and extack parsing are genl.c's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/ethtool.h>
#include <linux/genetlink.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sockios.h>

#include "internal.h"
#include "dmt-uapi.h"

#ifndef ETHTOOL_GENL_NAME
#define ETHTOOL_GENL_NAME	"ethtool"
#define ETHTOOL_GENL_VERSION	1
#endif

#define NIC_UNDO_MAX	64

/* ------------------------------------------------------------ handle */

enum nic_undo_kind {
	UNDO_RINGS = 1,		/* tcp-data-split and hds-thresh */
	UNDO_RSS,		/* the indirection table (nic->rss_orig) */
	UNDO_RULE,		/* an ntuple rule this handle inserted */
	UNDO_NTUPLE,		/* the ntuple feature, turned on here */
};

struct nic_undo {
	enum nic_undo_kind kind;
	bool failed;		/* restore: the undo failed, keep it */
	union {
		struct {	/* the values reported before */
			uint8_t tds;	/* 0: the attribute was absent */
			bool has_hds;
			uint32_t hds;
		} rings;
		struct ethtool_rx_flow_spec rule; /* as inserted, at .location */
	};
};

struct dmt_nic {
	unsigned ifindex;
	char ifname[IF_NAMESIZE];
	struct dmt_nls genl;	/* ethtool generic netlink */
	uint16_t family;	/* resolved "ethtool" family id */
	int ioc_fd;		/* AF_INET datagram socket for SIOCETHTOOL */
	struct dmt_nl *nl;	/* netdev family, for queue-get; NULL if none */
	uint32_t rss_size;	/* entries of rss_orig and rss_ours */
	uint32_t *rss_orig;	/* the table before the first change */
	uint32_t *rss_ours;	/* the table this handle wrote last */
	bool rss_default;	/* rss_orig was the default spread: undo by
				 * resetting to the default (user size 0),
				 * which also clears "user configured" */
	unsigned nr_undo;
	struct nic_undo undo[NIC_UNDO_MAX];
	struct dmt_err err;	/* last error */
};

/* ------------------------------------------------------ ethtool genl */

/* An ethtool request for the handle's device: the header nest is attr 1. */
static struct nlmsghdr *eth_msg(struct dmt_nic *nic, void *buf, size_t len,
				uint8_t cmd)
{
	struct nlmsghdr *nlh;
	struct nlattr *hdr;

	nlh = dmt_genl_msg(&nic->genl, buf, len, nic->family, cmd,
			   ETHTOOL_GENL_VERSION, 0);
	hdr = mnl_attr_nest_start(nlh, 1);	/* ETHTOOL_A_*_HEADER */
	mnl_attr_put_u32(nlh, ETHTOOL_A_HEADER_DEV_INDEX, nic->ifindex);
	mnl_attr_nest_end(nlh, hdr);
	return nlh;
}

/* Attribute values by type (u32 or u8), and which types were present. */
struct eth_reply {
	uint32_t v[32];
	uint32_t seen;		/* bit n: attribute n present */
};

static int eth_reply_cb(const struct nlmsghdr *nlh, void *arg)
{
	struct eth_reply *r = arg;
	const struct nlattr *a;

	mnl_attr_for_each(a, nlh, sizeof(struct genlmsghdr)) {
		unsigned type = mnl_attr_get_type(a);

		if (type >= 32)
			continue;
		switch (mnl_attr_get_payload_len(a)) {
		case 4:
			r->v[type] = mnl_attr_get_u32(a);
			break;
		case 1:
			r->v[type] = mnl_attr_get_u8(a);
			break;
		default:
			continue;	/* the header nest, or something newer */
		}
		r->seen |= 1u << type;
	}
	return 0;
}

static int eth_get(struct dmt_nic *nic, uint8_t cmd, struct eth_reply *r)
{
	char buf[256] __attribute__((aligned(8)));
	struct dmt_nlreq req = { 0 };

	memset(r, 0, sizeof(*r));
	req.nlh = eth_msg(nic, buf, sizeof(buf), cmd);
	return dmt_nls_exchange(&nic->genl, &req, eth_reply_cb, r, &nic->err);
}

struct rings {
	bool has;		/* the driver reports ring parameters */
	uint32_t rx, rx_max;
	uint8_t tds;		/* 0: not reported */
	bool has_hds;
	uint32_t hds, hds_max;
};

/* 0, or -errno; -EOPNOTSUPP is not an error here: r->has is false. */
static int rings_get(struct dmt_nic *nic, struct rings *r)
{
	struct eth_reply rep;
	int ret;

	memset(r, 0, sizeof(*r));
	ret = eth_get(nic, ETHTOOL_MSG_RINGS_GET, &rep);
	if (ret == -EOPNOTSUPP) {
		dmt_err_extack(&nic->err, NULL);
		return 0;
	}
	if (ret)
		return ret;
	r->has = true;
	r->rx = rep.v[ETHTOOL_A_RINGS_RX];
	r->rx_max = rep.v[ETHTOOL_A_RINGS_RX_MAX];
	r->tds = rep.v[ETHTOOL_A_RINGS_TCP_DATA_SPLIT];
	r->has_hds = rep.seen & (1u << ETHTOOL_A_RINGS_HDS_THRESH);
	r->hds = rep.v[ETHTOOL_A_RINGS_HDS_THRESH];
	r->hds_max = rep.v[ETHTOOL_A_RINGS_HDS_THRESH_MAX];
	return 0;
}

static int rings_set(struct dmt_nic *nic, uint8_t tds, bool set_hds,
		     uint32_t hds)
{
	static const char *const names[] = {
		[ETHTOOL_A_RINGS_HEADER] = "header",
		[ETHTOOL_A_RINGS_TCP_DATA_SPLIT] = "tcp-data-split",
		[ETHTOOL_A_RINGS_HDS_THRESH] = "hds-thresh",
	};
	char buf[256] __attribute__((aligned(8)));
	struct dmt_nlreq req = {
		.names = names,
		.nr_names = sizeof(names) / sizeof(names[0]),
	};

	req.nlh = eth_msg(nic, buf, sizeof(buf), ETHTOOL_MSG_RINGS_SET);
	mnl_attr_put_u8(req.nlh, ETHTOOL_A_RINGS_TCP_DATA_SPLIT, tds);
	if (set_hds)
		mnl_attr_put_u32(req.nlh, ETHTOOL_A_RINGS_HDS_THRESH, hds);
	return dmt_nls_exchange(&nic->genl, &req, NULL, NULL, &nic->err);
}

/* -------------------------------------------------------- rtnetlink */

static int link_cb(const struct nlmsghdr *nlh, void *arg)
{
	const struct nlattr *a, *x;

	mnl_attr_for_each(a, nlh, sizeof(struct ifinfomsg)) {
		if (mnl_attr_get_type(a) != IFLA_XDP)
			continue;
		mnl_attr_for_each_nested(x, a)
			if (mnl_attr_get_type(x) == IFLA_XDP_ATTACHED &&
			    !mnl_attr_validate(x, MNL_TYPE_U8))
				*(bool *)arg = mnl_attr_get_u8(x) != XDP_ATTACHED_NONE;
	}
	return 0;
}

/* Whether an XDP program is attached (RTM_GETLINK, IFLA_XDP). */
static int xdp_attached(struct dmt_nic *nic, bool *xdp)
{
	char buf[256] __attribute__((aligned(8)));
	struct dmt_nlreq req = { .hdrlen = sizeof(struct ifinfomsg) };
	struct dmt_nls s = { 0 };
	struct ifinfomsg *ifm;
	int ret;

	*xdp = false;
	ret = dmt_nls_open(&s, NETLINK_ROUTE, &nic->err);
	if (ret)
		goto out;
	memset(buf, 0, sizeof(buf));
	req.nlh = mnl_nlmsg_put_header(buf);
	req.nlh->nlmsg_type = RTM_GETLINK;
	req.nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	req.nlh->nlmsg_seq = ++s.seq;
	ifm = mnl_nlmsg_put_extra_header(req.nlh, sizeof(*ifm));
	ifm->ifi_family = AF_UNSPEC;
	ifm->ifi_index = nic->ifindex;
	mnl_attr_put_u32(req.nlh, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
	ret = dmt_nls_exchange(&s, &req, link_cb, xdp, &nic->err);
out:
	dmt_nls_close(&s);
	return ret;
}

/* ------------------------------------------------------ ethtool ioctl */

static int nic_ioctl(struct dmt_nic *nic, void *data)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	/* by index: the name may have changed since open */
	if (!if_indextoname(nic->ifindex, ifr.ifr_name))
		return -ENODEV;
	ifr.ifr_data = data;
	return ioctl(nic->ioc_fd, SIOCETHTOOL, &ifr) < 0 ? -errno : 0;
}

/* ETHTOOL_GRXRINGS: the RX ring count the kernel checks RSS tables with. */
static int rx_rings(struct dmt_nic *nic, uint32_t *n)
{
	struct ethtool_rxnfc nfc = { .cmd = ETHTOOL_GRXRINGS };
	int ret = nic_ioctl(nic, &nfc);

	*n = ret ? 0 : nfc.data;
	return ret;
}

/* The indirection table's size (0: none, -EOPNOTSUPP is not an error). */
static int rss_size(struct dmt_nic *nic, uint32_t *size)
{
	struct ethtool_rxfh_indir ind = { .cmd = ETHTOOL_GRXFHINDIR, .size = 0 };
	int ret = nic_ioctl(nic, &ind);

	*size = 0;
	if (ret == -EOPNOTSUPP)
		return 0;
	if (!ret)
		*size = ind.size;
	return ret;
}

/* Read the table into tab (size entries). */
static int rss_read(struct dmt_nic *nic, uint32_t size, uint32_t *tab)
{
	struct ethtool_rxfh_indir *ind;
	int ret;

	ind = calloc(1, sizeof(*ind) + size * sizeof(uint32_t));
	if (!ind)
		return -ENOMEM;
	ind->cmd = ETHTOOL_GRXFHINDIR;
	ind->size = size;
	ret = nic_ioctl(nic, ind);
	if (!ret && ind->size != size)
		ret = -EAGAIN;	/* the device changed its table size */
	if (!ret)
		memcpy(tab, ind->ring_index, size * sizeof(uint32_t));
	free(ind);
	return ret;
}

/* Write tab (size entries), or reset to the default spread with tab NULL. */
static int rss_write(struct dmt_nic *nic, uint32_t size, const uint32_t *tab)
{
	struct ethtool_rxfh_indir *ind;
	int ret;

	ind = calloc(1, sizeof(*ind) + size * sizeof(uint32_t));
	if (!ind)
		return -ENOMEM;
	ind->cmd = ETHTOOL_SRXFHINDIR;
	ind->size = tab ? size : 0;
	if (tab)
		memcpy(ind->ring_index, tab, size * sizeof(uint32_t));
	ret = nic_ioctl(nic, ind);
	free(ind);
	return ret;
}

struct ntuple {
	uint32_t rules;		/* in place now */
	uint32_t max;		/* table size, 0 if unknown */
	bool special;		/* RX_CLS_LOC_ANY and friends accepted */
};

/* ETHTOOL_GRXCLSRLCNT; -EOPNOTSUPP when the driver has no rules. */
static int ntuple_count(struct dmt_nic *nic, struct ntuple *nt)
{
	struct ethtool_rxnfc nfc = { .cmd = ETHTOOL_GRXCLSRLCNT };
	int ret = nic_ioctl(nic, &nfc);

	memset(nt, 0, sizeof(*nt));
	if (ret)
		return ret;
	nt->rules = nfc.rule_cnt;
	nt->max = nfc.data & ~(uint64_t)RX_CLS_LOC_SPECIAL;
	nt->special = nfc.data & RX_CLS_LOC_SPECIAL;
	return 0;
}

/* ETHTOOL_GFLAGS: the ETH_FLAG_* features that are on now. */
static int eth_flags(struct dmt_nic *nic, uint32_t *flags)
{
	struct ethtool_value v = { .cmd = ETHTOOL_GFLAGS };
	int ret = nic_ioctl(nic, &v);

	*flags = ret ? 0 : v.data;
	return ret;
}

/*
 * ETHTOOL_SFLAGS: the ETH_FLAG_* features wanted, all of them (pass what
 * eth_flags read with one bit changed).  -EOPNOTSUPP: the feature is
 * fixed.  The driver may still keep it off: read the flags back.
 */
static int eth_set_flags(struct dmt_nic *nic, uint32_t flags)
{
	struct ethtool_value v = { .cmd = ETHTOOL_SFLAGS, .data = flags };

	return nic_ioctl(nic, &v);
}

/* Whether the ntuple feature is on (ethtool -K IF ntuple on). */
static bool ntuple_on(struct dmt_nic *nic)
{
	uint32_t flags;

	/* unknown counts as on: the insert will tell */
	return eth_flags(nic, &flags) || (flags & ETH_FLAG_NTUPLE);
}

/* The lowest location no rule uses, below the table size when known. */
static int ntuple_free_loc(struct dmt_nic *nic, uint32_t *loc)
{
	struct ethtool_rxnfc *nfc;
	struct ntuple nt;
	uint32_t i, j, n;
	int ret;

	ret = ntuple_count(nic, &nt);
	if (ret)
		return ret;
	n = nt.rules;
	nfc = calloc(1, sizeof(*nfc) + (n + 1) * sizeof(uint32_t));
	if (!nfc)
		return -ENOMEM;
	nfc->cmd = ETHTOOL_GRXCLSRLALL;
	nfc->rule_cnt = n;
	ret = n ? nic_ioctl(nic, nfc) : 0;
	if (ret)
		goto out;
	if (!nt.max && nfc->data)
		nt.max = nfc->data;
	n = nfc->rule_cnt;
	ret = -ENOSPC;
	for (i = 0; !nt.max || i < nt.max; i++) {
		for (j = 0; j < n && nfc->rule_locs[j] != i; j++)
			;
		if (j == n) {
			*loc = i;
			ret = 0;
			break;
		}
		if (i == UINT32_MAX - 1)
			break;
	}
out:
	free(nfc);
	return ret;
}

static int ntuple_ins(struct dmt_nic *nic, struct ethtool_rx_flow_spec *fs)
{
	struct ethtool_rxnfc nfc = { .cmd = ETHTOOL_SRXCLSRLINS };
	int ret;

	nfc.fs = *fs;
	ret = nic_ioctl(nic, &nfc);
	if (!ret)
		fs->location = nfc.fs.location;
	return ret;
}

/* ------------------------------------------------------------- open */

DMT_API struct dmt_nic *dmt_nic_open(const char *ifname, struct dmt_err *err)
{
	struct dmt_nic *nic;
	unsigned ifindex;
	int ret;

	dmt_err_clear(err);
	if (!ifname || !ifname[0] || strlen(ifname) >= IF_NAMESIZE) {
		dmt_err_set(err, -EINVAL, "name an interface (at most 15 characters)",
			    "open NIC \"%s\"", ifname ? ifname : "(null)");
		return NULL;
	}
	ifindex = if_nametoindex(ifname);
	if (!ifindex) {
		dmt_err_set(err, -ENODEV, "no such interface in this network "
			    "namespace: see ip link", "no interface %s", ifname);
		return NULL;
	}
	nic = calloc(1, sizeof(*nic));
	if (!nic) {
		dmt_err_set(err, -ENOMEM, NULL, "allocate a NIC handle");
		return NULL;
	}
	nic->ifindex = ifindex;
	snprintf(nic->ifname, sizeof(nic->ifname), "%s", ifname);
	nic->ioc_fd = -1;

	ret = dmt_nls_open(&nic->genl, NETLINK_GENERIC, err);
	if (ret)
		goto fail;
	ret = dmt_genl_family(&nic->genl, ETHTOOL_GENL_NAME, &nic->family,
			      NULL, &nic->err);
	if (ret) {
		dmt_err_copy(err, &nic->err);
		dmt_err_set(err, ret, ret == -ENOENT ? "kernel has no ethtool "
			    "netlink (needs CONFIG_ETHTOOL_NETLINK)" : NULL,
			    "resolve generic netlink family \"%s\"",
			    ETHTOOL_GENL_NAME);
		goto fail;
	}
	nic->ioc_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (nic->ioc_fd < 0) {
		dmt_err_set(err, -errno, NULL, "open a socket for SIOCETHTOOL");
		goto fail;
	}
	/* optional: without the netdev family the queue count comes from
	 * ethtool */
	nic->nl = dmt_nl_open(NULL);
	return nic;
fail:
	nic->nr_undo = 0;
	dmt_nic_close(nic);
	return NULL;
}

DMT_API const struct dmt_err *dmt_nic_error(const struct dmt_nic *nic)
{
	return nic ? &nic->err : NULL;
}

DMT_API unsigned dmt_nic_ifindex(const struct dmt_nic *nic)
{
	return nic ? nic->ifindex : 0;
}

/* ------------------------------------------------------------ state */

static int count_rx_cb(const struct dmt_queue_info *q, void *arg)
{
	if (q->type == 0)
		(*(uint32_t *)arg)++;
	return 0;
}

/*
 * Real RX queues: the queue-get dump, which lists none while the device is
 * down; then ETHTOOL_GRXRINGS; then the channel counts.
 */
static int rx_queue_count(struct dmt_nic *nic, const struct eth_reply *ch,
			  uint32_t *n)
{
	int ret;

	*n = 0;
	if (nic->nl) {
		ret = dmt_queue_dump(nic->nl, nic->ifindex, count_rx_cb, n);
		if (ret == -ENODEV)
			return ret;
		if (*n)
			return 0;
	}
	if (!rx_rings(nic, n) && *n)
		return 0;
	*n = ch->v[ETHTOOL_A_CHANNELS_COMBINED_COUNT] +
	     ch->v[ETHTOOL_A_CHANNELS_RX_COUNT];
	return 0;
}

/* The real RX queue count alone, for prepare and steer. */
static int nic_rx_queues(struct dmt_nic *nic, uint32_t *n)
{
	struct eth_reply ch;
	int ret;

	ret = eth_get(nic, ETHTOOL_MSG_CHANNELS_GET, &ch);
	if (ret == -EOPNOTSUPP) {
		dmt_err_extack(&nic->err, NULL);
		memset(&ch, 0, sizeof(ch));
	} else if (ret) {
		return dmt_err_set(&nic->err, ret, NULL, "read the channels of %s",
				   nic->ifname);
	}
	ret = rx_queue_count(nic, &ch, n);
	if (ret)
		return dmt_err_set(&nic->err, ret, NULL, "count the RX queues of %s",
				   nic->ifname);
	return 0;
}

static int nic_state(struct dmt_nic *nic, struct dmt_nic_state *st)
{
	struct eth_reply ch;
	struct rings r;
	struct ntuple nt;
	int ret;

	memset(st, 0, sizeof(*st));
	st->ifindex = nic->ifindex;

	ret = eth_get(nic, ETHTOOL_MSG_CHANNELS_GET, &ch);
	if (ret == -EOPNOTSUPP) {
		dmt_err_extack(&nic->err, NULL);
		memset(&ch, 0, sizeof(ch));
	} else if (ret) {
		return dmt_err_set(&nic->err, ret, NULL, "read the channels of %s",
				   nic->ifname);
	}
	st->combined = ch.v[ETHTOOL_A_CHANNELS_COMBINED_COUNT];
	st->combined_max = ch.v[ETHTOOL_A_CHANNELS_COMBINED_MAX];
	st->rx = ch.v[ETHTOOL_A_CHANNELS_RX_COUNT];
	st->rx_max = ch.v[ETHTOOL_A_CHANNELS_RX_MAX];
	st->tx = ch.v[ETHTOOL_A_CHANNELS_TX_COUNT];
	st->tx_max = ch.v[ETHTOOL_A_CHANNELS_TX_MAX];

	ret = rings_get(nic, &r);
	if (ret)
		return dmt_err_set(&nic->err, ret, NULL, "read the rings of %s",
				   nic->ifname);
	st->has_rings = r.has;
	st->ring_rx = r.rx;
	st->ring_rx_max = r.rx_max;
	st->tcp_data_split = r.tds;
	st->has_hds_thresh = r.has_hds;
	st->hds_thresh = r.hds;
	st->hds_thresh_max = r.hds_max;

	ret = rx_queue_count(nic, &ch, &st->rx_queues);
	if (ret)
		return dmt_err_set(&nic->err, ret, NULL, "count the RX queues of %s",
				   nic->ifname);

	ret = rss_size(nic, &st->rss_indir_size);
	if (ret)
		return dmt_err_set(&nic->err, ret, NULL, "read the RSS table size "
				   "of %s", nic->ifname);

	ret = ntuple_count(nic, &nt);
	if (ret && ret != -EOPNOTSUPP)
		return dmt_err_set(&nic->err, ret, NULL, "count the ntuple rules "
				   "of %s", nic->ifname);
	if (!ret) {
		st->ntuple = ntuple_on(nic);
		st->ntuple_rules = nt.rules;
		st->ntuple_max = nt.max;
	}

	ret = xdp_attached(nic, &st->xdp);
	if (ret)
		return dmt_err_set(&nic->err, ret, NULL, "read the XDP state of %s",
				   nic->ifname);
	return 0;
}

DMT_API int dmt_nic_get_state(struct dmt_nic *nic, struct dmt_nic_state *st)
{
	struct dmt_nic_state tmp;
	int ret;

	if (!nic)
		return -EINVAL;
	dmt_err_clear(&nic->err);
	ret = nic_state(nic, &tmp);
	if (!ret && st)
		*st = tmp;
	return ret;
}

/* ---------------------------------------------------------- prepare */

static struct nic_undo *undo_find(struct dmt_nic *nic, enum nic_undo_kind kind)
{
	for (unsigned i = 0; i < nic->nr_undo; i++)
		if (nic->undo[i].kind == kind)
			return &nic->undo[i];
	return NULL;
}

static struct nic_undo *undo_push(struct dmt_nic *nic, enum nic_undo_kind kind)
{
	struct nic_undo *u = &nic->undo[nic->nr_undo++];

	memset(u, 0, sizeof(*u));
	u->kind = kind;
	return u;
}

static const char *perm_fix(int ret)
{
	return ret == -EPERM ? "needs CAP_NET_ADMIN (run as root)" : NULL;
}

static int prepare_rings(struct dmt_nic *nic)
{
	char fix[192];
	struct rings r;
	int ret;

	ret = rings_get(nic, &r);
	if (ret)
		return dmt_err_set(&nic->err, ret, NULL, "read the rings of %s",
				   nic->ifname);
	/*
	 * Always set, even when the driver already reports split on: bind-rx
	 * checks the core's config, which only a rings-set writes.  hds-thresh
	 * goes along only when the driver has it (else the core refuses the
	 * attribute; its config stays at the default, 0).
	 */
	ret = rings_set(nic, ETHTOOL_TCP_DATA_SPLIT_ENABLED, r.has_hds, 0);
	if (ret) {
		switch (ret) {
		case -EOPNOTSUPP:
			snprintf(fix, sizeof(fix), "the driver of %s lacks header "
				 "split (tcp-data-split): devmem RX needs a NIC "
				 "that splits headers from payload", nic->ifname);
			break;
		case -EINVAL:
			snprintf(fix, sizeof(fix), "%s", strstr(nic->err.extack,
				 "XDP") ? "detach the XDP program first" : "");
			break;
		default:
			snprintf(fix, sizeof(fix), "%s", perm_fix(ret) ?: "");
		}
		return dmt_err_set(&nic->err, ret, fix[0] ? fix : NULL,
				   "set tcp-data-split on and hds-thresh 0 on %s",
				   nic->ifname);
	}
	/* the first change keeps the values to go back to */
	if (!undo_find(nic, UNDO_RINGS)) {
		struct nic_undo *u = undo_push(nic, UNDO_RINGS);

		u->rings.tds = r.tds;
		u->rings.has_hds = r.has_hds;
		u->rings.hds = r.hds;
	}
	return 0;
}

static int prepare_rss(struct dmt_nic *nic, unsigned start, unsigned count,
		       uint32_t nrx)
{
	uint32_t size, *cur = NULL, *ours = NULL, *set, others, i, q, rings;
	bool hit = false;
	int ret;

	ret = rss_size(nic, &size);
	if (ret)
		return dmt_err_set(&nic->err, ret, NULL, "read the RSS table size "
				   "of %s", nic->ifname);
	if (!size)
		return 0;	/* no table: nothing spreads to these queues */
	if (nic->rss_size && nic->rss_size != size)
		return dmt_err_set(&nic->err, -EBUSY, "open the NIC again",
				   "the RSS table of %s changed size (%u to %u)",
				   nic->ifname, nic->rss_size, size);

	cur = calloc(2 * (size_t)size, sizeof(uint32_t));
	if (!cur)
		return dmt_err_set(&nic->err, -ENOMEM, NULL, "allocate an RSS table");
	ours = cur + size;
	ret = rss_read(nic, size, cur);
	if (ret) {
		dmt_err_set(&nic->err, ret, NULL, "read the RSS table of %s",
			    nic->ifname);
		goto out;
	}
	for (i = 0; i < size; i++)
		hit |= cur[i] >= start && cur[i] - start < count;
	if (!hit)
		goto out;	/* already out of RSS: leave the table alone */

	/*
	 * Spread over the queues the table uses now, less the devmem ones, in
	 * order ("equal N" from the default table when the devmem queues are
	 * the last ones); queues already kept out (by the user, or by an
	 * earlier prepare) stay out.  If that leaves none, all the others.
	 */
	set = calloc(nrx, sizeof(*set));
	if (!set) {
		ret = dmt_err_set(&nic->err, -ENOMEM, NULL, "allocate a queue list");
		goto out;
	}
	for (i = 0; i < size; i++)
		if (cur[i] < nrx && !(cur[i] >= start && cur[i] - start < count))
			set[cur[i]] = 1;
	for (q = 0, others = 0; q < nrx; q++)
		if (set[q])
			set[others++] = q;
	if (!others)
		for (q = 0; q < nrx; q++)
			if (q < start || q - start >= count)
				set[others++] = q;
	for (i = 0; i < size; i++)
		ours[i] = set[i % others];
	free(set);
	ret = rss_write(nic, size, ours);
	if (ret) {
		dmt_err_set(&nic->err, ret, perm_fix(ret),
			    "take queues %u..%u of %s out of the RSS table",
			    start, start + count - 1, nic->ifname);
		goto out;
	}
	if (!nic->rss_size) {
		/* the first change: keep the original */
		nic->rss_size = size;
		nic->rss_orig = cur;
		nic->rss_ours = ours;
		nic->rss_default = !rx_rings(nic, &rings) && rings;
		for (i = 0; nic->rss_default && i < size; i++)
			nic->rss_default = cur[i] == i % rings;
		undo_push(nic, UNDO_RSS);
		cur = NULL;
	} else {
		memcpy(nic->rss_ours, ours, size * sizeof(uint32_t));
	}
out:
	free(cur);
	return ret;
}

/*
 * Turn the ntuple feature on (ethtool -K IF ntuple on) where the driver
 * has a rule table and the feature is off.  Where it is fixed off, or the
 * flags cannot be read, leave it: steer says what is wrong.
 */
static int prepare_ntuple(struct dmt_nic *nic)
{
	struct ntuple nt;
	uint32_t flags;
	int ret;

	if (ntuple_count(nic, &nt) || eth_flags(nic, &flags) ||
	    (flags & ETH_FLAG_NTUPLE))
		return 0;
	ret = eth_set_flags(nic, flags | ETH_FLAG_NTUPLE);
	if (ret == -EOPNOTSUPP)
		return 0;
	if (ret)
		return dmt_err_set(&nic->err, ret, perm_fix(ret), "turn ntuple "
				   "filters on for %s", nic->ifname);
	/* record it only if it is on now: the driver may have refused */
	if (!eth_flags(nic, &flags) && (flags & ETH_FLAG_NTUPLE) &&
	    !undo_find(nic, UNDO_NTUPLE))
		undo_push(nic, UNDO_NTUPLE);
	return 0;
}

DMT_API int dmt_nic_prepare_rx(struct dmt_nic *nic, unsigned start,
			       unsigned count)
{
	uint32_t nrx;
	char fix[192];
	int ret;

	if (!nic)
		return -EINVAL;
	dmt_err_clear(&nic->err);
	if (!count)
		return dmt_err_set(&nic->err, -EINVAL, "ask for one queue or more",
				   "prepare 0 RX queues of %s", nic->ifname);
	ret = nic_rx_queues(nic, &nrx);
	if (ret)
		return ret;
	if (start >= nrx || count > nrx - start) {
		snprintf(fix, sizeof(fix), "pick queues below %u, or add queues: "
			 "ethtool -L %s combined %u", nrx, nic->ifname,
			 start + count + (start ? 0 : 1));
		return dmt_err_set(&nic->err, -EINVAL, fix, "queues %u..%u of %s: "
				   "it has %u RX queues", start,
				   start + count - 1, nic->ifname, nrx);
	}
	if (nrx < count + 1) {
		snprintf(fix, sizeof(fix), "RSS keeps at least one queue: "
			 "ethtool -L %s combined %u", nic->ifname, count + 1);
		return dmt_err_set(&nic->err, -EINVAL, fix, "queues %u..%u of %s: "
				   "it has only %u RX queues", start,
				   start + count - 1, nic->ifname, nrx);
	}
	if (nic->nr_undo + 3 > NIC_UNDO_MAX)
		return dmt_err_set(&nic->err, -ENOSPC, "restore the NIC first",
				   "prepare %s: the undo log is full", nic->ifname);
	ret = prepare_rings(nic);
	if (!ret)
		ret = prepare_rss(nic, start, count, nrx);
	if (!ret)
		ret = prepare_ntuple(nic);
	return ret;
}

/* ------------------------------------------------------------ steer */

/* The IPv4 address of ss (a v4-mapped IPv6 one too); false if none. */
static bool flow_v4(const struct sockaddr_storage *ss, uint32_t *addr,
		    uint16_t *port)
{
	const struct sockaddr_in *sin = (const void *)ss;
	const struct sockaddr_in6 *sin6 = (const void *)ss;

	if (ss->ss_family == AF_INET) {
		*addr = sin->sin_addr.s_addr;
		*port = sin->sin_port;
		return true;
	}
	if (ss->ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
		memcpy(addr, &sin6->sin6_addr.s6_addr[12], 4);
		*port = sin6->sin6_port;
		return true;
	}
	return false;
}

/* Fill the match of fs; -EINVAL for mixed or unknown families. */
static int flow_spec(const struct dmt_flow *flow,
		     struct ethtool_rx_flow_spec *fs)
{
	const struct sockaddr_storage *p = &flow->peer, *l = &flow->local;
	bool p_any = p->ss_family == AF_UNSPEC, l_any = l->ss_family == AF_UNSPEC;
	uint32_t a4;
	uint16_t port;

	if (p_any && l_any)
		return -EINVAL;
	if ((p_any || flow_v4(p, &a4, &port)) &&
	    (l_any || flow_v4(l, &a4, &port))) {
		struct ethtool_tcpip4_spec *h = &fs->h_u.tcp_ip4_spec;
		struct ethtool_tcpip4_spec *m = &fs->m_u.tcp_ip4_spec;

		fs->flow_type = TCP_V4_FLOW;
		if (!p_any && flow_v4(p, &a4, &port)) {
			h->ip4src = a4;
			m->ip4src = a4 ? 0xffffffff : 0;
			h->psrc = port;
			m->psrc = port ? 0xffff : 0;
		}
		if (!l_any && flow_v4(l, &a4, &port)) {
			h->ip4dst = a4;
			m->ip4dst = a4 ? 0xffffffff : 0;
			h->pdst = port;
			m->pdst = port ? 0xffff : 0;
		}
		return 0;
	}
	if ((p_any || p->ss_family == AF_INET6) &&
	    (l_any || l->ss_family == AF_INET6)) {
		const struct sockaddr_in6 *ps = (const void *)p, *ls = (const void *)l;
		struct ethtool_tcpip6_spec *h = &fs->h_u.tcp_ip6_spec;
		struct ethtool_tcpip6_spec *m = &fs->m_u.tcp_ip6_spec;

		fs->flow_type = TCP_V6_FLOW;
		if (!p_any) {
			memcpy(h->ip6src, &ps->sin6_addr, 16);
			if (!IN6_IS_ADDR_UNSPECIFIED(&ps->sin6_addr))
				memset(m->ip6src, 0xff, 16);
			h->psrc = ps->sin6_port;
			m->psrc = ps->sin6_port ? 0xffff : 0;
		}
		if (!l_any) {
			memcpy(h->ip6dst, &ls->sin6_addr, 16);
			if (!IN6_IS_ADDR_UNSPECIFIED(&ls->sin6_addr))
				memset(m->ip6dst, 0xff, 16);
			h->pdst = ls->sin6_port;
			m->pdst = ls->sin6_port ? 0xffff : 0;
		}
		return 0;
	}
	return -EINVAL;
}

/* inserting: the insert failed; else counting the rules failed */
static const char *steer_fix(struct dmt_nic *nic, int ret, bool inserting,
			     char *fix, size_t len)
{
	switch (ret) {
	case -EOPNOTSUPP:
		if (inserting && !ntuple_on(nic))
			snprintf(fix, len, "turn ntuple filters on: ethtool -K %s "
				 "ntuple on", nic->ifname);
		else
			snprintf(fix, len, "the driver of %s has no ntuple filters "
				 "for TCP flows: devmem RX needs flow steering",
				 nic->ifname);
		return fix;
	case -ENOSPC:
		snprintf(fix, len, "the rule table is full: delete rules with "
			 "ethtool -N %s delete LOC", nic->ifname);
		return fix;
	}
	return perm_fix(ret);
}

DMT_API int dmt_nic_steer(struct dmt_nic *nic, const struct dmt_flow *flow,
			  unsigned queue, uint32_t *loc)
{
	struct ethtool_rx_flow_spec fs;
	struct ntuple nt;
	char fix[192];
	uint32_t free_loc, nrx;
	int ret;

	if (!nic)
		return -EINVAL;
	dmt_err_clear(&nic->err);
	memset(&fs, 0, sizeof(fs));
	if (!flow || flow_spec(flow, &fs))
		return dmt_err_set(&nic->err, -EINVAL, "give an IPv4 or an IPv6 "
				   "address on both sides (AF_UNSPEC: any)",
				   "steer a flow on %s: bad addresses", nic->ifname);
	ret = nic_rx_queues(nic, &nrx);
	if (ret)
		return ret;
	if (queue >= nrx) {
		snprintf(fix, sizeof(fix), "pick a queue below %u", nrx);
		return dmt_err_set(&nic->err, -EINVAL, fix, "steer to queue %u of "
				   "%s: it has %u RX queues", queue, nic->ifname, nrx);
	}
	if (nic->nr_undo + 1 > NIC_UNDO_MAX)
		return dmt_err_set(&nic->err, -ENOSPC, "restore the NIC first",
				   "steer on %s: the undo log is full", nic->ifname);
	fs.ring_cookie = queue;

	ret = ntuple_count(nic, &nt);
	if (ret)
		return dmt_err_set(&nic->err, ret, steer_fix(nic, ret, false,
				   fix, sizeof(fix)), "count the ntuple rules of %s",
				   nic->ifname);
	ret = -EINVAL;
	if (nt.special) {
		fs.location = RX_CLS_LOC_ANY;
		ret = ntuple_ins(nic, &fs);
	}
	/* no special locations, or refused: the first free slot */
	if (ret == -EINVAL || ret == -EOPNOTSUPP) {
		int r = ntuple_free_loc(nic, &free_loc);

		if (!r) {
			fs.location = free_loc;
			ret = ntuple_ins(nic, &fs);
		} else if (r != -EOPNOTSUPP || !nt.special) {
			ret = r;
		}
	}
	if (ret)
		return dmt_err_set(&nic->err, ret, steer_fix(nic, ret, true,
				   fix, sizeof(fix)), "insert an ntuple rule for a "
				   "%s flow to queue %u on %s",
				   fs.flow_type == TCP_V4_FLOW ? "tcp4" : "tcp6",
				   queue, nic->ifname);
	undo_push(nic, UNDO_RULE)->rule = fs;
	if (loc)
		*loc = fs.location;
	return 0;
}

/* ---------------------------------------------------------- restore */

/* Whether the rule at r->location still is the one this handle put. */
static bool rule_is_ours(const struct ethtool_rx_flow_spec *r,
			 const struct ethtool_rx_flow_spec *now)
{
	uint32_t mask = ~(uint32_t)(FLOW_EXT | FLOW_MAC_EXT | FLOW_RSS);

	if ((now->flow_type & mask) != r->flow_type ||
	    now->ring_cookie != r->ring_cookie)
		return false;
	if (r->flow_type == TCP_V4_FLOW) {
		const struct ethtool_tcpip4_spec *a = &r->h_u.tcp_ip4_spec;
		const struct ethtool_tcpip4_spec *b = &now->h_u.tcp_ip4_spec;
		const struct ethtool_tcpip4_spec *m = &r->m_u.tcp_ip4_spec;

		return !((a->ip4src ^ b->ip4src) & m->ip4src) &&
		       !((a->ip4dst ^ b->ip4dst) & m->ip4dst) &&
		       !((a->psrc ^ b->psrc) & m->psrc) &&
		       !((a->pdst ^ b->pdst) & m->pdst);
	} else {
		const struct ethtool_tcpip6_spec *a = &r->h_u.tcp_ip6_spec;
		const struct ethtool_tcpip6_spec *b = &now->h_u.tcp_ip6_spec;
		const struct ethtool_tcpip6_spec *m = &r->m_u.tcp_ip6_spec;

		for (int i = 0; i < 4; i++)
			if (((a->ip6src[i] ^ b->ip6src[i]) & m->ip6src[i]) ||
			    ((a->ip6dst[i] ^ b->ip6dst[i]) & m->ip6dst[i]))
				return false;
		return !((a->psrc ^ b->psrc) & m->psrc) &&
		       !((a->pdst ^ b->pdst) & m->pdst);
	}
}

static int undo_rule(struct dmt_nic *nic, const struct ethtool_rx_flow_spec *r)
{
	struct ethtool_rxnfc nfc = { .cmd = ETHTOOL_GRXCLSRULE };
	int ret;

	nfc.fs.location = r->location;
	ret = nic_ioctl(nic, &nfc);
	if (ret == -ENOENT || (!ret && !rule_is_ours(r, &nfc.fs)))
		return 0;	/* gone, or someone else's now */
	memset(&nfc, 0, sizeof(nfc));
	nfc.cmd = ETHTOOL_SRXCLSRLDEL;
	nfc.fs.location = r->location;
	ret = nic_ioctl(nic, &nfc);
	if (ret == -ENOENT)
		ret = 0;
	if (ret)
		dmt_err_set(&nic->err, ret, perm_fix(ret), "delete ntuple rule %u "
			    "of %s", r->location, nic->ifname);
	return ret;
}

static int undo_rss(struct dmt_nic *nic)
{
	uint32_t *now;
	int ret;

	now = calloc(nic->rss_size, sizeof(uint32_t));
	if (!now)
		return dmt_err_set(&nic->err, -ENOMEM, NULL, "allocate an RSS table");
	ret = rss_read(nic, nic->rss_size, now);
	if (!ret && memcmp(now, nic->rss_ours, nic->rss_size * sizeof(uint32_t)))
		goto out;	/* changed by someone else since: theirs */
	ret = rss_write(nic, nic->rss_size, nic->rss_default ? NULL :
			nic->rss_orig);
	if (ret)
		dmt_err_set(&nic->err, ret, perm_fix(ret), "restore the RSS table "
			    "of %s", nic->ifname);
out:
	free(now);
	return ret;
}

/*
 * The ntuple feature goes back off, unless it is off already or rules are
 * left: turning it off drops the rules on some drivers.  This handle's own
 * rules went first (newest first), so what is left is someone else's, or
 * one of its own that would not go.
 */
static int undo_ntuple(struct dmt_nic *nic)
{
	struct ntuple nt;
	uint32_t flags;
	int ret;

	ret = eth_flags(nic, &flags);
	if (!ret && (!(flags & ETH_FLAG_NTUPLE) ||
		     (!ntuple_count(nic, &nt) && nt.rules)))
		return 0;	/* off, or someone else's rules need it now */
	if (!ret)
		ret = eth_set_flags(nic, flags & ~ETH_FLAG_NTUPLE);
	if (ret)
		dmt_err_set(&nic->err, ret, perm_fix(ret), "turn ntuple filters "
			    "off again on %s", nic->ifname);
	return ret;
}

/*
 * Rings go back to the values reported before.  The core keeps a config
 * value (0 unknown, 1 off, 2 on) that only rings-set writes, and drivers
 * report their state from it; a driver that reports "off" for the
 * config "unknown" comes back as config "off", which reads the same.
 */
static int undo_rings(struct dmt_nic *nic, const struct nic_undo *u)
{
	struct rings r;
	int ret;

	ret = rings_get(nic, &r);
	if (!ret && r.has && (r.tds != ETHTOOL_TCP_DATA_SPLIT_ENABLED ||
			      (r.has_hds && r.hds)))
		return 0;	/* changed by someone else since: theirs */
	dmt_err_clear(&nic->err);
	ret = rings_set(nic, u->rings.tds, u->rings.has_hds, u->rings.hds);
	if (ret)
		dmt_err_set(&nic->err, ret, ret == -EINVAL ?
			    "unbind the RX dma-buf first (dmt_rxbind_free), "
			    "then restore again" : perm_fix(ret),
			    "restore tcp-data-split %u and hds-thresh %u on %s",
			    u->rings.tds, u->rings.hds, nic->ifname);
	return ret;
}

DMT_API int dmt_nic_restore(struct dmt_nic *nic)
{
	struct dmt_err first = { 0 };
	unsigned i, kept = 0;
	int ret;

	if (!nic)
		return -EINVAL;
	dmt_err_clear(&nic->err);
	for (i = nic->nr_undo; i-- > 0;) {
		struct nic_undo *u = &nic->undo[i];

		dmt_err_clear(&nic->err);
		switch (u->kind) {
		case UNDO_RULE:
			ret = undo_rule(nic, &u->rule);
			break;
		case UNDO_RSS:
			ret = undo_rss(nic);
			break;
		case UNDO_RINGS:
			ret = undo_rings(nic, u);
			break;
		case UNDO_NTUPLE:
			ret = undo_ntuple(nic);
			break;
		default:
			ret = 0;
		}
		u->failed = ret != 0;
		if (ret && !first.code)
			first = nic->err;
	}
	/* keep what failed, in order, for another try */
	for (i = 0; i < nic->nr_undo; i++)
		if (nic->undo[i].failed)
			nic->undo[kept++] = nic->undo[i];
	nic->nr_undo = kept;
	if (!undo_find(nic, UNDO_RSS)) {
		free(nic->rss_orig);
		nic->rss_orig = nic->rss_ours = NULL;
		nic->rss_size = 0;
	}
	nic->err = first;
	return first.code;
}

DMT_API void dmt_nic_close(struct dmt_nic *nic)
{
	if (!nic)
		return;
	if (nic->nr_undo)
		dmt_nic_restore(nic);
	dmt_nl_close(nic->nl);
	if (nic->ioc_fd >= 0)
		close(nic->ioc_fd);
	dmt_nls_close(&nic->genl);
	free(nic->rss_orig);
	free(nic);
}
