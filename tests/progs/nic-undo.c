// SPDX-License-Identifier: MIT
/*
 * nic-undo: libdevmemtcp 0.2's durable, exact NIC undo (dmt_nic_*).
 * Run as root in the namespace of a devmem-capable NIC (dmveth):
 *
 *   nic-undo -i IFNAME [-x NSIMIF]
 *
 * - tcp-data-split "unknown" round trip: the core's config is "unknown"
 *   before (told by a rings-set of the reported value: it is announced on
 *   ethtool's monitor group only when it changes something), prepare makes
 *   it "enabled" (a single-buffer XDP attach is refused), restore makes it
 *   "unknown" again (the attach works); with -x, the same on netdevsim,
 *   which reports "enabled" for "unknown" (the case 0.1 got wrong);
 * - restore, dmt_nic_free and (0.1) dmt_nic_close while a dma-buf is bound
 *   to a queue: -EBUSY naming the queue and the dma-buf, nothing changed;
 *   close leaves the changes recorded; after the unbind they restore;
 * - the undo log on disk: written before the changes, it names the
 *   interface, its index and our pid; a second handle preparing the NIC is
 *   refused naming our pid; a child killed with SIGKILL after prepare and
 *   steer leaves a log that blocks the next prepare and that
 *   dmt_nic_restore_log replays to the state before, removing the log;
 * - rx-gro-hw: where the device lets it change and it is off (dmveth),
 *   prepare turns it on and logs a "gro-hw" entry; the child's replay turns
 *   it off again (dmt_nic_log.gro_hw); with DMT_NIC_NO_GRO_HW it stays
 *   off; an unknown flag is refused (EINVAL);
 * - no fd leaked.
 */
#include <stddef.h>
#include "nic-common.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <linux/ethtool_netlink.h>
#include <linux/genetlink.h>

/* ------------------------------------------- the state, without the lib */

struct snap {
	struct ethtool_channels ch;
	struct ethtool_ringparam rings;
	uint32_t nindir, indir[MAX_INDIR];
	uint32_t nrules;
	struct ethtool_rx_flow_spec rules[MAX_RULES];
	uint32_t flags;		/* ETH_FLAG_NTUPLE and friends */
	uint32_t feat[8];	/* active features (ethtool -k), by word */
	struct dmt_nic_state st;	/* tcp-data-split, hds-thresh */
};

/* ETHTOOL_GFEATURES: the active words into feat (the kernel fills what it has) */
static void read_features(const char *ifname, uint32_t feat[8])
{
	struct {
		struct ethtool_gfeatures h;
		struct ethtool_get_features_block b[8];
	} gf = { .h = { .cmd = ETHTOOL_GFEATURES, .size = 8 } };
	uint32_t i;

	memset(feat, 0, 8 * sizeof(uint32_t));
	if (eth_ioctl(ifname, &gf))
		return;
	for (i = 0; i < gf.h.size && i < 8; i++)
		feat[i] = gf.b[i].active;
}

/* rx-gro-hw: -1 not offered (or fixed), else whether it is on */
static int gro_hw(const char *ifname)
{
	struct {
		struct ethtool_sset_info h;
		uint32_t n;
	} si = { .h = { .cmd = ETHTOOL_GSSET_INFO, .sset_mask = 1ull << ETH_SS_FEATURES } };
	struct {
		struct ethtool_gfeatures h;
		struct ethtool_get_features_block b[8];
	} gf = { .h = { .cmd = ETHTOOL_GFEATURES, .size = 8 } };
	struct ethtool_gstrings *gs;
	uint32_t i, bit = 0;
	int ret = -1;

	if (eth_ioctl(ifname, &si) || !si.h.sset_mask || si.n > 256)
		return -1;
	gs = calloc(1, sizeof(*gs) + si.n * ETH_GSTRING_LEN);
	if (!gs)
		return -1;
	gs->cmd = ETHTOOL_GSTRINGS;
	gs->string_set = ETH_SS_FEATURES;
	gs->len = si.n;
	if (!eth_ioctl(ifname, gs))
		for (i = 0; i < gs->len; i++)
			if (!strcmp((char *)gs->data + i * ETH_GSTRING_LEN, "rx-gro-hw"))
				bit = i + 1;
	free(gs);
	if (bit-- && !eth_ioctl(ifname, &gf) && bit / 32 < gf.h.size &&
	    (gf.b[bit / 32].available & (1u << bit % 32)))
		ret = !!(gf.b[bit / 32].active & (1u << bit % 32));
	return ret;
}

static int take_snap(const char *ifname, struct snap *s)
{
	struct ethtool_value v = { .cmd = ETHTOOL_GFLAGS };
	struct dmt_err err;
	struct dmt_nic *nic;
	int ret;

	memset(s, 0, sizeof(*s));
	s->ch.cmd = ETHTOOL_GCHANNELS;
	s->rings.cmd = ETHTOOL_GRINGPARAM;
	eth_ioctl(ifname, &s->ch);
	eth_ioctl(ifname, &s->rings);
	if (!eth_ioctl(ifname, &v))
		s->flags = v.data;
	read_features(ifname, s->feat);
	read_indir(ifname, s->indir, &s->nindir);
	read_rules(ifname, s->rules, &s->nrules);
	/* tcp-data-split and hds-thresh: ethtool netlink, through a handle
	 * that changes nothing */
	nic = dmt_nic_open(ifname, &err);
	if (!nic)
		return err.code;
	ret = dmt_nic_get_state(nic, &s->st);
	dmt_nic_close(nic);
	return ret;
}

static bool snap_eq(const struct snap *a, const struct snap *b)
{
	bool eq = true;

	if (memcmp(&a->ch, &b->ch, sizeof(a->ch))) {
		printf("# channels differ\n");
		eq = false;
	}
	if (memcmp(&a->rings, &b->rings, sizeof(a->rings)) ||
	    a->st.tcp_data_split != b->st.tcp_data_split ||
	    a->st.hds_thresh != b->st.hds_thresh) {
		printf("# rings differ (tcp-data-split %u, now %u)\n",
		       a->st.tcp_data_split, b->st.tcp_data_split);
		eq = false;
	}
	if (a->nindir != b->nindir ||
	    memcmp(a->indir, b->indir, a->nindir * sizeof(uint32_t))) {
		printf("# RSS table differs\n");
		eq = false;
	}
	if (a->nrules != b->nrules ||
	    memcmp(a->rules, b->rules, a->nrules * sizeof(a->rules[0]))) {
		printf("# ntuple rules differ (%u, now %u)\n", a->nrules, b->nrules);
		eq = false;
	}
	if ((a->flags ^ b->flags) & ETH_FLAG_NTUPLE) {
		printf("# the ntuple feature differs\n");
		eq = false;
	}
	if (memcmp(a->feat, b->feat, sizeof(a->feat))) {
		printf("# the features (ethtool -k) differ\n");
		eq = false;
	}
	return eq;
}

/* ------------------------------------ the core's tcp-data-split config */

struct grp {
	uint16_t family;
	uint32_t monitor;
};

static int family_cb(const struct nlmsghdr *nlh, void *arg)
{
	struct grp *g = arg;
	const struct nlattr *a, *e, *x;

	mnl_attr_for_each(a, nlh, sizeof(struct genlmsghdr)) {
		if (mnl_attr_get_type(a) == CTRL_ATTR_FAMILY_ID)
			g->family = mnl_attr_get_u16(a);
		if (mnl_attr_get_type(a) != CTRL_ATTR_MCAST_GROUPS)
			continue;
		mnl_attr_for_each_nested(e, a) {
			const char *name = "";
			uint32_t id = 0;

			mnl_attr_for_each_nested(x, e) {
				if (mnl_attr_get_type(x) == CTRL_ATTR_MCAST_GRP_NAME)
					name = mnl_attr_get_str(x);
				if (mnl_attr_get_type(x) == CTRL_ATTR_MCAST_GRP_ID)
					id = mnl_attr_get_u32(x);
			}
			if (!strcmp(name, ETHTOOL_MCGRP_MONITOR_NAME))
				g->monitor = id;
		}
	}
	return MNL_CB_OK;
}

/*
 * The tcp-data-split config is "unknown": a rings-set of the value the
 * driver reports changes something (a RINGS_NTF on the monitor group).
 * Puts "unknown" back when so.  1 unknown, 0 not, -errno.
 */
static int tds_unknown(const char *ifname, uint8_t reported)
{
	char buf[512] __attribute__((aligned(8)));
	struct mnl_socket *nl = NULL, *mon = NULL;
	struct grp g = { 0 };
	struct genlmsghdr *gh;
	struct nlmsghdr *nlh;
	struct nlattr *hdr;
	int ret, n, seen = 0;

	nl = mnl_socket_open(NETLINK_GENERIC);
	mon = mnl_socket_open(NETLINK_GENERIC);
	if (!nl || !mon || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) ||
	    mnl_socket_bind(mon, 0, MNL_SOCKET_AUTOPID)) {
		ret = -errno;
		goto out;
	}
	memset(buf, 0, sizeof(buf));
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = GENL_ID_CTRL;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = time(NULL);
	gh = mnl_nlmsg_put_extra_header(nlh, sizeof(*gh));
	gh->cmd = CTRL_CMD_GETFAMILY;
	gh->version = 1;
	mnl_attr_put_strz(nlh, CTRL_ATTR_FAMILY_NAME, ETHTOOL_GENL_NAME);
	ret = nl_do(nl, nlh, family_cb, &g);
	if (ret || !g.monitor) {
		ret = ret ? ret : -ENOENT;
		goto out;
	}
	if (mnl_socket_setsockopt(mon, NETLINK_ADD_MEMBERSHIP, &g.monitor,
				  sizeof(g.monitor))) {
		ret = -errno;
		goto out;
	}
	for (int pass = 0; pass < 2; pass++) {
		memset(buf, 0, sizeof(buf));
		nlh = mnl_nlmsg_put_header(buf);
		nlh->nlmsg_type = g.family;
		nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
		nlh->nlmsg_seq = time(NULL) + 1 + pass;
		gh = mnl_nlmsg_put_extra_header(nlh, sizeof(*gh));
		gh->cmd = ETHTOOL_MSG_RINGS_SET;
		gh->version = ETHTOOL_GENL_VERSION;
		hdr = mnl_attr_nest_start(nlh, ETHTOOL_A_RINGS_HEADER);
		mnl_attr_put_strz(nlh, ETHTOOL_A_HEADER_DEV_NAME, ifname);
		mnl_attr_nest_end(nlh, hdr);
		/* pass 0: the reported value; pass 1: "unknown" back */
		mnl_attr_put_u8(nlh, ETHTOOL_A_RINGS_TCP_DATA_SPLIT,
				pass ? ETHTOOL_TCP_DATA_SPLIT_UNKNOWN : reported);
		ret = nl_do(nl, nlh, NULL, NULL);
		if (ret)
			goto out;
		if (pass)
			break;
		n = recv(mnl_socket_get_fd(mon), buf, sizeof(buf), MSG_DONTWAIT);
		seen = n > 0;
		while (n > 0)
			n = recv(mnl_socket_get_fd(mon), buf, sizeof(buf), MSG_DONTWAIT);
		if (!seen)
			break;
	}
	ret = seen;
out:
	if (nl)
		mnl_socket_close(nl);
	if (mon)
		mnl_socket_close(mon);
	return ret;
}

/* ------------------------------------------------------------------ XDP */

/* Attaching XDP works (then detached again): 0, or the refusal's -errno. */
static int xdp_try(const char *ifname)
{
	int fd = bpf_xdp_pass(), ret;

	if (fd < 0)
		return -errno;
	ret = xdp_set(if_nametoindex(ifname), fd);
	if (!ret)
		xdp_set(if_nametoindex(ifname), -1);
	close(fd);
	return ret;
}

/* ------------------------------------------------------------ the cases */

static struct dmt_nic *open_nic(struct ktap *t, const char *ifname)
{
	struct dmt_err err;
	struct dmt_nic *nic = dmt_nic_open(ifname, &err);

	if (!check(t, nic != NULL, "%s: open", ifname))
		show_err(&err);
	return nic;
}

/* tcp-data-split "unknown" before, "unknown" after a prepare/restore. */
static void test_unknown(struct ktap *t, const char *ifname, unsigned queue)
{
	struct dmt_nic_state st;
	struct dmt_nic *nic;
	int u0, x0, x1, x2, u1, ret;

	nic = open_nic(t, ifname);
	if (!nic)
		return;
	dmt_nic_get_state(nic, &st);
	u0 = tds_unknown(ifname, st.tcp_data_split);
	x0 = xdp_try(ifname);
	check(t, u0 == 1 && x0 == 0, "%s: tcp-data-split config \"unknown\" "
	      "(driver reports %u), a single-buffer XDP attach works (%d %d)",
	      ifname, st.tcp_data_split, u0, x0);
	ret = dmt_nic_prepare_rx(nic, queue, 1);
	if (ret)
		show_err(dmt_nic_error(nic));
	x1 = xdp_try(ifname);
	check(t, !ret && x1 == -EBUSY, "%s: prepared: the XDP attach is "
	      "refused (%s)", ifname, strerror(-x1));
	ret = dmt_nic_restore(nic);
	if (ret)
		show_err(dmt_nic_error(nic));
	dmt_nic_get_state(nic, &st);
	x2 = xdp_try(ifname);
	u1 = tds_unknown(ifname, st.tcp_data_split);
	check(t, !ret && x2 == 0 && u1 == 1, "%s: restored: config \"unknown\" "
	      "again, the XDP attach works (%d %d)", ifname, x2, u1);
	dmt_nic_close(nic);
}

/* Restore and close while a dma-buf is bound: -EBUSY, nothing changed. */
static void test_busy(struct ktap *t, const char *ifname, unsigned queue,
		      const char *logdir)
{
	DMT_OPTS(dmt_dmabuf_opts, bo, .size = 1 << 20);
	DMT_OPTS(dmt_rxbind_opts, ro, .policy = DMT_MODE_DEVMEM,
		 .queue_start = queue, .queue_count = 1);
	DMT_OPTS(dmt_nic_opts, no, .log_dir = logdir);
	struct snap *s = calloc(3, sizeof(*s));
	struct dmt_rxbind *bind = NULL;
	struct dmt_dmabuf *buf = NULL;
	const struct dmt_err *e;
	struct dmt_err err;
	struct dmt_nic *nic;
	char want[64];
	int ret;

	if (!s || take_snap(ifname, &s[0]))
		goto out;
	nic = dmt_nic_open_opts(ifname, &no, &err);
	if (!check(t, nic != NULL, "%s: open with a log_dir", ifname)) {
		show_err(&err);
		goto out;
	}
	e = dmt_nic_error(nic);
	ret = dmt_nic_prepare_rx(nic, queue, 1);
	buf = dmt_dmabuf_new(&bo, &err);
	bind = buf ? dmt_rxbind_new(ifname, buf, &ro, &err) : NULL;
	if (!check(t, !ret && bind, "%s: prepared, a udmabuf bound to queue %u",
		   ifname, queue)) {
		show_err(bind ? e : &err);
		dmt_nic_close(nic);
		goto out;
	}
	take_snap(ifname, &s[1]);
	snprintf(want, sizeof(want), "queue %u is still bound to dma-buf %u",
		 queue, dmt_rxbind_id(bind));
	ret = dmt_nic_restore(nic);
	show_err(e);
	take_snap(ifname, &s[2]);
	check(t, ret == -EBUSY && strstr(e->what, want) && e->fix[0] &&
	      snap_eq(&s[1], &s[2]), "%s: restore while bound: EBUSY (\"%s\"), "
	      "nothing changed", ifname, want);
	ret = dmt_nic_free(nic, 0);
	take_snap(ifname, &s[2]);
	check(t, ret == -EBUSY && dmt_nic_ifindex(nic) && snap_eq(&s[1], &s[2]),
	      "%s: dmt_nic_free while bound: EBUSY, the handle still valid",
	      ifname);
	dmt_nic_close(nic);	/* 0.1: refused, keeps the log */
	take_snap(ifname, &s[2]);
	check(t, snap_eq(&s[1], &s[2]), "%s: dmt_nic_close while bound: "
	      "nothing restored, nothing lost", ifname);
	dmt_rxbind_free(bind);
	bind = NULL;
	ret = dmt_nic_restore_log(ifname, &no, NULL, NULL, &err);
	if (ret != 1)
		show_err(&err);
	take_snap(ifname, &s[2]);
	check(t, ret == 1 && snap_eq(&s[0], &s[2]), "%s: unbound, the log "
	      "close left restores everything", ifname);
	ret = dmt_nic_restore_log(ifname, &no, NULL, NULL, &err);
	check(t, ret == -ENOENT, "%s: and the log is gone (ENOENT)", ifname);
out:
	dmt_rxbind_free(bind);
	dmt_dmabuf_free(buf);
	free(s);
}

struct seen {
	int pid;
	unsigned changes;
	bool rings, rss, gro_hw;
	unsigned rules;
};

static int seen_cb(const struct dmt_nic_log *l, void *arg)
{
	struct seen *s = arg;

	s->pid = l->pid;
	s->changes = l->changes;
	s->rings = l->rings;
	s->rss = l->rss;
	s->rules = l->rules;
	s->gro_hw = l->sz >= offsetof(struct dmt_nic_log, gro_hw) + sizeof(l->gro_hw) &&
		    l->gro_hw;
	return 0;
}

/* The log on disk: a second handle, a killed process, the replay. */
static void test_log(struct ktap *t, const char *ifname, unsigned queue,
		     const char *logdir)
{
	DMT_OPTS(dmt_nic_opts, no, .log_dir = logdir);
	struct snap *s = calloc(2, sizeof(*s));
	struct dmt_nic *a = NULL, *b = NULL;
	struct seen seen = { 0 };
	struct dmt_flow flow;
	struct dmt_err err;
	char path[512], pid[32], line[256], *text = NULL;
	struct stat st;
	FILE *f;
	size_t n = 0;
	pid_t child;
	int ret, status, gro0, gro1;

	if (!s || take_snap(ifname, &s[0]))
		goto out;
	snprintf(path, sizeof(path), "%s/net-%lu/%s.undo", logdir,
		 (stat("/proc/self/ns/net", &st), (unsigned long)st.st_ino), ifname);
	a = dmt_nic_open_opts(ifname, &no, &err);
	b = dmt_nic_open_opts(ifname, &no, &err);
	if (!check(t, a && b && stat(path, &st) && errno == ENOENT,
		   "%s: two handles open, no log before a change", ifname))
		goto out;
	gro0 = gro_hw(ifname);
	ret = dmt_nic_prepare_rx(a, queue, 1);
	gro1 = gro_hw(ifname);
	f = fopen(path, "r");
	if (f) {
		/* bit 0: rings, bit 1: rss, bit 2: gro-hw (an entry may be
		 * written again) */
		while (fgets(line, sizeof(line), f))
			n |= (strstr(line, " rings ") ? 1 : 0) |
			     (strstr(line, " rss ") ? 2 : 0) |
			     (strstr(line, " gro-hw") ? 4 : 0);
		fclose(f);
	}
	check(t, !ret && (n & 3) == 3, "%s: prepare wrote the rings and RSS "
	      "entries to %s", ifname, path);
	if (gro0 == 0)
		check(t, !ret && gro1 == 1 && (n & 4), "%s: rx-gro-hw was off: "
		      "prepare turned it on and logged it", ifname);
	else
		skip(t, "rx-gro-hw turned on by prepare", gro0 < 0 ?
		     "the device does not let it change" : "the device has it on");
	ret = dmt_nic_prepare_rx(b, queue, 1);
	show_err(dmt_nic_error(b));
	snprintf(pid, sizeof(pid), "pid %d", (int)getpid());
	check(t, ret == -EBUSY && strstr(dmt_nic_error(b)->what, pid),
	      "%s: a second handle's prepare: EBUSY naming %s", ifname, pid);
	ret = dmt_nic_restore(a);
	check(t, !ret && stat(path, &st) && errno == ENOENT, "%s: restored, "
	      "the log removed", ifname);
	ret = dmt_nic_prepare_rx(b, queue, 1);
	check(t, !ret && !dmt_nic_restore(b), "%s: then the second handle "
	      "prepares and restores", ifname);
	dmt_nic_close(a);
	dmt_nic_close(b);
	a = b = NULL;

	/* a process killed part way */
	fflush(stdout);
	child = fork();
	if (child == 0) {
		struct dmt_nic *c = dmt_nic_open_opts(ifname, &no, &err);
		uint32_t loc;

		memset(&flow, 0, sizeof(flow));
		flow.local.ss_family = AF_INET;
		((struct sockaddr_in *)&flow.local)->sin_port = htons(5999);
		if (!c || dmt_nic_prepare_rx(c, queue, 1) ||
		    dmt_nic_steer(c, &flow, queue, &loc))
			_exit(1);
		raise(SIGKILL);
		_exit(2);
	}
	waitpid(child, &status, 0);
	take_snap(ifname, &s[1]);
	check(t, WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL &&
	      !snap_eq(&s[0], &s[1]) && !stat(path, &st), "%s: a child prepared, "
	      "steered and was killed: the NIC differs, its log is there", ifname);
	a = dmt_nic_open_opts(ifname, &no, &err);
	ret = a ? dmt_nic_prepare_rx(a, queue, 1) : -1;
	if (a)
		show_err(dmt_nic_error(a));
	check(t, ret == -EBUSY && strstr(dmt_nic_error(a)->what, "never undone"),
	      "%s: the next prepare is refused: changes never undone", ifname);
	dmt_nic_close(a);
	a = NULL;
	ret = dmt_nic_restore_log(NULL, &no, seen_cb, &seen, &err);
	if (ret != 1)
		show_err(&err);
	take_snap(ifname, &s[1]);
	check(t, ret == 1 && seen.pid == child && seen.rings && seen.rss &&
	      seen.rules == 1 && seen.gro_hw == (gro0 == 0) &&
	      snap_eq(&s[0], &s[1]) && stat(path, &st),
	      "%s: dmt_nic_restore_log(NULL): the child's %u changes undone "
	      "(rings, RSS, %u rule%s), state as before, log removed", ifname,
	      seen.changes, seen.rules, seen.gro_hw ? ", rx-gro-hw" : "");
out:
	free(text);
	dmt_nic_close(a);
	dmt_nic_close(b);
	free(s);
}

/* dmt_nic_opts.flags: DMT_NIC_NO_GRO_HW leaves rx-gro-hw; unknown: EINVAL */
static void test_flags(struct ktap *t, const char *ifname, unsigned queue,
		       const char *logdir)
{
	DMT_OPTS(dmt_nic_opts, bad, .log_dir = logdir, .flags = 0x80);
	DMT_OPTS(dmt_nic_opts, no, .log_dir = logdir, .flags = DMT_NIC_NO_GRO_HW);
	struct dmt_nic *nic;
	struct dmt_err err;
	int gro0, gro1, ret;

	nic = dmt_nic_open_opts(ifname, &bad, &err);
	check(t, !nic && err.code == -EINVAL && strstr(err.fix, "DMT_NIC_NO_GRO_HW"),
	      "%s: dmt_nic_opts.flags 0x80: EINVAL naming the known flag", ifname);
	dmt_nic_close(nic);
	gro0 = gro_hw(ifname);
	if (gro0 != 0) {
		skip(t, "DMT_NIC_NO_GRO_HW", "rx-gro-hw is not off and changeable");
		return;
	}
	nic = dmt_nic_open_opts(ifname, &no, &err);
	ret = nic ? dmt_nic_prepare_rx(nic, queue, 1) : err.code;
	gro1 = gro_hw(ifname);
	check(t, !ret && gro1 == 0 && nic && !dmt_nic_restore(nic),
	      "%s: DMT_NIC_NO_GRO_HW: prepared, rx-gro-hw left off, restored",
	      ifname);
	dmt_nic_close(nic);
}

int main(int argc, char **argv)
{
	const char *ifname = NULL, *nsim = NULL;
	char logdir[] = "/tmp/nic-undo.XXXXXX";
	struct ktap t = { 0 };
	struct dmt_nic_state st;
	struct dmt_nic *nic;
	int fds0, fds1, opt;

	while ((opt = getopt(argc, argv, "i:x:h")) != -1) {
		switch (opt) {
		case 'i':
			ifname = optarg;
			break;
		case 'x':
			nsim = optarg;
			break;
		default:
			fprintf(stderr, "usage: %s -i IFNAME [-x NETDEVSIM_IF]\n",
				argv[0]);
			return 2;
		}
	}
	if (!ifname) {
		fprintf(stderr, "usage: %s -i IFNAME [-x NETDEVSIM_IF]\n", argv[0]);
		return 2;
	}
	if (!mkdtemp(logdir)) {
		perror("mkdtemp");
		return 1;
	}
	fds0 = count_fds();
	nic = open_nic(&t, ifname);
	if (!nic || dmt_nic_get_state(nic, &st) || st.rx_queues < 2) {
		check(&t, false, "%s: 2 RX queues or more", ifname);
		dmt_nic_close(nic);
		return ktap_exit(&t);
	}
	dmt_nic_close(nic);
	test_unknown(&t, ifname, st.rx_queues - 1);
	if (nsim)
		test_unknown(&t, nsim, 1);
	test_busy(&t, ifname, st.rx_queues - 1, logdir);
	test_log(&t, ifname, st.rx_queues - 1, logdir);
	test_flags(&t, ifname, st.rx_queues - 1, logdir);
	fds1 = count_fds();
	if (!check(&t, fds0 >= 0 && fds0 == fds1, "no fd leaked"))
		printf("# %d fds open at start, %d at the end\n", fds0, fds1);
	rmdir(logdir);
	return ktap_exit(&t);
}
