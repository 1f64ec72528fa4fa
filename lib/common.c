// SPDX-License-Identifier: MIT
/*
 * common.c - what the RX and TX bindings (rx.c, tx.c) share: the interface
 * name check and lookup with their errors, and the fallback reason made
 * from a refused devmem attempt.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

int dmt_ifname_check(const char *ifname, const char *side, const char *fix,
		     struct dmt_err *err)
{
	if (!ifname || !ifname[0] || strlen(ifname) >= IFNAMSIZ)
		return dmt_err_set(err, -EINVAL, fix, "%s: bad interface name \"%s\"",
				   side, ifname ? ifname : "");
	return 0;
}

unsigned dmt_ifindex_of(const char *ifname, struct dmt_err *err)
{
	unsigned ifindex = if_nametoindex(ifname);

	if (!ifindex)
		dmt_err_set(err, -ENODEV,
			    "check the name with `ip link`; run in the interface's network namespace",
			    "no interface %s", ifname);
	return ifindex;
}

void dmt_reason_from(char *reason, size_t len, const struct dmt_err *e,
		     bool with_fix)
{
	bool fix = with_fix && e->fix[0];
	char ebuf[128];

	snprintf(reason, len, "%.120s: %.40s%s%.200s%s%s%.180s%s",
		 e->what, strerror_r(-e->code, ebuf, sizeof(ebuf)),
		 e->extack[0] ? ": kernel says \"" : "", e->extack,
		 e->extack[0] ? "\"" : "", fix ? " (" : "", fix ? e->fix : "",
		 fix ? ")" : "");
}
