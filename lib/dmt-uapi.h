/* SPDX-License-Identifier: MIT */
/*
 * dmt-uapi.h - kernel UAPI numbers devmemtcp needs that Debian 12's headers
 * (linux-libc-dev 6.1) lack.  Values: the project's devmem contract (sections
 * 1.1-1.4) and include/uapi/linux/ethtool_netlink_generated.h of Linux 7.3.
 *
 * How the fallbacks decide:
 * - Every value is recorded literally in the DMT_VAL_x enum below,
 *   independent of any header, so tests/progs/uapi-consts.c can compare it
 *   with what the headers in use say.
 * - Macros (SO_*, SCM_*, MSG_*, ioctl numbers) get a fallback under #ifndef.
 * - Enum constants (NETDEV_*, ETHTOOL_A_*) cannot be seen by #ifndef.  This
 *   header includes the UAPI header itself when it exists, then defines a
 *   fallback macro only if the headers' LINUX_VERSION_CODE is older than a
 *   release known to carry the value.  A fallback macro that follows the
 *   header's own enumerator has the same value and is harmless, so the gates
 *   lean late.  Include <linux/netdev.h> and <linux/ethtool_netlink.h>
 *   before this header or not at all (this header includes them).
 * - struct dmabuf_cmsg/dmabuf_token live in <linux/uio.h>, whose struct iovec
 *   clashes with glibc's, so this header does not include it.  A program that
 *   wants the kernel's definitions includes <linux/uio.h> first and defines
 *   __iovec_defined before any glibc header (as the kernel's ncdevmem does).
 * - DMT_FALLBACK_x is 1 where a group came from here, 0 where the headers
 *   had it.
 */
#ifndef DMT_UAPI_H
#define DMT_UAPI_H

#include <sys/socket.h>
#include <linux/types.h>
#include <linux/version.h>
#include <linux/udmabuf.h>
#include <linux/dma-buf.h>
#include <linux/dma-heap.h>
#if __has_include(<linux/netdev.h>)
#include <linux/netdev.h>
#endif
#include <linux/ethtool_netlink.h>

enum {
	DMT_VAL_SO_DEVMEM_LINEAR		= 78,
	DMT_VAL_SO_DEVMEM_DMABUF		= 79,
	DMT_VAL_SO_DEVMEM_DONTNEED		= 80,
	DMT_VAL_SCM_DEVMEM_LINEAR		= 78,
	DMT_VAL_SCM_DEVMEM_DMABUF		= 79,
	DMT_VAL_MSG_SOCK_DEVMEM			= 0x2000000,

	DMT_VAL_NETDEV_CMD_DEV_GET		= 1,
	DMT_VAL_NETDEV_CMD_QUEUE_GET		= 10,
	DMT_VAL_NETDEV_CMD_BIND_RX		= 13,
	DMT_VAL_NETDEV_CMD_BIND_TX		= 15,
	DMT_VAL_NETDEV_A_DMABUF_IFINDEX		= 1,
	DMT_VAL_NETDEV_A_DMABUF_QUEUES		= 2,
	DMT_VAL_NETDEV_A_DMABUF_FD		= 3,
	DMT_VAL_NETDEV_A_DMABUF_ID		= 4,
	DMT_VAL_NETDEV_A_DMABUF_RX_PAGE_SIZE	= 5,
	DMT_VAL_NETDEV_A_DEV_IFINDEX		= 1,
	DMT_VAL_NETDEV_A_DEV_XDP_FEATURES	= 3,
	DMT_VAL_NETDEV_A_DEV_XDP_ZC_MAX_SEGS	= 4,
	DMT_VAL_NETDEV_A_DEV_XDP_RX_METADATA_FEATURES = 5,
	DMT_VAL_NETDEV_A_DEV_XSK_FEATURES	= 6,
	DMT_VAL_NETDEV_A_QUEUE_ID		= 1,
	DMT_VAL_NETDEV_A_QUEUE_IFINDEX		= 2,
	DMT_VAL_NETDEV_A_QUEUE_TYPE		= 3,
	DMT_VAL_NETDEV_A_QUEUE_NAPI_ID		= 4,
	DMT_VAL_NETDEV_A_QUEUE_DMABUF		= 5,
	DMT_VAL_NETDEV_A_QUEUE_IO_URING		= 6,
	DMT_VAL_NETDEV_QUEUE_TYPE_RX		= 0,
	DMT_VAL_NETDEV_QUEUE_TYPE_TX		= 1,

	DMT_VAL_ETHTOOL_A_RINGS_TCP_DATA_SPLIT	= 11,
	DMT_VAL_ETHTOOL_A_RINGS_HDS_THRESH	= 17,
	DMT_VAL_ETHTOOL_A_RINGS_HDS_THRESH_MAX	= 18,

	DMT_VAL_UDMABUF_CREATE			= 0x40187542,
	DMT_VAL_DMA_BUF_IOCTL_SYNC		= 0x40086200,
	DMT_VAL_DMA_HEAP_IOCTL_ALLOC		= 0xc0184800,
};

/* Socket level (asm-generic numbers; x86_64, arm64, riscv). */
#ifndef SO_DEVMEM_LINEAR
#define DMT_FALLBACK_SOCKET 1
#define SO_DEVMEM_LINEAR	78
#define SCM_DEVMEM_LINEAR	SO_DEVMEM_LINEAR
#endif
#ifndef SO_DEVMEM_DMABUF
#define DMT_FALLBACK_SOCKET 1
#define SO_DEVMEM_DMABUF	79
#define SCM_DEVMEM_DMABUF	SO_DEVMEM_DMABUF
#endif
#ifndef SO_DEVMEM_DONTNEED
#define DMT_FALLBACK_SOCKET 1
#define SO_DEVMEM_DONTNEED	80
#endif
/* Kernel-internal (include/linux/socket.h); no UAPI header carries it. */
#ifndef MSG_SOCK_DEVMEM
#define DMT_FALLBACK_MSG 1
#define MSG_SOCK_DEVMEM		0x2000000
#endif

/* ioctls; all are in Debian 12's headers, kept for other libcs' headers. */
#ifndef UDMABUF_CREATE
#define DMT_FALLBACK_UDMABUF 1
#define UDMABUF_CREATE		0x40187542 /* _IOW('u', 0x42, udmabuf_create) */
#endif
#ifndef DMA_BUF_IOCTL_SYNC
#define DMT_FALLBACK_DMABUF 1
#define DMA_BUF_IOCTL_SYNC	0x40086200 /* _IOW('b', 0, dma_buf_sync) */
#endif
#ifndef DMA_HEAP_IOCTL_ALLOC
#define DMT_FALLBACK_DMA_HEAP 1
#define DMA_HEAP_IOCTL_ALLOC	0xc0184800 /* _IOWR('H', 0, dma_heap_allocation_data) */
#endif

/*
 * Generic netlink family "netdev": devmem RX arrived in 6.12, TX in 6.16.
 * DMT_NETDEV_HDR is the version of the <linux/netdev.h> in use, 0 if none.
 */
#ifdef NETDEV_FAMILY_NAME
#define DMT_NETDEV_HDR LINUX_VERSION_CODE
#else
#define DMT_NETDEV_HDR 0
#define NETDEV_FAMILY_NAME	"netdev"
#define NETDEV_FAMILY_VERSION	1
#endif
#ifndef NETDEV_MCGRP_MGMT
#define NETDEV_MCGRP_MGMT	"mgmt"
#define NETDEV_MCGRP_PAGE_POOL	"page-pool"
#endif
#if DMT_NETDEV_HDR < KERNEL_VERSION(6, 12, 0)
#define DMT_FALLBACK_NETDEV 1
#define NETDEV_CMD_BIND_RX	13
#define NETDEV_A_DMABUF_IFINDEX	1
#define NETDEV_A_DMABUF_QUEUES	2
#define NETDEV_A_DMABUF_FD	3
#define NETDEV_A_DMABUF_ID	4
#define NETDEV_CMD_DEV_GET	1
#define NETDEV_CMD_QUEUE_GET	10
#define NETDEV_A_DEV_IFINDEX	1
#define NETDEV_A_DEV_XDP_FEATURES	3
#define NETDEV_A_DEV_XDP_ZC_MAX_SEGS	4
#define NETDEV_A_DEV_XDP_RX_METADATA_FEATURES	5
#define NETDEV_A_DEV_XSK_FEATURES	6
#define NETDEV_A_QUEUE_ID	1
#define NETDEV_A_QUEUE_IFINDEX	2
#define NETDEV_A_QUEUE_TYPE	3
#define NETDEV_A_QUEUE_NAPI_ID	4
#define NETDEV_A_QUEUE_DMABUF	5
#define NETDEV_QUEUE_TYPE_RX	0
#define NETDEV_QUEUE_TYPE_TX	1
#endif
#if DMT_NETDEV_HDR < KERNEL_VERSION(6, 16, 0)
#define DMT_FALLBACK_NETDEV_TX 1
#define NETDEV_CMD_BIND_TX	15
#endif
/* bind-rx's rx-page-size: Linux 7.3 */
#if DMT_NETDEV_HDR < KERNEL_VERSION(7, 3, 0)
#define DMT_FALLBACK_NETDEV_RX_PAGE 1
#define NETDEV_A_DMABUF_RX_PAGE_SIZE	5
#endif
/* io_uring zcrx providers arrived in 6.15; gated at 6.16 with TX. */
#if DMT_NETDEV_HDR < KERNEL_VERSION(6, 16, 0)
#define DMT_FALLBACK_NETDEV_IO_URING 1
#define NETDEV_A_QUEUE_IO_URING	6
#endif

/* ethtool rings: tcp-data-split is in 6.1's header, hds-thresh and its max
 * came later (6.14 per the contract, gated at 6.16 to stay on the safe
 * side). */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 1, 0)
#define DMT_FALLBACK_ETHTOOL_SPLIT 1
#define ETHTOOL_A_RINGS_TCP_DATA_SPLIT	11
#endif
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 16, 0)
#define DMT_FALLBACK_ETHTOOL_HDS 1
#define ETHTOOL_A_RINGS_HDS_THRESH	17
#define ETHTOOL_A_RINGS_HDS_THRESH_MAX	18
#endif

/* include/uapi/linux/uio.h, 6.12 on; see the note at the top. */
#if !defined(__LINUX_UIO_H) || LINUX_VERSION_CODE < KERNEL_VERSION(6, 12, 0)
#define DMT_FALLBACK_STRUCTS 1
struct dmabuf_cmsg {
	__u64 frag_offset;	/* offset into the dma-buf */
	__u32 frag_size;
	__u32 frag_token;	/* for SO_DEVMEM_DONTNEED */
	__u32 dmabuf_id;	/* binding id */
	__u32 flags;		/* unused, 0 */
};

struct dmabuf_token {
	__u32 token_start;
	__u32 token_count;
};
#endif

#ifndef DMT_FALLBACK_SOCKET
#define DMT_FALLBACK_SOCKET 0
#endif
#ifndef DMT_FALLBACK_MSG
#define DMT_FALLBACK_MSG 0
#endif
#ifndef DMT_FALLBACK_UDMABUF
#define DMT_FALLBACK_UDMABUF 0
#endif
#ifndef DMT_FALLBACK_DMABUF
#define DMT_FALLBACK_DMABUF 0
#endif
#ifndef DMT_FALLBACK_DMA_HEAP
#define DMT_FALLBACK_DMA_HEAP 0
#endif
#ifndef DMT_FALLBACK_NETDEV
#define DMT_FALLBACK_NETDEV 0
#endif
#ifndef DMT_FALLBACK_NETDEV_TX
#define DMT_FALLBACK_NETDEV_TX 0
#endif
#ifndef DMT_FALLBACK_NETDEV_IO_URING
#define DMT_FALLBACK_NETDEV_IO_URING 0
#endif
#ifndef DMT_FALLBACK_NETDEV_RX_PAGE
#define DMT_FALLBACK_NETDEV_RX_PAGE 0
#endif
#ifndef DMT_FALLBACK_ETHTOOL_SPLIT
#define DMT_FALLBACK_ETHTOOL_SPLIT 0
#endif
#ifndef DMT_FALLBACK_ETHTOOL_HDS
#define DMT_FALLBACK_ETHTOOL_HDS 0
#endif
#ifndef DMT_FALLBACK_STRUCTS
#define DMT_FALLBACK_STRUCTS 0
#endif

#endif /* DMT_UAPI_H */
