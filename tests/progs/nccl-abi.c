// SPDX-License-Identifier: MIT
/*
 * nccl-abi: every offset, size and constant of NCCL's net-plugin ABI that
 * nccl/nccl_net.h declares and the plugin relies on, against the numbers
 * NVIDIA/nccl's own headers give on an LP64 machine (x86-64, aarch64).
 * Each expected value is written as a number, with the upstream file and
 * commit it comes from:
 *   P = plugins/net/example/nccl/  (@56a0c229: net_v8..v11.h, common.h;
 *       @51c58fd6: net.h, net_device.h; @b3aeda4a: net_v12.h)
 *   E = ext-net/example/nccl/err.h (@55b1d8ab)
 *   U = src/device/network/unpack/unpack_defs.h (@56a0c229)
 * KTAP output, one line per check.
 */
#include <stddef.h>
#include <stdio.h>

#include "ktap.h"
#include "nccl_net.h"
#include "../../nccl/plugin.h"

static struct ktap t;

#define EQ(expr, want, where) \
	check(&t, (long long)(expr) == (long long)(want), "%s == %lld (%s; got %lld)", #expr, \
	      (long long)(want), where, (long long)(expr))
#define OFF(type, field, want, where) EQ(offsetof(type, field), want, where)

int main(void)
{
	if (sizeof(void *) != 8) {
		skip(&t, "nccl ABI layouts", "the expected numbers are LP64's");
		return ktap_exit(&t);
	}

	/* constants */
	EQ(NCCL_NET_HANDLE_MAXSIZE, 128, "P net.h");
	EQ(NCCL_NET_MAX_REQUESTS, 32, "P net.h");
	EQ(NCCL_PTR_HOST, 0x1, "P net.h");
	EQ(NCCL_PTR_CUDA, 0x2, "P net.h");
	EQ(NCCL_PTR_DMABUF, 0x4, "P net.h");
	EQ(NCCL_NET_MAX_DEVS_PER_NIC, 4, "P net.h");
	EQ(NCCL_NET_MAX_DEVS_PER_NIC_V12, 8, "P net_v12.h");
	EQ(NCCL_NET_OPTIONAL_RECV_COMPLETION, 0x1, "P net.h");
	EQ(NCCL_NET_DEVICE_UNPACK_VERSION, 0x7, "P net_device.h");
	EQ(NCCL_NET_DEVICE_HOST, 0, "P net_device.h");
	EQ(NCCL_NET_DEVICE_UNPACK, 1, "P net_device.h");
	EQ(ncclSuccess, 0, "E err.h");
	EQ(ncclSystemError, 2, "E err.h");
	EQ(ncclInternalError, 3, "E err.h");
	EQ(ncclInvalidArgument, 4, "E err.h");
	EQ(ncclRemoteError, 6, "E err.h");
	EQ(NCCL_LOG_WARN, 2, "P common.h");
	EQ(NCCL_LOG_INFO, 3, "P common.h");
	EQ(NCCL_INIT, 1, "P common.h");
	EQ(NCCL_NET, 16, "P common.h");
	EQ(sizeof(ncclNetDeviceType), 4, "P net_device.h enum");

	/* the device handle, one layout v7..v12 */
	OFF(ncclNetDeviceHandle_v8_t, netDeviceType, 0, "P net_device.h");
	OFF(ncclNetDeviceHandle_v8_t, netDeviceVersion, 4, "P net_device.h");
	OFF(ncclNetDeviceHandle_v8_t, handle, 8, "P net_device.h");
	OFF(ncclNetDeviceHandle_v8_t, size, 16, "P net_device.h");
	OFF(ncclNetDeviceHandle_v8_t, needsProxyProgress, 24, "P net_device.h");
	EQ(sizeof(ncclNetDeviceHandle_v8_t), 32, "P net_device.h");

	/* UNPACK */
	EQ(sizeof(union dmt_nccl_loadmeta), 16, "U loadMeta");
	EQ(_Alignof(union dmt_nccl_loadmeta), 16, "U loadMeta alignas(16)");
	OFF(union dmt_nccl_loadmeta, src_off, 0, "U loadMeta");
	OFF(union dmt_nccl_loadmeta, len, 4, "U loadMeta");
	OFF(union dmt_nccl_loadmeta, dst_off, 8, "U loadMeta");
	EQ(NCCL_NET_DEVICE_UNPACK_MAX_QUEUE_DEPTH, 16, "U");
	EQ(NET_UNPACK_MAX_SLICE_SIZE, 4194304, "U");
	EQ(SLICE_PAGE_SIZE, 4096, "U");
	EQ(NET_UNPACK_MAX_SLICE_PAGES, 2048, "U");
	OFF(struct dmt_nccl_unpack_meta, mem, 0, "U netUnpackMeta");
	OFF(struct dmt_nccl_unpack_meta, cnt, 524288, "U netUnpackMeta");
	EQ(sizeof(struct dmt_nccl_unpack_meta), 524416, "U netUnpackMeta");
	OFF(struct dmt_nccl_unpack_handle, meta, 0, "U unpackNetDeviceHandle");
	OFF(struct dmt_nccl_unpack_handle, bounce_buf, 8, "U unpackNetDeviceHandle");
	OFF(struct dmt_nccl_unpack_handle, head, 16, "U unpackNetDeviceHandle");
	EQ(sizeof(struct dmt_nccl_unpack_handle), 24, "U unpackNetDeviceHandle");

	/* properties */
	OFF(ncclNetProperties_v8_t, name, 0, "P net_v8.h");
	OFF(ncclNetProperties_v8_t, pciPath, 8, "P net_v8.h");
	OFF(ncclNetProperties_v8_t, guid, 16, "P net_v8.h");
	OFF(ncclNetProperties_v8_t, ptrSupport, 24, "P net_v8.h");
	OFF(ncclNetProperties_v8_t, regIsGlobal, 28, "P net_v8.h");
	OFF(ncclNetProperties_v8_t, speed, 32, "P net_v8.h");
	OFF(ncclNetProperties_v8_t, port, 36, "P net_v8.h");
	OFF(ncclNetProperties_v8_t, latency, 40, "P net_v8.h");
	OFF(ncclNetProperties_v8_t, maxComms, 44, "P net_v8.h");
	OFF(ncclNetProperties_v8_t, maxRecvs, 48, "P net_v8.h");
	OFF(ncclNetProperties_v8_t, netDeviceType, 52, "P net_v8.h");
	OFF(ncclNetProperties_v8_t, netDeviceVersion, 56, "P net_v8.h");
	EQ(sizeof(ncclNetProperties_v8_t), 64, "P net_v8.h");

	OFF(ncclNetProperties_v9_t, forceFlush, 32, "P net_v9.h");
	OFF(ncclNetProperties_v9_t, speed, 36, "P net_v9.h");
	OFF(ncclNetProperties_v9_t, port, 40, "P net_v9.h");
	OFF(ncclNetProperties_v9_t, latency, 44, "P net_v9.h");
	OFF(ncclNetProperties_v9_t, maxComms, 48, "P net_v9.h");
	OFF(ncclNetProperties_v9_t, maxRecvs, 52, "P net_v9.h");
	OFF(ncclNetProperties_v9_t, netDeviceType, 56, "P net_v9.h");
	OFF(ncclNetProperties_v9_t, netDeviceVersion, 60, "P net_v9.h");
	OFF(ncclNetProperties_v9_t, vProps, 64, "P net_v9.h");
	EQ(sizeof(ncclNetVDeviceProps_v9_t), 20, "P net_v9.h");
	OFF(ncclNetProperties_v9_t, maxP2pBytes, 88, "P net_v9.h");
	OFF(ncclNetProperties_v9_t, maxCollBytes, 96, "P net_v9.h");
	EQ(sizeof(ncclNetProperties_v9_t), 104, "P net_v9.h");
	EQ(sizeof(ncclNetProperties_v10_t), 104, "P net_v10.h");
	OFF(ncclNetProperties_v10_t, maxCollBytes, 96, "P net_v10.h");

	OFF(ncclNetProperties_v11_t, vProps, 64, "P net_v11.h");
	OFF(ncclNetProperties_v11_t, maxP2pBytes, 88, "P net_v11.h");
	OFF(ncclNetProperties_v11_t, maxCollBytes, 96, "P net_v11.h");
	OFF(ncclNetProperties_v11_t, maxMultiRequestSize, 104, "P net_v11.h");
	EQ(sizeof(ncclNetProperties_v11_t), 112, "P net_v11.h");

	EQ(sizeof(ncclNetVDeviceProps_v12_t), 36, "P net_v12.h");
	OFF(ncclNetProperties_v12_t, vProps, 64, "P net_v12.h");
	OFF(ncclNetProperties_v12_t, maxP2pBytes, 104, "P net_v12.h");
	OFF(ncclNetProperties_v12_t, maxCollBytes, 112, "P net_v12.h");
	OFF(ncclNetProperties_v12_t, maxMultiRequestSize, 120, "P net_v12.h");
	OFF(ncclNetProperties_v12_t, railId, 124, "P net_v12.h");
	OFF(ncclNetProperties_v12_t, planeId, 126, "P net_v12.h");
	EQ(sizeof(ncclNetProperties_v12_t), 128, "P net_v12.h");

	/* comm config and attributes */
	OFF(ncclNetCommConfig_v10_t, trafficClass, 0, "P net_v10.h");
	EQ(sizeof(ncclNetCommConfig_v11_t), 4, "P net_v11.h");
	EQ(sizeof(ncclNetCommAttr_v11_t), 16, "P net_v11.h");
	OFF(ncclNetAttr_v11_t, recvCommAttr, 16, "P net_v11.h");
	OFF(ncclNetAttr_v11_t, op, 32, "P net_v11.h");
	OFF(ncclNetAttr_v11_t, proto, 40, "P net_v11.h");
	EQ(sizeof(ncclNetAttr_v11_t), 44, "P net_v11.h");

	/* function tables: a name, then one pointer per call in this order */
#define TABLE(T, where)                             \
	OFF(T, name, 0, where);                     \
	OFF(T, init, 8, where);                     \
	OFF(T, devices, 16, where);                 \
	OFF(T, getProperties, 24, where);           \
	OFF(T, listen, 32, where);                  \
	OFF(T, connect, 40, where);                 \
	OFF(T, accept, 48, where);                  \
	OFF(T, regMr, 56, where);                   \
	OFF(T, regMrDmaBuf, 64, where);             \
	OFF(T, deregMr, 72, where);                 \
	OFF(T, isend, 80, where);                   \
	OFF(T, irecv, 88, where);                   \
	OFF(T, iflush, 96, where);                  \
	OFF(T, test, 104, where);                   \
	OFF(T, closeSend, 112, where);              \
	OFF(T, closeRecv, 120, where);              \
	OFF(T, closeListen, 128, where);            \
	OFF(T, getDeviceMr, 136, where);            \
	OFF(T, irecvConsumed, 144, where)
	TABLE(ncclNet_v8_t, "P net_v8.h");
	EQ(sizeof(ncclNet_v8_t), 152, "P net_v8.h");
	TABLE(ncclNet_v9_t, "P net_v9.h");
	OFF(ncclNet_v9_t, makeVDevice, 152, "P net_v9.h");
	EQ(sizeof(ncclNet_v9_t), 160, "P net_v9.h");
	TABLE(ncclNet_v10_t, "P net_v10.h");
	OFF(ncclNet_v10_t, makeVDevice, 152, "P net_v10.h");
	EQ(sizeof(ncclNet_v10_t), 160, "P net_v10.h");
	TABLE(ncclNet_v11_t, "P net_v11.h");
	OFF(ncclNet_v11_t, makeVDevice, 152, "P net_v11.h");
	OFF(ncclNet_v11_t, finalize, 160, "P net_v11.h");
	OFF(ncclNet_v11_t, setNetAttr, 168, "P net_v11.h");
	EQ(sizeof(ncclNet_v11_t), 176, "P net_v11.h");
	TABLE(ncclNet_v12_t, "P net_v12.h");
	OFF(ncclNet_v12_t, finalize, 160, "P net_v12.h");
	OFF(ncclNet_v12_t, setNetAttr, 168, "P net_v12.h");
	EQ(sizeof(ncclNet_v12_t), 176, "P net_v12.h");

	/* ours: the listen handle NCCL's bootstrap carries */
	check(&t, sizeof(struct dn_handle) <= NCCL_NET_HANDLE_MAXSIZE,
	      "our listen handle (%zu bytes) fits NCCL_NET_HANDLE_MAXSIZE", sizeof(struct dn_handle));
	return ktap_exit(&t);
}
