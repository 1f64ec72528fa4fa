// SPDX-License-Identifier: MIT
/*
 * restore.c - `devmemtcp restore [IFNAME]`: undo the NIC changes recorded
 * in undo logs (LOG_DIR/net-NETNS/IFNAME.undo) that a `devmemtcp recv`, or
 * any libdevmemtcp program, left when it was killed or crashed part way.
 * One log (IFNAME) or every log of this network namespace; one line per
 * log, one error line per failure with its fix, an exit code per failure
 * class (the first failure's).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "output.h"
#include "tool.h"

struct restore_cfg {
	const char *ifname;	/* NULL: every log */
	const char *log_dir;	/* NULL: the library's (/run/devmemtcp) */
	int argc;
	char **argv;
};

struct restore_run {
	unsigned logs, restored, failed;
	bool arr_open;
};

void restore_usage(FILE *f)
{
	fprintf(f,
		"devmemtcp [-j] restore [IFNAME] [--log-dir DIR]\n"
		"  undo the NIC changes (tcp-data-split, hds-thresh, RSS table, ntuple\n"
		"  rules and feature, rx-gro-hw) that a killed `devmemtcp recv` left,\n"
		"  from the undo log written before each change; IFNAME: that\n"
		"  interface's log, else every log of this network namespace\n"
		"  --log-dir DIR       where the logs are (/run/devmemtcp)\n");
}

static int parse(int argc, char **argv, struct restore_cfg *c)
{
	enum { O_LOGDIR = O_OWN };
	static const struct option opts[] = {
		{ "log-dir", required_argument, NULL, O_LOGDIR },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, O_HELP },
		{ 0 }
	};
	int o;

	*c = (struct restore_cfg){ .argc = argc, .argv = argv };
	optind = 0;
	opterr = 0;
	while ((o = getopt_long(argc, argv, ":j", opts, NULL)) != -1) {
		switch (o) {
		case 'j':
			out_init(true);
			break;
		case O_HELP:
			restore_usage(stdout);
			exit(EXIT_OK);
		case O_LOGDIR:
			if (!*optarg)
				return tool_usage_err("give a directory, e.g. --log-dir /run/devmemtcp",
						      "--log-dir: empty");
			c->log_dir = optarg;
			break;
		default:
			return tool_bad_option("restore", o, argv);
		}
	}
	if (optind < argc)
		c->ifname = argv[optind++];
	if (optind < argc)
		return tool_usage_err("devmemtcp restore [IFNAME]: one interface, or none for every log",
				      "restore: unexpected argument '%s'", argv[optind]);
	return 0;
}

/* The exit code of a failed restore of one log. */
static int restore_exit(const struct dmt_err *e)
{
	switch (e->code) {
	case -EBUSY:
		return EXIT_NIC_BUSY;
	case -ENOENT:
		return EXIT_NO_LOG;
	case -EBADMSG:
		return EXIT_BAD_LOG;
	case -ESTALE:
		return EXIT_STALE_LOG;
	case -ENODEV:
		/* the library says "is gone" when a log names it */
		return strstr(e->what, "no undo log") ? EXIT_NODEV : EXIT_STALE_LOG;
	case -EINVAL:
		return EXIT_USAGE;
	}
	return EXIT_RUNTIME;
}

/* "tcp-data-split/hds-thresh, RSS table, 2 ntuple rules, ntuple feature" */
static void what_text(const struct dmt_nic_log *l, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
#define ADD(...) do { \
		int w = snprintf(buf + n, len - n, "%s", n ? ", " : ""); \
		if (w > 0 && (size_t)w < len - n) \
			n += w; \
		w = snprintf(buf + n, len - n, __VA_ARGS__); \
		if (w > 0 && (size_t)w < len - n) \
			n += w; \
	} while (0)
	if (l->rings)
		ADD("tcp-data-split/hds-thresh");
	if (l->rss)
		ADD("RSS table");
	if (l->rules)
		ADD("%u ntuple rule%s", l->rules, l->rules == 1 ? "" : "s");
	if (l->ntuple)
		ADD("ntuple feature off");
	if (l->sz >= offsetof(struct dmt_nic_log, gro_hw) + sizeof(l->gro_hw) && l->gro_hw)
		ADD("rx-gro-hw off");
#undef ADD
	if (!n)
		snprintf(buf, len, "nothing needed putting back");
}

static int report(const struct dmt_nic_log *l, void *arg)
{
	struct restore_run *r = arg;
	char what[160], sentence[1024];
	bool alive = l->pid > 0 && (!kill(l->pid, 0) || errno == EPERM);

	r->logs++;
	if (!l->err.code)
		r->restored++;
	else
		r->failed++;
	if (out_json()) {
		if (!r->arr_open) {
			out_arr_open("logs", NULL);
			r->arr_open = true;
		}
		out_obj_open(NULL, NULL);
		out_str("ifname", NULL, l->ifname);
		out_u64("ifindex", NULL, l->ifindex);
		out_str("path", NULL, l->path);
		out_int("pid", NULL, l->pid);
		out_bool("pid_alive", NULL, alive);
		out_u64("changes", NULL, l->changes);
		out_u64("undone", NULL, l->undone);
		out_bool("rings", NULL, l->rings);
		out_bool("rss", NULL, l->rss);
		out_u64("rules", NULL, l->rules);
		out_bool("ntuple", NULL, l->ntuple);
		out_bool("gro_hw", NULL, l->sz >= offsetof(struct dmt_nic_log, gro_hw) + sizeof(l->gro_hw) && l->gro_hw);
		out_bool("restored", NULL, !l->err.code);
		if (l->err.code)
			out_str("error", NULL, dmt_err_str(&l->err, sentence, sizeof(sentence)));
		else
			out_null("error", NULL);
		out_obj_close();
		return 0;
	}
	what_text(l, what, sizeof(what));
	if (!l->err.code)
		printf("%s: restored %u change%s left by pid %d%s: %s; log removed\n",
		       l->ifname, l->undone, l->undone == 1 ? "" : "s", l->pid,
		       alive ? "" : " (gone)", what);
	else if (l->undone)
		printf("%s: undid %u of %u changes (%s); the rest stays in %s\n",
		       l->ifname, l->undone, l->changes, what, l->path);
	/* the first failure's error line comes from cmd_restore (exit code) */
	if (l->err.code && r->failed > 1)
		fprintf(stderr, "error: %s\n", dmt_err_str(&l->err, sentence, sizeof(sentence)));
	return 0;
}

int cmd_restore(int argc, char **argv)
{
	DMT_OPTS(dmt_nic_opts, no);
	struct restore_run r = { 0 };
	struct restore_cfg c;
	struct dmt_err err = { 0 };
	int rc, ret;

	rc = parse(argc, argv, &c);
	if (rc)
		return rc;
	no.log_dir = c.log_dir;
	out_begin();
	out_command(c.argc, c.argv);
	ret = dmt_nic_restore_log(c.ifname, &no, report, &r, &err);
	if (!r.arr_open)
		out_arr_open("logs", NULL);
	out_arr_close();
	out_u64("restored", NULL, r.restored);
	if (ret >= 0 && !r.logs && !out_json())
		printf("no undo logs: nothing to restore\n");
	rc = EXIT_OK;
	if (ret < 0) {
		rc = restore_exit(&err);
		if (!err.code)
			tool_err(&err, ret, NULL, "restore %s", c.ifname ? c.ifname : "the undo logs");
		out_error(&err, rc);
	}
	out_end();
	return rc;
}
