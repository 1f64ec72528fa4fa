/* SPDX-License-Identifier: MIT */
/*
 * tool.h - what the devmemtcp tool's files share: exit codes, the error
 * helper, argument parsing helpers, the command functions.
 */
#ifndef DMT_TOOL_H
#define DMT_TOOL_H

#include <signal.h>
#include <stdio.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "devmemtcp.h"

/* Exit codes: one per failure class (devmemtcp(8), `devmemtcp --help`). */
enum {
	EXIT_OK = 0,
	EXIT_RUNTIME = 1,	/* any other runtime error */
	EXIT_USAGE = 2,		/* bad command line */
	EXIT_NODEV = 3,		/* no such interface */
	EXIT_NODEVMEM = 4,	/* devmem TX refused for this device/buffer */
	EXIT_BUFFER = 5,	/* bad buffer: not a dma-buf, provider missing */
	EXIT_RANGE = 6,		/* size/offset/length zero or past the buffer */
	EXIT_PEER = 7,		/* peer unreachable, refused, unknown */
	EXIT_CLOSED = 8,	/* peer closed or reset the connection mid-stream */
	/* recv (and probe: EXIT_NODEVMEM when devmem would not work) */
	EXIT_QUEUE = 9,		/* --queues out of range, too few RX queues */
	EXIT_QUEUE_BUSY = 10,	/* queue already bound (memory provider, AF_XDP) */
	EXIT_NOHDS = 11,	/* header split (tcp-data-split) unsupported */
	EXIT_NOQMGMT = 12,	/* no queue management ops: bind-rx EOPNOTSUPP */
	EXIT_ADDRINUSE = 13,	/* the listen port is in use */
	EXIT_VALIDATE = 14,	/* a received byte is not the pattern's */
	EXIT_LINEAR = 15,	/* --fail-on-linear and payload arrived linear */
	EXIT_STEER = 16,	/* RSS / ntuple setup refused */
	/* recv, restore: the NIC's undo log (devmemtcp restore) */
	EXIT_NIC_BUSY = 17,	/* another process sets the NIC up, changes
				 * left unrestored, or a queue still bound */
	EXIT_NO_LOG = 18,	/* restore: no undo log for the interface */
	EXIT_BAD_LOG = 19,	/* restore: the undo log is corrupt */
	EXIT_STALE_LOG = 20,	/* restore: the interface is gone/recreated */
	EXIT_SIGHUP = 129,
	EXIT_SIGINT = 130,
	EXIT_SIGQUIT = 131,
	EXIT_SIGTERM = 143,
};

/* Set by the HUP/INT/QUIT/TERM handler: the signal number, 0 if none. */
extern volatile sig_atomic_t tool_stop;

/*
 * Fill err: code a negative errno (0 when no errno describes it: then what
 * carries the reason), fix may be NULL.
 */
void tool_err(struct dmt_err *err, int code, const char *fix,
	      const char *what, ...) __attribute__((format(printf, 4, 5)));
/*
 * A run's failure: keep the library's error e in *err (e may be err
 * itself), add fix when it has none, set *exitp; returns -1.
 */
int tool_fail(struct dmt_err *err, int *exitp, int exit_code,
	      const struct dmt_err *e, const char *fix);
/* The exit code of a stop by tool_stop: 128 + the signal number. */
int tool_stop_exit(void);
/* "SIGHUP", "SIGINT", "SIGQUIT", "SIGTERM". */
const char *tool_signame(int sig);
/* Print a usage error (text or JSON) and return EXIT_USAGE. */
int tool_usage_err(const char *fix, const char *what, ...)
	__attribute__((format(printf, 2, 3)));

/* "64K", "16M", "1G", "4096": binary suffixes K, M, G, T; -EINVAL/-ERANGE. */
int parse_size(const char *s, uint64_t *val);
/* A decimal unsigned number within [min, max]. */
int parse_uint(const char *s, unsigned long min, unsigned long max,
	       unsigned long *val);
/* Seconds, fractions allowed, > 0. */
int parse_seconds(const char *s, double *val);
/*
 * "HOST", "HOST:PORT", "[V6]", "[V6]:PORT", or a bare IPv6 address: host
 * is copied into host (hostlen bytes), *port set only when given.
 */
int parse_hostport(const char *s, char *host, size_t hostlen,
		   unsigned long *port);

/* The options send and recv share; a command's own start at O_OWN. */
enum { O_DEV = 256, O_PROVIDER, O_SIZE, O_VALIDATE, O_MODE, O_HELP, O_OWN };
#define TOOL_COMMON_OPTIONS \
	{ "dev", required_argument, NULL, O_DEV }, \
	{ "provider", required_argument, NULL, O_PROVIDER }, \
	{ "size", required_argument, NULL, O_SIZE }, \
	{ "validate", optional_argument, NULL, O_VALIDATE }, \
	{ "mode", required_argument, NULL, O_MODE }, \
	{ "json", no_argument, NULL, 'j' }, \
	{ "help", no_argument, NULL, O_HELP }

struct tool_common {
	const char *dev;	/* send: --dev, or the route's interface */
	enum dmt_provider provider;
	uint64_t size;		/* send with --provider fd, 0: the dma-buf's */
	bool size_set;
	unsigned long validate;	/* pattern period, 0: off */
	enum dmt_mode mode;
};
#define TOOL_COMMON_DEFAULTS(sz) \
	{ .provider = DMT_PROVIDER_UDMABUF, .size = (sz), .mode = DMT_MODE_AUTO }

/*
 * Take a shared option for cmd ("send" or "recv", which decides the
 * providers and modes allowed): 1 taken, 0 not a shared option, or
 * EXIT_USAGE after printing the error.  --help prints usage and exits.
 */
int tool_common_opt(const char *cmd, int o, const char *arg, int argc,
		    char **argv, struct tool_common *c);
/* "CMD: bad option ..." or "needs a value" for getopt_long's o (':'). */
int tool_bad_option(const char *cmd, int o, char **argv);
/* --validate, --validate=N, --validate N: the pattern period (7), 2..255. */
int parse_validate(const char *arg, int argc, char **argv,
		   unsigned long *period);
/* The ifindex of --dev, or 0 with err filled (ENODEV). */
unsigned tool_ifindex(const char *dev, struct dmt_err *err);

/*
 * getaddrinfo for a stream socket on port (host "" or NULL: any address):
 * 0, or getaddrinfo's error (errno set for EAI_SYSTEM).
 */
int tool_getaddr(const char *host, unsigned long port, int family,
		 bool passive, struct sockaddr_storage *ss, socklen_t *sslen);
/* "1.2.3.4:80" or "[::1]:80". */
void addr_str(const struct sockaddr *sa, char *buf, size_t len);

/* Summary pieces send and recv share. */
/* "command": the command line as given, -j included. */
void out_command(int argc, char **argv);
/* "fallback_reason": why devmem is not used, null when it is. */
void out_fallback_reason(const char *reason, bool auto_mode);
/* "seconds" and the rates of bytes in s seconds. */
void out_rate(uint64_t bytes, double s);
/* "cpu_user", "cpu_sys" of this process. */
void out_cpu(void);
/* "stopped_by": the signal, null if none. */
void out_stopped_by(void);

double now_s(void);

int cmd_send(int argc, char **argv);
void send_usage(FILE *f);
int cmd_recv(int argc, char **argv);
int cmd_restore(int argc, char **argv);
void recv_usage(FILE *f);
void restore_usage(FILE *f);
int cmd_probe(int argc, char **argv);
void probe_usage(FILE *f);

#endif /* DMT_TOOL_H */
