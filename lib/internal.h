/* SPDX-License-Identifier: MIT */
/*
 * internal.h - what the library's files share and users never see.
 * One .c per area: error.c dmabuf.c pattern.c genl.c (the netlink exchange
 * netlink.c and ethtool.c share) netlink.c ethtool.c common.c (what the
 * two bindings share) tx.c (the TX binding, the send engine, its region
 * allocator and the error-queue reader) rx.c.
 */
#ifndef DMT_INTERNAL_H
#define DMT_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devmemtcp.h"

#define DMT_API __attribute__((visibility("default")))

/* ---------------------------------------------------------------- error.c */

/* Reset err (NULL is fine). */
void dmt_err_clear(struct dmt_err *err);
/*
 * Fill err (NULL is fine) and return code (a negative errno): what is a
 * printf format naming the step; fix may be NULL.  extack is left as is,
 * so set it afterwards with dmt_err_extack when the kernel gave one.
 */
int dmt_err_set(struct dmt_err *err, int code, const char *fix,
		const char *what, ...) __attribute__((format(printf, 4, 5)));
void dmt_err_extack(struct dmt_err *err, const char *msg);
/* Copy src into dst (either may be NULL) and return src->code. */
int dmt_err_copy(struct dmt_err *dst, const struct dmt_err *src);

/*
 * Check an options struct whose first field is its size: NULL (all
 * defaults) and a valid struct give 0; a size smaller than that first
 * field, or a non-zero byte between known_sz and the caller's size, gives
 * -EINVAL.  Read a field only if it lies below the caller's sz: use
 * DMT_OPT(opts, field, default).
 */
int dmt_opts_check(const void *opts, size_t known_sz, struct dmt_err *err,
		   const char *name);

/* The known size of an options struct: up to the end of its last field. */
#define DMT_OPTS_END(type, field) \
	(offsetof(struct type, field) + sizeof(((struct type *)0)->field))

#define DMT_OPT(o, field, dflt) \
	((o) && (o)->sz >= offsetof(__typeof__(*(o)), field) + sizeof((o)->field) \
	 ? (o)->field : (dflt))

/* --------------------------------------------------------------- dmabuf.c */

struct dmt_dmabuf_ops;

struct dmt_dmabuf {
	enum dmt_provider provider;
	int fd;			/* the dma-buf */
	size_t size;
	void *map;		/* host mapping of the dma-buf, NULL if none */
	bool borrowed;		/* map is the caller's memory (host_addr) */
	int memfd;		/* udmabuf: the backing memfd, else -1 */
	void *priv;		/* provider state (cuda: context, pointer) */
	const struct dmt_dmabuf_ops *ops;
	struct dmt_err err;	/* last error */
};

struct dmt_dmabuf_ops {
	/* device <-> host copies for buffers without a host mapping */
	int (*write)(struct dmt_dmabuf *buf, size_t off, const void *src,
		     size_t len);
	int (*read)(struct dmt_dmabuf *buf, size_t off, void *dst, size_t len);
	void (*release)(struct dmt_dmabuf *buf);
	/* optional: host memory those copies are fastest with (CUDA: pinned,
	 * so the copy engine reads it directly); NULL when it has none */
	void *(*staging_alloc)(struct dmt_dmabuf *buf, size_t len);
	void (*staging_free)(struct dmt_dmabuf *buf, void *p);
};

/*
 * DMA_BUF_IOCTL_SYNC start/end with DMA_BUF_SYNC_{READ,WRITE,RW}; no-op
 * for the host provider and unmapped buffers; sets no error (the public
 * dmt_dmabuf_sync checks its flags and does).
 */
int dmt_dmabuf_cpu_sync(const struct dmt_dmabuf *buf, bool start,
			unsigned long rw);
/* Can the CPU write into it: a host mapping, or the provider's copy calls
 * (CUDA's cuMemcpyHtoD)? */
bool dmt_dmabuf_writable(const struct dmt_dmabuf *buf);
/* A bounce buffer for dmt_dmabuf_read/write: the provider's staging memory
 * (*own true) or malloc; free it with the same *own, before the buffer. */
void *dmt_dmabuf_staging_alloc(struct dmt_dmabuf *buf, size_t len, bool *own);
void dmt_dmabuf_staging_free(struct dmt_dmabuf *buf, void *p, bool own);

/* ----------------------------------------------------------------- genl.c */

struct mnl_socket;
struct nlmsghdr;

/* A netlink socket with NETLINK_EXT_ACK and NETLINK_CAP_ACK on. */
struct dmt_nls {
	struct mnl_socket *sock;
	uint32_t portid;
	uint32_t seq;		/* of the last request */
};

/*
 * A request, and names for its attributes so that an extack pointing at
 * one (NLMSGERR_ATTR_OFFS) reads "bad attribute fd": names[type], or the
 * number where names has none.  With nest_names, attributes one level
 * inside a nest are named too ("queues[2].id").
 */
struct dmt_nlreq {
	struct nlmsghdr *nlh;
	size_t hdrlen;		/* family header; 0: a genlmsghdr */
	const char *const *names;	/* NULL: numbers */
	unsigned nr_names;
	const char *const *nest_names;	/* NULL: nests not looked into */
	unsigned nr_nest_names;
};

/* A data message of the reply: >= 0 to go on, < 0 (a -errno) to stop. */
typedef int (*dmt_nl_cb)(const struct nlmsghdr *nlh, void *arg);

/*
 * Open and bind s on bus (NETLINK_GENERIC, NETLINK_ROUTE); on failure err
 * says which step and s->sock may be open: dmt_nls_close it.
 */
int dmt_nls_open(struct dmt_nls *s, int bus, struct dmt_err *err);
void dmt_nls_close(struct dmt_nls *s);
/*
 * Start a generic netlink request in buf (len bytes, zeroed): NLM_F_REQUEST,
 * NLM_F_ACK and flags (NLM_F_DUMP), the next sequence number of s.
 */
struct nlmsghdr *dmt_genl_msg(struct dmt_nls *s, void *buf, size_t len,
			      uint16_t family, uint8_t cmd, uint8_t version,
			      uint16_t flags);
/*
 * Send req (NLM_F_ACK set) and read until its ack, error or NLMSG_DONE,
 * handing data messages to cb (NULL: none).  Returns 0, cb's first negative
 * value, -EAGAIN for a dump the kernel marked interrupted, or -errno with
 * the kernel's extack in err->extack (err's other fields are left alone).
 * Once cb stops, the rest is read and dropped.
 */
int dmt_nls_exchange(struct dmt_nls *s, const struct dmt_nlreq *req,
		     dmt_nl_cb cb, void *arg, struct dmt_err *err);
/*
 * Resolve the generic netlink family name: *id, and *ops (NULL: not
 * wanted) with bit n set for each command n < 64 it offers.  -ENOENT: no
 * such family; -EPROTO: a reply without an id.
 */
int dmt_genl_family(struct dmt_nls *s, const char *name, uint16_t *id,
		    uint64_t *ops, struct dmt_err *err);

/* -------------------------------------------------------------- netlink.c */

struct dmt_nl {
	struct dmt_nls nls;
	uint16_t family;	/* resolved netdev family id */
	struct dmt_err err;	/* last error */
};

/* --------------------------------------------------------------- common.c */

/* What an RX and a TX binding share; each embeds one as its first field. */
struct dmt_bindcore {
	enum dmt_mode mode;	/* what it ended as: DEVMEM, ZEROCOPY, COPY */
	unsigned ifindex;
	char ifname[16];
	uint32_t id;		/* devmem: the dmabuf id */
	struct dmt_dmabuf *buf;	/* not owned */
	struct dmt_nl *nl;	/* devmem: owns the binding */
	char reason[640];	/* why not devmem, "" if devmem */
};

/*
 * Check buf and ifname and look the interface up.  side names the binding
 * in errors ("RX binding"), ifhint is the fix for a bad name.  0, or
 * -errno with err filled.
 */
int dmt_bindcore_init(struct dmt_bindcore *c, const char *ifname,
		      struct dmt_dmabuf *buf, const char *side,
		      const char *ifhint, struct dmt_err *err);
/*
 * The netlink socket for a devmem bind, after checking that the buffer is
 * a dma-buf; dir is "RX" or "TX".  NULL with e filled.
 */
struct dmt_nl *dmt_bindcore_nl(struct dmt_bindcore *c, const char *dir,
			       struct dmt_err *e);
/* The bind on nl worked: c is devmem with dmabuf id, nl now owned by c. */
void dmt_bindcore_bound(struct dmt_bindcore *c, struct dmt_nl *nl,
			uint32_t id);
/*
 * The bind on nl failed with ret: fill e (what, fix, the kernel's extack),
 * close nl and return ret.
 */
int dmt_bindcore_refused(struct dmt_nl *nl, int ret, const char *fix,
			 struct dmt_err *e, const char *what, ...)
	__attribute__((format(printf, 5, 6)));
/*
 * Settle the devmem attempt that returned ret (e filled on refusal) under
 * policy: 1 bound, 0 fall back (c->reason says why; with_fix adds e's
 * fix), -errno with err filled when policy required devmem.
 */
int dmt_bindcore_settle(struct dmt_bindcore *c, enum dmt_mode policy,
			int ret, const struct dmt_err *e, bool with_fix,
			struct dmt_err *err);
/* Unbind (closing the netlink socket does it). */
void dmt_bindcore_fini(struct dmt_bindcore *c);

/* ------------------------------------------------------------------ tx.c */

struct dmt_txbind {
	struct dmt_bindcore c;
	/* zerocopy from a udmabuf: our mapping of its memfd (pinnable pages,
	 * unlike the dma-buf's PFN map), made on first use, freed with us */
	void *zc_map;
};

/* ------------------------------------------------------------------ rx.c */

struct dmt_rxbind {
	struct dmt_bindcore c;
	unsigned queue_start, queue_count;
	uint32_t rx_page_size;	/* 0: not sent */
};

/* netlink.c: dmt_bind_rx with bind-rx's rx-page-size (0: not sent). */
int dmt_bind_rx_page(struct dmt_nl *nl, unsigned ifindex, int dmabuf_fd,
		     const uint32_t *queues, unsigned nqueues, uint32_t rx_page_size,
		     uint32_t *id);

#endif /* DMT_INTERNAL_H */
