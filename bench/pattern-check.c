// SPDX-License-Identifier: MIT
/*
 * pattern-check: MB/s of libdevmemtcp's pattern check (dmt_pattern_check,
 * word-at-a-time against a one-period table) next to 0.1's (a 4 KiB
 * template of whole periods built per call, then memcmp), on buffers of a
 * dma-buf fragment's size (4 KiB: what a receiver checks per fragment)
 * and larger.  Numbers, not a verdict: run it where you want to know
 * (`build/bench/pattern-check [SECONDS_PER_CASE]`; in the VM through
 * vm/run).
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "devmemtcp.h"

#define TEMPLATE_SIZE 4096

/* 0.1's check, for comparison. */
static size_t old_template(unsigned char *t, uint64_t pos, unsigned period)
{
	size_t n = TEMPLATE_SIZE / period * period;
	unsigned r = pos % period;

	for (size_t i = 0; i < n; i++) {
		t[i] = r == period - 1 ? '\n' : r + 1;
		if (++r == period)
			r = 0;
	}
	return n;
}

static ssize_t old_check(const void *src, size_t len, uint64_t pos, unsigned period)
{
	unsigned char t[TEMPLATE_SIZE];
	const unsigned char *s = src;
	size_t n, off = 0;

	if (!len)
		return -1;
	if (period < 2 || period > 255)
		return 0;
	n = old_template(t, pos, period);
	while (off < len) {
		size_t k = len - off < n ? len - off : n;

		if (memcmp(s + off, t, k))
			for (size_t i = 0; i < k; i++)
				if (s[off + i] != t[i])
					return off + i;
		off += k;
	}
	return -1;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* MB/s of check over buf in pieces of `piece` bytes for about secs. */
static double rate(ssize_t (*check)(const void *, size_t, uint64_t, unsigned),
		   const unsigned char *buf, size_t size, size_t piece, unsigned period,
		   double secs, int *bad)
{
	double t0 = now(), t;
	uint64_t bytes = 0;

	do {
		for (size_t off = 0; off < size; off += piece) {
			if (check(buf + off, piece, off, period) != -1)
				(*bad)++;
			bytes += piece;
		}
		t = now();
	} while (t - t0 < secs);
	return bytes / (t - t0) / 1e6;
}

int main(int argc, char **argv)
{
	static const size_t pieces[] = { 4096, 1500, 65536, 1 << 20 };
	static const unsigned periods[] = { 7, 100, 255 };
	double secs = argc > 1 ? atof(argv[1]) : 0.5;
	size_t size = 4 << 20;
	unsigned char *buf = malloc(size);
	int bad = 0;

	if (!buf)
		return 1;
	printf("# pattern check, MB/s (0.1 = template + memcmp per call; 0.2 = %s)\n",
	       "word-at-a-time");
	printf("%-8s %-8s %12s %12s %8s\n", "period", "piece", "0.1 MB/s", "0.2 MB/s", "ratio");
	for (unsigned i = 0; i < sizeof(periods) / sizeof(periods[0]); i++) {
		/* one stream: piece k starts at stream position k * piece */
		dmt_pattern_fill(buf, size, 0, periods[i]);
		for (unsigned j = 0; j < sizeof(pieces) / sizeof(pieces[0]); j++) {
			size_t piece = pieces[j], usable = size / piece * piece;
			double o = rate(old_check, buf, usable, piece, periods[i], secs, &bad);
			double n = rate(dmt_pattern_check, buf, usable, piece, periods[i], secs, &bad);

			printf("%-8u %-8zu %12.0f %12.0f %7.1fx\n", periods[i], piece, o, n, n / o);
		}
	}
	if (bad)
		printf("# %d checks reported a mismatch on valid data\n", bad);
	free(buf);
	return bad ? 1 : 0;
}
