// SPDX-License-Identifier: GPL-2.0
/*
 * uapi consts: the numbers in dmt-uapi.h against the headers in use.
 *
 * Built twice.  Against the host's headers it checks that every constant
 * those headers define equals the literal DMT_VAL_x recorded in dmt-uapi.h
 * (one they lack is dmt-uapi.h's own fallback, the same literal: named in a
 * comment line, not counted as a check).  With -DDMT_RIG_HEADERS -isystem $TOOLS/usr/include it includes
 * the rig kernel's own headers first, so dmt-uapi.h's fallbacks stay out, and
 * checks each DMT_VAL_x against the kernel's definition; a constant those
 * headers lack is a failure.
 */
#ifdef DMT_RIG_HEADERS
#include <linux/uio.h>
#define __iovec_defined 1	/* <linux/uio.h>'s struct iovec stands in for glibc's */
#include <linux/netdev.h>
#include <linux/udmabuf.h>
#include <linux/dma-buf.h>
#include <linux/dma-heap.h>
#include <linux/ethtool_netlink.h>
#include <asm-generic/socket.h>
#define MODE "rig headers"
#define RIG 1
#else
#define MODE "host headers"
#define RIG 0
#endif

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "dmt-uapi.h"

struct konst {
	const char *name;
	long long ours;		/* DMT_VAL_x */
	long long seen;		/* x as the headers in use (or dmt-uapi.h) define it */
	bool fallback;		/* x came from dmt-uapi.h */
};

#define K(x, fb) { #x, DMT_VAL_##x, (long long)(x), fb }

static const struct konst konsts[] = {
	K(SO_DEVMEM_LINEAR, DMT_FALLBACK_SOCKET),
	K(SO_DEVMEM_DMABUF, DMT_FALLBACK_SOCKET),
	K(SO_DEVMEM_DONTNEED, DMT_FALLBACK_SOCKET),
	K(SCM_DEVMEM_LINEAR, DMT_FALLBACK_SOCKET),
	K(SCM_DEVMEM_DMABUF, DMT_FALLBACK_SOCKET),
	K(MSG_SOCK_DEVMEM, DMT_FALLBACK_MSG),
	K(NETDEV_CMD_DEV_GET, DMT_FALLBACK_NETDEV),
	K(NETDEV_CMD_QUEUE_GET, DMT_FALLBACK_NETDEV),
	K(NETDEV_CMD_BIND_RX, DMT_FALLBACK_NETDEV),
	K(NETDEV_CMD_BIND_TX, DMT_FALLBACK_NETDEV_TX),
	K(NETDEV_A_DMABUF_IFINDEX, DMT_FALLBACK_NETDEV),
	K(NETDEV_A_DMABUF_QUEUES, DMT_FALLBACK_NETDEV),
	K(NETDEV_A_DMABUF_FD, DMT_FALLBACK_NETDEV),
	K(NETDEV_A_DMABUF_ID, DMT_FALLBACK_NETDEV),
	K(NETDEV_A_DMABUF_RX_PAGE_SIZE, DMT_FALLBACK_NETDEV_RX_PAGE),
	K(NETDEV_A_DEV_IFINDEX, DMT_FALLBACK_NETDEV),
	K(NETDEV_A_DEV_XDP_FEATURES, DMT_FALLBACK_NETDEV),
	K(NETDEV_A_DEV_XDP_ZC_MAX_SEGS, DMT_FALLBACK_NETDEV),
	K(NETDEV_A_DEV_XDP_RX_METADATA_FEATURES, DMT_FALLBACK_NETDEV),
	K(NETDEV_A_DEV_XSK_FEATURES, DMT_FALLBACK_NETDEV),
	K(NETDEV_A_QUEUE_ID, DMT_FALLBACK_NETDEV),
	K(NETDEV_A_QUEUE_IFINDEX, DMT_FALLBACK_NETDEV),
	K(NETDEV_A_QUEUE_TYPE, DMT_FALLBACK_NETDEV),
	K(NETDEV_A_QUEUE_NAPI_ID, DMT_FALLBACK_NETDEV),
	K(NETDEV_A_QUEUE_DMABUF, DMT_FALLBACK_NETDEV),
	K(NETDEV_A_QUEUE_IO_URING, DMT_FALLBACK_NETDEV_IO_URING),
	K(NETDEV_QUEUE_TYPE_RX, DMT_FALLBACK_NETDEV),
	K(NETDEV_QUEUE_TYPE_TX, DMT_FALLBACK_NETDEV),
	K(ETHTOOL_A_RINGS_TCP_DATA_SPLIT, DMT_FALLBACK_ETHTOOL_SPLIT),
	K(ETHTOOL_A_RINGS_HDS_THRESH, DMT_FALLBACK_ETHTOOL_HDS),
	K(ETHTOOL_A_RINGS_HDS_THRESH_MAX, DMT_FALLBACK_ETHTOOL_HDS),
	K(UDMABUF_CREATE, DMT_FALLBACK_UDMABUF),
	K(DMA_BUF_IOCTL_SYNC, DMT_FALLBACK_DMABUF),
	K(DMA_HEAP_IOCTL_ALLOC, DMT_FALLBACK_DMA_HEAP),
};

/* Layout from the contract, section 1.2. */
struct layout {
	const char *what;
	size_t seen, want;
};

#define SIZE(s, n) { "sizeof(struct " #s ")", sizeof(struct s), n }
#define OFF(s, f, n) { "offsetof(struct " #s ", " #f ")", offsetof(struct s, f), n }

static const struct layout layouts[] = {
	SIZE(dmabuf_cmsg, 24),
	OFF(dmabuf_cmsg, frag_offset, 0),
	OFF(dmabuf_cmsg, frag_size, 8),
	OFF(dmabuf_cmsg, frag_token, 12),
	OFF(dmabuf_cmsg, dmabuf_id, 16),
	OFF(dmabuf_cmsg, flags, 20),
	SIZE(dmabuf_token, 8),
	OFF(dmabuf_token, token_start, 0),
	OFF(dmabuf_token, token_count, 4),
};

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Flags and ioctl numbers read best in hex, ids in decimal. */
static const char *fmt_val(char *buf, size_t len, long long v)
{
	snprintf(buf, len, v >= 0x10000 ? "%#llx" : "%lld", v);
	return buf;
}

int main(void)
{
	const char *src = DMT_FALLBACK_STRUCTS ? "dmt-uapi.h" : "<linux/uio.h>";
	int n = 0, failed = 0;
	char a[24], b[24];

	printf("# %s, LINUX_VERSION_CODE %d.%d.%d\n", MODE, LINUX_VERSION_CODE >> 16,
	       (LINUX_VERSION_CODE >> 8) & 0xff, LINUX_VERSION_CODE & 0xff);

	if (!RIG) {
		printf("# not checked here (these headers lack them, dmt-uapi.h's own values "
		       "stand in; uapi-consts-rig checks them against the rig kernel's headers):");
		for (size_t i = 0; i < ARRAY_SIZE(konsts); i++)
			if (konsts[i].fallback)
				printf(" %s", konsts[i].name);
		putchar('\n');
	}

	for (size_t i = 0; i < ARRAY_SIZE(konsts); i++) {
		const struct konst *k = &konsts[i];
		bool ok = k->seen == k->ours;

		if (!RIG && k->fallback)
			continue;	/* x is DMT_VAL_x itself: nothing to compare */
		n++;
		if (RIG && k->fallback && !strcmp(k->name, "MSG_SOCK_DEVMEM")) {
			/* no header to compare with: tests/host/progs.t checks
			 * it against the kernel source's include/linux/socket.h */
			printf("# %s = %s: kernel-internal (include/linux/socket.h), in no UAPI "
			       "header\n", k->name, fmt_val(a, sizeof(a), k->ours));
			n--;
			continue;
		}
		if (!ok)
			printf("# %s: dmt-uapi.h records %s, the headers say %s\n", k->name,
			       fmt_val(a, sizeof(a), k->ours), fmt_val(b, sizeof(b), k->seen));
		if (RIG && k->fallback) {
			printf("# %s: the rig headers lack it\n", k->name);
			ok = false;
		}
		printf("%sok %d %s = %s (%s)\n", ok ? "" : "not ", n, k->name,
		       fmt_val(a, sizeof(a), k->ours), k->fallback ? "dmt-uapi.h" : "headers");
		failed += !ok;
	}

	for (size_t i = 0; i < ARRAY_SIZE(layouts); i++) {
		const struct layout *l = &layouts[i];
		bool ok = l->seen == l->want && !(RIG && DMT_FALLBACK_STRUCTS);

		n++;
		if (l->seen != l->want)
			printf("# %s is %zu, want %zu\n", l->what, l->seen, l->want);
		printf("%sok %d %s == %zu (%s)\n", ok ? "" : "not ", n, l->what,
		       l->want, src);
		failed += !ok;
	}
	if (RIG && DMT_FALLBACK_STRUCTS)
		printf("# the rig's <linux/uio.h> lacks struct dmabuf_cmsg/dmabuf_token\n");

	return failed ? 1 : 0;
}
