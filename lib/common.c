// SPDX-License-Identifier: MIT
/*
 * common.c - what the RX and TX bindings (rx.c, tx.c) share: the argument
 * checks and interface lookup, the netlink bind's success and refusal, and
 * the policy's choice between devmem and the fallback.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

int dmt_bindcore_init(struct dmt_bindcore *c, const char *ifname,
		      struct dmt_dmabuf *buf, const char *side,
		      const char *ifhint, struct dmt_err *err)
{
	if (!buf)
		return dmt_err_set(err, -EINVAL, NULL, "%s: no buffer", side);
	if (!ifname || !ifname[0] || strlen(ifname) >= IFNAMSIZ)
		return dmt_err_set(err, -EINVAL, ifhint, "%s: bad interface name \"%s\"",
				   side, ifname ? ifname : "");
	c->buf = buf;
	snprintf(c->ifname, sizeof(c->ifname), "%s", ifname);
	c->ifindex = if_nametoindex(ifname);
	if (!c->ifindex)
		return dmt_err_set(err, -ENODEV,
				   "check the name with `ip link`; run in the interface's network namespace",
				   "no interface %s", ifname);
	return 0;
}

struct dmt_nl *dmt_bindcore_nl(struct dmt_bindcore *c, const char *dir,
			       struct dmt_err *e)
{
	struct dmt_nl *nl;

	if (!dmt_dmabuf_is_dmabuf(c->buf)) {
		dmt_err_set(e, -EINVAL, "devmem needs a dma-buf: use the udmabuf, heap or cuda provider",
			    "devmem %s on %s with a %s buffer: host memory is not a dma-buf",
			    dir, c->ifname, dmt_provider_name(c->buf->provider));
		return NULL;
	}
	nl = dmt_nl_open(e);
	if (!nl && !e->code)
		e->code = -EIO;
	return nl;
}

void dmt_bindcore_bound(struct dmt_bindcore *c, struct dmt_nl *nl, uint32_t id)
{
	c->nl = nl;
	c->id = id;
	c->mode = DMT_MODE_DEVMEM;
}

int dmt_bindcore_refused(struct dmt_nl *nl, int ret, const char *fix,
			 struct dmt_err *e, const char *what, ...)
{
	const struct dmt_err *ne = dmt_nl_error(nl);
	char buf[sizeof(e->what)];
	va_list ap;

	va_start(ap, what);
	vsnprintf(buf, sizeof(buf), what, ap);
	va_end(ap);
	dmt_err_clear(e);
	dmt_err_set(e, ret, fix ? fix : ne && ne->fix[0] ? ne->fix : NULL, "%s", buf);
	if (ne)
		dmt_err_extack(e, ne->extack);
	dmt_nl_close(nl);
	return ret;
}

int dmt_bindcore_settle(struct dmt_bindcore *c, enum dmt_mode policy,
			int ret, const struct dmt_err *e, bool with_fix,
			struct dmt_err *err)
{
	bool fix = with_fix && e->fix[0];
	char ebuf[128];

	if (!ret)
		return 1;
	if (policy == DMT_MODE_DEVMEM) {
		dmt_err_copy(err, e);
		return ret;
	}
	snprintf(c->reason, sizeof(c->reason), "%.120s: %.40s%s%.200s%s%s%.180s%s",
		 e->what, strerror_r(-e->code, ebuf, sizeof(ebuf)),
		 e->extack[0] ? ": kernel says \"" : "", e->extack,
		 e->extack[0] ? "\"" : "", fix ? " (" : "", fix ? e->fix : "",
		 fix ? ")" : "");
	return 0;
}

void dmt_bindcore_fini(struct dmt_bindcore *c)
{
	if (c->nl)
		dmt_nl_close(c->nl);
	c->nl = NULL;
}
