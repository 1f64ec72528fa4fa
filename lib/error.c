// SPDX-License-Identifier: MIT
/*
 * error.c - the error object every call fills: the step that failed, the
 * errno, the kernel's extack text and a fix, turned into one sentence by
 * dmt_err_str(); the options-struct size check; the library version.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define DMT_STR_(x) #x
#define DMT_STR(x) DMT_STR_(x)

DMT_API const char *dmt_version(void)
{
	return DMT_STR(DMT_VERSION_MAJOR) "." DMT_STR(DMT_VERSION_MINOR);
}

void dmt_err_clear(struct dmt_err *err)
{
	if (err)
		memset(err, 0, sizeof(*err));
}

int dmt_err_set(struct dmt_err *err, int code, const char *fix,
		const char *what, ...)
{
	va_list ap;

	if (!err)
		return code;
	err->code = code;
	va_start(ap, what);
	vsnprintf(err->what, sizeof(err->what), what, ap);
	va_end(ap);
	snprintf(err->fix, sizeof(err->fix), "%s", fix ? fix : "");
	return code;
}

void dmt_err_extack(struct dmt_err *err, const char *msg)
{
	if (err)
		snprintf(err->extack, sizeof(err->extack), "%s", msg ? msg : "");
}

int dmt_err_copy(struct dmt_err *dst, const struct dmt_err *src)
{
	if (!src) {
		dmt_err_clear(dst);
		return 0;
	}
	if (dst && dst != src)
		*dst = *src;
	return src->code;
}

int dmt_opts_check(const void *opts, size_t known_sz, struct dmt_err *err,
		   const char *name)
{
	const unsigned char *p = opts;
	size_t sz;

	if (!opts)
		return 0;
	sz = *(const size_t *)opts;
	if (sz < sizeof(size_t))
		return dmt_err_set(err, -EINVAL,
				   "declare it with DMT_OPTS(), which sets .sz",
				   "struct %s: .sz is %zu, too small", name, sz);
	for (size_t i = known_sz; i < sz; i++)
		if (p[i])
			return dmt_err_set(err, -EINVAL,
					   "leave fields this library version does not know zero",
					   "struct %s: non-zero byte at %zu, past the %zu bytes "
					   "libdevmemtcp %s knows", name, i, known_sz,
					   dmt_version());
	return 0;
}

DMT_API const char *dmt_err_str(const struct dmt_err *err, char *buf,
				size_t len)
{
	char ebuf[128];
	const char *why;
	int n;

	if (!buf || !len)
		return buf;
	if (!err || !err->code) {
		snprintf(buf, len, "no error");
		return buf;
	}
	/* the GNU strerror_r: thread-safe, returns the message */
	why = strerror_r(err->code < 0 ? -err->code : err->code, ebuf,
			 sizeof(ebuf));
	n = snprintf(buf, len, "%s%s%s", err->what,
		     err->what[0] ? ": " : "", why);
	if (err->extack[0] && n >= 0 && (size_t)n < len)
		n += snprintf(buf + n, len - n, ": kernel says \"%s\"",
			      err->extack);
	if (err->fix[0] && n >= 0 && (size_t)n < len)
		snprintf(buf + n, len - n, " (%s)", err->fix);
	return buf;
}
