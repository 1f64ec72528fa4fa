/* SPDX-License-Identifier: MIT */
/*
 * ktap.h - what every C test program prints and counts: KTAP lines
 * ("ok N name", "not ok N name", "ok N name # SKIP reason") and the exit
 * code (0 all ok, 1 a failure, 4 everything skipped), plus the open-fd
 * count the leak checks compare.
 */
#ifndef DMT_TEST_KTAP_H
#define DMT_TEST_KTAP_H

#include <dirent.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

struct ktap {
	int n, failed, skipped;
};

static inline __attribute__((format(printf, 3, 4)))
bool check(struct ktap *t, bool ok, const char *fmt, ...)
{
	va_list ap;

	printf("%sok %d ", ok ? "" : "not ", ++t->n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	t->failed += !ok;
	return ok;
}

static inline void skip(struct ktap *t, const char *name, const char *why)
{
	printf("ok %d %s # SKIP %s\n", ++t->n, name, why);
	fflush(stdout);
	t->skipped++;
}

static inline int ktap_exit(const struct ktap *t)
{
	if (t->failed)
		return 1;
	return t->skipped == t->n ? 4 : 0;
}

/* Open fds of this process, not counting the one opendir() uses. */
static inline int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;
}

#endif /* DMT_TEST_KTAP_H */
