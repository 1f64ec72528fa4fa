// SPDX-License-Identifier: MIT
/*
 * lib netlink: libdevmemtcp's netdev genl calls on lo.  Open and close the
 * socket; dev-get and the queue-get dump of lo (and ENODEV for an ifindex
 * that does not exist); a dump stopped by its callback leaves the socket
 * usable; bind-tx of a non-dma-buf fd on lo fails with the kernel's extack
 * in the error, on a missing ifindex with ENODEV; no fd leaks.  The bind-tx
 * parts are skipped when the kernel does not know bind-tx (Linux < 6.16).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "devmemtcp.h"
#include "ktap.h"

static void show_err(const struct dmt_err *err)
{
	char line[512];

	printf("# %s\n", dmt_err_str(err, line, sizeof(line)));
}

/* An ifindex no interface has. */
static unsigned missing_ifindex(void)
{
	char name[IF_NAMESIZE];
	unsigned i = 0x7ffff000;

	while (if_indextoname(i, name))
		i++;
	return i;
}

struct queues {
	unsigned ifindex;
	int count, rx, tx, wrong;
	int stop_after;		/* > 0: return -1234 after this many */
};

static int queue_cb(const struct dmt_queue_info *q, void *arg)
{
	struct queues *qs = arg;

	printf("# queue ifindex %u id %u type %s napi %u dmabuf %u%s\n", q->ifindex,
	       q->id, q->type ? "tx" : "rx", q->napi_id, q->dmabuf,
	       q->io_uring ? " io_uring" : "");
	qs->count++;
	qs->rx += q->type == 0;
	qs->tx += q->type == 1;
	qs->wrong += q->ifindex != qs->ifindex;
	if (qs->stop_after && qs->count >= qs->stop_after)
		return -1234;
	return 0;
}

static void test_dev_queue(struct ktap *t, struct dmt_nl *nl, unsigned lo,
			   unsigned none)
{
	struct dmt_dev_info info;
	struct queues qs = { .ifindex = lo };
	int ret;

	memset(&info, 0xa5, sizeof(info));
	ret = dmt_dev_get(nl, lo, &info);
	if (ret)
		show_err(dmt_nl_error(nl));
	else
		printf("# lo: xdp-features %#llx xdp-rx-metadata %#llx xsk %#llx "
		       "zc-max-segs %u\n", (unsigned long long)info.xdp_features,
		       (unsigned long long)info.xdp_rx_metadata_features,
		       (unsigned long long)info.xsk_features, info.xdp_zc_max_segs);
	check(t, !ret && info.ifindex == lo, "dev-get of lo (ifindex %u)", lo);

	ret = dmt_dev_get(nl, none, &info);
	show_err(dmt_nl_error(nl));
	check(t, ret == -ENODEV && dmt_nl_error(nl)->code == -ENODEV &&
	      dmt_nl_error(nl)->what[0], "dev-get of missing ifindex %u: ENODEV", none);

	ret = dmt_dev_get(nl, 0, &info);
	show_err(dmt_nl_error(nl));
	check(t, ret < 0 && strstr(dmt_nl_error(nl)->extack, "attribute ifindex"),
	      "dev-get of ifindex 0: the extack names the attribute ifindex");

	ret = dmt_queue_dump(nl, lo, queue_cb, &qs);
	if (ret < 0)
		show_err(dmt_nl_error(nl));
	check(t, ret >= 1 && ret == qs.count && qs.rx >= 1 && qs.tx >= 1 && !qs.wrong,
	      "queue dump of lo: %d queues, rx and tx, all on lo", ret);

	ret = dmt_queue_dump(nl, none, queue_cb, &qs);
	show_err(dmt_nl_error(nl));
	check(t, ret == -ENODEV, "queue dump of missing ifindex %u: ENODEV", none);

	/* lo has one queue of each type: stop at the first, on a dump of all */
	qs = (struct queues){ .ifindex = lo, .stop_after = 1 };
	ret = dmt_queue_dump(nl, 0, queue_cb, &qs);
	check(t, ret == -1234 && qs.count == 1,
	      "a dump stopped by its callback returns the callback's value");
	ret = dmt_dev_get(nl, lo, &info);
	if (ret)
		show_err(dmt_nl_error(nl));
	check(t, !ret && info.ifindex == lo,
	      "the socket works after a stopped dump (its rest is dropped)");
}

/* true when err says the kernel does not know bind-tx at all */
static bool no_bind_tx(const struct dmt_err *err)
{
	return err->code == -EOPNOTSUPP && !err->extack[0] &&
	       strstr(err->fix, "6.16");
}

static void test_bind_tx(struct ktap *t, struct dmt_nl *nl, unsigned lo,
			 unsigned none)
{
	const struct dmt_err *err = dmt_nl_error(nl);
	char line[512];
	uint32_t id = 0;
	int memfd, ret;

	ret = dmt_bind_tx(nl, lo, -1, &id);
	check(t, ret == -EBADF && err->code == -EBADF, "bind-tx of fd -1: EBADF");

	memfd = memfd_create("lib-netlink", MFD_CLOEXEC);
	if (memfd < 0 || ftruncate(memfd, 1 << 16) < 0) {
		check(t, false, "memfd for bind-tx: %s", strerror(errno));
		return;
	}
	ret = dmt_bind_tx(nl, lo, memfd, &id);
	dmt_err_str(err, line, sizeof(line));
	printf("# %s\n", line);
	if (no_bind_tx(err)) {
		skip(t, "bind-tx of a memfd on lo", "kernel has no bind-tx (Linux < 6.16)");
		skip(t, "bind-tx on ifindex 0", "kernel has no bind-tx (Linux < 6.16)");
		skip(t, "bind-tx on a missing ifindex", "kernel has no bind-tx (Linux < 6.16)");
		close(memfd);
		return;
	}
	check(t, ret < 0 && err->code == ret && err->what[0] &&
	      (!err->extack[0] || strstr(line, err->extack)) &&
	      (err->extack[0] || err->fix[0]) && id == 0,
	      "bind-tx of a memfd on lo fails and says why (extack \"%s\")", err->extack);

	ret = dmt_bind_tx(nl, 0, memfd, &id);
	show_err(err);
	check(t, ret < 0 && strstr(err->extack, "attribute ifindex"),
	      "bind-tx on ifindex 0: the extack names the attribute ifindex");

	ret = dmt_bind_tx(nl, none, memfd, &id);
	show_err(err);
	check(t, ret == -ENODEV && err->code == -ENODEV,
	      "bind-tx on missing ifindex %u: ENODEV", none);
	close(memfd);
}

int main(void)
{
	struct ktap t = { 0 };
	int fds_before = count_fds(), fds_after;
	unsigned lo = if_nametoindex("lo"), none = missing_ifindex();
	struct dmt_err err;
	struct dmt_nl *nl;

	nl = dmt_nl_open(&err);
	if (!nl && err.code == -ENOENT) {
		show_err(&err);
		skip(&t, "netdev netlink family", "kernel has no netdev genl family");
		return ktap_exit(&t);
	}
	if (!check(&t, nl && !err.code, "dmt_nl_open")) {
		show_err(&err);
		return ktap_exit(&t);
	}
	check(&t, dmt_nl_error(nl) && !dmt_nl_error(nl)->code, "a new socket has no error");
	test_dev_queue(&t, nl, lo, none);
	test_bind_tx(&t, nl, lo, none);
	dmt_nl_close(nl);
	dmt_nl_close(NULL);

	fds_after = count_fds();
	if (!check(&t, fds_before >= 0 && fds_after == fds_before, "no fd leaked"))
		printf("# %d fds open at start, %d at the end\n", fds_before, fds_after);
	return ktap_exit(&t);
}
