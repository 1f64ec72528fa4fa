// SPDX-License-Identifier: MIT
/*
 * pattern.c - the byte pattern `ncdevmem -l -v PERIOD` validates: stream
 * byte k is k % PERIOD + 1, or '\n' where k % PERIOD == PERIOD - 1.
 *
 * Filling and checking go BLOCK bytes at a time against a table of one
 * period plus BLOCK bytes from phase 0: the BLOCK bytes from stream
 * position k are the table's from k % PERIOD, and the next block's phase
 * is this one's plus BLOCK % PERIOD, wrapped once.  The table costs
 * PERIOD + BLOCK byte stores per call (a 4 KiB fragment is checked in
 * 128 steps of four 8-byte compares), so short calls are cheap too; only
 * the block holding a mismatch is looked at byte by byte.  Checks of 16
 * KiB and more memcmp against a 4 KiB template of whole periods instead.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "dmt-uapi.h"

#define BLOCK 32		/* bytes per step: four 64-bit words */
#define MAX_PERIOD 255
#define TEMPLATE_SIZE 4096	/* long checks: whole periods to memcmp */
#define LONG_CHECK (16u << 10)	/* from here memcmp wins */
#define FILL_CHUNK (64u << 10)	/* host-side chunk for unmapped buffers */

static bool period_ok(unsigned period)
{
	return period >= 2 && period <= MAX_PERIOD;
}

/* t[i] = the pattern byte at phase i % period, for i < period + BLOCK. */
static void phase_table(unsigned char *t, unsigned period)
{
	unsigned r = 0;

	for (unsigned i = 0; i < period + BLOCK; i++) {
		t[i] = r == period - 1 ? '\n' : r + 1;
		if (++r == period)
			r = 0;
	}
}

static inline uint64_t load64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));	/* one unaligned load */
	return v;
}

DMT_API void dmt_pattern_fill(void *dst, size_t len, uint64_t pos,
			      unsigned period)
{
	unsigned char t[MAX_PERIOD + BLOCK];
	unsigned char *d = dst;
	unsigned r, step;
	size_t i = 0;

	if (!period_ok(period) || !len)
		return;
	phase_table(t, period);
	r = pos % period;
	step = BLOCK % period;
	for (; i + BLOCK <= len; i += BLOCK) {
		memcpy(d + i, t + r, BLOCK);
		r += step;
		if (r >= period)
			r -= period;
	}
	memcpy(d + i, t + r, len - i);	/* < BLOCK bytes: inside the table */
}

/*
 * Long buffers: memcmp (the C library's vector code) against a template
 * of whole periods, itself filled a block at a time; then the byte loop
 * only in the template-sized piece that differs.
 */
static ssize_t check_long(const unsigned char *s, size_t len, uint64_t pos,
			  unsigned period)
{
	unsigned char t[TEMPLATE_SIZE];
	size_t n = TEMPLATE_SIZE / period * period, off = 0;

	dmt_pattern_fill(t, n, pos, period);
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

DMT_API ssize_t dmt_pattern_check(const void *src, size_t len, uint64_t pos,
				  unsigned period)
{
	unsigned char t[MAX_PERIOD + BLOCK];
	const unsigned char *s = src;
	unsigned r, step;
	size_t i = 0;

	if (!len)
		return -1;
	if (!period_ok(period))
		return 0;	/* no byte can match an invalid period */
	if (len >= LONG_CHECK)
		return check_long(s, len, pos, period);
	phase_table(t, period);
	r = pos % period;
	step = BLOCK % period;
	for (; i + BLOCK <= len; i += BLOCK) {
		const unsigned char *a = s + i, *b = t + r;

		if ((load64(a) ^ load64(b)) | (load64(a + 8) ^ load64(b + 8)) |
		    (load64(a + 16) ^ load64(b + 16)) | (load64(a + 24) ^ load64(b + 24)))
			break;	/* the byte loop finds it within BLOCK */
		r += step;
		if (r >= period)
			r -= period;
	}
	for (; i < len; i++) {
		if (s[i] != t[r])
			return i;
		if (++r == period)
			r = 0;
	}
	return -1;
}

DMT_API int dmt_dmabuf_fill(struct dmt_dmabuf *buf, size_t off, size_t len,
			    uint64_t pos, unsigned period)
{
	unsigned char *chunk;
	int ret;

	if (!buf || !period_ok(period))
		return -EINVAL;
	if (off > buf->size || len > buf->size - off)
		return -ERANGE;
	if (!len)
		return 0;

	if (buf->map) {
		ret = dmt_dmabuf_cpu_sync(buf, true, DMA_BUF_SYNC_WRITE);
		if (ret)
			return ret;
		dmt_pattern_fill((char *)buf->map + off, len, pos, period);
		return dmt_dmabuf_cpu_sync(buf, false, DMA_BUF_SYNC_WRITE);
	}

	/* no mapping (cuda): build the pattern on the host, copy it over */
	chunk = malloc(len < FILL_CHUNK ? len : FILL_CHUNK);
	if (!chunk)
		return -ENOMEM;
	ret = 0;
	while (len && !ret) {
		size_t k = len < FILL_CHUNK ? len : FILL_CHUNK;

		dmt_pattern_fill(chunk, k, pos, period);
		ret = dmt_dmabuf_write(buf, off, chunk, k);
		off += k;
		pos += k;
		len -= k;
	}
	free(chunk);
	return ret;
}
