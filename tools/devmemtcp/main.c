// SPDX-License-Identifier: MIT
/*
 * devmemtcp - send TCP payload straight from a dma-buf and receive it
 * straight into one (devmem TCP), with the MSG_ZEROCOPY and copy
 * fallbacks, and probe what a NIC lacks for it; on libdevmemtcp.
 *
 * main.c: global options, the command table, signals, and the hidden
 * DEVMEMTCP_FD_CHECK=1 self-check (fds open at exit == fds open at start).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "output.h"
#include "tool.h"

volatile sig_atomic_t tool_stop;

static const struct cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
} cmds[] = {
	{ "send", cmd_send, "send from a dma-buf to a TCP receiver" },
	{ "recv", cmd_recv, "receive one TCP stream into a dma-buf bound to RX queues" },
	{ "probe", cmd_probe, "check what devmem RX and TX need on interfaces" },
	{ "restore", cmd_restore, "undo NIC changes a killed recv left (undo logs in /run/devmemtcp)" },
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: devmemtcp [-j] COMMAND [ARGS...]\n"
		"       devmemtcp --version | --help\n"
		"\n"
		"global options:\n"
		"  -j, --json      one JSON object on stdout (errors too)\n"
		"  -V, --version   print the library version\n"
		"  -h, --help      this help\n"
		"\n"
		"commands:\n");
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(f, "  %-14s  %s\n", cmds[i].name, cmds[i].help);
	fprintf(f, "\n");
	send_usage(f);
	fprintf(f, "\n");
	recv_usage(f);
	fprintf(f, "\n");
	probe_usage(f);
	fprintf(f, "\n");
	restore_usage(f);
	fprintf(f,
		"\n"
		"exit status:\n"
		"  0  success\n"
		"  1  other runtime error\n"
		"  2  usage error\n"
		"  3  no such interface\n"
		"  4  devmem refused (device, driver or buffer cannot do it); probe:\n"
		"     devmem RX or TX would not work on an interface named\n"
		"  5  bad buffer (not a dma-buf, provider unavailable)\n"
		"  6  size, chunk, offset or length zero or past the buffer\n"
		"  7  peer unknown, unreachable or refusing\n"
		"  8  peer closed or reset the connection mid-stream\n"
		"  9  recv: --queues out of range, or too few RX queues\n"
		" 10  recv: queue already bound (another dma-buf, io_uring, AF_XDP)\n"
		" 11  recv: header split (tcp-data-split) unsupported or off\n"
		" 12  recv: no queue management ops (bind-rx EOPNOTSUPP)\n"
		" 13  recv: listen port in use\n"
		" 14  recv: a received byte is not the pattern's (--validate)\n"
		" 15  recv: payload arrived linear, with --fail-on-linear\n"
		" 16  recv: RSS or ntuple setup refused\n"
		" 17  recv, restore: the NIC is being set up by another process, has\n"
		"     changes left unrestored (devmemtcp restore), or a queue is bound\n"
		" 18  restore: no undo log for the interface (nothing to restore)\n"
		" 19  restore: the undo log is corrupt\n"
		" 20  restore: the interface is gone or was recreated\n"
		"  129, 130, 131, 143  stopped by SIGHUP, SIGINT, SIGQUIT, SIGTERM\n"
		"     (summary printed, NIC restored)\n"
		"\n"
		"see devmemtcp(8), devmemtcp(7)\n");
}

static void on_signal(int sig)
{
	tool_stop = sig;
}

/* Open fds, or -1 if /proc is not there (the directory's own fd counts). */
static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	const char *check = getenv("DEVMEMTCP_FD_CHECK");
	int fds0 = check && *check == '1' ? count_fds() : -1;
	struct sigaction sa = { .sa_handler = on_signal };	/* no SA_RESTART */
	bool json = false;
	int c, rc = -1;

	opterr = 0;	/* our own one-line errors */
	while ((c = getopt_long(argc, argv, "+jVh", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'V':
			printf("devmemtcp %s\n", dmt_version());
			return EXIT_OK;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			out_init(json);
			return tool_usage_err("see `devmemtcp --help`", "bad option '%s'",
					      argv[optind - 1]);
		}
	}
	out_init(json);
	if (optind >= argc)
		return tool_usage_err("name one, e.g. `devmemtcp send HOST --dev IFNAME`; see `devmemtcp --help`",
				      "no command given");

	sigemptyset(&sa.sa_mask);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGQUIT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(argv[optind], cmds[i].name))
			rc = cmds[i].fn(argc - optind, argv + optind);
	if (rc < 0)
		return tool_usage_err("see `devmemtcp --help` for the commands",
				      "unknown command '%s'", argv[optind]);

	if (fds0 >= 0) {
		int fds1 = count_fds();

		if (fds1 != fds0) {
			fprintf(stderr, "error: DEVMEMTCP_FD_CHECK: %d fds open at start, %d at exit (an fd leaked: close it on every path)\n",
				fds0, fds1);
			return EXIT_RUNTIME;
		}
	}
	return rc;
}
