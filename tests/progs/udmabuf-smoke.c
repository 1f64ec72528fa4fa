// SPDX-License-Identifier: GPL-2.0
/*
 * udmabuf smoke: turn a sealed 1 MiB memfd into a dma-buf with UDMABUF_CREATE,
 * write and read it through a mapping of the dma-buf inside DMA_BUF_IOCTL_SYNC
 * brackets, see the same bytes through the memfd, check that an unsealed memfd
 * is refused, and that nothing leaks an fd.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dmt-uapi.h"
#include "ktap.h"

#define SIZE (1u << 20)

static const char *errname(int e)
{
	const char *s = strerrorname_np(e);

	return s ? s : "E?";
}

static unsigned char pattern(size_t i)
{
	return (i * 131 + 7) & 0xff;
}

/* First offset where buf differs from the pattern, or SIZE. */
static size_t first_mismatch(const unsigned char *buf)
{
	size_t i;

	for (i = 0; i < SIZE; i++)
		if (buf[i] != pattern(i))
			break;
	return i;
}

static int sync_dmabuf(int fd, __u64 flags)
{
	struct dma_buf_sync s = { .flags = flags };

	return ioctl(fd, DMA_BUF_IOCTL_SYNC, &s);
}

/* A 1 MiB memfd, sealed against shrinking when seal is true. */
static int make_memfd(bool seal)
{
	int fd = memfd_create("udmabuf-smoke", MFD_ALLOW_SEALING | MFD_CLOEXEC);

	if (fd < 0)
		return -1;
	if (ftruncate(fd, SIZE) < 0 ||
	    (seal && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) < 0)) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static int udmabuf_create(int dev, int memfd)
{
	struct udmabuf_create c = {
		.memfd = memfd,
		.flags = UDMABUF_FLAGS_CLOEXEC,
		.offset = 0,
		.size = SIZE,
	};

	return ioctl(dev, UDMABUF_CREATE, &c);
}

static void write_and_verify(struct ktap *t, int memfd, int buf)
{
	unsigned char *map, *mmap_memfd;
	size_t bad;
	int wr, rd;

	map = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, buf, 0);
	if (!check(t, map != MAP_FAILED, "mmap of the dma-buf fd")) {
		printf("# mmap: %s\n", strerror(errno));
		return;
	}

	wr = sync_dmabuf(buf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE);
	if (!wr) {
		for (size_t i = 0; i < SIZE; i++)
			map[i] = pattern(i);
		wr = sync_dmabuf(buf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE);
	}
	if (!check(t, wr == 0, "CPU write bracketed by SYNC START|WRITE .. END|WRITE"))
		printf("# DMA_BUF_IOCTL_SYNC: %s\n", strerror(errno));

	bad = SIZE;
	rd = sync_dmabuf(buf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ);
	if (!rd) {
		bad = first_mismatch(map);
		rd = sync_dmabuf(buf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ);
	}
	if (rd)
		printf("# DMA_BUF_IOCTL_SYNC: %s\n", strerror(errno));
	else if (bad < SIZE)
		printf("# byte %zu is 0x%02x, wrote 0x%02x\n", bad, map[bad], pattern(bad));
	check(t, !rd && bad == SIZE, "read back every byte inside SYNC START|READ .. END|READ");

	mmap_memfd = mmap(NULL, SIZE, PROT_READ, MAP_SHARED, memfd, 0);
	bad = 0;
	if (mmap_memfd == MAP_FAILED) {
		printf("# mmap of the memfd: %s\n", strerror(errno));
	} else {
		bad = first_mismatch(mmap_memfd);
		if (bad < SIZE)
			printf("# memfd byte %zu is 0x%02x, wrote 0x%02x\n", bad,
			       mmap_memfd[bad], pattern(bad));
		munmap(mmap_memfd, SIZE);
	}
	check(t, bad == SIZE, "bytes visible through a mapping of the memfd");
	munmap(map, SIZE);
}

int main(void)
{
	struct ktap t = { 0 };
	int fds_before = count_fds();
	int dev, memfd, buf, e;
	off_t end;

	dev = open("/dev/udmabuf", O_RDWR | O_CLOEXEC);
	if (dev < 0 && (errno == ENOENT || errno == ENODEV || errno == ENXIO)) {
		skip(&t, "udmabuf smoke", "/dev/udmabuf absent (CONFIG_UDMABUF)");
		return ktap_exit(&t);
	}
	if (!check(&t, dev >= 0, "open /dev/udmabuf")) {
		printf("# open: %s\n", strerror(errno));
		return ktap_exit(&t);
	}

	memfd = make_memfd(true);
	if (!check(&t, memfd >= 0, "1 MiB memfd sealed with F_SEAL_SHRINK")) {
		printf("# memfd: %s\n", strerror(errno));
		goto out_dev;
	}

	buf = udmabuf_create(dev, memfd);
	if (!check(&t, buf >= 0, "UDMABUF_CREATE gives a dma-buf fd")) {
		printf("# UDMABUF_CREATE: %s (%s)\n", errname(errno), strerror(errno));
		goto out_memfd;
	}
	check(&t, fcntl(buf, F_GETFD) == FD_CLOEXEC, "dma-buf fd has FD_CLOEXEC");

	end = lseek(buf, 0, SEEK_END);
	if (!check(&t, end == SIZE, "lseek(SEEK_END) on the dma-buf is %u", SIZE))
		printf("# lseek gave %lld (%s)\n", (long long)end,
		       end < 0 ? strerror(errno) : "wrong size");

	write_and_verify(&t, memfd, buf);
	close(buf);
out_memfd:
	close(memfd);

	memfd = make_memfd(false);
	if (memfd < 0) {
		check(&t, false, "UDMABUF_CREATE refuses a memfd without F_SEAL_SHRINK");
		printf("# memfd: %s\n", strerror(errno));
		goto out_dev;
	}
	buf = udmabuf_create(dev, memfd);
	e = errno;
	if (buf >= 0) {
		printf("# UDMABUF_CREATE accepted an unsealed memfd\n");
		close(buf);
	} else {
		printf("# refused with %s (%s)\n", errname(e), strerror(e));
	}
	check(&t, buf < 0 && (e == EINVAL || e == EBADFD),
	      "UDMABUF_CREATE refuses a memfd without F_SEAL_SHRINK");
	close(memfd);
out_dev:
	close(dev);

	e = count_fds();
	if (!check(&t, fds_before >= 0 && e == fds_before, "no fd leaked"))
		printf("# %d fds open at start, %d at the end\n", fds_before, e);
	return ktap_exit(&t);
}
