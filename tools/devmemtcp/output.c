// SPDX-License-Identifier: MIT
/*
 * output.c - text and JSON from the same print calls (see output.h).
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "devmemtcp.h"
#include "output.h"

#define OUT_DEPTH 8

static struct {
	bool json;
	int depth;			/* open JSON objects */
	bool first[OUT_DEPTH];		/* nothing written in this one yet */
	char close[OUT_DEPTH];		/* '}' or ']' */
} o;

void out_init(bool json)
{
	memset(&o, 0, sizeof(o));
	o.json = json;
}

bool out_json(void)
{
	return o.json;
}

static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = *s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c == '\t')
			fputs("\\t", f);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

/* JSON: the separator and "key": before a value. */
static void json_key(const char *key)
{
	if (o.depth > 0) {
		if (!o.first[o.depth - 1])
			fputs(", ", stdout);
		o.first[o.depth - 1] = false;
	}
	if (key) {
		json_string(stdout, key);
		fputs(": ", stdout);
	}
}

static void json_open_c(const char *key, char open, char close)
{
	json_key(key);
	fputc(open, stdout);
	if (o.depth < OUT_DEPTH) {
		o.first[o.depth] = true;
		o.close[o.depth] = close;
	}
	o.depth++;
}

static void json_open(const char *key)
{
	json_open_c(key, '{', '}');
}

static void json_close(void)
{
	o.depth--;
	fputc(o.depth < OUT_DEPTH && o.close[o.depth] ? o.close[o.depth] : '}', stdout);
}

void out_begin(void)
{
	if (o.json)
		json_open(NULL);
}

void out_end(void)
{
	if (!o.json)
		return;
	while (o.depth > 0)
		json_close();
	fputc('\n', stdout);
	fflush(stdout);
}

void out_obj_open(const char *key, const char *text_fmt)
{
	if (o.json)
		json_open(key);
	else if (text_fmt)
		fputs(text_fmt, stdout);
}

void out_obj_close(void)
{
	if (o.json && o.depth > 1)
		json_close();
}

void out_arr_open(const char *key, const char *text_fmt)
{
	if (o.json)
		json_open_c(key, '[', ']');
	else if (text_fmt)
		fputs(text_fmt, stdout);
}

void out_arr_close(void)
{
	out_obj_close();
}

void out_str(const char *key, const char *text_fmt, const char *val)
{
	if (o.json) {
		json_key(key);
		if (val)
			json_string(stdout, val);
		else
			fputs("null", stdout);
	} else if (text_fmt) {
		printf(text_fmt, val ? val : "-");
	}
}

void out_u64(const char *key, const char *text_fmt, uint64_t val)
{
	if (o.json) {
		json_key(key);
		printf("%" PRIu64, val);
	} else if (text_fmt) {
		printf(text_fmt, val);
	}
}

void out_int(const char *key, const char *text_fmt, long long val)
{
	if (o.json) {
		json_key(key);
		printf("%lld", val);
	} else if (text_fmt) {
		printf(text_fmt, val);
	}
}

void out_dbl(const char *key, const char *text_fmt, double val)
{
	if (o.json) {
		json_key(key);
		if (isfinite(val))
			printf("%.6g", val);
		else
			fputs("null", stdout);
	} else if (text_fmt) {
		printf(text_fmt, val);
	}
}

void out_bool(const char *key, const char *text_fmt, bool val)
{
	if (o.json) {
		json_key(key);
		fputs(val ? "true" : "false", stdout);
	} else if (text_fmt) {
		printf(text_fmt, val ? "yes" : "no");
	}
}

void out_null(const char *key, const char *text_fmt)
{
	if (o.json) {
		json_key(key);
		fputs("null", stdout);
	} else if (text_fmt) {
		fputs(text_fmt, stdout);
	}
}

void out_text(const char *s)
{
	if (!o.json)
		fputs(s, stdout);
}

void out_error(const struct dmt_err *err, int exit_code)
{
	char buf[1024];

	if (!o.json) {
		fflush(stdout);
		if (err->code)
			fprintf(stderr, "error: %s\n", dmt_err_str(err, buf, sizeof(buf)));
		else if (err->fix[0])
			fprintf(stderr, "error: %s (%s)\n", err->what, err->fix);
		else
			fprintf(stderr, "error: %s\n", err->what);
		return;
	}
	json_open("error");
	out_str("what", NULL, err->what);
	out_str("kernel", NULL, err->extack[0] ? err->extack : NULL);
	out_str("fix", NULL, err->fix[0] ? err->fix : NULL);
	out_int("code", NULL, err->code);
	out_str("errno", NULL, err->code ? strerrorname_np(-err->code) : NULL);
	out_str("message", NULL, err->code ? dmt_err_str(err, buf, sizeof(buf)) : err->what);
	out_int("exit", NULL, exit_code);
	json_close();
}
