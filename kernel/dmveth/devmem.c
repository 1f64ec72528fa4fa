// SPDX-License-Identifier: GPL-2.0
/*
 * dmveth: page pools, the pair's "DMA engine" and queue management ops.
 *
 * Every RX queue has one payload page pool that allows unreadable netmem,
 * so a memory provider bound to the queue (devmem dma-buf, io_uring zcrx)
 * supplies its buffers; without one the pool hands out ordinary pages.
 *
 * The "DMA engine" copies a frame from the sender's skb into receive
 * buffers through DMA addresses only: the source frags are mapped with
 * skb_frag_dma_map() (a devmem net_iov already carries its address) and the
 * destination netmems come with the address the page pool or the memory
 * provider gave them.  The pair's DMA device is dma-direct (see main.c), so
 * dma_to_phys() reaches the bytes; the CPU never dereferences a net_iov.
 *
 * Header split: with tcp-data-split enabled and a TCP payload longer than
 * hds-thresh, the Ethernet/IP/TCP headers go to the skb's linear area and
 * the payload into buffers from the pool.  Otherwise the whole frame is
 * copied into the linear area.
 *
 * Buffers are PAGE_SIZE unless the queue's configuration says otherwise:
 * dmveth advertises QCFG_RX_PAGE_SIZE, so bind-rx with rx-page-size (a
 * power of two from PAGE_SIZE to DMVETH_RX_PAGE_MAX) restarts the queue on
 * a pool of that order, whose buffers are the binding's net_iovs of that
 * size; each fills up to its size before the next one is taken.
 */
#include <linux/dma-direct.h>
#include <linux/dma-mapping.h>
#include <linux/etherdevice.h>
#include <linux/ethtool_netlink.h>
#include <linux/highmem.h>
#include <net/busy_poll.h>
#include <net/netdev_lock.h>
#include <net/netdev_queues.h>
#include <net/page_pool/helpers.h>

#include "dmveth.h"

/*
 * Created without .napi: a queue restart makes the new pool while the old
 * one's NAPI runs.  dmveth_rq_start() enables direct recycling into the
 * pool once it is the queue's, dmveth_rq_stop() disables it again with the
 * NAPI off (as bnxt does).
 */
struct page_pool *dmveth_create_pool(struct net_device *dev,
				     struct dmveth_rq *rq, unsigned int ring,
				     unsigned int buf_size)
{
	unsigned int order = get_order(buf_size ?: PAGE_SIZE);
	struct page_pool_params pp = {
		.flags = PP_FLAG_DMA_MAP | PP_FLAG_DMA_SYNC_DEV |
			 PP_FLAG_ALLOW_UNREADABLE_NETMEM,
		.order = order,
		/* the same bytes in flight, in fewer, larger buffers */
		.pool_size = max(min_t(unsigned int, ring * 4, 16384) >> order,
				 ring),
		.nid = NUMA_NO_NODE,
		.dev = dmveth_dma_dev(),
		.dma_dir = DMA_FROM_DEVICE,
		.max_len = PAGE_SIZE << order,
		.netdev = dev,
		.queue_idx = rq->idx,
	};

	/* validated by dmveth_validate_qcfg(); PAGE_SIZE when unset */
	if (WARN_ON_ONCE(buf_size > DMVETH_RX_PAGE_MAX ||
			 (buf_size && buf_size != PAGE_SIZE << order)))
		return ERR_PTR(-EINVAL);
	if (dmveth_fault_pool_create())
		return ERR_PTR(-ENOMEM);
	return page_pool_create(&pp);
}

void dmveth_destroy_pool(struct page_pool *pool)
{
	page_pool_destroy(pool);
}

/* Latch the core's header-split settings; under the instance lock, where
 * cfg_pending is the configuration being applied (or the current one).
 */
void dmveth_latch_hds(struct net_device *dev)
{
	struct dmveth_priv *priv = netdev_priv(dev);

	netdev_assert_locked(dev);
	WRITE_ONCE(priv->hds_config, dev->cfg_pending->hds_config);
	WRITE_ONCE(priv->hds_thresh, dev->cfg_pending->hds_thresh);
}

/*
 * Map the page at @phys, or NULL when it has no struct page: memory the
 * kernel does not manage (a PCI BAR, a no-map carve-out) has no mapping a
 * software NIC could use, so the frame is dropped instead.
 */
static void *dmveth_kmap_phys(phys_addr_t phys)
{
	if (unlikely(!pfn_valid(PHYS_PFN(phys))))
		return NULL;
	return kmap_local_pfn(PHYS_PFN(phys));
}

/* Copy @len bytes from a physical range, a page at a time (the range may
 * cross pages that are not mapped contiguously).
 */
static int dmveth_phys_read(void *dst, phys_addr_t src, unsigned int len)
{
	while (len) {
		unsigned int off = offset_in_page(src);
		unsigned int n = min_t(unsigned int, len, PAGE_SIZE - off);
		void *v = dmveth_kmap_phys(src);

		if (!v)
			return -EFAULT;
		memcpy(dst, v + off, n);
		kunmap_local(v);
		dst += n;
		src += n;
		len -= n;
	}
	return 0;
}

/*
 * Read @len bytes at @off of @skb into @dst, the way a NIC would: the
 * linear area is host memory; frags are reached through DMA addresses.
 */
static int dmveth_skb_read(struct device *dma, const struct sk_buff *skb,
			   unsigned int off, void *dst, unsigned int len)
{
	unsigned int hlen = skb_headlen(skb), i, pos;

	if (off < hlen) {
		unsigned int n = min(len, hlen - off);

		memcpy(dst, skb->data + off, n);
		dst += n;
		off += n;
		len -= n;
	}
	pos = hlen;
	for (i = 0; len && i < skb_shinfo(skb)->nr_frags; i++) {
		const skb_frag_t *frag = &skb_shinfo(skb)->frags[i];
		unsigned int fsize = skb_frag_size(frag), foff, n;
		dma_addr_t addr;
		int err;

		if (off >= pos + fsize) {
			pos += fsize;
			continue;
		}
		foff = off - pos;
		n = min(len, fsize - foff);
		addr = skb_frag_dma_map(dma, frag, foff, n, DMA_TO_DEVICE);
		if (dma_mapping_error(dma, addr))
			return -EIO;
		err = dmveth_phys_read(dst, dma_to_phys(dma, addr), n);
		/* a net_iov's address belongs to its binding: never unmap */
		if (!skb_frag_is_net_iov(frag))
			dma_unmap_page(dma, addr, n, DMA_TO_DEVICE);
		if (err)
			return err;
		dst += n;
		off += n;
		len -= n;
		pos += fsize;
	}
	return len ? -EFAULT : 0;
}

static void dmveth_rx_count(struct dmveth_rq *rq, unsigned int len,
			    bool split, bool unreadable)
{
	u64_stats_update_begin(&rq->stats.syncp);
	rq->stats.packets++;
	rq->stats.bytes += len;
	rq->stats.split_packets += split;
	rq->stats.unreadable_packets += unreadable;
	u64_stats_update_end(&rq->stats.syncp);
	dev_dstats_rx_add(rq->dev, len);
}

/*
 * Count @n frames dropped on @rq, on the queue and on the device alike.
 * Called by the queue's NAPI, or with it disabled.
 */
void dmveth_rx_drop(struct dmveth_rq *rq, unsigned int n, bool alloc_fail)
{
	u64_stats_update_begin(&rq->stats.syncp);
	rq->stats.drops += n;
	if (alloc_fail)
		rq->stats.alloc_fail += n;
	u64_stats_update_end(&rq->stats.syncp);
	dev_dstats_rx_dropped_add(rq->dev, n);
}

/*
 * "DMA" @len bytes at @off of @txskb to the physical range at @phys (one
 * receive buffer, contiguous), a page at a time.
 */
static int dmveth_phys_fill(struct device *dma, phys_addr_t phys,
			    const struct sk_buff *txskb, unsigned int off,
			    unsigned int len)
{
	while (len) {
		unsigned int poff = offset_in_page(phys);
		unsigned int n = min_t(unsigned int, len, PAGE_SIZE - poff);
		void *v = dmveth_kmap_phys(phys);
		int err;

		if (!v)
			return -EFAULT;
		err = dmveth_skb_read(dma, txskb, off, v + poff, n);
		kunmap_local(v);
		if (err)
			return err;
		phys += n;
		off += n;
		len -= n;
	}
	return 0;
}

/*
 * Place [@off, @off + @len) of @txskb into buffers of the pool, each one
 * filled up to the queue's buffer size (PAGE_SIZE or rx-page-size).
 */
static int dmveth_rx_payload(struct dmveth_rq *rq, struct sk_buff *skb,
			     const struct sk_buff *txskb, unsigned int off,
			     unsigned int len)
{
	unsigned int bsize = rq->buf_size;
	struct device *dma = dmveth_dma_dev();
	int i = 0, err;

	if (DIV_ROUND_UP(len, bsize) > MAX_SKB_FRAGS)
		return -EMSGSIZE;
	while (len) {
		unsigned int n = min(len, bsize);
		netmem_ref netmem;
		phys_addr_t phys;

		netmem = page_pool_alloc_netmems(rq->pool,
						 GFP_ATOMIC | __GFP_NOWARN);
		if (!netmem)
			return -ENOMEM;
		phys = dma_to_phys(dma, page_pool_get_dma_addr_netmem(netmem));
		err = dmveth_phys_fill(dma, phys, txskb, off, n);
		/* the skb owns the netmem from here; freeing it recycles it */
		skb_add_rx_frag_netmem(skb, i++, netmem, 0, n, bsize);
		if (err)
			return err;
		off += n;
		len -= n;
	}
	return 0;
}

/*
 * Receive @txskb (the peer's frame) on @rq: returns a new skb built from
 * this queue's buffers, or NULL when the frame was dropped.  The caller
 * frees @txskb.
 */
struct sk_buff *dmveth_dma_rx(struct dmveth_rq *rq, struct sk_buff *txskb)
{
	struct net_device *dev = rq->dev;
	struct dmveth_priv *priv = netdev_priv(dev);
	struct device *dma = dmveth_dma_dev();
	unsigned int len = txskb->len, lin;
	struct dmveth_flow fl;
	struct sk_buff *skb;
	bool split = false;
	int err;

	if (unlikely(!rq->pool || dmveth_parse_flow(txskb, &fl)))
		goto drop;
	if (fl.hdr_len && len > fl.hdr_len &&
	    READ_ONCE(priv->hds_config) == ETHTOOL_TCP_DATA_SPLIT_ENABLED &&
	    len - fl.hdr_len > READ_ONCE(priv->hds_thresh))
		split = true;
	lin = split ? fl.hdr_len : len;

	skb = napi_alloc_skb(&rq->napi, lin);
	if (unlikely(!skb)) {
		dmveth_rx_drop(rq, 1, true);
		return NULL;
	}
	err = dmveth_skb_read(dma, txskb, 0, skb_put(skb, lin), lin);
	if (!err && split) {
		skb_mark_for_recycle(skb);
		err = dmveth_rx_payload(rq, skb, txskb, lin, len - lin);
	}
	if (unlikely(err))
		goto drop_skb;

	if (skb_is_gso(txskb) && skb_is_gso_tcp(txskb) && fl.hdr_len) {
		struct skb_shared_info *sh = skb_shinfo(skb);

		/* a TSO frame arrives whole, as an LRO/GRO packet would */
		sh->gso_size = skb_shinfo(txskb)->gso_size;
		sh->gso_type = skb_shinfo(txskb)->gso_type &
			       (SKB_GSO_TCPV4 | SKB_GSO_TCPV6 | SKB_GSO_TCP_ECN |
				SKB_GSO_TCP_FIXEDID);
		sh->gso_segs = DIV_ROUND_UP(len - fl.hdr_len, sh->gso_size);
	}
	/*
	 * The wire is a copy: checksums are never wrong.  A checksum the
	 * sender left to the NIC stays to be done (CHECKSUM_PARTIAL, as veth
	 * passes it on), so a frame forwarded elsewhere gets it completed.
	 */
	if (txskb->ip_summed == CHECKSUM_PARTIAL) {
		if (!skb_partial_csum_set(skb, skb_checksum_start_offset(txskb),
					  txskb->csum_offset)) {
			err = -EINVAL;
			goto drop_skb;
		}
	} else {
		skb->ip_summed = CHECKSUM_UNNECESSARY;
	}
	skb->protocol = eth_type_trans(skb, dev);
	skb_record_rx_queue(skb, rq->idx);
	skb_mark_napi_id(skb, &rq->napi);
	if (DMVETH_CB(txskb)->hash_type)
		skb_set_hash(skb, DMVETH_CB(txskb)->hash,
			     DMVETH_CB(txskb)->hash_type);
	dmveth_rx_count(rq, len, split, !skb_frags_readable(skb));
	return skb;

drop_skb:
	kfree_skb(skb);
	dmveth_rx_drop(rq, 1, err == -ENOMEM);
	return NULL;
drop:
	dmveth_rx_drop(rq, 1, false);
	return NULL;
}

/* ---- queue management: a restart swaps the queue's page pool ---- */

struct dmveth_qmem {
	struct page_pool *pool;
};

static int dmveth_queue_mem_alloc(struct net_device *dev,
				  struct netdev_queue_config *qcfg,
				  void *per_queue_mem, int idx)
{
	struct dmveth_priv *priv = netdev_priv(dev);
	struct dmveth_qmem *qmem = per_queue_mem;
	struct page_pool *pool;

	pool = dmveth_create_pool(dev, &priv->rq[idx], priv->rx_ring,
				  qcfg->rx_page_size);
	if (IS_ERR(pool))
		return PTR_ERR(pool);
	qmem->pool = pool;
	return 0;
}

static void dmveth_queue_mem_free(struct net_device *dev, void *per_queue_mem)
{
	struct dmveth_qmem *qmem = per_queue_mem;

	if (qmem->pool)
		dmveth_destroy_pool(qmem->pool);
	qmem->pool = NULL;
}

static int dmveth_queue_start(struct net_device *dev,
			      struct netdev_queue_config *qcfg,
			      void *per_queue_mem, int idx)
{
	struct dmveth_priv *priv = netdev_priv(dev);
	struct dmveth_qmem *qmem = per_queue_mem;
	struct dmveth_rq *rq = &priv->rq[idx];

	dmveth_latch_hds(dev);
	dmveth_rq_start(dev, rq, qmem->pool);
	qmem->pool = NULL;
	return 0;
}

static int dmveth_queue_stop(struct net_device *dev, void *per_queue_mem,
			     int idx)
{
	struct dmveth_priv *priv = netdev_priv(dev);
	struct dmveth_qmem *qmem = per_queue_mem;
	struct dmveth_rq *rq = &priv->rq[idx];

	qmem->pool = dmveth_rq_stop(dev, rq);
	return 0;
}

static void dmveth_default_qcfg(struct net_device *dev,
				struct netdev_queue_config *qcfg)
{
	qcfg->rx_page_size = PAGE_SIZE;
}

/*
 * rx-page-size: any power of two from PAGE_SIZE (bind-rx already refused
 * the rest) up to the largest payload one frame carries.
 */
static int dmveth_validate_qcfg(struct net_device *dev,
				struct netdev_queue_config *qcfg,
				struct netlink_ext_ack *extack)
{
	u32 size = qcfg->rx_page_size;

	if (!is_power_of_2(size) || size < PAGE_SIZE ||
	    size > DMVETH_RX_PAGE_MAX) {
		NL_SET_ERR_MSG_FMT_MOD(extack,
				       "rx-page-size %u not supported: a power of 2 from %lu to %d",
				       size, PAGE_SIZE, DMVETH_RX_PAGE_MAX);
		return -ERANGE;
	}
	return 0;
}

const struct netdev_queue_mgmt_ops dmveth_queue_mgmt_ops = {
	.ndo_queue_mem_size	= sizeof(struct dmveth_qmem),
	.ndo_queue_mem_alloc	= dmveth_queue_mem_alloc,
	.ndo_queue_mem_free	= dmveth_queue_mem_free,
	.ndo_queue_start	= dmveth_queue_start,
	.ndo_queue_stop		= dmveth_queue_stop,
	.ndo_default_qcfg	= dmveth_default_qcfg,
	.ndo_validate_qcfg	= dmveth_validate_qcfg,
	.supported_params	= QCFG_RX_PAGE_SIZE,
};
