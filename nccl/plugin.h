/* SPDX-License-Identifier: MIT */
/*
 * plugin.h - what the plugin's files share: configuration, the comm and
 * request objects, and the version-independent entry points abi.c wraps
 * once per NCCL ABI version.
 *
 * Files: core.c (configuration, devices, properties, connection setup,
 * registration, framed send/receive, test, close: the host-memory path),
 * devmem.c (what devmem needs: the probe at init, RX queues and the
 * dma-buf binding at listen, the flow steered at accept, bind-tx of the
 * dma-buf NCCL registers, UNPACK metadata), abi.c (ncclNetPlugin_v8..v12).
 */
#ifndef DMT_NCCL_PLUGIN_H
#define DMT_NCCL_PLUGIN_H

#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "devmemtcp.h"
#include "nccl_net.h"

#define DN_NAME "devmemtcp"
#define DN_MAX_RECVS 8			/* grouped receives per irecv */
#define DN_MAX_REQS NCCL_NET_MAX_REQUESTS
#define DN_MAGIC 0x646d7463u		/* "dmtc" */

#define __hidden __attribute__((visibility("hidden")))

enum dn_mode {
	DN_MODE_DEVMEM,		/* devmem required: init fails without it */
	DN_MODE_HOST,		/* host memory over TCP only */
};

/* The device the plugin serves (one interface, NCCL device 0). */
struct dn_dev {
	char ifname[IF_NAMESIZE];
	unsigned ifindex;
	char pci_path[256];		/* "" when virtual */
	int speed;			/* Mb/s */
	int mtu;			/* bytes; 1500 when unreadable */
	struct sockaddr_storage addr;	/* the interface's address we listen on */
	socklen_t addrlen;
	struct dn_rxside *rx;		/* devmem: RX queues + binding */
	int rx_users;			/* listen and receive comms using rx */
};

/*
 * The plugin's one piece of process state: NCCL's devices() and
 * getProperties() take no context (before v11 nothing does), so the
 * configuration read at init lives here, guarded by lock.
 */
struct dn_state {
	pthread_mutex_t lock;
	int inits;			/* init calls not finalized */
	bool ready;
	enum dn_mode mode;
	ncclDebugLogger_t log;
	struct dn_dev dev;
	unsigned q_start, q_count;	/* RX queues reserved for devmem */
	size_t buf_size;		/* RX bounce dma-buf */
	enum dmt_provider provider;	/* for the RX bounce buffer */
	int max_recvs;			/* advertised; irecv takes up to it */
};

extern struct dn_state dn_state __hidden;

void dn_log(ncclDebugLogLevel lvl, unsigned long sub, const char *file, int line,
	    const char *fmt, ...) __attribute__((format(printf, 5, 6))) __hidden;
#define DN_WARN(...) dn_log(NCCL_LOG_WARN, NCCL_INIT | NCCL_NET, __FILE__, __LINE__, __VA_ARGS__)
#define DN_INFO(sub, ...) dn_log(NCCL_LOG_INFO, sub, __FILE__, __LINE__, __VA_ARGS__)

/* The listen handle NCCL's bootstrap carries to the peer (<= 128 bytes). */
struct dn_handle {
	uint32_t magic;
	uint16_t family;
	uint16_t port;			/* network order */
	uint8_t addr[16];
	uint64_t nonce;			/* names the listen comm */
	/* connect()'s progress between NCCL's calls (NCCL keeps the buffer) */
	int32_t stage;
	int32_t fd;			/* split: the control connection */
	uint32_t sent;
	uint32_t flags;			/* DN_H_* of the listen comm */
	int32_t dfd;			/* split: the data connection */
	uint32_t got;			/* split: ack bytes read */
	uint64_t connid;		/* split: pairs control and data */
};
/* The listen comm is in devmem mode: every comm has a control connection
 * for the frame headers and a data connection with payload only (a header
 * landing in device memory is out of the CPU's reach), and the sender
 * waits for the receiver's ack (the data flow is steered) before sending. */
#define DN_H_SPLIT 0x1u
_Static_assert(sizeof(struct dn_handle) <= NCCL_NET_HANDLE_MAXSIZE, "handle too big");

/* The listen comm's address in handle @h, as connect() takes it. */
static inline socklen_t dn_handle_addr(const struct dn_handle *h, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (h->family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;

		a->sin_family = AF_INET;
		a->sin_port = h->port;
		memcpy(&a->sin_addr, h->addr, 4);
		return sizeof(*a);
	}
	struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

	a->sin6_family = AF_INET6;
	a->sin6_port = h->port;
	memcpy(&a->sin6_addr, h->addr, 16);
	return sizeof(*a);
}

/* First bytes on every connection: who we are, which listen comm we want. */
struct dn_hello {
	uint32_t magic;
	uint32_t flags;			/* DN_HELLO_* */
	uint64_t nonce;
	uint64_t connid;		/* split: the pair's id */
};
#define DN_HELLO_CTRL 0x1u		/* split: the control connection */
#define DN_HELLO_DATA 0x2u		/* split: the data connection */
#define DN_ACK 0x61			/* receiver to sender on control: steered */

/* Every frame on the data stream: a header, then size payload bytes. */
struct dn_frame {
	uint64_t size;
	int32_t tag;
	uint32_t magic;
};

enum dn_kind { DN_LISTEN = 1, DN_SEND, DN_RECV };

/* A registered region. */
struct dn_mr {
	int type;			/* NCCL_PTR_* */
	void *data;
	size_t size;
	struct dmt_dmabuf *buf;		/* regMrDmaBuf: NCCL's dma-buf (dup) */
	struct dmt_txbind *txbind;	/* send comm, devmem: bind-tx of buf */
	uint64_t buf_off;		/* data's offset in the dma-buf */
	struct dn_comm *comm;		/* registered on */
	bool anchor;			/* its txbind anchors comm's send engine */
	bool dead;			/* deregistered, freed with the comm */
};

/* HELD: test reported a device receive done; its fragments stay held
 * (NCCL's unpack reads them) until irecvConsumed. */
enum dn_req_state { DN_REQ_FREE = 0, DN_REQ_POSTED, DN_REQ_DONE, DN_REQ_HELD };

struct dn_req {
	enum dn_req_state state;
	struct dn_comm *comm;
	int n;				/* send: 1; receive: grouped count */
	void *data[DN_MAX_RECVS];
	size_t cap[DN_MAX_RECVS];	/* send: size; receive: posted sizes */
	int tag[DN_MAX_RECVS];
	struct dn_mr *mr[DN_MAX_RECVS];
	size_t got[DN_MAX_RECVS];	/* bytes received into slot i */
	bool filled[DN_MAX_RECVS];
	int frames;			/* receive: frames completed */
	/* send progress: header then payload */
	struct dn_frame hdr;
	size_t off;			/* bytes of hdr + payload written */
	bool engine;			/* send: dmt_tx_submit from a dma-buf */
	bool written;			/* send: every byte handed to the kernel */
	/* receive into device memory (UNPACK) */
	bool dev[DN_MAX_RECVS];		/* buffer i is device memory */
	int mslot[DN_MAX_RECVS];	/* its loadMeta slot */
	int nslots;			/* slots this request holds */
	struct dmt_rx_chunk *chunks;	/* held until irecvConsumed */
	unsigned nchunks, cchunks;
};

struct dn_comm {
	enum dn_kind kind;
	int fd;
	int dev;
	int err;			/* ncclResult_t once the stream broke */
	struct dn_req reqs[DN_MAX_REQS];
	int fifo[DN_MAX_REQS];		/* posted, not yet complete, in order */
	int head, count;
	/* receive: the frame being read */
	struct dn_frame rhdr;
	size_t rhdr_got;
	int rslot;			/* slot of the current frame, -1: header */
	size_t rleft;
	struct dn_rxconn *drx;		/* devmem receive state (devmem.c) */
	ncclNetDeviceHandle_v8_t devhandle;
	/* split (devmem listen): headers on cfd, payload on fd */
	int cfd;			/* -1: headers inline on fd */
	uint8_t chdr[DN_MAX_REQS * sizeof(struct dn_frame)];	/* headers to write */
	size_t chdr_len;
	int wnext;			/* send: fifo index of the first request not written */
	struct dmt_tx *tx;		/* send: engine for dma-buf sends (0.2) */
	struct dn_mr *anchor;		/* the registration tx was made with */
	int slots_used;			/* receive: UNPACK slots held */
	uint64_t slot_next;		/* receive: the next slot (mod 16) */
};

struct dn_listen {
	enum dn_kind kind;
	int fd;
	int dev;
	uint64_t nonce;
	int pfd;			/* accepted, hello not read yet */
	struct dn_hello hello;
	size_t hello_got;
	struct sockaddr_storage peer;
	bool devmem;			/* holds a reference on dev.rx */
	/* split connects half accepted: a control connection waiting for
	 * its data one or, as the two may reach the accept queue in either
	 * order (their handshakes land on different RX queues), a data
	 * connection waiting for its control one */
	struct {
		int fd;
		uint64_t connid;
		bool data;
		struct sockaddr_storage peer;	/* a data connection's */
	} pend[8];
	int npend;
};

/* core.c: the version-independent plugin, called by abi.c */
ncclResult_t dn_init(ncclDebugLogger_t log) __hidden;
ncclResult_t dn_finalize(void) __hidden;
ncclResult_t dn_devices(int *ndev) __hidden;
struct dn_props {
	const char *name;
	const char *pci_path;
	uint64_t guid;
	int ptr_support;
	int speed, port;
	int max_comms, max_recvs;
	ncclNetDeviceType dev_type;
	int dev_version;
	size_t max_bytes;
};
ncclResult_t dn_get_properties(int dev, struct dn_props *p) __hidden;
ncclResult_t dn_listen(int dev, void *handle, void **listen_comm) __hidden;
ncclResult_t dn_connect(int dev, void *handle, void **send_comm,
			ncclNetDeviceHandle_v8_t **dev_comm) __hidden;
ncclResult_t dn_accept(void *listen_comm, void **recv_comm,
		       ncclNetDeviceHandle_v8_t **dev_comm) __hidden;
ncclResult_t dn_reg_mr(void *comm, void *data, size_t size, int type, void **mh) __hidden;
ncclResult_t dn_reg_mr_dmabuf(void *comm, void *data, size_t size, int type, uint64_t off,
			      int fd, void **mh) __hidden;
ncclResult_t dn_dereg_mr(void *comm, void *mh) __hidden;
ncclResult_t dn_isend(void *send_comm, void *data, size_t size, int tag, void *mh,
		      void **req) __hidden;
ncclResult_t dn_irecv(void *recv_comm, int n, void **data, const size_t *sizes,
		      const int *tags, void **mh, void **req) __hidden;
ncclResult_t dn_iflush(void *recv_comm, int n, void **data, int *sizes, void **mh,
		       void **req) __hidden;
ncclResult_t dn_test(void *req, int *done, int *sizes) __hidden;
ncclResult_t dn_close_send(void *comm) __hidden;
ncclResult_t dn_close_recv(void *comm) __hidden;
ncclResult_t dn_close_listen(void *comm) __hidden;
ncclResult_t dn_get_device_mr(void *comm, void *mh, void **dptr) __hidden;
ncclResult_t dn_irecv_consumed(void *recv_comm, int n, void *req) __hidden;

/* devmem.c */
struct dn_rxside;
struct dn_rxconn;
/* Everything devmem needs on dev, without changing anything; why in why. */
int dn_devmem_probe(const struct dn_dev *dev, char *why, size_t len) __hidden;
/* First listen: queues prepared and the bounce dma-buf bound; refcounted. */
int dn_devmem_rx_get(struct dn_dev *dev) __hidden;
void dn_devmem_rx_put(struct dn_dev *dev) __hidden;
/* accept: steer the flow to the devmem queues, attach a receive engine. */
int dn_devmem_accept(struct dn_dev *dev, struct dn_comm *c,
		     const struct sockaddr_storage *peer) __hidden;
void dn_devmem_conn_free(struct dn_comm *c) __hidden;
/* The next bytes of a devmem connection's stream, copied to dst: > 0,
 * 0 at end of stream, -EAGAIN, or -errno. */
ssize_t dn_devmem_read(struct dn_comm *c, void *dst, size_t len) __hidden;
/* The next at most len bytes of the stream held for request r's buffer i:
 * each fragment published as loadMeta in r's slot for i (dst_off from
 * dst_off on) and kept in r until irecvConsumed.  Bytes taken, 0 at end
 * of stream, -EAGAIN, or -errno (logged: linear bytes, a foreign dma-buf,
 * a full slot). */
ssize_t dn_devmem_hold(struct dn_comm *c, struct dn_req *r, int i, size_t dst_off,
		       size_t len) __hidden;
/* Give r's held fragments back; logs the engine's token counters
 * around it ("tokens at WHAT: ..."). */
int dn_devmem_put(struct dn_comm *c, struct dn_req *r, const char *what) __hidden;
/* Clear the loadMeta slot before a receive uses it. */
void dn_devmem_slot_reset(struct dn_comm *c, int slot) __hidden;
/* regMrDmaBuf on a send comm: bind-tx of NCCL's dma-buf. */
int dn_devmem_reg_tx(struct dn_dev *dev, struct dn_mr *mr, int fd, uint64_t off) __hidden;
void dn_devmem_mr_free(struct dn_mr *mr) __hidden;

#endif
