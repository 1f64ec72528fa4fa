// SPDX-License-Identifier: MIT
/*
 * probe.c - `devmemtcp probe [IFNAME...]`: would devmem RX and TX work on
 * these interfaces, and if not, what exactly is missing and how to fix it.
 *
 * Read-only checks (the kernel's netdev family ops through nlctrl, the
 * NIC's queues, rings, RSS table, ntuple rules and XDP through
 * dmt_nic_get_state, the dma-buf providers in /dev), then two real probes
 * that change nothing:
 *   netmem TX      bind-tx of a small udmabuf, then close = unbind (with no
 *                  dma-buf provider: bind-tx of a memfd, which the kernel
 *                  refuses at the driver check or, past it, at dma_buf_get);
 *   queue mgmt RX  bind-rx while header split is off: the kernel checks the
 *                  queue management ops before header split and refuses
 *                  before it restarts anything.  With header split on the
 *                  bind would succeed and restart a queue: only with
 *                  --disruptive (or on a queue already bound, which is
 *                  refused with EEXIST after the ops check).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "output.h"
#include "tool.h"

#define NETDEV_CMD_BIND_RX_ID 13
#define NETDEV_CMD_BIND_TX_ID 15
#define TX_PROBE_SIZE (64 << 10)
#define RX_PROBE_SIZE (2 << 20)

enum need { NEED_RX = 1, NEED_TX = 2, NEED_BOTH = 3, NEED_INFO = 0 };
enum okv { NO = 0, YES = 1, UNKNOWN = 2 };

struct check {
	const char *name;
	enum need need;
	enum okv ok;
	char detail[400];
	char fix[300];
};

#define MAX_CHECKS 16

struct probe {
	const char *ifname;
	unsigned ifindex;
	struct check c[MAX_CHECKS];
	unsigned n;
	bool rx, tx;
	bool rx_unknown;
};

struct kernel_ops {
	bool read;		/* nlctrl answered */
	int err;		/* its error, 0 if none */
	bool family;		/* netdev family present */
	bool bind_rx, bind_tx;
};

static bool disruptive;

void probe_usage(FILE *f)
{
	fprintf(f,
		"devmemtcp [-j] probe [IFNAME...] [--disruptive]   (every interface by default)\n"
		"  --disruptive        also probe queue management when tcp-data-split is on\n"
		"                      (a real bind-rx: the queue restarts twice)\n");
}

static struct check *add(struct probe *p, const char *name, enum need need,
			 enum okv ok)
{
	struct check *c = &p->c[p->n < MAX_CHECKS ? p->n++ : MAX_CHECKS - 1];

	memset(c, 0, sizeof(*c));
	c->name = name;
	c->need = need;
	c->ok = ok;
	return c;
}

#define DETAIL(c, ...) snprintf((c)->detail, sizeof((c)->detail), __VA_ARGS__)
#define FIX(c, ...) snprintf((c)->fix, sizeof((c)->fix), __VA_ARGS__)

/* ------------------------------------------- the kernel: netdev family ops */

/* CTRL_CMD_GETFAMILY "netdev": which commands the kernel offers. */
static void kernel_ops_read(struct kernel_ops *k)
{
	struct {
		struct nlmsghdr n;
		struct genlmsghdr g;
		char attrs[64];
	} req = { 0 };
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	char buf[16384] __attribute__((aligned(4)));
	struct nlattr *a;
	ssize_t len;
	int fd;

	k->read = true;
	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
	if (fd < 0) {
		k->err = -errno;
		return;
	}
	req.n.nlmsg_type = GENL_ID_CTRL;
	req.n.nlmsg_flags = NLM_F_REQUEST;
	req.n.nlmsg_seq = 1;
	req.g.cmd = CTRL_CMD_GETFAMILY;
	req.g.version = 1;
	a = (struct nlattr *)req.attrs;
	a->nla_type = CTRL_ATTR_FAMILY_NAME;
	a->nla_len = NLA_HDRLEN + sizeof("netdev");
	memcpy((char *)a + NLA_HDRLEN, "netdev", sizeof("netdev"));
	req.n.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN) + NLA_ALIGN(a->nla_len);
	if (sendto(fd, &req, req.n.nlmsg_len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		k->err = -errno;
		close(fd);
		return;
	}
	len = recv(fd, buf, sizeof(buf), 0);
	close(fd);
	if (len < 0) {
		k->err = -errno;
		return;
	}
	for (struct nlmsghdr *n = (void *)buf; NLMSG_OK(n, (size_t)len); n = NLMSG_NEXT(n, len)) {
		int alen;

		if (n->nlmsg_type == NLMSG_ERROR) {
			k->err = ((struct nlmsgerr *)NLMSG_DATA(n))->error;
			if (k->err == -ENOENT)
				k->err = 0;	/* no such family */
			return;
		}
		if (n->nlmsg_type != GENL_ID_CTRL)
			continue;
		k->family = true;
		alen = n->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN);
		for (a = (void *)((char *)NLMSG_DATA(n) + GENL_HDRLEN); alen >= NLA_HDRLEN &&
		     a->nla_len >= NLA_HDRLEN && a->nla_len <= alen;
		     alen -= NLA_ALIGN(a->nla_len), a = (void *)((char *)a + NLA_ALIGN(a->nla_len))) {
			struct nlattr *op;
			int olen;

			if ((a->nla_type & NLA_TYPE_MASK) != CTRL_ATTR_OPS)
				continue;
			olen = a->nla_len - NLA_HDRLEN;
			for (op = (void *)((char *)a + NLA_HDRLEN); olen >= NLA_HDRLEN &&
			     op->nla_len >= NLA_HDRLEN && op->nla_len <= olen;
			     olen -= NLA_ALIGN(op->nla_len), op = (void *)((char *)op + NLA_ALIGN(op->nla_len))) {
				struct nlattr *oa = (void *)((char *)op + NLA_HDRLEN);
				int oalen = op->nla_len - NLA_HDRLEN;

				for (; oalen >= NLA_HDRLEN && oa->nla_len >= NLA_HDRLEN && oa->nla_len <= oalen;
				     oalen -= NLA_ALIGN(oa->nla_len), oa = (void *)((char *)oa + NLA_ALIGN(oa->nla_len))) {
					uint32_t id;

					if ((oa->nla_type & NLA_TYPE_MASK) != CTRL_ATTR_OP_ID ||
					    oa->nla_len < NLA_HDRLEN + 4)
						continue;
					memcpy(&id, (char *)oa + NLA_HDRLEN, 4);
					if (id == NETDEV_CMD_BIND_RX_ID)
						k->bind_rx = true;
					if (id == NETDEV_CMD_BIND_TX_ID)
						k->bind_tx = true;
				}
			}
		}
	}
}

static void check_kernel(struct probe *p, const struct kernel_ops *k)
{
	struct check *c;

	c = add(p, "kernel bind-rx", NEED_RX, k->bind_rx ? YES : k->err ? UNKNOWN : NO);
	if (k->err)
		DETAIL(c, "nlctrl: %s", strerror(-k->err));
	else if (!k->family)
		DETAIL(c, "no netdev generic netlink family");
	else
		DETAIL(c, k->bind_rx ? "netdev family offers bind-rx" : "netdev family without bind-rx");
	if (!k->bind_rx)
		FIX(c, "boot Linux >= 6.12 with CONFIG_NET_DEVMEM=y");

	c = add(p, "kernel bind-tx", NEED_TX, k->bind_tx ? YES : k->err ? UNKNOWN : NO);
	if (k->err)
		DETAIL(c, "nlctrl: %s", strerror(-k->err));
	else if (!k->family)
		DETAIL(c, "no netdev generic netlink family");
	else
		DETAIL(c, k->bind_tx ? "netdev family offers bind-tx" : "netdev family without bind-tx");
	if (!k->bind_tx)
		FIX(c, "boot Linux >= 6.16 with CONFIG_NET_DEVMEM=y");
}

/* ------------------------------------------------------ dma-buf providers */

struct providers {
	bool udmabuf;
	long udmabuf_limit_mb;	/* -1 unknown */
	char heaps[200];
	bool any;
};

static void providers_read(struct providers *pv)
{
	DIR *d;
	struct dirent *e;
	FILE *f;
	size_t len = 0;

	memset(pv, 0, sizeof(*pv));
	pv->udmabuf_limit_mb = -1;
	pv->udmabuf = !access("/dev/udmabuf", R_OK | W_OK);
	f = fopen("/sys/module/udmabuf/parameters/size_limit_mb", "re");
	if (f) {
		if (fscanf(f, "%ld", &pv->udmabuf_limit_mb) != 1)
			pv->udmabuf_limit_mb = -1;
		fclose(f);
	}
	d = opendir("/dev/dma_heap");
	if (d) {
		while ((e = readdir(d)))
			if (e->d_name[0] != '.' && len < sizeof(pv->heaps) - 1)
				len += snprintf(pv->heaps + len, sizeof(pv->heaps) - len, "%s%s",
						len ? "," : "", e->d_name);
		closedir(d);
	}
	pv->any = pv->udmabuf || pv->heaps[0];
}

static void check_providers(struct probe *p, const struct providers *pv)
{
	struct check *c = add(p, "dma-buf provider", NEED_BOTH, pv->any ? YES : NO);
	size_t len = 0;

	if (pv->udmabuf) {
		len += snprintf(c->detail + len, sizeof(c->detail) - len, "/dev/udmabuf");
		if (pv->udmabuf_limit_mb >= 0)
			len += snprintf(c->detail + len, sizeof(c->detail) - len,
					" (size_limit_mb %ld: --size up to %ldM)",
					pv->udmabuf_limit_mb, pv->udmabuf_limit_mb);
	} else {
		len += snprintf(c->detail + len, sizeof(c->detail) - len, "no /dev/udmabuf");
	}
	if (len < sizeof(c->detail))
		snprintf(c->detail + len, sizeof(c->detail) - len, pv->heaps[0] ?
			 ", dma heaps: %s" : ", no /dev/dma_heap%s", pv->heaps);
	if (!pv->any)
		FIX(c, "modprobe udmabuf (CONFIG_UDMABUF) or CONFIG_DMABUF_HEAPS_SYSTEM, or use GPU memory (--provider cuda)");
}

/* A small dma-buf for the real probes, or NULL (then a memfd stands in). */
static struct dmt_dmabuf *probe_buf(const struct providers *pv, size_t size)
{
	DMT_OPTS(dmt_dmabuf_opts, o, .provider = pv->udmabuf ? DMT_PROVIDER_UDMABUF : DMT_PROVIDER_HEAP,
		 .size = size);

	if (!pv->any)
		return NULL;
	return dmt_dmabuf_new(&o, NULL);
}

/* --------------------------------------------------------------- the NIC */

static void check_nic(struct probe *p, struct dmt_nic_state *st, bool *have,
		      struct dmt_err *nerr)
{
	const char *ifn = p->ifname;
	struct check *c;

	if (!*have) {
		char buf[600];

		c = add(p, "nic state", NEED_RX, NO);
		DETAIL(c, "%s", dmt_err_str(nerr, buf, sizeof(buf)));
		FIX(c, "%s", nerr->fix[0] ? nerr->fix : "check that ethtool netlink works on this interface (`ethtool -g IFNAME`)");
		return;
	}

	c = add(p, "rx queues >= 2", NEED_RX, st->rx_queues >= 2 ? YES : NO);
	DETAIL(c, "%u RX queue%s (channels: combined %u/%u, rx %u/%u)", st->rx_queues,
	       st->rx_queues == 1 ? "" : "s", st->combined, st->combined_max, st->rx, st->rx_max);
	if (!st->rx_queues) {
		DETAIL(c, "no RX queues listed (queue-get skips interfaces that are down)");
		FIX(c, "ip link set dev %s up, and probe again", ifn);
	} else if (st->rx_queues < 2) {
		if (st->combined_max >= 2)
			FIX(c, "ethtool -L %s combined 2 (or more)", ifn);
		else if (st->rx_max >= 2)
			FIX(c, "ethtool -L %s rx 2 (or more)", ifn);
		else
			FIX(c, "one queue for devmem and one for the rest: use a multi-queue NIC");
	}

	c = add(p, "header split", NEED_RX, st->has_rings && st->tcp_data_split ? YES : NO);
	if (!st->has_rings)
		DETAIL(c, "no ring parameters (ethtool -g)");
	else if (!st->tcp_data_split)
		DETAIL(c, "rings do not report tcp-data-split");
	else
		DETAIL(c, "tcp-data-split %s", st->tcp_data_split == 2 ? "on" : "off (devmemtcp recv turns it on)");
	if (c->ok != YES)
		FIX(c, "the driver must split headers from payload (tcp-data-split: mlx5, gve, fbnic, bnxt, dmveth)");

	/* informational: bind-rx needs 0, which recv sets or the kernel keeps */
	c = add(p, "hds-thresh", NEED_INFO, YES);
	if (st->has_hds_thresh)
		DETAIL(c, "hds-thresh %u (max %u)%s", st->hds_thresh, st->hds_thresh_max,
		       st->hds_thresh ? ": bind-rx needs 0 (devmemtcp recv sets it)" : "");
	else
		DETAIL(c, "not reported: the kernel keeps it 0, as bind-rx needs");

	c = add(p, "rss table", NEED_RX, st->rss_indir_size ? YES : NO);
	if (st->rss_indir_size)
		DETAIL(c, "indirection table of %u entries", st->rss_indir_size);
	else
		DETAIL(c, "no RSS indirection table (ethtool -x)");
	if (!st->rss_indir_size)
		FIX(c, "the devmem queue must leave RSS (ethtool -X %s equal N): needs a driver with an RSS table", ifn);

	c = add(p, "ntuple", NEED_RX, st->ntuple ? YES : NO);
	if (st->ntuple)
		DETAIL(c, "%u rule%s in place%s", st->ntuple_rules, st->ntuple_rules == 1 ? "" : "s",
		       st->ntuple_max ? "" : "");
	else
		DETAIL(c, "ntuple rules cannot be listed (ethtool -n)");
	if (!st->ntuple)
		FIX(c, "ethtool -K %s ntuple on; if refused, the driver has no flow steering", ifn);

	c = add(p, "no xdp", NEED_RX, st->xdp ? NO : YES);
	DETAIL(c, st->xdp ? "an XDP program is attached" : "no XDP program attached");
	if (st->xdp)
		FIX(c, "ip link set dev %s xdp off (bind-rx refuses with XDP attached)", ifn);
}

/* ------------------------------------------------------------ real probes */

/* The kernel gave no message: the library says only which attribute. */
static bool no_message(const char *x)
{
	return !x[0] || !strncmp(x, "bad attribute", 13) || !strncmp(x, "missing attribute", 17);
}

static void probe_tx(struct probe *p, const struct kernel_ops *k,
		     const struct providers *pv)
{
	struct check *c = add(p, "netmem tx", NEED_TX, UNKNOWN);
	struct dmt_dmabuf *buf = NULL;
	struct dmt_err e = { 0 };
	const struct dmt_err *ne;
	struct dmt_nl *nl;
	uint32_t id = 0;
	int fd, rc;

	if (!k->bind_tx) {
		DETAIL(c, "not probed: the kernel has no bind-tx");
		FIX(c, "boot Linux >= 6.16 with CONFIG_NET_DEVMEM=y");
		c->ok = NO;
		return;
	}
	buf = probe_buf(pv, TX_PROBE_SIZE);
	fd = buf ? dmt_dmabuf_fd(buf) : memfd_create("devmemtcp-probe", MFD_CLOEXEC);
	nl = dmt_nl_open(&e);
	if (!nl || fd < 0) {
		char s[600];

		DETAIL(c, "not probed: %s", nl ? strerror(errno) : dmt_err_str(&e, s, sizeof(s)));
		goto out;
	}
	rc = dmt_bind_tx(nl, p->ifindex, fd, &id);
	ne = dmt_nl_error(nl);
	if (!rc) {
		c->ok = YES;
		DETAIL(c, "bind-tx of a %d KiB %s dma-buf: dmabuf id %u, unbound again",
		       TX_PROBE_SIZE >> 10, dmt_provider_name(dmt_dmabuf_provider(buf)), id);
	} else if (rc == -EOPNOTSUPP) {
		c->ok = NO;
		DETAIL(c, "bind-tx: %s%s%s%s", strerror(-rc), ne->extack[0] ? ": kernel says \"" : "",
		       ne->extack, ne->extack[0] ? "\"" : "");
		FIX(c, "the driver cannot send from device memory (no netmem TX): use a NIC with it (mlx5, fbnic, bnxt, gve DQO, dmveth), or the zerocopy/copy modes");
	} else if (!buf && (rc == -EINVAL || rc == -EBADF)) {
		c->ok = YES;
		DETAIL(c, "the driver has netmem TX (bind-tx of a memfd got past the driver check to dma_buf_get: %s); not bound: no dma-buf to try",
		       strerror(-rc));
	} else if (rc == -EPERM) {
		DETAIL(c, "not probed: bind-tx refused (%s)", strerror(-rc));
		FIX(c, "run as root (CAP_NET_ADMIN)");
	} else {
		char s[600];

		c->ok = NO;
		DETAIL(c, "%s", dmt_err_str(ne, s, sizeof(s)));
		if (ne->fix[0])
			FIX(c, "%s", ne->fix);
	}
out:
	dmt_nl_close(nl);	/* unbinds */
	if (buf)
		dmt_dmabuf_free(buf);
	else if (fd >= 0)
		close(fd);
}

struct bound_q {
	int rx_bound;		/* an RX queue already bound, -1 if none */
};

static int find_bound(const struct dmt_queue_info *q, void *arg)
{
	struct bound_q *b = arg;

	if (q->type == 0 && (q->dmabuf || q->io_uring) && b->rx_bound < 0)
		b->rx_bound = q->id;
	return 0;
}

static void probe_rx(struct probe *p, const struct kernel_ops *k,
		     const struct providers *pv, const struct dmt_nic_state *st, bool have)
{
	struct check *c = add(p, "queue management", NEED_RX, UNKNOWN);
	struct bound_q b = { .rx_bound = -1 };
	struct dmt_dmabuf *buf = NULL;
	struct dmt_err e = { 0 };
	const struct dmt_err *ne;
	struct dmt_nl *nl;
	uint32_t q, id = 0;
	bool safe;
	int fd = -1, rc;
	char s[600];

	if (!k->bind_rx) {
		DETAIL(c, "not probed: the kernel has no bind-rx");
		FIX(c, "boot Linux >= 6.12 with CONFIG_NET_DEVMEM=y");
		c->ok = NO;
		return;
	}
	nl = dmt_nl_open(&e);
	if (!nl) {
		DETAIL(c, "not probed: %s", dmt_err_str(&e, s, sizeof(s)));
		return;
	}
	dmt_queue_dump(nl, p->ifindex, find_bound, &b);
	q = have && st->rx_queues ? st->rx_queues - 1 : 0;
	/*
	 * Safe: the kernel refuses before restarting the queue.  Header split
	 * off (EINVAL), hds-thresh not 0 (EINVAL), XDP (EEXIST), or the queue
	 * already bound (EEXIST): all come after the queue-ops check.
	 */
	safe = !have || st->tcp_data_split != 2 || st->hds_thresh || st->xdp;
	if (!safe && b.rx_bound >= 0) {
		q = b.rx_bound;
		safe = true;
	}
	if (!safe && !disruptive) {
		DETAIL(c, "not probed (header split on; would restart a queue)");
		FIX(c, "devmemtcp probe --disruptive %s, or turn header split off first (ethtool -G %s tcp-data-split off)",
		    p->ifname, p->ifname);
		goto out;
	}
	buf = probe_buf(pv, RX_PROBE_SIZE);
	fd = buf ? dmt_dmabuf_fd(buf) : memfd_create("devmemtcp-probe", MFD_CLOEXEC);
	rc = dmt_bind_rx(nl, p->ifindex, fd, &q, 1, &id);
	ne = dmt_nl_error(nl);
	if (!rc) {
		c->ok = YES;
		DETAIL(c, "bind-rx on queue %u: dmabuf id %u, unbound again (the queue restarted twice)", q, id);
	} else if (rc == -EOPNOTSUPP && no_message(ne->extack)) {
		c->ok = NO;
		DETAIL(c, "bind-rx on queue %u: %s without a message%s%s%s: the driver has no queue management ops",
		       q, strerror(-rc), ne->extack[0] ? " (" : "", ne->extack, ne->extack[0] ? ")" : "");
		FIX(c, "devmem RX needs a driver that can restart one RX queue with new memory (queue_mgmt_ops: mlx5, gve, fbnic, bnxt, dmveth)");
	} else if (rc == -EOPNOTSUPP) {
		c->ok = NO;
		DETAIL(c, "bind-rx on queue %u: %s: kernel says \"%s\"", q, strerror(-rc), ne->extack);
		FIX(c, "%s", strstr(ne->extack, "DMA") ? "the device has no DMA device for the dma-buf: use a real NIC or dmveth" :
		    ne->fix[0] ? ne->fix : "see the kernel's message");
	} else if ((rc == -EINVAL && (strstr(ne->extack, "tcp-data-split") || strstr(ne->extack, "hds-thresh"))) ||
		   (rc == -EEXIST && ne->extack[0]) || (rc == -EBUSY && strstr(ne->extack, "AF_XDP"))) {
		c->ok = YES;
		DETAIL(c, "bind-rx on queue %u refused after the queue-ops check, as expected: kernel says \"%s\"", q, ne->extack);
	} else if (!buf && (rc == -EINVAL || rc == -EBADF)) {
		DETAIL(c, "partly probed: the device has the instance lock and a DMA device (bind-rx of a memfd reached dma_buf_get: %s); the queue ops need a dma-buf to probe",
		       strerror(-rc));
		FIX(c, "modprobe udmabuf and probe again");
	} else if (rc == -EPERM) {
		DETAIL(c, "not probed: bind-rx needs CAP_NET_ADMIN");
		FIX(c, "run as root");
	} else if (rc == -ENODATA) {
		c->ok = NO;
		DETAIL(c, "bind-rx on queue %u: %s: the driver's page pool ignores the memory provider", q, strerror(-rc));
		FIX(c, "the driver must create page pools with PP_FLAG_ALLOW_UNREADABLE_NETMEM: use a devmem-capable driver");
	} else {
		c->ok = NO;
		DETAIL(c, "%s", dmt_err_str(ne, s, sizeof(s)));
		if (ne->fix[0])
			FIX(c, "%s", ne->fix);
	}
out:
	dmt_nl_close(nl);	/* unbinds, if it bound */
	if (buf)
		dmt_dmabuf_free(buf);
	else if (fd >= 0)
		close(fd);
}

/* ------------------------------------------------------------- one device */

static void probe_one(struct probe *p, const struct kernel_ops *k,
		      const struct providers *pv)
{
	struct dmt_nic_state st;
	struct dmt_err e = { 0 };
	struct dmt_nic *nic;
	bool have = false;

	memset(&st, 0, sizeof(st));
	check_kernel(p, k);
	nic = dmt_nic_open(p->ifname, &e);
	if (nic) {
		if (dmt_nic_get_state(nic, &st) >= 0)
			have = true;
		else
			e = *dmt_nic_error(nic);
		dmt_nic_close(nic);	/* nothing changed: nothing to undo */
	}
	check_nic(p, &st, &have, &e);
	check_providers(p, pv);
	probe_tx(p, k, pv);
	probe_rx(p, k, pv, &st, have);

	p->rx = p->tx = true;
	for (unsigned i = 0; i < p->n; i++) {
		const struct check *c = &p->c[i];

		if ((c->need & NEED_RX) && c->ok != YES) {
			p->rx = false;
			if (c->ok == UNKNOWN)
				p->rx_unknown = true;
		}
		if ((c->need & NEED_TX) && c->ok != YES)
			p->tx = false;
	}
	/* unknown only when nothing else is missing */
	for (unsigned i = 0; i < p->n; i++)
		if ((p->c[i].need & NEED_RX) && p->c[i].ok == NO)
			p->rx_unknown = false;
}

static void print_one(const struct probe *p)
{
	out_obj_open(NULL, NULL);
	out_str("ifname", "%s", p->ifname);
	out_u64("ifindex", NULL, p->ifindex);
	out_bool("devmem_rx", NULL, p->rx);
	out_text(": devmem RX: ");
	out_text(p->rx ? "yes" : p->rx_unknown ? "unknown" : "no");
	out_bool("devmem_tx", ", devmem TX: %s\n", p->tx);
	out_arr_open("checks", NULL);
	for (unsigned i = 0; i < p->n; i++) {
		const struct check *c = &p->c[i];

		out_obj_open(NULL, NULL);
		out_str("name", "  %-18s", c->name);
		if (c->ok == UNKNOWN)
			out_null("ok", " ?      ");
		else
			out_bool("ok", NULL, c->ok == YES);
		if (c->ok != UNKNOWN)
			out_text(c->ok == YES ? " ok     " : c->need == NEED_INFO ? " no     " : " MISSING");
		out_str("needed_for", NULL, c->need == NEED_RX ? "rx" : c->need == NEED_TX ? "tx" :
			c->need == NEED_BOTH ? "rx,tx" : "info");
		out_str("detail", " %s\n", c->detail);
		if (c->fix[0])
			out_str("fix", "                              fix: %s\n", c->fix);
		else
			out_null("fix", NULL);
		out_obj_close();
	}
	out_arr_close();
	out_obj_close();
}

/* JSON: one array of interface objects; an error is one {"error"} object. */
static int cmd_probe_names(char **names, int n, struct dmt_err *err, int *exit_code)
{
	struct kernel_ops k = { 0 };
	struct providers pv;
	struct probe *p;
	bool all = true;

	for (int i = 0; i < n; i++)
		if (!if_nametoindex(names[i])) {
			tool_err(err, -ENODEV, "`ip link` lists the interfaces", "probe %s", names[i]);
			*exit_code = EXIT_NODEV;
			return -1;
		}
	p = calloc(1, sizeof(*p));
	if (!p) {
		tool_err(err, -ENOMEM, NULL, "allocate");
		*exit_code = EXIT_RUNTIME;
		return -1;
	}
	kernel_ops_read(&k);
	providers_read(&pv);
	out_arr_open(NULL, NULL);
	for (int i = 0; i < n; i++) {
		memset(p, 0, sizeof(*p));
		p->ifname = names[i];
		p->ifindex = if_nametoindex(names[i]);
		probe_one(p, &k, &pv);
		print_one(p);
		if (!p->rx || !p->tx)
			all = false;
	}
	free(p);
	*exit_code = all ? EXIT_OK : EXIT_NODEVMEM;
	return 0;
}

int cmd_probe(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "disruptive", no_argument, NULL, 'D' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct if_nameindex *ifs = NULL;
	struct dmt_err err = { 0 };
	char **names;
	int n = 0, o, exit_code = EXIT_OK;

	optind = 0;
	opterr = 0;
	while ((o = getopt_long(argc, argv, ":j", opts, NULL)) != -1) {
		switch (o) {
		case 'j':
			out_init(true);
			break;
		case 'h':
			probe_usage(stdout);
			exit(EXIT_OK);
		case 'D':
			disruptive = true;
			break;
		default:
			return tool_usage_err("see `devmemtcp --help`", "probe: bad option '%s'",
					      argv[optind - 1]);
		}
	}
	if (optind < argc) {
		names = argv + optind;
		n = argc - optind;
	} else {
		ifs = if_nameindex();
		if (!ifs) {
			tool_err(&err, -errno, NULL, "list the interfaces");
			out_begin();
			out_error(&err, EXIT_RUNTIME);
			out_end();
			return EXIT_RUNTIME;
		}
		while (ifs[n].if_name)
			n++;
		names = calloc(n + 1, sizeof(*names));
		if (!names) {
			if_freenameindex(ifs);
			return EXIT_RUNTIME;
		}
		for (int i = 0; i < n; i++)
			names[i] = ifs[i].if_name;
	}
	if (cmd_probe_names(names, n, &err, &exit_code)) {
		out_begin();
		out_error(&err, exit_code);
	}
	out_end();
	if (ifs) {
		free(names);
		if_freenameindex(ifs);
	}
	return exit_code;
}
