/* SPDX-License-Identifier: MIT */
/*
 * nic-common.h - what the NIC setup tests (nic-setup, nic-undo) share: the
 * NIC state read without the library (the ethtool ioctl: RSS indirection
 * table, ntuple rules), a netlink request with its ack (libmnl), and a
 * generic-mode XDP program attached and detached.
 */
#ifndef NIC_COMMON_H
#define NIC_COMMON_H

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/bpf.h>
#include <linux/ethtool.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/sockios.h>

#include "devmemtcp.h"
#include "ktap.h"

#define MAX_RULES 256
#define MAX_INDIR 4096

static inline void show_err(const struct dmt_err *err)
{
	char line[768];

	printf("# %s\n", dmt_err_str(err, line, sizeof(line)));
}

/* ------------------------------------------- raw ethtool, to compare */

static inline int eth_ioctl(const char *ifname, void *data)
{
	struct ifreq ifr;
	int fd, ret;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	ifr.ifr_data = data;
	ret = ioctl(fd, SIOCETHTOOL, &ifr) < 0 ? -errno : 0;
	close(fd);
	return ret;
}

/* The RSS indirection table (none: *n 0, returns 0). */
static inline int read_indir(const char *ifname, uint32_t *tab, uint32_t *n)
{
	struct {
		struct ethtool_rxfh_indir h;
		uint32_t ring[MAX_INDIR];
	} ind = { .h = { .cmd = ETHTOOL_GRXFHINDIR, .size = MAX_INDIR } };
	int ret;

	*n = 0;
	ret = eth_ioctl(ifname, &ind);
	if (ret == -EOPNOTSUPP)
		return 0;
	if (ret)
		return ret;
	*n = ind.h.size;
	memcpy(tab, ind.ring, *n * sizeof(uint32_t));
	return 0;
}

/* Every ntuple rule, in the order of their locations (none: *n 0). */
static inline int read_rules(const char *ifname, struct ethtool_rx_flow_spec *rules,
			     uint32_t *n)
{
	/* rule_locs starts inside the struct's tail padding: one buffer */
	uint64_t buf[(sizeof(struct ethtool_rxnfc) + MAX_RULES * 4) / 8 + 1];
	struct ethtool_rxnfc *all = (void *)buf;
	uint32_t i;
	int ret;

	*n = 0;
	memset(buf, 0, sizeof(buf));
	all->cmd = ETHTOOL_GRXCLSRLALL;
	all->rule_cnt = MAX_RULES;
	ret = eth_ioctl(ifname, all);
	if (ret == -EOPNOTSUPP)
		return 0;
	if (ret)
		return ret;
	for (i = 0; i < all->rule_cnt && i < MAX_RULES; i++) {
		struct ethtool_rxnfc one = { .cmd = ETHTOOL_GRXCLSRULE };

		one.fs.location = all->rule_locs[i];
		ret = eth_ioctl(ifname, &one);
		if (ret)
			return ret;
		rules[i] = one.fs;
	}
	*n = i;
	return 0;
}

/* ---------------------------------------------------------- netlink */

/* Send nlh on nl and read the answers up to the ack: 0 or -errno. */
static inline int nl_do(struct mnl_socket *nl, struct nlmsghdr *nlh, mnl_cb_t cb, void *arg)
{
	char buf[8192] __attribute__((aligned(8)));
	unsigned portid = mnl_socket_get_portid(nl);
	int n, ret = 0;

	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	do {
		n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (n < 0)
			return -errno;
		ret = mnl_cb_run(buf, n, nlh->nlmsg_seq, portid, cb, arg);
	} while (ret > 0);
	return ret < 0 ? -errno : 0;
}

/* ------------------------------------------------------------------ XDP */

/* An XDP program that passes every packet: its fd, or -1 (errno). */
static inline int bpf_xdp_pass(void)
{
	struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0,
		  .imm = XDP_PASS },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	union bpf_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.prog_type = BPF_PROG_TYPE_XDP;
	attr.insns = (uintptr_t)insns;
	attr.insn_cnt = 2;
	attr.license = (uintptr_t)"MIT";
	return syscall(__NR_bpf, BPF_PROG_LOAD, &attr, sizeof(attr));
}

/* Attach (fd >= 0) or detach (fd -1) a generic-mode (single-buffer) XDP
 * program: 0 or -errno (the kernel's refusal). */
static inline int xdp_set(unsigned ifindex, int fd)
{
	char buf[512] __attribute__((aligned(8)));
	struct mnl_socket *nl;
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifm;
	struct nlattr *nest;
	int ret = -EIO;

	nl = mnl_socket_open(NETLINK_ROUTE);
	if (!nl || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0)
		goto out;
	memset(buf, 0, sizeof(buf));
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_SETLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = time(NULL);
	ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	ifm->ifi_family = AF_UNSPEC;
	ifm->ifi_index = ifindex;
	nest = mnl_attr_nest_start(nlh, IFLA_XDP);
	mnl_attr_put_u32(nlh, IFLA_XDP_FD, fd);
	mnl_attr_put_u32(nlh, IFLA_XDP_FLAGS, XDP_FLAGS_SKB_MODE);
	mnl_attr_nest_end(nlh, nest);
	ret = nl_do(nl, nlh, NULL, NULL);
out:
	if (nl)
		mnl_socket_close(nl);
	return ret;
}

#endif /* NIC_COMMON_H */
