// SPDX-License-Identifier: MIT
/*
 * ethtool.c - NIC setup for devmem RX: read what the NIC offers (channels
 * and rings through ethtool netlink, the RX queues through the netdev
 * queue-get dump, the RSS indirection table and the ntuple rules through
 * the SIOCETHTOOL ioctl, XDP through rtnetlink), make queues ready for
 * bind-rx (tcp-data-split on, hds-thresh 0, the queues out of the default
 * RSS context, the ntuple feature on; hardware GRO on where the driver
 * offers it) and steer flows to them with ntuple rules.
 *
 * Every change goes into the handle's undo log before it is made: in
 * memory, and (0.2) appended to a file, LOG_DIR/net-NETNS/IFNAME.undo, and
 * fdatasync'ed, so that a process killed part way leaves a record that
 * dmt_nic_restore_log replays.  dmt_nic_restore undoes the log newest
 * first.  The log holds the values seen before the first change of each
 * kind (rings, RSS table, ntuple feature, rx-gro-hw) and one entry per rule
 * inserted,
 * so restore brings back the NIC as it was at the first change however
 * often prepare and steer ran.  An entry whose undo fails stays in the log
 * (a later restore tries again); the others go.  An undo first checks that
 * the setting is still the one this handle made, and leaves alone what
 * someone else has changed since.  Restoring while a queue of the device
 * is bound to a memory provider is refused (-EBUSY): the kernel would
 * refuse the rings, and the RSS table and rules still serve the binding.
 *
 * The file is flock'ed from the first change to the full restore: a second
 * handle (another process) preparing the same NIC is refused, naming the
 * holder's pid.  It is append-only text, one line per entry; a later line
 * with an entry's number replaces it, "N undone" drops it, and a last line
 * without its newline (a crash while writing it) is ignored: the change it
 * announced was not made yet.
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
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
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
#define NIC_LOG_DIR	"/run/devmemtcp"
#define NIC_LOG_MAGIC	"devmemtcp-nic-undo 1"
#define NIC_LOG_MAX	(4 << 20)	/* a sane log is far smaller */

/* ------------------------------------------------------------ handle */

enum nic_undo_kind {
	UNDO_RINGS = 1,		/* tcp-data-split and hds-thresh */
	UNDO_RSS,		/* the indirection table (nic->rss_orig) */
	UNDO_RULE,		/* an ntuple rule this handle inserted */
	UNDO_NTUPLE,		/* the ntuple feature, turned on here */
	UNDO_GRO_HW,		/* rx-gro-hw, turned on here */
};

struct nic_undo {
	enum nic_undo_kind kind;
	unsigned seq;		/* the entry's number in the log file */
	bool failed;		/* restore: the undo failed, keep it */
	bool loc_known;		/* rule: inserted, at rule.location */
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
	/* the log file: created and locked at the first change */
	char log_dir[PATH_MAX];	/* LOG_DIR/net-NETNS */
	char log_path[PATH_MAX];
	unsigned long netns;	/* inode of our network namespace */
	int log_fd;		/* -1 until the first change */
	unsigned log_seq;	/* the last entry number used */
	bool no_gro_hw;		/* DMT_NIC_NO_GRO_HW */
	struct dmt_err err;	/* last error */
};

/* What a restore did, for dmt_nic_restore_log's report. */
struct restore_stats {
	unsigned undone, rules;
	bool rings, rss, ntuple, gro_hw;
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

/*
 * A feature of the ETH_SS_FEATURES string set (ethtool -k), by name: its
 * bit, whether the driver lets it change (hw_features) and whether it is on.
 */
struct feature {
	uint32_t bit, blocks;	/* blocks: 32-bit words of the feature set */
	bool changeable, active;
};

/* -EOPNOTSUPP: the kernel has no feature of that name. */
static int feature_get(struct dmt_nic *nic, const char *name,
		       struct feature *f)
{
	struct {
		struct ethtool_sset_info hdr;
		uint32_t count;
	} si = { .hdr = { .cmd = ETHTOOL_GSSET_INFO,
			  .sset_mask = 1ull << ETH_SS_FEATURES } };
	struct ethtool_gstrings *gs = NULL;
	struct ethtool_gfeatures *gf = NULL;
	uint32_t i, n, word, mask;
	int ret;

	memset(f, 0, sizeof(*f));
	ret = nic_ioctl(nic, &si);
	if (ret)
		return ret;
	n = si.hdr.sset_mask ? si.count : 0;
	gs = calloc(1, sizeof(*gs) + (size_t)n * ETH_GSTRING_LEN);
	if (!gs)
		return -ENOMEM;
	gs->cmd = ETHTOOL_GSTRINGS;
	gs->string_set = ETH_SS_FEATURES;
	gs->len = n;
	ret = nic_ioctl(nic, gs);
	for (i = 0; !ret && i < gs->len; i++)
		if (!strncmp((char *)gs->data + i * ETH_GSTRING_LEN, name,
			     ETH_GSTRING_LEN))
			break;
	if (!ret && i >= gs->len)
		ret = -EOPNOTSUPP;
	if (ret)
		goto out;
	f->bit = i;
	f->blocks = (n + 31) / 32;
	gf = calloc(1, sizeof(*gf) + f->blocks * sizeof(gf->features[0]));
	if (!gf) {
		ret = -ENOMEM;
		goto out;
	}
	gf->cmd = ETHTOOL_GFEATURES;
	gf->size = f->blocks;
	ret = nic_ioctl(nic, gf);
	if (!ret) {
		word = i / 32;
		mask = 1u << (i % 32);
		f->changeable = gf->features[word].available & mask;
		f->active = gf->features[word].active & mask;
	}
out:
	free(gf);
	free(gs);
	return ret;
}

/* Ask for feature f on or off; the driver may refuse quietly: read back. */
static int feature_set(struct dmt_nic *nic, const struct feature *f, bool on)
{
	struct ethtool_sfeatures *sf;
	uint32_t word = f->bit / 32, mask = 1u << (f->bit % 32);
	int ret;

	sf = calloc(1, sizeof(*sf) + f->blocks * sizeof(sf->features[0]));
	if (!sf)
		return -ENOMEM;
	sf->cmd = ETHTOOL_SFEATURES;
	sf->size = f->blocks;
	sf->features[word].valid = mask;
	sf->features[word].requested = on ? mask : 0;
	ret = nic_ioctl(nic, sf);
	free(sf);
	return ret;
}

#define GRO_HW	"rx-gro-hw"

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

/* ------------------------------------------------------------ undo log */

static struct nic_undo *undo_find(struct dmt_nic *nic, enum nic_undo_kind kind)
{
	for (unsigned i = 0; i < nic->nr_undo; i++)
		if (nic->undo[i].kind == kind)
			return &nic->undo[i];
	return NULL;
}

static const char *perm_fix(int ret)
{
	return ret == -EPERM ? "needs CAP_NET_ADMIN (run as root)" : NULL;
}

/* The inode of this thread's network namespace: logs are per namespace. */
static int netns_ino(unsigned long *ino)
{
	struct stat st;

	if (stat("/proc/thread-self/ns/net", &st) && stat("/proc/self/ns/net", &st))
		return -errno;
	*ino = st.st_ino;
	return 0;
}

/* LOG_DIR/net-NETNS into dir; 0 or -errno with err filled. */
static int log_dir_of(const char *base, char *dir, size_t len,
		      unsigned long *ino, struct dmt_err *err)
{
	int ret = netns_ino(ino);

	if (ret)
		return dmt_err_set(err, ret, "mount /proc", "find this network "
				   "namespace (/proc/self/ns/net)");
	if ((size_t)snprintf(dir, len, "%s/net-%lu", base ? base : NIC_LOG_DIR,
			     *ino) >= len)
		return dmt_err_set(err, -ENAMETOOLONG, "use a shorter log_dir",
				   "undo log directory %s", base);
	return 0;
}

/* The pid and command recorded last in an open log ("owner" lines). */
static void log_owner(int fd, int *pid, char *comm, size_t len)
{
	char buf[8192], *p, *nl;
	ssize_t n;
	off_t off = 0;

	*pid = 0;
	snprintf(comm, len, "?");
	/* owner lines come early and after each take-over: read it all */
	while ((n = pread(fd, buf, sizeof(buf) - 1, off)) > 0) {
		buf[n] = '\0';
		for (p = buf; (nl = strchr(p, '\n')); p = nl + 1) {
			int pid1, at;

			*nl = '\0';
			if (sscanf(p, "owner %d %n", &pid1, &at) == 1) {
				*pid = pid1;
				snprintf(comm, len, "%s", p + at);
			}
		}
		if (p == buf)
			break;	/* a line longer than buf: skip the rest */
		off += p - buf;
	}
}

static bool pid_alive(int pid)
{
	return pid > 0 && (!kill(pid, 0) || errno == EPERM);
}

/*
 * Open path (create: for a handle's first change) and lock it.  A log
 * unlinked between our open and our lock is not the log: open again.
 * Returns the fd, or -errno with err filled (-EBUSY: another holder).
 */
static int log_lock(const char *path, const char *ifname, bool create,
		    struct dmt_err *err)
{
	char comm[64], fix[192];
	struct stat a, b;
	int fd, pid, tries;

	for (tries = 0; tries < 8; tries++) {
		fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC |
			  (create ? O_CREAT : 0), 0600);
		if (fd < 0) {
			int ret = -errno;

			if (ret == -ENOENT && !create)
				return dmt_err_set(err, ret, "nothing to restore",
						   "no undo log for %s (%s)", ifname, path);
			return dmt_err_set(err, ret, ret == -EACCES || ret == -EROFS ?
					   "run as root (NIC changes need CAP_NET_ADMIN), "
					   "or set dmt_nic_opts.log_dir" : NULL,
					   "open the undo log %s", path);
		}
		if (flock(fd, LOCK_EX | LOCK_NB)) {
			int ret = -errno;

			if (ret == -EWOULDBLOCK) {
				log_owner(fd, &pid, comm, sizeof(comm));
				close(fd);
				snprintf(fix, sizeof(fix), "wait for it to end, or "
					 "stop it (kill -TERM %d): it restores the "
					 "NIC when it ends", pid);
				return dmt_err_set(err, -EBUSY, fix, "%s is being "
						   "set up by pid %d (%s), which holds %s",
						   ifname, pid, comm, path);
			}
			close(fd);
			return dmt_err_set(err, ret, NULL, "lock the undo log %s", path);
		}
		if (!fstat(fd, &a) && !stat(path, &b) && a.st_dev == b.st_dev &&
		    a.st_ino == b.st_ino)
			return fd;
		close(fd);	/* removed or replaced under us: again */
		if (!create && errno == ENOENT)
			return dmt_err_set(err, -ENOENT, "nothing to restore",
					   "no undo log for %s (%s)", ifname, path);
	}
	return dmt_err_set(err, -EAGAIN, "try again", "lock the undo log %s", path);
}

/* Append one line and make it durable before the change it announces. */
static int log_write(struct dmt_nic *nic, const char *line, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = write(nic->log_fd, line + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return dmt_err_set(&nic->err, n < 0 ? -errno : -EIO, NULL,
					   "write the undo log %s", nic->log_path);
		done += n;
	}
	if (fdatasync(nic->log_fd) && errno != EINVAL)
		return dmt_err_set(&nic->err, -errno, NULL, "sync the undo log %s",
				   nic->log_path);
	return 0;
}

static int log_printf(struct dmt_nic *nic, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int log_printf(struct dmt_nic *nic, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line))
		return dmt_err_set(&nic->err, -EOVERFLOW, NULL, "format an undo "
				   "log line");
	return log_write(nic, line, n);
}

static void comm_of(char *comm, size_t len)
{
	FILE *f = fopen("/proc/self/comm", "re");

	snprintf(comm, len, "?");
	if (f) {
		if (fgets(comm, len, f))
			comm[strcspn(comm, "\n")] = '\0';
		fclose(f);
	}
}

static int log_parse(struct dmt_nic *nic, char *text, size_t len,
		     struct dmt_nic_log *info, struct dmt_err *err);

/*
 * The first change of a handle: create and lock its log.  A log left with
 * changes nobody undid (a process killed part way) is not taken over: the
 * NIC is not as it was, so "before" would be wrong.
 */
static int log_begin(struct dmt_nic *nic)
{
	struct dmt_nic_log info;
	struct dmt_nic *old;
	char comm[64], fix[320];
	struct stat st;
	int fd, ret;

	if (nic->log_fd >= 0)
		return 0;
	if ((mkdir(nic->log_dir, 0700) && errno != EEXIST)) {
		/* LOG_DIR itself first */
		char base[PATH_MAX], *slash;

		snprintf(base, sizeof(base), "%s", nic->log_dir);
		slash = strrchr(base, '/');
		if (slash)
			*slash = '\0';
		if ((mkdir(base, 0755) && errno != EEXIST) ||
		    (mkdir(nic->log_dir, 0700) && errno != EEXIST))
			return dmt_err_set(&nic->err, -errno, errno == EACCES ||
					   errno == EROFS ? "run as root (NIC "
					   "changes need CAP_NET_ADMIN), or set "
					   "dmt_nic_opts.log_dir" : NULL,
					   "create the undo log directory %s",
					   nic->log_dir);
	}
	fd = log_lock(nic->log_path, nic->ifname, true, &nic->err);
	if (fd == -ENOENT && !mkdir(nic->log_dir, 0700))	/* rmdir'ed meanwhile */
		fd = log_lock(nic->log_path, nic->ifname, true, &nic->err);
	if (fd < 0)
		return fd;
	if (!fstat(fd, &st) && st.st_size > 0) {
		char *text = NULL;
		ssize_t n = -1;

		old = calloc(1, sizeof(*old));
		if (st.st_size <= NIC_LOG_MAX)
			text = malloc(st.st_size + 1);
		if (old && text)
			n = pread(fd, text, st.st_size, 0);
		memset(&info, 0, sizeof(info));
		ret = n == st.st_size ? log_parse(old, text, n, &info, &nic->err)
				      : -EIO;
		if (old)
			free(old->rss_orig);
		free(old);
		free(text);
		if (!ret && old && info.changes) {
			snprintf(fix, sizeof(fix), "run `devmemtcp restore %s` "
				 "first (or dmt_nic_restore_log)", nic->ifname);
			close(fd);
			return dmt_err_set(&nic->err, -EBUSY, fix, "%s has %u "
					   "change%s left by pid %d (%s), never "
					   "undone (%s)", nic->ifname, info.changes,
					   info.changes == 1 ? "" : "s", info.pid,
					   pid_alive(info.pid) ? "running" : "gone",
					   nic->log_path);
		}
		if (ret && ret != -EBADMSG) {
			close(fd);
			return dmt_err_set(&nic->err, ret, NULL, "read the undo "
					   "log %s", nic->log_path);
		}
		if (ret) {
			close(fd);
			return ret;	/* corrupt: say so, touch nothing */
		}
		/* nothing left to undo in it: start afresh */
		if (ftruncate(fd, 0)) {
			ret = -errno;
			close(fd);
			return dmt_err_set(&nic->err, ret, NULL, "truncate the "
					   "undo log %s", nic->log_path);
		}
	}
	nic->log_fd = fd;
	comm_of(comm, sizeof(comm));
	ret = log_printf(nic, NIC_LOG_MAGIC "\n"
			 "# `devmemtcp restore %s` undoes what this records\n"
			 "nic %s %u %lu\nowner %d %s\n", nic->ifname, nic->ifname,
			 nic->ifindex, nic->netns, (int)getpid(), comm);
	if (ret) {
		unlink(nic->log_path);
		close(fd);
		nic->log_fd = -1;
	}
	return ret;
}

/* Done with the log: remove it when nothing is left to undo, unlock. */
static void log_end(struct dmt_nic *nic)
{
	if (nic->log_fd < 0)
		return;
	if (!nic->nr_undo) {
		unlink(nic->log_path);	/* under the lock */
		rmdir(nic->log_dir);	/* when it was the last one */
	}
	close(nic->log_fd);
	nic->log_fd = -1;
}

/* Comma-separated table. */
static int log_table(char *p, size_t len, const uint32_t *tab, uint32_t n)
{
	size_t off = 0;

	for (uint32_t i = 0; i < n; i++) {
		int w = snprintf(p + off, len - off, "%s%u", i ? "," : "", tab[i]);

		if (w < 0 || (size_t)w >= len - off)
			return -EOVERFLOW;
		off += w;
	}
	return off;
}

/* Write entry u (again: a later line replaces an earlier one). */
static int log_entry(struct dmt_nic *nic, const struct nic_undo *u)
{
	const unsigned char *b = (const void *)&u->rule;
	char hex[2 * sizeof(u->rule) + 1];
	char *line;
	size_t len;
	int n, a, o;

	switch (u->kind) {
	case UNDO_RINGS:
		if (u->rings.has_hds)
			return log_printf(nic, "%u rings %u %u\n", u->seq,
					  u->rings.tds, u->rings.hds);
		return log_printf(nic, "%u rings %u -\n", u->seq, u->rings.tds);
	case UNDO_NTUPLE:
		return log_printf(nic, "%u ntuple\n", u->seq);
	case UNDO_GRO_HW:
		return log_printf(nic, "%u gro-hw\n", u->seq);
	case UNDO_RULE:
		for (size_t i = 0; i < sizeof(u->rule); i++)
			sprintf(hex + 2 * i, "%02x", b[i]);
		if (u->loc_known)
			return log_printf(nic, "%u rule %u %s\n", u->seq,
					  u->rule.location, hex);
		return log_printf(nic, "%u rule any %s\n", u->seq, hex);
	case UNDO_RSS:
		len = 64 + 2 * 11 * (size_t)nic->rss_size;
		line = malloc(len);
		if (!line)
			return dmt_err_set(&nic->err, -ENOMEM, NULL, "allocate "
					   "an undo log line");
		n = snprintf(line, len, "%u rss %u %d ", u->seq, nic->rss_size,
			     nic->rss_default);
		a = log_table(line + n, len - n, nic->rss_orig, nic->rss_size);
		if (a >= 0) {
			n += a;
			line[n++] = ' ';
			o = log_table(line + n, len - n, nic->rss_ours,
				      nic->rss_size);
			if (o >= 0 && (size_t)(n + o + 1) < len) {
				n += o;
				line[n++] = '\n';
				a = log_write(nic, line, n);
				free(line);
				return a;
			}
		}
		free(line);
		return dmt_err_set(&nic->err, -EOVERFLOW, NULL, "format an undo "
				   "log line");
	}
	return 0;
}

/*
 * Record a change about to be made: a new entry, in memory and on disk.
 * NULL with nic->err set when the log cannot be written (then the change
 * must not be made).  Fill the entry's fields before calling: pass them in
 * tmpl.
 */
static struct nic_undo *undo_record(struct dmt_nic *nic,
				    const struct nic_undo *tmpl)
{
	struct nic_undo *u;

	if (nic->nr_undo >= NIC_UNDO_MAX) {
		dmt_err_set(&nic->err, -ENOSPC, "restore the NIC first",
			    "%s: the undo log is full", nic->ifname);
		return NULL;
	}
	if (log_begin(nic))
		return NULL;
	u = &nic->undo[nic->nr_undo];
	*u = *tmpl;
	u->seq = ++nic->log_seq;
	u->failed = false;
	if (log_entry(nic, u))
		return NULL;
	nic->nr_undo++;
	return u;
}

/* The newest entry's change was not made after all: drop it. */
static void undo_cancel(struct dmt_nic *nic, struct nic_undo *u)
{
	if (u != &nic->undo[nic->nr_undo - 1])
		return;
	log_printf(nic, "%u undone\n", u->seq);	/* best effort */
	nic->nr_undo--;
}

/* ---------------------------------------------------- reading a log */

static int parse_u32(const char *s, uint32_t *v)
{
	char *end;
	unsigned long x;

	errno = 0;
	x = strtoul(s, &end, 10);
	if (errno || end == s || *end || x > UINT32_MAX || *s == '-')
		return -1;
	*v = x;
	return 0;
}

static int parse_table(char *s, uint32_t *tab, uint32_t n)
{
	char *save = NULL, *tok;
	uint32_t i = 0;

	for (tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (i >= n || parse_u32(tok, &tab[i++]))
			return -1;
	}
	return i == n ? 0 : -1;
}

static int parse_hex(const char *s, void *dst, size_t len)
{
	unsigned char *b = dst;

	if (strlen(s) != 2 * len)
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned x;

		if (sscanf(s + 2 * i, "%2x", &x) != 1)
			return -1;
		b[i] = x;
	}
	return 0;
}

/* The entry numbered seq, or a new one at the end. */
static struct nic_undo *entry_at(struct dmt_nic *nic, unsigned seq, bool add)
{
	for (unsigned i = 0; i < nic->nr_undo; i++)
		if (nic->undo[i].seq == seq)
			return &nic->undo[i];
	if (!add || nic->nr_undo >= NIC_UNDO_MAX)
		return NULL;
	memset(&nic->undo[nic->nr_undo], 0, sizeof(nic->undo[0]));
	nic->undo[nic->nr_undo].seq = seq;
	return &nic->undo[nic->nr_undo++];
}

/* One entry line: "SEQ KIND ARGS"; 0 or -1 (corrupt). */
static int parse_entry(struct dmt_nic *nic, char *line)
{
	char *f[8], *save = NULL;
	struct nic_undo *u;
	uint32_t seq, v, n = 0;

	for (char *t = strtok_r(line, " ", &save); t && n < 8;
	     t = strtok_r(NULL, " ", &save))
		f[n++] = t;
	if (n < 2 || parse_u32(f[0], &seq) || !seq)
		return -1;
	if (seq > nic->log_seq)
		nic->log_seq = seq;
	if (!strcmp(f[1], "undone")) {
		u = entry_at(nic, seq, false);
		if (n != 2)
			return -1;
		if (u) {
			if (u->kind == UNDO_RSS) {
				free(nic->rss_orig);
				nic->rss_orig = nic->rss_ours = NULL;
				nic->rss_size = 0;
			}
			memmove(u, u + 1, (char *)&nic->undo[nic->nr_undo] -
				(char *)(u + 1));
			nic->nr_undo--;
		}
		return 0;
	}
	u = entry_at(nic, seq, true);
	if (!u)
		return -1;
	if (!strcmp(f[1], "rings") && n == 4) {
		u->kind = UNDO_RINGS;
		if (parse_u32(f[2], &v) || v > ETHTOOL_TCP_DATA_SPLIT_ENABLED)
			return -1;
		u->rings.tds = v;
		u->rings.has_hds = strcmp(f[3], "-");
		if (u->rings.has_hds && parse_u32(f[3], &u->rings.hds))
			return -1;
		return 0;
	}
	if (!strcmp(f[1], "ntuple") && n == 2) {
		u->kind = UNDO_NTUPLE;
		return 0;
	}
	if (!strcmp(f[1], "gro-hw") && n == 2) {
		u->kind = UNDO_GRO_HW;
		return 0;
	}
	if (!strcmp(f[1], "rule") && n == 4) {
		u->kind = UNDO_RULE;
		u->loc_known = strcmp(f[2], "any");
		if (parse_hex(f[3], &u->rule, sizeof(u->rule)) ||
		    (u->loc_known && (parse_u32(f[2], &v) || v != u->rule.location)))
			return -1;
		return 0;
	}
	if (!strcmp(f[1], "rss") && n == 6) {
		uint32_t size, def;

		u->kind = UNDO_RSS;
		if (parse_u32(f[2], &size) || !size || size > 65536 ||
		    parse_u32(f[3], &def) || def > 1)
			return -1;
		free(nic->rss_orig);
		nic->rss_orig = calloc(2 * (size_t)size, sizeof(uint32_t));
		if (!nic->rss_orig)
			return -1;
		nic->rss_ours = nic->rss_orig + size;
		nic->rss_size = size;
		nic->rss_default = def;
		return parse_table(f[4], nic->rss_orig, size) ||
		       parse_table(f[5], nic->rss_ours, size) ? -1 : 0;
	}
	return -1;
}

/*
 * Parse a log into nic's undo entries (and RSS tables), the header into
 * info (ifname, ifindex, pid, changes).  -EBADMSG, naming the line, for
 * anything but a well-formed log; a last line without its newline is
 * ignored (written when the process died: its change was not made).
 */
static int log_parse(struct dmt_nic *nic, char *text, size_t len,
		     struct dmt_nic_log *info, struct dmt_err *err)
{
	unsigned lineno = 0;
	bool magic = false, hdr = false;
	char *p = text, *nl, *end = text + len;
	char shown[64];

	for (; p < end && (nl = memchr(p, '\n', end - p)); p = nl + 1) {
		char name[IF_NAMESIZE + 1];
		unsigned long ns;
		unsigned idx;
		int pid, at, bad = 0;

		*nl = '\0';
		lineno++;
		snprintf(shown, sizeof(shown), "%s", p);
		if (lineno == 1) {
			magic = !strcmp(p, NIC_LOG_MAGIC);
			bad = !magic;
		} else if (!*p || *p == '#') {
			continue;
		} else if (!strncmp(p, "nic ", 4)) {
			bad = sscanf(p, "nic %16s %u %lu", name, &idx, &ns) != 3 ||
			      strlen(name) >= IF_NAMESIZE;
			if (!bad) {
				memcpy(info->ifname, name, strlen(name) + 1);	/* < IF_NAMESIZE */
				info->ifindex = idx;
				nic->netns = ns;
				hdr = true;
			}
		} else if (!strncmp(p, "owner ", 6)) {
			bad = sscanf(p, "owner %d %n", &pid, &at) != 1;
			if (!bad)
				info->pid = pid;
		} else {
			bad = !hdr || parse_entry(nic, p);	/* cuts p up */
		}
		if (bad) {
			return dmt_err_set(err, -EBADMSG, "undo by hand what it "
					   "records (ethtool -G/-X/-N/-K), then delete "
					   "the file", "line %u of the undo log is not "
					   "one devmemtcp wrote: \"%s%s\"", lineno,
					   shown, strlen(shown) >= sizeof(shown) - 1 ?
					   "..." : "");
		}
	}
	if (!magic || !hdr)
		return dmt_err_set(err, -EBADMSG, "delete the file if the NIC is "
				   "as it should be", "the undo log has no %s",
				   magic ? "\"nic\" line" : "devmemtcp header");
	/* an rss entry without its tables cannot be (parse_entry checks) */
	info->changes = nic->nr_undo;
	return 0;
}

/* ------------------------------------------------------------- open */

static void nic_release(struct dmt_nic *nic);

/* Open by name; index 0: look the name up, else use this index. */
static struct dmt_nic *nic_open(const char *ifname, unsigned index,
				const struct dmt_nic_opts *opts,
				struct dmt_err *err)
{
	struct dmt_nic *nic;
	unsigned ifindex;
	int ret;

	dmt_err_clear(err);
	if (dmt_opts_check(opts, DMT_OPTS_END(dmt_nic_opts, flags), err, "dmt_nic_opts"))
		return NULL;
	if (DMT_OPT(opts, flags, 0) & ~DMT_NIC_NO_GRO_HW) {
		dmt_err_set(err, -EINVAL, "the known flag is DMT_NIC_NO_GRO_HW",
			    "dmt_nic_opts.flags %#x", DMT_OPT(opts, flags, 0));
		return NULL;
	}
	if (!ifname || !ifname[0] || strlen(ifname) >= IF_NAMESIZE) {
		dmt_err_set(err, -EINVAL, "name an interface (at most 15 characters)",
			    "open NIC \"%s\"", ifname ? ifname : "(null)");
		return NULL;
	}
	ifindex = index ? index : if_nametoindex(ifname);
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
	nic->log_fd = -1;
	nic->no_gro_hw = DMT_OPT(opts, flags, 0) & DMT_NIC_NO_GRO_HW;

	ret = log_dir_of(DMT_OPT(opts, log_dir, NULL), nic->log_dir,
			 sizeof(nic->log_dir), &nic->netns, err);
	if (ret)
		goto fail;
	if ((size_t)snprintf(nic->log_path, sizeof(nic->log_path), "%s/%s.undo",
			     nic->log_dir, nic->ifname) >= sizeof(nic->log_path)) {
		dmt_err_set(err, -ENAMETOOLONG, "use a shorter log_dir",
			    "undo log path for %s", nic->ifname);
		goto fail;
	}
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
	nic_release(nic);
	return NULL;
}

DMT_API struct dmt_nic *dmt_nic_open_opts(const char *ifname,
					  const struct dmt_nic_opts *opts,
					  struct dmt_err *err)
{
	return nic_open(ifname, 0, opts, err);
}

DMT_API struct dmt_nic *dmt_nic_open(const char *ifname, struct dmt_err *err)
{
	return nic_open(ifname, 0, NULL, err);
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

/* ---------------------------------------------- tcp-data-split config */

struct mcast {
	const char *name;
	uint32_t id;
};

static int mcast_cb(const struct nlmsghdr *nlh, void *arg)
{
	struct mcast *m = arg;
	const struct nlattr *a, *g, *ga;

	mnl_attr_for_each(a, nlh, sizeof(struct genlmsghdr)) {
		if (mnl_attr_get_type(a) != CTRL_ATTR_MCAST_GROUPS)
			continue;
		mnl_attr_for_each_nested(g, a) {
			const char *name = NULL;
			uint32_t id = 0;

			mnl_attr_for_each_nested(ga, g) {
				if (mnl_attr_get_type(ga) == CTRL_ATTR_MCAST_GRP_NAME &&
				    !mnl_attr_validate(ga, MNL_TYPE_NUL_STRING))
					name = mnl_attr_get_str(ga);
				if (mnl_attr_get_type(ga) == CTRL_ATTR_MCAST_GRP_ID &&
				    !mnl_attr_validate(ga, MNL_TYPE_U32))
					id = mnl_attr_get_u32(ga);
			}
			if (name && !strcmp(name, m->name))
				m->id = id;
		}
	}
	return 0;
}

/* Whether a RINGS_NTF for our device is among the messages in buf. */
static bool rings_ntf_for(struct dmt_nic *nic, const char *buf, int n)
{
	const struct nlmsghdr *nlh;
	const struct nlattr *a, *h;

	for (nlh = (const void *)buf; mnl_nlmsg_ok(nlh, n);
	     nlh = mnl_nlmsg_next(nlh, &n)) {
		const struct genlmsghdr *g = mnl_nlmsg_get_payload(nlh);

		if (nlh->nlmsg_type != nic->family ||
		    g->cmd != ETHTOOL_MSG_RINGS_NTF)
			continue;
		mnl_attr_for_each(a, nlh, sizeof(*g)) {
			if (mnl_attr_get_type(a) != ETHTOOL_A_RINGS_HEADER)
				continue;
			mnl_attr_for_each_nested(h, a)
				if (mnl_attr_get_type(h) == ETHTOOL_A_HEADER_DEV_INDEX &&
				    !mnl_attr_validate(h, MNL_TYPE_U32) &&
				    mnl_attr_get_u32(h) == nic->ifindex)
					return true;
		}
	}
	return false;
}

/*
 * What the core's tcp-data-split config is when the driver reports
 * "reported" (1 or 2).  The core hands its config to the driver's
 * get_ringparam, which may report what it does instead: dmveth reports
 * "disabled" and netdevsim "enabled" for the config "unknown".  Nothing
 * reads the config itself; but a rings-set that changes nothing is not
 * applied and not announced, so setting the reported value tells: no
 * RINGS_NTF on ethtool's "monitor" group, the config was that value; one,
 * it was "unknown" (now it is the reported value, which reads the same and
 * which prepare replaces anyway).  *changed says whether the set did
 * anything.  Returns the config, or -errno (nothing changed then).
 */
static int tds_config(struct dmt_nic *nic, uint8_t reported, bool *changed)
{
	char buf[256] __attribute__((aligned(8)));
	struct mcast m = { .name = "monitor" };
	struct dmt_nlreq req = { 0 };
	struct mnl_socket *mon;
	char *rbuf;
	int ret, n, fd;

	*changed = false;
	req.nlh = dmt_genl_msg(&nic->genl, buf, sizeof(buf), GENL_ID_CTRL,
			       CTRL_CMD_GETFAMILY, 1, 0);
	mnl_attr_put_strz(req.nlh, CTRL_ATTR_FAMILY_NAME, ETHTOOL_GENL_NAME);
	ret = dmt_nls_exchange(&nic->genl, &req, mcast_cb, &m, &nic->err);
	if (ret)
		return ret;
	if (!m.id)
		return -ENOENT;
	mon = mnl_socket_open2(NETLINK_GENERIC, SOCK_CLOEXEC);
	if (!mon)
		return -errno;
	rbuf = malloc(32768);
	if (!rbuf) {
		mnl_socket_close(mon);
		return -ENOMEM;
	}
	fd = mnl_socket_get_fd(mon);
	if (mnl_socket_bind(mon, 0, MNL_SOCKET_AUTOPID) < 0 ||
	    mnl_socket_setsockopt(mon, NETLINK_ADD_MEMBERSHIP, &m.id,
				  sizeof(m.id)) < 0) {
		ret = -errno;
		goto out;
	}
	ret = rings_set(nic, reported, false, 0);
	if (ret)
		goto out;
	/* the notification is queued before the set's ack is sent */
	while ((n = recv(fd, rbuf, 32768, MSG_DONTWAIT)) > 0)
		*changed |= rings_ntf_for(nic, rbuf, n);
	if (n < 0 && errno == ENOBUFS)
		ret = -ENOBUFS;	/* overrun: cannot tell */
	else
		ret = *changed ? ETHTOOL_TCP_DATA_SPLIT_UNKNOWN : reported;
out:
	free(rbuf);
	mnl_socket_close(mon);
	return ret;
}

static int prepare_rings(struct dmt_nic *nic)
{
	struct nic_undo tmpl = { .kind = UNDO_RINGS }, *u = NULL;
	bool probed = false;
	char fix[192];
	struct rings r;
	int ret;

	ret = rings_get(nic, &r);
	if (ret)
		return dmt_err_set(&nic->err, ret, NULL, "read the rings of %s",
				   nic->ifname);
	/* the first change keeps the config to go back to, logged first */
	if (!undo_find(nic, UNDO_RINGS)) {
		tmpl.rings.tds = r.tds;
		tmpl.rings.has_hds = r.has_hds;
		tmpl.rings.hds = r.hds;
		u = undo_record(nic, &tmpl);
		if (!u)
			return nic->err.code;
		if (r.tds) {
			ret = tds_config(nic, r.tds, &probed);
			if (ret == ETHTOOL_TCP_DATA_SPLIT_UNKNOWN) {
				u->rings.tds = ret;
				if (log_entry(nic, u)) {
					rings_set(nic, 0, false, 0);
					undo_cancel(nic, u);
					return nic->err.code;
				}
			}
			/* a failed probe changed nothing: keep the report */
		}
	}
	dmt_err_clear(&nic->err);
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
		if (u) {
			struct dmt_err keep = nic->err;

			if (probed)	/* "unknown" became the reported value */
				rings_set(nic, 0, false, 0);
			undo_cancel(nic, u);
			nic->err = keep;
		}
		return dmt_err_set(&nic->err, ret, fix[0] ? fix : NULL,
				   "set tcp-data-split on and hds-thresh 0 on %s",
				   nic->ifname);
	}
	return 0;
}

static void rss_forget(struct dmt_nic *nic)
{
	free(nic->rss_orig);
	nic->rss_orig = nic->rss_ours = NULL;
	nic->rss_size = 0;
}

static int prepare_rss(struct dmt_nic *nic, unsigned start, unsigned count,
		       uint32_t nrx)
{
	uint32_t size, *cur = NULL, *ours = NULL, *prev = NULL, *set, others, i,
		 q, rings;
	struct nic_undo *u = NULL;
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
	/* logged before it is written: the original, and what we write */
	if (!nic->rss_size) {
		struct nic_undo tmpl = { .kind = UNDO_RSS };

		nic->rss_size = size;
		nic->rss_orig = cur;
		nic->rss_ours = ours;
		nic->rss_default = !rx_rings(nic, &rings) && rings;
		for (i = 0; nic->rss_default && i < size; i++)
			nic->rss_default = cur[i] == i % rings;
		cur = NULL;
		u = undo_record(nic, &tmpl);
		if (!u) {
			ret = nic->err.code;
			rss_forget(nic);
			goto out;
		}
	} else {
		u = undo_find(nic, UNDO_RSS);
		prev = malloc(size * sizeof(uint32_t));
		if (!prev) {
			ret = dmt_err_set(&nic->err, -ENOMEM, NULL, "allocate an "
					  "RSS table");
			goto out;
		}
		memcpy(prev, nic->rss_ours, size * sizeof(uint32_t));
		memcpy(nic->rss_ours, ours, size * sizeof(uint32_t));
		if (u && log_entry(nic, u)) {
			ret = nic->err.code;
			memcpy(nic->rss_ours, prev, size * sizeof(uint32_t));
			goto out;
		}
	}
	ret = rss_write(nic, nic->rss_size, nic->rss_ours);
	if (ret) {
		struct dmt_err keep;

		dmt_err_set(&nic->err, ret, perm_fix(ret),
			    "take queues %u..%u of %s out of the RSS table",
			    start, start + count - 1, nic->ifname);
		keep = nic->err;
		if (!prev) {
			undo_cancel(nic, u);
			rss_forget(nic);
		} else {
			memcpy(nic->rss_ours, prev, size * sizeof(uint32_t));
			if (u)
				log_entry(nic, u);
		}
		nic->err = keep;
	}
out:
	free(prev);
	free(cur);
	return ret;
}

/*
 * Turn hardware GRO on (ethtool -K IF rx-gro-hw on) where the driver lets
 * it change and it is off.  With header split, the NIC then packs the
 * payload of many segments into full buffers: one fragment, token and cmsg
 * per buffer instead of one per wire segment (bnxt, mlx5 SHAMPO, gve).
 * mlx5 refuses tcp-data-split without it.  Best effort: where the driver
 * refuses (XDP, LRO), the rings step says what matters.
 */
static int prepare_gro_hw(struct dmt_nic *nic)
{
	struct nic_undo tmpl = { .kind = UNDO_GRO_HW }, *u = NULL;
	struct feature f;
	int ret;

	if (nic->no_gro_hw || feature_get(nic, GRO_HW, &f) || !f.changeable ||
	    f.active)
		return 0;
	if (!undo_find(nic, UNDO_GRO_HW)) {
		u = undo_record(nic, &tmpl);
		if (!u)
			return nic->err.code;
	}
	ret = feature_set(nic, &f, true);
	/* keep the entry only if it is on now */
	if (u && (ret || feature_get(nic, GRO_HW, &f) || !f.active))
		undo_cancel(nic, u);
	dmt_err_clear(&nic->err);
	return 0;
}

/*
 * Turn the ntuple feature on (ethtool -K IF ntuple on) where the driver
 * has a rule table and the feature is off.  Where it is fixed off, or the
 * flags cannot be read, leave it: steer says what is wrong.
 */
static int prepare_ntuple(struct dmt_nic *nic)
{
	struct nic_undo tmpl = { .kind = UNDO_NTUPLE }, *u = NULL;
	struct dmt_err keep;
	struct ntuple nt;
	uint32_t flags;
	int ret;

	if (ntuple_count(nic, &nt) || eth_flags(nic, &flags) ||
	    (flags & ETH_FLAG_NTUPLE))
		return 0;
	if (!undo_find(nic, UNDO_NTUPLE)) {
		u = undo_record(nic, &tmpl);
		if (!u)
			return nic->err.code;
	}
	ret = eth_set_flags(nic, flags | ETH_FLAG_NTUPLE);
	if (ret && ret != -EOPNOTSUPP)
		dmt_err_set(&nic->err, ret, perm_fix(ret), "turn ntuple "
			    "filters on for %s", nic->ifname);
	/* keep the entry only if it is on now: the driver may have refused */
	if (u && (ret || eth_flags(nic, &flags) || !(flags & ETH_FLAG_NTUPLE))) {
		keep = nic->err;
		undo_cancel(nic, u);
		nic->err = keep;
	}
	return ret == -EOPNOTSUPP ? 0 : ret;
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
	if (nic->nr_undo + 4 > NIC_UNDO_MAX)
		return dmt_err_set(&nic->err, -ENOSPC, "restore the NIC first",
				   "prepare %s: the undo log is full", nic->ifname);
	ret = prepare_gro_hw(nic);
	if (!ret)
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
	struct nic_undo tmpl = { 0 }, *u;
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
	/* logged before it is inserted: the spec, its location unknown yet */
	tmpl.kind = UNDO_RULE;
	tmpl.rule = fs;
	u = undo_record(nic, &tmpl);
	if (!u)
		return nic->err.code;
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
	if (ret) {
		undo_cancel(nic, u);
		return dmt_err_set(&nic->err, ret, steer_fix(nic, ret, true,
				   fix, sizeof(fix)), "insert an ntuple rule for a "
				   "%s flow to queue %u on %s",
				   fs.flow_type == TCP_V4_FLOW ? "tcp4" : "tcp6",
				   queue, nic->ifname);
	}
	u->rule = fs;
	u->loc_known = true;
	log_entry(nic, u);	/* failing, restore finds it by its spec */
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

/*
 * The location of a rule inserted at RX_CLS_LOC_ANY whose location was
 * never logged (the process died in between): the rule matching its spec.
 * -ENOENT when there is none.
 */
static int rule_find(struct dmt_nic *nic, const struct ethtool_rx_flow_spec *r,
		     uint32_t *loc)
{
	struct ethtool_rxnfc *all, one;
	struct ntuple nt;
	int ret;

	ret = ntuple_count(nic, &nt);
	if (ret)
		return ret;
	if (!nt.rules)
		return -ENOENT;
	all = calloc(1, sizeof(*all) + nt.rules * sizeof(uint32_t));
	if (!all)
		return -ENOMEM;
	all->cmd = ETHTOOL_GRXCLSRLALL;
	all->rule_cnt = nt.rules;
	ret = nic_ioctl(nic, all);
	for (uint32_t i = 0; !ret && i < all->rule_cnt; i++) {
		memset(&one, 0, sizeof(one));
		one.cmd = ETHTOOL_GRXCLSRULE;
		one.fs.location = all->rule_locs[i];
		if (!nic_ioctl(nic, &one) && rule_is_ours(r, &one.fs)) {
			*loc = all->rule_locs[i];
			free(all);
			return 0;
		}
	}
	free(all);
	return ret ? ret : -ENOENT;
}

static int undo_rule(struct dmt_nic *nic, const struct nic_undo *u,
		     struct restore_stats *rs)
{
	struct ethtool_rx_flow_spec r = u->rule;
	struct ethtool_rxnfc nfc = { .cmd = ETHTOOL_GRXCLSRULE };
	int ret;

	if (!u->loc_known) {
		ret = rule_find(nic, &u->rule, &r.location);
		if (ret == -ENOENT || ret == -EOPNOTSUPP)
			return 0;	/* never inserted */
		if (ret)
			return dmt_err_set(&nic->err, ret, perm_fix(ret), "look "
					   "for the ntuple rule to delete on %s",
					   nic->ifname);
	}
	nfc.fs.location = r.location;
	ret = nic_ioctl(nic, &nfc);
	if (ret == -ENOENT || (!ret && !rule_is_ours(&r, &nfc.fs)))
		return 0;	/* gone, or someone else's now */
	memset(&nfc, 0, sizeof(nfc));
	nfc.cmd = ETHTOOL_SRXCLSRLDEL;
	nfc.fs.location = r.location;
	ret = nic_ioctl(nic, &nfc);
	if (!ret)
		rs->rules++;
	if (ret == -ENOENT)
		ret = 0;
	if (ret)
		dmt_err_set(&nic->err, ret, perm_fix(ret), "delete ntuple rule %u "
			    "of %s", r.location, nic->ifname);
	return ret;
}

DMT_API int dmt_nic_unsteer(struct dmt_nic *nic, uint32_t loc)
{
	struct restore_stats rs = { 0 };
	struct nic_undo *u = NULL;
	char fix[128];
	int ret;

	if (!nic)
		return -EINVAL;
	dmt_err_clear(&nic->err);
	for (unsigned i = 0; i < nic->nr_undo && !u; i++)
		if (nic->undo[i].kind == UNDO_RULE && nic->undo[i].loc_known &&
		    nic->undo[i].rule.location == loc)
			u = &nic->undo[i];
	if (!u) {
		snprintf(fix, sizeof(fix), "pass a location dmt_nic_steer gave "
			 "on this handle");
		return dmt_err_set(&nic->err, -ENOENT, fix, "unsteer on %s: this "
				   "handle inserted no ntuple rule at %u",
				   nic->ifname, loc);
	}
	ret = undo_rule(nic, u, &rs);	/* checks the rule is still ours */
	if (ret)
		return ret;
	/* the entry goes from memory and (best effort) from the file: a
	 * replayed log would find the rule gone and skip it anyway */
	if (nic->log_fd >= 0)
		log_printf(nic, "%u undone\n", u->seq);
	memmove(u, u + 1, (char *)&nic->undo[nic->nr_undo] - (char *)(u + 1));
	nic->nr_undo--;
	dmt_err_clear(&nic->err);
	return 0;
}

static int undo_rss(struct dmt_nic *nic, struct restore_stats *rs)
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
	else
		rs->rss = true;
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
static int undo_ntuple(struct dmt_nic *nic, struct restore_stats *rs)
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
	else
		rs->ntuple = true;
	return ret;
}

/*
 * rx-gro-hw goes back off, unless someone turned it off since.  Rings went
 * first (newest first): mlx5 keeps GRO on while header split is on.
 */
static int undo_gro_hw(struct dmt_nic *nic, struct restore_stats *rs)
{
	struct feature f;
	int ret;

	ret = feature_get(nic, GRO_HW, &f);
	if (!ret && !f.active)
		return 0;	/* off already: theirs */
	if (!ret)
		ret = feature_set(nic, &f, false);
	if (!ret && (ret = feature_get(nic, GRO_HW, &f)) == 0 && f.active)
		ret = -EBUSY;	/* the driver keeps it on */
	if (ret)
		dmt_err_set(&nic->err, ret, perm_fix(ret), "turn rx-gro-hw off "
			    "again on %s", nic->ifname);
	else
		rs->gro_hw = true;
	return ret;
}

/*
 * Rings go back to the core's config before: tcp-data-split "unknown" (0)
 * too, which a rings-set of 0 writes (see tds_config for how prepare told
 * it apart from what the driver reports), and hds-thresh.
 */
static int undo_rings(struct dmt_nic *nic, const struct nic_undo *u,
		      struct restore_stats *rs)
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
			    "restore tcp-data-split %s and hds-thresh %u on %s",
			    u->rings.tds == 0 ? "unknown" : u->rings.tds == 1 ?
			    "off" : "on", u->rings.hds, nic->ifname);
	else
		rs->rings = true;
	return ret;
}

struct bound {
	uint32_t queue, dmabuf;
	bool io_uring, found;
};

static int bound_cb(const struct dmt_queue_info *q, void *arg)
{
	struct bound *b = arg;

	if (q->type != 0 || (!q->dmabuf && !q->io_uring))
		return 0;
	b->queue = q->id;
	b->dmabuf = q->dmabuf;
	b->io_uring = q->io_uring;
	b->found = true;
	return -1;	/* the first one is enough */
}

/*
 * -EBUSY while an RX queue of the device has a memory provider (a dma-buf
 * binding: ours, not freed yet, or another process's; an io_uring zcrx
 * area).  The kernel refuses tcp-data-split off then, and the RSS table
 * and rules still serve the binding: undoing half is worse than waiting.
 */
static int check_unbound(struct dmt_nic *nic)
{
	struct bound b = { 0 };
	char fix[256];

	if (!nic->nl)
		return 0;	/* no netdev family: no devmem either */
	dmt_queue_dump(nic->nl, nic->ifindex, bound_cb, &b);
	if (!b.found)
		return 0;
	snprintf(fix, sizeof(fix), "free the RX binding first "
		 "(dmt_rxbind_free, or end the process that holds it), then "
		 "restore: nothing was changed");
	if (b.io_uring)
		return dmt_err_set(&nic->err, -EBUSY, fix, "restore %s: RX queue "
				   "%u is still bound to an io_uring zcrx area",
				   nic->ifname, b.queue);
	return dmt_err_set(&nic->err, -EBUSY, fix, "restore %s: RX queue %u is "
			   "still bound to dma-buf %u", nic->ifname, b.queue,
			   b.dmabuf);
}

static int nic_restore(struct dmt_nic *nic, struct restore_stats *rs)
{
	struct dmt_err first = { 0 };
	unsigned i, kept = 0;
	int ret;

	dmt_err_clear(&nic->err);
	if (!nic->nr_undo) {
		log_end(nic);
		return 0;
	}
	ret = check_unbound(nic);
	if (ret)
		return ret;
	for (i = nic->nr_undo; i-- > 0;) {
		struct nic_undo *u = &nic->undo[i];

		dmt_err_clear(&nic->err);
		switch (u->kind) {
		case UNDO_RULE:
			ret = undo_rule(nic, u, rs);
			break;
		case UNDO_RSS:
			ret = undo_rss(nic, rs);
			break;
		case UNDO_RINGS:
			ret = undo_rings(nic, u, rs);
			break;
		case UNDO_NTUPLE:
			ret = undo_ntuple(nic, rs);
			break;
		case UNDO_GRO_HW:
			ret = undo_gro_hw(nic, rs);
			break;
		default:
			ret = 0;
		}
		u->failed = ret != 0;
		if (ret && !first.code)
			first = nic->err;
		if (!ret)
			rs->undone++;
	}
	/* keep what failed, in order, for another try; the log says so */
	for (i = 0; i < nic->nr_undo; i++) {
		if (nic->undo[i].failed)
			nic->undo[kept++] = nic->undo[i];
		else if (first.code && nic->log_fd >= 0)
			log_printf(nic, "%u undone\n", nic->undo[i].seq);
	}
	nic->nr_undo = kept;
	if (!undo_find(nic, UNDO_RSS))
		rss_forget(nic);
	if (!kept)
		log_end(nic);	/* all done: the log goes, the lock too */
	nic->err = first;
	return first.code;
}

DMT_API int dmt_nic_restore(struct dmt_nic *nic)
{
	struct restore_stats rs = { 0 };

	if (!nic)
		return -EINVAL;
	return nic_restore(nic, &rs);
}

static void nic_release(struct dmt_nic *nic)
{
	log_end(nic);
	dmt_nl_close(nic->nl);
	if (nic->ioc_fd >= 0)
		close(nic->ioc_fd);
	dmt_nls_close(&nic->genl);
	free(nic->rss_orig);
	free(nic);
}

DMT_API int dmt_nic_free(struct dmt_nic *nic, unsigned flags)
{
	int ret;

	if (!nic)
		return 0;
	if (flags & ~DMT_NIC_KEEP)
		return dmt_err_set(&nic->err, -EINVAL, "pass 0 or DMT_NIC_KEEP",
				   "dmt_nic_free: unknown flags %#x", flags);
	if (!(flags & DMT_NIC_KEEP) && nic->nr_undo) {
		ret = dmt_nic_restore(nic);
		if (ret)
			return ret;
	}
	nic_release(nic);
	return 0;
}

/*
 * 0.1: restore and free.  Refused (still bound) or failed part way, the
 * changes left stay recorded in the log on disk for `devmemtcp restore`.
 */
DMT_API void dmt_nic_close(struct dmt_nic *nic)
{
	if (dmt_nic_free(nic, 0))
		dmt_nic_free(nic, DMT_NIC_KEEP);
}

/* ---------------------------------------------------- replaying logs */

/* Read the whole (locked) log. */
static int log_read(int fd, char **text, size_t *len)
{
	struct stat st;
	ssize_t n;

	if (fstat(fd, &st))
		return -errno;
	if (st.st_size > NIC_LOG_MAX)
		return -EFBIG;
	*text = malloc(st.st_size + 1);
	if (!*text)
		return -ENOMEM;
	n = pread(fd, *text, st.st_size, 0);
	if (n != st.st_size) {
		free(*text);
		*text = NULL;
		return n < 0 ? -errno : -EIO;
	}
	*len = n;
	return 0;
}

/* Replay one log file (locked here); log->err says how it went. */
static int restore_one(const char *path, const char *name_hint,
		       const struct dmt_nic_opts *opts, struct dmt_nic_log *log)
{
	struct restore_stats rs = { 0 };
	struct dmt_nic *nic = NULL, *tmp;
	struct dmt_err *err = &log->err;
	char *text = NULL, ifname[IF_NAMESIZE], fix[PATH_MAX + 96];
	unsigned long ns = 0;
	unsigned index;
	size_t len = 0;
	int fd, ret;

	snprintf(log->path, sizeof(log->path), "%s", path);
	fd = log_lock(path, name_hint, false, err);
	if (fd < 0)
		return fd;
	ret = log_read(fd, &text, &len);
	if (ret) {
		dmt_err_set(err, ret, NULL, "read the undo log %s", path);
		goto out;
	}
	tmp = calloc(1, sizeof(*tmp));
	if (!tmp) {
		ret = dmt_err_set(err, -ENOMEM, NULL, "allocate a NIC handle");
		goto out;
	}
	tmp->log_fd = -1;
	ret = log_parse(tmp, text, len, log, err);
	if (ret) {
		snprintf(err->what + strlen(err->what), sizeof(err->what) -
			 strlen(err->what), " (%s)", path);
		free(tmp->rss_orig);
		free(tmp);
		goto out;
	}
	if (!tmp->nr_undo) {	/* everything undone already: just remove it */
		free(tmp->rss_orig);
		free(tmp);
		unlink(path);
		ret = 0;
		goto out;
	}
	netns_ino(&ns);
	snprintf(fix, sizeof(fix), "the NIC's settings went with it: delete %s",
		 path);
	if (tmp->netns != ns) {
		unsigned long other = tmp->netns;

		free(tmp->rss_orig);
		free(tmp);
		ret = dmt_err_set(err, -ESTALE, "run the restore in that "
				  "namespace (ip netns exec NS devmemtcp restore)",
				  "the undo log %s was written in network namespace "
				  "%lu, this is %lu", path, other, ns);
		goto out;
	}
	/* by index: the name may have changed; a new device of that name is not it */
	index = log->ifindex;
	if (!if_indextoname(index, ifname)) {
		index = if_nametoindex(log->ifname);
		free(tmp->rss_orig);
		free(tmp);
		if (index)
			ret = dmt_err_set(err, -ESTALE, fix, "%s is ifindex %u now, "
					  "not %u: it was recreated", log->ifname,
					  index, log->ifindex);
		else
			ret = dmt_err_set(err, -ENODEV, fix, "%s (ifindex %u) is "
					  "gone", log->ifname, log->ifindex);
		goto out;
	}
	nic = nic_open(ifname, index, opts, err);
	if (!nic) {
		free(tmp->rss_orig);
		free(tmp);
		ret = err->code;
		goto out;
	}
	/* take the log over: its entries, its tables, its file and lock */
	memcpy(nic->undo, tmp->undo, sizeof(nic->undo));
	nic->nr_undo = tmp->nr_undo;
	nic->log_seq = tmp->log_seq;
	nic->rss_size = tmp->rss_size;
	nic->rss_orig = tmp->rss_orig;
	nic->rss_ours = tmp->rss_ours;
	nic->rss_default = tmp->rss_default;
	free(tmp);
	snprintf(nic->log_path, sizeof(nic->log_path), "%s", path);
	nic->log_fd = fd;
	fd = -1;
	{
		char comm[64];

		comm_of(comm, sizeof(comm));
		log_printf(nic, "owner %d %s\n", (int)getpid(), comm);
	}
	ret = nic_restore(nic, &rs);
	log->undone = rs.undone;
	log->rules = rs.rules;
	log->rings = rs.rings;
	log->rss = rs.rss;
	log->ntuple = rs.ntuple;
	log->gro_hw = rs.gro_hw;
	if (ret)
		dmt_err_copy(err, &nic->err);
	nic_release(nic);	/* what failed stays in the log */
out:
	free(text);
	if (fd >= 0)
		close(fd);
	return ret;
}

/* log->sz says how much of it this library fills (fields grow at the end) */
static int log_report(int (*cb)(const struct dmt_nic_log *, void *), void *arg,
		      struct dmt_nic_log *log)
{
	log->sz = sizeof(*log);
	return cb ? cb(log, arg) : 0;
}

DMT_API int dmt_nic_restore_log(const char *ifname,
				const struct dmt_nic_opts *opts,
				int (*cb)(const struct dmt_nic_log *log, void *arg),
				void *arg, struct dmt_err *err)
{
	char dir[PATH_MAX], path[PATH_MAX + IF_NAMESIZE + 8];
	struct dmt_nic_log *log;
	struct dirent *e;
	unsigned long ns;
	int ret, done = 0, first = 0, found = 0;
	DIR *d;

	dmt_err_clear(err);
	if (dmt_opts_check(opts, DMT_OPTS_END(dmt_nic_opts, flags), err, "dmt_nic_opts"))
		return err ? err->code : -EINVAL;
	if (ifname && (!ifname[0] || strlen(ifname) >= IF_NAMESIZE ||
		       strchr(ifname, '/')))
		return dmt_err_set(err, -EINVAL, "name an interface (at most 15 "
				   "characters)", "restore \"%s\"", ifname);
	ret = log_dir_of(DMT_OPT(opts, log_dir, NULL), dir, sizeof(dir), &ns, err);
	if (ret)
		return ret;
	log = calloc(1, sizeof(*log));
	if (!log)
		return dmt_err_set(err, -ENOMEM, NULL, "allocate");
	if (ifname) {
		snprintf(path, sizeof(path), "%s/%s.undo", dir, ifname);
		log->sz = sizeof(*log);
		snprintf(log->ifname, sizeof(log->ifname), "%s", ifname);
		ret = restore_one(path, ifname, opts, log);
		if (ret == -ENOENT && !if_nametoindex(ifname))
			dmt_err_set(&log->err, -ENODEV, "see ip link",
				    "no interface %s in this network namespace, "
				    "and no undo log for it", ifname);
		if (ret != -ENOENT)
			log_report(cb, arg, log);
		if (ret && log->err.code)
			ret = log->err.code;
		dmt_err_copy(err, &log->err);
		free(log);
		return ret ? ret : 1;
	}
	d = opendir(dir);
	if (!d) {
		ret = -errno;
		free(log);
		if (ret == -ENOENT)
			return 0;	/* no log at all */
		return dmt_err_set(err, ret, NULL, "read the undo log directory %s",
				   dir);
	}
	while ((e = readdir(d))) {
		size_t n = strlen(e->d_name);
		char name[IF_NAMESIZE];

		if (n <= 5 || strcmp(e->d_name + n - 5, ".undo") ||
		    n - 5 >= IF_NAMESIZE)
			continue;
		memcpy(name, e->d_name, n - 5);
		name[n - 5] = '\0';
		memset(log, 0, sizeof(*log));
		log->sz = sizeof(*log);
		snprintf(log->ifname, sizeof(log->ifname), "%s", name);
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= sizeof(path))
			continue;	/* not a log of ours: the name is too long */
		ret = restore_one(path, name, opts, log);
		if (ret == -ENOENT && !log->pid)
			continue;	/* removed meanwhile */
		found++;
		if (!ret)
			done++;
		else if (!first) {
			first = ret;
			dmt_err_copy(err, &log->err);
		}
		if (log_report(cb, arg, log) < 0)
			break;
	}
	closedir(d);
	free(log);
	return first ? first : done;
}
