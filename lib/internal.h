/* SPDX-License-Identifier: MIT */
/*
 * internal.h - what the library's files share and users never see.
 * One .c per area: error.c dmabuf.c pattern.c netlink.c tx.c (the TX
 * binding, the send engine, its region allocator and the error-queue
 * reader).
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
};

/* DMA_BUF_IOCTL_SYNC start/end with DMA_BUF_SYNC_{READ,WRITE,RW}. */
int dmt_dmabuf_sync(const struct dmt_dmabuf *buf, bool start,
		    unsigned long rw);

/* -------------------------------------------------------------- netlink.c */

struct dmt_nl {
	struct mnl_socket *sock;
	uint16_t family;	/* resolved netdev family id */
	uint32_t seq;
	uint32_t portid;
	struct dmt_err err;	/* last error */
};

/* ------------------------------------------------------------------ tx.c */

struct dmt_txbind {
	enum dmt_mode mode;
	unsigned ifindex;
	char ifname[16];
	uint32_t id;		/* devmem: the dmabuf id */
	struct dmt_dmabuf *buf;	/* not owned */
	struct dmt_nl *nl;	/* devmem: owns the binding */
	char reason[384];	/* why not devmem, "" if devmem */
};

#endif /* DMT_INTERNAL_H */
