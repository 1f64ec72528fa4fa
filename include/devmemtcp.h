/* SPDX-License-Identifier: MIT */
/*
 * devmemtcp.h - the public interface of libdevmemtcp.
 *
 * Devmem TCP sends TCP payload straight out of a dma-buf and receives it
 * straight into one.  This library wraps the kernel interface
 * (Documentation/networking/devmem.rst) so that it is hard to misuse:
 *
 *   struct dmt_dmabuf   a dma-buf from a provider (udmabuf, dma-heap, CUDA,
 *                       or an fd you already have), with CPU access for the
 *                       host-mappable ones bracketed by DMA_BUF_IOCTL_SYNC.
 *   struct dmt_nl       a netdev generic netlink socket (libmnl): bind-tx,
 *                       dev-get, queue-get.  Closing it unbinds.
 *   struct dmt_txbind   a dma-buf made ready for sending on an interface:
 *                       bind-tx when the policy allows devmem, else the
 *                       fallback the policy allows (MSG_ZEROCOPY from the
 *                       mapping, or copy).  The mode used is reported.
 *   struct dmt_tx       the send engine of one TCP connection: a region
 *                       allocator over a window of the dma-buf that never
 *                       hands out bytes whose send has not completed,
 *                       sendmsg with offset iovecs, partial sends resumed,
 *                       error-queue completions, ENOBUFS and EINTR handled.
 *
 * Conventions:
 * - Calls return >= 0 on success and a negative errno on failure; errno is
 *   not the channel.  Constructors return NULL and fill an optional
 *   struct dmt_err.
 * - Every handle keeps its last error, with the kernel's extack text when
 *   there was one; dmt_err_str() turns it into one sentence with a fix.
 * - Options structs start with their size; declare them with DMT_OPTS() so
 *   that fields added later are zero in old callers.  A non-zero byte past
 *   the last field a library knows (padding included) makes the call fail
 *   with -EINVAL; a smaller size (an older caller) leaves the fields it
 *   lacks at their defaults.  Output structs of 0.2 (dmt_tx_query_stats)
 *   start with their size too: the library fills what fits.
 * - The library never prints and keeps no global mutable state.
 */
#ifndef DEVMEMTCP_H
#define DEVMEMTCP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DMT_VERSION_MAJOR 0
#define DMT_VERSION_MINOR 2

/* "0.2": the version of the library actually loaded. */
const char *dmt_version(void);

/*
 * Declare an options struct: DMT_OPTS(dmt_tx_opts, o, .window_len = 1 << 20);
 * The whole struct, padding included, is zeroed first (libbpf's
 * LIBBPF_OPTS does the same): the library checks every byte past the
 * last field it knows, so padding must be zero.
 */
#define DMT_OPTS(type, name, ...)					\
	struct type name = ({						\
		memset(&name, 0, sizeof(struct type));			\
		(struct type){ .sz = sizeof(struct type), __VA_ARGS__ };	\
	})

/* ---------------------------------------------------------------- errors */

struct dmt_err {
	int code;		/* negative errno; 0: no error */
	char what[128];		/* the step that failed: "bind-tx on eth1" */
	char extack[256];	/* the kernel's extack message, "" if none */
	char fix[192];		/* what to do about it, "" if nothing useful */
};

/*
 * One sentence: "WHAT: strerror(CODE)[: kernel says \"EXTACK\"] (FIX)".
 * Writes at most len bytes into buf and returns buf.
 */
const char *dmt_err_str(const struct dmt_err *err, char *buf, size_t len);

/* ------------------------------------------------------------- dma-bufs */

enum dmt_provider {
	DMT_PROVIDER_UDMABUF = 1,	/* sealed memfd wrapped by /dev/udmabuf */
	DMT_PROVIDER_HEAP,		/* /dev/dma_heap/<name>, "system" default */
	DMT_PROVIDER_CUDA,		/* GPU memory, libcuda.so.1 via dlopen */
	DMT_PROVIDER_FD,		/* an existing dma-buf fd (imported) */
	DMT_PROVIDER_HOST,		/* plain host memory (a memfd), not a
					 * dma-buf: never devmem, only the
					 * zerocopy and copy modes */
};

struct dmt_dmabuf_opts {
	size_t sz;
	enum dmt_provider provider;	/* 0: udmabuf */
	size_t size;		/* bytes, rounded up to the page size (2 MiB
				 * with hugepages); fd: 0 is the whole buffer */
	bool hugepages;		/* udmabuf: back with 2 MiB huge pages */
	const char *heap;	/* heap: name under /dev/dma_heap, "system" */
	int cuda_device;	/* cuda: device ordinal */
	int fd;			/* fd: the dma-buf to import (dup'ed) */
	/* 0.2, host provider: the caller's memory, size bytes, to send from
	 * (zerocopy or copy) instead of a new memfd; it stays the caller's
	 * (never freed) and must outlive the buffer; no fd (-1) */
	void *host_addr;
};

struct dmt_dmabuf;

struct dmt_dmabuf *dmt_dmabuf_new(const struct dmt_dmabuf_opts *opts,
				  struct dmt_err *err);
void dmt_dmabuf_free(struct dmt_dmabuf *buf);
/* The buffer's last error (a range error names offset, length and size). */
const struct dmt_err *dmt_dmabuf_error(const struct dmt_dmabuf *buf);
/* The dma-buf fd (host provider: its memfd; not bindable). */
int dmt_dmabuf_fd(const struct dmt_dmabuf *buf);
/* true for a real dma-buf, false for the host provider */
bool dmt_dmabuf_is_dmabuf(const struct dmt_dmabuf *buf);
size_t dmt_dmabuf_size(const struct dmt_dmabuf *buf);
enum dmt_provider dmt_dmabuf_provider(const struct dmt_dmabuf *buf);
/* "udmabuf", "heap", "cuda", "fd", "host" */
const char *dmt_provider_name(enum dmt_provider provider);
/* Parse a provider name; -EINVAL if unknown. */
int dmt_provider_parse(const char *name, enum dmt_provider *provider);
/* The host mapping, or NULL when the buffer is not host-mappable. */
void *dmt_dmabuf_map(const struct dmt_dmabuf *buf);

/*
 * Copy between host memory and the buffer.  For host-mappable buffers the
 * access is bracketed by DMA_BUF_IOCTL_SYNC start/end; CUDA uses the
 * driver's copy calls.  -ERANGE if [off, off+len) is outside the buffer.
 */
int dmt_dmabuf_write(struct dmt_dmabuf *buf, size_t off, const void *src,
		     size_t len);
int dmt_dmabuf_read(struct dmt_dmabuf *buf, size_t off, void *dst,
		    size_t len);

/*
 * 0.2: bracket CPU access through dmt_dmabuf_map() yourself, one bracket
 * for many reads or writes (dmt_dmabuf_read/write bracket each call):
 * DMA_BUF_IOCTL_SYNC with DMT_DMABUF_SYNC_START, then the accesses, then
 * DMT_DMABUF_SYNC_END, each with the direction (READ, WRITE or RW).  The
 * values are <linux/dma-buf.h>'s DMA_BUF_SYNC_*.  Restarted after a
 * signal.  0 on success (a host-provider buffer needs none: 0); -EINVAL
 * for bad flags, -EOPNOTSUPP without a host mapping (CUDA: use
 * dmt_dmabuf_read/write), or the kernel's -errno; the error is kept
 * (dmt_dmabuf_error).
 */
#define DMT_DMABUF_SYNC_READ	0x1u
#define DMT_DMABUF_SYNC_WRITE	0x2u
#define DMT_DMABUF_SYNC_RW	(DMT_DMABUF_SYNC_READ | DMT_DMABUF_SYNC_WRITE)
#define DMT_DMABUF_SYNC_START	0x0u
#define DMT_DMABUF_SYNC_END	0x4u
int dmt_dmabuf_sync(struct dmt_dmabuf *buf, unsigned flags);

/*
 * The pattern the kernel's `ncdevmem -l -v PERIOD` validates (2 <= PERIOD
 * <= 255): 1, 2, ..., PERIOD-1, '\n', 1, 2, ...; byte k of the stream is
 * k % PERIOD + 1, or '\n' where k % PERIOD == PERIOD - 1.  pos is the
 * stream position of the first byte.  dmt_pattern_fill fills host memory,
 * dmt_dmabuf_fill the buffer; dmt_pattern_check returns the index of the
 * first wrong byte, or -1 when all len bytes match.  A period outside
 * 2..255 fills nothing and checks nothing (dmt_dmabuf_fill: -EINVAL).
 */
void dmt_pattern_fill(void *dst, size_t len, uint64_t pos, unsigned period);
ssize_t dmt_pattern_check(const void *src, size_t len, uint64_t pos,
			  unsigned period);
int dmt_dmabuf_fill(struct dmt_dmabuf *buf, size_t off, size_t len,
		    uint64_t pos, unsigned period);

/* ------------------------------------------------- netdev netlink family */

struct dmt_nl;

/* Open a netdev genl socket (NETLINK_EXT_ACK and NETLINK_CAP_ACK on). */
struct dmt_nl *dmt_nl_open(struct dmt_err *err);
/* Closing the socket unbinds every binding made through it. */
void dmt_nl_close(struct dmt_nl *nl);
const struct dmt_err *dmt_nl_error(const struct dmt_nl *nl);

/* bind-tx: bind the dma-buf fd for TX on ifindex; *id gets the dmabuf id. */
int dmt_bind_tx(struct dmt_nl *nl, unsigned ifindex, int dmabuf_fd,
		uint32_t *id);

struct dmt_dev_info {
	unsigned ifindex;
	uint64_t xdp_features;
	uint64_t xdp_rx_metadata_features;
	uint64_t xsk_features;
	uint32_t xdp_zc_max_segs;
};
int dmt_dev_get(struct dmt_nl *nl, unsigned ifindex,
		struct dmt_dev_info *info);

struct dmt_queue_info {
	unsigned ifindex;
	uint32_t id;
	uint32_t type;		/* 0 rx, 1 tx */
	uint32_t napi_id;	/* 0 if none */
	uint32_t dmabuf;	/* bound dmabuf id, 0 if none */
	bool io_uring;		/* an io_uring zcrx provider is installed */
};
/*
 * queue-get dump: calls cb once per queue of ifindex (0: every device).
 * Returns the number of queues, or cb's negative value when it stopped.
 */
int dmt_queue_dump(struct dmt_nl *nl, unsigned ifindex,
		   int (*cb)(const struct dmt_queue_info *q, void *arg),
		   void *arg);

/* ------------------------------------------------------------ TX binding */

enum dmt_mode {
	DMT_MODE_AUTO = 0,	/* policy only: devmem, else zerocopy, else copy */
	DMT_MODE_DEVMEM,	/* sendmsg(MSG_ZEROCOPY) + SCM_DEVMEM_DMABUF */
	DMT_MODE_ZEROCOPY,	/* MSG_ZEROCOPY from host memory: host and
				 * udmabuf buffers only (udmabuf through its
				 * memfd: dma-buf mappings are PFN maps that
				 * MSG_ZEROCOPY cannot pin) */
	DMT_MODE_COPY,		/* plain send: the kernel copies */
};
/* "auto", "devmem", "zerocopy", "copy" */
const char *dmt_mode_name(enum dmt_mode mode);
int dmt_mode_parse(const char *name, enum dmt_mode *mode);

struct dmt_txbind_opts {
	size_t sz;
	enum dmt_mode policy;	/* DMT_MODE_AUTO or the one mode allowed */
	unsigned :32;		/* 0.1's tail padding (0.1's DMT_OPTS did not
				 * zero it): never read, never a field */
};

struct dmt_txbind;

/*
 * Make buf sendable on ifname.  With policy DMT_MODE_DEVMEM, a refused
 * bind-tx fails the call (the kernel's extack in err).  With
 * DMT_MODE_AUTO, a refused bind-tx falls back to zerocopy when the buffer
 * is host-mappable, else to copy; why is kept (dmt_txbind_fallback_reason).
 */
struct dmt_txbind *dmt_txbind_new(const char *ifname, struct dmt_dmabuf *buf,
				  const struct dmt_txbind_opts *opts,
				  struct dmt_err *err);
void dmt_txbind_free(struct dmt_txbind *bind);
enum dmt_mode dmt_txbind_mode(const struct dmt_txbind *bind);
uint32_t dmt_txbind_id(const struct dmt_txbind *bind);	/* 0 unless devmem */
unsigned dmt_txbind_ifindex(const struct dmt_txbind *bind);
/* Why devmem was not used ("" when it was, or was not tried). */
const char *dmt_txbind_fallback_reason(const struct dmt_txbind *bind);

/* ------------------------------------------------------------ send engine */

struct dmt_tx;

struct dmt_tx_completion {
	uint32_t lo, hi;	/* inclusive range of send ids */
	bool copied;		/* SO_EE_CODE_ZEROCOPY_COPIED */
};

struct dmt_tx_opts {
	size_t sz;
	size_t window_off;	/* this connection's part of the buffer */
	size_t window_len;	/* 0: to the end of the buffer */
	unsigned max_inflight;	/* sends tracked at once, 0: 1024 */
	unsigned :32;		/* padding (0.1 callers may leave it unset):
				 * never read */
	/* called for every completion read from the error queue */
	void (*on_complete)(const struct dmt_tx_completion *c, void *arg);
	void *arg;
	/* 0.2: dmt_tx_submit requests (see below) */
	unsigned max_requests;	/* submitted and not yet reaped, 0: 64 */
	unsigned max_vecs;	/* dmt_txvec runs per request, 0: 16 */
	/* a request finished: called from dmt_tx_progress, dmt_tx_poll and
	 * dmt_tx_drain instead of queueing the cookie for dmt_tx_reap */
	void (*on_done)(uint64_t cookie, void *arg);
};

struct dmt_region {
	size_t off;		/* offset into the dma-buf */
	size_t len;
};

struct dmt_tx_stats {
	uint64_t bytes;		/* accepted by the kernel */
	uint64_t sends;		/* sendmsg calls that queued bytes */
	uint64_t partial;	/* of those, partial */
	uint64_t completions;	/* send ids completed */
	uint64_t copied;	/* of those, reported as copied */
	uint64_t notifications;	/* error-queue messages read */
	uint64_t enobufs;	/* ENOBUFS retried after draining */
	uint64_t eagain;
	uint64_t inflight_bytes;
};

/*
 * Attach a send engine to a TCP socket fd (connected or not; the caller
 * keeps ownership of fd).  Sets SO_ZEROCOPY in the devmem and zerocopy
 * modes and SO_BINDTODEVICE to the binding's interface (best before
 * connect, so the route leaves through that device).  The socket must not
 * have sent with MSG_ZEROCOPY before (send ids count from 0); the engine
 * owns its error queue.  Free the engine before its dmt_txbind.
 */
struct dmt_tx *dmt_tx_new(int fd, struct dmt_txbind *bind,
			  const struct dmt_tx_opts *opts, struct dmt_err *err);
/* Frees the engine; in-flight regions are abandoned (see dmt_tx_drain). */
void dmt_tx_free(struct dmt_tx *tx);
const struct dmt_err *dmt_tx_error(const struct dmt_tx *tx);
enum dmt_mode dmt_tx_mode(const struct dmt_tx *tx);
int dmt_tx_fd(const struct dmt_tx *tx);

/*
 * Reserve len contiguous bytes of the window that no send in flight uses.
 * -EAGAIN when not enough is free yet (wait with dmt_tx_poll); -EINVAL for
 * len 0 or len > window.  Regions are released in the order reserved.
 */
int dmt_tx_alloc(struct dmt_tx *tx, size_t len, struct dmt_region *r);
/* Give back the last reserved region unsent. */
int dmt_tx_unalloc(struct dmt_tx *tx, const struct dmt_region *r);

/*
 * Queue regions (reserved with dmt_tx_alloc, filled by the device) for
 * sending and send as much as the socket takes.  Regions go in the order
 * they were reserved (a region may be a prefix of what is reserved and not
 * yet queued), else -EINVAL; adjacent regions merge into one iovec.  Returns the bytes sent by this call (>= 0); what is left
 * stays queued and goes out with the next dmt_tx_send or dmt_tx_flush.
 * On a non-blocking socket returns 0 rather than -EAGAIN when nothing
 * could be sent now.  A region's bytes belong to the kernel until its
 * completion is read.
 */
ssize_t dmt_tx_send(struct dmt_tx *tx, const struct dmt_region *r,
		    unsigned nr);
/* Send what is queued; bytes sent, or -errno.  0 if none is queued. */
ssize_t dmt_tx_flush(struct dmt_tx *tx);
/* Bytes queued but not yet accepted by the kernel. */
size_t dmt_tx_pending(const struct dmt_tx *tx);

/*
 * Read completions (waiting up to timeout_ms for at least one when some
 * are outstanding; 0 does not wait, -1 waits forever) and release the
 * regions they cover.  Returns the number of send ids completed.
 */
int dmt_tx_poll(struct dmt_tx *tx, int timeout_ms);
/* Send what is queued, then wait until every send has completed;
 * -ETIMEDOUT after timeout_ms. */
int dmt_tx_drain(struct dmt_tx *tx, int timeout_ms);
/*
 * Events for poll/epoll: POLLERR always (completions arrive on the error
 * queue), POLLOUT only while bytes are queued and the engine waits for the
 * socket, not while it waits for completions (max_inflight or
 * max_requests reached, option memory or RLIMIT_MEMLOCK exhausted): then
 * only a completion can make progress, and asking for POLLOUT on a
 * writable socket would spin.
 */
short dmt_tx_poll_events(const struct dmt_tx *tx);
void dmt_tx_get_stats(const struct dmt_tx *tx, struct dmt_tx_stats *st);

/* ============================================ libdevmemtcp 0.2: TX ====== */
/*
 * Caller-owned regions.  A request is a list of (binding, offset, length)
 * runs, from any number of bound buffers, sent in order on the engine's
 * connection and identified by the caller's cookie.  The kernel takes one
 * dma-buf per sendmsg, so each run of one binding is its own sendmsg (or
 * several).  A request is done when every byte has been accepted by the
 * kernel and, in the devmem and zerocopy modes, every sendmsg that carried
 * any of its bytes has its completion (a "copied" completion counts); done
 * requests are reported by cookie, in any order across requests, never
 * before that.  Its regions belong to the kernel until then.
 *
 * Every binding must be of the engine's interface and mode (-EINVAL
 * otherwise) and must outlive the requests that use it.  Offsets are into
 * the binding's buffer: the dma-buf in devmem mode, its host mapping (or
 * a udmabuf's memfd) in zerocopy mode, the mapping or a bounce copy in
 * copy mode.
 */
struct dmt_txvec {
	struct dmt_txbind *bind;
	uint64_t off;
	uint64_t len;
};

/*
 * Queue a request of n runs and send what the socket takes now without
 * blocking (MSG_DONTWAIT, whatever the socket's mode); the engine keeps
 * the unsent rest and sends it from dmt_tx_progress.  0: the whole request
 * is accepted; -EAGAIN: max_requests are submitted and not yet reaped,
 * nothing queued; -EINVAL/-ERANGE: a bad run (dmt_tx_error says which),
 * nothing queued.  A send error after acceptance is reported by the next
 * dmt_tx_progress.  The runs are copied; their bytes are the kernel's
 * until the cookie is reported.
 */
int dmt_tx_submit(struct dmt_tx *tx, const struct dmt_txvec *v, unsigned n,
		  uint64_t cookie);
/*
 * Never blocks: read completions, send what the socket takes, deliver
 * done requests to opts.on_done.  Returns the number of requests that
 * became done since the last call (dmt_tx_submit can finish some: copy
 * mode, or completions it read), or -errno: a send error (also one that
 * happened inside dmt_tx_submit after it accepted the request).  Call it
 * (and dmt_tx_reap) before sleeping on dmt_tx_poll_events: only what is
 * still to happen wakes poll.
 */
int dmt_tx_progress(struct dmt_tx *tx);
/*
 * Copy up to max cookies of done requests (oldest first) into cookies
 * and forget them; their slots count against max_requests until then.
 * Returns the number copied.
 */
int dmt_tx_reap(struct dmt_tx *tx, uint64_t *cookies, unsigned max);

struct dmt_tx_stats_v2 {
	size_t sz;		/* in: the caller's sizeof; out: bytes filled */
	uint64_t bytes;		/* the 0.1 fields, same meaning */
	uint64_t sends;
	uint64_t partial;
	uint64_t completions;
	uint64_t copied;
	uint64_t notifications;
	uint64_t enobufs;
	uint64_t eagain;
	uint64_t inflight_bytes;
	uint64_t requests;	/* accepted by dmt_tx_submit */
	uint64_t requests_done;
	uint64_t requests_active;	/* submitted, not done */
	uint64_t stalls;	/* times sending stopped to wait for completions */
	uint64_t max_send;	/* bytes per sendmsg now (RLIMIT_MEMLOCK caps it
				 * in zerocopy mode without CAP_IPC_LOCK) */
	uint64_t memlock_splits;	/* ENOBUFS idle: max_send halved */
	uint64_t errq_other;	/* error-queue messages that were not our
				 * completions (timestamps, ICMP): kept */
	uint64_t errq_pending;	/* of those, not read yet (dmt_tx_errqueue_msg) */
	uint64_t errq_lost;	/* dropped: more than 16 kept unread */
};
/* Fill st up to st->sz (set it to sizeof(*st)); 0, or -EINVAL. */
int dmt_tx_query_stats(const struct dmt_tx *tx, struct dmt_tx_stats_v2 *st);

/*
 * The engine owns the socket's error queue, but not every message on it
 * is a completion: the caller's timestamps (SO_TIMESTAMPING) and ICMP
 * errors arrive there too.  Those are kept (the latest 16; older ones are
 * counted in errq_lost) and handed out here, oldest first: the message's
 * whole control data, walkable with CMSG_FIRSTHDR/CMSG_NXTHDR on a
 * struct msghdr whose msg_control/msg_controllen are (control, return
 * value), and its msg_flags in *flags (may be NULL).  Returns the control
 * length, 0 when none is kept, -EMSGSIZE when len is too small (the
 * message stays; 512 bytes are always enough).
 */
ssize_t dmt_tx_errqueue_msg(struct dmt_tx *tx, void *control, size_t len,
			    int *flags);
/* ========================================= end of libdevmemtcp 0.2 TX == */

/* ------------------------------------------------------- NIC setup (RX) */

/*
 * What devmem RX needs of a NIC, read with ethtool netlink (channels,
 * rings) and the ethtool ioctl (RSS indirection table, ntuple rules).
 * A field the device does not report is 0 / false.
 */
struct dmt_nic_state {
	unsigned ifindex;
	uint32_t rx_queues;		/* real RX queues (queue-get dump) */
	uint32_t combined, combined_max;	/* channels */
	uint32_t rx, rx_max, tx, tx_max;
	uint32_t ring_rx, ring_rx_max;	/* rings */
	bool has_rings;
	uint8_t tcp_data_split;		/* 0 unknown, 1 disabled, 2 enabled */
	bool has_hds_thresh;
	uint32_t hds_thresh, hds_thresh_max;
	uint32_t rss_indir_size;	/* 0: no RSS indirection table */
	bool ntuple;			/* the driver has an ntuple rule table
					 * and the ntuple feature is on (or its
					 * state cannot be read) */
	uint32_t ntuple_rules;		/* rules in place now */
	uint32_t ntuple_max;		/* rule table size, 0 if unknown */
	bool xdp;			/* an XDP program is attached */
};

/* A flow to steer: the peer's address (port 0: any) and our local one. */
struct dmt_flow {
	struct sockaddr_storage peer;
	struct sockaddr_storage local;
};

struct dmt_nic;

/*
 * Open a NIC for devmem RX setup.  Nothing is changed until a prepare or
 * steer call; every change is recorded and undone, newest first, by
 * dmt_nic_restore and dmt_nic_close (also after an error part way).
 * Settings and rules this handle did not create are never touched.
 */
struct dmt_nic *dmt_nic_open(const char *ifname, struct dmt_err *err);
const struct dmt_err *dmt_nic_error(const struct dmt_nic *nic);
unsigned dmt_nic_ifindex(const struct dmt_nic *nic);
int dmt_nic_get_state(struct dmt_nic *nic, struct dmt_nic_state *st);
/*
 * Make queues [start, start+count) ready for bind-rx: tcp-data-split
 * enabled and hds-thresh 0 (rings set through ethtool netlink), and the
 * queues out of the default RSS context (the indirection table spreads
 * over the other queues), and the ntuple feature on where the driver has a
 * rule table and the feature can be changed.  (0.2) Also hardware GRO
 * (rx-gro-hw) on where the driver lets it change, unless the handle was
 * opened with DMT_NIC_NO_GRO_HW: the payload of many segments then fills
 * whole buffers (mlx5 refuses tcp-data-split without it).  Needs at least
 * count+1 RX queues.  tcp-data-split is restored to the core's config
 * before, "unknown" included (what the driver reports may differ).
 */
int dmt_nic_prepare_rx(struct dmt_nic *nic, unsigned start, unsigned count);
/*
 * Steer a TCP flow (IPv4 or IPv6, both addresses of one family) to queue
 * with an ntuple rule at RX_CLS_LOC_ANY, or the first free slot when the
 * driver needs one; *loc gets the rule's location.
 */
int dmt_nic_steer(struct dmt_nic *nic, const struct dmt_flow *flow,
		  unsigned queue, uint32_t *loc);
/*
 * Undo every recorded change, newest first.  Call it after the RX binding
 * is gone (dmt_rxbind_free): while an RX queue of the device is bound,
 * it is refused with -EBUSY and changes nothing.  Returns 0 or the first
 * error (it goes on with the rest).
 */
int dmt_nic_restore(struct dmt_nic *nic);
/* dmt_nic_restore, then free (refused or failed: what is left stays in
 * the undo log on disk, for dmt_nic_restore_log / `devmemtcp restore`). */
void dmt_nic_close(struct dmt_nic *nic);

/*
 * (0.2) Delete the ntuple rule dmt_nic_steer put at loc through this
 * handle, now, and drop it from the undo log: the flow is done (a
 * connection closed) while the rest of the setup stays.  Allowed while
 * queues are bound.  A rule that is already gone, or that someone else
 * replaced at loc, is left alone (0).  -ENOENT: this handle inserted no
 * rule at loc (nothing changed).
 */
int dmt_nic_unsteer(struct dmt_nic *nic, uint32_t loc);

/* ----------------------------------------- NIC setup: durable undo (0.2) */

/*
 * Since 0.2 every NIC handle keeps its undo log on disk as well, written
 * (and fdatasync'ed) before each change: a process killed or crashed part
 * way leaves a log that dmt_nic_restore_log (`devmemtcp restore`) replays.
 * The log is LOG_DIR/net-NETNS/IFNAME.undo (LOG_DIR /run/devmemtcp, NETNS
 * the inode of the network namespace); it is created at the first change,
 * flock'ed while the handle lives (a second process preparing the same NIC
 * is refused with -EBUSY naming the holder's pid) and removed once
 * everything is restored.  Restoring is refused with -EBUSY while a queue
 * of the device is bound to a memory provider (dma-buf, io_uring).
 */
struct dmt_nic_opts {
	size_t sz;
	const char *log_dir;	/* NULL: /run/devmemtcp */
	unsigned flags;		/* DMT_NIC_NO_GRO_HW */
};
#define DMT_NIC_NO_GRO_HW 1u	/* prepare leaves rx-gro-hw as it is */

/* dmt_nic_open with options. */
struct dmt_nic *dmt_nic_open_opts(const char *ifname,
				  const struct dmt_nic_opts *opts,
				  struct dmt_err *err);

#define DMT_NIC_KEEP	1u	/* dmt_nic_free: leave the changes in place,
				 * recorded in the log for a later restore */
/*
 * Restore (unless DMT_NIC_KEEP), then free.  If the restore is refused or
 * fails, returns its -errno and the handle stays valid (unbind, then call
 * again; or free with DMT_NIC_KEEP).  0: freed.  dmt_nic_close (0.1) is
 * dmt_nic_free(nic, 0), then dmt_nic_free(nic, DMT_NIC_KEEP) if refused.
 */
int dmt_nic_free(struct dmt_nic *nic, unsigned flags);

/* What dmt_nic_restore_log did with one log (an output struct: set sz). */
struct dmt_nic_log {
	size_t sz;
	char path[256];
	char ifname[16];	/* as recorded */
	unsigned ifindex;	/* as recorded */
	int pid;		/* the process that recorded the changes */
	unsigned changes;	/* changes recorded and not yet undone */
	unsigned undone;	/* of those, undone by this call */
	unsigned rules;		/* ntuple rules deleted */
	bool rings;		/* tcp-data-split / hds-thresh put back */
	bool rss;		/* the RSS table put back */
	bool ntuple;		/* the ntuple feature turned off again */
	struct dmt_err err;	/* code 0: fully restored, log removed */
	/* (0.2) fields below: present when sz covers them */
	bool gro_hw;		/* rx-gro-hw turned off again */
};

/*
 * Replay the undo log of ifname in this network namespace, or (ifname
 * NULL) every log there.  cb (may be NULL) is called once per log found.
 * Returns the number of logs fully restored, or the first -errno:
 * -ENOENT no log, -EBADMSG a corrupt log, -EBUSY a process still holds it
 * or a queue is still bound, -ENODEV / -ESTALE the interface is gone or
 * was recreated (its settings went with it; delete the log).
 */
int dmt_nic_restore_log(const char *ifname, const struct dmt_nic_opts *opts,
			int (*cb)(const struct dmt_nic_log *log, void *arg),
			void *arg, struct dmt_err *err);

/* ------------------------------------------------------------- receiving */

/* bind-rx: bind dmabuf_fd to RX queues of ifindex; *id gets the dmabuf id. */
int dmt_bind_rx(struct dmt_nl *nl, unsigned ifindex, int dmabuf_fd,
		const uint32_t *queues, unsigned nqueues, uint32_t *id);

struct dmt_rxbind_opts {
	size_t sz;
	enum dmt_mode policy;	/* DMT_MODE_DEVMEM; DMT_MODE_AUTO: copy into
				 * the buffer if refused; DMT_MODE_COPY:
				 * plain recv into it (through its host
				 * mapping, or, CUDA, a bounce buffer and
				 * the driver's copy call) */
	unsigned queue_start;
	unsigned queue_count;	/* 0: 1 */
	unsigned :32;		/* 0.1's tail padding (0.1's DMT_OPTS did not
				 * zero it): never read, never a field */
	/* 0.2 (Linux >= 7.3): bind-rx's rx-page-size, the size of the
	 * buffers the queue receives into; 0: the page size (the attribute
	 * is not sent).  A power of two >= 4096; the driver must support it
	 * (in 7.3 bnxt and mlx5 do) and every piece of the dma-buf must be
	 * aligned to it (udmabuf: hugepages).  Refusals carry the kernel's
	 * extack. */
	uint32_t rx_page_size;
	unsigned :32;		/* padding, must be zero (DMT_OPTS zeroes it) */
};

struct dmt_rxbind;

/* bind-rx of buf on queues of ifname (through its own netlink socket). */
struct dmt_rxbind *dmt_rxbind_new(const char *ifname, struct dmt_dmabuf *buf,
				  const struct dmt_rxbind_opts *opts,
				  struct dmt_err *err);
/* Closes the netlink socket: the kernel unbinds and restarts the queues. */
void dmt_rxbind_free(struct dmt_rxbind *bind);
enum dmt_mode dmt_rxbind_mode(const struct dmt_rxbind *bind); /* DEVMEM, COPY */
uint32_t dmt_rxbind_id(const struct dmt_rxbind *bind);
const char *dmt_rxbind_fallback_reason(const struct dmt_rxbind *bind);

/* One piece of the received stream, in stream order. */
struct dmt_rx_frag {
	uint64_t off;		/* offset into the dma-buf (not linear) */
	uint32_t len;
	bool linear;		/* payload that did not land in the dma-buf */
	const void *data;	/* linear: the bytes; copy mode: in the map;
				 * NULL for a devmem fragment, or a copy
				 * into a buffer without a mapping (CUDA):
				 * read it with dmt_dmabuf_read at off */
};

struct dmt_rx_opts {
	size_t sz;
	unsigned max_frags;	/* per dmt_rx_recv, 0: 256 */
	size_t max_bytes;	/* per dmt_rx_recv, 0: 1 MiB (0.2: with a
				 * caller's linear buffer, its length) */
	/* 0.2: caller-provided buffers, used instead of allocated ones.
	 * linear (linear_len bytes) receives SCM_DEVMEM_LINEAR payload and
	 * bounds each call's bytes; control (control_len bytes) receives the
	 * cmsgs: CMSG_SPACE(24) bytes per fragment a call may return.  They
	 * must outlive the engine and belong to it alone. */
	void *linear;
	size_t linear_len;
	void *control;
	size_t control_len;
};

struct dmt_rx_stats {
	uint64_t bytes;		/* all payload */
	uint64_t frags;		/* dma-buf fragments (copy mode: ring pieces) */
	uint64_t linear_bytes;	/* payload delivered as SCM_DEVMEM_LINEAR */
	uint64_t tokens;	/* tokens returned */
	uint64_t dontneed_calls;
	uint64_t recv_calls;
};

struct dmt_rx;

/* A receive engine on a connected TCP socket (fd stays the caller's). */
struct dmt_rx *dmt_rx_new(int fd, struct dmt_rxbind *bind,
			  const struct dmt_rx_opts *opts, struct dmt_err *err);
/* Returns every token still held, then frees. */
void dmt_rx_free(struct dmt_rx *rx);
const struct dmt_err *dmt_rx_error(const struct dmt_rx *rx);
/*
 * Receive: returns the number of fragments stored in frags (at most max,
 * clamped to opts.max_frags; a copy-mode call returns at most
 * min(max_bytes, buffer size) bytes),
 * 0 at end of stream, -EAGAIN on a non-blocking socket with nothing to
 * read, or -errno.  The fragments of the previous call are given back to
 * the kernel first (SO_DEVMEM_DONTNEED in merged token ranges), so a
 * fragment is valid until the next dmt_rx_recv or dmt_rx_release.
 */
int dmt_rx_recv(struct dmt_rx *rx, struct dmt_rx_frag *frags, unsigned max);
/* Give back the fragments of the last call now; tokens returned or -errno. */
int dmt_rx_release(struct dmt_rx *rx);
void dmt_rx_get_stats(const struct dmt_rx *rx, struct dmt_rx_stats *st);

/* ============================================ 0.2: receive engine (RX) ==
 *
 * Held fragments: dmt_rx_recv_hold returns chunks that stay valid until
 * the caller gives them back with dmt_rx_put, one by one or in batches,
 * in any order, from any thread (SO_DEVMEM_DONTNEED needs no socket lock).
 * 0.1's dmt_rx_recv keeps its behaviour (its fragments go back at the next
 * receive).  An engine may receive into several bindings (dmt_rx_add_bind);
 * every chunk names its binding and the kernel's dmabuf id, and a fragment
 * of an id the engine does not know is handed out flagged, not dropped.
 * The engine works on its own duplicate of the socket (F_DUPFD_CLOEXEC):
 * after close(fd), dmt_rx_put and dmt_rx_free still reach the socket the
 * tokens came from and never one that reused the number; the connection
 * lives until the engine is freed (remove fd from epoll before closing it).
 * While fd still names that socket, receives use fd itself, as recv(2) on
 * it would; dmt_rx_put always uses the duplicate.
 */

/* dmt_rx_chunk.flags */
#define DMT_RX_CHUNK_LINEAR	0x1u	/* bytes in the linear buffer, at data
					 * (nothing to give back) */
#define DMT_RX_CHUNK_UNKNOWN	0x2u	/* devmem fragment of a dmabuf id none
					 * of the engine's bindings has: bind
					 * and buf NULL; give it back too */

/* One piece of the stream, in stream order; keep it until dmt_rx_put. */
struct dmt_rx_chunk {
	uint64_t off;		/* devmem: offset in the dma-buf; copy mode:
				 * in the buffer (data = map + off);
				 * linear: 0 */
	uint32_t len;
	uint32_t token;		/* what dmt_rx_put gives back; 0 for linear
				 * chunks (a devmem frag: the kernel's token;
				 * copy mode: the engine's sequence number) */
	uint32_t dmabuf_id;	/* devmem: the kernel's binding id, else 0 */
	uint32_t flags;		/* DMT_RX_CHUNK_* */
	struct dmt_rxbind *bind;	/* the binding the bytes are in */
	struct dmt_dmabuf *buf;		/* its dma-buf */
	const void *data;	/* linear: the bytes (in the engine's linear
				 * buffer: valid until its next receive; in
				 * the call's: while the caller keeps it);
				 * copy mode: in the buffer's mapping; NULL
				 * for a devmem frag, or a copy into a
				 * buffer without a mapping, CUDA (read at
				 * buf, off) */
	uint64_t reserved[2];	/* 0 */
};

/* dmt_rx_recv_opts.flags */
#define DMT_RX_DONTWAIT		0x1u	/* MSG_DONTWAIT: -EAGAIN, never block */

struct dmt_rx_recv_opts {
	size_t sz;
	uint64_t flags;		/* DMT_RX_* */
	size_t max_bytes;	/* at most this many bytes (devmem and linear
				 * together); 0: the engine's max_bytes */
	void *linear;		/* this call's linear buffer, NULL: the
				 * engine's; it also bounds the call's bytes */
	size_t linear_len;
};

/*
 * Receive up to max chunks (and max_bytes bytes) and hold them: returns
 * the number stored, 0 at end of stream, -EAGAIN (non-blocking socket or
 * DMT_RX_DONTWAIT), -EINTR (a signal; nothing was received), -ENOBUFS
 * (copy mode: the buffer is full of held chunks; put some back), or
 * -errno.  Linear bytes come as DMT_RX_CHUNK_LINEAR chunks.  Tokens of a
 * previous dmt_rx_recv (0.1) go back first; held chunks are not touched.
 * Call it from one thread at a time per engine.
 */
int dmt_rx_recv_hold(struct dmt_rx *rx, struct dmt_rx_chunk *chunks,
		     unsigned max, const struct dmt_rx_recv_opts *opts);
/*
 * Give chunks back, from any thread: their tokens sorted, merged into
 * ranges and returned with SO_DEVMEM_DONTNEED (<= 128 ranges, <= 1024
 * frags per call).  Linear chunks are skipped.  Returns the number given
 * back, -ENOENT when some were not held (given back twice, or another
 * engine's: the others went back), or -errno.
 */
int dmt_rx_put(struct dmt_rx *rx, const struct dmt_rx_chunk *chunks,
	       unsigned n);
/*
 * Add a devmem binding (another dma-buf, or other queues) whose fragments
 * this engine may receive; the engine's own is the first.  Up to 16; the
 * binding must outlive the engine.  -EEXIST if added already.
 */
int dmt_rx_add_bind(struct dmt_rx *rx, struct dmt_rxbind *bind);

struct dmt_rx_counters {
	size_t sz;		/* the caller's sizeof(struct dmt_rx_counters) */
	uint64_t bytes;		/* payload received */
	uint64_t linear_bytes;	/* of which linear */
	uint64_t frags_received;	/* chunks with a token: devmem frags, and
					 * copy chunks of dmt_rx_recv_hold */
	uint64_t frags_released;	/* given back (counted by the kernel) */
	uint64_t frags_held;	/* held now */
	uint64_t frags_lost;	/* given back, but the kernel did not know
				 * them: a bug somewhere */
	uint64_t frags_unknown;	/* of an unknown dmabuf id (received) */
	uint64_t dontneed_calls;
	uint64_t recv_calls;
};
/* No token leaked: frags_released == frags_received after the last put. */
int dmt_rx_get_counters(const struct dmt_rx *rx, struct dmt_rx_counters *c);
/* ===================================================== end of 0.2 RX == */

#ifdef __cplusplus
}
#endif
#endif /* DEVMEMTCP_H */
