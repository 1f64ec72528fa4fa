// SPDX-License-Identifier: MIT
/*
 * devmem-tx: test sender for devmem TCP TX.  Reads stdin into a udmabuf and
 * sends it with sendmsg(MSG_ZEROCOPY) + SCM_DEVMEM_DMABUF from a bind-tx
 * binding, refilling a half of the buffer only after every send from it has
 * completed.  Used by the VM tests to push large validated streams into the
 * kernel's `ncdevmem -l -v N`, whose own client sends one line per sendmsg.
 *
 * usage: devmem-tx -f IFNAME -s SERVER_IP -p PORT [-c CLIENT_IP] [-z CHUNK] [-m BUF_MIB]
 * With -c the socket is bound to CLIENT_IP:PORT, as ncdevmem's client does
 * (its server steers the 5-tuple with that source port).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/dma-buf.h>
#include <linux/errqueue.h>
#include <linux/genetlink.h>
#include <linux/udmabuf.h>
#include <libmnl/libmnl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dmt-uapi.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

struct ctl {
	int nl;
	uint16_t family;
	uint32_t seq;
	uint32_t dmabuf_id;
	char extack[256];
};

static int attr_cb_family(const struct nlattr *a, void *data)
{
	if (mnl_attr_get_type(a) == CTRL_ATTR_FAMILY_ID)
		*(uint16_t *)data = mnl_attr_get_u16(a);
	return MNL_CB_OK;
}

static int family_cb(const struct nlmsghdr *nlh, void *data)
{
	return mnl_attr_parse(nlh, sizeof(struct genlmsghdr), attr_cb_family, data);
}

static int bind_cb_attr(const struct nlattr *a, void *data)
{
	if (mnl_attr_get_type(a) == NETDEV_A_DMABUF_ID)
		*(uint32_t *)data = mnl_attr_get_u32(a);
	return MNL_CB_OK;
}

static int bind_cb(const struct nlmsghdr *nlh, void *data)
{
	return mnl_attr_parse(nlh, sizeof(struct genlmsghdr), bind_cb_attr, data);
}

static int extack_cb(const struct nlattr *a, void *data)
{
	if (mnl_attr_get_type(a) == NLMSGERR_ATTR_MSG)
		snprintf(data, 256, "%s", mnl_attr_get_str(a));
	return MNL_CB_OK;
}

/* One request, one reply: returns 0 or -errno, extack text in c->extack. */
static int transact(struct ctl *c, struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	int n;

	nlh->nlmsg_seq = ++c->seq;
	if (send(c->nl, nlh, nlh->nlmsg_len, 0) < 0)
		return -errno;
	for (;;) {
		n = recv(c->nl, buf, sizeof(buf), 0);
		if (n < 0)
			return -errno;
		for (struct nlmsghdr *m = (void *)buf; mnl_nlmsg_ok(m, n); m = mnl_nlmsg_next(m, &n)) {
			if (m->nlmsg_seq != c->seq)
				continue;
			if (m->nlmsg_type == NLMSG_ERROR) {
				struct nlmsgerr *e = mnl_nlmsg_get_payload(m);

				if (m->nlmsg_flags & NLM_F_ACK_TLVS)
					mnl_attr_parse(m, sizeof(*e), extack_cb, c->extack);
				return e->error;
			}
			if (cb && cb(m, data) < 0)
				return -EINVAL;
		}
	}
}

static int netlink_open(struct ctl *c)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct genlmsghdr *g;
	struct nlmsghdr *nlh;
	int one = 1, err;

	c->nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
	if (c->nl < 0)
		return -errno;
	setsockopt(c->nl, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	setsockopt(c->nl, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = GENL_ID_CTRL;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->cmd = CTRL_CMD_GETFAMILY;
	g->version = 1;
	mnl_attr_put_strz(nlh, CTRL_ATTR_FAMILY_NAME, "netdev");
	err = transact(c, nlh, family_cb, &c->family);
	if (!err && !c->family)
		err = -ENOENT;
	return err;
}

static int bind_tx(struct ctl *c, unsigned int ifindex, int fd)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct genlmsghdr *g;
	struct nlmsghdr *nlh;

	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = c->family;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->cmd = NETDEV_CMD_BIND_TX;
	g->version = 1;
	mnl_attr_put_u32(nlh, NETDEV_A_DMABUF_IFINDEX, ifindex);
	mnl_attr_put_u32(nlh, NETDEV_A_DMABUF_FD, fd);
	return transact(c, nlh, bind_cb, &c->dmabuf_id);
}

static int buf_sync(int fd, uint64_t flags)
{
	struct dma_buf_sync s = { .flags = flags };

	return ioctl(fd, DMA_BUF_IOCTL_SYNC, &s) ? -errno : 0;
}

/* Completion state: done[] per notification id (ids start at 0). */
struct compl {
	uint8_t *done;
	uint32_t cap;
	uint64_t completions, copied;
};

static int drain_errqueue(int fd, struct compl *cp, int timeout_ms)
{
	char control[128];
	struct pollfd p = { .fd = fd, .events = 0 };
	int got = 0;

	if (poll(&p, 1, timeout_ms) < 0)
		return -errno;
	for (;;) {
		struct msghdr msg = { .msg_control = control,
				      .msg_controllen = sizeof(control) };
		struct sock_extended_err *ee;
		struct cmsghdr *cm;

		if (recvmsg(fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) {
			if (errno == EAGAIN)
				return got;
			return -errno;
		}
		if (msg.msg_flags & MSG_CTRUNC)
			return -ENOSPC;
		for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
			if (!((cm->cmsg_level == SOL_IP && cm->cmsg_type == IP_RECVERR) ||
			      (cm->cmsg_level == SOL_IPV6 && cm->cmsg_type == IPV6_RECVERR)))
				continue;
			ee = (void *)CMSG_DATA(cm);
			if (ee->ee_origin != SO_EE_ORIGIN_ZEROCOPY || ee->ee_errno)
				return -EPROTO;
			for (uint32_t id = ee->ee_info; ; id++) {
				if (id < cp->cap)
					cp->done[id] = 1;
				if (id == ee->ee_data)
					break;
			}
			cp->completions += ee->ee_data - ee->ee_info + 1;
			if (ee->ee_code == SO_EE_CODE_ZEROCOPY_COPIED)
				cp->copied++;
			got++;
		}
	}
}

static int wait_id(int fd, struct compl *cp, uint32_t id)
{
	for (int tries = 0; !cp->done[id]; tries++) {
		int r = drain_errqueue(fd, cp, 1000);

		if (r < 0)
			return r;
		if (tries > 30)
			return -ETIMEDOUT;
	}
	return 0;
}

/* Returns the sockaddr length, 0 when @s is neither IPv4 nor IPv6. */
static socklen_t parse_addr(const char *s, int port, struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	if (inet_pton(AF_INET, s, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		return sizeof(*sin);
	}
	if (inet_pton(AF_INET6, s, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		return sizeof(*sin6);
	}
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: devmem-tx -f IFNAME -s SERVER_IP -p PORT [-c CLIENT_IP] [-z CHUNK] [-m BUF_MIB]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *ifname = NULL, *server = NULL, *client = NULL;
	size_t bufsize = 16 << 20, chunk = 65536;
	struct ctl c = { .nl = -1 };
	struct compl cp = { 0 };
	struct sockaddr_storage ss = { 0 }, cs = { 0 };
	uint32_t last_id[2] = { 0, 0 }, next_id = 0;
	bool used[2] = { false, false };
	uint64_t total = 0, sends = 0;
	int port = 0, opt, one = 1, memfd, dmabuf, fd, err, half = 0;
	struct udmabuf_create create = { 0 };
	struct timespec t0, t1;
	unsigned int ifindex;
	socklen_t sslen;
	char *mem;

	while ((opt = getopt(argc, argv, "f:s:p:c:z:m:")) != -1) {
		switch (opt) {
		case 'f': ifname = optarg; break;
		case 's': server = optarg; break;
		case 'c': client = optarg; break;
		case 'p': port = atoi(optarg); break;
		case 'z': chunk = strtoul(optarg, NULL, 0); break;
		case 'm': bufsize = strtoul(optarg, NULL, 0) << 20; break;
		default: usage();
		}
	}
	if (!ifname || !server || port <= 0 || !chunk || bufsize < 2 * 4096)
		usage();
	ifindex = if_nametoindex(ifname);
	if (!ifindex) {
		fprintf(stderr, "devmem-tx: no interface %s\n", ifname);
		return 1;
	}

	memfd = memfd_create("devmem-tx", MFD_ALLOW_SEALING);
	if (memfd < 0 || ftruncate(memfd, bufsize) ||
	    fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK)) {
		perror("devmem-tx: memfd");
		return 1;
	}
	dmabuf = open("/dev/udmabuf", O_RDWR);
	create.memfd = memfd;
	create.flags = UDMABUF_FLAGS_CLOEXEC;
	create.size = bufsize;
	if (dmabuf < 0 || (fd = ioctl(dmabuf, UDMABUF_CREATE, &create)) < 0) {
		perror("devmem-tx: udmabuf");
		return 1;
	}
	close(dmabuf);
	dmabuf = fd;
	mem = mmap(NULL, bufsize, PROT_READ | PROT_WRITE, MAP_SHARED, dmabuf, 0);
	if (mem == MAP_FAILED) {
		perror("devmem-tx: mmap");
		return 1;
	}

	err = netlink_open(&c);
	if (!err)
		err = bind_tx(&c, ifindex, dmabuf);
	if (err) {
		fprintf(stderr, "devmem-tx: bind-tx on %s: %s%s%s\n", ifname,
			strerror(-err), c.extack[0] ? ": " : "", c.extack);
		return 1;
	}
	fprintf(stderr, "devmem-tx: got tx dmabuf id=%u\n", c.dmabuf_id);

	sslen = parse_addr(server, port, &ss);
	if (!sslen || (client && parse_addr(client, port, &cs) != sslen)) {
		fprintf(stderr, "devmem-tx: bad address %s\n", sslen ? client : server);
		return 2;
	}
	fd = socket(ss.ss_family, SOCK_STREAM, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, ifname, strlen(ifname) + 1) ||
	    setsockopt(fd, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof(one)) ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    (client && bind(fd, (struct sockaddr *)&cs, sslen)) ||
	    connect(fd, (struct sockaddr *)&ss, sslen)) {
		perror("devmem-tx: socket");
		return 1;
	}

	cp.cap = 1 << 22;
	cp.done = calloc(cp.cap, 1);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		size_t hsize = bufsize / 2, off = half * hsize, fill = 0;
		ssize_t n;

		/* reuse a half only after its last send completed */
		if (used[half] && (err = wait_id(fd, &cp, last_id[half]))) {
			fprintf(stderr, "devmem-tx: waiting for completion %u: %s\n",
				last_id[half], strerror(-err));
			return 1;
		}
		buf_sync(dmabuf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE);
		while (fill < hsize && (n = read(0, mem + off + fill, hsize - fill)) > 0)
			fill += n;
		buf_sync(dmabuf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE);
		if (!fill)
			break;

		for (size_t sent = 0; sent < fill;) {
			char control[CMSG_SPACE(sizeof(uint32_t))] = { 0 };
			struct iovec iov[64];
			struct msghdr msg = { .msg_iov = iov, .msg_control = control,
					      .msg_controllen = sizeof(control) };
			struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
			size_t pos = sent;

			cm->cmsg_level = SOL_SOCKET;
			cm->cmsg_type = SCM_DEVMEM_DMABUF;
			cm->cmsg_len = CMSG_LEN(sizeof(uint32_t));
			memcpy(CMSG_DATA(cm), &c.dmabuf_id, sizeof(uint32_t));
			while (msg.msg_iovlen < 64 && pos < fill) {
				size_t len = fill - pos < chunk ? fill - pos : chunk;

				iov[msg.msg_iovlen].iov_base = (void *)(off + pos);
				iov[msg.msg_iovlen++].iov_len = len;
				pos += len;
			}
			n = sendmsg(fd, &msg, MSG_ZEROCOPY);
			if (n < 0 && (errno == ENOBUFS || errno == EAGAIN)) {
				drain_errqueue(fd, &cp, 10);
				continue;
			}
			if (n < 0) {
				perror("devmem-tx: sendmsg");
				return 1;
			}
			last_id[half] = next_id++;
			used[half] = true;
			sent += n;
			total += n;
			sends++;
			if (next_id >= cp.cap) {
				fprintf(stderr, "devmem-tx: too many sends\n");
				return 1;
			}
			drain_errqueue(fd, &cp, 0);
		}
		half ^= 1;
	}
	for (int h = 0; h < 2; h++)
		if (used[h] && (err = wait_id(fd, &cp, last_id[h]))) {
			fprintf(stderr, "devmem-tx: final completion: %s\n", strerror(-err));
			return 1;
		}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	shutdown(fd, SHUT_WR);
	{
		char b;

		while (read(fd, &b, 1) > 0)
			;
	}
	double s = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;

	fprintf(stderr, "devmem-tx: %llu bytes, %llu sends, %llu completions (%llu copied), %.1f MB/s\n",
		(unsigned long long)total, (unsigned long long)sends,
		(unsigned long long)cp.completions, (unsigned long long)cp.copied,
		s > 0 ? total / s / 1e6 : 0.0);
	close(fd);
	munmap(mem, bufsize);
	close(dmabuf);
	close(memfd);
	close(c.nl);
	free(cp.done);
	return 0;
}
