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
#include <sys/ioctl.h>
#include <time.h>
#include <linux/dma-buf.h>

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

/*
 * Where udmabuf exists (the VM): what a receiver pays per 4 KiB devmem
 * fragment to validate it, MB/s: dmt_dmabuf_read into a bounce buffer (a
 * DMA_BUF_IOCTL_SYNC pair and a memcpy per fragment) then the check, as
 * `devmemtcp recv --validate` does; against the check straight from the
 * mapping inside one sync bracket per 64 fragments (a receive call's
 * worth), as examples/receiver.c does.
 */
static void dmabuf_paths(unsigned period, double secs)
{
	DMT_OPTS(dmt_dmabuf_opts, bo, .provider = DMT_PROVIDER_UDMABUF, .size = 4 << 20);
	struct dmt_err err;
	struct dmt_dmabuf *b = dmt_dmabuf_new(&bo, &err);
	unsigned char bounce[4096];
	const unsigned char *map;
	double t0, t;
	uint64_t bytes;
	int bad = 0;

	if (!b) {
		printf("# no udmabuf here: the per-fragment read paths are not measured\n");
		return;
	}
	map = dmt_dmabuf_map(b);
	dmt_dmabuf_fill(b, 0, 4 << 20, 0, period);
	bytes = 0;
	t0 = now();
	do {
		for (size_t off = 0; off < (4u << 20); off += 4096) {
			if (dmt_dmabuf_read(b, off, bounce, 4096) ||
			    dmt_pattern_check(bounce, 4096, off, period) != -1)
				bad++;
			bytes += 4096;
		}
		t = now();
	} while (t - t0 < secs);
	printf("%-8u %-8s %12s %12.0f   dmt_dmabuf_read + check per 4 KiB fragment\n", period,
	       "4096", "-", bytes / (t - t0) / 1e6);
	bytes = 0;
	t0 = now();
	do {
		for (size_t off = 0; off < (4u << 20); off += 64 * 4096) {
			struct dma_buf_sync s = { .flags = DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ };

			ioctl(dmt_dmabuf_fd(b), DMA_BUF_IOCTL_SYNC, &s);
			for (size_t k = 0; k < 64 * 4096; k += 4096)
				if (dmt_pattern_check(map + off + k, 4096, off + k, period) != -1)
					bad++;
			s.flags = DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ;
			ioctl(dmt_dmabuf_fd(b), DMA_BUF_IOCTL_SYNC, &s);
			bytes += 64 * 4096;
		}
		t = now();
	} while (t - t0 < secs);
	printf("%-8u %-8s %12s %12.0f   check from the mapping, one sync bracket per 64 "
	       "fragments\n", period, "4096", "-", bytes / (t - t0) / 1e6);
	if (bad)
		printf("# %d dma-buf checks failed\n", bad);
	dmt_dmabuf_free(b);
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
	dmabuf_paths(7, secs);
	if (bad)
		printf("# %d checks reported a mismatch on valid data\n", bad);
	free(buf);
	return bad ? 1 : 0;
}
