// SPDX-License-Identifier: GPL-2.0
/*
 * dmveth: transmit, NAPI receive, open/stop, queue stats.
 *
 * xmit parses the frame's flow, lets the peer's steering pick one of the
 * peer's RX queues and appends the skb to that queue's backlog.  The queue's
 * NAPI then builds new skbs from its own buffers (devmem.c), hands them to
 * GRO and frees the sender's skb, which is when a zerocopy send completes.  When a backlog is
 * full the sender's TX queue stops until that NAPI drained half of it.
 * BQL counts each frame from xmit until it leaves the backlog; xmit raises
 * the RX queue's "interrupt" once per xmit_more batch.
 */
#include <linux/etherdevice.h>
#include <linux/moduleparam.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <net/dsfield.h>
#include <net/ip.h>
#include <net/netdev_lock.h>
#include <net/netdev_queues.h>
#include <net/page_pool/helpers.h>

#include "dmveth.h"

int dmveth_parse_flow(const struct sk_buff *skb, struct dmveth_flow *fl)
{
	unsigned int off = ETH_HLEN, l4off;
	const struct ethhdr *eth;
	struct ethhdr ebuf;
	const struct tcphdr *th;
	struct tcphdr tbuf;
	const __be16 *ports;
	__be16 pbuf[2];

	memset(fl, 0, sizeof(*fl));
	eth = skb_header_pointer(skb, 0, sizeof(*eth), &ebuf);
	if (!eth)
		return -EINVAL;

	if (eth->h_proto == htons(ETH_P_IP)) {
		const struct iphdr *iph;
		struct iphdr ibuf;

		iph = skb_header_pointer(skb, off, sizeof(*iph), &ibuf);
		if (!iph || iph->ihl < 5)
			return -EINVAL;
		fl->l3 = 4;
		fl->l4proto = iph->protocol;
		fl->src4 = iph->saddr;
		fl->dst4 = iph->daddr;
		fl->tos = iph->tos;
		fl->is_frag = ip_is_fragment(iph);
		l4off = off + iph->ihl * 4;
	} else if (eth->h_proto == htons(ETH_P_IPV6)) {
		const struct ipv6hdr *ip6;
		struct ipv6hdr ibuf;

		ip6 = skb_header_pointer(skb, off, sizeof(*ip6), &ibuf);
		if (!ip6)
			return -EINVAL;
		fl->l3 = 6;
		fl->l4proto = ip6->nexthdr;	/* no extension headers */
		fl->src6 = ip6->saddr;
		fl->dst6 = ip6->daddr;
		fl->tos = ipv6_get_dsfield(ip6);
		l4off = off + sizeof(*ip6);
	} else {
		return 0;
	}

	if (fl->is_frag ||
	    (fl->l4proto != IPPROTO_TCP && fl->l4proto != IPPROTO_UDP))
		return 0;
	ports = skb_header_pointer(skb, l4off, sizeof(pbuf), pbuf);
	if (!ports)
		return 0;
	fl->sport = ports[0];
	fl->dport = ports[1];
	if (fl->l4proto != IPPROTO_TCP)
		return 0;
	th = skb_header_pointer(skb, l4off, sizeof(tbuf), &tbuf);
	if (th && th->doff >= 5 && l4off + th->doff * 4 <= skb_headlen(skb))
		fl->hdr_len = l4off + th->doff * 4;
	return 0;
}

/* The wire frames @skb stands for: a TSO frame's segments, else one. */
unsigned int dmveth_wire_frames(const struct sk_buff *skb)
{
	return skb_is_gso(skb) ? max_t(unsigned int, skb_shinfo(skb)->gso_segs, 1) : 1;
}

static void dmveth_tx_drop(struct net_device *dev, struct sk_buff *skb,
			   struct dmveth_tq_stats *ts)
{
	u64_stats_update_begin(&ts->syncp);
	ts->drops++;
	u64_stats_update_end(&ts->syncp);
	dev_dstats_tx_dropped(dev);
	kfree_skb(skb);
}

/*
 * The doorbell of TX queue @txq_idx: raise the interrupt of @rq, which just
 * got a frame, unless more frames of this batch follow (xmit_more) and the
 * queue still runs; a batch that moves on to another RX queue rings the
 * one it leaves.  A NIC rings once per batch, not per frame; here that
 * saves waking the RX queue's NAPI thread for each frame.
 */
static void dmveth_doorbell(struct dmveth_priv *priv, u16 txq_idx,
			    struct dmveth_rq *rq, bool ring)
{
	struct dmveth_rq *pending = priv->tx_doorbell[txq_idx];

	if (pending && pending != rq)
		dmveth_rq_interrupt(pending);
	if (ring && rq)
		dmveth_rq_interrupt(rq);
	priv->tx_doorbell[txq_idx] = ring ? NULL : rq;
}

/*
 * The frame in xmit is the last of its qdisc batch: no frame with
 * xmit_more clear follows it, or the queue stopped (for this frame or
 * before it), which ends the batch too.
 */
static bool dmveth_batch_ends(struct netdev_queue *txq)
{
	return !netdev_xmit_more() || netif_xmit_stopped(txq);
}

static netdev_tx_t dmveth_xmit(struct sk_buff *skb, struct net_device *dev)
{
	struct dmveth_priv *priv = netdev_priv(dev);
	u16 txq_idx = skb_get_queue_mapping(skb);
	struct netdev_queue *txq = netdev_get_tx_queue(dev, txq_idx);
	struct dmveth_tq_stats *ts = &priv->tq_stats[txq_idx];
	struct dmveth_priv *peer_priv;
	struct net_device *peer;
	unsigned int len = skb->len, frames = dmveth_wire_frames(skb);
	struct pcpu_dstats *dstats;
	struct dmveth_flow fl;
	struct dmveth_rq *rq;
	unsigned int limit;
	bool ring;
	int q;

	BUILD_BUG_ON(sizeof(struct dmveth_skb_cb) > sizeof(skb->cb));
	rcu_read_lock();
	peer = rcu_dereference(priv->peer);
	if (unlikely(!peer || !netif_running(peer) ||
		     dmveth_parse_flow(skb, &fl)))
		goto drop;
	q = dmveth_steer_rx_queue(peer, &fl, DMVETH_CB(skb));
	if (q < 0)
		goto drop;
	peer_priv = netdev_priv(peer);
	rq = &peer_priv->rq[q];
	limit = READ_ONCE(peer_priv->rx_ring);
	if (unlikely(skb_queue_len_lockless(&rq->backlog) >= 2 * limit))
		goto drop;

	skb_tx_timestamp(skb);
	u64_stats_update_begin(&ts->syncp);
	ts->packets += frames;
	ts->bytes += len;
	if (!skb_frags_readable(skb))
		ts->unreadable_packets += frames;
	u64_stats_update_end(&ts->syncp);
	dstats = this_cpu_ptr(dev->dstats);
	u64_stats_update_begin(&dstats->syncp);
	u64_stats_add(&dstats->tx_packets, frames);
	u64_stats_add(&dstats->tx_bytes, len);
	u64_stats_update_end(&dstats->syncp);

	/*
	 * BQL counts the frame before the peer's NAPI can see it: that NAPI
	 * (or a purge) gives it back once the frame leaves the backlog
	 * (dmveth_bql_add(), by skb->len: nothing changes the frame after
	 * this).
	 */
	DMVETH_CB(skb)->txq = txq;
	netdev_tx_sent_queue(txq, len);
	/* BHs are off here and in NAPI; no hard IRQ takes this lock */
	spin_lock(&rq->backlog.lock);
	__skb_queue_tail(&rq->backlog, skb);
	spin_unlock(&rq->backlog.lock);
	if (skb_queue_len_lockless(&rq->backlog) >= limit) {
		netif_tx_stop_queue(txq);
		u64_stats_update_begin(&ts->syncp);
		ts->stops++;
		u64_stats_update_end(&ts->syncp);
		WRITE_ONCE(rq->peer_stopped, true);
		/* pairs with the barrier in dmveth_wake_peer() */
		smp_mb();
		if (skb_queue_len_lockless(&rq->backlog) < limit / 2)
			netif_tx_wake_queue(txq);
	}
	ring = dmveth_batch_ends(txq);
	dmveth_doorbell(priv, txq_idx, rq, ring);
	if (!ring) {
		u64_stats_update_begin(&ts->syncp);
		ts->xmit_more++;
		u64_stats_update_end(&ts->syncp);
	}
	rcu_read_unlock();
	return NETDEV_TX_OK;

drop:
	/* a dropped frame ends no batch unless it is its last */
	if (dmveth_batch_ends(txq))
		dmveth_doorbell(priv, txq_idx, NULL, true);
	rcu_read_unlock();
	dmveth_tx_drop(dev, skb, ts);
	return NETDEV_TX_OK;
}

static bool irq_spread;
module_param(irq_spread, bool, 0644);
MODULE_PARM_DESC(irq_spread,
		 "run RX queue N's NAPI on CPU N (mod online CPUs), as a NIC's spread interrupts do; off (default): in the sender's softirq");

static void dmveth_rq_irq(void *info)
{
	struct dmveth_rq *rq = info;

	__napi_schedule_irqoff(&rq->napi);
}

/*
 * The frames the peer queued on @rq are "in the ring": raise the queue's
 * interrupt.  A NIC's RX interrupts are spread over the CPUs, so its NAPI
 * runs beside the sending process, not in its softirq: irq_spread does
 * that.  Off (the default), or with the queue's CPU gone, it runs here.
 * Called with BHs off.
 */
void dmveth_rq_interrupt(struct dmveth_rq *rq)
{
	int cpu = rq->irq_cpu;

	if (!napi_schedule_prep(&rq->napi))
		return;
	if (!READ_ONCE(irq_spread) || cpu == smp_processor_id() ||
	    smp_call_function_single_async(cpu, &rq->irq))
		__napi_schedule(&rq->napi);
}

/* Let the peer send again if it stopped for room on @rq. */
static void dmveth_wake_peer(struct dmveth_rq *rq)
{
	struct dmveth_priv *priv = netdev_priv(rq->dev);
	struct net_device *peer;

	if (!READ_ONCE(rq->peer_stopped))
		return;
	WRITE_ONCE(rq->peer_stopped, false);
	/* pairs with the barrier in dmveth_xmit() */
	smp_mb();
	rcu_read_lock();
	peer = rcu_dereference(priv->peer);
	if (peer)
		netif_tx_wake_all_queues(peer);
	rcu_read_unlock();
}

/*
 * BQL completions: frames that left a backlog (after their "DMA", or
 * purged), gathered per sender TX queue and given back together, under
 * that queue's bql_lock: frames of one TX queue reach several RX queues.
 */
struct dmveth_bql {
	struct netdev_queue *txq;
	unsigned int pkts;
	unsigned int bytes;
};

static void dmveth_bql_flush(struct dmveth_bql *b)
{
	struct net_device *sender;
	struct dmveth_priv *sp;
	unsigned int i;

	if (!b->pkts)
		return;
	sender = b->txq->dev;
	sp = netdev_priv(sender);
	i = b->txq - netdev_get_tx_queue(sender, 0);
	spin_lock_bh(&sp->bql_lock[i]);
	netdev_tx_completed_queue(b->txq, b->pkts, b->bytes);
	spin_unlock_bh(&sp->bql_lock[i]);
	b->pkts = 0;
	b->bytes = 0;
}

static void dmveth_bql_add(struct dmveth_bql *b, const struct sk_buff *skb)
{
	if (DMVETH_CB(skb)->txq != b->txq) {
		dmveth_bql_flush(b);
		b->txq = DMVETH_CB(skb)->txq;
	}
	b->pkts++;
	b->bytes += skb->len;
}

static int dmveth_poll(struct napi_struct *napi, int budget)
{
	struct dmveth_rq *rq = container_of(napi, struct dmveth_rq, napi);
	struct dmveth_priv *priv = netdev_priv(rq->dev);
	struct dmveth_bql bql = {};
	struct sk_buff_head batch;
	struct sk_buff *txskb;
	int done = 0;

	if (unlikely(dmveth_fault_rx_stall())) {
		napi_complete_done(napi, 0);
		return 0;
	}

	/* take up to @budget frames off the ring at once: one lock round */
	__skb_queue_head_init(&batch);
	spin_lock(&rq->backlog.lock);
	while (skb_queue_len(&batch) < budget &&
	       (txskb = __skb_dequeue(&rq->backlog)))
		__skb_queue_tail(&batch, txskb);
	spin_unlock(&rq->backlog.lock);

	while ((txskb = __skb_dequeue(&batch))) {
		dmveth_dma_rx(rq, txskb);
		dmveth_bql_add(&bql, txskb);
		/* the "DMA" is over: this completes the sender's zerocopy */
		consume_skb(txskb);
		done++;
	}
	dmveth_bql_flush(&bql);

	if (skb_queue_len_lockless(&rq->backlog) <
	    READ_ONCE(priv->rx_ring) / 2)
		dmveth_wake_peer(rq);

	if (done < budget)
		napi_complete_done(napi, done);
	return done;
}

/* Schedule the NAPI of every RX queue that holds frames. */
void dmveth_kick_queues(struct net_device *dev)
{
	struct dmveth_priv *priv = netdev_priv(dev);
	unsigned int i, n = READ_ONCE(dev->real_num_rx_queues);

	local_bh_disable();
	for (i = 0; i < n; i++)
		if (skb_queue_len_lockless(&priv->rq[i].backlog))
			dmveth_rq_interrupt(&priv->rq[i]);
	local_bh_enable();
}

/*
 * Drop what the peer queued on @rq (NAPI off, no xmit of the peer can reach
 * it) and let the peer send again: a stopped sender would otherwise wait
 * for a poll that has nothing left to drain.
 */
static void dmveth_rq_purge(struct dmveth_rq *rq)
{
	struct dmveth_bql bql = {};
	struct sk_buff *skb;
	unsigned int n = 0;

	while ((skb = skb_dequeue(&rq->backlog))) {
		n += dmveth_wire_frames(skb);
		dmveth_bql_add(&bql, skb);
		kfree_skb(skb);
	}
	dmveth_bql_flush(&bql);
	if (n)
		dmveth_rx_drop(rq, n, false);
	dmveth_wake_peer(rq);
}

/*
 * Start RX queue @rq on @pool: NAPI on, recycling straight into the pool.
 * The pool's order is the queue's buffer size (rx-page-size); rx_frag_size
 * is latched here.
 */
void dmveth_rq_start(struct net_device *dev, struct dmveth_rq *rq,
		     struct page_pool *pool)
{
	netdev_assert_locked(dev);
	rq->pool = pool;
	rq->buf_size = PAGE_SIZE << pool->p.order;
	rq->frag_size = dmveth_frag_size(rq->buf_size);
	page_pool_enable_direct_recycling(pool, &rq->napi);
	netif_queue_set_napi(dev, rq->idx, NETDEV_QUEUE_TYPE_RX, &rq->napi);
	napi_enable_locked(&rq->napi);
	/* frames the peer queued meanwhile, or a peer waiting for room */
	local_bh_disable();
	napi_schedule(&rq->napi);
	local_bh_enable();
}

/* Stop RX queue @rq: NAPI off; returns its page pool. */
struct page_pool *dmveth_rq_stop(struct net_device *dev, struct dmveth_rq *rq)
{
	struct page_pool *pool = rq->pool;

	netdev_assert_locked(dev);
	netif_queue_set_napi(dev, rq->idx, NETDEV_QUEUE_TYPE_RX, NULL);
	napi_disable_locked(&rq->napi);
	page_pool_disable_direct_recycling(pool);
	rq->pool = NULL;
	return pool;
}

static void dmveth_pools_free(struct page_pool **pools, unsigned int from,
			      unsigned int to)
{
	unsigned int i;

	for (i = from; i < to; i++)
		if (pools[i])
			dmveth_destroy_pool(pools[i]);
	kfree(pools);
}

/*
 * Page pools of @ring entries for RX queues [@from, @to), indexed by queue,
 * made before any queue stops so that a failure changes nothing.  Each
 * pool's buffers have the size the queue's configuration asks for (a
 * memory provider bound with rx-page-size keeps its size across restarts).
 */
static struct page_pool **dmveth_pools_alloc(struct net_device *dev,
					     unsigned int from,
					     unsigned int to,
					     unsigned int ring)
{
	struct dmveth_priv *priv = netdev_priv(dev);
	struct page_pool **pools;
	unsigned int i;
	int err;

	pools = kcalloc(to, sizeof(*pools), GFP_KERNEL);
	if (!pools)
		return ERR_PTR(-ENOMEM);
	for (i = from; i < to; i++) {
		struct netdev_queue_config qcfg;

		netdev_queue_config(dev, i, &qcfg);
		pools[i] = dmveth_create_pool(dev, &priv->rq[i], ring,
					      qcfg.rx_page_size);
		if (IS_ERR(pools[i])) {
			err = PTR_ERR(pools[i]);
			pools[i] = NULL;
			dmveth_pools_free(pools, from, to);
			return ERR_PTR(err);
		}
	}
	return pools;
}

/* Bring up the real RX queues: a page pool each, NAPI enabled. */
int dmveth_open_queues(struct net_device *dev)
{
	struct dmveth_priv *priv = netdev_priv(dev);
	unsigned int i, n = dev->real_num_rx_queues;
	struct page_pool **pools;

	netdev_assert_locked(dev);
	pools = dmveth_pools_alloc(dev, 0, n, priv->rx_ring);
	if (IS_ERR(pools))
		return PTR_ERR(pools);
	dmveth_latch_hds(dev);
	for (i = 0; i < n; i++)
		dmveth_rq_start(dev, &priv->rq[i], pools[i]);
	kfree(pools);
	return 0;
}

void dmveth_close_queues(struct net_device *dev)
{
	struct dmveth_priv *priv = netdev_priv(dev);
	unsigned int i;

	netdev_assert_locked(dev);
	for (i = 0; i < dev->real_num_rx_queues; i++)
		dmveth_destroy_pool(dmveth_rq_stop(dev, &priv->rq[i]));
	/* no xmit of the peer still sees us running past this point */
	synchronize_net();
	for (i = 0; i < dev->num_rx_queues; i++)
		dmveth_rq_purge(&priv->rq[i]);
}

/*
 * Restart the running RX queues on new page pools of @ring entries with the
 * pending header-split configuration.  The pools are made first: when that
 * fails, nothing changed.  Backlogs stay (they hold the peer's frames).
 */
int dmveth_restart_queues(struct net_device *dev, unsigned int ring)
{
	struct dmveth_priv *priv = netdev_priv(dev);
	unsigned int i, n = dev->real_num_rx_queues;
	struct page_pool **pools;

	netdev_assert_locked(dev);
	pools = dmveth_pools_alloc(dev, 0, n, ring);
	if (IS_ERR(pools))
		return PTR_ERR(pools);
	WRITE_ONCE(priv->rx_ring, ring);
	dmveth_latch_hds(dev);
	for (i = 0; i < n; i++) {
		struct page_pool *old = dmveth_rq_stop(dev, &priv->rq[i]);

		dmveth_rq_start(dev, &priv->rq[i], pools[i]);
		pools[i] = old;
	}
	dmveth_pools_free(pools, 0, n);
	return 0;
}

/*
 * Change a running device's channel count to @n.  Growing starts the new
 * queues before the peer can steer to them; shrinking stops steering to
 * the removed queues first, waits for every xmit that may still use the
 * old count, and only then stops and empties them, so that no frame is
 * left in a queue that no NAPI polls.  Queues that stay keep running.
 */
int dmveth_set_queue_count(struct net_device *dev, unsigned int n)
{
	struct dmveth_priv *priv = netdev_priv(dev);
	unsigned int i, old = dev->real_num_rx_queues;
	struct page_pool **pools;
	int err;

	netdev_assert_locked(dev);
	if (n > old) {
		pools = dmveth_pools_alloc(dev, old, n, priv->rx_ring);
		if (IS_ERR(pools))
			return PTR_ERR(pools);
		for (i = old; i < n; i++)
			dmveth_rq_start(dev, &priv->rq[i], pools[i]);
		err = netif_set_real_num_queues(dev, n, n);
		if (err) {
			synchronize_net();
			for (i = old; i < n; i++) {
				pools[i] = dmveth_rq_stop(dev, &priv->rq[i]);
				dmveth_rq_purge(&priv->rq[i]);
			}
			dmveth_pools_free(pools, old, n);
			return err;
		}
		kfree(pools);
		return 0;
	}

	err = netif_set_real_num_queues(dev, n, n);
	if (err)
		return err;
	/* no xmit of the peer steers to a removed queue past this point */
	synchronize_net();
	for (i = n; i < old; i++) {
		struct page_pool *pool = dmveth_rq_stop(dev, &priv->rq[i]);

		dmveth_rq_purge(&priv->rq[i]);
		dmveth_destroy_pool(pool);
	}
	return 0;
}

static int dmveth_open(struct net_device *dev)
{
	struct dmveth_priv *priv = netdev_priv(dev);
	struct net_device *peer;
	int err;

	err = dmveth_open_queues(dev);
	if (err)
		return err;
	peer = rtnl_dereference(priv->peer);
	if (peer && netif_running(peer)) {
		netif_carrier_on(dev);
		netif_carrier_on(peer);
	}
	return 0;
}

static int dmveth_stop(struct net_device *dev)
{
	struct dmveth_priv *priv = netdev_priv(dev);
	struct net_device *peer;

	netif_carrier_off(dev);
	peer = rtnl_dereference(priv->peer);
	if (peer)
		netif_carrier_off(peer);
	dmveth_close_queues(dev);
	return 0;
}

static int dmveth_dev_init(struct net_device *dev)
{
	struct dmveth_priv *priv = netdev_priv(dev);
	unsigned int i;
	int err;

	/* both ends' instance locks are taken together when a netns dies */
	netdev_lockdep_set_classes(dev);
	for (i = 0; i < dev->num_rx_queues; i++) {
		struct dmveth_rq *rq = &priv->rq[i];

		rq->dev = dev;
		rq->idx = i;
		skb_queue_head_init(&rq->backlog);
		rq->irq_cpu = cpumask_local_spread(i, NUMA_NO_NODE);
		INIT_CSD(&rq->irq, dmveth_rq_irq, rq);
		u64_stats_init(&rq->stats.syncp);
		/* deleted by free_netdev() */
		netif_napi_add_config(dev, &rq->napi, dmveth_poll, i);
	}
	for (i = 0; i < dev->num_tx_queues; i++) {
		u64_stats_init(&priv->tq_stats[i].syncp);
		spin_lock_init(&priv->bql_lock[i]);
	}
	err = dmveth_steer_init(dev);
	if (err)
		return err;
	dmveth_fault_add(dev);
	return 0;
}

static void dmveth_dev_uninit(struct net_device *dev)
{
	struct dmveth_priv *priv = netdev_priv(dev);
	unsigned int i;

	dmveth_fault_del(dev);
	for (i = 0; i < dev->num_rx_queues; i++)
		dmveth_rq_purge(&priv->rq[i]);
	dmveth_steer_free(dev);
}

static int dmveth_get_iflink(const struct net_device *dev)
{
	struct dmveth_priv *priv = netdev_priv(dev);
	struct net_device *peer;
	int iflink;

	rcu_read_lock();
	peer = rcu_dereference(priv->peer);
	iflink = peer ? READ_ONCE(peer->ifindex) : 0;
	rcu_read_unlock();
	return iflink;
}

const struct net_device_ops dmveth_netdev_ops = {
	.ndo_init		= dmveth_dev_init,
	.ndo_uninit		= dmveth_dev_uninit,
	.ndo_open		= dmveth_open,
	.ndo_stop		= dmveth_stop,
	.ndo_start_xmit		= dmveth_xmit,
	.ndo_set_mac_address	= eth_mac_addr,
	.ndo_validate_addr	= eth_validate_addr,
	.ndo_get_iflink		= dmveth_get_iflink,
};

static void dmveth_rq_read(struct dmveth_rq *rq, struct netdev_queue_stats_rx *rx)
{
	unsigned int start;

	do {
		start = u64_stats_fetch_begin(&rq->stats.syncp);
		rx->packets = rq->stats.packets;
		rx->bytes = rq->stats.bytes;
		rx->alloc_fail = rq->stats.alloc_fail;
		rx->hw_drops = rq->stats.drops;
	} while (u64_stats_fetch_retry(&rq->stats.syncp, start));
}

static void dmveth_tq_read(struct dmveth_tq_stats *ts, struct netdev_queue_stats_tx *tx)
{
	unsigned int start;

	do {
		start = u64_stats_fetch_begin(&ts->syncp);
		tx->packets = ts->packets;
		tx->bytes = ts->bytes;
		tx->hw_drops = ts->drops;
		tx->stop = ts->stops;
	} while (u64_stats_fetch_retry(&ts->syncp, start));
}

static void dmveth_get_queue_stats_rx(struct net_device *dev, int idx,
				      struct netdev_queue_stats_rx *rx)
{
	struct dmveth_priv *priv = netdev_priv(dev);

	dmveth_rq_read(&priv->rq[idx], rx);
}

static void dmveth_get_queue_stats_tx(struct net_device *dev, int idx,
				      struct netdev_queue_stats_tx *tx)
{
	struct dmveth_priv *priv = netdev_priv(dev);

	dmveth_tq_read(&priv->tq_stats[idx], tx);
}

/* Queues beyond the real count keep what they counted when they were on. */
static void dmveth_get_base_stats(struct net_device *dev,
				  struct netdev_queue_stats_rx *rx,
				  struct netdev_queue_stats_tx *tx)
{
	struct dmveth_priv *priv = netdev_priv(dev);
	struct netdev_queue_stats_rx r;
	struct netdev_queue_stats_tx t;
	unsigned int i;

	memset(rx, 0, sizeof(*rx));
	memset(tx, 0, sizeof(*tx));
	for (i = dev->real_num_rx_queues; i < dev->num_rx_queues; i++) {
		dmveth_rq_read(&priv->rq[i], &r);
		rx->packets += r.packets;
		rx->bytes += r.bytes;
		rx->alloc_fail += r.alloc_fail;
		rx->hw_drops += r.hw_drops;
	}
	for (i = dev->real_num_tx_queues; i < dev->num_tx_queues; i++) {
		dmveth_tq_read(&priv->tq_stats[i], &t);
		tx->packets += t.packets;
		tx->bytes += t.bytes;
		tx->hw_drops += t.hw_drops;
		tx->stop += t.stop;
	}
}

const struct netdev_stat_ops dmveth_stat_ops = {
	.get_queue_stats_rx	= dmveth_get_queue_stats_rx,
	.get_queue_stats_tx	= dmveth_get_queue_stats_tx,
	.get_base_stats		= dmveth_get_base_stats,
};
