// SPDX-License-Identifier: GPL-2.0
/*
 * dmveth: module init/exit, the pair's DMA device and rtnl link ops.
 *
 * All pairs share one platform device as their parent: it is the "DMA
 * device" the kernel attaches dma-bufs to.  It uses dma-direct with a 64-bit
 * mask, so a DMA address is a physical address and the pair's "DMA engine"
 * (devmem.c) reaches the bytes through it.  That needs no IOMMU translation
 * and no swiotlb bouncing; module load fails with a message otherwise.
 */
#include <linux/dma-direct.h>
#include <linux/dma-mapping.h>
#include <linux/etherdevice.h>
#include <linux/kmemleak.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/platform_device.h>
#include <net/netdev_queues.h>
#include <net/rtnetlink.h>

#include "dmveth.h"

enum {
	DMVETH_INFO_UNSPEC,
	DMVETH_INFO_PEER,	/* struct ifinfomsg + IFLA_* of the peer */
	__DMVETH_INFO_MAX
};

#define DMVETH_INFO_MAX (__DMVETH_INFO_MAX - 1)

static struct platform_device *dmveth_pdev;
static struct rtnl_link_ops dmveth_link_ops;

struct device *dmveth_dma_dev(void)
{
	return &dmveth_pdev->dev;
}

#define DMVETH_FEATURES (NETIF_F_SG | NETIF_F_HW_CSUM | NETIF_F_RXCSUM | \
			 NETIF_F_TSO | NETIF_F_TSO6 | NETIF_F_GRO | \
			 NETIF_F_HIGHDMA)

static void dmveth_setup(struct net_device *dev)
{
	ether_setup(dev);

	dev->priv_flags &= ~IFF_TX_SKB_SHARING;
	dev->priv_flags |= IFF_LIVE_ADDR_CHANGE;
	dev->priv_flags |= IFF_DISABLE_NETPOLL;
	dev->netdev_ops = &dmveth_netdev_ops;
	dev->ethtool_ops = &dmveth_ethtool_ops;
	dev->queue_mgmt_ops = &dmveth_queue_mgmt_ops;
	dev->stat_ops = &dmveth_stat_ops;
	dev->netmem_tx = NETMEM_TX_DMA;
	/* rx-gro-hw on by default, as gve (DQO) and bnxt: see dmveth_dma_rx() */
	dev->features |= DMVETH_FEATURES | NETIF_F_NTUPLE | NETIF_F_GRO_HW;
	dev->hw_features = DMVETH_FEATURES | NETIF_F_NTUPLE | NETIF_F_GRO_HW;
	dev->vlan_features = DMVETH_FEATURES;
	dev->needs_free_netdev = true;
	dev->pcpu_stat_type = NETDEV_PCPU_STAT_DSTATS;
	dev->max_mtu = ETH_MAX_MTU;
	netif_set_tso_max_size(dev, GSO_LEGACY_MAX_SIZE);
}

static int dmveth_validate(struct nlattr *tb[], struct nlattr *data[],
			   struct netlink_ext_ack *extack)
{
	u32 rxq, txq;

	if (tb[IFLA_ADDRESS]) {
		if (nla_len(tb[IFLA_ADDRESS]) != ETH_ALEN)
			return -EINVAL;
		if (!is_valid_ether_addr(nla_data(tb[IFLA_ADDRESS])))
			return -EADDRNOTAVAIL;
	}
	rxq = tb[IFLA_NUM_RX_QUEUES] ? nla_get_u32(tb[IFLA_NUM_RX_QUEUES]) :
				       DMVETH_DEF_QUEUES;
	txq = tb[IFLA_NUM_TX_QUEUES] ? nla_get_u32(tb[IFLA_NUM_TX_QUEUES]) :
				       DMVETH_DEF_QUEUES;
	if (rxq != txq) {
		NL_SET_ERR_MSG_MOD(extack,
				   "numrxqueues and numtxqueues must be equal (channels are combined)");
		return -EINVAL;
	}
	if (rxq < 1 || rxq > DMVETH_MAX_QUEUES) {
		NL_SET_ERR_MSG_FMT_MOD(extack, "queue count must be 1..%d",
				       DMVETH_MAX_QUEUES);
		return -EINVAL;
	}
	return 0;
}

static unsigned int dmveth_get_num_queues(void)
{
	return DMVETH_DEF_QUEUES;
}

/*
 * A NIC's DMA engine fills receive buffers beside the CPUs; dmveth's is a
 * copy, done by the RX queue's NAPI.  In a NAPI thread of its own (as
 * wireguard's) the scheduler runs it on whichever CPU is free; in softirq
 * it mostly runs on the sending CPU, after the sender's own work.
 * /sys/class/net/IF/threaded changes it per device.
 */
static bool napi_threaded = true;
module_param(napi_threaded, bool, 0644);
MODULE_PARM_DESC(napi_threaded,
		 "new devices run their RX NAPIs in threads (default Y), else in softirq");

/*
 * Before register: the pair's DMA device as parent, default rings, the
 * coalescing that matches what dmveth does (NAPI runs for every frame) and
 * threaded NAPI unless napi_threaded is off.
 */
static void dmveth_preinit(struct net_device *dev)
{
	struct dmveth_priv *priv = netdev_priv(dev);

	if (READ_ONCE(napi_threaded))
		netif_threaded_enable(dev);

	SET_NETDEV_DEV(dev, dmveth_dma_dev());
	priv->dev = dev;
	priv->rx_ring = DMVETH_RING_DEF;
	priv->tx_ring = DMVETH_RING_DEF;
	priv->coal.rx_frames = 1;
	priv->coal.tx_frames = 1;
}

static int dmveth_newlink(struct net_device *dev,
			  struct rtnl_newlink_params *params,
			  struct netlink_ext_ack *extack)
{
	struct net *peer_net = rtnl_newlink_peer_net(params);
	struct nlattr *peer_tb[IFLA_MAX + 1], **tbp;
	struct nlattr **data = params->data;
	struct nlattr **tb = params->tb;
	unsigned char name_assign_type;
	struct dmveth_priv *priv;
	struct ifinfomsg *ifmp = NULL;
	char ifname[IFNAMSIZ];
	struct net_device *peer;
	int err;

	tbp = tb;
	if (data && data[DMVETH_INFO_PEER]) {
		struct nlattr *nla_peer = data[DMVETH_INFO_PEER];

		ifmp = nla_data(nla_peer);
		err = rtnl_nla_parse_ifinfomsg(peer_tb, nla_peer, extack);
		if (err < 0)
			return err;
		err = dmveth_validate(peer_tb, NULL, extack);
		if (err < 0)
			return err;
		tbp = peer_tb;
	}

	if (ifmp && tbp[IFLA_IFNAME]) {
		nla_strscpy(ifname, tbp[IFLA_IFNAME], IFNAMSIZ);
		name_assign_type = NET_NAME_USER;
	} else {
		snprintf(ifname, IFNAMSIZ, DRV_NAME "%%d");
		name_assign_type = NET_NAME_ENUM;
	}

	peer = rtnl_create_link(peer_net, ifname, name_assign_type,
				&dmveth_link_ops, tbp, extack);
	if (IS_ERR(peer))
		return PTR_ERR(peer);
	if (!ifmp || !tbp[IFLA_ADDRESS])
		eth_hw_addr_random(peer);
	if (ifmp && dev->ifindex)
		peer->ifindex = ifmp->ifi_index;

	dmveth_preinit(peer);
	err = register_netdevice(peer);
	if (err < 0)
		goto err_free_peer;
	netif_carrier_off(peer);
	err = rtnl_configure_link(peer, ifmp, 0, NULL);
	if (err < 0)
		goto err_unregister_peer;

	if (!tb[IFLA_ADDRESS])
		eth_hw_addr_random(dev);
	if (tb[IFLA_IFNAME])
		nla_strscpy(dev->name, tb[IFLA_IFNAME], IFNAMSIZ);
	else
		snprintf(dev->name, IFNAMSIZ, DRV_NAME "%%d");
	dmveth_preinit(dev);
	err = register_netdevice(dev);
	if (err < 0)
		goto err_unregister_peer;
	netif_carrier_off(dev);

	priv = netdev_priv(dev);
	rcu_assign_pointer(priv->peer, peer);
	netdev_hold(peer, &priv->peer_tracker, GFP_KERNEL);
	priv = netdev_priv(peer);
	rcu_assign_pointer(priv->peer, dev);
	netdev_hold(dev, &priv->peer_tracker, GFP_KERNEL);
	return 0;

err_unregister_peer:
	unregister_netdevice(peer);	/* frees it: needs_free_netdev */
	return err;
err_free_peer:
	free_netdev(peer);
	return err;
}

static void dmveth_dellink(struct net_device *dev, struct list_head *head)
{
	struct dmveth_priv *priv = netdev_priv(dev);
	netdevice_tracker *peer_tracker = &priv->peer_tracker;
	struct net_device *peer;

	peer = unrcu_pointer(xchg(&priv->peer, NULL));
	if (!peer)
		return;
	unregister_netdevice_queue(dev, head);

	priv = netdev_priv(peer);
	dev = unrcu_pointer(xchg(&priv->peer, NULL));
	if (dev)
		unregister_netdevice_queue_net(dev_net(dev), peer, head);

	netdev_put(peer, peer_tracker);
	netdev_put(dev, &priv->peer_tracker);
}

static struct net *dmveth_get_link_net(const struct net_device *dev)
{
	struct dmveth_priv *priv = netdev_priv(dev);
	struct net_device *peer = rtnl_dereference(priv->peer);

	return peer ? dev_net(peer) : dev_net(dev);
}

static const struct nla_policy dmveth_policy[DMVETH_INFO_MAX + 1] = {
	[DMVETH_INFO_PEER] = { .len = sizeof(struct ifinfomsg) },
};

static struct rtnl_link_ops dmveth_link_ops = {
	.kind			= DRV_NAME,
	.priv_size		= sizeof(struct dmveth_priv),
	.setup			= dmveth_setup,
	.validate		= dmveth_validate,
	.newlink		= dmveth_newlink,
	.dellink		= dmveth_dellink,
	.policy			= dmveth_policy,
	.peer_type		= DMVETH_INFO_PEER,
	.maxtype		= DMVETH_INFO_MAX,
	.get_link_net		= dmveth_get_link_net,
	.get_num_tx_queues	= dmveth_get_num_queues,
	.get_num_rx_queues	= dmveth_get_num_queues,
};

/*
 * The "DMA engine" reads and writes through physical addresses, so the
 * DMA device must map 1:1: map a page and check the address it gets.
 */
static int dmveth_check_dma(struct device *dev)
{
	struct page *page;
	dma_addr_t addr;
	int err = 0;

	page = alloc_page(GFP_KERNEL);
	if (!page)
		return -ENOMEM;
	addr = dma_map_page(dev, page, 0, PAGE_SIZE, DMA_BIDIRECTIONAL);
	if (dma_mapping_error(dev, addr)) {
		err = -EIO;
	} else {
		if (dma_to_phys(dev, addr) != page_to_phys(page) ||
		    addr != phys_to_dma(dev, page_to_phys(page)))
			err = -EOPNOTSUPP;
		dma_unmap_page(dev, addr, PAGE_SIZE, DMA_BIDIRECTIONAL);
	}
	__free_page(page);
	if (err)
		pr_err(DRV_NAME ": DMA is translated or bounced for the pair's device (IOMMU or swiotlb=force); dmveth needs dma-direct: boot with iommu=off and without swiotlb=force\n");
	return err;
}

static int __init dmveth_init(void)
{
	int err;

	dmveth_pdev = platform_device_register_simple(DRV_NAME, PLATFORM_DEVID_NONE,
						      NULL, 0);
	if (IS_ERR(dmveth_pdev))
		return PTR_ERR(dmveth_pdev);
	err = dma_coerce_mask_and_coherent(&dmveth_pdev->dev, DMA_BIT_MASK(64));
	if (err)
		goto err_unregister_pdev;
	/*
	 * The copy engine has no segment limits.  Without these the device
	 * would claim 64 KiB segments, while exporters (udmabuf merges
	 * contiguous folios) map longer ones: DMA_API_DEBUG reports each.
	 */
	dma_set_max_seg_size(&dmveth_pdev->dev, UINT_MAX);
	dma_set_seg_boundary(&dmveth_pdev->dev, ULONG_MAX);
	err = dmveth_check_dma(&dmveth_pdev->dev);
	if (err)
		goto err_unregister_pdev;
	dmveth_dma_copy_init();
	dmveth_fault_init();
	err = rtnl_link_register(&dmveth_link_ops);
	if (err)
		goto err_fault_exit;
	return 0;

err_fault_exit:
	dmveth_fault_exit();

err_unregister_pdev:
	platform_device_unregister(dmveth_pdev);
	return err;
}

static void __exit dmveth_exit(void)
{
	rtnl_link_unregister(&dmveth_link_ops);
	dmveth_fault_exit();
	/*
	 * A devmem binding made through a pair outlives the pair and this
	 * module: it lasts until its netlink socket closes, and its dma-buf
	 * attachment points at our device without holding it.  Keep the
	 * device's memory (freed by driver core code, not ours) so that late
	 * unmap and detach stay valid; it is a few hundred bytes per unload.
	 */
	get_device(&dmveth_pdev->dev);
	kmemleak_not_leak(dmveth_pdev);
	platform_device_unregister(dmveth_pdev);
}

module_init(dmveth_init);
module_exit(dmveth_exit);

MODULE_DESCRIPTION("Software NIC pair that carries devmem TCP RX and TX");
MODULE_LICENSE("GPL");
MODULE_ALIAS_RTNL_LINK(DRV_NAME);
MODULE_IMPORT_NS("NETDEV_INTERNAL");
