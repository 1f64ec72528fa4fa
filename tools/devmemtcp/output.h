/* SPDX-License-Identifier: MIT */
/*
 * output.h - one set of print calls for text and JSON (iproute2's
 * print_*() idea).  Each call names a JSON key and a printf format for the
 * text; in JSON mode the format is ignored, in text mode the key is, and a
 * NULL format prints nothing.  Text goes to stdout as it comes; JSON is
 * written as one object when out_end() closes it.
 */
#ifndef DMT_TOOL_OUTPUT_H
#define DMT_TOOL_OUTPUT_H

#include <stdbool.h>
#include <stdint.h>

struct dmt_err;

void out_init(bool json);
bool out_json(void);

/* The top-level object: "{" ... "}\n" in JSON, nothing in text. */
void out_begin(void);
void out_end(void);
/* A nested object "key": { ... }; text_fmt (no conversion) prints in text. */
void out_obj_open(const char *key, const char *text_fmt);
void out_obj_close(void);
/*
 * An array "key": [ ... ] (key NULL inside an array); its elements are
 * objects opened with out_obj_open(NULL, ...) or values with a NULL key.
 */
void out_arr_open(const char *key, const char *text_fmt);
void out_arr_close(void);

void out_str(const char *key, const char *text_fmt, const char *val);
void out_u64(const char *key, const char *text_fmt, uint64_t val);
void out_int(const char *key, const char *text_fmt, long long val);
void out_dbl(const char *key, const char *text_fmt, double val);
void out_bool(const char *key, const char *text_fmt, bool val);
void out_null(const char *key, const char *text_fmt);
/* Text only: a literal string, e.g. "\n". */
void out_text(const char *s);

/*
 * An error: in text "error: <dmt_err_str>" on stderr; in JSON an "error"
 * object (what, kernel, fix, code, errno, exit) in the open object.  An err
 * with code 0 is a failure that no errno describes: its what says it all.
 */
void out_error(const struct dmt_err *err, int exit_code);

#endif /* DMT_TOOL_OUTPUT_H */
