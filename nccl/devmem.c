// SPDX-License-Identifier: MIT
/*
 * devmem.c - what the plugin needs of devmem TCP, on libdevmemtcp 0.2:
 *
 *   init    dn_devmem_probe: every condition checked without changing
 *           anything (CAP_NET_ADMIN, the netdev family, RX queues, header
 *           split, RSS table, ntuple, no XDP, a dma-buf provider, and a
 *           real bind-tx of a small buffer, undone at once by closing the
 *           netlink socket); every reason that fails goes to NCCL's log.
 *   listen  dn_devmem_rx_get: queues prepared (dmt_nic_prepare_rx, undo
 *           log) and the bounce dma-buf bound (dmt_rxbind_new), shared by
 *           every listen and receive comm of the device, undone by the
 *           last close.
 *   accept  dn_devmem_accept: the accepted data flow steered to the
 *           devmem queue (dmt_nic_steer), a receive engine on the socket
 *           (dmt_rx_new), the UNPACK device handle published; the comm
 *           holds a reference on the RX side (NCCL closes the listen comm
 *           right after accept).  Its close deletes the rule
 *           (dmt_nic_unsteer) and drops the reference.
 *   receive dn_devmem_hold (device buffers): fragments held
 *           (dmt_rx_recv_hold) and published as loadMeta, given back at
 *           irecvConsumed (dn_devmem_put: dmt_rx_put); dn_devmem_read
 *           (host buffers): copied out of the dma-buf and given back at
 *           once.
 *   regMrDmaBuf (send comm)  dn_devmem_reg_tx: NCCL's dma-buf imported
 *           (provider fd, dup'ed) and bound for TX (dmt_txbind_new,
 *           devmem required); core.c sends from it with dmt_tx_submit.
 *
 * What remains for a GPU (device-visible metadata, the bounce buffer's
 * CUDA address): PORTING.md.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plugin.h"

struct dn_rxside {
	struct dmt_nic *nic;
	struct dmt_dmabuf *buf;
	struct dmt_rxbind *bind;
	unsigned q_start;
};

#define DN_CHUNKS 256			/* chunks per dmt_rx_recv_hold */

struct dn_rxconn {
	struct dmt_rx *rx;
	struct dmt_dmabuf *buf;		/* the bounce buffer (dev.rx's) */
	struct dmt_rxbind *bind;	/* its binding */
	uint64_t linear_bytes, dmabuf_bytes, published;
	struct dmt_nccl_unpack_meta *meta;	/* host memory this round: NCCL
						 * wants it mapped for the GPU */
	struct dmt_nccl_unpack_handle uh;
	struct dn_dev *dev;		/* holds a reference on dev->rx */
	uint32_t loc;			/* the data flow's ntuple rule */
};

/* CAP_NET_ADMIN in the effective set (/proc/self/status CapEff, bit 12). */
static bool have_net_admin(void)
{
	char line[256];
	unsigned long long caps = 0;
	bool found = false;
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return geteuid() == 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "CapEff: %llx", &caps) == 1) {
			found = true;
			break;
		}
	fclose(f);
	return found ? !!(caps & (1ull << 12)) : geteuid() == 0;
}

static bool provider_present(enum dmt_provider p)
{
	struct stat st;

	switch (p) {
	case DMT_PROVIDER_UDMABUF:
		return !stat("/dev/udmabuf", &st);
	case DMT_PROVIDER_HEAP:
		return !stat("/dev/dma_heap/system", &st);
	default:
		return true;	/* cuda: the allocation itself tells */
	}
}

#define WHY(...) do {                                                      \
		size_t _l = strlen(why);                                   \
		if (_l < len)                                              \
			snprintf(why + _l, len - _l, "%s", _l ? "; " : ""); \
		_l = strlen(why);                                          \
		if (_l < len)                                              \
			snprintf(why + _l, len - _l, __VA_ARGS__);         \
		fails++;                                                   \
	} while (0)

int dn_devmem_probe(const struct dn_dev *dev, char *why, size_t len)
{
	struct dn_state *s = &dn_state;
	struct dmt_err e = { 0 };
	struct dmt_nic_state st;
	struct dmt_nic *nic;
	struct dmt_nl *nl;
	char msg[600];
	int fails = 0;

	why[0] = '\0';
	if (!have_net_admin())
		WHY("no CAP_NET_ADMIN (bind-rx, bind-tx and NIC setup need it: run as root)");

	nic = dmt_nic_open(dev->ifname, &e);
	if (!nic || dmt_nic_get_state(nic, &st) < 0) {
		if (nic)
			e = *dmt_nic_error(nic);
		WHY("NIC state of %s unreadable: %s", dev->ifname, dmt_err_str(&e, msg, sizeof(msg)));
	} else {
		if (s->q_start == UINT_MAX && st.rx_queues > s->q_count)
			s->q_start = st.rx_queues - s->q_count;
		if (st.rx_queues < s->q_count + 1)
			WHY("%u RX queue%s: devmem needs %u for itself and 1 for the rest "
			    "(ethtool -L %s combined %u)", st.rx_queues, st.rx_queues == 1 ? "" : "s",
			    s->q_count, dev->ifname, s->q_count + 1);
		else if (s->q_start + s->q_count > st.rx_queues || s->q_start == 0)
			WHY("NCCL_DEVMEMTCP_QUEUES %u:%u outside queues 1..%u", s->q_start, s->q_count,
			    st.rx_queues - 1);
		if (!st.has_rings || !st.tcp_data_split)
			WHY("no header split: %s does not report tcp-data-split (ethtool -g); "
			    "devmem RX needs a driver that splits headers from payload", dev->ifname);
		if (!st.rss_indir_size)
			WHY("no RSS indirection table (ethtool -x %s): the devmem queues cannot leave RSS",
			    dev->ifname);
		if (!st.ntuple)
			WHY("no ntuple flow steering (ethtool -K %s ntuple on)", dev->ifname);
		if (st.xdp)
			WHY("an XDP program is attached (bind-rx refuses)");
	}
	dmt_nic_close(nic);	/* nothing was changed: nothing to undo */

	if (!provider_present(s->provider))
		WHY("no %s dma-buf provider for the receive buffer (NCCL_DEVMEMTCP_PROVIDER)",
		    dmt_provider_name(s->provider));

	/* bind-tx of a small buffer: the kernel's own answer (closing the
	 * netlink socket unbinds it) */
	nl = dmt_nl_open(&e);
	if (!nl) {
		WHY("netdev netlink: %s", dmt_err_str(&e, msg, sizeof(msg)));
	} else if (provider_present(s->provider) && s->provider != DMT_PROVIDER_CUDA) {
		DMT_OPTS(dmt_dmabuf_opts, o, .provider = s->provider, .size = 2 << 20);
		struct dmt_dmabuf *b = dmt_dmabuf_new(&o, &e);
		uint32_t id;

		if (!b)
			WHY("a 2 MiB %s dma-buf: %s", dmt_provider_name(s->provider),
			    dmt_err_str(&e, msg, sizeof(msg)));
		else if (dmt_bind_tx(nl, dev->ifindex, dmt_dmabuf_fd(b), &id) < 0)
			WHY("bind-tx refused: %s", dmt_err_str(dmt_nl_error(nl), msg, sizeof(msg)));
		dmt_nl_close(nl);	/* unbinds */
		nl = NULL;
		dmt_dmabuf_free(b);
	}
	dmt_nl_close(nl);
	return fails ? -ENODEV : 0;
}

int dn_devmem_rx_get(struct dn_dev *dev)
{
	struct dn_state *s = &dn_state;
	struct dmt_err e = { 0 };
	struct dn_rxside *rx;
	char msg[600];

	if (dev->rx) {
		dev->rx_users++;
		return 0;
	}
	if (s->buf_size > UINT32_MAX) {
		/* loadMeta's src_off is 32 bits */
		DN_WARN("listen: NCCL_DEVMEMTCP_BUF_SIZE %zu: UNPACK offsets are 32-bit, keep the "
			"bounce buffer under 4 GiB", s->buf_size);
		return -EINVAL;
	}
	rx = calloc(1, sizeof(*rx));
	if (!rx)
		return -ENOMEM;
	rx->q_start = s->q_start;
	rx->nic = dmt_nic_open(dev->ifname, &e);
	if (!rx->nic)
		goto err;
	if (dmt_nic_prepare_rx(rx->nic, s->q_start, s->q_count) < 0) {
		e = *dmt_nic_error(rx->nic);
		goto err;
	}
	DMT_OPTS(dmt_dmabuf_opts, o, .provider = s->provider, .size = s->buf_size);
	rx->buf = dmt_dmabuf_new(&o, &e);
	if (!rx->buf)
		goto err;
	DMT_OPTS(dmt_rxbind_opts, ro, .policy = DMT_MODE_DEVMEM, .queue_start = s->q_start,
		 .queue_count = s->q_count);
	rx->bind = dmt_rxbind_new(dev->ifname, rx->buf, &ro, &e);
	if (!rx->bind)
		goto err;
	dev->rx = rx;
	dev->rx_users = 1;
	DN_INFO(NCCL_NET, "queues %u..%u of %s bound to a %zu-byte %s dma-buf (id %u)", s->q_start,
		s->q_start + s->q_count - 1, dev->ifname, s->buf_size,
		dmt_provider_name(s->provider), dmt_rxbind_id(rx->bind));
	return 0;
err:
	DN_WARN("listen: devmem RX on %s: %s", dev->ifname, dmt_err_str(&e, msg, sizeof(msg)));
	dmt_dmabuf_free(rx->buf);
	dmt_nic_close(rx->nic);	/* undoes what prepare did */
	free(rx);
	return -EIO;
}

void dn_devmem_rx_put(struct dn_dev *dev)
{
	struct dn_rxside *rx = dev->rx;

	if (!rx || --dev->rx_users > 0)
		return;
	dmt_rxbind_free(rx->bind);	/* unbind first: restore needs it */
	dmt_nic_close(rx->nic);		/* rules, RSS, header split undone */
	dmt_dmabuf_free(rx->buf);
	free(rx);
	dev->rx = NULL;
}

/* The comm's flow is over: its ntuple rule goes now (the queues, the
 * binding and the other comms' rules stay), then its reference on the RX
 * side (the last one undoes the NIC setup). */
static void unsteer(struct dn_rxconn *d)
{
	struct dn_dev *dev = d->dev;
	char msg[600];

	pthread_mutex_lock(&dn_state.lock);
	if (dmt_nic_unsteer(dev->rx->nic, d->loc) < 0)
		DN_WARN("close: ntuple rule %u on %s: %s", d->loc, dev->ifname,
			dmt_err_str(dmt_nic_error(dev->rx->nic), msg, sizeof(msg)));
	else
		DN_INFO(NCCL_NET, "ntuple rule %u on %s deleted (its receive comm closed)",
			d->loc, dev->ifname);
	dn_devmem_rx_put(dev);
	pthread_mutex_unlock(&dn_state.lock);
	d->dev = NULL;
}

int dn_devmem_accept(struct dn_dev *dev, struct dn_comm *c, const struct sockaddr_storage *peer)
{
	struct dn_rxside *rx = dev->rx;
	struct dmt_flow flow = { .peer = *peer };
	socklen_t len = sizeof(flow.local);
	struct dmt_err e = { 0 };
	struct dn_rxconn *d;
	char msg[600];
	uint32_t loc;

	if (!rx)
		return -EINVAL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->meta = calloc(1, sizeof(*d->meta));
	if (!d->meta)
		goto err_nomem;
	if (getsockname(c->fd, (struct sockaddr *)&flow.local, &len)) {
		snprintf(e.what, sizeof(e.what), "getsockname");
		e.code = -errno;
		goto err;
	}
	/* the rule goes when this comm closes (dmt_nic_unsteer); the comm
	 * holds a reference on the RX side, since NCCL closes the listen
	 * comm right after accept */
	pthread_mutex_lock(&dn_state.lock);
	if (dmt_nic_steer(rx->nic, &flow, rx->q_start, &loc) < 0) {
		e = *dmt_nic_error(rx->nic);
		pthread_mutex_unlock(&dn_state.lock);
		goto err;
	}
	dev->rx_users++;
	pthread_mutex_unlock(&dn_state.lock);
	d->dev = dev;
	d->loc = loc;
	DMT_OPTS(dmt_rx_opts, xo, .max_frags = DN_CHUNKS, .max_bytes = NET_UNPACK_MAX_SLICE_SIZE);
	d->rx = dmt_rx_new(c->fd, rx->bind, &xo, &e);
	if (!d->rx)
		goto err;
	d->buf = rx->buf;
	d->bind = rx->bind;
	d->uh.meta = d->meta;
	d->uh.bounce_buf = dmt_dmabuf_map(rx->buf);	/* host view; a GPU pointer
							 * for CUDA (PORTING.md) */
	d->uh.head = 0;
	c->devhandle = (ncclNetDeviceHandle_v8_t){
		.netDeviceType = NCCL_NET_DEVICE_UNPACK,
		.netDeviceVersion = NCCL_NET_DEVICE_UNPACK_VERSION,
		.handle = &d->uh,
		.size = sizeof(d->uh),
		.needsProxyProgress = 1,
	};
	c->drx = d;
	return 0;
err_nomem:
	e.code = -ENOMEM;
	snprintf(e.what, sizeof(e.what), "UNPACK metadata");
err:
	DN_WARN("accept: devmem RX: %s", dmt_err_str(&e, msg, sizeof(msg)));
	if (d->dev)
		unsteer(d);
	free(d->meta);
	free(d);
	return -EIO;
}

/* A chunk the plugin cannot use: a dma-buf other than the bounce buffer
 * (loadMeta has one bounce_buf per handle). */
static bool foreign(const struct dn_rxconn *d, const struct dmt_rx_chunk *ch)
{
	return !(ch->flags & DMT_RX_CHUNK_LINEAR) &&
	       ((ch->flags & DMT_RX_CHUNK_UNKNOWN) || ch->bind != d->bind);
}

/*
 * Host destinations: the payload lands in the bounce dma-buf (the flow is
 * steered to its queue) and is copied out (dmt_dmabuf_read: bracketed by
 * DMA_BUF_IOCTL_SYNC for udmabuf, the driver's copy for CUDA); the chunks
 * go back at once.  At most len bytes, so no chunk reaches into the next
 * message.
 */
ssize_t dn_devmem_read(struct dn_comm *c, void *dst, size_t len)
{
	struct dn_rxconn *d = c->drx;
	struct dmt_rx_chunk ch[DN_CHUNKS];
	DMT_OPTS(dmt_rx_recv_opts, o, .flags = DMT_RX_DONTWAIT, .max_bytes = len);
	size_t done = 0;
	int n, rc = 0;

	n = dmt_rx_recv_hold(d->rx, ch, DN_CHUNKS, &o);
	if (n <= 0)
		return n;	/* -EAGAIN, -errno, or 0: end of stream */
	for (int i = 0; i < n && rc >= 0; i++) {
		if (ch[i].flags & DMT_RX_CHUNK_LINEAR) {
			memcpy((char *)dst + done, ch[i].data, ch[i].len);
			d->linear_bytes += ch[i].len;
		} else if (foreign(d, &ch[i])) {
			DN_WARN("receive: a fragment of dma-buf id %u, not the bounce buffer's %u",
				ch[i].dmabuf_id, dmt_rxbind_id(d->bind));
			rc = -EPROTO;
		} else {
			rc = dmt_dmabuf_read(d->buf, ch[i].off, (char *)dst + done, ch[i].len);
			d->dmabuf_bytes += ch[i].len;
		}
		done += ch[i].len;
	}
	if (dmt_rx_put(d->rx, ch, n) < 0 && rc >= 0)
		rc = dmt_rx_error(d->rx)->code ? dmt_rx_error(d->rx)->code : -EIO;
	return rc < 0 ? rc : (ssize_t)done;
}

void dn_devmem_slot_reset(struct dn_comm *c, int slot)
{
	__atomic_store_n(&c->drx->meta->cnt[slot], 0, __ATOMIC_RELEASE);
}

static int hold_append(struct dn_req *r, const struct dmt_rx_chunk *ch, int n)
{
	if (r->nchunks + n > r->cchunks) {
		unsigned cap = r->cchunks ? r->cchunks : 64;
		struct dmt_rx_chunk *p;

		while (cap < r->nchunks + n)
			cap *= 2;
		p = realloc(r->chunks, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		r->chunks = p;
		r->cchunks = cap;
	}
	memcpy(r->chunks + r->nchunks, ch, n * sizeof(*ch));
	r->nchunks += n;
	return 0;
}

/*
 * Device destinations (UNPACK): NCCL's device code copies bounce_buf +
 * src_off to the buffer + dst_off for each of cnt[slot] entries, so a
 * fragment is published, never copied, and held until irecvConsumed.
 * Linear bytes (payload that did not land in the dma-buf: the header
 * split missed, or it arrived before the flow was steered) have no
 * src_off: the receive fails with that reason rather than publish a wrong
 * one (the connect ack keeps payload from leaving before the rule is in).
 */
ssize_t dn_devmem_hold(struct dn_comm *c, struct dn_req *r, int i, size_t dst_off, size_t len)
{
	struct dn_rxconn *d = c->drx;
	struct dmt_rx_chunk ch[DN_CHUNKS];
	int slot = r->mslot[i];
	uint64_t cnt = d->meta->cnt[slot];
	unsigned room = NET_UNPACK_MAX_SLICE_PAGES - (unsigned)cnt;
	size_t done = 0;
	int n, bad = -1;

	if (!room) {
		DN_WARN("receive: more than %d fragments for one buffer (UNPACK slot full)",
			NET_UNPACK_MAX_SLICE_PAGES);
		return -E2BIG;
	}
	DMT_OPTS(dmt_rx_recv_opts, o, .flags = DMT_RX_DONTWAIT, .max_bytes = len);
	n = dmt_rx_recv_hold(d->rx, ch, room < DN_CHUNKS ? room : DN_CHUNKS, &o);
	if (n <= 0)
		return n;
	/* held from here on: into r, whatever happens (close gives them back) */
	if (hold_append(r, ch, n) < 0) {
		dmt_rx_put(d->rx, ch, n);
		return -ENOMEM;
	}
	for (int k = 0; k < n; k++) {
		if ((ch[k].flags & DMT_RX_CHUNK_LINEAR) || foreign(d, &ch[k])) {
			bad = k;
			break;
		}
		d->meta->mem[slot][cnt + k] = (union dmt_nccl_loadmeta){
			.src_off = (uint32_t)ch[k].off,
			.len = ch[k].len,
			.dst_off = dst_off + done,
		};
		done += ch[k].len;
	}
	if (bad >= 0) {
		if (ch[bad].flags & DMT_RX_CHUNK_LINEAR)
			DN_WARN("receive into device memory: %u bytes arrived linear (not in the "
				"dma-buf: no header split for them, or sent before the flow was "
				"steered); UNPACK can only copy from the bounce buffer", ch[bad].len);
		else
			DN_WARN("receive into device memory: a fragment of dma-buf id %u, not the "
				"bounce buffer's %u (loadMeta has one bounce_buf)", ch[bad].dmabuf_id,
				dmt_rxbind_id(d->bind));
		return -EPROTO;
	}
	d->dmabuf_bytes += done;
	d->published += n;
	/* entries before the count: the device reads cnt, then the entries */
	__atomic_store_n(&d->meta->cnt[slot], cnt + n, __ATOMIC_RELEASE);
	return (ssize_t)done;
}

static void log_counters(const struct dn_rxconn *d, const char *what, unsigned nfr,
			 const struct dmt_rx_counters *b, const struct dmt_rx_counters *a)
{
	DN_INFO(NCCL_NET, "tokens at %s: %u frags; before received %llu released %llu held %llu; "
		"after received %llu released %llu held %llu lost %llu", what, nfr,
		(unsigned long long)b->frags_received, (unsigned long long)b->frags_released,
		(unsigned long long)b->frags_held, (unsigned long long)a->frags_received,
		(unsigned long long)a->frags_released, (unsigned long long)a->frags_held,
		(unsigned long long)a->frags_lost);
	(void)d;
}

int dn_devmem_put(struct dn_comm *c, struct dn_req *r, const char *what)
{
	struct dn_rxconn *d = c->drx;
	struct dmt_rx_counters b = { .sz = sizeof(b) }, a = { .sz = sizeof(a) };
	int rc = 0;

	if (!d)
		return 0;
	dmt_rx_get_counters(d->rx, &b);
	if (r->nchunks) {
		rc = dmt_rx_put(d->rx, r->chunks, r->nchunks);
		if (rc < 0) {
			char msg[600];

			DN_WARN("%s: giving %u fragments back: %s", what, r->nchunks,
				dmt_err_str(dmt_rx_error(d->rx), msg, sizeof(msg)));
		}
	}
	dmt_rx_get_counters(d->rx, &a);
	log_counters(d, what, r->nchunks, &b, &a);
	free(r->chunks);
	r->chunks = NULL;
	r->nchunks = r->cchunks = 0;
	return rc < 0 ? rc : 0;
}

void dn_devmem_conn_free(struct dn_comm *c)
{
	struct dn_rxconn *d = c->drx;
	struct dmt_rx_counters a = { .sz = sizeof(a) };

	if (!d)
		return;
	/* the caller gave every request's held fragments back (dn_devmem_put) */
	dmt_rx_get_counters(d->rx, &a);
	DN_INFO(NCCL_NET, "receive comm closed: %llu bytes from the dma-buf, %llu linear, "
		"%llu fragments published; tokens received %llu released %llu held %llu lost %llu",
		(unsigned long long)d->dmabuf_bytes, (unsigned long long)d->linear_bytes,
		(unsigned long long)d->published, (unsigned long long)a.frags_received,
		(unsigned long long)a.frags_released, (unsigned long long)a.frags_held,
		(unsigned long long)a.frags_lost);
	dmt_rx_free(d->rx);	/* returns every token still held */
	unsteer(d);
	free(d->meta);
	free(d);
	c->drx = NULL;
}

int dn_devmem_reg_tx(struct dn_dev *dev, struct dn_mr *mr, int fd, uint64_t off)
{
	DMT_OPTS(dmt_dmabuf_opts, o, .provider = DMT_PROVIDER_FD, .fd = fd);
	DMT_OPTS(dmt_txbind_opts, to, .policy = DMT_MODE_DEVMEM);
	struct dmt_err e = { 0 };
	char msg[600];

	mr->buf = dmt_dmabuf_new(&o, &e);
	if (!mr->buf)
		goto err;
	if (off + mr->size > dmt_dmabuf_size(mr->buf)) {
		DN_WARN("regMrDmaBuf: [%llu, +%zu) outside the %zu-byte dma-buf",
			(unsigned long long)off, mr->size, dmt_dmabuf_size(mr->buf));
		dmt_dmabuf_free(mr->buf);
		mr->buf = NULL;
		return -ERANGE;
	}
	mr->txbind = dmt_txbind_new(dev->ifname, mr->buf, &to, &e);
	if (!mr->txbind)
		goto err;
	return 0;
err:
	DN_WARN("regMrDmaBuf: bind-tx on %s: %s", dev->ifname, dmt_err_str(&e, msg, sizeof(msg)));
	dmt_dmabuf_free(mr->buf);
	mr->buf = NULL;
	return -EIO;
}

void dn_devmem_mr_free(struct dn_mr *mr)
{
	dmt_txbind_free(mr->txbind);
	dmt_dmabuf_free(mr->buf);
	mr->txbind = NULL;
	mr->buf = NULL;
}
