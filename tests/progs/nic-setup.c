// SPDX-License-Identifier: MIT
/*
 * nic-setup: libdevmemtcp's NIC setup for devmem RX (dmt_nic_*).
 *
 * Without options, on any host: an unknown interface gives ENODEV; on lo
 * (no rings, RSS or ntuple) the state reads and every prepare and steer
 * fails with a fix and changes nothing; in a private network namespace, a
 * veth pair (channels, no header split) refuses prepare with the kernel's
 * extack, and an XDP program attached in generic mode shows in the state.
 *
 * With -i IFNAME (a devmem-capable NIC such as dmveth; run as root in its
 * namespace): the full cycle.  prepare_rx of the last queue, tcp4 and tcp6
 * rules to it, restore, and the complete state (channels, rings, the RSS
 * table, every ntuple rule) compared with what it was; a rule someone else
 * made survives; a failed steer part way, then close, also restores.
 */
#include "nic-common.h"

#include <sched.h>

static void show_state(const char *name, const struct dmt_nic_state *s)
{
	printf("# %s: ifindex %u rx-queues %u combined %u/%u rx %u/%u tx %u/%u "
	       "rings %s rx %u/%u tcp-data-split %u hds-thresh %s%u/%u rss %u "
	       "ntuple %s rules %u/%u xdp %s\n", name, s->ifindex, s->rx_queues,
	       s->combined, s->combined_max, s->rx, s->rx_max, s->tx, s->tx_max,
	       s->has_rings ? "yes" : "no", s->ring_rx, s->ring_rx_max,
	       s->tcp_data_split, s->has_hds_thresh ? "" : "(none) ",
	       s->hds_thresh, s->hds_thresh_max, s->rss_indir_size,
	       s->ntuple ? "yes" : "no", s->ntuple_rules, s->ntuple_max,
	       s->xdp ? "yes" : "no");
}

static bool state_eq(const struct dmt_nic_state *a, const struct dmt_nic_state *b)
{
	return a->ifindex == b->ifindex && a->rx_queues == b->rx_queues &&
	       a->combined == b->combined && a->combined_max == b->combined_max &&
	       a->rx == b->rx && a->rx_max == b->rx_max && a->tx == b->tx &&
	       a->tx_max == b->tx_max && a->ring_rx == b->ring_rx &&
	       a->ring_rx_max == b->ring_rx_max && a->has_rings == b->has_rings &&
	       a->tcp_data_split == b->tcp_data_split &&
	       a->has_hds_thresh == b->has_hds_thresh &&
	       a->hds_thresh == b->hds_thresh &&
	       a->hds_thresh_max == b->hds_thresh_max &&
	       a->rss_indir_size == b->rss_indir_size && a->ntuple == b->ntuple &&
	       a->ntuple_rules == b->ntuple_rules && a->ntuple_max == b->ntuple_max &&
	       a->xdp == b->xdp;
}

/* Everything the cycle may touch, read without the library. */
struct snap {
	struct dmt_nic_state st;
	uint32_t nindir;
	uint32_t indir[MAX_INDIR];
	uint32_t nrules;
	struct ethtool_rx_flow_spec rules[MAX_RULES];	/* by location */
};

static int take_snap(struct dmt_nic *nic, const char *ifname, struct snap *s)
{
	int ret;

	memset(s, 0, sizeof(*s));
	ret = dmt_nic_get_state(nic, &s->st);
	if (ret) {
		show_err(dmt_nic_error(nic));
		return ret;
	}
	ret = read_indir(ifname, s->indir, &s->nindir);
	if (!ret)
		ret = read_rules(ifname, s->rules, &s->nrules);
	if (ret)
		printf("# reading the RSS table and rules of %s: %s\n", ifname,
		       strerror(-ret));
	return ret;
}

static bool snap_eq(const struct snap *a, const struct snap *b)
{
	bool eq = true;
	uint32_t i;

	if (!state_eq(&a->st, &b->st)) {
		show_state("was", &a->st);
		show_state("now", &b->st);
		eq = false;
	}
	if (a->nindir != b->nindir ||
	    memcmp(a->indir, b->indir, a->nindir * sizeof(uint32_t))) {
		printf("# RSS table differs (%u, %u entries)\n", a->nindir, b->nindir);
		eq = false;
	}
	if (a->nrules != b->nrules) {
		printf("# %u rules, were %u\n", b->nrules, a->nrules);
		return false;
	}
	for (i = 0; i < a->nrules; i++) {
		if (memcmp(&a->rules[i], &b->rules[i], sizeof(a->rules[i]))) {
			printf("# rule %u differs\n", a->rules[i].location);
			eq = false;
		}
	}
	return eq;
}

static void print_indir(const char *what, const struct snap *s)
{
	uint32_t i;

	printf("# %s:", what);
	for (i = 0; i < s->nindir && i < 32; i++)
		printf(" %u", s->indir[i]);
	printf("%s\n", s->nindir > 32 ? " ..." : "");
}

/* ----------------------------------------------------------- flows */

static void addr4(struct sockaddr_storage *ss, const char *ip, uint16_t port)
{
	struct sockaddr_in *sin = (void *)ss;

	memset(ss, 0, sizeof(*ss));
	sin->sin_family = AF_INET;
	inet_pton(AF_INET, ip, &sin->sin_addr);
	sin->sin_port = htons(port);
}

static void addr6(struct sockaddr_storage *ss, const char *ip, uint16_t port)
{
	struct sockaddr_in6 *sin6 = (void *)ss;

	memset(ss, 0, sizeof(*ss));
	sin6->sin6_family = AF_INET6;
	inet_pton(AF_INET6, ip, &sin6->sin6_addr);
	sin6->sin6_port = htons(port);
}

/* ----------------------------------------------------------- tests */

static void test_unknown(struct ktap *t)
{
	struct dmt_err err;
	struct dmt_nic *nic;

	nic = dmt_nic_open("dmt-nosuch0", &err);
	show_err(&err);
	check(t, !nic && err.code == -ENODEV && strstr(err.what, "dmt-nosuch0") &&
	      err.fix[0], "unknown interface: ENODEV naming it, with a fix");
	dmt_nic_close(nic);
	nic = dmt_nic_open("", &err);
	check(t, !nic && err.code == -EINVAL, "empty interface name: EINVAL");
	check(t, dmt_nic_get_state(NULL, NULL) == -EINVAL &&
	      dmt_nic_prepare_rx(NULL, 0, 1) == -EINVAL &&
	      dmt_nic_restore(NULL) == -EINVAL && !dmt_nic_error(NULL) &&
	      !dmt_nic_ifindex(NULL), "NULL handle: EINVAL, no crash");
	dmt_nic_close(NULL);
}

static void test_lo(struct ktap *t)
{
	struct dmt_nic_state st0, st1;
	const struct dmt_err *e;
	struct dmt_flow flow;
	struct dmt_err err;
	struct dmt_nic *nic;
	uint32_t loc = 12345;
	int ret;

	nic = dmt_nic_open("lo", &err);
	if (!check(t, nic && !err.code, "open lo")) {
		show_err(&err);
		return;
	}
	e = dmt_nic_error(nic);
	check(t, dmt_nic_ifindex(nic) == if_nametoindex("lo"), "lo: ifindex");
	ret = dmt_nic_get_state(nic, &st0);
	if (ret)
		show_err(e);
	else
		show_state("lo", &st0);
	check(t, !ret && st0.ifindex == dmt_nic_ifindex(nic) && st0.rx_queues >= 1 &&
	      !st0.has_rings && !st0.rss_indir_size && !st0.ntuple && !st0.xdp,
	      "lo: state reads (queues, no rings, no RSS, no ntuple, no XDP)");

	ret = dmt_nic_prepare_rx(nic, 0, 0);
	show_err(e);
	check(t, ret == -EINVAL && e->code == ret && e->fix[0],
	      "lo: prepare of 0 queues: EINVAL with a fix");
	ret = dmt_nic_prepare_rx(nic, 0, st0.rx_queues);
	show_err(e);
	check(t, ret == -EINVAL && strstr(e->fix, "ethtool -L lo combined"),
	      "lo: prepare of every queue: EINVAL, RSS needs one (fix: ethtool -L)");
	ret = dmt_nic_prepare_rx(nic, st0.rx_queues, 1);
	show_err(e);
	check(t, ret == -EINVAL && strstr(e->what, "RX queues"),
	      "lo: prepare of a queue past the last: EINVAL naming the count");

	memset(&flow, 0, sizeof(flow));
	addr4(&flow.peer, "127.0.0.2", 0);
	addr6(&flow.local, "::1", 5201);
	ret = dmt_nic_steer(nic, &flow, 0, &loc);
	show_err(e);
	check(t, ret == -EINVAL && e->fix[0], "lo: steer of a flow mixing IPv4 "
	      "and IPv6: EINVAL");
	addr4(&flow.local, "127.0.0.1", 5201);
	ret = dmt_nic_steer(nic, &flow, st0.rx_queues, &loc);
	show_err(e);
	check(t, ret == -EINVAL && strstr(e->what, "RX queues") && loc == 12345,
	      "lo: steer to queue %u: EINVAL naming the queue count", st0.rx_queues);
	ret = dmt_nic_steer(nic, &flow, 0, &loc);
	show_err(e);
	check(t, ret == -EOPNOTSUPP && e->fix[0] && loc == 12345,
	      "lo: steer: EOPNOTSUPP (no ntuple), with a fix");

	ret = dmt_nic_get_state(nic, &st1);
	check(t, !ret && state_eq(&st0, &st1), "lo: state unchanged");
	ret = dmt_nic_unsteer(nic, 0);
	show_err(e);
	check(t, ret == -ENOENT && e->fix[0],
	      "lo: unsteer of a rule this handle never put: ENOENT, with a fix");
	check(t, dmt_nic_restore(nic) == 0 && !e->code,
	      "lo: restore with nothing recorded: 0");
	dmt_nic_close(nic);
}

/* --------------------------------------------- veth in its own netns */

static void test_veth(struct ktap *t)
{
	static const char *const names[] = {
		"veth: state reads (4 RX queues, channels, no rings)",
		"veth: prepare fails with the kernel's extack and a fix",
		"veth: state unchanged after the failed prepare",
		"veth: restore: 0, nothing recorded",
		"veth: steer: EOPNOTSUPP with a fix",
		"veth: an XDP program shows in the state",
	};
	struct dmt_nic_state st0, st1;
	const struct dmt_err *e;
	struct dmt_flow flow;
	struct dmt_err err;
	struct dmt_nic *nic;
	uint32_t loc;
	int ret, prog;
	unsigned i;

	if (unshare(CLONE_NEWNET) < 0 ||
	    system("ip link add dmtv0 numrxqueues 4 numtxqueues 4 type veth "
		   "peer name dmtv1 && ip link set dmtv0 up && "
		   "ip link set dmtv1 up") != 0) {
		printf("# unshare or ip link: %s\n", strerror(errno));
		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			skip(t, names[i], "needs root and ip(8) to make a veth pair");
		return;
	}
	nic = dmt_nic_open("dmtv0", &err);
	if (!check(t, nic != NULL, "open veth dmtv0")) {
		show_err(&err);
		return;
	}
	e = dmt_nic_error(nic);
	ret = dmt_nic_get_state(nic, &st0);
	if (ret)
		show_err(e);
	else
		show_state("dmtv0", &st0);
	check(t, !ret && st0.rx_queues == 4 && st0.rx == 4 && st0.rx_max == 4 &&
	      !st0.has_rings && !st0.xdp, "%s", names[0]);

	ret = dmt_nic_prepare_rx(nic, 3, 1);
	show_err(e);
	check(t, ret == -EOPNOTSUPP &&
	      strstr(e->extack, "setting TCP data split is not supported") &&
	      strstr(e->fix, "header split"), "%s", names[1]);
	ret = dmt_nic_get_state(nic, &st1);
	check(t, !ret && state_eq(&st0, &st1), "%s", names[2]);
	check(t, !dmt_nic_restore(nic), "%s", names[3]);

	memset(&flow, 0, sizeof(flow));
	addr6(&flow.peer, "fd55::1", 0);
	addr6(&flow.local, "fd55::2", 5201);
	ret = dmt_nic_steer(nic, &flow, 3, &loc);
	show_err(e);
	check(t, ret == -EOPNOTSUPP && e->fix[0], "%s", names[4]);

	prog = bpf_xdp_pass();
	if (prog < 0 || xdp_set(dmt_nic_ifindex(nic), prog)) {
		printf("# XDP program: %s\n", strerror(errno));
		skip(t, names[5], "cannot load or attach an XDP program");
	} else {
		ret = dmt_nic_get_state(nic, &st1);
		check(t, !ret && st1.xdp, "%s", names[5]);
		xdp_set(dmt_nic_ifindex(nic), -1);
	}
	if (prog >= 0)
		close(prog);
	dmt_nic_close(nic);
	if (system("ip link del dmtv0"))
		printf("# ip link del dmtv0 failed\n");
}

/* ------------------------------------------------- the full cycle */

/* The rule the library put at loc, as the driver reports it. */
static bool rule_at(const char *ifname, uint32_t loc, uint32_t flow_type,
		    unsigned queue, const struct dmt_flow *f)
{
	struct ethtool_rxnfc one = { .cmd = ETHTOOL_GRXCLSRULE };
	int ret;

	one.fs.location = loc;
	ret = eth_ioctl(ifname, &one);
	if (ret) {
		printf("# rule %u: %s\n", loc, strerror(-ret));
		return false;
	}
	if ((one.fs.flow_type & ~(FLOW_EXT | FLOW_MAC_EXT)) != flow_type ||
	    one.fs.ring_cookie != queue)
		return false;
	if (flow_type == TCP_V4_FLOW) {
		const struct sockaddr_in *p = (const void *)&f->peer;
		const struct sockaddr_in *l = (const void *)&f->local;
		const struct ethtool_tcpip4_spec *h = &one.fs.h_u.tcp_ip4_spec;
		const struct ethtool_tcpip4_spec *m = &one.fs.m_u.tcp_ip4_spec;

		return h->ip4src == p->sin_addr.s_addr && m->ip4src == 0xffffffff &&
		       h->ip4dst == l->sin_addr.s_addr && m->ip4dst == 0xffffffff &&
		       (p->sin_port ? h->psrc == p->sin_port && m->psrc == 0xffff :
				      !m->psrc) &&
		       h->pdst == l->sin_port && m->pdst == 0xffff;
	} else {
		const struct sockaddr_in6 *p = (const void *)&f->peer;
		const struct sockaddr_in6 *l = (const void *)&f->local;
		const struct ethtool_tcpip6_spec *h = &one.fs.h_u.tcp_ip6_spec;
		const struct ethtool_tcpip6_spec *m = &one.fs.m_u.tcp_ip6_spec;
		static const uint32_t ones[4] = { ~0u, ~0u, ~0u, ~0u };

		return !memcmp(h->ip6src, &p->sin6_addr, 16) &&
		       !memcmp(m->ip6src, ones, 16) &&
		       !memcmp(h->ip6dst, &l->sin6_addr, 16) &&
		       !memcmp(m->ip6dst, ones, 16) &&
		       h->psrc == p->sin6_port && m->psrc == 0xffff &&
		       h->pdst == l->sin6_port && m->pdst == 0xffff;
	}
}

/* A rule made by someone else (ethtool -N ... loc ANY): its location. */
static int foreign_rule(const char *ifname, uint32_t *loc)
{
	struct ethtool_rxnfc ins = { .cmd = ETHTOOL_SRXCLSRLINS };
	int ret;

	ins.fs.flow_type = TCP_V4_FLOW;
	inet_pton(AF_INET, "198.51.100.7", &ins.fs.h_u.tcp_ip4_spec.ip4src);
	ins.fs.m_u.tcp_ip4_spec.ip4src = 0xffffffff;
	ins.fs.h_u.tcp_ip4_spec.pdst = htons(9);
	ins.fs.m_u.tcp_ip4_spec.pdst = 0xffff;
	ins.fs.ring_cookie = 0;
	ins.fs.location = RX_CLS_LOC_ANY;
	ret = eth_ioctl(ifname, &ins);
	*loc = ins.fs.location;
	return ret;
}

static int foreign_del(const char *ifname, uint32_t loc)
{
	struct ethtool_rxnfc del = { .cmd = ETHTOOL_SRXCLSRLDEL };

	del.fs.location = loc;
	return eth_ioctl(ifname, &del);
}

static void test_iface(struct ktap *t, const char *ifname)
{
	struct snap *s0, *sa, *s1;
	struct dmt_flow f4, f6;
	const struct dmt_err *e;
	struct dmt_err err;
	struct dmt_nic *nic;
	uint32_t loc4 = ~0u, loc6 = ~0u, loc, floc = ~0u, i, nrx, start;
	bool ok, foreign = false;
	int ret;

	s0 = calloc(3, sizeof(*s0));
	if (!s0) {
		check(t, false, "%s: memory", ifname);
		return;
	}
	sa = s0 + 1;
	s1 = s0 + 2;
	nic = dmt_nic_open(ifname, &err);
	if (!check(t, nic != NULL, "%s: open", ifname)) {
		show_err(&err);
		goto out;
	}
	e = dmt_nic_error(nic);
	if (!check(t, !take_snap(nic, ifname, s0), "%s: state, RSS table and "
		   "rules read", ifname))
		goto out_close;
	show_state(ifname, &s0->st);
	print_indir("RSS table", s0);
	nrx = s0->st.rx_queues;
	if (!check(t, nrx >= 2 && s0->st.has_rings && s0->st.rss_indir_size &&
		   s0->st.ntuple, "%s: offers >= 2 RX queues, rings, an RSS table "
		   "and ntuple", ifname))
		goto out_close;
	start = nrx - 1;

	/* someone else's rule: the library must leave it alone */
	ret = foreign_rule(ifname, &floc);
	if (ret)
		printf("# inserting a rule of our own: %s\n", strerror(-ret));
	foreign = !ret;
	if (take_snap(nic, ifname, sa))
		goto out_close;

	ret = dmt_nic_prepare_rx(nic, start, 1);
	if (ret)
		show_err(e);
	check(t, !ret, "%s: prepare_rx of queue %u", ifname, start);
	take_snap(nic, ifname, s1);
	show_state("prepared", &s1->st);
	print_indir("RSS table", s1);
	check(t, s1->st.tcp_data_split == 2 &&
	      (!s1->st.has_hds_thresh || s1->st.hds_thresh == 0),
	      "%s: tcp-data-split on, hds-thresh 0", ifname);
	for (i = 0, ok = s1->nindir == s0->nindir; ok && i < s1->nindir; i++)
		ok = s1->indir[i] < start && s1->indir[i] == i % start;
	check(t, ok, "%s: the RSS table spreads over queues 0..%u (equal %u)",
	      ifname, start - 1, start);

	memset(&f4, 0, sizeof(f4));
	addr4(&f4.peer, "10.55.0.1", 0);
	addr4(&f4.local, "10.55.0.2", 5201);
	ret = dmt_nic_steer(nic, &f4, start, &loc4);
	if (ret)
		show_err(e);
	check(t, !ret && rule_at(ifname, loc4, TCP_V4_FLOW, start, &f4),
	      "%s: tcp4 flow to queue %u: rule at %u as asked", ifname, start, loc4);
	memset(&f6, 0, sizeof(f6));
	addr6(&f6.peer, "fd55::1", 40000);
	addr6(&f6.local, "fd55::2", 5201);
	ret = dmt_nic_steer(nic, &f6, start, &loc6);
	if (ret)
		show_err(e);
	check(t, !ret && loc6 != loc4 && rule_at(ifname, loc6, TCP_V6_FLOW, start, &f6),
	      "%s: tcp6 flow to queue %u: rule at %u as asked", ifname, start, loc6);
	/* the tcp4 flow is over: its rule goes, the tcp6 one and the
	 * prepared queue stay; steered again, it comes back */
	ret = dmt_nic_unsteer(nic, loc4);
	if (ret)
		show_err(e);
	check(t, !ret && !rule_at(ifname, loc4, TCP_V4_FLOW, start, &f4) &&
	      rule_at(ifname, loc6, TCP_V6_FLOW, start, &f6),
	      "%s: unsteer the tcp4 rule at %u: gone, the tcp6 one kept", ifname, loc4);
	ret = dmt_nic_unsteer(nic, loc4);
	check(t, ret == -ENOENT, "%s: unsteer it again: ENOENT", ifname);
	ret = dmt_nic_steer(nic, &f4, start, &loc4);
	if (ret)
		show_err(e);
	check(t, !ret && rule_at(ifname, loc4, TCP_V4_FLOW, start, &f4),
	      "%s: tcp4 flow steered again: rule at %u", ifname, loc4);
	loc = 12345;
	ret = dmt_nic_steer(nic, &f4, nrx, &loc);
	show_err(e);
	check(t, ret == -EINVAL && strstr(e->what, "RX queues") && loc == 12345,
	      "%s: steer to queue %u: EINVAL naming the queue count", ifname, nrx);
	ret = dmt_nic_prepare_rx(nic, start, 1);
	if (ret)
		show_err(e);
	check(t, !ret, "%s: prepare_rx again: 0", ifname);

	ret = dmt_nic_restore(nic);
	if (ret)
		show_err(e);
	check(t, !ret && !e->code, "%s: restore: 0", ifname);
	take_snap(nic, ifname, s1);
	check(t, snap_eq(sa, s1), "%s: channels, rings, RSS table and rules as "
	      "before%s", ifname, foreign ? ", the other rule kept" : "");
	check(t, !dmt_nic_restore(nic), "%s: restore again: 0 (nothing left)",
	      ifname);

	/* part way: prepare the first queue, one rule, a failing steer, close */
	ret = dmt_nic_prepare_rx(nic, 0, 1);
	if (ret)
		show_err(e);
	take_snap(nic, ifname, s1);
	print_indir("RSS table", s1);
	for (i = 0, ok = !ret && s1->nindir; ok && i < s1->nindir; i++)
		ok = s1->indir[i] >= 1 && s1->indir[i] < nrx;
	check(t, ok, "%s: prepare_rx of queue 0: the RSS table spreads over "
	      "1..%u", ifname, nrx - 1);
	ret = dmt_nic_steer(nic, &f4, 0, &loc4);
	if (ret)
		show_err(e);
	check(t, !ret, "%s: tcp4 flow to queue 0", ifname);
	ret = dmt_nic_steer(nic, &f6, nrx + 7, &loc6);
	check(t, ret == -EINVAL, "%s: steer to queue %u fails part way", ifname,
	      nrx + 7);
	dmt_nic_close(nic);
	nic = dmt_nic_open(ifname, &err);
	if (!check(t, nic != NULL, "%s: open again", ifname)) {
		show_err(&err);
		goto out;
	}
	take_snap(nic, ifname, s1);
	check(t, snap_eq(sa, s1), "%s: close after a failure part way restored "
	      "everything", ifname);

	if (foreign) {
		ret = foreign_del(ifname, floc);
		take_snap(nic, ifname, s1);
		check(t, !ret && snap_eq(s0, s1), "%s: the other rule deleted: as at "
		      "the start", ifname);
	}
out_close:
	dmt_nic_close(nic);
out:
	free(s0);
}

int main(int argc, char **argv)
{
	struct ktap t = { 0 };
	const char *ifname = NULL;
	int fds_before, fds_after, opt;

	while ((opt = getopt(argc, argv, "i:h")) != -1) {
		switch (opt) {
		case 'i':
			ifname = optarg;
			break;
		default:
			fprintf(stderr, "usage: %s [-i IFNAME]\n", argv[0]);
			return 2;
		}
	}
	fds_before = count_fds();
	if (ifname)
		test_iface(&t, ifname);
	test_unknown(&t);
	test_lo(&t);
	test_veth(&t);
	fds_after = count_fds();
	if (!check(&t, fds_before >= 0 && fds_after == fds_before, "no fd leaked"))
		printf("# %d fds open at start, %d at the end\n", fds_before,
		       fds_after);
	return ktap_exit(&t);
}
