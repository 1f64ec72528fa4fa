// SPDX-License-Identifier: MIT
/*
 * rx-page-size -i IFNAME [-q QUEUE]: bind-rx's rx-page-size (Linux 7.3)
 * through dmt_rxbind_opts.rx_page_size on a devmem NIC (the VM's dmveth),
 * after the NIC setup of dmt_nic_prepare_rx:
 * - 4096 (the page size): the attribute is sent and accepted, the queue is
 *   bound (queue-get);
 * - 12288: refused by the kernel, "rx-page-size must be a power of 2"
 *   surfaced with a fix;
 * - 16384 on a udmabuf of 4 KiB pages: refused, the kernel's "not aligned
 *   to niov size" surfaced with the fix (huge pages); under the auto policy
 *   the same refusal is the copy fallback's reason;
 * - 16384 on a udmabuf of 2 MiB huge pages: bound where the driver has
 *   QCFG_RX_PAGE_SIZE; where it refuses ("device does not support:
 *   rx_page_size") the refusal carries the kernel's words and the success
 *   path is SKIPped with them.
 */
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devmemtcp.h"
#include "ktap.h"

static void show_err(const char *what, const struct dmt_err *err)
{
	char line[1024];

	printf("# %s: %s\n", what, dmt_err_str(err, line, sizeof(line)));
}

static int bound_cb(const struct dmt_queue_info *q, void *arg)
{
	uint32_t *want = arg;	/* [0] queue, [1] id, [2] out: found */

	if (q->type == 0 && q->id == want[0])
		want[2] = q->dmabuf && q->dmabuf == want[1];
	return 0;
}

static bool queue_bound(const char *ifname, unsigned queue, uint32_t id)
{
	uint32_t want[3] = { queue, id, 0 };
	struct dmt_err err;
	struct dmt_nl *nl = dmt_nl_open(&err);

	if (nl)
		dmt_queue_dump(nl, if_nametoindex(ifname), bound_cb, want);
	dmt_nl_close(nl);
	return want[2];
}

/* bind with rx_page_size under policy; returns the binding or NULL, err. */
static struct dmt_rxbind *try_bind(const char *ifname, unsigned queue, struct dmt_dmabuf *buf,
				   uint32_t size, enum dmt_mode policy, struct dmt_err *err)
{
	DMT_OPTS(dmt_rxbind_opts, po, .policy = policy, .queue_start = queue,
		 .rx_page_size = size);

	return dmt_rxbind_new(ifname, buf, &po, err);
}

int main(int argc, char **argv)
{
	DMT_OPTS(dmt_dmabuf_opts, small, .provider = DMT_PROVIDER_UDMABUF, .size = 4 << 20);
	DMT_OPTS(dmt_dmabuf_opts, huge, .provider = DMT_PROVIDER_UDMABUF, .size = 4 << 20,
		 .hugepages = true);
	const char *ifname = NULL;
	unsigned queue = 1;
	struct ktap t = { 0 };
	struct dmt_dmabuf *buf = NULL, *hbuf = NULL;
	struct dmt_rxbind *b;
	struct dmt_nic *nic;
	struct dmt_err err;
	int c;

	while ((c = getopt(argc, argv, "i:q:")) != -1) {
		switch (c) {
		case 'i': ifname = optarg; break;
		case 'q': queue = atoi(optarg); break;
		default: ifname = NULL; optind = argc; break;
		}
	}
	if (!ifname) {
		fprintf(stderr, "usage: rx-page-size -i IFNAME [-q QUEUE]\n");
		return 2;
	}
	nic = dmt_nic_open(ifname, &err);
	if (!check(&t, nic && dmt_nic_prepare_rx(nic, queue, 1) == 0,
		   "%s prepared for devmem RX on queue %u", ifname, queue)) {
		show_err("NIC", nic ? dmt_nic_error(nic) : &err);
		dmt_nic_close(nic);
		return ktap_exit(&t);
	}
	buf = dmt_dmabuf_new(&small, &err);
	if (!check(&t, buf, "udmabuf of 4 MiB"))
		goto out;

	b = try_bind(ifname, queue, buf, 4096, DMT_MODE_DEVMEM, &err);
	if (!b)
		show_err("rx-page-size 4096", &err);
	check(&t, b && queue_bound(ifname, queue, dmt_rxbind_id(b)),
	      "rx-page-size 4096 (the page size): sent, accepted, queue %u bound", queue);
	dmt_rxbind_free(b);

	b = try_bind(ifname, queue, buf, 12288, DMT_MODE_DEVMEM, &err);
	show_err("rx-page-size 12288", &err);
	check(&t, !b && err.code == -EINVAL && strstr(err.extack, "power of 2") &&
	      strstr(err.fix, "power of two") && strstr(err.what, "rx-page-size 12288"),
	      "rx-page-size 12288: refused, the kernel's \"%s\" and a fix surfaced", err.extack);
	dmt_rxbind_free(b);

	b = try_bind(ifname, queue, buf, 16384, DMT_MODE_DEVMEM, &err);
	show_err("rx-page-size 16384, 4 KiB pages", &err);
	check(&t, !b && err.code == -EINVAL && strstr(err.extack, "not aligned") &&
	      strstr(err.fix, "huge pages"),
	      "rx-page-size 16384 on 4 KiB pages: refused, the kernel's words and the huge-page "
	      "fix surfaced");
	dmt_rxbind_free(b);

	b = try_bind(ifname, queue, buf, 16384, DMT_MODE_AUTO, &err);
	if (b)
		printf("# auto: %s: %s\n", dmt_mode_name(dmt_rxbind_mode(b)),
		       dmt_rxbind_fallback_reason(b));
	check(&t, b && dmt_rxbind_mode(b) == DMT_MODE_COPY &&
	      strstr(dmt_rxbind_fallback_reason(b), "not aligned"),
	      "auto policy: the refusal is the copy fallback's reason");
	dmt_rxbind_free(b);

	hbuf = dmt_dmabuf_new(&huge, &err);
	if (!hbuf) {
		char line[512];

		dmt_err_str(&err, line, sizeof(line));
		skip(&t, "rx-page-size 16384 on huge pages", line);
		goto out;
	}
	b = try_bind(ifname, queue, hbuf, 16384, DMT_MODE_DEVMEM, &err);
	if (b) {
		check(&t, queue_bound(ifname, queue, dmt_rxbind_id(b)),
		      "rx-page-size 16384 on huge pages: queue %u bound", queue);
		dmt_rxbind_free(b);
	} else if (err.code == -EOPNOTSUPP && strstr(err.extack, "rx_page_size")) {
		char why[512];

		show_err("rx-page-size 16384, huge pages", &err);
		check(&t, strstr(err.fix, "QCFG_RX_PAGE_SIZE") != NULL,
		      "rx-page-size 16384 on huge pages: the driver's refusal carries the "
		      "kernel's \"%s\" and a fix", err.extack);
		snprintf(why, sizeof(why), "%s refuses rx-page-size (kernel: \"%s\"): its driver "
			 "lacks QCFG_RX_PAGE_SIZE", ifname, err.extack);
		skip(&t, "rx-page-size 16384 on huge pages: bound", why);
	} else {
		show_err("rx-page-size 16384, huge pages", &err);
		check(&t, false, "rx-page-size 16384 on huge pages: bound, or refused by the driver");
	}
out:
	dmt_dmabuf_free(hbuf);
	dmt_dmabuf_free(buf);
	check(&t, nic && dmt_nic_restore(nic) == 0, "NIC restored");
	dmt_nic_close(nic);
	return ktap_exit(&t);
}
