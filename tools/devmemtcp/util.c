// SPDX-License-Identifier: MIT
/*
 * util.c - the tool's small helpers: errors, number and address parsing,
 * address resolution and printing, the summary pieces send and recv
 * share, the clock.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
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

int tool_fail(struct dmt_err *err, int *exitp, int exit_code,
	      const struct dmt_err *e, const char *fix)
{
	if (e != err)
		*err = *e;
	if (!err->fix[0] && fix)
		snprintf(err->fix, sizeof(err->fix), "%s", fix);
	*exitp = exit_code;
	return -1;
}

int tool_stop_exit(void)
{
	return tool_stop ? 128 + tool_stop : EXIT_SIGINT;	/* 129 HUP, 130 INT, 131 QUIT, 143 TERM */
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

int tool_common_opt(const char *cmd, int o, const char *arg, int argc,
		    char **argv, struct tool_common *c)
{
	bool recv = !strcmp(cmd, "recv");

	switch (o) {
	case 'j':
		out_init(true);
		return 1;
	case O_HELP:
		(recv ? recv_usage : send_usage)(stdout);
		exit(EXIT_OK);
	case O_DEV:
		c->dev = arg;
		return 1;
	case O_PROVIDER:
		if (dmt_provider_parse(arg, &c->provider) ||
		    (recv && c->provider == DMT_PROVIDER_FD))
			return tool_usage_err(recv ? "use udmabuf, heap, cuda or host" :
					      "use udmabuf, heap, cuda, fd or host",
					      "--provider %s: unknown provider", arg);
		return 1;
	case O_SIZE:
		if (parse_size(arg, &c->size) || c->size > SIZE_MAX)
			return tool_usage_err("give a number of bytes, e.g. 4096, 64K, 16M, 1G",
					      "--size %s: not a size", arg);
		c->size_set = true;
		return 1;
	case O_VALIDATE:
		return parse_validate(arg, argc, argv, &c->validate) ? EXIT_USAGE : 1;
	case O_MODE:
		if (dmt_mode_parse(arg, &c->mode) || (recv && c->mode == DMT_MODE_ZEROCOPY))
			return tool_usage_err(recv ? "use devmem, auto or copy (zerocopy is a send mode)" :
					      "use devmem, auto, zerocopy or copy",
					      recv ? "--mode %s: not a receive mode" : "--mode %s: unknown mode",
					      arg);
		return 1;
	}
	return 0;
}

int tool_bad_option(const char *cmd, int o, char **argv)
{
	return tool_usage_err("see `devmemtcp --help`",
			      o == ':' ? "%s: option '%s' needs a value" : "%s: bad option '%s'",
			      cmd, argv[optind - 1]);
}

int parse_validate(const char *arg, int argc, char **argv,
		   unsigned long *period)
{
	if (!arg && optind < argc && argv[optind][0] >= '0' && argv[optind][0] <= '9')
		arg = argv[optind++];
	*period = 7;
	if (arg && parse_uint(arg, 2, 255, period))
		return tool_usage_err("use a period from 2 to 255, as ncdevmem -v does",
				      "--validate %s: bad period", arg);
	return 0;
}

unsigned tool_ifindex(const char *dev, struct dmt_err *err)
{
	unsigned ifindex = if_nametoindex(dev);

	if (!ifindex)
		tool_err(err, -ENODEV, "`ip link` lists the interfaces", "--dev %s", dev);
	return ifindex;
}

int tool_getaddr(const char *host, unsigned long port, int family,
		 bool passive, struct sockaddr_storage *ss, socklen_t *sslen)
{
	struct addrinfo hints = { .ai_family = family, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0) };
	struct addrinfo *ai;
	char service[8];
	int rc;

	snprintf(service, sizeof(service), "%lu", port);
	rc = getaddrinfo(host && host[0] ? host : NULL, service, &hints, &ai);
	if (rc)
		return rc;
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*sslen = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

void addr_str(const struct sockaddr *sa, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s = (const void *)sa;

		inet_ntop(AF_INET, &s->sin_addr, a, sizeof(a));
		snprintf(buf, len, "%s:%u", a, ntohs(s->sin_port));
	} else {
		const struct sockaddr_in6 *s = (const void *)sa;

		inet_ntop(AF_INET6, &s->sin6_addr, a, sizeof(a));
		snprintf(buf, len, "[%s]:%u", a, ntohs(s->sin6_port));
	}
}

void out_command(int argc, char **argv)
{
	char cmdline[1024] = "devmemtcp";
	size_t len = strlen(cmdline);

	if (out_json())
		len += snprintf(cmdline + len, sizeof(cmdline) - len, " -j");
	for (int i = 0; i < argc && len < sizeof(cmdline); i++)
		len += snprintf(cmdline + len, sizeof(cmdline) - len, " %s", argv[i]);
	out_str("command", NULL, cmdline);
}

void out_fallback_reason(const char *reason, bool auto_mode)
{
	if (reason && *reason)
		out_str("fallback_reason", auto_mode ? " (auto: devmem not used: %s)" : " (%s)",
			reason);
	else
		out_null("fallback_reason", NULL);
}

void out_rate(uint64_t bytes, double s)
{
	out_dbl("seconds", " in %.3f s", s);
	out_dbl("gbits_per_sec", ", %.2f Gb/s", s > 0 ? bytes * 8 / s / 1e9 : 0);
	out_dbl("mbytes_per_sec", " (%.1f MB/s)\n", s > 0 ? bytes / s / 1e6 : 0);
}

void out_cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	out_dbl("cpu_user", "cpu: user %.2f s", ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6);
	out_dbl("cpu_sys", ", sys %.2f s\n", ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
}

const char *tool_signame(int sig)
{
	switch (sig) {
	case SIGHUP:
		return "SIGHUP";
	case SIGINT:
		return "SIGINT";
	case SIGQUIT:
		return "SIGQUIT";
	case SIGTERM:
		return "SIGTERM";
	}
	return "a signal";
}

void out_stopped_by(void)
{
	if (tool_stop)
		out_str("stopped_by", "stopped by %s\n", tool_signame(tool_stop));
	else
		out_null("stopped_by", NULL);
}

double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}
