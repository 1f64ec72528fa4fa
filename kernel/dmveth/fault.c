// SPDX-License-Identifier: GPL-2.0
/*
 * dmveth: fault injection for tests, in debugfs (/sys/kernel/debug/dmveth/).
 *
 * rx_stall		while 1, every RX queue's NAPI leaves the frames in its
 *			backlog, like a stalled DMA engine: the backlogs fill
 *			and the senders' TX queues stop.  Writing 0 schedules
 *			the NAPI of every queue that holds frames, as a
 *			resumed engine would raise its interrupt.
 * fail_pool_create	the next N page pool creations fail with -ENOMEM (a
 *			failed allocation or memory provider init).
 *
 * The knobs apply to every pair.
 */
#include <linux/debugfs.h>
#include <linux/kstrtox.h>
#include <linux/mutex.h>
#include <linux/netdevice.h>

#include "dmveth.h"

static struct {
	struct dentry *dir;
	bool rx_stall;
	atomic_t fail_pool_create;
	struct mutex lock;	/* protects devs */
	struct list_head devs;
} dmveth_fault = {
	.lock = __MUTEX_INITIALIZER(dmveth_fault.lock),
	.devs = LIST_HEAD_INIT(dmveth_fault.devs),
};

bool dmveth_fault_rx_stall(void)
{
	return READ_ONCE(dmveth_fault.rx_stall);
}

bool dmveth_fault_pool_create(void)
{
	return atomic_add_unless(&dmveth_fault.fail_pool_create, -1, 0);
}

void dmveth_fault_add(struct net_device *dev)
{
	struct dmveth_priv *priv = netdev_priv(dev);

	mutex_lock(&dmveth_fault.lock);
	list_add(&priv->fault_node, &dmveth_fault.devs);
	mutex_unlock(&dmveth_fault.lock);
}

void dmveth_fault_del(struct net_device *dev)
{
	struct dmveth_priv *priv = netdev_priv(dev);

	mutex_lock(&dmveth_fault.lock);
	list_del(&priv->fault_node);
	mutex_unlock(&dmveth_fault.lock);
}

static ssize_t dmveth_rx_stall_read(struct file *file, char __user *ubuf,
				    size_t count, loff_t *ppos)
{
	char buf[3] = { dmveth_fault_rx_stall() ? '1' : '0', '\n' };

	return simple_read_from_buffer(ubuf, count, ppos, buf, 2);
}

static ssize_t dmveth_rx_stall_write(struct file *file,
				     const char __user *ubuf, size_t count,
				     loff_t *ppos)
{
	struct dmveth_priv *priv;
	bool stall;
	int err;

	err = kstrtobool_from_user(ubuf, count, &stall);
	if (err)
		return err;
	WRITE_ONCE(dmveth_fault.rx_stall, stall);
	if (!stall) {
		mutex_lock(&dmveth_fault.lock);
		list_for_each_entry(priv, &dmveth_fault.devs, fault_node)
			dmveth_kick_queues(priv->dev);
		mutex_unlock(&dmveth_fault.lock);
	}
	return count;
}

static const struct file_operations dmveth_rx_stall_fops = {
	.owner	= THIS_MODULE,
	.open	= simple_open,
	.read	= dmveth_rx_stall_read,
	.write	= dmveth_rx_stall_write,
	.llseek	= default_llseek,
};

void dmveth_fault_init(void)
{
	dmveth_fault.dir = debugfs_create_dir(DRV_NAME, NULL);
	debugfs_create_file("rx_stall", 0600, dmveth_fault.dir, NULL,
			    &dmveth_rx_stall_fops);
	debugfs_create_atomic_t("fail_pool_create", 0600, dmveth_fault.dir,
				&dmveth_fault.fail_pool_create);
}

void dmveth_fault_exit(void)
{
	debugfs_remove_recursive(dmveth_fault.dir);
}
