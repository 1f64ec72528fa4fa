// SPDX-License-Identifier: MIT
/*
 * dmabuf.c - dma-bufs from the providers: udmabuf (a sealed memfd wrapped by
 * /dev/udmabuf), a dma-buf heap, CUDA device memory (libcuda.so.1 through
 * dlopen), an fd the caller already has, and plain host memory (a memfd,
 * not a dma-buf).  Host access to mappable buffers is bracketed by
 * DMA_BUF_IOCTL_SYNC; CUDA buffers are copied with the driver's calls.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/memfd.h>

#include "internal.h"
#include "dmt-uapi.h"

#define MIB (1ull << 20)
#define HUGE_2M (2ull << 20)

#define UDMABUF_DEV "/dev/udmabuf"
#define UDMABUF_LIMIT "/sys/module/udmabuf/parameters/size_limit_mb"
#define HUGEPAGES_2M "/sys/kernel/mm/hugepages/hugepages-2048kB/"
#define NR_HUGEPAGES "/proc/sys/vm/nr_hugepages"
#define HEAP_DIR "/dev/dma_heap/"

static const char *const provider_names[] = {
	[DMT_PROVIDER_UDMABUF] = "udmabuf",
	[DMT_PROVIDER_HEAP] = "heap",
	[DMT_PROVIDER_CUDA] = "cuda",
	[DMT_PROVIDER_FD] = "fd",
	[DMT_PROVIDER_HOST] = "host",
};

#define NR_PROVIDERS (sizeof(provider_names) / sizeof(provider_names[0]))

DMT_API const char *dmt_provider_name(enum dmt_provider provider)
{
	if ((unsigned)provider < NR_PROVIDERS && provider_names[provider])
		return provider_names[provider];
	return "unknown";
}

DMT_API int dmt_provider_parse(const char *name, enum dmt_provider *provider)
{
	for (unsigned i = 1; name && i < NR_PROVIDERS; i++)
		if (!strcmp(name, provider_names[i])) {
			if (provider)
				*provider = i;
			return 0;
		}
	return -EINVAL;
}

/* A number from a one-line sysfs/procfs file. */
static int read_ull(const char *path, unsigned long long *v)
{
	char line[32], *end;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, line, sizeof(line) - 1);
	close(fd);
	if (n <= 0)
		return n < 0 ? -errno : -ENODATA;
	line[n] = '\0';
	errno = 0;
	*v = strtoull(line, &end, 10);
	if (errno || end == line)
		return -EINVAL;
	return 0;
}

static size_t round_up(size_t v, size_t align)
{
	return (v + align - 1) / align * align;
}

/* ------------------------------------------------------------- udmabuf */

/* Before the ioctl: the module's size limit, with how to raise it. */
static int udmabuf_check_limit(size_t size, struct dmt_err *err)
{
	unsigned long long limit_mb, need_mb = (size + MIB - 1) / MIB;
	char fix[192];
	int n;

	if (read_ull(UDMABUF_LIMIT, &limit_mb) || size <= limit_mb * MIB)
		return 0;
	n = 0;
	if (!access(UDMABUF_LIMIT, W_OK))
		n = snprintf(fix, sizeof(fix), "echo %llu > %s, or ", need_mb,
			     UDMABUF_LIMIT);
	snprintf(fix + n, sizeof(fix) - n,
		 "modprobe udmabuf size_limit_mb=%llu, or boot with "
		 "udmabuf.size_limit_mb=%llu", need_mb, need_mb);
	return dmt_err_set(err, -EINVAL, fix,
			   "udmabuf of %zu bytes is over the udmabuf module's "
			   "size_limit_mb of %llu MiB", size, limit_mb);
}

/*
 * udmabuf keeps two arrays of one pointer per page (kvmalloc); kvmalloc
 * refuses more than INT_MAX bytes with a kernel WARNING.  So a udmabuf
 * has fewer than INT_MAX / 8 pages (just under 1 TiB with 4 KiB pages),
 * whatever size_limit_mb says (Linux 7.3 made its default INT_MAX MiB).
 * We make one UDMABUF_CREATE, never a list: list_limit does not apply.
 */
static int udmabuf_check_pages(size_t size, struct dmt_err *err)
{
	unsigned long long page = sysconf(_SC_PAGESIZE);
	unsigned long long max = (unsigned long long)INT_MAX / sizeof(void *) * page;

	if (size < max)
		return 0;
	return dmt_err_set(err, -EINVAL, "ask for less, or use the heap or cuda provider",
			   "udmabuf of %zu bytes: the kernel's page arrays would pass "
			   "INT_MAX bytes (a udmabuf is below %llu MiB)", size,
			   (max - 1) / MIB);
}

/* MemAvailable from /proc/meminfo in bytes; 0 when it cannot be read. */
static unsigned long long mem_available(void)
{
	char buf[4096], *p;
	unsigned long long kb;
	ssize_t n;
	int fd;

	fd = open("/proc/meminfo", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	p = strstr(buf, "MemAvailable:");
	if (!p || sscanf(p + 13, "%llu", &kb) != 1)
		return 0;
	return kb << 10;
}

/*
 * Buffers of ordinary pages (udmabuf without huge pages, heap, host) are
 * allocated, pinned or filled in full: more than the memory available
 * ends in the OOM killer or an allocation failure report.
 */
static int check_memory(const struct dmt_dmabuf *buf, struct dmt_err *err)
{
	unsigned long long avail = mem_available();

	if (!avail || buf->size <= avail)
		return 0;
	return dmt_err_set(err, -ENOMEM, "ask for less, or free memory",
			   "%s buffer of %zu bytes: only %llu MiB of memory available "
			   "(MemAvailable)", dmt_provider_name(buf->provider), buf->size,
			   avail / MIB);
}

/* Enough free 2 MiB huge pages for size? */
static int udmabuf_check_hugepages(size_t size, struct dmt_err *err)
{
	unsigned long long nr, free_pages, resv, avail;
	unsigned long long need = size / HUGE_2M;
	char fix[192];

	if (read_ull(HUGEPAGES_2M "nr_hugepages", &nr) ||
	    read_ull(HUGEPAGES_2M "free_hugepages", &free_pages) ||
	    read_ull(HUGEPAGES_2M "resv_hugepages", &resv))
		return 0;	/* cannot tell: let the kernel decide */
	avail = free_pages > resv ? free_pages - resv : 0;
	if (avail >= need)
		return 0;
	snprintf(fix, sizeof(fix), "reserve more 2 MiB huge pages: echo %llu > "
		 NR_HUGEPAGES, nr + need - avail);
	return dmt_err_set(err, -ENOMEM, fix,
			   "udmabuf of %zu bytes needs %llu free 2 MiB huge pages, "
			   "%llu are free", size, need, avail);
}

static int udmabuf_new(struct dmt_dmabuf *buf, bool huge, struct dmt_err *err)
{
	static const char huge_fix[] = "needs hugetlbfs with 2 MiB pages "
		"reserved: echo N > " NR_HUGEPAGES ", N = size / 2 MiB";
	unsigned int mflags = MFD_ALLOW_SEALING | MFD_CLOEXEC;
	struct udmabuf_create create = { .flags = UDMABUF_FLAGS_CLOEXEC };
	int dev, fd, ret;

	if (huge) {
		mflags |= MFD_HUGETLB | MFD_HUGE_2MB;
		buf->size = round_up(buf->size, HUGE_2M);
	}

	dev = open(UDMABUF_DEV, O_RDWR | O_CLOEXEC);
	if (dev < 0) {
		ret = -errno;
		return dmt_err_set(err, ret, ret == -ENOENT ?
				   "load the udmabuf module (CONFIG_UDMABUF)" :
				   "run as a user that may open " UDMABUF_DEV,
				   "open " UDMABUF_DEV);
	}
	ret = udmabuf_check_limit(buf->size, err);
	if (!ret)
		ret = udmabuf_check_pages(buf->size, err);
	if (!ret)
		ret = huge ? udmabuf_check_hugepages(buf->size, err) : check_memory(buf, err);
	if (ret)
		goto out_dev;

	buf->memfd = memfd_create("devmemtcp-udmabuf", mflags);
	if (buf->memfd < 0) {
		ret = dmt_err_set(err, -errno, huge ? huge_fix : NULL,
				  "memfd_create%s", huge ? " with 2 MiB huge pages" : "");
		goto out_dev;
	}
	if (ftruncate(buf->memfd, buf->size) < 0) {
		ret = dmt_err_set(err, -errno, huge ? huge_fix : NULL,
				  "ftruncate the memfd to %zu bytes", buf->size);
		goto out_dev;
	}
	if (fcntl(buf->memfd, F_ADD_SEALS, F_SEAL_SHRINK) < 0) {
		ret = dmt_err_set(err, -errno, NULL,
				  "seal the memfd with F_SEAL_SHRINK");
		goto out_dev;
	}

	create.memfd = buf->memfd;
	create.size = buf->size;
	fd = ioctl(dev, UDMABUF_CREATE, &create);
	if (fd < 0) {
		ret = -errno;
		dmt_err_set(err, ret, huge && ret == -ENOMEM ? huge_fix : NULL,
			    "UDMABUF_CREATE of %zu bytes", buf->size);
		goto out_dev;
	}
	buf->fd = fd;

	/* Host access: the dma-buf's own mapping, else the memfd's. */
	buf->map = mmap(NULL, buf->size, PROT_READ | PROT_WRITE, MAP_SHARED,
			buf->fd, 0);
	if (buf->map == MAP_FAILED)
		buf->map = mmap(NULL, buf->size, PROT_READ | PROT_WRITE,
				MAP_SHARED, buf->memfd, 0);
	if (buf->map == MAP_FAILED) {
		buf->map = NULL;
		ret = dmt_err_set(err, -errno, NULL,
				  "mmap the %zu-byte udmabuf", buf->size);
	}
out_dev:
	close(dev);
	return ret;
}

/* ---------------------------------------------------------------- heap */

static int heap_new(struct dmt_dmabuf *buf, const char *name,
		    struct dmt_err *err)
{
	struct dma_heap_allocation_data alloc = {
		.len = buf->size,
		.fd_flags = O_RDWR | O_CLOEXEC,
	};
	char path[sizeof(HEAP_DIR) + 64];
	int heap, ret;

	if (!name || !*name)
		name = "system";
	ret = check_memory(buf, err);
	if (ret)
		return ret;
	if (strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, "..") ||
	    strlen(name) >= 64)
		return dmt_err_set(err, -EINVAL, "give a name listed in " HEAP_DIR,
				   "dma-buf heap name \"%.64s\"", name);
	snprintf(path, sizeof(path), HEAP_DIR "%s", name);

	heap = open(path, O_RDONLY | O_CLOEXEC);
	if (heap < 0) {
		ret = -errno;
		if (ret != -ENOENT)
			return dmt_err_set(err, ret, NULL, "open %s", path);
		return dmt_err_set(err, ret, access(HEAP_DIR, F_OK) ?
				   "enable CONFIG_DMABUF_HEAPS and "
				   "CONFIG_DMABUF_HEAPS_SYSTEM" :
				   "pick a heap listed in " HEAP_DIR,
				   "open %s", path);
	}
	ret = ioctl(heap, DMA_HEAP_IOCTL_ALLOC, &alloc);
	ret = ret < 0 ? -errno : 0;
	close(heap);
	if (ret)
		return dmt_err_set(err, ret, NULL,
				   "DMA_HEAP_IOCTL_ALLOC of %zu bytes from %s",
				   buf->size, path);
	buf->fd = alloc.fd;

	/* Not every heap can be mapped (protected memory): that is fine. */
	buf->map = mmap(NULL, buf->size, PROT_READ | PROT_WRITE, MAP_SHARED,
			buf->fd, 0);
	if (buf->map == MAP_FAILED)
		buf->map = NULL;
	return 0;
}

/* ------------------------------------------------------------------ fd */

static bool is_dmabuf_fd(int fd, int *e)
{
	char path[32], target[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0) {
		*e = errno;
		return false;
	}
	target[n] = '\0';
	*e = 0;
	return !strncmp(target, "/dmabuf:", 8) ||
	       !strcmp(target, "anon_inode:dmabuf");
}

static int fd_new(struct dmt_dmabuf *buf, int fd, size_t want,
		  struct dmt_err *err)
{
	off_t end;
	int e;

	if (fd < 0)
		return dmt_err_set(err, -EBADF, "set dmt_dmabuf_opts.fd",
				   "import dma-buf fd %d", fd);
	if (!is_dmabuf_fd(fd, &e)) {
		if (e)
			return dmt_err_set(err, -e, e == ENOENT ?
					   "pass an open dma-buf fd" : "mount /proc",
					   "look up fd %d in /proc/self/fd", fd);
		return dmt_err_set(err, -EINVAL,
				   "pass an fd from a dma-buf exporter: udmabuf, "
				   "a dma-buf heap, a GPU driver",
				   "fd %d is not a dma-buf", fd);
	}
	buf->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (buf->fd < 0)
		return dmt_err_set(err, -errno, NULL, "dup dma-buf fd %d", fd);

	end = lseek(buf->fd, 0, SEEK_END);
	if (end < 0)
		return dmt_err_set(err, -errno, NULL,
				   "find the size of dma-buf fd %d", fd);
	if (end == 0)
		return dmt_err_set(err, -EINVAL, NULL, "dma-buf fd %d is empty", fd);
	if (want > (size_t)end)
		return dmt_err_set(err, -EINVAL, "leave dmt_dmabuf_opts.size 0",
				   "dma-buf fd %d has %lld bytes, %zu asked for",
				   fd, (long long)end, want);
	buf->size = end;

	buf->map = mmap(NULL, buf->size, PROT_READ | PROT_WRITE, MAP_SHARED,
			buf->fd, 0);
	if (buf->map == MAP_FAILED)
		buf->map = NULL;	/* not host-mappable: fine */
	return 0;
}

/* ---------------------------------------------------------------- host */

static int host_new(struct dmt_dmabuf *buf, void *addr, struct dmt_err *err)
{
	int ret;

	if (addr) {		/* the caller's memory: used as it is */
		buf->map = addr;
		buf->borrowed = true;
		return 0;
	}
	ret = check_memory(buf, err);

	if (ret)
		return ret;
	buf->fd = memfd_create("devmemtcp-host", MFD_CLOEXEC);
	if (buf->fd < 0)
		return dmt_err_set(err, -errno, NULL, "memfd_create");
	if (ftruncate(buf->fd, buf->size) < 0)
		return dmt_err_set(err, -errno, NULL,
				   "ftruncate the memfd to %zu bytes", buf->size);
	buf->map = mmap(NULL, buf->size, PROT_READ | PROT_WRITE, MAP_SHARED,
			buf->fd, 0);
	if (buf->map == MAP_FAILED) {
		buf->map = NULL;
		return dmt_err_set(err, -errno, NULL,
				   "mmap %zu bytes of host memory", buf->size);
	}
	return 0;
}

/* ---------------------------------------------------------------- cuda */

/*
 * The few driver API entry points used, declared here so that no NVIDIA
 * header is needed; the numbers are those of cuda.h.
 */
typedef int cu_result;
typedef int cu_device;
typedef void *cu_context;
typedef unsigned long long cu_deviceptr;

#define CU_SUCCESS				0
#define CU_ERROR_INVALID_VALUE			1
#define CU_ERROR_OUT_OF_MEMORY			2
#define CU_ERROR_NO_DEVICE			100
#define CU_ERROR_INVALID_DEVICE			101
#define CU_ERROR_NOT_SUPPORTED			801
#define CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED	124
#define CU_MEM_RANGE_HANDLE_TYPE_DMA_BUF_FD	1
#define CU_MEM_ALLOCATION_TYPE_PINNED		1
#define CU_MEM_LOCATION_TYPE_DEVICE		1
#define CU_MEM_ALLOC_GRANULARITY_MINIMUM	0
#define CU_MEMHOSTALLOC_PORTABLE		0x01

/* CUmemAllocationProp */
struct cu_alloc_prop {
	int type;
	int requested_handle_types;
	struct {
		int type;
		int id;
	} location;
	void *win32_handle_meta_data;
	struct {
		unsigned char compression_type;
		unsigned char gpu_direct_rdma_capable;
		unsigned short usage;
		unsigned char reserved[4];
	} alloc_flags;
};

struct cuda {
	void *dl;
	cu_device dev;
	cu_context ctx;		/* the device's primary context */
	cu_deviceptr ptr;
	cu_result (*init)(unsigned int flags);
	cu_result (*device_get)(cu_device *dev, int ordinal);
	cu_result (*device_get_attribute)(int *v, int attr, cu_device dev);
	cu_result (*primary_ctx_retain)(cu_context *ctx, cu_device dev);
	cu_result (*primary_ctx_release)(cu_device dev);
	cu_result (*ctx_push)(cu_context ctx);
	cu_result (*ctx_pop)(cu_context *ctx);
	cu_result (*granularity)(size_t *g, const struct cu_alloc_prop *prop,
				 int option);
	cu_result (*mem_alloc)(cu_deviceptr *ptr, size_t size);
	cu_result (*mem_free)(cu_deviceptr ptr);
	cu_result (*htod)(cu_deviceptr dst, const void *src, size_t len);
	cu_result (*dtoh)(void *dst, cu_deviceptr src, size_t len);
	cu_result (*dmabuf_handle)(void *handle, cu_deviceptr ptr, size_t size,
				   int type, unsigned long long flags);
	cu_result (*error_name)(cu_result res, const char **name);
	cu_result (*host_alloc)(void **p, size_t len, unsigned int flags);
	cu_result (*free_host)(void *p);
};

static int cu_errno(cu_result res)
{
	switch (res) {
	case CU_ERROR_INVALID_VALUE:
		return -EINVAL;
	case CU_ERROR_OUT_OF_MEMORY:
		return -ENOMEM;
	case CU_ERROR_NO_DEVICE:
	case CU_ERROR_INVALID_DEVICE:
		return -ENODEV;
	case CU_ERROR_NOT_SUPPORTED:
		return -EOPNOTSUPP;
	default:
		return -EIO;
	}
}

static const char *cu_name(const struct cuda *cu, cu_result res)
{
	const char *name = NULL;

	if (cu->error_name && cu->error_name(res, &name) == CU_SUCCESS && name)
		return name;
	return "CUDA error";
}

static int cu_fail(struct dmt_err *err, const struct cuda *cu, cu_result res,
		   const char *step)
{
	return dmt_err_set(err, cu_errno(res), NULL, "%s on CUDA device %d: %s (%d)",
			   step, cu->dev, cu_name(cu, res), res);
}

static int cuda_copy(struct dmt_dmabuf *buf, size_t off, void *host,
		     size_t len, bool to_device)
{
	struct cuda *cu = buf->priv;
	cu_context old;
	cu_result res;

	res = cu->ctx_push(cu->ctx);
	if (res != CU_SUCCESS)
		return cu_errno(res);
	if (to_device)
		res = cu->htod(cu->ptr + off, host, len);
	else
		res = cu->dtoh(host, cu->ptr + off, len);
	cu->ctx_pop(&old);
	return res == CU_SUCCESS ? 0 : cu_errno(res);
}

static int cuda_write(struct dmt_dmabuf *buf, size_t off, const void *src,
		      size_t len)
{
	return cuda_copy(buf, off, (void *)src, len, true);
}

static int cuda_read(struct dmt_dmabuf *buf, size_t off, void *dst, size_t len)
{
	return cuda_copy(buf, off, dst, len, false);
}

/* Pinned host memory (any context may copy with it): no staging copy in
 * the driver.  NULL if the driver has none to give. */
static void *cuda_staging_alloc(struct dmt_dmabuf *buf, size_t len)
{
	struct cuda *cu = buf->priv;
	cu_context old;
	void *p = NULL;

	if (!cu->host_alloc || !cu->free_host || cu->ctx_push(cu->ctx) != CU_SUCCESS)
		return NULL;
	if (cu->host_alloc(&p, len, CU_MEMHOSTALLOC_PORTABLE) != CU_SUCCESS)
		p = NULL;
	cu->ctx_pop(&old);
	return p;
}

static void cuda_staging_free(struct dmt_dmabuf *buf, void *p)
{
	struct cuda *cu = buf->priv;
	cu_context old;

	if (cu->ctx_push(cu->ctx) != CU_SUCCESS)
		return;
	cu->free_host(p);
	cu->ctx_pop(&old);
}

static void cuda_release(struct dmt_dmabuf *buf)
{
	struct cuda *cu = buf->priv;
	cu_context old;

	if (!cu)
		return;
	if (cu->ptr && cu->ctx_push(cu->ctx) == CU_SUCCESS) {
		cu->mem_free(cu->ptr);
		cu->ctx_pop(&old);
	}
	if (cu->ctx)
		cu->primary_ctx_release(cu->dev);
	dlclose(cu->dl);
	free(cu);
	buf->priv = NULL;
}

static const struct dmt_dmabuf_ops cuda_ops = {
	.write = cuda_write,
	.read = cuda_read,
	.release = cuda_release,
	.staging_alloc = cuda_staging_alloc,
	.staging_free = cuda_staging_free,
};

static int cuda_load(struct cuda *cu, struct dmt_err *err)
{
	static const struct {
		const char *name;
		size_t off;
		bool optional;
	} syms[] = {
#define SYM(field, name, opt) { name, offsetof(struct cuda, field), opt }
		SYM(init, "cuInit", false),
		SYM(device_get, "cuDeviceGet", false),
		SYM(device_get_attribute, "cuDeviceGetAttribute", false),
		SYM(primary_ctx_retain, "cuDevicePrimaryCtxRetain", false),
		SYM(primary_ctx_release, "cuDevicePrimaryCtxRelease_v2", false),
		SYM(ctx_push, "cuCtxPushCurrent_v2", false),
		SYM(ctx_pop, "cuCtxPopCurrent_v2", false),
		SYM(granularity, "cuMemGetAllocationGranularity", true),
		SYM(mem_alloc, "cuMemAlloc_v2", false),
		SYM(mem_free, "cuMemFree_v2", false),
		SYM(htod, "cuMemcpyHtoD_v2", false),
		SYM(dtoh, "cuMemcpyDtoH_v2", false),
		SYM(dmabuf_handle, "cuMemGetHandleForAddressRange", false),
		SYM(error_name, "cuGetErrorName", true),
		SYM(host_alloc, "cuMemHostAlloc", true),
		SYM(free_host, "cuMemFreeHost", true),
#undef SYM
	};

	cu->dl = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!cu->dl)
		return dmt_err_set(err, -ENOENT,
				   "install the NVIDIA driver's libcuda.so.1",
				   "no CUDA driver (libcuda.so.1)");
	for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
		void *p = dlsym(cu->dl, syms[i].name);

		if (!p && !syms[i].optional)
			return dmt_err_set(err, -EOPNOTSUPP,
					   "update the NVIDIA driver (CUDA >= 11.7)",
					   "libcuda.so.1 lacks %s", syms[i].name);
		memcpy((char *)cu + syms[i].off, &p, sizeof(p));
	}
	return 0;
}

static int cuda_new(struct dmt_dmabuf *buf, int ordinal, struct dmt_err *err)
{
	struct cu_alloc_prop prop = { .type = CU_MEM_ALLOCATION_TYPE_PINNED };
	size_t gran = HUGE_2M;
	cu_context old;
	cu_result res;
	struct cuda *cu;
	int fd = -1, v = 0, ret;

	cu = calloc(1, sizeof(*cu));
	if (!cu)
		return dmt_err_set(err, -ENOMEM, NULL, "allocate CUDA state");
	cu->dev = ordinal;
	buf->priv = cu;
	buf->ops = &cuda_ops;	/* release undoes whatever got done */
	ret = cuda_load(cu, err);
	if (ret) {
		if (cu->dl)
			dlclose(cu->dl);
		free(cu);
		buf->priv = NULL;
		return ret;
	}

	res = cu->init(0);
	if (res != CU_SUCCESS)
		return cu_fail(err, cu, res, "cuInit");
	res = cu->device_get(&cu->dev, ordinal);
	if (res != CU_SUCCESS)
		return cu_fail(err, cu, res, "cuDeviceGet");
	res = cu->device_get_attribute(&v, CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED,
				       cu->dev);
	if (res != CU_SUCCESS)
		return cu_fail(err, cu, res, "cuDeviceGetAttribute(DMA_BUF_SUPPORTED)");
	if (!v)
		return dmt_err_set(err, -EOPNOTSUPP,
				   "needs the open NVIDIA kernel modules and a GPU "
				   "that supports dma-buf export",
				   "CUDA device %d cannot export dma-bufs", ordinal);
	res = cu->primary_ctx_retain(&cu->ctx, cu->dev);
	if (res != CU_SUCCESS) {
		cu->ctx = NULL;
		return cu_fail(err, cu, res, "cuDevicePrimaryCtxRetain");
	}

	res = cu->ctx_push(cu->ctx);
	if (res != CU_SUCCESS)
		return cu_fail(err, cu, res, "cuCtxPushCurrent");
	prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
	prop.location.id = cu->dev;
	if (cu->granularity &&
	    cu->granularity(&gran, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM) !=
	    CU_SUCCESS)
		gran = HUGE_2M;
	if (gran < (size_t)sysconf(_SC_PAGESIZE))
		gran = sysconf(_SC_PAGESIZE);
	buf->size = round_up(buf->size, gran);
	res = cu->mem_alloc(&cu->ptr, buf->size);
	if (res != CU_SUCCESS) {
		cu->ptr = 0;
		cu->ctx_pop(&old);
		return cu_fail(err, cu, res, "cuMemAlloc");
	}
	res = cu->dmabuf_handle(&fd, cu->ptr, buf->size,
				CU_MEM_RANGE_HANDLE_TYPE_DMA_BUF_FD, 0);
	cu->ctx_pop(&old);
	if (res != CU_SUCCESS)
		return cu_fail(err, cu, res, "cuMemGetHandleForAddressRange(DMA_BUF_FD)");
	buf->fd = fd;
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		return dmt_err_set(err, -errno, NULL, "set FD_CLOEXEC on the CUDA dma-buf");
	return 0;
}

/* ------------------------------------------------------------- common */

DMT_API struct dmt_dmabuf *dmt_dmabuf_new(const struct dmt_dmabuf_opts *opts,
					  struct dmt_err *err)
{
	size_t page = sysconf(_SC_PAGESIZE);
	struct dmt_dmabuf *buf;
	size_t size;
	int ret;

	dmt_err_clear(err);
	if (dmt_opts_check(opts, DMT_OPTS_END(dmt_dmabuf_opts, host_addr), err, "dmt_dmabuf_opts"))
		return NULL;

	buf = calloc(1, sizeof(*buf));
	if (!buf) {
		dmt_err_set(err, -ENOMEM, NULL, "allocate a dma-buf handle");
		return NULL;
	}
	buf->fd = -1;
	buf->memfd = -1;
	buf->provider = DMT_OPT(opts, provider, DMT_PROVIDER_UDMABUF);
	if (!buf->provider)
		buf->provider = DMT_PROVIDER_UDMABUF;

	size = DMT_OPT(opts, size, (size_t)0);
	if (buf->provider != DMT_PROVIDER_FD) {
		if (!size) {
			ret = dmt_err_set(err, -EINVAL, "set dmt_dmabuf_opts.size",
					  "%s buffer of 0 bytes",
					  dmt_provider_name(buf->provider));
			goto fail;
		}
		if (size > SIZE_MAX - page) {
			ret = dmt_err_set(err, -EINVAL, NULL,
					  "%s buffer of %zu bytes",
					  dmt_provider_name(buf->provider), size);
			goto fail;
		}
		buf->size = round_up(size, page);
	}
	if (DMT_OPT(opts, host_addr, (void *)NULL)) {
		if (buf->provider != DMT_PROVIDER_HOST) {
			ret = dmt_err_set(err, -EINVAL, "host_addr is for the host provider only",
					  "%s buffer with host_addr set",
					  dmt_provider_name(buf->provider));
			goto fail;
		}
		buf->size = size;	/* the caller's bytes, not rounded */
	}

	switch (buf->provider) {
	case DMT_PROVIDER_UDMABUF:
		ret = udmabuf_new(buf, DMT_OPT(opts, hugepages, false), err);
		break;
	case DMT_PROVIDER_HEAP:
		ret = heap_new(buf, DMT_OPT(opts, heap, (const char *)NULL), err);
		break;
	case DMT_PROVIDER_CUDA:
		ret = cuda_new(buf, DMT_OPT(opts, cuda_device, 0), err);
		break;
	case DMT_PROVIDER_FD:
		ret = fd_new(buf, DMT_OPT(opts, fd, -1), size, err);
		break;
	case DMT_PROVIDER_HOST:
		ret = host_new(buf, DMT_OPT(opts, host_addr, (void *)NULL), err);
		break;
	default:
		ret = dmt_err_set(err, -EINVAL,
				  "use udmabuf, heap, cuda, fd or host",
				  "unknown dma-buf provider %d", buf->provider);
		break;
	}
	if (!ret)
		return buf;
fail:
	dmt_dmabuf_free(buf);
	return NULL;
}

DMT_API void dmt_dmabuf_free(struct dmt_dmabuf *buf)
{
	if (!buf)
		return;
	if (buf->map && !buf->borrowed)
		munmap(buf->map, buf->size);
	if (buf->fd >= 0)
		close(buf->fd);
	if (buf->ops && buf->ops->release)
		buf->ops->release(buf);
	if (buf->memfd >= 0)
		close(buf->memfd);
	free(buf);
}

DMT_API int dmt_dmabuf_fd(const struct dmt_dmabuf *buf)
{
	return buf ? buf->fd : -EINVAL;
}

DMT_API bool dmt_dmabuf_is_dmabuf(const struct dmt_dmabuf *buf)
{
	return buf && buf->provider != DMT_PROVIDER_HOST;
}

DMT_API size_t dmt_dmabuf_size(const struct dmt_dmabuf *buf)
{
	return buf ? buf->size : 0;
}

DMT_API enum dmt_provider dmt_dmabuf_provider(const struct dmt_dmabuf *buf)
{
	return buf ? buf->provider : 0;
}

DMT_API void *dmt_dmabuf_map(const struct dmt_dmabuf *buf)
{
	return buf ? buf->map : NULL;
}

/* DMA_BUF_IOCTL_SYNC, restarted after a signal; 0 or -errno. */
static int sync_ioctl(const struct dmt_dmabuf *buf, unsigned long flags)
{
	struct dma_buf_sync sync = { .flags = flags };

	while (ioctl(buf->fd, DMA_BUF_IOCTL_SYNC, &sync) < 0)
		if (errno != EINTR && errno != EAGAIN)
			return -errno;
	return 0;
}

int dmt_dmabuf_cpu_sync(const struct dmt_dmabuf *buf, bool start,
			unsigned long rw)
{
	if (!buf->map || buf->provider == DMT_PROVIDER_HOST)
		return 0;
	return sync_ioctl(buf, (start ? DMA_BUF_SYNC_START : DMA_BUF_SYNC_END) | rw);
}

bool dmt_dmabuf_writable(const struct dmt_dmabuf *buf)
{
	return buf->map || (buf->ops && buf->ops->write);
}

void *dmt_dmabuf_staging_alloc(struct dmt_dmabuf *buf, size_t len, bool *own)
{
	void *p = NULL;

	if (buf->ops && buf->ops->staging_alloc)
		p = buf->ops->staging_alloc(buf, len);
	*own = p != NULL;
	return p ? p : malloc(len);
}

void dmt_dmabuf_staging_free(struct dmt_dmabuf *buf, void *p, bool own)
{
	if (p && own)
		buf->ops->staging_free(buf, p);
	else
		free(p);
}

/* The public flags are the kernel's values: either set may be passed. */
_Static_assert(DMT_DMABUF_SYNC_READ == DMA_BUF_SYNC_READ &&
	       DMT_DMABUF_SYNC_WRITE == DMA_BUF_SYNC_WRITE &&
	       DMT_DMABUF_SYNC_RW == DMA_BUF_SYNC_RW &&
	       DMT_DMABUF_SYNC_START == DMA_BUF_SYNC_START &&
	       DMT_DMABUF_SYNC_END == DMA_BUF_SYNC_END,
	       "DMT_DMABUF_SYNC_* must equal <linux/dma-buf.h>'s DMA_BUF_SYNC_*");

DMT_API int dmt_dmabuf_sync(struct dmt_dmabuf *buf, unsigned flags)
{
	const unsigned valid = DMT_DMABUF_SYNC_RW | DMT_DMABUF_SYNC_END;
	int ret;

	if (!buf)
		return -EINVAL;
	if (flags & ~valid || !(flags & DMT_DMABUF_SYNC_RW))
		return dmt_err_set(&buf->err, -EINVAL,
				   "pass DMT_DMABUF_SYNC_START or DMT_DMABUF_SYNC_END with DMT_DMABUF_SYNC_READ, _WRITE or _RW",
				   "dma-buf sync flags 0x%x: %s", flags,
				   flags & ~valid ? "unknown bits" : "no direction (read or write)");
	if (buf->provider == DMT_PROVIDER_HOST)
		return 0;	/* plain memory: nothing to bracket */
	if (!buf->map)
		return dmt_err_set(&buf->err, -EOPNOTSUPP,
				   "copy with dmt_dmabuf_read/dmt_dmabuf_write (the provider's own copy calls)",
				   "sync of a %s buffer: it has no host mapping",
				   dmt_provider_name(buf->provider));
	ret = sync_ioctl(buf, flags);
	if (ret)
		return dmt_err_set(&buf->err, ret, NULL, "DMA_BUF_IOCTL_SYNC %s (%s) on dma-buf fd %d",
				   flags & DMT_DMABUF_SYNC_END ? "end" : "start",
				   (flags & DMT_DMABUF_SYNC_RW) == DMT_DMABUF_SYNC_RW ? "read-write" :
				   flags & DMT_DMABUF_SYNC_READ ? "read" : "write", buf->fd);
	return 0;
}

static int check_range(struct dmt_dmabuf *buf, size_t off, size_t len)
{
	if (!buf)
		return -EINVAL;
	if (off > buf->size || len > buf->size - off)
		return dmt_err_set(&buf->err, -ERANGE,
				   "keep offset + length within the buffer",
				   "offset %zu length %zu is outside the %zu-byte %s buffer",
				   off, len, buf->size,
				   dmt_provider_name(buf->provider));
	return 0;
}

DMT_API const struct dmt_err *dmt_dmabuf_error(const struct dmt_dmabuf *buf)
{
	return &buf->err;
}

DMT_API int dmt_dmabuf_write(struct dmt_dmabuf *buf, size_t off,
			     const void *src, size_t len)
{
	int ret = check_range(buf, off, len);

	if (ret || !len)
		return ret;
	if (!buf->map)
		return buf->ops && buf->ops->write ?
		       buf->ops->write(buf, off, src, len) : -EOPNOTSUPP;
	ret = dmt_dmabuf_cpu_sync(buf, true, DMA_BUF_SYNC_WRITE);
	if (ret)
		return ret;
	memcpy((char *)buf->map + off, src, len);
	return dmt_dmabuf_cpu_sync(buf, false, DMA_BUF_SYNC_WRITE);
}

DMT_API int dmt_dmabuf_read(struct dmt_dmabuf *buf, size_t off, void *dst,
			    size_t len)
{
	int ret = check_range(buf, off, len);

	if (ret || !len)
		return ret;
	if (!buf->map)
		return buf->ops && buf->ops->read ?
		       buf->ops->read(buf, off, dst, len) : -EOPNOTSUPP;
	ret = dmt_dmabuf_cpu_sync(buf, true, DMA_BUF_SYNC_READ);
	if (ret)
		return ret;
	memcpy(dst, (char *)buf->map + off, len);
	return dmt_dmabuf_cpu_sync(buf, false, DMA_BUF_SYNC_READ);
}
