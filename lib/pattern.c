// SPDX-License-Identifier: MIT
/*
 * pattern.c - the byte pattern `ncdevmem -l -v PERIOD` validates: stream
 * byte k is k % PERIOD + 1, or '\n' where k % PERIOD == PERIOD - 1.
 *
 * Filling and checking go through a template of whole periods on the
 * stack, so the buffer is written (or read) once with memcpy/memcmp.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "dmt-uapi.h"

#define TEMPLATE_SIZE 4096
#define FILL_CHUNK (64u << 10)	/* host-side chunk for unmapped buffers */

static bool period_ok(unsigned period)
{
	return period >= 2 && period <= 255;
}

/*
 * Fill t with whole periods starting at stream position pos; returns how
 * many bytes: a multiple of period, so t repeats itself seamlessly.
 */
static size_t template_fill(unsigned char *t, uint64_t pos, unsigned period)
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

DMT_API void dmt_pattern_fill(void *dst, size_t len, uint64_t pos,
			      unsigned period)
{
	unsigned char t[TEMPLATE_SIZE];
	unsigned char *d = dst;
	size_t n;

	if (!period_ok(period) || !len)
		return;
	n = template_fill(t, pos, period);
	while (len) {
		size_t k = len < n ? len : n;

		memcpy(d, t, k);
		d += k;
		len -= k;
	}
}

DMT_API ssize_t dmt_pattern_check(const void *src, size_t len, uint64_t pos,
				  unsigned period)
{
	unsigned char t[TEMPLATE_SIZE];
	const unsigned char *s = src;
	size_t n, off = 0;

	if (!len)
		return -1;
	if (!period_ok(period))
		return 0;	/* no byte can match an invalid period */
	n = template_fill(t, pos, period);
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
		ret = dmt_dmabuf_sync(buf, true, DMA_BUF_SYNC_WRITE);
		if (ret)
			return ret;
		dmt_pattern_fill((char *)buf->map + off, len, pos, period);
		return dmt_dmabuf_sync(buf, false, DMA_BUF_SYNC_WRITE);
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
