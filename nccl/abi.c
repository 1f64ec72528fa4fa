// SPDX-License-Identifier: MIT
/*
 * abi.c - the exported function tables, one per NCCL net ABI version
 * (ncclNetPlugin_v8 .. ncclNetPlugin_v12), each a thin adapter over
 * core.c: integer widths (v8's int sizes), the properties layout of each
 * version, init's arguments and the per-communicator context of v11+.
 * nccl-net.map exports these symbols and nothing else.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "plugin.h"

#define DN_EXPORT __attribute__((visibility("default")))

/* v11+ hands each communicator a context from init. */
struct dn_ctx {
	uint64_t comm_id;
	int traffic_class;
};

/* Fill the fields every version shares (v8 .. v12 agree up to
 * netDeviceVersion); P is a pointer to any version's properties. */
#define FILL_COMMON(P, q) do {                            \
		(P)->name = (char *)(q).name;             \
		(P)->pciPath = (char *)(q).pci_path;      \
		(P)->guid = (q).guid;                     \
		(P)->ptrSupport = (q).ptr_support;        \
		(P)->regIsGlobal = 0;                     \
		(P)->speed = (q).speed;                   \
		(P)->port = (q).port;                     \
		(P)->latency = 0;                         \
		(P)->maxComms = (q).max_comms;            \
		(P)->maxRecvs = (q).max_recvs;            \
		(P)->netDeviceType = (q).dev_type;        \
		(P)->netDeviceVersion = (q).dev_version;  \
	} while (0)

#define FILL_V9(P, q, dev) do {                           \
		FILL_COMMON(P, q);                        \
		(P)->forceFlush = 0;                      \
		(P)->vProps.ndevs = 1;                    \
		(P)->vProps.devs[0] = (dev);              \
		(P)->maxP2pBytes = (q).max_bytes;         \
		(P)->maxCollBytes = (q).max_bytes;        \
	} while (0)

static ncclResult_t props_v8(int dev, ncclNetProperties_v8_t *p)
{
	struct dn_props q;
	ncclResult_t r = dn_get_properties(dev, &q);

	if (r != ncclSuccess)
		return r;
	memset(p, 0, sizeof(*p));
	FILL_COMMON(p, q);
	return ncclSuccess;
}

static ncclResult_t props_v9(int dev, ncclNetProperties_v9_t *p)
{
	struct dn_props q;
	ncclResult_t r = dn_get_properties(dev, &q);

	if (r != ncclSuccess)
		return r;
	memset(p, 0, sizeof(*p));
	FILL_V9(p, q, dev);
	return ncclSuccess;
}

static ncclResult_t props_v11(int dev, ncclNetProperties_v11_t *p)
{
	struct dn_props q;
	ncclResult_t r = dn_get_properties(dev, &q);

	if (r != ncclSuccess)
		return r;
	memset(p, 0, sizeof(*p));
	FILL_V9(p, q, dev);
	p->maxMultiRequestSize = 1;
	return ncclSuccess;
}

static ncclResult_t props_v12(int dev, ncclNetProperties_v12_t *p)
{
	struct dn_props q;
	ncclResult_t r = dn_get_properties(dev, &q);

	if (r != ncclSuccess)
		return r;
	memset(p, 0, sizeof(*p));
	FILL_V9(p, q, dev);
	p->maxMultiRequestSize = 1;
	p->railId = NCCL_NET_ID_UNDEF;
	p->planeId = NCCL_NET_ID_UNDEF;
	return ncclSuccess;
}

static ncclResult_t init_v8(ncclDebugLogger_t log)
{
	return dn_init(log);
}

static ncclResult_t init_v10(ncclDebugLogger_t log, ncclProfilerCallback_t prof)
{
	(void)prof;	/* no profiler events yet */
	return dn_init(log);
}

static ncclResult_t init_v11(void **ctx, uint64_t comm_id, ncclNetCommConfig_v11_t *config,
			     ncclDebugLogger_t log, ncclProfilerCallback_t prof)
{
	struct dn_ctx *c;
	ncclResult_t r;

	(void)prof;
	if (!ctx)
		return ncclInvalidArgument;
	*ctx = NULL;
	r = dn_init(log);
	if (r != ncclSuccess)
		return r;
	c = calloc(1, sizeof(*c));
	if (!c) {
		dn_finalize();
		return ncclSystemError;
	}
	c->comm_id = comm_id;
	c->traffic_class = config ? config->trafficClass : NCCL_NET_TRAFFIC_CLASS_UNDEF;
	*ctx = c;
	return ncclSuccess;
}

static ncclResult_t finalize_v11(void *ctx)
{
	free(ctx);
	return dn_finalize();
}

static ncclResult_t set_net_attr_v11(void *ctx, ncclNetAttr_v11_t *attr)
{
	(void)ctx, (void)attr;	/* hints only: nothing to tune yet */
	return ncclSuccess;
}

static ncclResult_t listen_v11(void *ctx, int dev, void *handle, void **listen_comm)
{
	(void)ctx;
	return dn_listen(dev, handle, listen_comm);
}

static ncclResult_t connect_v10(int dev, ncclNetCommConfig_v10_t *config, void *handle,
				void **send_comm, ncclNetDeviceHandle_v10_t **dev_comm)
{
	(void)config;	/* traffic class: not applied yet */
	return dn_connect(dev, handle, send_comm, dev_comm);
}

static ncclResult_t connect_v11(void *ctx, int dev, void *handle, void **send_comm,
				ncclNetDeviceHandle_v11_t **dev_comm)
{
	(void)ctx;
	return dn_connect(dev, handle, send_comm, dev_comm);
}

static ncclResult_t isend_v8(void *comm, void *data, int size, int tag, void *mh, void **req)
{
	if (size < 0)
		return ncclInvalidArgument;
	return dn_isend(comm, data, (size_t)size, tag, mh, req);
}

static ncclResult_t isend_v10(void *comm, void *data, size_t size, int tag, void *mh,
			      void *phandle, void **req)
{
	(void)phandle;
	return dn_isend(comm, data, size, tag, mh, req);
}

static ncclResult_t irecv_v8(void *comm, int n, void **data, int *sizes, int *tags, void **mh,
			     void **req)
{
	size_t sz[DN_MAX_RECVS];

	if (n < 1 || n > DN_MAX_RECVS || !sizes)
		return dn_irecv(comm, n, data, NULL, tags, mh, req);	/* refuses, logged */
	for (int i = 0; i < n; i++) {
		if (sizes[i] < 0)
			return ncclInvalidArgument;
		sz[i] = (size_t)sizes[i];
	}
	return dn_irecv(comm, n, data, sz, tags, mh, req);
}

static ncclResult_t irecv_v9(void *comm, int n, void **data, size_t *sizes, int *tags,
			     void **mh, void **req)
{
	return dn_irecv(comm, n, data, sizes, tags, mh, req);
}

static ncclResult_t irecv_v10(void *comm, int n, void **data, size_t *sizes, int *tags,
			      void **mh, void **phandles, void **req)
{
	(void)phandles;
	return dn_irecv(comm, n, data, sizes, tags, mh, req);
}

static ncclResult_t accept_any(void *l, void **c, ncclNetDeviceHandle_v8_t **d)
{
	return dn_accept(l, c, d);
}

DN_EXPORT const ncclNet_v8_t ncclNetPlugin_v8 = {
	.name = DN_NAME,
	.init = init_v8,
	.devices = dn_devices,
	.getProperties = props_v8,
	.listen = dn_listen,
	.connect = dn_connect,
	.accept = accept_any,
	.regMr = dn_reg_mr,
	.regMrDmaBuf = dn_reg_mr_dmabuf,
	.deregMr = dn_dereg_mr,
	.isend = isend_v8,
	.irecv = irecv_v8,
	.iflush = dn_iflush,
	.test = dn_test,
	.closeSend = dn_close_send,
	.closeRecv = dn_close_recv,
	.closeListen = dn_close_listen,
	.getDeviceMr = dn_get_device_mr,
	.irecvConsumed = dn_irecv_consumed,
};

DN_EXPORT const ncclNet_v9_t ncclNetPlugin_v9 = {
	.name = DN_NAME,
	.init = init_v8,
	.devices = dn_devices,
	.getProperties = props_v9,
	.listen = dn_listen,
	.connect = dn_connect,
	.accept = accept_any,
	.regMr = dn_reg_mr,
	.regMrDmaBuf = dn_reg_mr_dmabuf,
	.deregMr = dn_dereg_mr,
	.isend = dn_isend,
	.irecv = irecv_v9,
	.iflush = dn_iflush,
	.test = dn_test,
	.closeSend = dn_close_send,
	.closeRecv = dn_close_recv,
	.closeListen = dn_close_listen,
	.getDeviceMr = dn_get_device_mr,
	.irecvConsumed = dn_irecv_consumed,
	.makeVDevice = NULL,	/* no NIC fusion */
};

DN_EXPORT const ncclNet_v10_t ncclNetPlugin_v10 = {
	.name = DN_NAME,
	.init = init_v10,
	.devices = dn_devices,
	.getProperties = props_v9,
	.listen = dn_listen,
	.connect = connect_v10,
	.accept = accept_any,
	.regMr = dn_reg_mr,
	.regMrDmaBuf = dn_reg_mr_dmabuf,
	.deregMr = dn_dereg_mr,
	.isend = isend_v10,
	.irecv = irecv_v10,
	.iflush = dn_iflush,
	.test = dn_test,
	.closeSend = dn_close_send,
	.closeRecv = dn_close_recv,
	.closeListen = dn_close_listen,
	.getDeviceMr = dn_get_device_mr,
	.irecvConsumed = dn_irecv_consumed,
	.makeVDevice = NULL,
};

#define TABLE_V11(V, PROPS)                                     \
	DN_EXPORT const ncclNet_##V##_t ncclNetPlugin_##V = {   \
		.name = DN_NAME,                                \
		.init = init_v11,                               \
		.devices = dn_devices,                          \
		.getProperties = PROPS,                         \
		.listen = listen_v11,                           \
		.connect = connect_v11,                         \
		.accept = accept_any,                           \
		.regMr = dn_reg_mr,                             \
		.regMrDmaBuf = dn_reg_mr_dmabuf,                \
		.deregMr = dn_dereg_mr,                         \
		.isend = isend_v10,                             \
		.irecv = irecv_v10,                             \
		.iflush = dn_iflush,                            \
		.test = dn_test,                                \
		.closeSend = dn_close_send,                     \
		.closeRecv = dn_close_recv,                     \
		.closeListen = dn_close_listen,                 \
		.getDeviceMr = dn_get_device_mr,                \
		.irecvConsumed = dn_irecv_consumed,             \
		.makeVDevice = NULL,                            \
		.finalize = finalize_v11,                       \
		.setNetAttr = set_net_attr_v11,                 \
	}

TABLE_V11(v11, props_v11);
/* ncclNetCommConfig_v12_t and ncclNetAttr_v12_t are v11's types. */
TABLE_V11(v12, props_v12);
