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
 *
 * Delivery is a NIC's with GRO: a TSO frame is cut at the sender's segment
 * size into wire frames (headers fixed up as tcp_gso_segment() would), each
 * handed to napi_gro_receive(), so GRO merges them again (unreadable ones
 * included), while rx-gro-hw is off (`ethtool -K IF rx-gro-hw off`, as
 * mlx5's default).  By default, as gve (DQO) and bnxt ship, and on queues
 * with buffers larger than a page, the NIC aggregates like hardware GRO
 * instead: the TSO frame arrives whole, as one GSO packet, its payload
 * packed into buffers from the pool filled to their size (header split or
 * not) instead of one buffer per wire frame.
 *
 * rx_frag_size (module parameter) cuts buffers into fragments of that size,
 * as drivers that split a page into 2 KiB halves do: payload fragments then
 * start at non-zero offsets of their page or net_iov.
 */
#include <linux/dma-direct.h>
#include <linux/dma-mapping.h>
#include <linux/etherdevice.h>
#include <linux/ethtool_netlink.h>
#include <linux/highmem.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/math64.h>
#include <linux/moduleparam.h>
#include <linux/timekeeping.h>
#include <linux/unaligned.h>
#include <linux/tcp.h>
#include <net/busy_poll.h>
#include <net/ip6_checksum.h>
#include <net/tcp.h>
#include <net/netdev_lock.h>
#include <net/netdev_queues.h>
#include <net/page_pool/helpers.h>

#include "dmveth.h"

static unsigned int rx_frag_size;

static int dmveth_frag_size_set(const char *val, const struct kernel_param *kp)
{
	unsigned int v;
	int err;

	err = kstrtouint(val, 0, &v);
	if (err)
		return err;
	if (v && (!is_power_of_2(v) || v < SZ_1K || v > DMVETH_RX_PAGE_MAX / 2))
		return -EINVAL;
	WRITE_ONCE(rx_frag_size, v);
	return 0;
}

static const struct kernel_param_ops dmveth_frag_size_ops = {
	.set	= dmveth_frag_size_set,
	.get	= param_get_uint,
};

module_param_cb(rx_frag_size, &dmveth_frag_size_ops, &rx_frag_size, 0644);
MODULE_PARM_DESC(rx_frag_size,
		 "RX payload fragment size: 0 (a whole buffer) or a power of 2 from 1024 to 32768, smaller than the buffer (applies when a queue (re)starts)");

/* Bytes per payload fragment of a queue whose buffers are @buf_size. */
unsigned int dmveth_frag_size(unsigned int buf_size)
{
	unsigned int v = READ_ONCE(rx_frag_size);

	return v && v < buf_size ? v : buf_size;
}

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
 * The DMA engine's copy.  memcpy() is "rep movsb" where the CPU has ERMS;
 * some CPUs, and emulators (QEMU's TCG runs it one byte per step), move
 * bytes that way far slower than a loop of 8-byte words.  Which of the two
 * is faster here is measured once at module load, as the RAID xor code
 * measures its routines; dma_copy_words (a module parameter) says which was
 * chosen and can be flipped to compare them.
 */
static bool dma_copy_words;
module_param(dma_copy_words, bool, 0644);
MODULE_PARM_DESC(dma_copy_words,
		 "the DMA engine copies 8-byte words (Y) or with memcpy (N); measured at load");

static void dmveth_copy_words(void *dst, const void *src, size_t n)
{
	while (n >= 32) {
		put_unaligned(get_unaligned((const u64 *)src), (u64 *)dst);
		put_unaligned(get_unaligned((const u64 *)(src + 8)), (u64 *)(dst + 8));
		put_unaligned(get_unaligned((const u64 *)(src + 16)), (u64 *)(dst + 16));
		put_unaligned(get_unaligned((const u64 *)(src + 24)), (u64 *)(dst + 24));
		/* a loop, not a memcpy() the compiler would put back */
		barrier();
		src += 32;
		dst += 32;
		n -= 32;
	}
	while (n >= 8) {
		put_unaligned(get_unaligned((const u64 *)src), (u64 *)dst);
		barrier();
		src += 8;
		dst += 8;
		n -= 8;
	}
	while (n--)
		*(u8 *)dst++ = *(const u8 *)src++;
}

static void dmveth_dma_copy(void *dst, const void *src, size_t n)
{
	if (READ_ONCE(dma_copy_words))
		dmveth_copy_words(dst, src, n);
	else
		memcpy(dst, src, n);
}

/* Nanoseconds for 16 copies of @len bytes, the best of 3 tries. */
static u64 dmveth_copy_time(bool words, void *dst, const void *src,
			    size_t len)
{
	u64 best = U64_MAX, t;
	int i, j;

	for (i = 0; i < 3; i++) {
		t = ktime_get_ns();
		for (j = 0; j < 16; j++) {
			if (words)
				dmveth_copy_words(dst, src + j, len);
			else
				memcpy(dst, src + j, len);
		}
		best = min(best, ktime_get_ns() - t);
	}
	return best ?: 1;
}

void dmveth_dma_copy_init(void)
{
	const size_t len = SZ_64K;
	u64 tm, tw;
	void *buf;

	/* from 16 source offsets: a payload mostly starts unaligned */
	buf = kvmalloc(2 * len + 16, GFP_KERNEL);
	if (!buf)
		return;
	memset(buf, 0x5a, 2 * len + 16);
	tm = dmveth_copy_time(false, buf + len + 16, buf, len);
	tw = dmveth_copy_time(true, buf + len + 16, buf, len);
	kvfree(buf);
	dma_copy_words = tw < tm;
	pr_info(DRV_NAME ": DMA engine copies %s: memcpy %llu MB/s, 8-byte words %llu MB/s\n",
		dma_copy_words ? "8-byte words" : "with memcpy",
		div64_u64(16ULL * len * 1000, tm), div64_u64(16ULL * len * 1000, tw));
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
		dmveth_dma_copy(dst, v + off, n);
		kunmap_local(v);
		dst += n;
		src += n;
		len -= n;
	}
	return 0;
}

/*
 * A NIC's read position in a frame it sends: the linear area is host memory;
 * a fragment is reached through its DMA address, mapped once when the read
 * first enters it and unmapped when it moves past (one map per fragment,
 * however many receive buffers its bytes fill).
 */
struct dmveth_txcur {
	struct device *dma;
	const struct sk_buff *skb;
	unsigned int frag;	/* the fragment mapped, or nr_frags */
	unsigned int fstart;	/* its offset in the frame */
	dma_addr_t addr;	/* its DMA address, when frag < nr_frags */
};

static void dmveth_txcur_init(struct dmveth_txcur *cur, struct device *dma,
			      const struct sk_buff *skb)
{
	cur->dma = dma;
	cur->skb = skb;
	cur->frag = skb_shinfo(skb)->nr_frags;
	cur->fstart = 0;
}

/* Unmap the fragment the cursor is in, if any. */
static void dmveth_txcur_put(struct dmveth_txcur *cur)
{
	const skb_frag_t *frag;

	if (cur->frag >= skb_shinfo(cur->skb)->nr_frags)
		return;
	frag = &skb_shinfo(cur->skb)->frags[cur->frag];
	/* a net_iov's address belongs to its binding: never unmap */
	if (!skb_frag_is_net_iov(frag))
		dma_unmap_page(cur->dma, cur->addr, skb_frag_size(frag),
			       DMA_TO_DEVICE);
	cur->frag = skb_shinfo(cur->skb)->nr_frags;
}

/*
 * Move the cursor to the fragment holding frame offset @off (past the
 * linear area) and map it.  Reads go forward; one behind the cursor starts
 * the walk again from the first fragment.
 */
static int dmveth_txcur_seek(struct dmveth_txcur *cur, unsigned int off)
{
	const struct skb_shared_info *sh = skb_shinfo(cur->skb);
	unsigned int i = 0, pos = skb_headlen(cur->skb);

	if (cur->frag < sh->nr_frags) {
		if (off >= cur->fstart &&
		    off < cur->fstart + skb_frag_size(&sh->frags[cur->frag]))
			return 0;
		if (off > cur->fstart) {
			i = cur->frag;
			pos = cur->fstart;
		}
		dmveth_txcur_put(cur);
	}
	for (; i < sh->nr_frags; i++) {
		const skb_frag_t *frag = &sh->frags[i];
		unsigned int fsize = skb_frag_size(frag);

		if (off >= pos + fsize) {
			pos += fsize;
			continue;
		}
		cur->addr = skb_frag_dma_map(cur->dma, frag, 0, fsize,
					     DMA_TO_DEVICE);
		if (dma_mapping_error(cur->dma, cur->addr))
			return -EIO;
		cur->frag = i;
		cur->fstart = pos;
		return 0;
	}
	return -EFAULT;
}

/* Read @len bytes at @off of the cursor's frame into @dst. */
static int dmveth_txcur_read(struct dmveth_txcur *cur, unsigned int off,
			     void *dst, unsigned int len)
{
	unsigned int hlen = skb_headlen(cur->skb);

	if (off < hlen) {
		unsigned int n = min(len, hlen - off);

		dmveth_dma_copy(dst, cur->skb->data + off, n);
		dst += n;
		off += n;
		len -= n;
	}
	while (len) {
		unsigned int foff, n;
		int err;

		err = dmveth_txcur_seek(cur, off);
		if (err)
			return err;
		foff = off - cur->fstart;
		n = min(len, skb_frag_size(&skb_shinfo(cur->skb)->frags[cur->frag]) -
			     foff);
		err = dmveth_phys_read(dst, dma_to_phys(cur->dma, cur->addr + foff),
				       n);
		if (err)
			return err;
		dst += n;
		off += n;
		len -= n;
	}
	return 0;
}

/* Count @frames wire frames of @len bytes in all received on @rq. */
static void dmveth_rx_count(struct dmveth_rq *rq, unsigned int frames,
			    unsigned int len, bool split, bool unreadable)
{
	struct pcpu_dstats *dstats = this_cpu_ptr(rq->dev->dstats);

	u64_stats_update_begin(&rq->stats.syncp);
	rq->stats.packets += frames;
	rq->stats.bytes += len;
	rq->stats.split_packets += split ? frames : 0;
	rq->stats.unreadable_packets += unreadable ? frames : 0;
	u64_stats_update_end(&rq->stats.syncp);
	u64_stats_update_begin(&dstats->syncp);
	u64_stats_add(&dstats->rx_packets, frames);
	u64_stats_add(&dstats->rx_bytes, len);
	u64_stats_update_end(&dstats->syncp);
}

/*
 * Count @n wire frames dropped on @rq, on the queue and on the device alike.
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
 * "DMA" @len bytes at @off of the cursor's frame to the physical range at
 * @phys (one receive buffer, contiguous), a page at a time.
 */
static int dmveth_phys_fill(struct dmveth_txcur *cur, phys_addr_t phys,
			    unsigned int off, unsigned int len)
{
	while (len) {
		unsigned int poff = offset_in_page(phys);
		unsigned int n = min_t(unsigned int, len, PAGE_SIZE - poff);
		void *v = dmveth_kmap_phys(phys);
		int err;

		if (!v)
			return -EFAULT;
		err = dmveth_txcur_read(cur, off, v + poff, n);
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
 * Place [@off, @off + @len) of @txskb into fragments from the pool after the
 * skb's current ones, each filled up to the queue's fragment size (the
 * buffer size, PAGE_SIZE or rx-page-size, unless rx_frag_size cuts buffers
 * into smaller fragments).
 */
static int dmveth_rx_payload(struct dmveth_rq *rq, struct sk_buff *skb,
			     struct dmveth_txcur *cur, unsigned int off,
			     unsigned int len)
{
	unsigned int fsize = rq->frag_size;
	struct device *dma = cur->dma;
	int i = skb_shinfo(skb)->nr_frags, err;

	if (i + DIV_ROUND_UP(len, fsize) > MAX_SKB_FRAGS)
		return -EMSGSIZE;
	while (len) {
		unsigned int n = min(len, fsize), boff, bsize = fsize;
		netmem_ref netmem;
		phys_addr_t phys;

		netmem = page_pool_alloc_netmem(rq->pool, &boff, &bsize,
						GFP_ATOMIC | __GFP_NOWARN);
		if (!netmem)
			return -ENOMEM;
		phys = dma_to_phys(dma, page_pool_get_dma_addr_netmem(netmem) +
				   boff);
		err = dmveth_phys_fill(cur, phys, off, n);
		/* the skb owns the netmem from here; freeing it recycles it */
		skb_add_rx_frag_netmem(skb, i++, netmem, boff, n, bsize);
		if (err)
			return err;
		off += n;
		len -= n;
	}
	return 0;
}

/*
 * Fix up the headers of wire frame @seg (payload @n bytes, @last of the
 * frame or not) cut from the TSO frame @txskb, as tcp_gso_segment() does:
 * lengths, IPv4 id and header checksum, sequence number, flags (CWR on the
 * first frame only unless AccECN, FIN and PSH on the last) and, for a
 * checksum left to the NIC, the segment's pseudo-header sum.
 */
static void dmveth_seg_fixup(struct sk_buff *skb, const struct sk_buff *txskb,
			     const struct dmveth_flow *fl, unsigned int seg,
			     unsigned int n, bool last)
{
	unsigned int mss = skb_shinfo(txskb)->gso_size, l4off, l4len;
	struct ipv6hdr *ip6 = NULL;
	struct iphdr *iph = NULL;
	struct tcphdr *th;

	if (fl->l3 == 4) {
		iph = (struct iphdr *)(skb->data + ETH_HLEN);
		l4off = ETH_HLEN + iph->ihl * 4;
		iph->tot_len = htons(fl->hdr_len - ETH_HLEN + n);
		if (!(skb_shinfo(txskb)->gso_type & SKB_GSO_TCP_FIXEDID))
			iph->id = htons(ntohs(iph->id) + seg);
		ip_send_check(iph);
	} else {
		ip6 = (struct ipv6hdr *)(skb->data + ETH_HLEN);
		l4off = ETH_HLEN + sizeof(*ip6);
		ip6->payload_len = htons(fl->hdr_len - l4off + n);
	}
	l4len = fl->hdr_len - l4off + n;
	th = (struct tcphdr *)(skb->data + l4off);
	th->seq = htonl(ntohl(th->seq) + seg * mss);
	if (seg && !(skb_shinfo(txskb)->gso_type & SKB_GSO_TCP_ACCECN))
		th->cwr = 0;
	if (!last) {
		th->fin = 0;
		th->psh = 0;
	}
	if (txskb->ip_summed != CHECKSUM_PARTIAL)
		return;
	if (iph)
		th->check = ~tcp_v4_check(l4len, iph->saddr, iph->daddr, 0);
	else
		th->check = ~tcp_v6_check(l4len, &ip6->saddr, &ip6->daddr, 0);
}

/*
 * Build one received frame on @rq from the frame @cur reads: wire frame
 * @seg cut from a TSO frame (the @hlen bytes of headers and the payload
 * [@off, @off + @n), @last: the final one), or with @seg < 0 the whole
 * frame.  With header split the payload goes to the pool's buffers.  The
 * frame goes to GRO; a failure drops it.
 */
static void dmveth_rx_frame(struct dmveth_rq *rq, struct dmveth_txcur *cur,
			    const struct dmveth_flow *fl, unsigned int hlen,
			    unsigned int off, unsigned int n, int seg,
			    bool last)
{
	struct dmveth_priv *priv = netdev_priv(rq->dev);
	const struct sk_buff *txskb = cur->skb;
	unsigned int lin, wire, frames = 1;
	bool split = false, agg;
	struct sk_buff *skb;
	int err;

	if (seg < 0) {
		/* the whole frame: headers, then any TCP payload */
		hlen = fl->hdr_len && txskb->len > fl->hdr_len ?
		       fl->hdr_len : txskb->len;
		off = hlen;
		n = txskb->len - hlen;
		frames = dmveth_wire_frames(txskb);
	}
	wire = hlen + n;
	if (fl->hdr_len && n &&
	    READ_ONCE(priv->hds_config) == ETHTOOL_TCP_DATA_SPLIT_ENABLED &&
	    n > READ_ONCE(priv->hds_thresh))
		split = true;
	/*
	 * A TSO frame aggregated whole: its payload in the pool's buffers
	 * (a NIC's aggregation buffers), split or not, not one linear area.
	 */
	agg = seg < 0 && fl->hdr_len && n && skb_is_gso(txskb);
	lin = split || agg ? hlen : wire;

	skb = napi_alloc_skb(&rq->napi, lin);
	if (unlikely(!skb)) {
		dmveth_rx_drop(rq, frames, true);
		return;
	}
	err = dmveth_txcur_read(cur, 0, skb_put(skb, hlen), hlen);
	if (!err && n && lin == wire)
		err = dmveth_txcur_read(cur, off, skb_put(skb, n), n);
	if (!err && lin != wire) {
		skb_mark_for_recycle(skb);
		err = dmveth_rx_payload(rq, skb, cur, off, n);
	}
	if (unlikely(err))
		goto drop_skb;

	if (seg >= 0) {
		dmveth_seg_fixup(skb, txskb, fl, seg, n, last);
	} else if (skb_is_gso(txskb) && skb_is_gso_tcp(txskb) && fl->hdr_len) {
		struct skb_shared_info *sh = skb_shinfo(skb);

		/* aggregated whole, as hardware GRO would */
		sh->gso_size = skb_shinfo(txskb)->gso_size;
		sh->gso_type = skb_shinfo(txskb)->gso_type &
			       (SKB_GSO_TCPV4 | SKB_GSO_TCPV6 | SKB_GSO_TCP_ECN |
				SKB_GSO_TCP_ACCECN | SKB_GSO_TCP_FIXEDID);
		sh->gso_segs = DIV_ROUND_UP(wire - fl->hdr_len, sh->gso_size);
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
	skb->protocol = eth_type_trans(skb, rq->dev);
	skb_record_rx_queue(skb, rq->idx);
	skb_mark_napi_id(skb, &rq->napi);
	if (DMVETH_CB(txskb)->hash_type)
		skb_set_hash(skb, DMVETH_CB(txskb)->hash,
			     DMVETH_CB(txskb)->hash_type);
	dmveth_rx_count(rq, frames, wire, split, !skb_frags_readable(skb));
	napi_gro_receive(&rq->napi, skb);
	return;

drop_skb:
	kfree_skb(skb);
	dmveth_rx_drop(rq, frames, err == -ENOMEM);
}

/*
 * Receive @txskb (the peer's frame) on @rq into this queue's buffers and
 * hand the result to GRO: a TSO frame as the wire frames it stands for, cut
 * at its segment size, unless the queue's fragments are larger than a page
 * (rx-page-size) or rx-gro-hw is on: then the frame arrives whole, as
 * hardware GRO aggregates it, if its payload fits in an skb's fragments
 * (with rx_frag_size it may not: it is cut then).  The caller frees @txskb.
 */
void dmveth_dma_rx(struct dmveth_rq *rq, struct sk_buff *txskb)
{
	unsigned int len = txskb->len, mss, off, n, seg;
	struct dmveth_txcur cur;
	struct dmveth_flow fl;

	if (unlikely(!rq->pool || dmveth_parse_flow(txskb, &fl))) {
		dmveth_rx_drop(rq, dmveth_wire_frames(txskb), false);
		return;
	}
	dmveth_txcur_init(&cur, dmveth_dma_dev(), txskb);
	mss = skb_shinfo(txskb)->gso_size;
	if (!skb_is_gso(txskb) || !skb_is_gso_tcp(txskb) || !fl.hdr_len ||
	    !mss || len <= fl.hdr_len ||
	    ((rq->frag_size > PAGE_SIZE ||
	      (READ_ONCE(rq->dev->features) & NETIF_F_GRO_HW)) &&
	     DIV_ROUND_UP(len - fl.hdr_len, rq->frag_size) <= MAX_SKB_FRAGS)) {
		dmveth_rx_frame(rq, &cur, &fl, 0, 0, 0, -1, true);
	} else {
		for (off = fl.hdr_len, seg = 0; off < len; off += n, seg++) {
			n = min(mss, len - off);
			dmveth_rx_frame(rq, &cur, &fl, fl.hdr_len, off, n, seg,
					off + n == len);
		}
	}
	dmveth_txcur_put(&cur);
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
