// SPDX-License-Identifier: GPL-2.0
/*
 * dmveth: ethtool ops (rings, channels, coalescing, RSS and its hash fields,
 * ntuple rules, stats) and the receive-side steering they configure.
 *
 * The device is ops-locked, so every op runs under the netdev instance lock;
 * ops that end up in core code still needing rtnl opt in via op_needs_rtnl.
 * Steering state is copied, modified and republished under that lock and
 * read under RCU by the peer's xmit path (dmveth_steer_rx_queue()).
 */
#include <linux/ethtool.h>
#include <linux/in.h>
#include <linux/netdevice.h>
#include <linux/rcupdate.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/u64_stats_sync.h>
#include <linux/unaligned.h>
#include <net/netdev_queues.h>
#include <net/netdev_lock.h>

#include "dmveth.h"

static const char * const dmveth_rq_stat_names[] = {
	"packets", "bytes", "alloc_fail", "drops", "unreadable_packets",
	"split_packets",
};

static const char * const dmveth_tq_stat_names[] = {
	"packets", "bytes", "unreadable_packets", "drops", "stops", "xmit_more",
};

#define DMVETH_RQ_NSTATS	ARRAY_SIZE(dmveth_rq_stat_names)
#define DMVETH_TQ_NSTATS	ARRAY_SIZE(dmveth_tq_stat_names)

/* Steering state, for writers and ethtool readers (instance lock held). */
static struct dmveth_steer *dmveth_steer_locked(struct net_device *dev)
{
	struct dmveth_priv *priv = netdev_priv(dev);

	return netdev_lock_dereference(priv->steer, dev);
}

static struct dmveth_steer *dmveth_steer_dup(struct net_device *dev)
{
	return kvmemdup(dmveth_steer_locked(dev), sizeof(struct dmveth_steer),
			GFP_KERNEL);
}

static void dmveth_steer_publish(struct net_device *dev,
				 struct dmveth_steer *st)
{
	struct dmveth_priv *priv = netdev_priv(dev);
	struct dmveth_steer *old;

	old = rcu_replace_pointer(priv->steer, st, lockdep_is_held(&dev->lock));
	if (old)
		kvfree_rcu(old, rcu);
}

static void dmveth_indir_spread(struct dmveth_steer *st, unsigned int nq)
{
	u32 i;

	for (i = 0; i < DMVETH_INDIR_SIZE; i++)
		st->indir[i] = ethtool_rxfh_indir_default(i, nq);
}

/*
 * Publish @st (a copy of the current state) with the table spread over the
 * real RX queues, unless the user configured the table.  The core tracks
 * that (ethtool -X default resets it) and it refuses channel counts that
 * would orphan an entry of a configured table.  Consumes @st.
 */
static void dmveth_steer_respread(struct net_device *dev,
				  struct dmveth_steer *st)
{
	if (netif_is_rxfh_configured(dev)) {
		kvfree(st);
		return;
	}
	dmveth_indir_spread(st, dev->real_num_rx_queues);
	dmveth_steer_publish(dev, st);
}

/* The largest queue in indirection table @indir. */
static u32 dmveth_indir_max(const u32 *indir)
{
	u32 i, m = 0;

	for (i = 0; i < DMVETH_INDIR_SIZE; i++)
		m = max(m, indir[i]);
	return m;
}

/* Context @ctx's indirection table; context 0's is the device's own. */
static const u32 *dmveth_ctx_indir(const struct dmveth_steer *st, u32 ctx)
{
	return ctx ? st->ctx[ctx].indir : st->indir;
}

/* Whether queue offset @ring plus every entry of @indir is below @nq. */
static bool dmveth_offset_fits(u64 ring, const u32 *indir, unsigned int nq)
{
	return ring + dmveth_indir_max(indir) < nq;
}

/*
 * Whether every "context N action Q" rule keeps Q plus the largest entry
 * of N's table below @nq, with context @ctx's table taken as @indir (NULL:
 * as it is).  The core checks a rule's queue and a context's table each on
 * its own (ethtool_check_max_channel()); their sum is the driver's to
 * check, as for a NIC whose hardware adds them.
 */
static bool dmveth_rss_rules_fit(const struct dmveth_steer *st, u32 ctx,
				 const u32 *indir, unsigned int nq)
{
	const struct dmveth_rule *r;
	const u32 *t;
	unsigned int i;

	for (i = 0; i < DMVETH_MAX_RULES; i++) {
		r = &st->rules[i];
		if (!r->used || !(r->fs.flow_type & FLOW_RSS) ||
		    r->fs.ring_cookie == RX_CLS_FLOW_DISC)
			continue;
		if (indir && r->rss_context == ctx)
			t = indir;
		else
			t = dmveth_ctx_indir(st, r->rss_context);
		if (!dmveth_offset_fits(r->fs.ring_cookie, t, nq))
			return false;
	}
	return true;
}

/* The RSS hash input fields a class can use, all of them by default. */
static u32 dmveth_hash_fields_max(int hc)
{
	switch (hc) {
	case DMVETH_HC_TCP4:
	case DMVETH_HC_UDP4:
	case DMVETH_HC_TCP6:
	case DMVETH_HC_UDP6:
		return RXH_IP_SRC | RXH_IP_DST | RXH_L4_B_0_1 | RXH_L4_B_2_3;
	}
	return RXH_IP_SRC | RXH_IP_DST;
}

/*
 * The hash class of an ethtool flow type; -EOPNOTSUPP if not one.  SCTP,
 * AH and ESP are hashed as ip4/ip6 (@shared): readable, set through those.
 */
static int dmveth_hash_class_of_type(u32 flow_type, bool *shared)
{
	*shared = false;
	switch (flow_type) {
	case SCTP_V4_FLOW:
	case AH_ESP_V4_FLOW:
	case AH_V4_FLOW:
	case ESP_V4_FLOW:
		*shared = true;
		return DMVETH_HC_IP4;
	case SCTP_V6_FLOW:
	case AH_ESP_V6_FLOW:
	case AH_V6_FLOW:
	case ESP_V6_FLOW:
		*shared = true;
		return DMVETH_HC_IP6;
	case TCP_V4_FLOW:
		return DMVETH_HC_TCP4;
	case UDP_V4_FLOW:
		return DMVETH_HC_UDP4;
	case IPV4_FLOW:
		return DMVETH_HC_IP4;
	case TCP_V6_FLOW:
		return DMVETH_HC_TCP6;
	case UDP_V6_FLOW:
		return DMVETH_HC_UDP6;
	case IPV6_FLOW:
		return DMVETH_HC_IP6;
	}
	return -EOPNOTSUPP;
}

/* The hash class of an IP frame: IPv4 fragments hash as ip4 (no ports). */
static int dmveth_hash_class_of_flow(const struct dmveth_flow *fl)
{
	bool l4 = !fl->is_frag;

	if (l4 && fl->l4proto == IPPROTO_TCP)
		return fl->l3 == 4 ? DMVETH_HC_TCP4 : DMVETH_HC_TCP6;
	if (l4 && fl->l4proto == IPPROTO_UDP)
		return fl->l3 == 4 ? DMVETH_HC_UDP4 : DMVETH_HC_UDP6;
	return fl->l3 == 4 ? DMVETH_HC_IP4 : DMVETH_HC_IP6;
}

int dmveth_steer_init(struct net_device *dev)
{
	struct dmveth_priv *priv = netdev_priv(dev);
	struct dmveth_steer *st;
	int i;

	st = kvzalloc_obj(*st);
	if (!st)
		return -ENOMEM;
	dmveth_indir_spread(st, dev->real_num_rx_queues);
	netdev_rss_key_fill(st->key, sizeof(st->key));
	for (i = 0; i < DMVETH_HC_NUM; i++)
		st->hash_fields[i] = dmveth_hash_fields_max(i);
	rcu_assign_pointer(priv->steer, st);
	return 0;
}

void dmveth_steer_free(struct net_device *dev)
{
	struct dmveth_priv *priv = netdev_priv(dev);
	struct dmveth_steer *st;

	st = rcu_replace_pointer(priv->steer, NULL, true);
	if (st)
		kvfree_rcu(st, rcu);
}

/* Microsoft RSS Toeplitz hash of @len bytes (len + 4 <= DMVETH_KEY_SIZE). */
static u32 dmveth_toeplitz(const u8 *key, const u8 *data, unsigned int len)
{
	u32 win = get_unaligned_be32(key);
	u32 hash = 0;
	unsigned int i, b;

	for (i = 0; i < len; i++) {
		for (b = 0; b < 8; b++) {
			if (data[i] & (0x80 >> b))
				hash ^= win;
			win <<= 1;
			if (key[i + 4] & (0x80 >> b))
				win |= 1;
		}
	}
	return hash;
}

/*
 * The Toeplitz hash of @fl's fields that @st's rx-flow-hash setting selects
 * for its class, in the order of the Microsoft RSS input (source address,
 * destination address, source port, destination port); left out fields
 * are not part of the input.
 */
static u32 dmveth_flow_hash(const struct dmveth_steer *st, const u8 *key,
			    const struct dmveth_flow *fl)
{
	u8 buf[2 * sizeof(struct in6_addr) + 2 * sizeof(__be16)];
	int hc = dmveth_hash_class_of_flow(fl);
	u32 fields = st->hash_fields[hc];
	unsigned int len = 0;

	if (fl->l3 == 4) {
		if (fields & RXH_IP_SRC) {
			memcpy(buf + len, &fl->src4, 4);
			len += 4;
		}
		if (fields & RXH_IP_DST) {
			memcpy(buf + len, &fl->dst4, 4);
			len += 4;
		}
	} else {
		if (fields & RXH_IP_SRC) {
			memcpy(buf + len, &fl->src6, 16);
			len += 16;
		}
		if (fields & RXH_IP_DST) {
			memcpy(buf + len, &fl->dst6, 16);
			len += 16;
		}
	}
	/* only the TCP and UDP classes allow port fields */
	if (fields & RXH_L4_B_0_1) {
		memcpy(buf + len, &fl->sport, 2);
		len += 2;
	}
	if (fields & RXH_L4_B_2_3) {
		memcpy(buf + len, &fl->dport, 2);
		len += 2;
	}
	return dmveth_toeplitz(key, buf, len);
}

/* The skb hash type of @fl's hash: what its fields cover. */
static u8 dmveth_flow_hash_type(const struct dmveth_steer *st,
				const struct dmveth_flow *fl)
{
	u32 fields = st->hash_fields[dmveth_hash_class_of_flow(fl)];

	if (fields & (RXH_L4_B_0_1 | RXH_L4_B_2_3))
		return PKT_HASH_TYPE_L4;
	return fields ? PKT_HASH_TYPE_L3 : PKT_HASH_TYPE_NONE;
}

/* IP version and L4 protocol of a supported rule flow type; 0 if none. */
static u8 dmveth_flow_type_l3(u32 flow_type, u8 *l4proto)
{
	switch (flow_type) {
	case TCP_V4_FLOW:
		*l4proto = IPPROTO_TCP;
		return 4;
	case UDP_V4_FLOW:
		*l4proto = IPPROTO_UDP;
		return 4;
	case TCP_V6_FLOW:
		*l4proto = IPPROTO_TCP;
		return 6;
	case UDP_V6_FLOW:
		*l4proto = IPPROTO_UDP;
		return 6;
	}
	return 0;
}

/* A set mask bit means "compare this bit". */
static bool dmveth_rule_match(const struct ethtool_rx_flow_spec *fs,
			      const struct dmveth_flow *fl)
{
	const struct ethtool_tcpip4_spec *h4 = &fs->h_u.tcp_ip4_spec;
	const struct ethtool_tcpip4_spec *m4 = &fs->m_u.tcp_ip4_spec;
	const struct ethtool_tcpip6_spec *h6 = &fs->h_u.tcp_ip6_spec;
	const struct ethtool_tcpip6_spec *m6 = &fs->m_u.tcp_ip6_spec;
	__be16 psrc, pdst, mpsrc, mpdst;
	u8 l3, l4proto = 0;
	int i;

	l3 = dmveth_flow_type_l3(fs->flow_type & ~FLOW_RSS, &l4proto);
	if (l3 != fl->l3 || l4proto != fl->l4proto)
		return false;

	if (l3 == 4) {
		if (((fl->src4 ^ h4->ip4src) & m4->ip4src) ||
		    ((fl->dst4 ^ h4->ip4dst) & m4->ip4dst) ||
		    ((fl->tos ^ h4->tos) & m4->tos))
			return false;
		psrc = h4->psrc;
		pdst = h4->pdst;
		mpsrc = m4->psrc;
		mpdst = m4->pdst;
	} else {
		for (i = 0; i < 4; i++)
			if (((fl->src6.s6_addr32[i] ^ h6->ip6src[i]) &
			     m6->ip6src[i]) ||
			    ((fl->dst6.s6_addr32[i] ^ h6->ip6dst[i]) &
			     m6->ip6dst[i]))
				return false;
		if ((fl->tos ^ h6->tclass) & m6->tclass)
			return false;
		psrc = h6->psrc;
		pdst = h6->pdst;
		mpsrc = m6->psrc;
		mpdst = m6->pdst;
	}

	/* A fragment has no ports: it only matches rules ignoring them. */
	if (fl->is_frag)
		return !mpsrc && !mpdst;
	return !((fl->sport ^ psrc) & mpsrc) && !((fl->dport ^ pdst) & mpdst);
}

/*
 * The queue of a FLOW_RSS rule @r for @fl: its queue plus the entry of its
 * context's table, the hash (to @cb) with that context's key; -1 when
 * that is past the real queues.
 */
static int dmveth_rss_rule_queue(const struct dmveth_steer *st,
				 const struct dmveth_rule *r,
				 const struct dmveth_flow *fl,
				 struct dmveth_skb_cb *cb, unsigned int nq)
{
	const u32 *indir = dmveth_ctx_indir(st, r->rss_context);
	u64 q;

	if (r->rss_context) {
		const struct dmveth_rss_ctx *c = &st->ctx[r->rss_context];

		if (!c->used)
			return -1;
		cb->hash = dmveth_flow_hash(st, c->key, fl);
	}
	q = ethtool_get_flow_spec_ring(r->fs.ring_cookie) +
	    indir[cb->hash % DMVETH_INDIR_SIZE];
	return q < nq ? q : -1;
}

int dmveth_steer_rx_queue(struct net_device *dev,
			  const struct dmveth_flow *fl,
			  struct dmveth_skb_cb *cb)
{
	struct dmveth_priv *priv = netdev_priv(dev);
	unsigned int nq = READ_ONCE(dev->real_num_rx_queues);
	const struct dmveth_steer *st;
	unsigned int i, seen = 0;
	u32 q;

	cb->hash_type = PKT_HASH_TYPE_NONE;
	st = rcu_dereference(priv->steer);
	if (!st || !fl->l3)
		return 0;
	/* reported with the frame, as a NIC's RSS hash is, rule or not */
	cb->hash = dmveth_flow_hash(st, st->key, fl);
	cb->hash_type = dmveth_flow_hash_type(st, fl);

	if ((READ_ONCE(dev->features) & NETIF_F_NTUPLE) && st->nr_rules) {
		for (i = 0; i < DMVETH_MAX_RULES && seen < st->nr_rules; i++) {
			const struct dmveth_rule *r = &st->rules[i];

			if (!r->used)
				continue;
			seen++;
			if (!dmveth_rule_match(&r->fs, fl))
				continue;
			if (r->fs.ring_cookie == RX_CLS_FLOW_DISC)
				return -1;
			if (r->fs.flow_type & FLOW_RSS) {
				int rq = dmveth_rss_rule_queue(st, r, fl, cb, nq);

				if (rq >= 0)
					return rq;
				break;
			}
			if (r->fs.ring_cookie < nq)
				return r->fs.ring_cookie;
			break;	/* queue gone: fall back to RSS */
		}
	}

	q = st->indir[cb->hash % DMVETH_INDIR_SIZE];
	return q < nq ? q : q % nq;
}

static void dmveth_get_drvinfo(struct net_device *dev,
			       struct ethtool_drvinfo *info)
{
	strscpy(info->driver, DRV_NAME, sizeof(info->driver));
	strscpy(info->bus_info, "dmveth", sizeof(info->bus_info));
}

static void dmveth_get_ringparam(struct net_device *dev,
				 struct ethtool_ringparam *ring,
				 struct kernel_ethtool_ringparam *kring,
				 struct netlink_ext_ack *extack)
{
	struct dmveth_priv *priv = netdev_priv(dev);

	ring->rx_max_pending = DMVETH_RING_MAX;
	ring->tx_max_pending = DMVETH_RING_MAX;
	ring->rx_pending = priv->rx_ring;
	ring->tx_pending = priv->tx_ring;

	/* We split only when the user enabled it; UNKNOWN reads as off. */
	if (dev->cfg->hds_config == ETHTOOL_TCP_DATA_SPLIT_ENABLED)
		kring->tcp_data_split = ETHTOOL_TCP_DATA_SPLIT_ENABLED;
	else
		kring->tcp_data_split = ETHTOOL_TCP_DATA_SPLIT_DISABLED;
	kring->hds_thresh = dev->cfg->hds_thresh;
	kring->hds_thresh_max = DMVETH_HDS_MAX;
}

/*
 * The core validated tcp_data_split and hds_thresh and put them in
 * dev->cfg_pending; it commits them to dev->cfg after we return.  A running
 * device restarts its queues when the RX ring size (the page pool size) or
 * the split config changes, so the new settings apply.
 */
static int dmveth_set_ringparam(struct net_device *dev,
				struct ethtool_ringparam *ring,
				struct kernel_ethtool_ringparam *kring,
				struct netlink_ext_ack *extack)
{
	struct dmveth_priv *priv = netdev_priv(dev);
	unsigned int old_rx = priv->rx_ring;
	int err;

	/* The core checked the maxima (none for mini/jumbo rings). */
	if (ring->rx_pending < DMVETH_RING_MIN ||
	    ring->rx_pending > DMVETH_RING_MAX ||
	    ring->tx_pending < DMVETH_RING_MIN ||
	    ring->tx_pending > DMVETH_RING_MAX) {
		NL_SET_ERR_MSG_FMT_MOD(extack, "ring sizes must be %d..%d",
				       DMVETH_RING_MIN, DMVETH_RING_MAX);
		return -EINVAL;
	}

	if (!netif_running(dev) ||
	    (ring->rx_pending == old_rx &&
	     kring->tcp_data_split == dev->cfg->hds_config &&
	     kring->hds_thresh == dev->cfg->hds_thresh)) {
		WRITE_ONCE(priv->tx_ring, ring->tx_pending);
		WRITE_ONCE(priv->rx_ring, ring->rx_pending);
		return 0;
	}

	err = dmveth_restart_queues(dev, ring->rx_pending);
	if (err) {
		NL_SET_ERR_MSG_MOD(extack,
				   "cannot allocate the new RX buffers; the rings are unchanged");
		return err;
	}
	WRITE_ONCE(priv->tx_ring, ring->tx_pending);
	return 0;
}

static void dmveth_get_channels(struct net_device *dev,
				struct ethtool_channels *ch)
{
	ch->max_combined = dev->num_rx_queues;
	ch->combined_count = dev->real_num_rx_queues;
}

/*
 * The core has already refused counts below a queue used by a memory
 * provider, an ntuple rule or a configured indirection table, and below a
 * busy (AF_XDP, leased) queue.
 */
static int dmveth_set_channels(struct net_device *dev,
			       struct ethtool_channels *ch)
{
	unsigned int old = dev->real_num_rx_queues;
	unsigned int n = ch->combined_count;
	bool running = netif_running(dev);
	struct dmveth_steer *st;
	int err;

	if (ch->rx_count || ch->tx_count || ch->other_count)
		return -EINVAL;
	if (!n || n > dev->num_rx_queues || n > dev->num_tx_queues)
		return -EINVAL;
	if (n == old && n == dev->real_num_tx_queues)
		return 0;

	/* Allocate first: nothing may fail once the queue count changed. */
	st = dmveth_steer_dup(dev);
	if (!st)
		return -ENOMEM;
	/* the table as it will be; no context rule may then pass the last queue */
	if (!netif_is_rxfh_configured(dev))
		dmveth_indir_spread(st, n);
	if (!dmveth_rss_rules_fit(st, 0, NULL, n)) {
		kvfree(st);
		return -EINVAL;
	}

	if (running)
		err = dmveth_set_queue_count(dev, n);
	else
		err = netif_set_real_num_queues(dev, n, n);
	if (err) {
		kvfree(st);
		return err;
	}
	dmveth_steer_respread(dev, st);
	return 0;
}

static int dmveth_get_coalesce(struct net_device *dev,
			       struct ethtool_coalesce *ec,
			       struct kernel_ethtool_coalesce *kec,
			       struct netlink_ext_ack *extack)
{
	struct dmveth_priv *priv = netdev_priv(dev);
	const struct dmveth_coal *c = &priv->coal;

	ec->rx_coalesce_usecs = c->rx_usecs;
	ec->rx_max_coalesced_frames = c->rx_frames;
	ec->tx_coalesce_usecs = c->tx_usecs;
	ec->tx_max_coalesced_frames = c->tx_frames;
	ec->use_adaptive_rx_coalesce = c->rx_adaptive;
	ec->use_adaptive_tx_coalesce = c->tx_adaptive;
	/* queue and device counters are current: no stats DMA period */
	ec->stats_block_coalesce_usecs = 0;
	return 0;
}

/* One direction's usecs and frames, named @dir ("rx" or "tx"). */
static int dmveth_coal_check(const char *dir, u32 usecs, u32 frames,
			     struct netlink_ext_ack *extack)
{
	if (usecs > DMVETH_COAL_USECS_MAX) {
		NL_SET_ERR_MSG_FMT_MOD(extack,
				       "%s-usecs %u is above the maximum %u",
				       dir, usecs, DMVETH_COAL_USECS_MAX);
		return -EINVAL;
	}
	if (frames > DMVETH_COAL_FRAMES_MAX) {
		NL_SET_ERR_MSG_FMT_MOD(extack,
				       "%s-frames %u is above the maximum %u",
				       dir, frames, DMVETH_COAL_FRAMES_MAX);
		return -EINVAL;
	}
	if (!usecs && !frames) {
		NL_SET_ERR_MSG_FMT_MOD(extack,
				       "%s-usecs and %s-frames cannot both be 0",
				       dir, dir);
		return -EINVAL;
	}
	return 0;
}

/*
 * The core refused parameters outside supported_coalesce_params and filled
 * @ec with the current values of those not given.  Stored and reported
 * only (see struct dmveth_coal).
 */
static int dmveth_set_coalesce(struct net_device *dev,
			       struct ethtool_coalesce *ec,
			       struct kernel_ethtool_coalesce *kec,
			       struct netlink_ext_ack *extack)
{
	struct dmveth_priv *priv = netdev_priv(dev);
	int err;

	err = dmveth_coal_check("rx", ec->rx_coalesce_usecs,
				ec->rx_max_coalesced_frames, extack);
	if (err)
		return err;
	err = dmveth_coal_check("tx", ec->tx_coalesce_usecs,
				ec->tx_max_coalesced_frames, extack);
	if (err)
		return err;
	if (ec->stats_block_coalesce_usecs) {
		NL_SET_ERR_MSG_MOD(extack,
				   "stats-block-usecs must be 0: counters are never delayed");
		return -EINVAL;
	}

	priv->coal.rx_usecs = ec->rx_coalesce_usecs;
	priv->coal.rx_frames = ec->rx_max_coalesced_frames;
	priv->coal.tx_usecs = ec->tx_coalesce_usecs;
	priv->coal.tx_frames = ec->tx_max_coalesced_frames;
	priv->coal.rx_adaptive = !!ec->use_adaptive_rx_coalesce;
	priv->coal.tx_adaptive = !!ec->use_adaptive_tx_coalesce;
	return 0;
}

static u32 dmveth_get_rx_ring_count(struct net_device *dev)
{
	return dev->real_num_rx_queues;
}

static u32 dmveth_get_rxfh_key_size(struct net_device *dev)
{
	return DMVETH_KEY_SIZE;
}

static u32 dmveth_get_rxfh_indir_size(struct net_device *dev)
{
	return DMVETH_INDIR_SIZE;
}

static int dmveth_get_rxfh(struct net_device *dev,
			   struct ethtool_rxfh_param *rxfh)
{
	const struct dmveth_steer *st = dmveth_steer_locked(dev);

	rxfh->hfunc = ETH_RSS_HASH_TOP;
	if (rxfh->indir)
		memcpy(rxfh->indir, st->indir, sizeof(st->indir));
	if (rxfh->key)
		memcpy(rxfh->key, st->key, sizeof(st->key));
	return 0;
}

/*
 * What set_rxfh and the RSS context ops both check: the hash function (only
 * Toeplitz), no input transformation, table entries within the real RX
 * queues.  The core has sized the table and key.
 */
static int dmveth_rxfh_check(struct net_device *dev,
			     const struct ethtool_rxfh_param *rxfh,
			     struct netlink_ext_ack *extack)
{
	u32 i;

	if (rxfh->hfunc != ETH_RSS_HASH_NO_CHANGE &&
	    rxfh->hfunc != ETH_RSS_HASH_TOP) {
		NL_SET_ERR_MSG_MOD(extack, "only the Toeplitz hash is supported");
		return -EOPNOTSUPP;
	}
	if (rxfh->input_xfrm && rxfh->input_xfrm != RXH_XFRM_NO_CHANGE) {
		NL_SET_ERR_MSG_MOD(extack, "input transformation is not supported");
		return -EOPNOTSUPP;
	}
	for (i = 0; rxfh->indir && i < DMVETH_INDIR_SIZE; i++) {
		if (rxfh->indir[i] >= dev->real_num_rx_queues) {
			NL_SET_ERR_MSG_MOD(extack,
					   "indirection table entry out of range");
			return -EINVAL;
		}
	}
	if (rxfh->indir &&
	    !dmveth_rss_rules_fit(dmveth_steer_locked(dev), rxfh->rss_context,
				  rxfh->indir, dev->real_num_rx_queues)) {
		NL_SET_ERR_MSG_MOD(extack,
				   "a rule's queue offset plus this table passes the last queue; delete or change the rule first");
		return -EINVAL;
	}
	return 0;
}

/*
 * "ethtool -X default"
 * arrives as an equal-spread table; the core then marks the table as not
 * user-configured (netif_is_rxfh_configured()), which is what decides
 * whether a channel change respreads it.
 */
static int dmveth_set_rxfh(struct net_device *dev,
			   struct ethtool_rxfh_param *rxfh,
			   struct netlink_ext_ack *extack)
{
	struct dmveth_steer *st;
	int err;

	err = dmveth_rxfh_check(dev, rxfh, extack);
	if (err)
		return err;
	if (!rxfh->indir && !rxfh->key)
		return 0;

	st = dmveth_steer_dup(dev);
	if (!st)
		return -ENOMEM;
	if (rxfh->indir)
		memcpy(st->indir, rxfh->indir, sizeof(st->indir));
	if (rxfh->key)
		memcpy(st->key, rxfh->key, sizeof(st->key));
	dmveth_steer_publish(dev, st);
	return 0;
}

/*
 * The RSS hash input per flow type (ethtool -n/-N rx-flow-hash), for the
 * device's table and every context (no rxfh_per_ctx_fields: the core
 * refuses a context there).  Only what dmveth_flow_hash() honours is
 * reported or accepted: tcp4, udp4, tcp6 and udp6 hash any of the IP
 * addresses and ports; ip4 and ip6 (every other IP frame, and IPv4
 * fragments) any of the addresses.  sctp4, ah4, esp4 (and v6) read as
 * ip4/ip6, which set them.  Other flow types are not hashed (-EOPNOTSUPP).
 */
static int dmveth_get_rxfh_fields(struct net_device *dev,
				  struct ethtool_rxfh_fields *fields)
{
	bool shared;
	int hc = dmveth_hash_class_of_type(fields->flow_type, &shared);

	if (hc < 0)
		return hc;
	fields->data = dmveth_steer_locked(dev)->hash_fields[hc];
	return 0;
}

static int dmveth_set_rxfh_fields(struct net_device *dev,
				  const struct ethtool_rxfh_fields *fields,
				  struct netlink_ext_ack *extack)
{
	struct dmveth_steer *st;
	bool shared;
	u32 max;
	int hc;

	hc = dmveth_hash_class_of_type(fields->flow_type, &shared);
	if (hc < 0 || shared) {
		NL_SET_ERR_MSG_MOD(extack,
				   "only tcp4, udp4, ip4, tcp6, udp6 and ip6 hash settings exist");
		return -EOPNOTSUPP;
	}
	if (fields->rss_context)
		return -EINVAL;
	max = dmveth_hash_fields_max(hc);
	if (fields->data & ~max) {
		if (max & RXH_L4_B_0_1)
			NL_SET_ERR_MSG_MOD(extack,
					   "only IP addresses (s, d) and L4 ports (f, n) can be hashed");
		else
			NL_SET_ERR_MSG_MOD(extack,
					   "only IP addresses (s, d) can be hashed");
		return -EINVAL;
	}
	if (fields->data == dmveth_steer_locked(dev)->hash_fields[hc])
		return 0;

	st = dmveth_steer_dup(dev);
	if (!st)
		return -ENOMEM;
	st->hash_fields[hc] = fields->data;
	dmveth_steer_publish(dev, st);
	return 0;
}

/*
 * Additional RSS contexts.  The core keeps each context's configuration
 * (and answers reads from it); the datapath reads the copy in the
 * steering state, published like the rest of it.  A context's table is
 * the user's, never respread: the core refuses channel counts that would
 * orphan one of its entries, and contexts that a rule uses stay.
 */
static int dmveth_rss_check(struct net_device *dev,
			    const struct ethtool_rxfh_param *rxfh,
			    struct netlink_ext_ack *extack)
{
	if (rxfh->rss_context >= DMVETH_MAX_CTX)
		return -EINVAL;
	return dmveth_rxfh_check(dev, rxfh, extack);
}

/* Apply @rxfh to context @ctx's copy in a new steering state. */
static int dmveth_rss_apply(struct net_device *dev,
			    const struct ethtool_rxfh_param *rxfh)
{
	struct dmveth_steer *st = dmveth_steer_dup(dev);
	struct dmveth_rss_ctx *c;

	if (!st)
		return -ENOMEM;
	c = &st->ctx[rxfh->rss_context];
	if (rxfh->indir)
		memcpy(c->indir, rxfh->indir, sizeof(c->indir));
	if (rxfh->key)
		memcpy(c->key, rxfh->key, sizeof(c->key));
	c->used = true;
	dmveth_steer_publish(dev, st);
	return 0;
}

static int dmveth_create_rxfh_context(struct net_device *dev,
				      struct ethtool_rxfh_context *ctx,
				      const struct ethtool_rxfh_param *rxfh,
				      struct netlink_ext_ack *extack)
{
	const struct dmveth_steer *cur = dmveth_steer_locked(dev);
	struct ethtool_rxfh_param p = *rxfh;
	int err;
	u32 i;

	err = dmveth_rss_check(dev, rxfh, extack);
	if (err)
		return err;
	/* defaults, told to the core: an equal spread, the device's key */
	if (!p.indir) {
		u32 nq = dev->real_num_rx_queues;

		p.indir = ethtool_rxfh_context_indir(ctx);
		for (i = 0; i < DMVETH_INDIR_SIZE; i++)
			p.indir[i] = ethtool_rxfh_indir_default(i, nq);
	}
	if (!p.key) {
		p.key = ethtool_rxfh_context_key(ctx);
		memcpy(p.key, cur->key, sizeof(cur->key));
	}
	ctx->hfunc = ETH_RSS_HASH_TOP;
	ctx->input_xfrm = 0;
	return dmveth_rss_apply(dev, &p);
}

static int dmveth_modify_rxfh_context(struct net_device *dev,
				      struct ethtool_rxfh_context *ctx,
				      const struct ethtool_rxfh_param *rxfh,
				      struct netlink_ext_ack *extack)
{
	int err;

	err = dmveth_rss_check(dev, rxfh, extack);
	if (err)
		return err;
	if (!rxfh->indir && !rxfh->key)
		return 0;
	return dmveth_rss_apply(dev, rxfh);
}

static int dmveth_remove_rxfh_context(struct net_device *dev,
				      struct ethtool_rxfh_context *ctx,
				      u32 rss_context,
				      struct netlink_ext_ack *extack)
{
	struct dmveth_steer *st;

	if (rss_context >= DMVETH_MAX_CTX)
		return -EINVAL;
	st = dmveth_steer_dup(dev);
	if (!st)
		return -ENOMEM;
	memset(&st->ctx[rss_context], 0, sizeof(st->ctx[rss_context]));
	dmveth_steer_publish(dev, st);
	return 0;
}

static int dmveth_get_rxnfc(struct net_device *dev, struct ethtool_rxnfc *info,
			    u32 *rule_locs)
{
	const struct dmveth_steer *st = dmveth_steer_locked(dev);
	u32 i, n = 0;

	switch (info->cmd) {
	case ETHTOOL_GRXCLSRLCNT:
		info->rule_cnt = st->nr_rules;
		info->data = DMVETH_MAX_RULES | RX_CLS_LOC_SPECIAL;
		return 0;
	case ETHTOOL_GRXCLSRULE:
		i = info->fs.location;
		if (i >= DMVETH_MAX_RULES)
			return -EINVAL;
		if (!st->rules[i].used)
			return -ENOENT;
		info->fs = st->rules[i].fs;
		info->rss_context = st->rules[i].rss_context;
		return 0;
	case ETHTOOL_GRXCLSRLALL:
		for (i = 0; i < DMVETH_MAX_RULES; i++) {
			if (!st->rules[i].used)
				continue;
			if (n == info->rule_cnt)
				return -EMSGSIZE;
			rule_locs[n++] = i;
		}
		info->rule_cnt = n;
		info->data = DMVETH_MAX_RULES;
		return 0;
	}
	return -EOPNOTSUPP;
}

static int dmveth_rule_check(struct net_device *dev,
			     const struct ethtool_rxnfc *info)
{
	const struct dmveth_steer *st = dmveth_steer_locked(dev);
	const struct ethtool_rx_flow_spec *fs = &info->fs;
	u64 ring = fs->ring_cookie;
	u8 l4proto;

	if (fs->flow_type & (FLOW_EXT | FLOW_MAC_EXT))
		return -EOPNOTSUPP;
	if (!dmveth_flow_type_l3(fs->flow_type & ~FLOW_RSS, &l4proto))
		return -EOPNOTSUPP;
	if (ring == RX_CLS_FLOW_DISC)
		return 0;
	/* context N: the queue is an offset added to N's table entries */
	if ((fs->flow_type & FLOW_RSS) && info->rss_context &&
	    (info->rss_context >= DMVETH_MAX_CTX ||
	     !st->ctx[info->rss_context].used))
		return -EINVAL;
	/* A plain queue index: no VF, no other cookie bits. */
	if (ring != ethtool_get_flow_spec_ring(ring) ||
	    ring >= dev->real_num_rx_queues)
		return -EINVAL;
	/* ... and with a context, past none of the queues its table adds */
	if ((fs->flow_type & FLOW_RSS) &&
	    !dmveth_offset_fits(ring, dmveth_ctx_indir(st, info->rss_context),
				dev->real_num_rx_queues))
		return -EINVAL;
	return 0;
}

/*
 * Whether a rule already matches what @fs matches.  A rule placed
 * anywhere (RX_CLS_LOC_ANY) must not: a filter table keyed by the flow
 * holds one entry per key, and bnxt refuses a second with -EEXIST.
 */
static bool dmveth_rule_same(const struct dmveth_steer *st,
			     const struct ethtool_rx_flow_spec *fs)
{
	const struct ethtool_rx_flow_spec *o;
	int i;

	for (i = 0; i < DMVETH_MAX_RULES; i++) {
		o = &st->rules[i].fs;
		if (st->rules[i].used &&
		    !((o->flow_type ^ fs->flow_type) & ~FLOW_RSS) &&
		    !memcmp(&o->h_u, &fs->h_u, sizeof(o->h_u)) &&
		    !memcmp(&o->m_u, &fs->m_u, sizeof(o->m_u)))
			return true;
	}
	return false;
}

/*
 * The slot for new rule @fs at its location, which may be a special one:
 * any (the first free, unless a rule has the same match), first free or
 * last free.
 */
static int dmveth_rule_loc(const struct dmveth_steer *st,
			   const struct ethtool_rx_flow_spec *fs)
{
	int i;

	switch (fs->location) {
	case RX_CLS_LOC_ANY:
		if (dmveth_rule_same(st, fs))
			return -EEXIST;
		fallthrough;
	case RX_CLS_LOC_FIRST:
		for (i = 0; i < DMVETH_MAX_RULES; i++)
			if (!st->rules[i].used)
				return i;
		return -ENOSPC;
	case RX_CLS_LOC_LAST:
		for (i = DMVETH_MAX_RULES - 1; i >= 0; i--)
			if (!st->rules[i].used)
				return i;
		return -ENOSPC;
	}
	return fs->location < DMVETH_MAX_RULES ? fs->location : -EINVAL;
}

static int dmveth_rule_ins(struct net_device *dev, struct ethtool_rxnfc *info)
{
	struct ethtool_rx_flow_spec *fs = &info->fs;
	struct dmveth_steer *st;
	struct dmveth_rule *r;
	int loc, err;

	if (!(dev->features & NETIF_F_NTUPLE))
		return -EOPNOTSUPP;
	err = dmveth_rule_check(dev, info);
	if (err)
		return err;
	loc = dmveth_rule_loc(dmveth_steer_locked(dev), fs);
	if (loc < 0)
		return loc;

	st = dmveth_steer_dup(dev);
	if (!st)
		return -ENOMEM;
	r = &st->rules[loc];
	if (!r->used)
		st->nr_rules++;
	r->used = true;
	r->fs = *fs;
	r->rss_context = fs->flow_type & FLOW_RSS ? info->rss_context : 0;
	r->fs.location = loc;
	memset(&r->fs.h_ext, 0, sizeof(r->fs.h_ext));
	memset(&r->fs.m_ext, 0, sizeof(r->fs.m_ext));
	dmveth_steer_publish(dev, st);

	fs->location = loc;	/* copied back: "Added rule with ID n" */
	return 0;
}

static int dmveth_rule_del(struct net_device *dev, u32 loc)
{
	struct dmveth_steer *st;

	if (loc >= DMVETH_MAX_RULES)
		return -EINVAL;
	if (!dmveth_steer_locked(dev)->rules[loc].used)
		return -ENOENT;

	st = dmveth_steer_dup(dev);
	if (!st)
		return -ENOMEM;
	memset(&st->rules[loc], 0, sizeof(st->rules[loc]));
	st->nr_rules--;
	dmveth_steer_publish(dev, st);
	return 0;
}

static int dmveth_set_rxnfc(struct net_device *dev, struct ethtool_rxnfc *info)
{
	switch (info->cmd) {
	case ETHTOOL_SRXCLSRLINS:
		return dmveth_rule_ins(dev, info);
	case ETHTOOL_SRXCLSRLDEL:
		return dmveth_rule_del(dev, info->fs.location);
	}
	return -EOPNOTSUPP;
}

static int dmveth_get_sset_count(struct net_device *dev, int sset)
{
	if (sset != ETH_SS_STATS)
		return -EOPNOTSUPP;
	return dev->real_num_rx_queues * DMVETH_RQ_NSTATS +
	       dev->real_num_tx_queues * DMVETH_TQ_NSTATS;
}

static void dmveth_get_strings(struct net_device *dev, u32 sset, u8 *data)
{
	unsigned int i, j;

	if (sset != ETH_SS_STATS)
		return;
	for (i = 0; i < dev->real_num_rx_queues; i++)
		for (j = 0; j < DMVETH_RQ_NSTATS; j++)
			ethtool_sprintf(&data, "rx%u_%s", i,
					dmveth_rq_stat_names[j]);
	for (i = 0; i < dev->real_num_tx_queues; i++)
		for (j = 0; j < DMVETH_TQ_NSTATS; j++)
			ethtool_sprintf(&data, "tx%u_%s", i,
					dmveth_tq_stat_names[j]);
}

static void dmveth_get_ethtool_stats(struct net_device *dev,
				     struct ethtool_stats *stats, u64 *data)
{
	struct dmveth_priv *priv = netdev_priv(dev);
	unsigned int i, start;

	for (i = 0; i < dev->real_num_rx_queues; i++) {
		const struct dmveth_rq_stats *s = &priv->rq[i].stats;

		do {
			start = u64_stats_fetch_begin(&s->syncp);
			data[0] = s->packets;
			data[1] = s->bytes;
			data[2] = s->alloc_fail;
			data[3] = s->drops;
			data[4] = s->unreadable_packets;
			data[5] = s->split_packets;
		} while (u64_stats_fetch_retry(&s->syncp, start));
		data += DMVETH_RQ_NSTATS;
	}
	for (i = 0; i < dev->real_num_tx_queues; i++) {
		const struct dmveth_tq_stats *s = &priv->tq_stats[i];

		do {
			start = u64_stats_fetch_begin(&s->syncp);
			data[0] = s->packets;
			data[1] = s->bytes;
			data[2] = s->unreadable_packets;
			data[3] = s->drops;
			data[4] = s->stops;
			data[5] = s->xmit_more;
		} while (u64_stats_fetch_retry(&s->syncp, start));
		data += DMVETH_TQ_NSTATS;
	}
}

const struct ethtool_ops dmveth_ethtool_ops = {
	.supported_ring_params	= ETHTOOL_RING_USE_TCP_DATA_SPLIT |
				  ETHTOOL_RING_USE_HDS_THRS,
	.rxfh_max_num_contexts	= DMVETH_MAX_CTX,
	.rxfh_per_ctx_key	= 1,
	.cap_rss_rxnfc_adds	= 1,
	.supported_coalesce_params = ETHTOOL_COALESCE_USECS |
				  ETHTOOL_COALESCE_MAX_FRAMES |
				  ETHTOOL_COALESCE_USE_ADAPTIVE |
				  ETHTOOL_COALESCE_STATS_BLOCK_USECS,
	/* real_num_tx_queues and link watch sync touch the qdiscs (rtnl) */
	.op_needs_rtnl		= ETHTOOL_OP_NEEDS_RTNL_SCHANNELS |
				  ETHTOOL_OP_NEEDS_RTNL_SRINGPARAM |
				  ETHTOOL_OP_NEEDS_RTNL_GLINK,
	.get_drvinfo		= dmveth_get_drvinfo,
	.get_link		= ethtool_op_get_link,
	.get_ringparam		= dmveth_get_ringparam,
	.set_ringparam		= dmveth_set_ringparam,
	.get_channels		= dmveth_get_channels,
	.set_channels		= dmveth_set_channels,
	.get_coalesce		= dmveth_get_coalesce,
	.set_coalesce		= dmveth_set_coalesce,
	.get_rx_ring_count	= dmveth_get_rx_ring_count,
	.get_rxfh_key_size	= dmveth_get_rxfh_key_size,
	.get_rxfh_indir_size	= dmveth_get_rxfh_indir_size,
	.get_rxfh		= dmveth_get_rxfh,
	.set_rxfh		= dmveth_set_rxfh,
	.get_rxfh_fields	= dmveth_get_rxfh_fields,
	.set_rxfh_fields	= dmveth_set_rxfh_fields,
	.create_rxfh_context	= dmveth_create_rxfh_context,
	.modify_rxfh_context	= dmveth_modify_rxfh_context,
	.remove_rxfh_context	= dmveth_remove_rxfh_context,
	.get_rxnfc		= dmveth_get_rxnfc,
	.set_rxnfc		= dmveth_set_rxnfc,
	.get_sset_count		= dmveth_get_sset_count,
	.get_strings		= dmveth_get_strings,
	.get_ethtool_stats	= dmveth_get_ethtool_stats,
};
