// SPDX-License-Identifier: MIT
/*
 * A stand-in for the NVIDIA driver's libcuda.so.1, so that the CUDA code
 * paths of libdevmemtcp, the tool and the NCCL harness run on machines
 * without a GPU.  It is no GPU: "device memory" is a sealed memfd mapped
 * in the process, a device pointer is that mapping's address, its dma-buf
 * is a udmabuf over the memfd (so bind-rx and bind-tx get a real dma-buf),
 * and the copies are memcpy.  Only the entry points those programs use
 * are here.  Loaded by LD_LIBRARY_PATH=build/tests/cuda-standin; tests
 * that use it say so in their names.  Without /dev/udmabuf the device
 * reports no dma-buf support, as a GPU without the open kernel modules
 * does.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/udmabuf.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define API __attribute__((visibility("default")))

/* cuda.h's numbers */
enum {
	SUCCESS = 0,
	INVALID_VALUE = 1,
	OUT_OF_MEMORY = 2,
	NOT_INITIALIZED = 3,
	INVALID_DEVICE = 101,
	NOT_SUPPORTED = 801,
	ATTR_DMA_BUF_SUPPORTED = 124,
	HANDLE_TYPE_DMA_BUF_FD = 1,
};

#define MAX_ALLOCS 64

static struct alloc {
	uintptr_t addr;
	size_t size;
	int memfd;
} allocs[MAX_ALLOCS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int initialised;
static int context = 1;		/* the primary context's address is its handle */

/* The allocation holding [p, p + len), or NULL. */
static struct alloc *find(uintptr_t p, size_t len)
{
	for (int i = 0; i < MAX_ALLOCS; i++) {
		struct alloc *a = &allocs[i];

		if (a->size && p >= a->addr && len <= a->size && p - a->addr <= a->size - len)
			return a;
	}
	return NULL;
}

API int cuInit(unsigned int flags)
{
	if (flags)
		return INVALID_VALUE;
	initialised = 1;
	return SUCCESS;
}

API int cuDeviceGet(int *dev, int ordinal)
{
	if (!initialised)
		return NOT_INITIALIZED;
	if (ordinal)
		return INVALID_DEVICE;
	*dev = 0;
	return SUCCESS;
}

API int cuDeviceGetAttribute(int *v, int attr, int dev)
{
	if (dev)
		return INVALID_DEVICE;
	*v = attr == ATTR_DMA_BUF_SUPPORTED && access("/dev/udmabuf", R_OK | W_OK) == 0;
	return SUCCESS;
}

API int cuDevicePrimaryCtxRetain(void **ctx, int dev)
{
	if (dev)
		return INVALID_DEVICE;
	*ctx = &context;
	return SUCCESS;
}

API int cuDevicePrimaryCtxRelease_v2(int dev)
{
	return dev ? INVALID_DEVICE : SUCCESS;
}

API int cuCtxPushCurrent_v2(void *ctx)
{
	return ctx == &context ? SUCCESS : INVALID_VALUE;
}

API int cuCtxPopCurrent_v2(void **ctx)
{
	if (ctx)
		*ctx = &context;
	return SUCCESS;
}

API int cuCtxSetCurrent(void *ctx)
{
	return !ctx || ctx == &context ? SUCCESS : INVALID_VALUE;
}

API int cuMemAlloc_v2(unsigned long long *ptr, size_t size)
{
	size_t page = sysconf(_SC_PAGESIZE);
	int ret = OUT_OF_MEMORY, fd;
	void *m;

	if (!initialised)
		return NOT_INITIALIZED;
	if (!size)
		return INVALID_VALUE;
	size = (size + page - 1) / page * page;
	pthread_mutex_lock(&lock);
	for (int i = 0; i < MAX_ALLOCS; i++) {
		if (allocs[i].size)
			continue;
		fd = memfd_create("cuda-standin", MFD_CLOEXEC | MFD_ALLOW_SEALING);
		if (fd < 0)
			break;
		if (ftruncate(fd, size) || fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK)) {
			close(fd);
			break;
		}
		m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (m == MAP_FAILED) {
			close(fd);
			break;
		}
		allocs[i] = (struct alloc){ .addr = (uintptr_t)m, .size = size, .memfd = fd };
		*ptr = (uintptr_t)m;
		ret = SUCCESS;
		break;
	}
	pthread_mutex_unlock(&lock);
	return ret;
}

API int cuMemFree_v2(unsigned long long ptr)
{
	struct alloc *a;
	int ret = INVALID_VALUE;

	pthread_mutex_lock(&lock);
	a = find(ptr, 1);
	if (a && a->addr == ptr) {
		munmap((void *)a->addr, a->size);
		close(a->memfd);
		*a = (struct alloc){ 0 };
		ret = SUCCESS;
	}
	pthread_mutex_unlock(&lock);
	return ret;
}

static int copy(void *dst, const void *src, uintptr_t dev, size_t len)
{
	int ok;

	pthread_mutex_lock(&lock);
	ok = find(dev, len) != NULL;
	pthread_mutex_unlock(&lock);
	if (!ok)
		return INVALID_VALUE;
	memcpy(dst, src, len);
	return SUCCESS;
}

API int cuMemcpyHtoD_v2(unsigned long long dst, const void *src, size_t len)
{
	return copy((void *)(uintptr_t)dst, src, dst, len);
}

API int cuMemcpyDtoH_v2(void *dst, unsigned long long src, size_t len)
{
	return copy(dst, (const void *)(uintptr_t)src, src, len);
}

API int cuMemGetHandleForAddressRange(void *handle, unsigned long long ptr, size_t size,
				      int type, unsigned long long flags)
{
	struct udmabuf_create create = { .flags = UDMABUF_FLAGS_CLOEXEC, .size = size };
	struct alloc *a;
	int dev, fd, ret = SUCCESS;

	if (type != HANDLE_TYPE_DMA_BUF_FD || flags)
		return INVALID_VALUE;
	pthread_mutex_lock(&lock);
	a = find(ptr, size);
	if (a) {
		create.memfd = a->memfd;
		create.offset = ptr - a->addr;
	}
	pthread_mutex_unlock(&lock);
	if (!a)
		return INVALID_VALUE;
	dev = open("/dev/udmabuf", O_RDWR | O_CLOEXEC);
	if (dev < 0)
		return NOT_SUPPORTED;
	fd = ioctl(dev, UDMABUF_CREATE, &create);
	if (fd < 0)
		ret = errno == ENOMEM ? OUT_OF_MEMORY : INVALID_VALUE;
	else
		*(int *)handle = fd;
	close(dev);
	return ret;
}

/* Pinned host memory on a GPU; plain memory here. */
API int cuMemHostAlloc(void **p, size_t len, unsigned int flags)
{
	if (!initialised)
		return NOT_INITIALIZED;
	if (!len || flags & ~0x0fu)
		return INVALID_VALUE;
	*p = malloc(len);
	return *p ? SUCCESS : OUT_OF_MEMORY;
}

API int cuMemFreeHost(void *p)
{
	free(p);
	return SUCCESS;
}

API int cuGetErrorName(int res, const char **name)
{
	static const struct { int res; const char *name; } names[] = {
		{ SUCCESS, "CUDA_SUCCESS" },
		{ INVALID_VALUE, "CUDA_ERROR_INVALID_VALUE" },
		{ OUT_OF_MEMORY, "CUDA_ERROR_OUT_OF_MEMORY" },
		{ NOT_INITIALIZED, "CUDA_ERROR_NOT_INITIALIZED" },
		{ INVALID_DEVICE, "CUDA_ERROR_INVALID_DEVICE" },
		{ NOT_SUPPORTED, "CUDA_ERROR_NOT_SUPPORTED" },
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (names[i].res == res) {
			*name = names[i].name;
			return SUCCESS;
		}
	}
	return INVALID_VALUE;
}
