// SPDX-License-Identifier: MIT
/*
 * util.c - the tool's small helpers: errors, number and address parsing,
 * the clock.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "output.h"
#include "tool.h"

void tool_err(struct dmt_err *err, int code, const char *fix,
	      const char *what, ...)
{
	va_list ap;

	memset(err, 0, sizeof(*err));
	err->code = code;
	va_start(ap, what);
	vsnprintf(err->what, sizeof(err->what), what, ap);
	va_end(ap);
	if (fix)
		snprintf(err->fix, sizeof(err->fix), "%s", fix);
}

int tool_usage_err(const char *fix, const char *what, ...)
{
	struct dmt_err err = { 0 };
	va_list ap;

	va_start(ap, what);
	vsnprintf(err.what, sizeof(err.what), what, ap);
	va_end(ap);
	if (fix)
		snprintf(err.fix, sizeof(err.fix), "%s", fix);
	out_begin();
	out_error(&err, EXIT_USAGE);
	out_end();
	return EXIT_USAGE;
}

int parse_size(const char *s, uint64_t *val)
{
	unsigned long long v;
	unsigned shift = 0;
	char *end;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno)
		return -ERANGE;
	switch (toupper((unsigned char)*end)) {
	case 'K': shift = 10; end++; break;
	case 'M': shift = 20; end++; break;
	case 'G': shift = 30; end++; break;
	case 'T': shift = 40; end++; break;
	}
	if (shift && (!strcmp(end, "iB") || !strcmp(end, "B")))
		end += strlen(end);
	if (*end)
		return -EINVAL;
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*val = (uint64_t)v << shift;
	return 0;
}

int parse_uint(const char *s, unsigned long min, unsigned long max,
	       unsigned long *val)
{
	unsigned long v;
	char *end;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*val = v;
	return 0;
}

int parse_seconds(const char *s, double *val)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || end == s || !isfinite(v) || v <= 0)
		return -EINVAL;
	*val = v;
	return 0;
}

int parse_hostport(const char *s, char *host, size_t hostlen,
		   unsigned long *port)
{
	const char *h = s, *p = NULL;
	size_t len;

	if (*s == '[') {
		const char *close = strchr(s, ']');

		if (!close || (close[1] && close[1] != ':'))
			return -EINVAL;
		h = s + 1;
		len = close - h;
		if (close[1] == ':')
			p = close + 2;
	} else {
		const char *colon = strchr(s, ':');

		if (colon && !strchr(colon + 1, ':')) {	/* one colon: host:port */
			len = colon - s;
			p = colon + 1;
		} else {				/* none, or an IPv6 address */
			len = strlen(s);
		}
	}
	if (!len || len >= hostlen)
		return -EINVAL;
	memcpy(host, h, len);
	host[len] = '\0';
	if (p && parse_uint(p, 0, 65535, port))
		return -EINVAL;
	return 0;
}

double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}
