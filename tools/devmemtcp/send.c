// SPDX-License-Identifier: MIT
/*
 * send.c - `devmemtcp send HOST[:PORT]`: a TCP stream from a dma-buf.
 *
 * Order matters: the dma-buf, then the TX binding on the interface, then
 * the socket with its send engine attached before connect (the engine sets
 * SO_BINDTODEVICE and SO_ZEROCOPY), then bind and connect.  The loop
 * reserves chunk-sized regions of the buffer (never bytes still in
 * flight), fills them with the ncdevmem pattern at their stream position
 * when validating, and queues them; at the end every queued byte is sent,
 * every completion read, and the peer's close awaited so that the receiver
 * has had everything.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <ifaddrs.h>
#include <inttypes.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "output.h"
#include "tool.h"

#define DEFAULT_PORT 5201
#define DEFAULT_SIZE (16ULL << 20)
#define DEFAULT_CHUNK (64ULL << 10)
#define DEFAULT_TIME 10.0
#define BATCH 64		/* regions queued per dmt_tx_send */
#define STALL_S 10.0		/* no bytes sent and no completion: give up */
#define DRAIN_MS 10000		/* completions after the last send */
#define CLOSE_MS 10000		/* the peer's close after our FIN */
#define STOP_DRAIN_MS 2000	/* completions after a signal or an error */

struct send_cfg {
	const char *target;	/* HOST[:PORT] as given */
	char host[256];
	unsigned long port;
	const char *bind;	/* ADDR[:PORT] as given, or NULL */
	char bind_host[256];
	unsigned long bind_port;
	struct tool_common com;	/* --dev --provider --size --validate --mode */
	char route_dev[IF_NAMESIZE];
	long fd;		/* --fd, -1 if not given */
	const char *heap;
	unsigned long cuda_device;
	bool hugepages;
	uint64_t bytes;		/* 0: no byte limit */
	double time;		/* 0: no time limit */
	uint64_t chunk;
	int argc;
	char **argv;
};

struct send_run {
	struct dmt_dmabuf *buf;
	struct dmt_txbind *bind;
	struct dmt_tx *tx;
	int fd;
	struct dmt_err err;
	int exit;		/* EXIT_OK unless err is set */
	bool started;		/* connected: there are results to print */
	double t0, t1;
	uint64_t queued;	/* stream position: bytes handed to dmt_tx_send */
	bool peer_closed;
	char local[INET6_ADDRSTRLEN + 8];
	char remote[INET6_ADDRSTRLEN + 8];
};

void send_usage(FILE *f)
{
	fprintf(f,
		"devmemtcp [-j] send HOST[:PORT] [OPTIONS]   (port %d by default)\n"
		"  --dev IFNAME        interface to send on (required for --mode devmem, auto)\n"
		"  --mode MODE         devmem|auto|zerocopy|copy (auto: devmem, else the\n"
		"                      fallback, and the reason is printed)\n"
		"  --provider NAME     udmabuf|heap|cuda|fd|host (udmabuf)\n"
		"  --fd N              --provider fd: the dma-buf fd to send from\n"
		"  --heap NAME         --provider heap: /dev/dma_heap/NAME (system)\n"
		"  --cuda-device N     --provider cuda: device ordinal (0)\n"
		"  --hugepages         --provider udmabuf: 2 MiB pages\n"
		"  --size BYTES        buffer size (16M); suffixes K M G T are binary\n"
		"  --chunk BYTES       bytes per region = per iovec (64K), <= --size\n"
		"  --bytes BYTES       stop after this many bytes\n"
		"  --time SECONDS      stop after this long (10 when no --bytes)\n"
		"  --validate [N]      send the pattern `ncdevmem -l -v N` checks (N=7)\n"
		"  --bind ADDR[:PORT]  local source address and port (ncdevmem -c)\n",
		DEFAULT_PORT);
}

static int parse(int argc, char **argv, struct send_cfg *c)
{
	enum { O_FD = O_OWN, O_HEAP, O_CUDA, O_HUGE, O_BYTES, O_TIME, O_CHUNK,
	       O_BIND };
	static const struct option opts[] = {
		TOOL_COMMON_OPTIONS,
		{ "fd", required_argument, NULL, O_FD },
		{ "heap", required_argument, NULL, O_HEAP },
		{ "cuda-device", required_argument, NULL, O_CUDA },
		{ "hugepages", no_argument, NULL, O_HUGE },
		{ "bytes", required_argument, NULL, O_BYTES },
		{ "time", required_argument, NULL, O_TIME },
		{ "chunk", required_argument, NULL, O_CHUNK },
		{ "bind", required_argument, NULL, O_BIND },
		{ 0 }
	};
	const char *size_fix = "give a number of bytes, e.g. 4096, 64K, 16M, 1G";
	bool bytes_set = false;
	int o, rc;

	*c = (struct send_cfg){ .com = TOOL_COMMON_DEFAULTS(DEFAULT_SIZE),
				.port = DEFAULT_PORT, .fd = -1, .chunk = DEFAULT_CHUNK,
				.argc = argc, .argv = argv };
	optind = 0;	/* glibc: rescan from argv[1] */
	opterr = 0;
	while ((o = getopt_long(argc, argv, ":j", opts, NULL)) != -1) {
		unsigned long v;
		const char *arg = optarg;

		rc = tool_common_opt("send", o, arg, argc, argv, &c->com);
		if (rc > 1)
			return rc;
		if (rc)
			continue;
		switch (o) {
		case O_FD:
			if (parse_uint(arg, 0, 1 << 30, &v))
				return tool_usage_err("give the number of an open dma-buf fd",
						      "--fd %s: not an fd number", arg);
			c->fd = v;
			break;
		case O_HEAP:
			c->heap = arg;
			break;
		case O_CUDA:
			if (parse_uint(arg, 0, 1024, &c->cuda_device))
				return tool_usage_err("give a device ordinal, e.g. 0",
						      "--cuda-device %s: not a number", arg);
			break;
		case O_HUGE:
			c->hugepages = true;
			break;
		case O_CHUNK:
			if (parse_size(arg, &c->chunk) || c->chunk > SIZE_MAX)
				return tool_usage_err(size_fix, "--chunk %s: not a size", arg);
			break;
		case O_BYTES:
			if (parse_size(arg, &c->bytes))
				return tool_usage_err(size_fix, "--bytes %s: not a size", arg);
			bytes_set = true;
			break;
		case O_TIME:
			if (parse_seconds(arg, &c->time))
				return tool_usage_err("give seconds > 0, e.g. 10 or 0.5",
						      "--time %s: not a duration", arg);
			break;
		case O_BIND:
			c->bind = arg;
			if (parse_hostport(arg, c->bind_host, sizeof(c->bind_host), &c->bind_port))
				return tool_usage_err("use ADDR, ADDR:PORT or [IPV6]:PORT",
						      "--bind %s: bad address", arg);
			break;
		default:
			return tool_bad_option("send", o, argv);
		}
	}
	if (optind != argc - 1)
		return tool_usage_err("devmemtcp send HOST[:PORT] --dev IFNAME ...",
				      optind >= argc ? "send: no HOST given" : "send: more than one HOST given");
	c->target = argv[optind];
	if (parse_hostport(c->target, c->host, sizeof(c->host), &c->port))
		return tool_usage_err("use HOST, HOST:PORT or [IPV6]:PORT",
				      "send: bad destination '%s'", c->target);
	if ((c->com.provider == DMT_PROVIDER_FD) != (c->fd >= 0))
		return tool_usage_err("use --provider fd --fd N together",
				      c->fd >= 0 ? "--fd without --provider fd" : "--provider fd without --fd N");
	if (!c->com.dev && (c->com.mode == DMT_MODE_DEVMEM || c->com.mode == DMT_MODE_AUTO))
		return tool_usage_err("`ip route get HOST` names the interface: pass it as --dev IFNAME",
				      "--mode %s needs --dev IFNAME", dmt_mode_name(c->com.mode));
	if (c->com.provider == DMT_PROVIDER_FD && !c->com.size_set)
		c->com.size = 0;
	if (!bytes_set && !c->time)
		c->time = DEFAULT_TIME;
	return 0;
}

/* The checks on lengths, failing with EXIT_RANGE. */
static int check_lengths(const struct send_cfg *c, struct send_run *r)
{
	if (c->com.size_set && !c->com.size)
		tool_err(&r->err, -EINVAL, "give a buffer size, e.g. --size 16M",
			 "--size 0: the buffer would be empty");
	else if (!c->chunk)
		tool_err(&r->err, -EINVAL, "give a chunk size, e.g. --chunk 64K",
			 "--chunk 0: zero-length sends");
	else if (c->com.size && c->chunk > c->com.size)
		tool_err(&r->err, -EINVAL, "use --chunk no larger than --size, or a larger --size",
			 "--chunk %llu is larger than the buffer (--size %llu)",
			 (unsigned long long)c->chunk, (unsigned long long)c->com.size);
	else if (c->bytes == 0 && !c->time)
		tool_err(&r->err, -EINVAL, "give --bytes > 0 or --time",
			 "--bytes 0: nothing to send");
	else
		return 0;
	r->exit = EXIT_RANGE;
	return -1;
}

/* Keep the library's error; add the tool's fix when it has none. */
static int fail(struct send_run *r, int exit_code, const struct dmt_err *e,
		const char *fix)
{
	return tool_fail(&r->err, &r->exit, exit_code, e, fix);
}

static int resolve(const char *host, unsigned long port, int family, bool passive,
		   struct sockaddr_storage *ss, socklen_t *sslen, struct dmt_err *err)
{
	int rc = tool_getaddr(host, port, family, passive, ss, sslen);

	if (rc == EAI_SYSTEM)
		tool_err(err, -errno, "check the name and the resolver", "resolve %s", host);
	else if (rc)
		tool_err(err, 0, "give an IPv4 or IPv6 address or a name that resolves",
			 "resolve %s%s: %s", host,
			 family == AF_INET ? " (IPv4, as --bind)" : family == AF_INET6 ? " (IPv6, as --bind)" : "",
			 gai_strerror(rc));
	return rc ? -1 : 0;
}

/* Set up everything up to a connected socket; -1 with r->err on failure. */
/*
 * No --dev (zerocopy, copy): the interface that holds the source address
 * the kernel picks for dst (a connected UDP socket sends nothing).
 */
static int route_dev(struct send_cfg *c, struct send_run *r,
		     const struct sockaddr_storage *dst, socklen_t dstlen,
		     const struct sockaddr_storage *src, socklen_t srclen,
		     struct dmt_err *e)
{
	struct sockaddr_storage me;
	socklen_t melen = sizeof(me);
	struct ifaddrs *ifa, *i;
	int fd;

	(void)r;
	fd = socket(dst->ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || (src && bind(fd, (const struct sockaddr *)src, srclen)) ||
	    connect(fd, (const struct sockaddr *)dst, dstlen) ||
	    getsockname(fd, (struct sockaddr *)&me, &melen)) {
		tool_err(e, -errno, "name it with --dev IFNAME", "find the interface towards %s", c->host);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	if (getifaddrs(&ifa)) {
		tool_err(e, -errno, "name it with --dev IFNAME", "getifaddrs");
		return -1;
	}
	for (i = ifa; i; i = i->ifa_next) {
		const struct sockaddr *a = i->ifa_addr;

		if (!a || a->sa_family != me.ss_family)
			continue;
		if ((a->sa_family == AF_INET &&
		     !memcmp(&((const struct sockaddr_in *)a)->sin_addr,
			     &((struct sockaddr_in *)&me)->sin_addr, sizeof(struct in_addr))) ||
		    (a->sa_family == AF_INET6 &&
		     !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
			     &((struct sockaddr_in6 *)&me)->sin6_addr, sizeof(struct in6_addr)))) {
			snprintf(c->route_dev, sizeof(c->route_dev), "%s", i->ifa_name);
			break;
		}
	}
	freeifaddrs(ifa);
	if (!c->route_dev[0]) {
		tool_err(e, -ENODEV, "name it with --dev IFNAME", "find the interface towards %s", c->host);
		return -1;
	}
	c->com.dev = c->route_dev;
	return 0;
}

static int setup(struct send_cfg *c, struct send_run *r)
{
	DMT_OPTS(dmt_dmabuf_opts, bo, .provider = c->com.provider, .size = c->com.size,
		 .hugepages = c->hugepages, .heap = c->heap,
		 .cuda_device = c->cuda_device, .fd = c->fd);
	DMT_OPTS(dmt_txbind_opts, to, .policy = c->com.mode);
	struct sockaddr_storage dst, src;
	socklen_t dstlen, srclen = 0;
	struct dmt_err e = { 0 };
	int one = 1;

	if (c->com.dev && !tool_ifindex(c->com.dev, &e))
		return fail(r, EXIT_NODEV, &e, NULL);
	if (c->bind && resolve(c->bind_host, c->bind_port, AF_UNSPEC, true, &src, &srclen, &e))
		return fail(r, EXIT_USAGE, &e, NULL);
	if (resolve(c->host, c->port, c->bind ? src.ss_family : AF_UNSPEC, false, &dst, &dstlen, &e))
		return fail(r, EXIT_PEER, &e, NULL);
	addr_str((struct sockaddr *)&dst, r->remote, sizeof(r->remote));

	r->buf = dmt_dmabuf_new(&bo, &e);
	if (!r->buf)
		return fail(r, e.code == -ERANGE ? EXIT_RANGE : EXIT_BUFFER, &e,
			    "check the provider: /dev/udmabuf (modprobe udmabuf), /dev/dma_heap, libcuda, or that --fd is a dma-buf");

	if (c->chunk > dmt_dmabuf_size(r->buf)) {
		tool_err(&e, -EINVAL, "use --chunk no larger than the buffer",
			 "--chunk %llu is larger than the %zu-byte buffer",
			 (unsigned long long)c->chunk, dmt_dmabuf_size(r->buf));
		return fail(r, EXIT_RANGE, &e, NULL);
	}
	if (!c->com.dev && route_dev(c, r, &dst, dstlen, c->bind ? &src : NULL, srclen, &e))
		return fail(r, EXIT_NODEV, &e, NULL);

	r->bind = dmt_txbind_new(c->com.dev, r->buf, &to, &e);
	if (!r->bind)
		return fail(r, e.code == -ENODEV ? EXIT_NODEV : EXIT_NODEVMEM, &e,
			    "use a NIC whose driver supports devmem TX, or --mode auto");
	if (c->com.mode == DMT_MODE_AUTO && dmt_txbind_mode(r->bind) != DMT_MODE_DEVMEM && !out_json())
		fprintf(stderr, "devmemtcp: devmem not used, sending with %s: %s\n",
			dmt_mode_name(dmt_txbind_mode(r->bind)),
			dmt_txbind_fallback_reason(r->bind));

	r->fd = socket(dst.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (r->fd < 0) {
		tool_err(&e, -errno, NULL, "socket");
		return fail(r, EXIT_RUNTIME, &e, NULL);
	}
	r->tx = dmt_tx_new(r->fd, r->bind, NULL, &e);
	if (!r->tx)
		return fail(r, e.code == -ERANGE ? EXIT_RANGE : EXIT_RUNTIME, &e, NULL);
	if (c->bind) {
		setsockopt(r->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(r->fd, (struct sockaddr *)&src, srclen)) {
			tool_err(&e, -errno, "use an address of this host and a free port",
				 "bind to %s", c->bind);
			return fail(r, EXIT_RUNTIME, &e, NULL);
		}
	}
	if (connect(r->fd, (struct sockaddr *)&dst, dstlen)) {
		int err = errno;

		if (err == EINTR && tool_stop) {
			tool_err(&e, -EINTR, NULL, "connect to %s", r->remote);
			return fail(r, tool_stop_exit(), &e, NULL);
		}
		tool_err(&e, -err, "start the receiver first, e.g. ncdevmem -l; check HOST, PORT and the route",
			 "connect to %s", r->remote);
		return fail(r, EXIT_PEER, &e, NULL);
	}
	fcntl(r->fd, F_SETFL, fcntl(r->fd, F_GETFL) | O_NONBLOCK);
	srclen = sizeof(src);
	if (!getsockname(r->fd, (struct sockaddr *)&src, &srclen))
		addr_str((struct sockaddr *)&src, r->local, sizeof(r->local));
	return 0;
}

/* An error of the send engine: the peer going away has its own exit code. */
static int tx_fail(struct send_run *r, int code)
{
	const struct dmt_err *e = dmt_tx_error(r->tx);
	struct dmt_err copy;

	if (!e || !e->code) {
		tool_err(&copy, code, NULL, "send to %s", r->remote);
		e = &copy;
	}
	if (code == -EPIPE || code == -ECONNRESET || e->code == -EPIPE || e->code == -ECONNRESET)
		return fail(r, EXIT_CLOSED, e,
			    "the receiver closed the connection before the end: check its output, and that it expects this many bytes");
	return fail(r, EXIT_RUNTIME, e, NULL);
}

/* Wait up to ms for the socket: POLLOUT when bytes are queued, POLLERR. */
static void wait_fd(struct send_run *r, int ms)
{
	struct pollfd p = { .fd = r->fd, .events = dmt_tx_poll_events(r->tx) };

	poll(&p, 1, ms);
}

struct progress {
	uint64_t mark;		/* bytes + completions at the last change */
	double since;
	double next_print;
	bool tty;
};

/* Progress line once a second; -1 with r->err when nothing moved for STALL_S. */
static int progress(struct send_run *r, struct progress *p, double t)
{
	struct dmt_tx_stats st;
	struct dmt_err e;

	dmt_tx_get_stats(r->tx, &st);
	if (st.bytes + st.completions != p->mark) {
		p->mark = st.bytes + st.completions;
		p->since = t;
	} else if (t - p->since > STALL_S) {
		tool_err(&e, -ETIMEDOUT, "check the receiver is reading, and the device's TX completions",
			 "no progress for %.0f s (%llu bytes sent, %llu of %llu sends completed, %zu bytes queued)",
			 STALL_S, (unsigned long long)st.bytes, (unsigned long long)st.completions,
			 (unsigned long long)st.sends, dmt_tx_pending(r->tx));
		return fail(r, EXIT_RUNTIME, &e, NULL);
	}
	if (p->tty && t >= p->next_print) {
		double s = t - r->t0;

		fprintf(stderr, "\r%7.1f s %12.3f GB %9.2f Gb/s %10llu sends %10llu completions",
			s, st.bytes / 1e9, s > 0 ? st.bytes * 8 / s / 1e9 : 0.0,
			(unsigned long long)st.sends, (unsigned long long)st.completions);
		p->next_print = t + 1;
	}
	return 0;
}

/* Queue up to BATCH regions; bytes queued, or -1 with r->err. */
static ssize_t queue_batch(const struct send_cfg *c, struct send_run *r)
{
	struct dmt_region reg[BATCH];
	uint64_t pos = r->queued;
	unsigned nr = 0;
	ssize_t n;
	int rc;

	while (nr < BATCH && (!c->bytes || pos < c->bytes)) {
		size_t len = c->chunk;

		if (c->bytes && c->bytes - pos < len)
			len = c->bytes - pos;
		rc = dmt_tx_alloc(r->tx, len, &reg[nr]);
		if (rc == -EAGAIN)
			break;
		if (rc < 0)
			return fail(r, rc == -EINVAL || rc == -ERANGE ? EXIT_RANGE : EXIT_RUNTIME,
				    dmt_tx_error(r->tx), NULL);
		if (c->com.validate) {
			rc = dmt_dmabuf_fill(r->buf, reg[nr].off, reg[nr].len, pos, c->com.validate);
			if (rc < 0) {
				struct dmt_err e;

				tool_err(&e, rc, NULL, "fill [%zu, +%zu) of the buffer with the pattern",
					 reg[nr].off, reg[nr].len);
				dmt_tx_unalloc(r->tx, &reg[nr]);
				return fail(r, rc == -ERANGE ? EXIT_RANGE : EXIT_RUNTIME, &e, NULL);
			}
		}
		pos += reg[nr++].len;
	}
	n = nr ? dmt_tx_send(r->tx, reg, nr) : dmt_tx_flush(r->tx);
	if (n < 0)
		return tx_fail(r, n);
	r->queued = pos;
	return n;
}

static int run_loop(const struct send_cfg *c, struct send_run *r)
{
	struct progress p = { .since = r->t0, .next_print = r->t0 + 1, .tty = isatty(2) };
	int rc = 0;

	for (;;) {
		double t = now_s();
		ssize_t n;

		if (tool_stop || (c->time && t - r->t0 >= c->time) ||
		    (c->bytes && r->queued >= c->bytes))
			break;
		n = queue_batch(c, r);
		if (n < 0) {
			rc = -1;
			break;
		}
		if (n == 0)
			wait_fd(r, 100);
		n = dmt_tx_poll(r->tx, 0);
		if (n < 0) {
			rc = tx_fail(r, n);
			break;
		}
		if ((rc = progress(r, &p, t)) < 0)
			break;
	}
	/* the rest of the queue */
	while (!rc && !tool_stop && dmt_tx_pending(r->tx)) {
		ssize_t n = dmt_tx_flush(r->tx);

		if (n < 0) {
			rc = tx_fail(r, n);
			break;
		}
		if (n == 0)
			wait_fd(r, 100);
		if ((n = dmt_tx_poll(r->tx, 0)) < 0)
			rc = tx_fail(r, n);
		else
			rc = progress(r, &p, now_s());
	}
	if (p.tty)
		fputs("\r\033[K", stderr);
	return rc;
}

/* After the last byte: completions, our FIN, the peer's close. */
static int finish(struct send_run *r)
{
	struct pollfd pfd = { .fd = r->fd, .events = POLLIN };
	double deadline;
	struct dmt_err e;
	char sink[4096];
	int rc;

	rc = dmt_tx_drain(r->tx, DRAIN_MS);
	r->t1 = now_s();
	if (rc < 0 && !(rc == -EINTR && tool_stop))
		return tx_fail(r, rc);
	if (tool_stop)
		return 0;
	shutdown(r->fd, SHUT_WR);
	deadline = now_s() + CLOSE_MS / 1000.0;
	while (!tool_stop) {
		int ms = (deadline - now_s()) * 1000;
		ssize_t n;

		if (ms <= 0) {
			tool_err(&e, -ETIMEDOUT, "the receiver should close when the stream ends (ncdevmem does)",
				 "%s did not close the connection within %d s of the end of the stream",
				 r->remote, CLOSE_MS / 1000);
			return fail(r, EXIT_RUNTIME, &e, NULL);
		}
		if (poll(&pfd, 1, ms) <= 0)
			continue;
		n = read(r->fd, sink, sizeof(sink));
		if (n == 0) {
			r->peer_closed = true;
			return 0;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			tool_err(&e, -errno, NULL, "wait for %s to close", r->remote);
			return fail(r, errno == ECONNRESET || errno == EPIPE ? EXIT_CLOSED : EXIT_RUNTIME, &e,
				    "the receiver reset the connection: it may not have read everything; check its output");
		}
	}
	return 0;
}

static void cleanup(struct send_run *r)
{
	dmt_tx_free(r->tx);
	if (r->fd >= 0)
		close(r->fd);
	dmt_txbind_free(r->bind);
	dmt_dmabuf_free(r->buf);
}

static void print_options(const struct send_cfg *c)
{
	out_command(c->argc, c->argv);
	out_obj_open("options", NULL);
	out_str("host", "send to %s", c->host);
	out_u64("port", " port %" PRIu64, c->port);
	out_str("bind", c->bind ? " from %s" : NULL, c->bind);
	out_str("dev", c->com.dev ? " dev %s" : NULL, c->com.dev);
	out_str("mode", ", mode %s", dmt_mode_name(c->com.mode));
	out_str("provider", "\nbuffer: %s", dmt_provider_name(c->com.provider));
	if (c->com.provider == DMT_PROVIDER_FD)
		out_int("fd", " fd %lld", c->fd);
	if (c->com.provider == DMT_PROVIDER_HEAP)
		out_str("heap", " heap %s", c->heap ? c->heap : "system");
	if (c->com.provider == DMT_PROVIDER_CUDA)
		out_u64("cuda_device", " device %" PRIu64, c->cuda_device);
	if (c->com.provider == DMT_PROVIDER_UDMABUF)
		out_bool("hugepages", c->hugepages ? " hugepages" : NULL, c->hugepages);
	out_u64("size", " size %" PRIu64, c->com.size);
	out_u64("chunk", ", chunk %" PRIu64, c->chunk);
	if (c->bytes)
		out_u64("bytes", ", bytes %" PRIu64, c->bytes);
	else
		out_null("bytes", NULL);
	if (c->time)
		out_dbl("time", ", time %g s", c->time);
	else
		out_null("time", NULL);
	if (c->com.validate)
		out_u64("validate", ", validate %" PRIu64, c->com.validate);
	else
		out_null("validate", NULL);
	out_obj_close();
	out_text("\n");
}

static void print_results(const struct send_cfg *c, const struct send_run *r)
{
	enum dmt_mode mode = dmt_tx_mode(r->tx);
	const char *reason = dmt_txbind_fallback_reason(r->bind);
	double s = (r->t1 ? r->t1 : now_s()) - r->t0;
	struct dmt_tx_stats st;

	dmt_tx_get_stats(r->tx, &st);

	out_str("local", "connection: %s", r->local);
	out_str("remote", " -> %s\n", r->remote);
	out_str("mode", "mode: %s", dmt_mode_name(mode));
	out_fallback_reason(reason, c->com.mode == DMT_MODE_AUTO);
	out_u64("dmabuf_id", mode == DMT_MODE_DEVMEM ? ", dmabuf id %" PRIu64 : NULL,
		dmt_txbind_id(r->bind));
	out_text("\n");
	out_u64("bytes", "sent: %" PRIu64 " bytes", st.bytes);
	out_rate(st.bytes, s);
	out_u64("sends", "sends: %" PRIu64, st.sends);
	out_u64("partial", " (%" PRIu64 " partial)", st.partial);
	out_u64("completions", ", completions %" PRIu64, st.completions);
	out_u64("copied", ", copied %" PRIu64, st.copied);
	out_bool("zerocopy", ", zero-copy %s",
		 mode != DMT_MODE_COPY && st.completions && !st.copied);
	out_u64("enobufs", st.enobufs ? ", ENOBUFS %" PRIu64 : NULL, st.enobufs);
	out_text("\n");
	out_cpu();
	out_bool("peer_closed", NULL, r->peer_closed);
	out_stopped_by();
}

int cmd_send(int argc, char **argv)
{
	struct send_cfg c;
	struct send_run r = { .fd = -1 };
	int rc;

	rc = parse(argc, argv, &c);
	if (rc)
		return rc;
	if (!check_lengths(&c, &r) && !setup(&c, &r)) {
		r.started = true;
		r.t0 = now_s();
		if (!run_loop(&c, &r))
			finish(&r);
		else
			dmt_tx_drain(r.tx, STOP_DRAIN_MS);	/* best effort */
		if (!r.t1)
			r.t1 = now_s();
	}
	out_begin();
	if (r.started || out_json())
		print_options(&c);
	if (r.started)
		print_results(&c, &r);
	if (r.exit)
		out_error(&r.err, r.exit);
	out_end();
	cleanup(&r);
	if (!r.exit && tool_stop)
		return tool_stop_exit();
	return r.exit;
}
