// SPDX-License-Identifier: MIT
/*
 * queues IFNAME: one line per queue of IFNAME from the netdev family's
 * queue dump: "rx|tx ID" and the memory provider, "dmabuf N", "io-uring"
 * or "-".  For tests that must look fast (the YNL cli takes seconds to
 * start under TCG).  Exit 0, or 1 with the error on stderr.
 */
#include <net/if.h>
#include <stdio.h>

#include "devmemtcp.h"

static int show(const struct dmt_queue_info *q, void *arg)
{
	(void)arg;
	printf("%s %u ", q->type ? "tx" : "rx", q->id);
	if (q->dmabuf)
		printf("dmabuf %u\n", q->dmabuf);
	else
		printf("%s\n", q->io_uring ? "io-uring" : "-");
	return 0;
}

int main(int argc, char **argv)
{
	struct dmt_err err = { 0 };
	unsigned ifindex;
	struct dmt_nl *nl;
	char buf[768];
	int ret;

	if (argc != 2) {
		fprintf(stderr, "usage: queues IFNAME\n");
		return 1;
	}
	ifindex = if_nametoindex(argv[1]);
	if (!ifindex) {
		fprintf(stderr, "queues: no interface %s\n", argv[1]);
		return 1;
	}
	nl = dmt_nl_open(&err);
	if (!nl) {
		fprintf(stderr, "queues: %s\n", dmt_err_str(&err, buf, sizeof(buf)));
		return 1;
	}
	ret = dmt_queue_dump(nl, ifindex, show, NULL);
	if (ret < 0)
		fprintf(stderr, "queues: %s\n", dmt_err_str(dmt_nl_error(nl), buf, sizeof(buf)));
	dmt_nl_close(nl);
	return ret < 0;
}
