/* SPDX-License-Identifier: MIT */
/*
 * nccl_net.h - the NCCL net-plugin ABI, versions 8 to 12, as this plugin
 * uses it.  Written from the layouts in NVIDIA/nccl (plugins/net/example/
 * nccl/net_v8.h .. net_v12.h, net_device.h, net.h, common.h; err.h from
 * ext-net/example/nccl; src/device/network/unpack/unpack_defs.h), not
 * copied.  tests/progs/nccl-abi.c checks every offset and size we rely on
 * against the numbers those headers give on x86-64.
 *
 * Version notes (what differs, oldest first):
 *   v8   init(logger); isend size int; irecv sizes int*
 *   v9   isend/irecv sizes size_t; properties gain forceFlush, vProps,
 *        maxP2pBytes, maxCollBytes; makeVDevice
 *   v10  init(logger, profiler); connect takes a comm config; isend and
 *        irecv take profiler handles
 *   v11  init(ctx*, commId, config, logger, profiler); listen and connect
 *        take ctx; properties gain maxMultiRequestSize; finalize,
 *        setNetAttr
 *   v12  (NVIDIA/nccl b3aeda4a, 2.30 development branch) as v11, with
 *        vProps of 8 devices and railId/planeId in the properties
 *   test() reports int sizes in every version.
 */
#ifndef DMT_NCCL_NET_H
#define DMT_NCCL_NET_H

#include <stddef.h>
#include <stdint.h>

/* err.h */
typedef enum {
	ncclSuccess = 0,
	ncclUnhandledCudaError = 1,
	ncclSystemError = 2,
	ncclInternalError = 3,
	ncclInvalidArgument = 4,
	ncclRemoteError = 6,
} ncclResult_t;

/* common.h: the logger NCCL hands to init */
typedef enum {
	NCCL_LOG_NONE = 0, NCCL_LOG_VERSION = 1, NCCL_LOG_WARN = 2,
	NCCL_LOG_INFO = 3, NCCL_LOG_ABORT = 4, NCCL_LOG_TRACE = 5,
} ncclDebugLogLevel;
/* subsystem flags: only the ones we log under */
#define NCCL_INIT 1
#define NCCL_NET 16
typedef void (*ncclDebugLogger_t)(ncclDebugLogLevel level, unsigned long flags,
				  const char *file, int line, const char *fmt, ...);
typedef ncclResult_t (*ncclProfilerCallback_t)(void **eHandle, int type, void *phandle,
					       int64_t pluginId, void *extData);

/* net.h */
#define NCCL_NET_HANDLE_MAXSIZE 128
#define NCCL_NET_OPTIONAL_RECV_COMPLETION 0x1
#define NCCL_PTR_HOST 0x1
#define NCCL_PTR_CUDA 0x2
#define NCCL_PTR_DMABUF 0x4
#define NCCL_NET_MAX_REQUESTS 32	/* in flight per comm */
#define NCCL_NET_MAX_DEVS_PER_NIC 4	/* v9 .. v11 */
#define NCCL_NET_MAX_DEVS_PER_NIC_V12 8
#define NCCL_NET_TRAFFIC_CLASS_UNDEF (-1)
#define NCCL_NET_ID_UNDEF (-1)

/* net_device.h */
#define NCCL_NET_DEVICE_INVALID_VERSION 0x0
#define NCCL_NET_MTU_SIZE 4096
/* NCCL compares getProperties' netDeviceVersion with its own build's value */
#define NCCL_NET_DEVICE_UNPACK_VERSION 0x7
typedef enum {
	NCCL_NET_DEVICE_HOST = 0,
	NCCL_NET_DEVICE_UNPACK = 1,
} ncclNetDeviceType;

/* One layout for v7 .. v12. */
typedef struct {
	ncclNetDeviceType netDeviceType;
	int netDeviceVersion;
	void *handle;		/* UNPACK: struct unpackNetDeviceHandle * */
	size_t size;
	int needsProxyProgress;
} ncclNetDeviceHandle_v8_t;
typedef ncclNetDeviceHandle_v8_t ncclNetDeviceHandle_v9_t;
typedef ncclNetDeviceHandle_v8_t ncclNetDeviceHandle_v10_t;
typedef ncclNetDeviceHandle_v8_t ncclNetDeviceHandle_v11_t;
typedef ncclNetDeviceHandle_v8_t ncclNetDeviceHandle_v12_t;

/* unpack_defs.h: what NCCL's device code reads for NCCL_NET_DEVICE_UNPACK */
#define NCCL_NET_DEVICE_UNPACK_MAX_QUEUE_DEPTH 16
#define NET_UNPACK_MAX_SLICE_SIZE 4194304	/* bytes per irecv slice */
#define SLICE_PAGE_SIZE 4096
#define NET_UNPACK_MAX_SLICE_PAGES (NET_UNPACK_MAX_SLICE_SIZE / SLICE_PAGE_SIZE * 2)

/* One copy: bounce_buf + src_off -> destination + dst_off, len bytes. */
union dmt_nccl_loadmeta {
	uint64_t r64[2];
	struct {
		uint32_t src_off;
		uint32_t len;
		uint64_t dst_off;
	};
} __attribute__((aligned(16)));

struct dmt_nccl_unpack_meta {	/* struct netUnpackMeta */
	union dmt_nccl_loadmeta mem[NCCL_NET_DEVICE_UNPACK_MAX_QUEUE_DEPTH]
				   [NET_UNPACK_MAX_SLICE_PAGES];
	uint64_t cnt[NCCL_NET_DEVICE_UNPACK_MAX_QUEUE_DEPTH];
};

struct dmt_nccl_unpack_handle {	/* struct unpackNetDeviceHandle */
	struct dmt_nccl_unpack_meta *meta;
	void *bounce_buf;
	uint64_t head;
};

/* ------------------------------------------------------------- v8 */
typedef struct {
	char *name;
	char *pciPath;
	uint64_t guid;
	int ptrSupport;
	int regIsGlobal;
	int speed;		/* Mb/s */
	int port;
	float latency;
	int maxComms;
	int maxRecvs;
	ncclNetDeviceType netDeviceType;
	int netDeviceVersion;
} ncclNetProperties_v8_t;

typedef struct {
	const char *name;
	ncclResult_t (*init)(ncclDebugLogger_t logFunction);
	ncclResult_t (*devices)(int *ndev);
	ncclResult_t (*getProperties)(int dev, ncclNetProperties_v8_t *props);
	ncclResult_t (*listen)(int dev, void *handle, void **listenComm);
	ncclResult_t (*connect)(int dev, void *handle, void **sendComm,
				ncclNetDeviceHandle_v8_t **sendDevComm);
	ncclResult_t (*accept)(void *listenComm, void **recvComm,
			       ncclNetDeviceHandle_v8_t **recvDevComm);
	ncclResult_t (*regMr)(void *comm, void *data, size_t size, int type, void **mhandle);
	ncclResult_t (*regMrDmaBuf)(void *comm, void *data, size_t size, int type,
				    uint64_t offset, int fd, void **mhandle);
	ncclResult_t (*deregMr)(void *comm, void *mhandle);
	ncclResult_t (*isend)(void *sendComm, void *data, int size, int tag, void *mhandle,
			      void **request);
	ncclResult_t (*irecv)(void *recvComm, int n, void **data, int *sizes, int *tags,
			      void **mhandles, void **request);
	ncclResult_t (*iflush)(void *recvComm, int n, void **data, int *sizes, void **mhandles,
			       void **request);
	ncclResult_t (*test)(void *request, int *done, int *sizes);
	ncclResult_t (*closeSend)(void *sendComm);
	ncclResult_t (*closeRecv)(void *recvComm);
	ncclResult_t (*closeListen)(void *listenComm);
	ncclResult_t (*getDeviceMr)(void *comm, void *mhandle, void **dptr_mhandle);
	ncclResult_t (*irecvConsumed)(void *recvComm, int n, void *request);
} ncclNet_v8_t;

/* ------------------------------------------------------------- v9 */
typedef struct {
	int ndevs;
	int devs[NCCL_NET_MAX_DEVS_PER_NIC];
} ncclNetVDeviceProps_v9_t;

typedef struct {
	char *name;
	char *pciPath;
	uint64_t guid;
	int ptrSupport;
	int regIsGlobal;
	int forceFlush;
	int speed;
	int port;
	float latency;
	int maxComms;
	int maxRecvs;
	ncclNetDeviceType netDeviceType;
	int netDeviceVersion;
	ncclNetVDeviceProps_v9_t vProps;
	size_t maxP2pBytes;
	size_t maxCollBytes;
} ncclNetProperties_v9_t;

typedef struct {
	const char *name;
	ncclResult_t (*init)(ncclDebugLogger_t logFunction);
	ncclResult_t (*devices)(int *ndev);
	ncclResult_t (*getProperties)(int dev, ncclNetProperties_v9_t *props);
	ncclResult_t (*listen)(int dev, void *handle, void **listenComm);
	ncclResult_t (*connect)(int dev, void *handle, void **sendComm,
				ncclNetDeviceHandle_v9_t **sendDevComm);
	ncclResult_t (*accept)(void *listenComm, void **recvComm,
			       ncclNetDeviceHandle_v9_t **recvDevComm);
	ncclResult_t (*regMr)(void *comm, void *data, size_t size, int type, void **mhandle);
	ncclResult_t (*regMrDmaBuf)(void *comm, void *data, size_t size, int type,
				    uint64_t offset, int fd, void **mhandle);
	ncclResult_t (*deregMr)(void *comm, void *mhandle);
	ncclResult_t (*isend)(void *sendComm, void *data, size_t size, int tag, void *mhandle,
			      void **request);
	ncclResult_t (*irecv)(void *recvComm, int n, void **data, size_t *sizes, int *tags,
			      void **mhandles, void **request);
	ncclResult_t (*iflush)(void *recvComm, int n, void **data, int *sizes, void **mhandles,
			       void **request);
	ncclResult_t (*test)(void *request, int *done, int *sizes);
	ncclResult_t (*closeSend)(void *sendComm);
	ncclResult_t (*closeRecv)(void *recvComm);
	ncclResult_t (*closeListen)(void *listenComm);
	ncclResult_t (*getDeviceMr)(void *comm, void *mhandle, void **dptr_mhandle);
	ncclResult_t (*irecvConsumed)(void *recvComm, int n, void *request);
	ncclResult_t (*makeVDevice)(int *d, ncclNetVDeviceProps_v9_t *props);
} ncclNet_v9_t;

/* ------------------------------------------------------------- v10 */
typedef ncclNetVDeviceProps_v9_t ncclNetVDeviceProps_v10_t;
typedef ncclNetProperties_v9_t ncclNetProperties_v10_t;	/* same layout */

typedef struct {
	int trafficClass;
} ncclNetCommConfig_v10_t;

typedef struct {
	const char *name;
	ncclResult_t (*init)(ncclDebugLogger_t logFunction, ncclProfilerCallback_t profFunction);
	ncclResult_t (*devices)(int *ndev);
	ncclResult_t (*getProperties)(int dev, ncclNetProperties_v10_t *props);
	ncclResult_t (*listen)(int dev, void *handle, void **listenComm);
	ncclResult_t (*connect)(int dev, ncclNetCommConfig_v10_t *config, void *handle,
				void **sendComm, ncclNetDeviceHandle_v10_t **sendDevComm);
	ncclResult_t (*accept)(void *listenComm, void **recvComm,
			       ncclNetDeviceHandle_v10_t **recvDevComm);
	ncclResult_t (*regMr)(void *comm, void *data, size_t size, int type, void **mhandle);
	ncclResult_t (*regMrDmaBuf)(void *comm, void *data, size_t size, int type,
				    uint64_t offset, int fd, void **mhandle);
	ncclResult_t (*deregMr)(void *comm, void *mhandle);
	ncclResult_t (*isend)(void *sendComm, void *data, size_t size, int tag, void *mhandle,
			      void *phandle, void **request);
	ncclResult_t (*irecv)(void *recvComm, int n, void **data, size_t *sizes, int *tags,
			      void **mhandles, void **phandles, void **request);
	ncclResult_t (*iflush)(void *recvComm, int n, void **data, int *sizes, void **mhandles,
			       void **request);
	ncclResult_t (*test)(void *request, int *done, int *sizes);
	ncclResult_t (*closeSend)(void *sendComm);
	ncclResult_t (*closeRecv)(void *recvComm);
	ncclResult_t (*closeListen)(void *listenComm);
	ncclResult_t (*getDeviceMr)(void *comm, void *mhandle, void **dptr_mhandle);
	ncclResult_t (*irecvConsumed)(void *recvComm, int n, void *request);
	ncclResult_t (*makeVDevice)(int *d, ncclNetVDeviceProps_v10_t *props);
} ncclNet_v10_t;

/* ------------------------------------------------------------- v11 */
typedef ncclNetVDeviceProps_v9_t ncclNetVDeviceProps_v11_t;
typedef ncclNetCommConfig_v10_t ncclNetCommConfig_v11_t;

typedef struct {
	char *name;
	char *pciPath;
	uint64_t guid;
	int ptrSupport;
	int regIsGlobal;
	int forceFlush;
	int speed;
	int port;
	float latency;
	int maxComms;
	int maxRecvs;
	ncclNetDeviceType netDeviceType;
	int netDeviceVersion;
	ncclNetVDeviceProps_v11_t vProps;
	size_t maxP2pBytes;
	size_t maxCollBytes;
	int maxMultiRequestSize;
} ncclNetProperties_v11_t;

typedef struct {
	int32_t maxConcurrentPeers;
	int32_t minConcurrentPeers;
	int32_t maxFlowsPerPeer;
	int32_t minFlowsPerPeer;
} ncclNetCommAttr_v11_t;

typedef struct {
	ncclNetCommAttr_v11_t sendCommAttr;
	ncclNetCommAttr_v11_t recvCommAttr;
	uint32_t op;
	uint32_t algo;
	uint32_t proto;
} ncclNetAttr_v11_t;

#define DMT_NCCL_V11_TAIL(V)                                                             \
	ncclResult_t (*init)(void **ctx, uint64_t commId, ncclNetCommConfig_##V##_t *config, \
			     ncclDebugLogger_t logFunction, ncclProfilerCallback_t profFunction); \
	ncclResult_t (*devices)(int *ndev);                                              \
	ncclResult_t (*getProperties)(int dev, ncclNetProperties_##V##_t *props);        \
	ncclResult_t (*listen)(void *ctx, int dev, void *handle, void **listenComm);     \
	ncclResult_t (*connect)(void *ctx, int dev, void *handle, void **sendComm,       \
				ncclNetDeviceHandle_##V##_t **sendDevComm);               \
	ncclResult_t (*accept)(void *listenComm, void **recvComm,                        \
			       ncclNetDeviceHandle_##V##_t **recvDevComm);                \
	ncclResult_t (*regMr)(void *comm, void *data, size_t size, int type, void **mhandle); \
	ncclResult_t (*regMrDmaBuf)(void *comm, void *data, size_t size, int type,       \
				    uint64_t offset, int fd, void **mhandle);             \
	ncclResult_t (*deregMr)(void *comm, void *mhandle);                              \
	ncclResult_t (*isend)(void *sendComm, void *data, size_t size, int tag,         \
			      void *mhandle, void *phandle, void **request);              \
	ncclResult_t (*irecv)(void *recvComm, int n, void **data, size_t *sizes,         \
			      int *tags, void **mhandles, void **phandles, void **request); \
	ncclResult_t (*iflush)(void *recvComm, int n, void **data, int *sizes,           \
			       void **mhandles, void **request);                          \
	ncclResult_t (*test)(void *request, int *done, int *sizes);                      \
	ncclResult_t (*closeSend)(void *sendComm);                                       \
	ncclResult_t (*closeRecv)(void *recvComm);                                       \
	ncclResult_t (*closeListen)(void *listenComm);                                   \
	ncclResult_t (*getDeviceMr)(void *comm, void *mhandle, void **dptr_mhandle);     \
	ncclResult_t (*irecvConsumed)(void *recvComm, int n, void *request);             \
	ncclResult_t (*makeVDevice)(int *d, ncclNetVDeviceProps_##V##_t *props);         \
	ncclResult_t (*finalize)(void *ctx);                                             \
	ncclResult_t (*setNetAttr)(void *ctx, ncclNetAttr_##V##_t *netAttr);

typedef struct {
	const char *name;
	DMT_NCCL_V11_TAIL(v11)
} ncclNet_v11_t;

/* ------------------------------------------------------------- v12 */
typedef struct {
	int ndevs;
	int devs[NCCL_NET_MAX_DEVS_PER_NIC_V12];
} ncclNetVDeviceProps_v12_t;
typedef ncclNetCommConfig_v10_t ncclNetCommConfig_v12_t;
typedef ncclNetCommAttr_v11_t ncclNetCommAttr_v12_t;
typedef ncclNetAttr_v11_t ncclNetAttr_v12_t;

typedef struct {
	char *name;
	char *pciPath;
	uint64_t guid;
	int ptrSupport;
	int regIsGlobal;
	int forceFlush;
	int speed;
	int port;
	float latency;
	int maxComms;
	int maxRecvs;
	ncclNetDeviceType netDeviceType;
	int netDeviceVersion;
	ncclNetVDeviceProps_v12_t vProps;
	size_t maxP2pBytes;
	size_t maxCollBytes;
	int maxMultiRequestSize;
	int16_t railId;
	int16_t planeId;
} ncclNetProperties_v12_t;

typedef struct {
	const char *name;
	DMT_NCCL_V11_TAIL(v12)
} ncclNet_v12_t;

#endif /* DMT_NCCL_NET_H */
