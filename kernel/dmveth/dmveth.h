/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dmveth: a veth-like pair of software NICs that carries devmem TCP.
 *
 * Each end has up to DMVETH_MAX_QUEUES RX/TX queues.  A frame sent on one
 * end is queued on an RX queue of the peer, chosen by the peer's ntuple
 * rules or its RSS indirection table; that queue's NAPI "DMAs" the frame
 * into buffers from its page pools, as a NIC would.
 */
#ifndef _DMVETH_H
#define _DMVETH_H

#include <linux/ethtool.h>
#include <linux/netdevice.h>
#include <linux/sizes.h>
#include <linux/skbuff.h>
#include <linux/smp.h>
#include <linux/in6.h>
#include <linux/u64_stats_sync.h>

#define DRV_NAME		"dmveth"

#define DMVETH_MAX_QUEUES	128
#define DMVETH_DEF_QUEUES	4
#define DMVETH_RING_DEF		256
#define DMVETH_RING_MIN		16
#define DMVETH_RING_MAX		4096
#define DMVETH_HDS_MAX		1024
#define DMVETH_INDIR_SIZE	128
#define DMVETH_KEY_SIZE		40
#define DMVETH_MAX_RULES	128
/* RSS contexts: 0 is the device's table, 1..DMVETH_MAX_CTX - 1 additional */
#define DMVETH_MAX_CTX		64
/* largest rx-page-size (QCFG_RX_PAGE_SIZE): one TSO frame's payload */
#define DMVETH_RX_PAGE_MAX	SZ_64K
/* interrupt coalescing limits (ethtool -C) */
#define DMVETH_COAL_USECS_MAX	8192
#define DMVETH_COAL_FRAMES_MAX	DMVETH_RING_MAX

/* Per-queue counters; written by one NAPI (rx) or one xmit path (tx). */
struct dmveth_rq_stats {
	u64 packets;
	u64 bytes;
	u64 alloc_fail;
	u64 drops;
	u64 unreadable_packets;	/* payload placed in a memory provider */
	u64 split_packets;	/* header split done */
	struct u64_stats_sync syncp;
};

struct dmveth_tq_stats {
	u64 packets;
	u64 bytes;
	u64 unreadable_packets;	/* skbs carrying net_iov (devmem) frags */
	u64 drops;
	u64 stops;		/* times the queue stopped for a full backlog */
	u64 xmit_more;		/* frames whose doorbell waited for a later one */
	struct u64_stats_sync syncp;
};

/* What xmit tells the peer's NAPI about a frame (the sender's skb->cb). */
struct dmveth_skb_cb {
	struct netdev_queue *txq;	/* the sender's, for its BQL completion */
	u32 hash;		/* RSS hash, valid when hash_type is set */
	u8 hash_type;		/* enum pkt_hash_types */
};

#define DMVETH_CB(skb)	((struct dmveth_skb_cb *)(skb)->cb)

/*
 * One RX queue.  The NAPI and the backlog live as long as the device; the
 * page pool is replaced on queue restart (queue management ops) and on
 * open/close.  The backlog holds the peer's TX skbs until NAPI copies them:
 * freeing them is what completes the sender's zerocopy notification.
 */
struct dmveth_rq {
	struct net_device *dev;
	struct napi_struct napi;
	struct sk_buff_head backlog;	/* lockless readers: skb_queue_len_lockless() */
	struct page_pool *pool;	/* payload pool, NULL while stopped */
	unsigned int buf_size;	/* bytes per pool buffer (rx-page-size) */
	unsigned int frag_size;	/* bytes per payload fragment (rx_frag_size) */
	unsigned int idx;
	int irq_cpu;		/* where its "interrupt" runs the NAPI */
	call_single_data_t irq;	/* raises it there from another CPU */
	bool peer_stopped;	/* the peer's TX queues wait for room here */
	struct dmveth_rq_stats stats;
};

struct dmveth_rule {
	struct ethtool_rx_flow_spec fs;
	u32 rss_context;	/* with FLOW_RSS: the table ring_cookie adds to */
	bool used;
};

/* An RSS context: its own indirection table and key. */
struct dmveth_rss_ctx {
	u32 indir[DMVETH_INDIR_SIZE];
	u8 key[DMVETH_KEY_SIZE];
	bool used;
};

/*
 * The classes of frames whose RSS hash input is configured separately
 * (ethtool -N rx-flow-hash): TCP and UDP over IPv4 and IPv6, and any other
 * IP frame (other protocols, IPv4 fragments) as ip4 or ip6.
 */
enum dmveth_hash_class {
	DMVETH_HC_TCP4,
	DMVETH_HC_UDP4,
	DMVETH_HC_IP4,
	DMVETH_HC_TCP6,
	DMVETH_HC_UDP6,
	DMVETH_HC_IP6,
	DMVETH_HC_NUM,
};

/*
 * Interrupt coalescing settings (ethtool -c/-C).  Stored and reported only:
 * dmveth's "interrupt" is the peer's xmit scheduling NAPI, per frame.
 */
struct dmveth_coal {
	u32 rx_usecs;
	u32 rx_frames;
	u32 tx_usecs;
	u32 tx_frames;
	bool rx_adaptive;
	bool tx_adaptive;
};

/*
 * Receive-side steering state.  Readers (the peer's xmit path) use RCU;
 * writers (ethtool ops, under the netdev instance lock) copy, modify, publish
 * with rcu_assign_pointer() and free the old copy with kfree_rcu().
 */
struct dmveth_steer {
	struct rcu_head rcu;
	u32 indir[DMVETH_INDIR_SIZE];
	u8 key[DMVETH_KEY_SIZE];
	struct dmveth_rule rules[DMVETH_MAX_RULES];
	unsigned int nr_rules;
	/* RSS contexts by id; [0] is unused (the table above) */
	struct dmveth_rss_ctx ctx[DMVETH_MAX_CTX];
	/* RXH_* fields hashed per class, for every table and context */
	u32 hash_fields[DMVETH_HC_NUM];
};

struct dmveth_priv {
	struct net_device __rcu *peer;
	netdevice_tracker peer_tracker;
	struct net_device *dev;
	unsigned int rx_ring;	/* backlog limit per RX queue, pool size */
	unsigned int tx_ring;
	/* header split as the core configured it, latched at queue (re)start:
	 * dev->cfg may be replaced (and freed) under NAPI
	 */
	u8 hds_config;
	u32 hds_thresh;
	struct dmveth_coal coal;	/* under the netdev instance lock */
	struct dmveth_steer __rcu *steer;
	struct list_head fault_node;	/* on the fault injection list */
	struct dmveth_rq rq[DMVETH_MAX_QUEUES];
	struct dmveth_tq_stats tq_stats[DMVETH_MAX_QUEUES];
	/*
	 * Per TX queue, under its xmit lock: the peer's RX queue that holds
	 * frames of the current xmit_more batch whose interrupt is not raised
	 * yet (the doorbell not rung); NULL between batches.
	 */
	struct dmveth_rq *tx_doorbell[DMVETH_MAX_QUEUES];
	/*
	 * Per TX queue: serializes its BQL completions.  A NIC completes a
	 * TX queue from one place; here the peer's RX queues (NAPIs on any
	 * CPU) and purges all do, and dql_completed() takes one at a time.
	 */
	spinlock_t bql_lock[DMVETH_MAX_QUEUES];
};

/* The flow of a frame, parsed from its (readable) headers. */
struct dmveth_flow {
	u8 l3;			/* 4, 6, or 0: not IP */
	u8 l4proto;		/* IPPROTO_TCP, IPPROTO_UDP, ... */
	bool is_frag;		/* IPv4 fragment: no ports, no split */
	__be32 src4, dst4;
	struct in6_addr src6, dst6;
	__be16 sport, dport;
	u8 tos;
	unsigned int hdr_len;	/* Ethernet + IP + TCP header bytes; 0 if not TCP */
};

/* main.c */
struct device *dmveth_dma_dev(void);

/* fault.c: debugfs knobs under /sys/kernel/debug/dmveth/ for tests */
void dmveth_fault_init(void);
void dmveth_fault_exit(void);
void dmveth_fault_add(struct net_device *dev);
void dmveth_fault_del(struct net_device *dev);
bool dmveth_fault_rx_stall(void);
bool dmveth_fault_pool_create(void);

/* netdev.c */
extern const struct net_device_ops dmveth_netdev_ops;
extern const struct netdev_stat_ops dmveth_stat_ops;
int dmveth_open_queues(struct net_device *dev);
void dmveth_close_queues(struct net_device *dev);
int dmveth_restart_queues(struct net_device *dev, unsigned int ring);
int dmveth_set_queue_count(struct net_device *dev, unsigned int n);
void dmveth_rq_start(struct net_device *dev, struct dmveth_rq *rq,
		     struct page_pool *pool);
struct page_pool *dmveth_rq_stop(struct net_device *dev, struct dmveth_rq *rq);
void dmveth_kick_queues(struct net_device *dev);
void dmveth_rq_interrupt(struct dmveth_rq *rq);
unsigned int dmveth_wire_frames(const struct sk_buff *skb);
int dmveth_parse_flow(const struct sk_buff *skb, struct dmveth_flow *fl);

/* devmem.c: page pools, the "DMA engine", queue management ops */
extern const struct netdev_queue_mgmt_ops dmveth_queue_mgmt_ops;
/* Pick the DMA engine's copy routine: the faster one here. */
void dmveth_dma_copy_init(void);
struct page_pool *dmveth_create_pool(struct net_device *dev,
				     struct dmveth_rq *rq, unsigned int ring,
				     unsigned int buf_size);
void dmveth_destroy_pool(struct page_pool *pool);
void dmveth_rx_drop(struct dmveth_rq *rq, unsigned int n, bool alloc_fail);
void dmveth_latch_hds(struct net_device *dev);
void dmveth_dma_rx(struct dmveth_rq *rq, struct sk_buff *txskb);
unsigned int dmveth_frag_size(unsigned int buf_size);

/* ethtool.c */
extern const struct ethtool_ops dmveth_ethtool_ops;
/* Allocate the default steering state (equal spread, random key). */
int dmveth_steer_init(struct net_device *dev);
void dmveth_steer_free(struct net_device *dev);
/*
 * The RX queue of @dev (the receiver) for a frame of flow @fl: the first
 * matching ntuple rule (lowest location), else the RSS hash (Toeplitz over
 * the addresses and ports that rx-flow-hash selects for the frame's class,
 * with the device's key) through the indirection
 * table; a rule with FLOW_RSS adds its queue to the entry of its RSS
 * context's table (that context's key); always < dev->real_num_rx_queues.
 * Returns -1 when a rule says drop (RX_CLS_FLOW_DISC).  The RSS hash goes
 * to @cb.  Caller holds rcu_read_lock().
 */
int dmveth_steer_rx_queue(struct net_device *dev,
			  const struct dmveth_flow *fl,
			  struct dmveth_skb_cb *cb);

#endif /* _DMVETH_H */
