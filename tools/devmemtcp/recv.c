// SPDX-License-Identifier: MIT
/*
 * recv.c - `devmemtcp recv --dev IFNAME`: receive one TCP stream into a
 * dma-buf bound to RX queues (devmem TCP), or with the copy fallback.
 *
 * Order matters:
 *   1. the dma-buf;
 *   2. the NIC: header split on, hds-thresh 0, the queues out of RSS
 *      (dmt_nic_prepare_rx); every change is recorded to be undone;
 *   3. bind-rx of the dma-buf on the queues (dmt_rxbind_new);
 *   4. the listening socket, then the ntuple rule for the flow (it must be
 *      in place before the first segment arrives, so before accept: on the
 *      local address and port, plus the peer's with --peer);
 *   5. accept one connection, receive to EOF, check every byte when
 *      validating, give the tokens back as we go (dmt_rx_recv does);
 *   6. teardown, newest first: the receive engine (tokens), the sockets,
 *      the binding (unbind: the kernel restarts the queues), and only then
 *      the NIC (the kernel refuses to turn header split off while bound).
 * A signal (HUP, INT, QUIT, TERM) only sets a flag; the loop stops, prints
 * the summary and runs the same teardown, so the NIC ends as it started.
 * Every NIC change is also in an undo log on disk before it is made
 * (libdevmemtcp 0.2): after a SIGKILL or a crash, `devmemtcp restore`
 * replays it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
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
#define DEFAULT_SIZE (64ULL << 20)
#define MAX_FRAGS 256		/* per dmt_rx_recv */
#define BOUNCE (64 << 10)	/* devmem frags are read through this */
#define POLL_MS 250		/* signals are checked at least this often */

struct recv_cfg {
	struct tool_common com;	/* --dev --provider --size --validate --mode */
	const char *listen;	/* [ADDR][:PORT] as given, or NULL */
	char listen_host[256];	/* "" for every address */
	unsigned long port;
	const char *peer;	/* ADDR[:PORT] as given, or NULL */
	char peer_host[256];
	unsigned long peer_port;	/* 0: any */
	bool queues_set;
	unsigned long queue_start, queue_count;
	bool fail_on_linear;
	bool no_setup;
	bool no_gro_hw;
	bool hugepages;
	uint64_t rx_page_size;	/* 0: the page size */
	int argc;
	char **argv;
};

struct recv_run {
	struct dmt_dmabuf *buf;
	struct dmt_nic *nic;
	struct dmt_rxbind *bind;
	struct dmt_rx *rx;
	int lfd, fd;
	struct dmt_err err;
	int exit;		/* EXIT_OK unless err is set */
	unsigned rx_queues;	/* the device's, 0 if not known */
	bool steered;
	unsigned max_frags;	/* per dmt_rx_recv: what one call holds */
	int rcvbuf;		/* SO_RCVBUF set for a small dma-buf, or 0 */
	uint32_t rule;		/* the ntuple rule's location */
	enum dmt_mode mode;	/* what is used: devmem or copy */
	char reason[512];	/* why devmem is not used, "" if it is */
	bool listening, started, eof;
	double t0, t1;
	uint64_t pos;		/* stream position: bytes received */
	uint64_t validated;	/* of those, checked against the pattern */
	struct dmt_rx_stats st;	/* snapshot before teardown */
	uint32_t dmabuf_id;
	bool restored;		/* the NIC is as it was (or was not touched) */
	struct dmt_err restore_err;
	char local[INET6_ADDRSTRLEN + 8];
	char remote[INET6_ADDRSTRLEN + 8];
	struct sockaddr_storage laddr, paddr;
	socklen_t laddrlen, paddrlen;
	unsigned char bounce[BOUNCE];
};

void recv_usage(FILE *f)
{
	fprintf(f,
		"devmemtcp [-j] recv --dev IFNAME [OPTIONS]   (port %d by default)\n"
		"  --dev IFNAME        interface whose RX queues receive (required)\n"
		"  --listen [ADDR][:PORT]  address and port to listen on (every IPv4\n"
		"                      address; [::] with an IPv6 --peer)\n"
		"  --queues START:COUNT  RX queues to bind (the last queue, COUNT 1);\n"
		"                      the flow is steered to START\n"
		"  --provider NAME     udmabuf|heap|cuda|fd|host (udmabuf)\n"
		"  --size BYTES        buffer size (64M): what the queues may fill plus\n"
		"                      what is held before the tokens go back\n"
		"  --validate [N]      check every byte against `ncdevmem -v N` (N=7)\n"
		"  --fail-on-linear    exit 15 if any payload arrived outside the dma-buf\n"
		"  --mode MODE         devmem|auto|copy (auto: devmem, else copy, and the\n"
		"                      reason is printed)\n"
		"  --no-setup          leave the NIC as it is: no tcp-data-split, RSS,\n"
		"                      ntuple or rx-gro-hw change\n"
		"  --no-gro-hw         set up the NIC but leave rx-gro-hw (hardware GRO,\n"
		"                      turned on where the driver lets it) as it is\n"
		"  --rx-page-size BYTES  buffers of BYTES (a power of 2 >= 4K the driver\n"
		"                      supports; Linux >= 7.3) instead of pages\n"
		"  --hugepages         --provider udmabuf: 2 MiB pages (rx-page-size\n"
		"                      above 4K needs the buffer's pieces that aligned)\n"
		"  --peer ADDR[:PORT]  steer on the sender's address (and port) too\n",
		DEFAULT_PORT);
}

/* "[ADDR][:PORT]": ":PORT", "ADDR", "ADDR:PORT", "[V6]:PORT", "V6". */
static int parse_listen(const char *s, struct recv_cfg *c)
{
	if (s[0] == ':' && !strchr(s + 1, ':')) {
		c->listen_host[0] = '\0';
		return parse_uint(s + 1, 0, 65535, &c->port) ? -EINVAL : 0;
	}
	return parse_hostport(s, c->listen_host, sizeof(c->listen_host), &c->port);
}

/* "START:COUNT" or "START" (COUNT 1). */
static int parse_queues(const char *s, struct recv_cfg *c)
{
	char start[16];
	const char *colon = strchr(s, ':');
	size_t len = colon ? (size_t)(colon - s) : strlen(s);

	if (!len || len >= sizeof(start))
		return -EINVAL;
	memcpy(start, s, len);
	start[len] = '\0';
	if (parse_uint(start, 0, 65535, &c->queue_start))
		return -EINVAL;
	c->queue_count = 1;
	if (colon && parse_uint(colon + 1, 1, 65536, &c->queue_count))
		return -EINVAL;
	return 0;
}

static int parse(int argc, char **argv, struct recv_cfg *c)
{
	enum { O_LISTEN = O_OWN, O_QUEUES, O_LINEAR, O_NOSETUP, O_PEER, O_NOGRO, O_RXPAGE, O_HUGE };
	static const struct option opts[] = {
		TOOL_COMMON_OPTIONS,
		{ "listen", required_argument, NULL, O_LISTEN },
		{ "queues", required_argument, NULL, O_QUEUES },
		{ "fail-on-linear", no_argument, NULL, O_LINEAR },
		{ "no-setup", no_argument, NULL, O_NOSETUP },
		{ "no-gro-hw", no_argument, NULL, O_NOGRO },
		{ "rx-page-size", required_argument, NULL, O_RXPAGE },
		{ "hugepages", no_argument, NULL, O_HUGE },
		{ "peer", required_argument, NULL, O_PEER },
		{ 0 }
	};
	int o, rc;

	*c = (struct recv_cfg){ .com = TOOL_COMMON_DEFAULTS(DEFAULT_SIZE),
				.port = DEFAULT_PORT, .argc = argc, .argv = argv };
	optind = 0;
	opterr = 0;
	while ((o = getopt_long(argc, argv, ":j", opts, NULL)) != -1) {
		const char *arg = optarg;

		rc = tool_common_opt("recv", o, arg, argc, argv, &c->com);
		if (rc > 1)
			return rc;
		if (rc)
			continue;
		switch (o) {
		case O_LISTEN:
			c->listen = arg;
			if (parse_listen(arg, c))
				return tool_usage_err("use ADDR, ADDR:PORT, :PORT or [IPV6]:PORT",
						      "--listen %s: bad address", arg);
			break;
		case O_QUEUES:
			if (parse_queues(arg, c))
				return tool_usage_err("use START:COUNT, e.g. --queues 3:1 (`ethtool -l IFNAME` shows the queues)",
						      "--queues %s: not START:COUNT", arg);
			c->queues_set = true;
			break;
		case O_LINEAR:
			c->fail_on_linear = true;
			break;
		case O_NOSETUP:
			c->no_setup = true;
			break;
		case O_NOGRO:
			c->no_gro_hw = true;
			break;
		case O_RXPAGE:
			if (parse_size(arg, &c->rx_page_size) || c->rx_page_size > UINT32_MAX)
				return tool_usage_err("give a size, e.g. --rx-page-size 16K",
						      "--rx-page-size %s: not a size", arg);
			if (c->rx_page_size < 4096 || (c->rx_page_size & (c->rx_page_size - 1)))
				return tool_usage_err("give a power of 2 from 4K, e.g. --rx-page-size 16K",
						      "--rx-page-size %s: not a power of 2 from 4096", arg);
			break;
		case O_HUGE:
			c->hugepages = true;
			break;
		case O_PEER:
			c->peer = arg;
			if (parse_hostport(arg, c->peer_host, sizeof(c->peer_host), &c->peer_port))
				return tool_usage_err("use ADDR, ADDR:PORT or [IPV6]:PORT",
						      "--peer %s: bad address", arg);
			break;
		default:
			return tool_bad_option("recv", o, argv);
		}
	}
	if (optind < argc)
		return tool_usage_err("devmemtcp recv --dev IFNAME [--listen [ADDR][:PORT]] ...",
				      "recv: unexpected argument '%s'", argv[optind]);
	if (!c->com.dev)
		return tool_usage_err("name the interface the stream arrives on: --dev IFNAME",
				      "recv needs --dev IFNAME");
	return 0;
}

/* Keep the library's error; add the tool's fix when it has none. */
static int fail(struct recv_run *r, int exit_code, const struct dmt_err *e,
		const char *fix)
{
	return tool_fail(&r->err, &r->exit, exit_code, e, fix);
}

static int resolve(const char *host, unsigned long port, int family,
		   struct sockaddr_storage *ss, socklen_t *sslen, struct dmt_err *err,
		   const char *what)
{
	int rc = tool_getaddr(host, port, family, true, ss, sslen);

	if (rc == EAI_SYSTEM)
		tool_err(err, -errno, "check the name and the resolver", "%s %s", what, host);
	else if (rc)
		tool_err(err, 0, "give an IPv4 or IPv6 address (both ends of one family)",
			 "%s %s: %s", what, host, gai_strerror(rc));
	return rc ? -1 : 0;
}

/* ------------------------------------------------------------- the queues */

struct qcount {
	unsigned rx;
};

static int count_rx(const struct dmt_queue_info *q, void *arg)
{
	if (q->type == 0)
		((struct qcount *)arg)->rx++;
	return 0;
}

/*
 * The device's RX queue count from a queue-get dump (0 when it cannot be
 * read), then the queues to bind: --queues, or the last one.
 */
static int pick_queues(struct recv_cfg *c, struct recv_run *r, unsigned ifindex)
{
	struct dmt_err e = { 0 };
	struct qcount qc = { 0 };
	struct dmt_nl *nl = dmt_nl_open(&e);

	if (nl) {
		if (dmt_queue_dump(nl, ifindex, count_rx, &qc) >= 0)
			r->rx_queues = qc.rx;
		dmt_nl_close(nl);
	}
	if (!c->queues_set) {
		c->queue_count = 1;
		c->queue_start = r->rx_queues ? r->rx_queues - 1 : 0;
	}
	if (c->queues_set && r->rx_queues &&
	    c->queue_start + c->queue_count > r->rx_queues) {
		tool_err(&e, -ERANGE, NULL,
			 "--queues %lu:%lu: %s has %u RX queue%s (0..%u)",
			 c->queue_start, c->queue_count, c->com.dev, r->rx_queues,
			 r->rx_queues == 1 ? "" : "s", r->rx_queues - 1);
		snprintf(e.fix, sizeof(e.fix),
			 "pick queues below %u, or add channels: `ethtool -L %s combined N`",
			 r->rx_queues, c->com.dev);
		return fail(r, EXIT_QUEUE, &e, NULL);
	}
	return 0;
}

/* The devmem part needs count+1 queues: the rest keep RSS for other flows. */
static int check_queue_room(const struct recv_cfg *c, struct recv_run *r,
			    struct dmt_err *e)
{
	if (!r->rx_queues || c->queue_count + 1 <= r->rx_queues)
		return 0;
	tool_err(e, -ERANGE, NULL,
		 "%s has %u RX queue%s: devmem on %lu needs %lu (the others keep RSS)",
		 c->com.dev, r->rx_queues, r->rx_queues == 1 ? "" : "s",
		 c->queue_count, c->queue_count + 1);
	snprintf(e->fix, sizeof(e->fix), "add channels (`ethtool -L %s combined %lu`), or a NIC with more queues",
		 c->com.dev, c->queue_count + 1);
	return -1;
}

/* ------------------------------------------------------------- NIC setup */

static int nic_exit(const struct dmt_err *e);

/*
 * Open the NIC (nothing changes yet) and check what no setup can give:
 * header split support, then room for the queues.  Devmem: a refusal is
 * the run's error; auto: it becomes the reason for copy mode.
 */
static int nic_check(const struct recv_cfg *c, struct recv_run *r)
{
	struct dmt_nic_state st;
	struct dmt_err e = { 0 };
	int code = EXIT_STEER;

	DMT_OPTS(dmt_nic_opts, no, .flags = c->no_gro_hw ? DMT_NIC_NO_GRO_HW : 0);

	r->nic = dmt_nic_open_opts(c->com.dev, &no, &e);
	if (r->nic && dmt_nic_get_state(r->nic, &st) < 0) {
		e = *dmt_nic_error(r->nic);
	} else if (r->nic && (!st.has_rings || !st.tcp_data_split)) {
		tool_err(&e, -EOPNOTSUPP, NULL,
			 "%s does not support header split: its rings report no tcp-data-split",
			 c->com.dev);
		snprintf(e.fix, sizeof(e.fix), "devmem RX needs a NIC that splits headers from payload (mlx5, gve, fbnic, bnxt, dmveth); `devmemtcp probe %s` lists what is missing; or --mode copy",
			 c->com.dev);
		code = EXIT_NOHDS;
	} else if (r->nic) {
		if (st.rx_queues)
			r->rx_queues = st.rx_queues;
		if (!check_queue_room(c, r, &e))
			return 0;
		code = EXIT_QUEUE;
	}
	dmt_nic_close(r->nic);	/* nothing was changed */
	r->nic = NULL;
	if (!e.code && !e.what[0])
		tool_err(&e, -EIO, NULL, "open %s for RX setup", c->com.dev);
	if (c->com.mode == DMT_MODE_DEVMEM)
		return fail(r, code == EXIT_STEER ? nic_exit(&e) : code, &e,
			    "check `devmemtcp probe IFNAME`; use --mode auto to fall back to copy");
	dmt_err_str(&e, r->reason, sizeof(r->reason));
	return 0;
}

static bool extack_has(const struct dmt_err *e, const char *s)
{
	return strstr(e->extack, s) != NULL;
}

/* The exit code of a failed NIC setup step. */
static int nic_exit(const struct dmt_err *e)
{
	if (e->code == -ENODEV)
		return EXIT_NODEV;
	if (e->code == -EBUSY)	/* another process's setup, or one left undone */
		return EXIT_NIC_BUSY;
	if (extack_has(e, "data split") || extack_has(e, "tcp-data-split") ||
	    strstr(e->what, "tcp-data-split") || strstr(e->what, "header split"))
		return EXIT_NOHDS;
	if (e->code == -ERANGE)
		return EXIT_QUEUE;
	return EXIT_STEER;
}

/* The exit code of a refused bind-rx. */
static int bind_exit(const struct dmt_err *e)
{
	if (e->code == -ENODEV)
		return EXIT_NODEV;
	if ((e->code == -EEXIST && extack_has(e, "already")) || e->code == -EBUSY)
		return EXIT_QUEUE_BUSY;
	if (e->code == -EOPNOTSUPP && (!e->extack[0] || !strncmp(e->extack, "bad attribute", 13)))
		return EXIT_NOQMGMT;	/* no message: no queue ops, or no ops lock */
	if (extack_has(e, "tcp-data-split"))
		return EXIT_NOHDS;
	if (extack_has(e, "rx-page-size") || extack_has(e, "rx_page_size"))
		return EXIT_USAGE;
	if (e->code == -EINVAL && strstr(e->extack, "queue"))
		return EXIT_QUEUE;
	return EXIT_NODEVMEM;
}

static const char *bind_fix(int exit_code, const struct recv_cfg *c)
{
	static char fix[192];

	switch (exit_code) {
	case EXIT_QUEUE_BUSY:
		snprintf(fix, sizeof(fix), "another binding holds the queue: stop it, or pick other --queues (`ynl --family netdev --dump queue-get` shows dmabuf ids)");
		return fix;
	case EXIT_NOQMGMT:
		return "the driver has no queue management ops: devmem RX needs a NIC that can restart one RX queue (mlx5, gve, fbnic, bnxt, dmveth); use --mode copy";
	case EXIT_NOHDS:
		snprintf(fix, sizeof(fix), "enable header split: `ethtool -G %s tcp-data-split on hds-thresh 0` (or drop --no-setup)", c->com.dev);
		return fix;
	case EXIT_USAGE:
		return "give --rx-page-size a power of 2 the driver supports (or drop it); with --provider udmabuf add --hugepages";
	}
	return "check `devmemtcp probe IFNAME`; use --mode auto to fall back to copy";
}

/*
 * The NIC and the binding.  Devmem mode: any refusal is the run's error.
 * Auto: a refusal of the NIC becomes the reason for copy mode.
 */
static int setup_rx(struct recv_cfg *c, struct recv_run *r)
{
	DMT_OPTS(dmt_rxbind_opts, bo, .policy = c->com.mode, .queue_start = c->queue_start,
		 .queue_count = c->queue_count, .rx_page_size = (uint32_t)c->rx_page_size);
	bool devmem_possible = c->com.mode != DMT_MODE_COPY;
	struct dmt_err e = { 0 };
	char sentence[768];

	if (devmem_possible && !dmt_dmabuf_is_dmabuf(r->buf)) {
		if (c->com.mode == DMT_MODE_DEVMEM) {
			tool_err(&e, -EINVAL, "use --provider udmabuf, heap or cuda, or --mode copy",
				 "--provider %s is host memory, not a dma-buf: no devmem", dmt_provider_name(c->com.provider));
			return fail(r, EXIT_BUFFER, &e, NULL);
		}
		snprintf(r->reason, sizeof(r->reason), "--provider %s is host memory, not a dma-buf",
			 dmt_provider_name(c->com.provider));
		devmem_possible = false;
	}
	if (devmem_possible && !c->no_setup && !r->nic)
		devmem_possible = false;	/* nic_check gave the reason */
	if (devmem_possible && !c->no_setup) {
		if (dmt_nic_prepare_rx(r->nic, c->queue_start, c->queue_count) < 0) {
			e = *dmt_nic_error(r->nic);
			dmt_nic_close(r->nic);	/* undoes what was done */
			r->nic = NULL;
		}
		if (!r->nic) {
			if (c->com.mode == DMT_MODE_DEVMEM)
				return fail(r, nic_exit(&e), &e,
					    "check `devmemtcp probe IFNAME`; use --mode auto to fall back to copy");
			snprintf(r->reason, sizeof(r->reason), "%s", dmt_err_str(&e, sentence, sizeof(sentence)));
			devmem_possible = false;
		}
	}
	/* copy: no bind-rx attempt at all (nothing set up for it) */
	if (!devmem_possible)
		bo.policy = DMT_MODE_COPY;
	r->bind = dmt_rxbind_new(c->com.dev, r->buf, &bo, &e);
	if (!r->bind) {
		int code = bind_exit(&e);

		return fail(r, code, &e, bind_fix(code, c));
	}
	r->mode = dmt_rxbind_mode(r->bind);
	r->dmabuf_id = dmt_rxbind_id(r->bind);
	if (r->mode != DMT_MODE_DEVMEM) {
		const char *why = dmt_rxbind_fallback_reason(r->bind);

		if (!r->reason[0] && why && *why)
			snprintf(r->reason, sizeof(r->reason), "%s", why);
		/* the NIC changes serve nothing now */
		if (r->nic) {
			dmt_nic_close(r->nic);
			r->nic = NULL;
		}
	}
	if (c->com.mode == DMT_MODE_AUTO && r->mode != DMT_MODE_DEVMEM && !out_json())
		fprintf(stderr, "devmemtcp: devmem not used, receiving with %s: %s\n",
			dmt_mode_name(r->mode), r->reason[0] ? r->reason : "(no reason given)");
	return 0;
}

/* ------------------------------------------------------------ the socket */

static int setup_listen(struct recv_cfg *c, struct recv_run *r)
{
	int family = AF_INET, one = 1;
	struct dmt_err e = { 0 };

	if (c->peer) {
		if (resolve(c->peer_host, c->peer_port, AF_UNSPEC,
			    &r->paddr, &r->paddrlen, &e, "--peer"))
			return fail(r, EXIT_PEER, &e, NULL);
		family = r->paddr.ss_family;
	}
	if (c->listen_host[0])
		family = AF_UNSPEC;
	if (resolve(c->listen_host, c->port, family, &r->laddr, &r->laddrlen, &e, "--listen"))
		return fail(r, EXIT_USAGE, &e, NULL);
	if (c->peer && r->paddr.ss_family != r->laddr.ss_family) {
		tool_err(&e, -EAFNOSUPPORT, "give --listen and --peer addresses of one family",
			 "--peer %s and --listen %s are of different families", c->peer, c->listen);
		return fail(r, EXIT_USAGE, &e, NULL);
	}
	r->lfd = socket(r->laddr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (r->lfd < 0) {
		tool_err(&e, -errno, NULL, "socket");
		return fail(r, EXIT_RUNTIME, &e, NULL);
	}
	setsockopt(r->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(r->lfd, (struct sockaddr *)&r->laddr, r->laddrlen) || listen(r->lfd, 1)) {
		int err = errno;

		addr_str((struct sockaddr *)&r->laddr, r->local, sizeof(r->local));
		tool_err(&e, -err, err == EADDRINUSE ?
			 "another program listens there (`ss -ltnp` names it): stop it, or use --listen :PORT" :
			 "use an address of this host (`ip addr`)",
			 "listen on %s", r->local);
		return fail(r, err == EADDRINUSE ? EXIT_ADDRINUSE : EXIT_RUNTIME, &e, NULL);
	}
	r->laddrlen = sizeof(r->laddr);
	getsockname(r->lfd, (struct sockaddr *)&r->laddr, &r->laddrlen);
	addr_str((struct sockaddr *)&r->laddr, r->local, sizeof(r->local));
	return 0;
}

/* net.ipv4.tcp_rmem's maximum (receive-buffer autotuning's ceiling), or 0 */
static long tcp_rmem_max(void)
{
	long lo, def, hi = 0;
	FILE *f = fopen("/proc/sys/net/ipv4/tcp_rmem", "re");

	if (f) {
		if (fscanf(f, "%ld %ld %ld", &lo, &def, &hi) != 3)
			hi = 0;
		fclose(f);
	}
	return hi;
}

/*
 * A small dma-buf: keep the socket from holding every buffer of it.  After
 * a loss, the segments behind the hole wait in the out-of-order queue,
 * each on a buffer of its own; once they hold them all, the NIC drops every
 * retransmission of the missing segment for want of a buffer, and the
 * connection stalls for good (measured on dmveth with 1 MiB, 256 buffers:
 * all 256 in the out-of-order queue, the sender in RTO backoff).  The
 * kernel prunes that queue when the socket's memory passes SO_RCVBUF, so
 * SO_RCVBUF is what 3/4 of the buffers the receive calls do not hold cost
 * in socket memory (a buffer plus ~1 KiB of header skb each), and each
 * receive call holds at most a quarter of the buffers.  Nothing changes
 * where autotuning's ceiling (tcp_rmem) is below that already.
 */
static void fit_small_dmabuf(struct recv_run *r)
{
	long page = sysconf(_SC_PAGESIZE), bufs, want, max = tcp_rmem_max();

	r->max_frags = MAX_FRAGS;
	if (r->mode != DMT_MODE_DEVMEM || page <= 0)
		return;
	bufs = (long)(dmt_dmabuf_size(r->buf) / (size_t)page);
	if (bufs / 4 < MAX_FRAGS)
		r->max_frags = bufs >= 4 ? (unsigned)(bufs / 4) : 1;
	want = (bufs - (long)r->max_frags) * (page + 1024) * 3 / 4;
	if (want <= 0 || !max || want >= max)
		return;
	/* the kernel doubles what it is given */
	r->rcvbuf = (int)(want / 2);
	if (setsockopt(r->lfd, SOL_SOCKET, SO_RCVBUF, &r->rcvbuf, sizeof(r->rcvbuf)))
		r->rcvbuf = 0;
}

/* The ntuple rule, before any segment of the flow can arrive. */
static int steer(struct recv_cfg *c, struct recv_run *r)
{
	struct dmt_flow flow;

	memset(&flow, 0, sizeof(flow));
	memcpy(&flow.local, &r->laddr, r->laddrlen);
	if (c->peer)
		memcpy(&flow.peer, &r->paddr, r->paddrlen);
	/* else AF_UNSPEC: any peer address and port */
	if (dmt_nic_steer(r->nic, &flow, c->queue_start, &r->rule) < 0) {
		const struct dmt_err *e = dmt_nic_error(r->nic);

		return fail(r, EXIT_STEER, e, "the flow needs an ntuple rule: `ethtool -K IFNAME ntuple on`, or a NIC with flow steering");
	}
	r->steered = true;
	return 0;
}

/* Wait for one connection; 1 when stopped by a signal. */
static int accept_one(struct recv_run *r)
{
	struct pollfd p = { .fd = r->lfd, .events = POLLIN };
	struct sockaddr_storage ss;
	socklen_t sslen;
	struct dmt_err e = { 0 };

	for (;;) {
		if (tool_stop)
			return 1;
		if (poll(&p, 1, POLL_MS) <= 0)
			continue;
		sslen = sizeof(ss);
		r->fd = accept4(r->lfd, (struct sockaddr *)&ss, &sslen, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (r->fd >= 0)
			break;
		if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
			continue;
		tool_err(&e, -errno, NULL, "accept on %s", r->local);
		return fail(r, EXIT_RUNTIME, &e, NULL);
	}
	addr_str((struct sockaddr *)&ss, r->remote, sizeof(r->remote));
	sslen = sizeof(ss);
	if (!getsockname(r->fd, (struct sockaddr *)&ss, &sslen))
		addr_str((struct sockaddr *)&ss, r->local, sizeof(r->local));
	return 0;
}

static int setup(struct recv_cfg *c, struct recv_run *r)
{
	DMT_OPTS(dmt_dmabuf_opts, bo, .provider = c->com.provider, .size = c->com.size,
		 .hugepages = c->hugepages);
	struct dmt_err e = { 0 };
	unsigned ifindex = 0;

	if (!c->com.size) {
		tool_err(&e, -EINVAL, "give a buffer size, e.g. --size 64M",
			 "--size 0: the buffer would be empty");
		return fail(r, EXIT_RANGE, &e, NULL);
	}
	if (c->com.dev && !(ifindex = tool_ifindex(c->com.dev, &e)))
		return fail(r, EXIT_NODEV, &e, NULL);
	if (c->com.mode != DMT_MODE_COPY && pick_queues(c, r, ifindex))
		return -1;
	/* the NIC's refusals first, before making a buffer */
	if (c->com.mode != DMT_MODE_COPY && !c->no_setup && nic_check(c, r))
		return -1;

	r->buf = dmt_dmabuf_new(&bo, &e);
	if (!r->buf)
		return fail(r, e.code == -ERANGE ? EXIT_RANGE : EXIT_BUFFER, &e,
			    "check the provider: /dev/udmabuf (modprobe udmabuf), /dev/dma_heap, libcuda");
	if (setup_rx(c, r))
		return -1;
	if (setup_listen(c, r))
		return -1;
	fit_small_dmabuf(r);
	if (r->mode == DMT_MODE_DEVMEM && r->nic && steer(c, r))
		return -1;
	r->listening = true;
	fprintf(stderr, "listening on %s\n", r->local);
	fflush(stderr);
	return 0;
}

/* ----------------------------------------------------------- receiving */

static unsigned char pattern_byte(uint64_t k, unsigned period)
{
	return k % period == period - 1 ? '\n' : k % period + 1;
}

/* Check len bytes at stream position pos; -1 with r->err on a mismatch. */
static int check(const struct recv_cfg *c, struct recv_run *r,
		 const unsigned char *p, size_t len, uint64_t pos, const char *where)
{
	ssize_t k = dmt_pattern_check(p, len, pos, c->com.validate);
	struct dmt_err e;

	if (k < 0) {
		r->validated += len;
		return 0;
	}
	tool_err(&e, 0, "the sender must send `ncdevmem`'s pattern with the same period (devmemtcp send --validate N); linear or misplaced data means steering or header split is wrong",
		 "byte %" PRIu64 " of the stream (%s) is 0x%02x, the pattern's is 0x%02x (period %lu)",
		 pos + k, where, p[k], pattern_byte(pos + k, c->com.validate), c->com.validate);
	return fail(r, EXIT_VALIDATE, &e, NULL);
}

/*
 * Bracket one receive call's devmem fragments with one pair of
 * dmt_dmabuf_sync (read), so they are checked straight from the mapping:
 * a copy and two ioctls per fragment cost more than the network.
 */
static int map_sync(struct recv_run *r, bool start, bool report)
{
	unsigned flags = (start ? DMT_DMABUF_SYNC_START : DMT_DMABUF_SYNC_END) |
			 DMT_DMABUF_SYNC_READ;

	if (!dmt_dmabuf_sync(r->buf, flags))
		return 0;
	if (!report)	/* closing the bracket after an earlier error */
		return -1;
	return fail(r, EXIT_RUNTIME, dmt_dmabuf_error(r->buf),
		    "validation reads the dma-buf through its mapping: use a host-mappable provider (udmabuf, heap)");
}

/* map: the dma-buf's mapping, between map_sync()s; NULL: read through a copy */
static int check_frag(const struct recv_cfg *c, struct recv_run *r,
		      const struct dmt_rx_frag *f, const unsigned char *map)
{
	char where[64];
	uint32_t done = 0;

	if (f->data || f->linear) {
		snprintf(where, sizeof(where), f->linear ? "linear" : "copied");
		return check(c, r, f->data, f->len, r->pos, where);
	}
	if (map) {
		size_t size = dmt_dmabuf_size(r->buf);
		struct dmt_err e;

		if (f->off > size || f->len > size - f->off) {
			tool_err(&e, -ERANGE, NULL,
				 "fragment at offset %" PRIu64 " length %" PRIu32 " is outside the %zu-byte dma-buf",
				 f->off, f->len, size);
			return fail(r, EXIT_RANGE, &e, NULL);
		}
		snprintf(where, sizeof(where), "dma-buf offset %" PRIu64, f->off);
		return check(c, r, map + f->off, f->len, r->pos, where);
	}
	while (done < f->len) {
		size_t n = f->len - done < BOUNCE ? f->len - done : BOUNCE;
		int rc = dmt_dmabuf_read(r->buf, f->off + done, r->bounce, n);

		if (rc < 0) {
			const struct dmt_err *e = dmt_dmabuf_error(r->buf);

			return fail(r, rc == -ERANGE ? EXIT_RANGE : EXIT_RUNTIME, e,
				    "validation reads the dma-buf through the host: use a host-mappable provider (udmabuf, heap)");
		}
		snprintf(where, sizeof(where), "dma-buf offset %" PRIu64, f->off + done);
		if (check(c, r, r->bounce, n, r->pos + done, where))
			return -1;
		done += n;
	}
	return 0;
}

struct progress {
	double next_print;
	bool tty;
};

static void progress(struct recv_run *r, struct progress *p, double t)
{
	double s;

	if (!p->tty || t < p->next_print)
		return;
	s = t - r->t0;
	fprintf(stderr, "\r%7.1f s %12.3f GB %9.2f Gb/s", s, r->pos / 1e9,
		s > 0 ? r->pos * 8 / s / 1e9 : 0.0);
	p->next_print = t + 1;
}

static int run_loop(const struct recv_cfg *c, struct recv_run *r)
{
	DMT_OPTS(dmt_rx_opts, ro, .max_frags = r->max_frags);
	struct progress p = { .next_print = r->t0 + 1, .tty = isatty(2) };
	struct dmt_rx_frag frags[MAX_FRAGS];
	struct dmt_err e = { 0 };
	const unsigned char *map = NULL;
	bool synced;
	int rc = 0;

	/* check devmem fragments in place when the dma-buf is mapped */
	if (c->com.validate && r->buf && dmt_dmabuf_is_dmabuf(r->buf))
		map = dmt_dmabuf_map(r->buf);
	r->rx = dmt_rx_new(r->fd, r->bind, &ro, &e);
	if (!r->rx)
		return fail(r, EXIT_RUNTIME, &e, NULL);
	while (!tool_stop) {
		int n = dmt_rx_recv(r->rx, frags, r->max_frags);

		if (n == -EAGAIN || n == -EINTR) {
			struct pollfd pfd = { .fd = r->fd, .events = POLLIN };

			poll(&pfd, 1, POLL_MS);
			progress(r, &p, now_s());
			continue;
		}
		if (n < 0) {
			const struct dmt_err *le = dmt_rx_error(r->rx);

			if (!le || !le->code) {
				tool_err(&e, n, NULL, "receive from %s", r->remote);
				le = &e;
			}
			if (n == -ECONNRESET || n == -EPIPE)
				rc = fail(r, EXIT_CLOSED, le, "the sender reset the connection before the end: check its output");
			else
				rc = fail(r, EXIT_RUNTIME, le, NULL);
			break;
		}
		if (n == 0) {
			r->eof = true;
			break;
		}
		synced = false;
		if (map) {
			for (int i = 0; i < n && !synced; i++)
				synced = !frags[i].linear && !frags[i].data;
			if (synced && map_sync(r, true, true)) {
				rc = -1;
				break;
			}
		}
		for (int i = 0; i < n; i++) {
			struct dmt_rx_frag f = frags[i];

			/*
			 * Devmem frags are at most a page; check adjacent ones
			 * at once (through the copy: one dmt_dmabuf_read).
			 */
			while (c->com.validate && !f.linear && !f.data && i + 1 < n &&
			       !frags[i + 1].linear && !frags[i + 1].data &&
			       frags[i + 1].off == f.off + f.len &&
			       f.len + frags[i + 1].len <= BOUNCE)
				f.len += frags[++i].len;
			if (c->com.validate && check_frag(c, r, &f, map)) {
				rc = -1;
				break;
			}
			r->pos += f.len;
		}
		if (synced && map_sync(r, false, !rc))
			rc = -1;
		if (rc)
			break;
		progress(r, &p, now_s());
	}
	r->t1 = now_s();
	if (p.tty)
		fputs("\r\033[K", stderr);
	dmt_rx_get_stats(r->rx, &r->st);
	if (!rc && r->eof && c->fail_on_linear && r->st.linear_bytes) {
		tool_err(&e, 0, "the flow did not land in the dma-buf: check the ntuple rule (`ethtool -n IFNAME`), header split and hds-thresh 0 (`ethtool -g IFNAME`)",
			 "%" PRIu64 " of %" PRIu64 " bytes arrived linear (outside the dma-buf), --fail-on-linear",
			 r->st.linear_bytes, r->st.bytes);
		rc = fail(r, EXIT_LINEAR, &e, NULL);
	}
	return rc;
}

/* Newest first; the NIC last, after the unbind. */
static void teardown(struct recv_run *r)
{
	if (r->rx) {
		dmt_rx_get_stats(r->rx, &r->st);	/* tokens returned at the end count */
		dmt_rx_free(r->rx);
		r->rx = NULL;
	}
	if (r->fd >= 0)
		close(r->fd);
	if (r->lfd >= 0)
		close(r->lfd);
	r->fd = r->lfd = -1;
	dmt_rxbind_free(r->bind);
	r->bind = NULL;
	r->restored = true;
	if (r->nic) {
		if (dmt_nic_restore(r->nic) < 0) {
			r->restored = false;
			r->restore_err = *dmt_nic_error(r->nic);
		}
		dmt_nic_close(r->nic);
		r->nic = NULL;
	}
	dmt_dmabuf_free(r->buf);
	r->buf = NULL;
}

static void print_options(const struct recv_cfg *c)
{
	out_command(c->argc, c->argv);
	out_obj_open("options", NULL);
	out_str("dev", "recv on %s", c->com.dev);
	out_str("listen", " listen %s", c->listen_host[0] ? c->listen_host : NULL);
	out_u64("port", " port %" PRIu64, c->port);
	out_str("peer", c->peer ? " peer %s" : NULL, c->peer);
	out_str("mode", ", mode %s", dmt_mode_name(c->com.mode));
	out_u64("queue_start", c->com.mode != DMT_MODE_COPY ? ", queues %" PRIu64 : NULL, c->queue_start);
	out_u64("queue_count", c->com.mode != DMT_MODE_COPY ? ":%" PRIu64 : NULL, c->queue_count);
	out_bool("setup", c->no_setup ? ", no NIC setup" : NULL, !c->no_setup);
	out_bool("gro_hw_setup", !c->no_setup && c->no_gro_hw ? ", rx-gro-hw left as is" : NULL,
		 !c->no_setup && !c->no_gro_hw);
	out_str("provider", "\nbuffer: %s", dmt_provider_name(c->com.provider));
	out_u64("size", " size %" PRIu64, c->com.size);
	out_bool("hugepages", c->hugepages ? " hugepages" : NULL, c->hugepages);
	if (c->rx_page_size)
		out_u64("rx_page_size", ", rx-page-size %" PRIu64, c->rx_page_size);
	else
		out_null("rx_page_size", NULL);
	if (c->com.validate)
		out_u64("validate", ", validate %" PRIu64, c->com.validate);
	else
		out_null("validate", NULL);
	out_bool("fail_on_linear", c->fail_on_linear ? ", fail on linear" : NULL, c->fail_on_linear);
	out_obj_close();
	out_text("\n");
}

static void print_results(const struct recv_cfg *c, const struct recv_run *r)
{
	double s = (r->t1 ? r->t1 : now_s()) - r->t0;
	const struct dmt_rx_stats *st = &r->st;

	out_str("local", "connection: %s", r->local);
	out_str("remote", " <- %s\n", r->remote);
	out_str("mode", "mode: %s", dmt_mode_name(r->mode));
	out_fallback_reason(r->reason, c->com.mode == DMT_MODE_AUTO);
	out_u64("dmabuf_id", r->mode == DMT_MODE_DEVMEM ? ", dmabuf id %" PRIu64 : NULL, r->dmabuf_id);
	if (r->steered)
		out_u64("steer_rule", ", ntuple rule %" PRIu64, r->rule);
	else
		out_null("steer_rule", NULL);
	out_text("\n");
	out_u64("bytes", "received: %" PRIu64 " bytes", st->bytes);
	out_rate(st->bytes, s);
	out_u64("frags", "fragments: %" PRIu64, st->frags);
	out_u64("linear_bytes", ", linear %" PRIu64 " bytes", st->linear_bytes);
	out_u64("tokens", ", tokens returned %" PRIu64, st->tokens);
	out_u64("dontneed_calls", " in %" PRIu64 " DONTNEED calls", st->dontneed_calls);
	out_u64("recv_calls", ", %" PRIu64 " recvmsg calls\n", st->recv_calls);
	if (r->rcvbuf)
		out_u64("rcvbuf", "small buffer: SO_RCVBUF %" PRIu64 ", at most", (uint64_t)r->rcvbuf);
	else
		out_null("rcvbuf", NULL);
	out_u64("max_frags", r->rcvbuf ? " %" PRIu64 " fragments per receive\n" : NULL,
		r->max_frags);
	if (c->com.validate)
		out_u64("validated_bytes", "validated: %" PRIu64 " bytes, pattern ok\n", r->validated);
	else
		out_null("validated_bytes", NULL);
	out_bool("eof", NULL, r->eof);
	out_cpu();
}

int cmd_recv(int argc, char **argv)
{
	struct recv_cfg c;
	struct recv_run *r;
	int rc;

	rc = parse(argc, argv, &c);
	if (rc)
		return rc;
	r = calloc(1, sizeof(*r));
	if (!r) {
		struct dmt_err e;

		tool_err(&e, -ENOMEM, NULL, "allocate");
		out_begin();
		out_error(&e, EXIT_RUNTIME);
		out_end();
		return EXIT_RUNTIME;
	}
	r->fd = r->lfd = -1;
	r->mode = c.com.mode == DMT_MODE_COPY ? DMT_MODE_COPY : DMT_MODE_DEVMEM;
	if (!setup(&c, r)) {
		rc = accept_one(r);
		if (rc == 0) {
			r->started = true;
			r->t0 = now_s();
			run_loop(&c, r);
		}
	}
	teardown(r);
	if (!r->restored && !r->exit) {
		struct dmt_err *e = &r->restore_err;

		if (e->code == -EBUSY)	/* the library's fix is for programs */
			snprintf(e->fix, sizeof(e->fix), "the changes stay recorded: once the queue is unbound, run `devmemtcp restore %s`",
				 c.com.dev);
		fail(r, e->code == -EBUSY ? EXIT_NIC_BUSY : EXIT_RUNTIME, e,
		     "what is left stays recorded: `devmemtcp restore IFNAME` tries again; `ethtool -g/-x/-n IFNAME` shows it");
	} else if (!r->restored) {
		char buf[1024];

		fprintf(stderr, "warning: the NIC was not fully restored: %s\n",
			dmt_err_str(&r->restore_err, buf, sizeof(buf)));
	}

	out_begin();
	if (r->listening || out_json())
		print_options(&c);
	if (r->started)
		print_results(&c, r);
	if (r->listening || out_json())
		out_bool("nic_restored", NULL, r->restored);
	out_stopped_by();
	if (r->exit)
		out_error(&r->err, r->exit);
	out_end();
	rc = r->exit;
	free(r);
	if (!rc && tool_stop)
		return tool_stop_exit();
	return rc;
}
