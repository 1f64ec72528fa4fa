// SPDX-License-Identifier: MIT
/*
 * lib dma-buf: libdevmemtcp's buffers and patterns.  The host provider
 * round-trips writes, reads and pattern fills; the ncdevmem pattern is
 * checked against a byte-by-byte model at odd positions and periods and
 * catches a flipped byte; out-of-range and zero-size calls fail with
 * ERANGE/EINVAL and a sentence with a fix; the fd provider refuses a memfd
 * and a pipe; udmabuf (with its size-limit message and huge pages), a
 * dma-buf heap and CUDA run when present; no fd leaks.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "devmemtcp.h"
#include "ktap.h"

#define UDMABUF_LIMIT "/sys/module/udmabuf/parameters/size_limit_mb"

static void show_err(const struct dmt_err *err)
{
	char line[512];

	printf("# %s\n", dmt_err_str(err, line, sizeof(line)));
}

/* The pattern, one byte at a time, as the header defines it. */
static unsigned char model(uint64_t k, unsigned period)
{
	return k % period == period - 1 ? '\n' : k % period + 1;
}

/* ncdevmem's validate_buffer seed walk, from stream position 0. */
static bool ncdevmem_accepts(const unsigned char *p, size_t len, unsigned period)
{
	unsigned char seed = 1;

	for (size_t i = 0; i < len; i++) {
		if (p[i] != (seed ? seed : '\n'))
			return false;
		if (++seed == period)
			seed = 0;
	}
	return true;
}

static void test_version_names(struct ktap *t)
{
	static const char *const names[] = { "udmabuf", "heap", "cuda", "fd", "host" };
	enum dmt_provider p;
	bool ok = true;
	char want[16];

	snprintf(want, sizeof(want), "%d.%d", DMT_VERSION_MAJOR, DMT_VERSION_MINOR);
	check(t, !strcmp(dmt_version(), want), "dmt_version() is \"%s\"", want);

	for (unsigned i = 0; i < 5; i++)
		ok &= !dmt_provider_parse(names[i], &p) &&
		      !strcmp(dmt_provider_name(p), names[i]);
	ok &= dmt_provider_parse("gpu", &p) == -EINVAL;
	ok &= dmt_provider_parse(NULL, &p) == -EINVAL;
	ok &= !strcmp(dmt_provider_name(0), "unknown");
	check(t, ok, "provider names parse and print back; unknown ones give EINVAL");
}

static void test_pattern(struct ktap *t)
{
	static const unsigned periods[] = { 2, 3, 7, 64, 100, 254, 255 };
	static const uint64_t positions[] = { 0, 1, 5, 12345, (1ull << 40) + 3 };
	size_t len = 3 * 4096 + 17;
	unsigned char *a = malloc(len + 64), *b = malloc(len + 64);
	bool ok = true, seam = true, flip = true;

	for (unsigned i = 0; i < sizeof(periods) / sizeof(periods[0]); i++)
		for (unsigned j = 0; j < sizeof(positions) / sizeof(positions[0]); j++) {
			unsigned p = periods[i];
			uint64_t pos = positions[j];
			size_t cut = 1 + (pos + p) % 4099;

			/* the guard bytes after len stay untouched */
			memset(a, 0xee, len + 64);
			dmt_pattern_fill(a, len, pos, p);
			for (size_t k = 0; k < len; k++)
				if (a[k] != model(pos + k, p)) {
					printf("# period %u pos %llu: byte %zu is %u, want %u\n",
					       p, (unsigned long long)pos, k, a[k],
					       model(pos + k, p));
					ok = false;
					break;
				}
			for (size_t k = len; k < len + 64; k++)
				ok &= a[k] == 0xee;
			ok &= dmt_pattern_check(a, len, pos, p) == -1;

			/* two fills that meet at cut equal one fill */
			dmt_pattern_fill(b, cut, pos, p);
			dmt_pattern_fill(b + cut, len - cut, pos + cut, p);
			seam &= !memcmp(a, b, len);

			/* a flipped byte is found where it is */
			for (size_t at = 0; at < len; at += 1 + at * 3) {
				a[at] ^= 0x20;
				flip &= dmt_pattern_check(a, len, pos, p) == (ssize_t)at;
				a[at] ^= 0x20;
			}
			flip &= dmt_pattern_check(a + 1, len - 1, pos, p) == 0;
		}
	check(t, ok, "dmt_pattern_fill matches the model at odd positions and periods");
	check(t, seam, "pattern fills that meet at an odd position join seamlessly");
	check(t, flip, "dmt_pattern_check finds a flipped byte at its index");

	dmt_pattern_fill(a, 4000, 0, 100);
	check(t, ncdevmem_accepts(a, 4000, 100) && !ncdevmem_accepts(a, 4000, 99),
	      "the pattern from position 0 is what ncdevmem -v 100 accepts");

	memset(a, 0x55, 64);
	dmt_pattern_fill(a, 64, 0, 1);
	dmt_pattern_fill(a, 64, 0, 256);
	ok = a[0] == 0x55 && a[63] == 0x55;
	ok &= dmt_pattern_check(a, 64, 0, 1) == 0 && dmt_pattern_check(a, 64, 0, 256) == 0;
	ok &= dmt_pattern_check(a, 0, 0, 10) == -1;
	check(t, ok, "periods 1 and 256 are refused: nothing filled, byte 0 reported");
	free(a);
	free(b);
}

/* Write, read back and pattern-fill a buffer of any provider. */
/* The first byte that differs from the model, or -1: the reference check. */
static ssize_t model_check(const unsigned char *p, size_t len, uint64_t pos, unsigned period)
{
	for (size_t k = 0; k < len; k++)
		if (p[k] != model(pos + k, period))
			return k;
	return -1;
}

/*
 * The word-at-a-time fill and check against the byte model, everywhere
 * their blocks can go wrong: every period 2..255, lengths around the
 * block size and a period's multiple, and long ones (the memcmp path),
 * every alignment of the buffer,
 * stream positions at 0, inside a period, and near 2^64; a flipped byte at
 * each index of short buffers (every block and tail position), and
 * patterned data of the wrong phase or period.
 */
static void test_pattern_exhaustive(struct ktap *t)
{
	static const uint64_t positions[] = { 0, 1, 31, 254, 4095, 1000003,
					      UINT64_MAX - 100000, UINT64_MAX - 41000 };
	unsigned char *a = malloc(40000 + 16), *ref = malloc(40000);
	unsigned long cases = 0, bad_fill = 0, bad_check = 0, bad_flip = 0, bad_other = 0;

	for (unsigned p = 2; p <= 255; p++)
		for (unsigned j = 0; j < sizeof(positions) / sizeof(positions[0]); j++) {
			uint64_t pos = positions[j] + p / 3;
			size_t lens[] = { 1, 7, 31, 32, 33, 63, 64, 65, p, p + 1, 2 * p + 5,
					  97, 513, 1024, 16384 + p, 40000 };

			for (unsigned li = 0; li < sizeof(lens) / sizeof(lens[0]); li++) {
				size_t len = lens[li];
				unsigned al = (p + li) % 8;
				unsigned char *b = a + al;

				cases++;
				for (size_t k = 0; k < len; k++)
					ref[k] = model(pos + k, p);
				memset(a, 0xee, len + 16);
				dmt_pattern_fill(b, len, pos, p);
				if (memcmp(b, ref, len) || (al && a[al - 1] != 0xee) ||
				    b[len] != 0xee)
					bad_fill++;
				if (dmt_pattern_check(b, len, pos, p) != -1)
					bad_check++;
				/* flips: all of the short ones, a spread of the long */
				for (size_t at = 0; at < len; at += len <= 97 ? 1 : 1 + at / 2) {
					b[at] ^= 0x01;
					if (dmt_pattern_check(b, len, pos, p) != (ssize_t)at)
						bad_flip++;
					b[at] ^= 0x01;
				}
				/* the wrong phase and the wrong period: the model's answer */
				if (dmt_pattern_check(b, len, pos + 1, p) != model_check(b, len, pos + 1, p) ||
				    (p < 255 && dmt_pattern_check(b, len, pos, p + 1) !=
						model_check(b, len, pos, p + 1)))
					bad_other++;
			}
		}
	check(t, !bad_fill, "pattern fill = the byte model: every period, length, alignment "
	      "and position (%lu cases, %lu wrong)", cases, bad_fill);
	check(t, !bad_check && !bad_flip && !bad_other,
	      "pattern check = the byte model: clean data, a flip at each index, wrong phase "
	      "and period (%lu/%lu/%lu wrong)", bad_check, bad_flip, bad_other);
	free(a);
	free(ref);
}

/*
 * dmt_dmabuf_sync: one bracket around many accesses through the mapping
 * (write, then read back); without a mapping, EOPNOTSUPP naming the copy
 * calls; bad flags, EINVAL naming them, on every kind of buffer.
 */
static void sync_bracket(struct ktap *t, struct dmt_dmabuf *buf, const char *name)
{
	unsigned char *map = dmt_dmabuf_map(buf);
	size_t size = dmt_dmabuf_size(buf);
	bool ok = true;
	int ret;

	ret = dmt_dmabuf_sync(buf, 0x8 | DMT_DMABUF_SYNC_READ);
	ok &= ret == -EINVAL && strstr(dmt_dmabuf_error(buf)->what, "unknown bits");
	ret = dmt_dmabuf_sync(buf, DMT_DMABUF_SYNC_END);
	ok &= ret == -EINVAL && strstr(dmt_dmabuf_error(buf)->what, "no direction") &&
	      strstr(dmt_dmabuf_error(buf)->fix, "DMT_DMABUF_SYNC_READ");
	if (!ok)
		show_err(dmt_dmabuf_error(buf));
	check(t, ok, "%s: dmt_dmabuf_sync with unknown bits or no direction: EINVAL naming it",
	      name);
	if (!map) {
		ret = dmt_dmabuf_sync(buf, DMT_DMABUF_SYNC_START | DMT_DMABUF_SYNC_READ);
		check(t, ret == -EOPNOTSUPP &&
		      strstr(dmt_dmabuf_error(buf)->fix, "dmt_dmabuf_read"),
		      "%s: dmt_dmabuf_sync without a mapping: EOPNOTSUPP naming "
		      "dmt_dmabuf_read/write (%d)", name, ret);
		return;
	}
	ok = true;
	ret = dmt_dmabuf_sync(buf, DMT_DMABUF_SYNC_START | DMT_DMABUF_SYNC_WRITE);
	if (!ret) {
		for (size_t i = 0; i < size; i += 4093)
			map[i] = (i * 31 + 5) & 0xff;
		ret = dmt_dmabuf_sync(buf, DMT_DMABUF_SYNC_END | DMT_DMABUF_SYNC_WRITE);
	}
	if (!ret) {
		ret = dmt_dmabuf_sync(buf, DMT_DMABUF_SYNC_START | DMT_DMABUF_SYNC_RW);
		for (size_t i = 0; !ret && i < size; i += 4093)
			ok &= map[i] == ((i * 31 + 5) & 0xff);
		if (!ret)
			ret = dmt_dmabuf_sync(buf, DMT_DMABUF_SYNC_END | DMT_DMABUF_SYNC_RW);
	}
	if (ret < 0)
		show_err(dmt_dmabuf_error(buf));
	check(t, !ret && ok, "%s: dmt_dmabuf_sync brackets: write %zu bytes through the "
	      "mapping, read them back (%d)", name, (size + 4092) / 4093, ret);
}

static void round_trip(struct ktap *t, struct dmt_dmabuf *buf, const char *name)
{
	size_t size = dmt_dmabuf_size(buf), off = size / 3 + 1, len = size / 3;
	unsigned char *src = malloc(len), *dst = malloc(size);
	ssize_t bad;
	int ret;

	for (size_t i = 0; i < len; i++)
		src[i] = (i * 131 + 7) & 0xff;
	ret = dmt_dmabuf_write(buf, off, src, len);
	if (!ret)
		ret = dmt_dmabuf_read(buf, off, dst, len);
	if (ret)
		printf("# write/read: %s\n", strerror(-ret));
	check(t, !ret && !memcmp(src, dst, len),
	      "%s: write and read back %zu bytes at offset %zu", name, len, off);

	ret = dmt_dmabuf_fill(buf, 0, size, 7, 97);
	if (!ret)
		ret = dmt_dmabuf_read(buf, 0, dst, size);
	bad = ret ? 0 : dmt_pattern_check(dst, size, 7, 97);
	if (ret)
		printf("# fill/read: %s\n", strerror(-ret));
	else if (bad >= 0)
		printf("# byte %zd is %u\n", bad, dst[bad]);
	check(t, !ret && bad == -1, "%s: dmt_dmabuf_fill of all %zu bytes reads back "
	      "as the pattern", name, size);

	ret = dmt_dmabuf_fill(buf, off, 1000, 0, 10);
	if (!ret)
		ret = dmt_dmabuf_read(buf, off - 1, dst, 1002);
	check(t, !ret && dmt_pattern_check(dst + 1, 1000, 0, 10) == -1 &&
	      dst[0] == model(7 + off - 1, 97) && dst[1001] == model(7 + off + 1000, 97),
	      "%s: a fill at odd offset %zu stays inside its range", name, off);
	free(src);
	free(dst);
	sync_bracket(t, buf, name);
}

static void test_host(struct ktap *t)
{
	DMT_OPTS(dmt_dmabuf_opts, o, .provider = DMT_PROVIDER_HOST,
		 .size = (1 << 20) + 1);
	size_t page = sysconf(_SC_PAGESIZE);
	struct dmt_err err;
	struct dmt_dmabuf *buf;
	char c = 0;
	int ret;

	buf = dmt_dmabuf_new(&o, &err);
	if (!check(t, buf, "host provider: 1 MiB + 1 byte buffer")) {
		show_err(&err);
		return;
	}
	check(t, dmt_dmabuf_size(buf) == (1 << 20) + page && dmt_dmabuf_map(buf) &&
	      !dmt_dmabuf_is_dmabuf(buf) && dmt_dmabuf_fd(buf) >= 0 &&
	      dmt_dmabuf_provider(buf) == DMT_PROVIDER_HOST &&
	      fcntl(dmt_dmabuf_fd(buf), F_GETFD) == FD_CLOEXEC,
	      "host provider: size rounded up to a page, mapped, not a dma-buf, "
	      "fd close-on-exec");
	round_trip(t, buf, "host");

	size_t size = dmt_dmabuf_size(buf);
	ret = 0;
	ret |= dmt_dmabuf_write(buf, size, &c, 1) != -ERANGE;
	ret |= dmt_dmabuf_write(buf, size - 1, "ab", 2) != -ERANGE;
	ret |= dmt_dmabuf_read(buf, SIZE_MAX, &c, 1) != -ERANGE;
	ret |= dmt_dmabuf_read(buf, 1, &c, SIZE_MAX) != -ERANGE;
	ret |= dmt_dmabuf_fill(buf, size - 10, 11, 0, 10) != -ERANGE;
	ret |= dmt_dmabuf_write(buf, size, &c, 0) != 0;
	ret |= dmt_dmabuf_write(buf, size - 1, &c, 1) != 0;
	check(t, !ret, "offset/length outside the buffer give ERANGE, the edges do not");
	check(t, dmt_dmabuf_fill(buf, 0, 10, 0, 1) == -EINVAL,
	      "dmt_dmabuf_fill with period 1 gives EINVAL");
	check(t, dmt_dmabuf_sync(NULL, DMT_DMABUF_SYNC_READ) == -EINVAL,
	      "dmt_dmabuf_sync(NULL) gives EINVAL");
	dmt_dmabuf_free(buf);
	dmt_dmabuf_free(NULL);
}

/* Over the memory available: refused before anything is allocated. */
static void test_oversize(struct ktap *t)
{
	DMT_OPTS(dmt_dmabuf_opts, h, .provider = DMT_PROVIDER_HOST, .size = 1ull << 40);
	struct dmt_dmabuf *buf;
	struct dmt_err err;

	buf = dmt_dmabuf_new(&h, &err);
	show_err(&err);
	check(t, !buf && err.code == -ENOMEM && strstr(err.what, "MemAvailable"),
	      "host buffer of 1 TiB: ENOMEM naming the memory available");
	dmt_dmabuf_free(buf);
}

static void test_errors(struct ktap *t)
{
	DMT_OPTS(dmt_dmabuf_opts, zero, .provider = DMT_PROVIDER_HOST);
	struct dmt_err err, e = {
		.code = -EOPNOTSUPP,
		.what = "bind-tx on eth1",
		.extack = "Driver does not support netmem TX",
		.fix = "use the copy mode",
	};
	struct {
		struct dmt_dmabuf_opts o;
		char newer[16];
	} big = { .o = { .sz = sizeof(big), .provider = DMT_PROVIDER_HOST,
			 .size = 4096 } };
	struct dmt_dmabuf *buf;
	char line[512], want[512];

	memset(&err, 0xa5, sizeof(err));
	buf = dmt_dmabuf_new(&zero, &err);
	dmt_err_str(&err, line, sizeof(line));
	printf("# %s\n", line);
	check(t, !buf && err.code == -EINVAL && err.fix[0] && !err.extack[0] &&
	      strstr(line, err.what) && strstr(line, strerror(EINVAL)) &&
	      strstr(line, err.fix) && line[strlen(line) - 1] == ')',
	      "size 0 gives EINVAL and a sentence \"what: why (fix)\"");

	buf = dmt_dmabuf_new(&big.o, &err);
	check(t, buf, "options with a zero tail past the known fields are accepted");
	dmt_dmabuf_free(buf);
	big.newer[3] = 1;
	buf = dmt_dmabuf_new(&big.o, &err);
	show_err(&err);
	check(t, !buf && err.code == -EINVAL,
	      "options with a non-zero byte past the known fields give EINVAL");
	big.o.sz = 2;
	buf = dmt_dmabuf_new(&big.o, NULL);
	check(t, !buf, "options with .sz smaller than itself are refused");

	snprintf(want, sizeof(want), "bind-tx on eth1: %s: kernel says \"Driver does "
		 "not support netmem TX\" (use the copy mode)", strerror(EOPNOTSUPP));
	dmt_err_str(&e, line, sizeof(line));
	check(t, !strcmp(line, want), "dmt_err_str: \"%s\"", line);
	dmt_err_str(&e, line, 12);
	check(t, strlen(line) == 11 && !strncmp(line, want, 11),
	      "dmt_err_str truncates to the buffer");
	e.code = 0;
	check(t, !strcmp(dmt_err_str(&e, line, sizeof(line)), "no error") &&
	      !strcmp(dmt_err_str(NULL, line, sizeof(line)), "no error"),
	      "dmt_err_str of no error says so");
}

static void expect_not_dmabuf(struct ktap *t, int fd, const char *what)
{
	DMT_OPTS(dmt_dmabuf_opts, o, .provider = DMT_PROVIDER_FD, .fd = fd);
	struct dmt_dmabuf *buf;
	struct dmt_err err;
	char want[32];

	snprintf(want, sizeof(want), "fd %d is not a dma-buf", fd);
	buf = dmt_dmabuf_new(&o, &err);
	show_err(&err);
	check(t, !buf && err.code == -EINVAL && strstr(err.what, want) && err.fix[0],
	      "fd provider refuses %s: EINVAL \"%s\"", what, want);
	dmt_dmabuf_free(buf);
}

static void test_fd_provider(struct ktap *t)
{
	DMT_OPTS(dmt_dmabuf_opts, o, .provider = DMT_PROVIDER_FD, .fd = -1);
	struct dmt_dmabuf *buf;
	struct dmt_err err;
	int memfd, pipefd[2];

	memfd = memfd_create("lib-dmabuf", MFD_CLOEXEC);
	if (memfd >= 0 && ftruncate(memfd, 4096) == 0)
		expect_not_dmabuf(t, memfd, "a memfd");
	else
		check(t, false, "fd provider refuses a memfd (memfd: %s)", strerror(errno));
	if (memfd >= 0)
		close(memfd);
	if (pipe2(pipefd, O_CLOEXEC) == 0) {
		expect_not_dmabuf(t, pipefd[0], "a pipe");
		close(pipefd[0]);
		close(pipefd[1]);
	} else {
		check(t, false, "fd provider refuses a pipe (pipe: %s)", strerror(errno));
	}
	buf = dmt_dmabuf_new(&o, &err);
	check(t, !buf && err.code == -EBADF, "fd provider without an fd gives EBADF");
}

static void test_udmabuf(struct ktap *t)
{
	DMT_OPTS(dmt_dmabuf_opts, o, .provider = DMT_PROVIDER_UDMABUF, .size = 1 << 20);
	DMT_OPTS(dmt_dmabuf_opts, imp, .provider = DMT_PROVIDER_FD);
	struct dmt_dmabuf *buf, *same;
	struct dmt_err err;
	char limit[32] = "";
	unsigned char b[4];
	FILE *f;

	buf = dmt_dmabuf_new(&o, &err);
	if (!buf && err.code == -ENOENT && access("/dev/udmabuf", F_OK)) {
		show_err(&err);
		check(t, strstr(err.fix, "udmabuf module") != NULL,
		      "udmabuf absent: ENOENT says to load the udmabuf module");
		skip(t, "udmabuf provider", "/dev/udmabuf absent (CONFIG_UDMABUF)");
		skip(t, "udmabuf size limit", "/dev/udmabuf absent (CONFIG_UDMABUF)");
		skip(t, "udmabuf huge pages", "/dev/udmabuf absent (CONFIG_UDMABUF)");
		return;
	}
	if (!check(t, buf, "udmabuf provider: 1 MiB")) {
		show_err(&err);
		return;
	}
	check(t, dmt_dmabuf_is_dmabuf(buf) && dmt_dmabuf_map(buf) &&
	      lseek(dmt_dmabuf_fd(buf), 0, SEEK_END) == 1 << 20 &&
	      fcntl(dmt_dmabuf_fd(buf), F_GETFD) == FD_CLOEXEC,
	      "udmabuf: a mapped dma-buf of 1 MiB, close-on-exec");
	round_trip(t, buf, "udmabuf");

	imp.fd = dmt_dmabuf_fd(buf);
	same = dmt_dmabuf_new(&imp, &err);
	if (!same)
		show_err(&err);
	check(t, same && dmt_dmabuf_size(same) == 1 << 20 &&
	      dmt_dmabuf_fd(same) != imp.fd && dmt_dmabuf_is_dmabuf(same) &&
	      dmt_dmabuf_write(buf, 4096, "\x01\x02\x03\x04", 4) == 0 &&
	      dmt_dmabuf_read(same, 4096, b, 4) == 0 && !memcmp(b, "\x01\x02\x03\x04", 4),
	      "fd provider imports the udmabuf (dup, size from lseek, same bytes)");
	dmt_dmabuf_free(same);
	dmt_dmabuf_free(buf);

	/* the size limit, lowered for a moment when it can be */
	f = fopen(UDMABUF_LIMIT, "r+");
	if (!f || !fgets(limit, sizeof(limit), f)) {
		skip(t, "udmabuf size limit", "cannot read and write " UDMABUF_LIMIT);
	} else {
		DMT_OPTS(dmt_dmabuf_opts, big, .provider = DMT_PROVIDER_UDMABUF,
			 .size = 2 << 20);

		rewind(f);
		fputs("1\n", f);
		fflush(f);
		buf = dmt_dmabuf_new(&big, &err);
		rewind(f);
		fputs(limit, f);
		fflush(f);
		show_err(&err);
		check(t, !buf && err.code == -EINVAL &&
		      strstr(err.fix, "size_limit_mb=2") && strstr(err.what, "size_limit_mb"),
		      "udmabuf over size_limit_mb: EINVAL saying how to raise it");
		dmt_dmabuf_free(buf);
	}
	if (f)
		fclose(f);

	/*
	 * Linux 7.3's limit is INT_MAX MiB: a 1 TiB request passes it and the
	 * kernel's page arrays (kvmalloc over INT_MAX bytes) warn.  The
	 * library refuses first; raised to that for a moment when it can be.
	 */
	f = fopen(UDMABUF_LIMIT, "r+");
	if (!f || !fgets(limit, sizeof(limit), f)) {
		skip(t, "udmabuf of 1 TiB", "cannot read and write " UDMABUF_LIMIT);
	} else {
		DMT_OPTS(dmt_dmabuf_opts, huge, .provider = DMT_PROVIDER_UDMABUF,
			 .size = 1ull << 40);
		struct dmt_dmabuf *b2;
		struct dmt_err err2;

		rewind(f);
		fputs("2147483647\n", f);
		fflush(f);
		buf = dmt_dmabuf_new(&huge, &err);
		huge.size = 1ull << 39;		/* under the page arrays' limit */
		b2 = dmt_dmabuf_new(&huge, &err2);
		rewind(f);
		fputs(limit, f);
		fflush(f);
		show_err(&err);
		check(t, !buf && err.code == -EINVAL && strstr(err.what, "INT_MAX") &&
		      !strchr(err.what, '\n'),
		      "udmabuf of 1 TiB under size_limit_mb INT_MAX: EINVAL before the kernel");
		show_err(&err2);
		check(t, !b2 && err2.code == -ENOMEM && strstr(err2.what, "MemAvailable"),
		      "udmabuf of 512 GiB: ENOMEM naming the memory available");
		dmt_dmabuf_free(buf);
		dmt_dmabuf_free(b2);
	}
	if (f)
		fclose(f);

	o.size = 1;
	o.hugepages = true;
	buf = dmt_dmabuf_new(&o, &err);
	if (buf) {
		check(t, dmt_dmabuf_size(buf) == 2 << 20,
		      "udmabuf on huge pages: 1 byte rounds up to 2 MiB");
		round_trip(t, buf, "udmabuf huge");
	} else {
		show_err(&err);
		check(t, strstr(err.fix, "/proc/sys/vm/nr_hugepages") != NULL,
		      "udmabuf on huge pages fails naming /proc/sys/vm/nr_hugepages");
	}
	dmt_dmabuf_free(buf);
}

static void test_heap(struct ktap *t)
{
	DMT_OPTS(dmt_dmabuf_opts, o, .provider = DMT_PROVIDER_HEAP, .size = 1 << 20);
	struct dmt_dmabuf *buf;
	struct dmt_err err;

	o.heap = "../null";
	buf = dmt_dmabuf_new(&o, &err);
	check(t, !buf && err.code == -EINVAL, "heap name with a '/' gives EINVAL");
	o.heap = "no-such-heap";
	buf = dmt_dmabuf_new(&o, &err);
	show_err(&err);
	check(t, !buf && err.code == -ENOENT && err.fix[0],
	      "a missing heap gives ENOENT with a fix");

	o.heap = NULL;
	if (access("/dev/dma_heap/system", F_OK)) {
		skip(t, "heap provider", "/dev/dma_heap/system absent "
		     "(CONFIG_DMABUF_HEAPS_SYSTEM)");
		return;
	}
	buf = dmt_dmabuf_new(&o, &err);
	if (!check(t, buf, "heap provider: 1 MiB from the system heap")) {
		show_err(&err);
		return;
	}
	check(t, dmt_dmabuf_is_dmabuf(buf) && dmt_dmabuf_size(buf) == 1 << 20,
	      "heap: a dma-buf of 1 MiB");
	if (dmt_dmabuf_map(buf))
		round_trip(t, buf, "heap");
	else
		skip(t, "heap round trip", "the system heap gave no host mapping");
	dmt_dmabuf_free(buf);
}

/* Open fds whose target contains what ("" counts all); list: print them. */
static int fds_to(const char *what, bool list)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d))) {
		char path[300], target[256];
		ssize_t len;

		if (de->d_name[0] == '.' || atoi(de->d_name) == dirfd(d))
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%s", de->d_name);
		len = readlink(path, target, sizeof(target) - 1);
		target[len > 0 ? len : 0] = '\0';
		if (!strstr(target, what))
			continue;
		n++;
		if (list)
			printf("#   fd %s -> %s\n", de->d_name, target);
	}
	closedir(d);
	return n;
}

/*
 * Returns the number of fds the CUDA driver keeps open for the process
 * after the buffers are freed (cuInit cannot be undone): a GPU run found
 * 13.  A second buffer must add none, and no dma-buf may stay open.
 */
static int test_cuda(struct ktap *t)
{
	DMT_OPTS(dmt_dmabuf_opts, o, .provider = DMT_PROVIDER_CUDA, .size = 1 << 20);
	struct dmt_dmabuf *buf;
	struct dmt_err err;
	const char *env = getenv("DMT_TEST_CUDA");
	int before = count_fds(), kept;
	void *dl;

	/* a second run on the same machine class (the VM after the host):
	 * the host run's line already says whether CUDA could be tested */
	if (env && !strcmp(env, "0")) {
		printf("# cuda provider: not run here (DMT_TEST_CUDA=0: the host run covers it)\n");
		return 0;
	}
	dl = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
	buf = dmt_dmabuf_new(&o, &err);
	if (!dl) {
		show_err(&err);
		check(t, !buf && err.code == -ENOENT && strstr(err.what, "libcuda.so.1"),
		      "cuda without libcuda.so.1: ENOENT \"no CUDA driver\"");
		skip(t, "cuda provider", "no libcuda.so.1");
		return 0;
	}
	dlclose(dl);
	if (!buf && (err.code == -ENODEV || err.code == -EOPNOTSUPP)) {
		show_err(&err);
		skip(t, "cuda provider", "no CUDA device that exports dma-bufs");
		return count_fds() - before;
	}
	if (!check(t, buf, "cuda provider: 1 MiB of device memory")) {
		show_err(&err);
		return count_fds() - before;
	}
	check(t, dmt_dmabuf_is_dmabuf(buf) && !dmt_dmabuf_map(buf) &&
	      dmt_dmabuf_size(buf) >= 1 << 20 &&
	      lseek(dmt_dmabuf_fd(buf), 0, SEEK_END) == (off_t)dmt_dmabuf_size(buf),
	      "cuda: an unmapped dma-buf of %zu bytes", dmt_dmabuf_size(buf));
	round_trip(t, buf, "cuda");
	dmt_dmabuf_free(buf);

	kept = count_fds() - before;
	buf = dmt_dmabuf_new(&o, &err);
	dmt_dmabuf_free(buf);
	if (!check(t, buf && count_fds() == before + kept && fds_to("dmabuf", false) == 0,
		   "cuda: a second buffer leaves no fd open (no dma-buf; the driver's own %d "
		   "stay, as after the first)", kept))
		fds_to("", true);
	if (kept) {
		printf("# the CUDA driver keeps %d fds open after the buffers are freed:\n", kept);
		fds_to("/dev/nvidia", true);
	}
	return kept;
}

int main(void)
{
	struct ktap t = { 0 };
	int fds_before = count_fds(), fds_after, driver_fds;

	test_version_names(&t);
	test_pattern(&t);
	test_pattern_exhaustive(&t);
	test_host(&t);
	test_errors(&t);
	test_oversize(&t);
	test_fd_provider(&t);
	test_udmabuf(&t);
	test_heap(&t);
	driver_fds = test_cuda(&t);

	fds_after = count_fds();
	if (!check(&t, fds_before >= 0 && fds_after == fds_before + driver_fds,
		   "no fd leaked (the CUDA driver's own %d aside)", driver_fds))
		printf("# %d fds open at start, %d at the end\n", fds_before, fds_after);
	return ktap_exit(&t);
}
