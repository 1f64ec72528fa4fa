// SPDX-License-Identifier: MIT
/*
 * nccl-harness: drives libnccl-net-devmemtcp.so the way NCCL's proxy
 * threads do, with nothing of NCCL or of libdevmemtcp linked in: dlopen,
 * dlsym("ncclNetPlugin_vN"), and only the function table from there.
 *
 * Two ranks, two processes (fork): rank 0 receives, rank 1 sends; each may
 * enter its own network namespace (-n/-N) and use its own interface
 * (-i/-I).  The listen handle travels over a side socket (a socketpair,
 * standing in for NCCL's bootstrap).  The schedule both ranks follow:
 *   setup     init, devices, getProperties; accept before any peer gives
 *             a NULL comm; listen, handle over the side socket, connect and
 *             accept retried until both comms exist
 *   sizes     1 byte .. 16 MiB one at a time, posted receive sizes larger
 *             than the message for some (test reports the real size)
 *   depth     1, 8 and 32 requests in flight; a 33rd isend and irecv give
 *             a NULL request
 *   grouped   one irecv of n buffers for n = 2..8 (where maxRecvs
 *             allows), two in flight, 0 and 1 byte among the sizes, the
 *             sends in reverse tag order: test reports each buffer's size
 *   reuse     a second connect/accept on the same listen comm, closed
 *             while the listen comm stays (--device: its ntuple rule gone,
 *             the first comm's kept); then the listen comm closed, as NCCL
 *             does right after accept, and the first comm goes on
 *   close     a receive comm closed with a request in flight; no fd left
 *   versions  each ABI version (-v list) driven once through its own
 *             symbol: init, properties in that version's layout, a
 *             connection, a grouped exchange, close (finalize for v11+)
 * Every received byte is compared with the pattern its message was sent
 * with; bytes after the message in the posted buffer stay untouched.
 *
 * --bench MIB: instead of the schedule, MIB mebibytes in 4 MiB messages, 8 in
 * flight, validated, with the rate.
 *
 * --device: "GPU memory" on both ranks: the arena is a udmabuf (standing
 * in for a CUDA allocation's dma-buf), registered with regMrDmaBuf as
 * NCCL_PTR_CUDA.  The sender's isends then go out of the dma-buf (bind-tx);
 * the receiver gets UNPACK metadata and does, on the CPU, the copy NCCL's
 * unpack kernel does: for each buffer of a finished receive, slot =
 * head++ % 16, and for each of meta->cnt[slot] entries bounce_buf +
 * src_off -> buffer + dst_off (len bytes); then validates, then calls
 * irecvConsumed.  The plugin's token counters (logged at irecvConsumed and
 * close) must show every request's fragments still held at irecvConsumed,
 * given back by it, and none left at close.  At most 16 device receives
 * are in flight (one UNPACK slot per buffer until irecvConsumed): the
 * receiver posts as NCCL's proxy does, retrying a NULL request after
 * consuming the oldest.  Messages stop at 4 MiB (NET_UNPACK_MAX_SLICE_SIZE).
 *
 * Over 4 MiB (NET_UNPACK_MAX_SLICE_SIZE) the message goes between host
 * buffers registered with regMr on the same comm.
 *
 * --grouped: NCCL_DEVMEMTCP_MAX_RECVS=8 (devmem mode advertises 1 by
 * default: see core.c read_config), so the grouped rounds run.
 * --no-versions: only the schedule through the newest -v version.
 * --then-bench MIB: the --bench rounds on the schedule's first comm, before
 * its close (no second init, listen and NIC setup).
 *
 * --provider cuda: --device with the sender's arena in GPU memory
 * (libcuda.so.1 dlopen'ed: cuMemAlloc, cuMemGetHandleForAddressRange's
 * dma-buf registered with regMrDmaBuf, filled with cuMemcpyHtoD from a
 * host copy); the receiver as --device (udmabuf bounce buffer, the unpack
 * on the CPU).  Without a CUDA driver, a GPU or dma-buf export the run
 * prints one SKIP with the reason and exits 4; without a devmem NIC
 * (init fails) likewise.  --provider udmabuf is --device.
 *
 * --init-fails: init only (rank 0 alone), expected to fail; the reason
 * must reach the log function.
 *
 * KTAP lines from both ranks, prefixed "rankN:".
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <linux/udmabuf.h>
#include <net/if.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ktap.h"
#include "nccl_net.h"
#include "plugin.h"	/* the handle and hello: raw_connect() speaks them */

#define MiB (1u << 20)
#define DEADLINE_S 30
#define ARENA (40 * MiB)
#define DN_GROUP_MAX 8

static struct ktap t;
static int rank;
static int V;			/* ABI version being driven */
static void *table;		/* its ncclNetPlugin_vN */
static int side = -1;		/* the bootstrap stand-in */
static char last_warn[1024];
static int warns;
static bool device;		/* --device */
static bool no_versions;	/* --no-versions */
static size_t then_bench;	/* --then-bench MIB: bytes */
static void bench_rounds(void *comm, size_t bytes);
static int arena_fd = -1;	/* --device: the arena's dma-buf */
static uint8_t *arena;
static void *mh;
/* token counters the plugin logs (device receives) */
static int tok_calls, tok_bad, closes_seen, close_bad;
static unsigned close_frags;	/* fragments given back by close */
static char tok_last[512];

#define CHECK(ok, ...) check(&t, (ok), "rank" "%d: " FIRST(__VA_ARGS__) REST(__VA_ARGS__))
#define FIRST(a, ...) a
#define REST(a, ...) , rank, ##__VA_ARGS__

static void logger(ncclDebugLogLevel lvl, unsigned long flags, const char *file, int line,
		   const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	(void)flags;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	printf("# rank%d %s %s:%d %s\n", rank, lvl == NCCL_LOG_WARN ? "WARN" : "INFO", file,
	       line, msg);
	fflush(stdout);
	if (lvl == NCCL_LOG_WARN) {
		snprintf(last_warn, sizeof(last_warn), "%s", msg);
		warns++;
	}
	/* "tokens at irecvConsumed: N frags; before received R released L held
	 * H; after received R released L held H lost X": the request's N were
	 * held until now (none given back before irecvConsumed) and this call
	 * gave back exactly them */
	const char *tk = strstr(msg, "tokens at irecvConsumed:");
	unsigned long long br, bl, bh, ar, al, ah, lost;
	unsigned nf;

	if (tk) {
		tok_calls++;
		if (sscanf(tk, "tokens at irecvConsumed: %u frags; before received %llu released %llu "
			   "held %llu; after received %llu released %llu held %llu lost %llu", &nf,
			   &br, &bl, &bh, &ar, &al, &ah, &lost) != 8 || bh < nf || al - bl != nf ||
		    ah != bh - nf || ar != br || lost) {
			tok_bad++;
			snprintf(tok_last, sizeof(tok_last), "%s", tk);
		}
	}
	tk = strstr(msg, "tokens at close:");
	if (tk && sscanf(tk, "tokens at close: %u frags", &nf) == 1)
		close_frags += nf;
	/* "receive comm closed: ... tokens received R released L held H lost X" */
	tk = strstr(msg, "receive comm closed:");
	if (tk && (tk = strstr(tk, "tokens received"))) {
		closes_seen++;
		if (sscanf(tk, "tokens received %llu released %llu held %llu lost %llu", &ar, &al, &ah,
			   &lost) != 4 || ar != al || ah || lost) {
			close_bad++;
			snprintf(tok_last, sizeof(tok_last), "%s", tk);
		}
	}
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* --------------------------------------------- calls through table, any V */

#define T8 ((ncclNet_v8_t *)table)
#define T9 ((ncclNet_v9_t *)table)
#define T10 ((ncclNet_v10_t *)table)
#define T11 ((ncclNet_v11_t *)table)
#define T12 ((ncclNet_v12_t *)table)

static void *ctx;	/* v11+: init's context */

static ncclResult_t p_init(void)
{
	ncclNetCommConfig_v11_t cfg = { .trafficClass = NCCL_NET_TRAFFIC_CLASS_UNDEF };

	switch (V) {
	case 8: return T8->init(logger);
	case 9: return T9->init(logger);
	case 10: return T10->init(logger, NULL);
	case 11: return T11->init(&ctx, 0x1234, &cfg, logger, NULL);
	default: return T12->init(&ctx, 0x1234, &cfg, logger, NULL);
	}
}

static ncclResult_t p_listen(void *handle, void **l)
{
	switch (V) {
	case 8: case 9: case 10: return T8->listen(0, handle, l);
	case 11: return T11->listen(ctx, 0, handle, l);
	default: return T12->listen(ctx, 0, handle, l);
	}
}

static ncclResult_t p_connect(void *handle, void **s)
{
	ncclNetDeviceHandle_v8_t *dh = NULL;
	ncclNetCommConfig_v10_t cfg = { .trafficClass = NCCL_NET_TRAFFIC_CLASS_UNDEF };

	switch (V) {
	case 8: case 9: return T8->connect(0, handle, s, &dh);
	case 10: return T10->connect(0, &cfg, handle, s, &dh);
	case 11: return T11->connect(ctx, 0, handle, s, &dh);
	default: return T12->connect(ctx, 0, handle, s, &dh);
	}
}

/* The calls whose signature is the same in every version: v8's slots. */
#define P(call) (T8->call)

static ncclResult_t p_isend(void *c, void *data, size_t size, int tag, void *mh, void **req)
{
	switch (V) {
	case 8: return T8->isend(c, data, (int)size, tag, mh, req);
	case 9: return T9->isend(c, data, size, tag, mh, req);
	case 10: return T10->isend(c, data, size, tag, mh, NULL, req);
	case 11: return T11->isend(c, data, size, tag, mh, NULL, req);
	default: return T12->isend(c, data, size, tag, mh, NULL, req);
	}
}

static ncclResult_t p_irecv(void *c, int n, void **data, size_t *sizes, int *tags, void **mh,
			    void **req)
{
	int isz[NCCL_NET_MAX_REQUESTS];

	switch (V) {
	case 8:
		for (int i = 0; i < n; i++)
			isz[i] = (int)sizes[i];
		return T8->irecv(c, n, data, isz, tags, mh, req);
	case 9: return T9->irecv(c, n, data, sizes, tags, mh, req);
	case 10: return T10->irecv(c, n, data, sizes, tags, mh, NULL, req);
	case 11: return T11->irecv(c, n, data, sizes, tags, mh, NULL, req);
	default: return T12->irecv(c, n, data, sizes, tags, mh, NULL, req);
	}
}

/* The fields every version shares, read from that version's layout. */
struct props {
	const char *name;
	int ptr_support, speed, max_comms, max_recvs, dev_type, dev_version;
	int rail_id;		/* v12 */
	size_t max_p2p;		/* v9+ */
};

static ncclResult_t p_props(struct props *p)
{
	ncclResult_t r;

	memset(p, 0, sizeof(*p));
#define COPY(q) do { p->name = q.name; p->ptr_support = q.ptrSupport; p->speed = q.speed; \
		p->max_comms = q.maxComms; p->max_recvs = q.maxRecvs;                   \
		p->dev_type = q.netDeviceType; p->dev_version = q.netDeviceVersion; } while (0)
	switch (V) {
	case 8: { ncclNetProperties_v8_t q; r = T8->getProperties(0, &q); COPY(q); break; }
	case 9: { ncclNetProperties_v9_t q; r = T9->getProperties(0, &q); COPY(q);
		p->max_p2p = q.maxP2pBytes; break; }
	case 10: { ncclNetProperties_v10_t q; r = T10->getProperties(0, &q); COPY(q);
		p->max_p2p = q.maxP2pBytes; break; }
	case 11: { ncclNetProperties_v11_t q; r = T11->getProperties(0, &q); COPY(q);
		p->max_p2p = q.maxP2pBytes; break; }
	default: { ncclNetProperties_v12_t q; r = T12->getProperties(0, &q); COPY(q);
		p->max_p2p = q.maxP2pBytes; p->rail_id = q.railId; break; }
	}
	return r;
}

/* ----------------------------------------------------------- side socket */

static int side_send(const void *buf, size_t len)
{
	return write(side, buf, len) == (ssize_t)len ? 0 : -1;
}

static int side_recv(void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(side, (char *)buf + got, len - got);

		if (n <= 0)
			return -1;
		got += n;
	}
	return 0;
}

/* -------------------------------------------------------------- pattern */

static uint8_t pat(uint32_t seed, size_t i)
{
	uint32_t x = (uint32_t)i * 2654435761u ^ seed * 40503u;

	return (uint8_t)(x >> 13 ^ x >> 24 ^ i >> 9);
}

/* ------------------------------------------------- --provider cuda */

/*
 * The few CUDA driver API calls the sender needs, declared here (no CUDA
 * header, no link): the real entry points behind cuda.h's macros.
 */
typedef int CUresult;
typedef int CUdevice;
typedef struct CUctx_st *CUcontext;
typedef unsigned long long CUdeviceptr;
#define CU_MEM_RANGE_HANDLE_TYPE_DMA_BUF_FD 1

static struct {
	bool on;			/* --provider cuda */
	void *dl;
	CUresult (*init)(unsigned flags);
	CUresult (*device_get)(CUdevice *dev, int ordinal);
	CUresult (*primary_retain)(CUcontext *ctx, CUdevice dev);
	CUresult (*ctx_set)(CUcontext ctx);
	CUresult (*mem_alloc)(CUdeviceptr *p, size_t size);
	CUresult (*mem_free)(CUdeviceptr p);
	CUresult (*htod)(CUdeviceptr dst, const void *src, size_t len);
	CUresult (*get_handle)(void *handle, CUdeviceptr p, size_t size, int type,
			       unsigned long long flags);
	CUresult (*err_name)(CUresult r, const char **name);
	CUdeviceptr dptr;		/* the sender's arena, on the GPU */
	uint8_t *shadow;		/* its host copy: filled, then copied over */
	int copy_errors;
} cu;

static const char *cu_err(CUresult r)
{
	const char *n = NULL;

	if (cu.err_name && !cu.err_name(r, &n) && n)
		return n;
	return "unknown CUDA error";
}

/*
 * The sender's arena in GPU memory: libcuda.so.1, cuInit, the primary
 * context of GPU 0, cuMemAlloc of ARENA bytes and its dma-buf
 * (cuMemGetHandleForAddressRange, as NCCL's regMrDmaBuf path does).  0 and
 * *fd, or -1 with why (a missing driver or GPU: the caller skips).
 */
static int cuda_arena(int *fd, char *why, size_t len)
{
	static const struct { const char *name; size_t off; } syms[] = {
		{ "cuInit", offsetof(typeof(cu), init) },
		{ "cuDeviceGet", offsetof(typeof(cu), device_get) },
		{ "cuDevicePrimaryCtxRetain", offsetof(typeof(cu), primary_retain) },
		{ "cuCtxSetCurrent", offsetof(typeof(cu), ctx_set) },
		{ "cuMemAlloc_v2", offsetof(typeof(cu), mem_alloc) },
		{ "cuMemFree_v2", offsetof(typeof(cu), mem_free) },
		{ "cuMemcpyHtoD_v2", offsetof(typeof(cu), htod) },
		{ "cuMemGetHandleForAddressRange", offsetof(typeof(cu), get_handle) },
		{ "cuGetErrorName", offsetof(typeof(cu), err_name) },
	};
	CUcontext ctx;
	CUdevice dev;
	CUresult r;

	cu.dl = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!cu.dl) {
		snprintf(why, len, "no CUDA driver (dlopen libcuda.so.1: %s)", dlerror());
		return -1;
	}
	for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
		void *f = dlsym(cu.dl, syms[i].name);

		if (!f) {
			snprintf(why, len, "the CUDA driver has no %s (too old for dma-buf "
				 "export: CUDA 11.7+)", syms[i].name);
			return -1;
		}
		memcpy((char *)&cu + syms[i].off, &f, sizeof(f));
	}
	if ((r = cu.init(0))) {
		snprintf(why, len, "no usable GPU (cuInit: %s)", cu_err(r));
		return -1;
	}
	if ((r = cu.device_get(&dev, 0)) || (r = cu.primary_retain(&ctx, dev)) ||
	    (r = cu.ctx_set(ctx))) {
		snprintf(why, len, "no context on GPU 0: %s", cu_err(r));
		return -1;
	}
	if ((r = cu.mem_alloc(&cu.dptr, ARENA))) {
		snprintf(why, len, "cuMemAlloc of %u MiB: %s", ARENA / MiB, cu_err(r));
		return -1;
	}
	if ((r = cu.get_handle(fd, cu.dptr, ARENA, CU_MEM_RANGE_HANDLE_TYPE_DMA_BUF_FD, 0))) {
		snprintf(why, len, "no dma-buf export of GPU memory (%s: the open GPU kernel "
			 "module and CUDA 11.7+ are needed)", cu_err(r));
		cu.mem_free(cu.dptr);
		cu.dptr = 0;
		return -1;
	}
	return 0;
}

/* Before any fork: whether the sender will get its GPU arena (CUDA does
 * not survive a fork, so a child tries and tells).  "" or the reason. */
static void cuda_probe(char *why, size_t len)
{
	int p[2], fd = -1, st;
	pid_t pid;
	ssize_t n;

	why[0] = '\0';
	if (pipe2(p, O_CLOEXEC)) {
		snprintf(why, len, "pipe: %s", strerror(errno));
		return;
	}
	pid = fork();
	if (pid == 0) {
		char w[256] = "";

		close(p[0]);
		if (cuda_arena(&fd, w, sizeof(w)) == 0)
			w[0] = '\0';
		if (write(p[1], w, strlen(w)) < 0)
			_exit(1);
		_exit(0);
	}
	close(p[1]);
	n = pid < 0 ? -1 : read(p[0], why, len - 1);
	why[n > 0 ? n : 0] = '\0';
	close(p[0]);
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
		snprintf(why, len, "the CUDA probe did not finish (status %#x)", st);
}

static void fill(uint8_t *p, size_t len, uint32_t seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = pat(seed, i);
	/* --provider cuda, the sender: what isend sends is on the GPU */
	if (cu.dptr && len && p >= cu.shadow && p < cu.shadow + ARENA) {
		CUresult r = cu.htod(cu.dptr + (size_t)(p - cu.shadow), p, len);

		if (r) {
			printf("# rank%d: cuMemcpyHtoD of %zu bytes: %s\n", rank, len, cu_err(r));
			cu.copy_errors++;
		}
	}
}

/* index of the first wrong byte, or -1 */
static long verify(const uint8_t *p, size_t len, uint32_t seed)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != pat(seed, i))
			return (long)i;
	return -1;
}

#define CANARY 0xa5

/* --device: the arena as a udmabuf (memfd pages), mapped for the CPU */
static uint8_t *arena_new(void)
{
	struct udmabuf_create uc = { .flags = UDMABUF_FLAGS_CLOEXEC, .size = ARENA };
	int memfd, dev;
	void *p;

	if (!device)
		return aligned_alloc(4096, ARENA);
	memfd = memfd_create("nccl-harness", MFD_ALLOW_SEALING | MFD_CLOEXEC);
	if (memfd < 0 || ftruncate(memfd, ARENA) || fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK)) {
		printf("# rank%d: memfd: %s\n", rank, strerror(errno));
		return NULL;
	}
	dev = open("/dev/udmabuf", O_RDWR | O_CLOEXEC);
	uc.memfd = memfd;
	arena_fd = dev < 0 ? -1 : ioctl(dev, UDMABUF_CREATE, &uc);
	if (arena_fd < 0) {
		printf("# rank%d: udmabuf of %u MiB: %s\n", rank, ARENA / MiB, strerror(errno));
		return NULL;
	}
	close(dev);
	p = mmap(NULL, ARENA, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	close(memfd);
	return p == MAP_FAILED ? NULL : p;
}

/* Register the arena: host memory, or (--device) its dma-buf as CUDA memory. */
static ncclResult_t reg_arena(void *comm, void **h)
{
	if (device)
		return P(regMrDmaBuf)(comm, arena, ARENA, NCCL_PTR_CUDA, 0, arena_fd, h);
	return P(regMr)(comm, arena, ARENA, NCCL_PTR_HOST, h);
}

/* The device handles accept returned, by comm (rank 0). */
static struct { void *comm; ncclNetDeviceHandle_v8_t *dh; } devh[8];

static struct dmt_nccl_unpack_handle *unpack_handle(void *comm)
{
	for (unsigned i = 0; i < sizeof(devh) / sizeof(devh[0]); i++)
		if (devh[i].comm == comm && devh[i].dh &&
		    devh[i].dh->netDeviceType == NCCL_NET_DEVICE_UNPACK)
			return devh[i].dh->handle;
	return NULL;
}

/* The ntuple rules on our interface now (-1: cannot tell, e.g. veth). */
static int ntuple_rules(void)
{
	struct ethtool_rxnfc nfc = { .cmd = ETHTOOL_GRXCLSRLCNT };
	const char *ifn = getenv("NCCL_DEVMEMTCP_IFNAME");
	struct ifreq ifr;
	int fd, ret;

	if (!ifn)
		return -1;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifn);
	ifr.ifr_data = (void *)&nfc;
	ret = ioctl(fd, SIOCETHTOOL, &ifr);
	close(fd);
	return ret ? -1 : (int)nfc.rule_cnt;
}

/* ------------------------------------------------------------- connect */

/*
 * One connection of a split (devmem) connect, made by hand: blocking
 * connect to the listen comm of handle @h, then its hello with @flags
 * (DN_HELLO_CTRL or DN_HELLO_DATA) and @connid.  The fd, or -1.
 */
static int raw_connect(const struct dn_handle *h, uint32_t flags, uint64_t connid)
{
	struct sockaddr_storage ss;
	struct dn_hello hello = { .magic = DN_MAGIC, .flags = flags, .nonce = h->nonce,
				  .connid = connid };
	socklen_t len = dn_handle_addr(h, &ss);
	int fd;

	fd = socket(h->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&ss, len) ||
	    send(fd, &hello, sizeof(hello), MSG_NOSIGNAL) != sizeof(hello)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Rank 0: listen, hand the handle over, accept until the comm exists.
 * Rank 1: take the handle, connect until the comm exists. */
static void *establish(void *lcomm, int *retries)
{
	char handle[NCCL_NET_HANDLE_MAXSIZE];
	void *comm = NULL;
	double end = now() + DEADLINE_S;
	ncclResult_t r;

	*retries = 0;
	if (rank == 1 && side_recv(handle, sizeof(handle)))
		return NULL;
	while (!comm && now() < end) {
		if (rank == 0) {
			ncclNetDeviceHandle_v8_t *dh = NULL;

			r = P(accept)(lcomm, &comm, &dh);
			for (unsigned i = 0; comm && i < sizeof(devh) / sizeof(devh[0]); i++)
				if (!devh[i].comm || devh[i].comm == comm) {
					devh[i].comm = comm;
					devh[i].dh = dh;
					break;
				}
		} else {
			r = p_connect(handle, &comm);
		}
		if (r != ncclSuccess) {
			printf("# rank%d: %s returned %d\n", rank, rank ? "connect" : "accept", r);
			return NULL;
		}
		if (!comm) {
			++*retries;
			usleep(100);	/* a proxy thread's loop, not synchronisation */
		}
	}
	return comm;
}

static void *do_listen(void)
{
	char handle[NCCL_NET_HANDLE_MAXSIZE] = { 0 };
	void *l = NULL;

	if (p_listen(handle, &l) != ncclSuccess || !l)
		return NULL;
	if (side_send(handle, sizeof(handle)))
		return NULL;
	return l;
}

/* --------------------------------------------------------------- rounds */

struct msg {
	size_t size;		/* sent */
	size_t posted;		/* receive buffer size */
	int tag;
	uint32_t seed;
	size_t off;		/* in the arena */
	bool host;		/* --device: through mh_host (the arena as host memory) */
};

static void *mh_host;	/* --device: the same arena registered with regMr */

static bool filled;	/* bench: the sender's buffers already hold the pattern */
static uint8_t *bench_ref;	/* bench: the 8 messages' expected bytes, for memcmp */

/* Wait for every request; sizes[i] of request i into got[i][..]. */
static bool wait_all(void **req, int nreq, int got[][NCCL_NET_MAX_REQUESTS], const char *what)
{
	int left = nreq;
	double end = now() + DEADLINE_S;

	while (left && now() < end) {
		for (int i = 0; i < nreq; i++) {
			int done = 0;
			ncclResult_t r;

			if (!req[i])
				continue;
			r = P(test)(req[i], &done, got ? got[i] : NULL);
			if (r != ncclSuccess) {
				printf("# rank%d: %s: test returned %d\n", rank, what, r);
				return false;
			}
			if (done) {
				req[i] = NULL;
				left--;
			}
		}
	}
	if (left)
		printf("# rank%d: %s: %d request%s not done after %d s\n", rank, what, left,
		       left == 1 ? "" : "s", DEADLINE_S);
	return !left;
}

/* Message x arrived whole (reported size, every byte, nothing past it). */
static bool msg_ok(const struct msg *x, int rep, const char *name, int i)
{
	long bad;
	size_t tail;

	if (bench_ref)	/* the same check, at memcmp speed */
		bad = memcmp(arena + x->off, bench_ref + (size_t)(x->seed - 30000) * 4 * MiB,
			     x->size) ? verify(arena + x->off, x->size, x->seed) : -1;
	else
		bad = verify(arena + x->off, x->size, x->seed);
	for (tail = x->size; tail < x->posted + 64; tail++)
		if (arena[x->off + tail] != CANARY)
			break;
	if (rep != (int)x->size || bad >= 0 || tail != x->posted + 64) {
		printf("# rank0: %s: message %d (%zu bytes, posted %zu, tag %d): reported %d, "
		       "first wrong byte %ld, byte past the message changed at %zu\n", name, i,
		       x->size, x->posted, x->tag, rep, bad, tail);
		return false;
	}
	return true;
}

/*
 * What NCCL's unpack kernel does for one finished receive of n buffers:
 * each buffer's slot is head++ % 16; each loadMeta entry copies len bytes
 * from bounce_buf + src_off to the buffer + dst_off.  Entries reaching past
 * the posted buffer are an error (the kernel would scribble).
 */
static bool unpack(struct dmt_nccl_unpack_handle *uh, int n, void **data, const size_t *posted,
		   const bool *dev, const char *name)
{
	bool ok = true;

	for (int j = 0; j < n; j++) {
		if (!dev[j])
			continue;	/* a host buffer: filled by the plugin, no slot */
		int slot = (int)(uh->head++ % NCCL_NET_DEVICE_UNPACK_MAX_QUEUE_DEPTH);
		uint64_t cnt = __atomic_load_n(&uh->meta->cnt[slot], __ATOMIC_ACQUIRE);

		if (cnt > NET_UNPACK_MAX_SLICE_PAGES) {
			printf("# rank0: %s: slot %d count %llu\n", name, slot, (unsigned long long)cnt);
			return false;
		}
		for (uint64_t e = 0; e < cnt; e++) {
			const union dmt_nccl_loadmeta *lm = &uh->meta->mem[slot][e];

			if (lm->dst_off + lm->len > posted[j]) {
				printf("# rank0: %s: slot %d entry %llu: [%llu, +%u) past the %zu-byte "
				       "buffer\n", name, slot, (unsigned long long)e,
				       (unsigned long long)lm->dst_off, lm->len, posted[j]);
				ok = false;
				continue;
			}
			memcpy((uint8_t *)data[j] + lm->dst_off,
			       (const uint8_t *)uh->bounce_buf + lm->src_off, lm->len);
		}
	}
	return ok;
}

/*
 * Rank 0 with device buffers, as NCCL's proxy and kernel: post while the
 * plugin gives requests (an UNPACK slot per buffer, 16 at most until
 * irecvConsumed), wait for the oldest, unpack it on the CPU, validate,
 * irecvConsumed, post more.
 */
static bool round_recv_device(void *comm, struct msg *m, int k, int group, bool overflow_check,
			      const char *name)
{
	struct dmt_nccl_unpack_handle *uh = unpack_handle(comm);
	int ngroups = k / group, posted = 0, finished = 0, window = 0, nulls = 0, ndev = 0;
	void *req[NCCL_NET_MAX_REQUESTS] = { 0 };
	int tok0 = tok_calls, bad0 = tok_bad;
	bool ok = true;

	if (!uh) {
		printf("# rank0: %s: accept gave no UNPACK device handle\n", name);
		return false;
	}
	while (finished < ngroups) {
		while (posted < ngroups) {
			void *data[DN_GROUP_MAX], *mhs[DN_GROUP_MAX];
			size_t sizes[DN_GROUP_MAX];
			int tags[DN_GROUP_MAX], g = posted * group;

			for (int j = 0; j < group; j++) {
				data[j] = arena + m[g + j].off;
				sizes[j] = m[g + j].posted;
				tags[j] = m[g + j].tag;
				mhs[j] = m[g + j].host ? mh_host : mh;
			}
			if (p_irecv(comm, group, data, sizes, tags, mhs, &req[posted])) {
				printf("# rank0: %s: irecv %d failed\n", name, posted);
				return false;
			}
			if (!req[posted]) {
				nulls++;
				break;
			}
			posted++;
		}
		if (posted - finished > window)
			window = posted - finished;
		if (posted == finished) {
			printf("# rank0: %s: irecv gives no request with none in flight\n", name);
			return false;
		}
		/* the oldest, to the end */
		int sz[DN_GROUP_MAX] = { 0 }, done = 0;
		double end = now() + DEADLINE_S;

		while (!done && now() < end)
			if (P(test)(req[finished], &done, sz) != ncclSuccess) {
				printf("# rank0: %s: test returned an error\n", name);
				return false;
			}
		if (!done) {
			printf("# rank0: %s: receive %d not done after %d s\n", name, finished,
			       DEADLINE_S);
			return false;
		}
		void *data[DN_GROUP_MAX];
		size_t sizes[DN_GROUP_MAX];
		bool dev[DN_GROUP_MAX];
		int g = finished * group;

		for (int j = 0; j < group; j++) {
			data[j] = arena + m[g + j].off;
			sizes[j] = m[g + j].posted;
			dev[j] = !m[g + j].host;	/* a slot each, 0 bytes too */
		}
		ok &= unpack(uh, group, data, sizes, dev, name);
		for (int j = 0; j < group; j++)
			if (!m[g + j].host) {
				ndev++;	/* a receive with a device buffer: one token line */
				break;
			}
		for (int j = 0; j < group; j++)
			ok &= msg_ok(&m[g + j], sz[j], name, g + j);
		ok &= P(irecvConsumed)(comm, group, req[finished]) == ncclSuccess;
		finished++;
	}
	if (overflow_check)
		ok &= CHECK(window == NCCL_NET_DEVICE_UNPACK_MAX_QUEUE_DEPTH / group && nulls > 0,
			    "%s: at most %d device receives in flight (one UNPACK slot each until "
			    "irecvConsumed; %d seen, %d NULL requests)", name,
			    NCCL_NET_DEVICE_UNPACK_MAX_QUEUE_DEPTH / group, window, nulls);
	if (tok_calls - tok0 != ndev || tok_bad != bad0) {
		printf("# rank0: %s: %d token lines for %d receives into device memory, %d wrong: "
		       "%s\n", name, tok_calls - tok0, ndev, tok_bad - bad0, tok_last);
		ok = false;
	}
	return ok;
}

/*
 * One round: k messages, received as k/group irecvs of group buffers each.
 * The sender sends each group's messages in reverse tag order, so a frame
 * has to find its buffer by tag.
 */
static bool round_run(void *comm, struct msg *m, int k, int group, bool overflow_check,
		      const char *name)
{
	void *req[NCCL_NET_MAX_REQUESTS] = { 0 };
	int got[NCCL_NET_MAX_REQUESTS][NCCL_NET_MAX_REQUESTS];
	int nreq = 0;
	bool ok = true;
	size_t off = 0;

	for (int i = 0; i < k; i++) {
		m[i].off = off;
		off += (m[i].posted > m[i].size ? m[i].posted : m[i].size) + 64;
		off = (off + 63) & ~(size_t)63;
	}
	if (off > ARENA) {
		printf("# arena too small for %s\n", name);
		return false;
	}
	if (rank == 1) {
		for (int i = 0; i < k && !filled; i++)
			fill(arena + m[i].off, m[i].size, m[i].seed);
		for (int g = 0; g < k; g += group)
			for (int j = group - 1; j >= 0; j--) {
				struct msg *x = &m[g + j];

				if (p_isend(comm, arena + x->off, x->size, x->tag,
					    x->host ? mh_host : mh, &req[nreq]) ||
				    !req[nreq]) {
					printf("# rank1: %s: isend %d gave no request\n", name, g + j);
					return false;
				}
				nreq++;
			}
		if (overflow_check) {
			void *extra = (void *)1;
			ncclResult_t r = p_isend(comm, arena, 1, 99, mh, &extra);

			ok &= CHECK(r == ncclSuccess && extra == NULL,
				    "%s: isend number %d gives a NULL request (r %d)", name, k + 1, r);
		}
		return wait_all(req, nreq, NULL, name) && ok;
	}

	/* rank 0 */
	for (int i = 0; i < k; i++)
		memset(arena + m[i].off, CANARY, m[i].posted + 64);
	if (device)
		return round_recv_device(comm, m, k, group, overflow_check, name);
	for (int g = 0; g < k; g += group) {
		void *data[NCCL_NET_MAX_REQUESTS];
		size_t sizes[NCCL_NET_MAX_REQUESTS];
		int tags[NCCL_NET_MAX_REQUESTS];
		void *mhs[NCCL_NET_MAX_REQUESTS];

		for (int j = 0; j < group; j++) {
			data[j] = arena + m[g + j].off;
			sizes[j] = m[g + j].posted;
			tags[j] = m[g + j].tag;
			mhs[j] = mh;
		}
		if (p_irecv(comm, group, data, sizes, tags, mhs, &req[nreq]) || !req[nreq]) {
			printf("# rank0: %s: irecv %d gave no request\n", name, g / group);
			return false;
		}
		nreq++;
	}
	if (overflow_check) {
		void *extra = (void *)1, *d = arena;
		size_t s = 1;
		int tg = 99;
		ncclResult_t r = p_irecv(comm, 1, &d, &s, &tg, &mh, &extra);

		ok &= CHECK(r == ncclSuccess && extra == NULL,
			    "%s: irecv number %d gives a NULL request (r %d)", name, nreq + 1, r);
	}
	void *posted[NCCL_NET_MAX_REQUESTS];

	memcpy(posted, req, sizeof(posted));
	if (!wait_all(req, nreq, got, name))
		return false;
	for (int i = 0; i < k; i++)
		ok &= msg_ok(&m[i], got[i / group][i % group], name, i);
	/* NCCL tells the plugin when the device is done with the data */
	for (int i = 0; i < nreq; i++)
		ok &= P(irecvConsumed)(comm, group, posted[i]) == ncclSuccess;
	return ok;
}

/* Run a round on both ranks and report it once per rank. */
static bool round_check(void *comm, struct msg *m, int k, int group, bool overflow,
			const char *name)
{
	uint64_t bytes = 0;
	double t0 = now();
	bool ok = round_run(comm, m, k, group, overflow, name);

	for (int i = 0; i < k; i++)
		bytes += m[i].size;
	return CHECK(ok, "%s: %d message%s, %llu bytes%s (%.1f ms)", name, k, k == 1 ? "" : "s",
		     (unsigned long long)bytes, rank ? " sent" : " received and validated",
		     (now() - t0) * 1e3);
}

/*
 * --device, a message over NCCL's UNPACK slice (4 MiB: NCCL never posts a
 * larger device receive): host buffers registered with regMr on the same
 * comm, so the stream carries dma-buf and host-memory sends in turn.
 */
static void host_round(void *comm, struct msg *m, const char *what)
{
	uint8_t *dev_arena = arena, *h = aligned_alloc(4096, m->posted + 4096);
	void *dev_mh = mh, *hmh = NULL;
	char name[96];

	snprintf(name, sizeof(name), "%s into host buffers", what);
	if (!CHECK(h && P(regMr)(comm, h, m->posted + 4096, NCCL_PTR_HOST, &hmh) == ncclSuccess,
		   "%s: regMr", name)) {
		free(h);
		return;
	}
	arena = h;
	mh = hmh;
	device = false;
	round_check(comm, m, 1, 1, false, name);
	device = true;
	arena = dev_arena;
	mh = dev_mh;
	P(deregMr)(comm, hmh);
	free(h);
}

/* ----------------------------------------------------------------- rank */

static void *open_plugin(const char *path)
{
	void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);

	if (!dl)
		printf("# rank%d: dlopen %s: %s\n", rank, path, dlerror());
	return dl;
}

static bool use_version(void *dl, int v)
{
	char sym[32];

	snprintf(sym, sizeof(sym), "ncclNetPlugin_v%d", v);
	V = v;
	table = dlsym(dl, sym);
	return table != NULL;
}

static void finalize(void)
{
	if (V >= 11 && ctx) {
		if (V == 11)
			T11->finalize(ctx);
		else
			T12->finalize(ctx);
		ctx = NULL;
	}
}

/* Rank 0 alone: what NCCL must hear as an error, with the reason logged. */
static void refusals(void)
{
	char handle[NCCL_NET_HANDLE_MAXSIZE] = { 0 }, bogus[NCCL_NET_HANDLE_MAXSIZE];
	void *l = NULL, *c = NULL, *req = (void *)1;
	int warns0 = warns, done = 0, n;
	double end = now() + DEADLINE_S;
	ncclResult_t r = ncclSuccess;

	/* a listen comm closed before the connect: refused, reported */
	if (p_listen(handle, &l) == ncclSuccess && l)
		P(closeListen)(l);
	while (r == ncclSuccess && !c && now() < end)
		r = p_connect(handle, &c);
	CHECK(r == ncclRemoteError && c == NULL && warns > warns0,
	      "connect to a closed listen comm: ncclRemoteError (%d), reason logged: %s", r,
	      warns > warns0 ? last_warn : "(none)");
	warns0 = warns;
	memset(bogus, 0x5a, sizeof(bogus));
	c = NULL;
	r = p_connect(bogus, &c);
	CHECK(r == ncclInvalidArgument && c == NULL && warns > warns0,
	      "connect with a handle that is not ours: ncclInvalidArgument (%d)", r);
	r = P(test)(NULL, &done, NULL);
	CHECK(r == ncclInvalidArgument, "test(NULL request): ncclInvalidArgument (%d)", r);
	r = P(getProperties)(1, NULL);
	CHECK(r == ncclInvalidArgument, "getProperties of device 1 (of 1): ncclInvalidArgument (%d)",
	      r);
	n = 0;
	r = P(devices)(&n);
	CHECK(r == ncclSuccess && n == 1 && req, "devices() still 1 after the refusals");
	warns = 0;	/* the warnings above were asked for */
}

static void full_suite(void)
{
	static const size_t sizes[] = { 1, 2, 3, 7, 8, 63, 4095, 4096, 4097, 65535, 65536,
					 1 * MiB + 3, 4 * MiB, 16 * MiB };
	struct msg m[NCCL_NET_MAX_REQUESTS];
	int retries;
	void *l = NULL, *comm, *comm2;
	struct props pr;
	int nd = -1;
	char name[64];

	ncclResult_t r = P(devices)(&nd);

	CHECK(r == ncclSuccess && nd == 1, "v%d devices() is 1 (%d)", V, nd);
	if (CHECK(p_props(&pr) == ncclSuccess, "v%d getProperties", V))
		CHECK(pr.name && pr.name[0] && (pr.ptr_support & NCCL_PTR_HOST) && pr.speed > 0 &&
		      pr.max_comms > 0 && pr.max_recvs >= 1 &&
		      (pr.dev_type == NCCL_NET_DEVICE_HOST ||
		       (pr.dev_type == NCCL_NET_DEVICE_UNPACK &&
			pr.dev_version == NCCL_NET_DEVICE_UNPACK_VERSION)),
		      "v%d properties: name %s, ptrSupport %#x, speed %d, maxComms %d, maxRecvs %d, "
		      "device type %d version %#x", V, pr.name, pr.ptr_support, pr.speed,
		      pr.max_comms, pr.max_recvs, pr.dev_type, pr.dev_version);

	char handle[NCCL_NET_HANDLE_MAXSIZE] = { 0 };

	if (rank == 0) {
		void *early = (void *)1;
		ncclNetDeviceHandle_v8_t *dh = NULL;

		if (p_listen(handle, &l) != ncclSuccess || !l) {
			CHECK(false, "listen");
			return;
		}
		/* after the listen: in devmem mode the refusals' own listen
		 * then shares its queues (no second NIC setup and undo) */
		refusals();
		CHECK(P(accept)(l, &early, &dh) == ncclSuccess && early == NULL,
		      "accept before any peer connected: success, NULL comm");
		if (side_send(handle, sizeof(handle)))
			return;
	}
	comm = establish(l, &retries);
	if (!CHECK(comm != NULL, "%s established (%d non-blocking retr%s)",
		   rank ? "send comm" : "receive comm", retries, retries == 1 ? "y" : "ies"))
		return;
	if (!CHECK(reg_arena(comm, &mh) == ncclSuccess && mh, "%s of %u MiB %s",
		   device ? "regMrDmaBuf" : "regMr", ARENA / MiB,
		   device ? "device memory (udmabuf, NCCL_PTR_CUDA)" : "host memory"))
		return;

	/* sizes, one in flight, receive buffers larger than the message for odd i */
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		m[0] = (struct msg){ .size = sizes[i], .posted = sizes[i] + (i & 1 ? 1000 : 0),
				     .tag = (int)i, .seed = 100 + (uint32_t)i };
		snprintf(name, sizeof(name), "size %zu%s", sizes[i], i & 1 ? " (posted +1000)" : "");
		if (device && sizes[i] > NET_UNPACK_MAX_SLICE_SIZE)
			host_round(comm, m, name);	/* over one UNPACK slice */
		else
			round_check(comm, m, 1, 1, false, name);
	}
	/* depth */
	static const int depths[] = { 1, 8, 32 };
	for (int d = 0; d < 3; d++) {
		int k = depths[d];

		for (int i = 0; i < k; i++)
			m[i] = (struct msg){ .size = 65536 + 4099 * i, .posted = 65536 + 4099 * i,
					     .tag = i, .seed = 1000 * (d + 1) + i };
		snprintf(name, sizeof(name), "%d in flight", k);
		round_check(comm, m, k, 1, k == NCCL_NET_MAX_REQUESTS, name);
	}
	/* --device: dma-buf and host-memory sends in flight on one stream (NCCL's
	 * LL/LL128 buffers may be host memory while SIMPLE's are on the GPU), and
	 * receives into both */
	if (device) {
		if (CHECK(P(regMr)(comm, arena, ARENA, NCCL_PTR_HOST, &mh_host) == ncclSuccess,
			  "regMr of the same arena as host memory")) {
			for (int i = 0; i < 12; i++)
				m[i] = (struct msg){ .size = 100000 + 5003 * i, .posted = 100000 + 5003 * i,
						     .tag = i, .seed = 4000 + i, .host = i % 3 == 1 };
			round_check(comm, m, 12, 1, false,
				    "12 in flight, every third through host memory");
			P(deregMr)(comm, mh_host);
		}
		mh_host = NULL;
	}
	/* grouped: for n = 2..maxRecvs, two irecvs of n buffers in flight;
	 * each has a 0-byte and a 1-byte message, the rest spread up to
	 * 1 MiB; posted sizes up to 32 bytes larger; tags distinct per irecv */
	static const size_t gsizes[] = { 4096, 65543, 3, 1 * MiB + 5, 200000, 17, 8 };
	for (int n = 2; n <= DN_GROUP_MAX; n++) {
		if (n > pr.max_recvs) {
			snprintf(name, sizeof(name), "rank%d: grouped receives of %d buffers", rank, n);
			skip(&t, name, "the plugin advertises fewer grouped receives "
			     "(maxRecvs; devmem mode: NCCL_DEVMEMTCP_MAX_RECVS)");
			continue;
		}
		for (int i = 0; i < 2 * n; i++) {
			int j = i % n, r = i / n;
			size_t sz = j == 0 ? (size_t)r : j == 1 ? (size_t)!r :
				    gsizes[(j + n + r) % 7];

			m[i] = (struct msg){ .size = sz, .posted = sz + 16 * (i % 3),
					     .tag = 100 * n + 7 * j, .seed = 5000 + 10 * n + i };
		}
		snprintf(name, sizeof(name), "grouped: 2 irecvs of %d buffers", n);
		round_check(comm, m, 2 * n, n, false, name);
	}

	/* a second comm through the same listen comm: the same handle again */
	if (rank == 0 && side_send(handle, sizeof(handle)))
		return;
	int rules0 = rank == 0 && device ? ntuple_rules() : -1, rules1 = -1;

	comm2 = establish(l, &retries);
	if (comm2 && rules0 >= 0)
		rules1 = ntuple_rules();
	if (CHECK(comm2 != NULL, "a second %s through the same listen comm",
		  rank ? "connect" : "accept")) {
		void *mh2 = NULL;

		CHECK(reg_arena(comm2, &mh2) == ncclSuccess, "regMr on the second comm");
		void *save = mh;

		mh = mh2;
		for (int i = 0; i < 4; i++)
			m[i] = (struct msg){ .size = 300000 + i, .posted = 300000 + i, .tag = i,
					     .seed = 7000 + i };
		round_check(comm2, m, 4, 1, false, "second comm: 4 in flight");
		mh = save;
		CHECK(P(deregMr)(comm2, mh2) == ncclSuccess, "deregMr on the second comm");
		CHECK((rank ? P(closeSend)(comm2) : P(closeRecv)(comm2)) == ncclSuccess,
		      "close the second comm");
		if (rules0 >= 0) {
			int rules2 = ntuple_rules();

			CHECK(rules0 >= 1 && rules1 == rules0 + 1 && rules2 == rules0,
			      "the second comm's ntuple rule gone at its close, the listen comm "
			      "open, the first comm's kept (rules: %d, %d with it, %d after)",
			      rules0, rules1, rules2);
		}
	}
	/* devmem: a connect whose data connection reaches the accept queue
	 * before its control one (their handshakes land on different RX
	 * queues, each with its own NAPI, so either may be first): accepted
	 * all the same, and acked on its control connection */
	if (rank == 0 ? side_send(handle, sizeof(handle)) : side_recv(handle, sizeof(handle)))
		return;
	if (((const struct dn_handle *)handle)->flags & DN_H_SPLIT) {
		if (rank == 0) {
			void *comm3 = establish(l, &retries);

			if (CHECK(comm3 != NULL, "accept of a connect whose data connection "
				  "came before its control one"))
				CHECK(P(closeRecv)(comm3) == ncclSuccess, "close that comm");
		} else {
			uint64_t connid = 0x5eed0000u ^ (uint64_t)getpid() << 32;
			int dfd, cfd = -1;
			uint8_t ack = 0;

			dfd = raw_connect((const void *)handle, DN_HELLO_DATA, connid);
			/* the data connection accepted and its hello read first */
			usleep(300 * 1000);
			if (dfd >= 0)
				cfd = raw_connect((const void *)handle, DN_HELLO_CTRL, connid);
			if (cfd >= 0) {
				struct pollfd pf = { .fd = cfd, .events = POLLIN };

				if (poll(&pf, 1, DEADLINE_S * 1000) != 1 || read(cfd, &ack, 1) != 1)
					ack = 0;
			}
			CHECK(ack == DN_ACK, "a connect by hand, data connection first, then "
			      "control: acked on the control connection (%#x)", ack);
			if (cfd >= 0)
				close(cfd);
			if (dfd >= 0)
				close(dfd);
		}
	}
	/* NCCL closes the listen comm right after accept: the first comm goes
	 * on without it (its RX side, rule and binding stay until it closes) */
	if (rank == 0) {
		CHECK(P(closeListen)(l) == ncclSuccess, "closeListen while the first comm lives");
		l = NULL;
	}
	/* both comms still agree after the second one closed */
	m[0] = (struct msg){ .size = 12345, .posted = 12345, .tag = 0, .seed = 9000 };
	round_check(comm, m, 1, 1, false, "first comm after the second closed");
	if (then_bench)
		bench_rounds(comm, then_bench);

	/* close with a request in flight: the receiver posts one nothing will
	 * fill (the sender may have closed already: a warning then is right) */
	int warns0 = warns;

	/* device buffers: two receives finished (fragments held, UNPACK slots
	 * in use) and never consumed, then one that no send matches */
	void *held[2] = { NULL, NULL };

	if (device && rank == 1) {
		fill(arena, 2 * 200000, 8000);
		for (int i = 0; i < 2; i++)
			p_isend(comm, arena + i * 200000, 200000, i, mh, &held[i]);
		CHECK(held[0] && held[1] && wait_all(held, 2, NULL, "held"),
		      "two sends whose receives stay unconsumed");
	}
	if (device && rank == 0) {
		int got[2][NCCL_NET_MAX_REQUESTS];

		for (int i = 0; i < 2; i++) {
			void *d = arena + i * 200000;
			size_t s = 200000;
			int tg = i;

			p_irecv(comm, 1, &d, &s, &tg, &mh, &held[i]);
		}
		CHECK(held[0] && held[1] && wait_all(held, 2, got, "held"),
		      "two receives done and not consumed (their fragments held)");
	}
	if (rank == 0) {
		void *req = NULL, *d = arena;
		size_t s = 4096;
		int tg = 0;
		unsigned cf0 = close_frags;

		CHECK(p_irecv(comm, 1, &d, &s, &tg, &mh, &req) == ncclSuccess && req,
		      "irecv that no send will match");
		CHECK(P(deregMr)(comm, mh) == ncclSuccess, "deregMr");
		int closes0 = closes_seen, cbad0 = close_bad;

		CHECK(P(closeRecv)(comm) == ncclSuccess, "closeRecv with that request in flight");
		if (device)
			CHECK(closes_seen == closes0 + 1 && close_bad == cbad0 && close_frags > cf0,
			      "closeRecv gave every token back, %u held by unconsumed receives "
			      "(plugin's counters: %s)", close_frags - cf0,
			      close_bad != cbad0 ? tok_last : "received == released, held 0, lost 0");
	} else {
		CHECK(P(deregMr)(comm, mh) == ncclSuccess, "deregMr");
		CHECK(P(closeSend)(comm) == ncclSuccess, "closeSend");
	}
	if (warns > warns0 && strstr(last_warn, "peer closed"))
		warns = warns0;
	mh = NULL;
}

/* One connection and a grouped exchange through version v's own table. */
static void version_once(void *dl, int v)
{
	struct msg m[3];
	struct props pr;
	void *l = NULL, *comm;
	int retries;
	char name[64];

	if (!CHECK(use_version(dl, v), "ncclNetPlugin_v%d exported", v))
		return;
	if (!CHECK(p_init() == ncclSuccess, "v%d init", v))
		return;
	if (CHECK(p_props(&pr) == ncclSuccess, "v%d getProperties", v))
		CHECK(pr.name && pr.max_recvs >= 1 && (pr.ptr_support & NCCL_PTR_HOST) &&
		      (v < 9 || pr.max_p2p > 0) && (v < 12 || pr.rail_id == NCCL_NET_ID_UNDEF),
		      "v%d properties in the v%d layout (name %s, maxRecvs %d, maxP2pBytes %zu%s)",
		      v, v, pr.name, pr.max_recvs, pr.max_p2p, v >= 12 ? ", railId -1" : "");
	if (rank == 0 && !(l = do_listen())) {
		CHECK(false, "v%d listen", v);
		return;
	}
	comm = establish(l, &retries);
	if (!CHECK(comm != NULL, "v%d connection", v))
		return;
	if (CHECK(reg_arena(comm, &mh) == ncclSuccess, "v%d regMr", v)) {
		m[0] = (struct msg){ .size = 1 * MiB + 17, .posted = 2 * MiB, .tag = 4, .seed = v };
		m[1] = (struct msg){ .size = 3, .posted = 3, .tag = 9, .seed = v + 50 };
		m[2] = (struct msg){ .size = 70000, .posted = 70001, .tag = 1, .seed = v + 99 };
		int group = pr.max_recvs >= 3 ? 3 : 1;

		snprintf(name, sizeof(name), "v%d %s exchange (3 buffers)", v,
			 group > 1 ? "grouped" : "in-flight");
		round_check(comm, m, 3, group, false, name);
		P(deregMr)(comm, mh);
	}
	CHECK((rank ? P(closeSend)(comm) : P(closeRecv)(comm)) == ncclSuccess, "v%d close", v);
	if (l)
		CHECK(P(closeListen)(l) == ncclSuccess, "v%d closeListen", v);
	finalize();
}

/* BYTES in 4 MiB messages, 8 in flight, every byte validated, timed. */
static void bench_rounds(void *comm, size_t bytes)
{
	struct msg m[8];
	int rounds = (int)((bytes + 32 * MiB - 1) / (32 * MiB));
	double t0;
	bool ok = true;

	bench_ref = malloc(32 * MiB);
	if (!bench_ref)
		return;
	for (int i = 0; i < 8; i++)
		fill(bench_ref + (size_t)i * 4 * MiB, 4 * MiB, 30000 + i);
	t0 = now();
	for (int r = 0; r < rounds && ok; r++) {
		for (int i = 0; i < 8; i++)
			m[i] = (struct msg){ .size = 4 * MiB, .posted = 4 * MiB, .tag = i,
					     .seed = 30000 + i };
		ok = round_run(comm, m, 8, 1, false, "bench");
		filled = true;	/* same seeds every round: fill once */
	}
	double dt = now() - t0;

	CHECK(ok, "bench: %d MiB in 4 MiB messages, 8 in flight, %s: %.3f s, %.1f MB/s", rounds * 32,
	      rank ? "sent" : "received and validated", dt, rounds * 32.0 * MiB / dt / 1e6);
	free(bench_ref);
	bench_ref = NULL;
	filled = false;
}

/* --bench: only bench_rounds, on a connection of its own. */
static void bench(size_t bytes)
{
	void *l = NULL, *comm;
	int retries;

	if (rank == 0 && !(l = do_listen())) {
		CHECK(false, "bench: listen");
		return;
	}
	comm = establish(l, &retries);
	if (!CHECK(comm != NULL, "bench: connection") ||
	    !CHECK(reg_arena(comm, &mh) == ncclSuccess, "bench: regMr"))
		return;
	bench_rounds(comm, bytes);
	P(deregMr)(comm, mh);
	mh = NULL;
	rank ? P(closeSend)(comm) : P(closeRecv)(comm);
	if (l)
		P(closeListen)(l);
}

static size_t bench_bytes;

static int run_rank(const char *plugin, const char *ns, const char *ifname, const int *vers,
		    int nvers)
{
	void *dl;
	int fds0;

	if (ns) {
		char path[256];
		int fd;

		snprintf(path, sizeof(path), "/var/run/netns/%s", ns);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || setns(fd, CLONE_NEWNET)) {
			CHECK(false, "enter network namespace %s: %s", ns, strerror(errno));
			return 1;
		}
		close(fd);
	}
	if (ifname)
		setenv("NCCL_DEVMEMTCP_IFNAME", ifname, 1);
	if (cu.on && rank == 1) {
		/* the sender's arena on the GPU (regMrDmaBuf of its dma-buf:
		 * bind-tx, isend from it), filled through a host copy; the
		 * receiver keeps udmabuf (the bounce buffer's CUDA address for
		 * NCCL's unpack kernel is PORTING.md item 8) */
		char why[256] = "";

		device = false;			/* arena_new: host memory */
		arena = cu.shadow = arena_new();
		device = true;
		if (!CHECK(arena && cuda_arena(&arena_fd, why, sizeof(why)) == 0,
			   "GPU arena of %u MiB and its dma-buf%s%s", ARENA / MiB,
			   why[0] ? ": " : "", why))
			return 1;
	} else {
		arena = arena_new();
	}
	if (!CHECK(arena != NULL, "%s arena of %u MiB", cu.dptr ? "GPU (cuMemAlloc)" :
		   device ? "udmabuf" : "host", ARENA / MiB))
		return 1;
	dl = open_plugin(plugin);
	if (!CHECK(dl != NULL, "dlopen %s", plugin))
		return 1;
	fds0 = count_fds();
	/* the full schedule through the newest version asked for */
	if (cu.on && use_version(dl, vers[nvers - 1]) && p_init() != ncclSuccess) {
		/* a GPU but no devmem NIC here: hardware missing, not a failure */
		skip(&t, "--provider cuda: init", last_warn);
		return ktap_exit(&t) == 1;
	}
	if (CHECK(use_version(dl, vers[nvers - 1]), "ncclNetPlugin_v%d exported", vers[nvers - 1]) &&
	    (cu.on || CHECK(p_init() == ncclSuccess, "v%d init", V))) {
		if (bench_bytes)
			bench(bench_bytes);
		else
			full_suite();
		finalize();
	}
	for (int i = 0; i < nvers && !bench_bytes && !no_versions; i++)
		version_once(dl, vers[i]);
	if (cu.dptr)
		CHECK(!cu.copy_errors, "every fill copied to the GPU arena (%d cuMemcpyHtoD errors)",
		      cu.copy_errors);
	CHECK(count_fds() == fds0, "no fd left open (%d before, %d after)", fds0, count_fds());
	CHECK(warns == 0, "no warning logged%s%s", warns ? ": " : "", warns ? last_warn : "");
	return ktap_exit(&t) == 1;
}

static int init_fails(const char *plugin, const char *ifname, int v, const char *expect)
{
	void *dl;
	ncclResult_t r;
	int nd = -1;

	rank = 0;
	if (ifname)
		setenv("NCCL_DEVMEMTCP_IFNAME", ifname, 1);
	dl = open_plugin(plugin);
	if (!CHECK(dl && use_version(dl, v), "dlopen and ncclNetPlugin_v%d", v))
		return 1;
	r = p_init();
	CHECK(r != ncclSuccess, "v%d init fails (returned %d)", v, r);
	CHECK(warns > 0 && strstr(last_warn, "init: "),
	      "the reason reached NCCL's log: %s", last_warn[0] ? last_warn : "(nothing logged)");
	if (expect)
		CHECK(strstr(last_warn, expect) != NULL, "the reason names \"%s\"", expect);
	r = P(devices)(&nd);
	CHECK(r == ncclSuccess && nd == 0, "devices() is 0 after the failed init (%d)", nd);
	return ktap_exit(&t) == 1;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: nccl-harness -p PLUGIN.so [-v 8,9,10,11,12] [-n NS0 -N NS1] [-i IF0 -I IF1]\n"
		"       nccl-harness -p PLUGIN.so --init-fails [-i IF] [-v V] [-e TEXT]\n"
		"       (--bench MIB: only a throughput run of MIB mebibytes; --device: udmabuf\n"
		"       arenas registered as CUDA memory, UNPACK done on the CPU; --grouped:\n"
		"       grouped receives whatever maxRecvs says; --no-versions: the schedule\n"
		"       through the newest -v only; --then-bench MIB: the bench on the\n"
		"       schedule's comm before it closes; --provider cuda: --device with\n"
		"       the sender's arena in GPU memory (libcuda.so.1), SKIP without one)\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "init-fails", no_argument, NULL, 'F' },
		{ "bench", required_argument, NULL, 'B' },
		{ "device", no_argument, NULL, 'D' },
		{ "grouped", no_argument, NULL, 'G' },
		{ "no-versions", no_argument, NULL, 'X' },
		{ "then-bench", required_argument, NULL, 'T' },
		{ "provider", required_argument, NULL, 'P' },
		{ NULL, 0, NULL, 0 },
	};
	const char *plugin = NULL, *ns[2] = { NULL, NULL }, *ifn[2] = { NULL, NULL };
	const char *expect = NULL;
	int vers[8] = { 8, 9, 10, 11, 12 }, nvers = 5;
	bool fails = false;
	int sv[2], c, status = 0;
	pid_t pid;

	while ((c = getopt_long(argc, argv, "p:v:n:N:i:I:e:", opts, NULL)) != -1) {
		switch (c) {
		case 'p': plugin = optarg; break;
		case 'n': ns[0] = optarg; break;
		case 'N': ns[1] = optarg; break;
		case 'i': ifn[0] = optarg; break;
		case 'I': ifn[1] = optarg; break;
		case 'e': expect = optarg; break;
		case 'F': fails = true; break;
		case 'D': device = true; break;
		case 'P':
			if (!strcmp(optarg, "cuda"))
				cu.on = device = true;
			else if (!strcmp(optarg, "udmabuf"))
				device = true;
			else
				usage();
			break;
		case 'G': setenv("NCCL_DEVMEMTCP_MAX_RECVS", "8", 1); break;
		case 'X': no_versions = true; break;
		case 'T': then_bench = strtoull(optarg, NULL, 0) * MiB; break;
		case 'B': bench_bytes = strtoull(optarg, NULL, 0) * MiB; break;
		case 'v': {
			char *s = optarg, *end;

			nvers = 0;
			while (*s && nvers < 8) {
				long v = strtol(s, &end, 10);

				if (end == s || v < 8 || v > 12)
					usage();
				vers[nvers++] = (int)v;
				s = *end == ',' ? end + 1 : end;
			}
			break;
		}
		default: usage();
		}
	}
	if (!plugin || !nvers)
		usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (fails)
		return init_fails(plugin, ifn[0], vers[nvers - 1], expect);
	if (cu.on) {
		char why[512];

		cuda_probe(why, sizeof(why));
		if (why[0]) {
			/* no GPU here: the whole run is one SKIP, never a pass */
			skip(&t, "--provider cuda: the sender's arena in GPU memory", why);
			return ktap_exit(&t);
		}
		if (access("/dev/udmabuf", R_OK | W_OK)) {
			/* a GPU without udmabuf (as on a GPU machine seen here) */
			skip(&t, "--provider cuda: the receiver's arena",
			     "no /dev/udmabuf for the receiver's arena, whose UNPACK is done "
			     "on the CPU here (modprobe udmabuf)");
			return ktap_exit(&t);
		}
	}

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return 1;
	signal(SIGPIPE, SIG_IGN);
	pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		rank = 1;
		close(sv[0]);
		side = sv[1];
		alarm(DEADLINE_S * 20);	/* a hung rank dies rather than hang the test */
		_exit(run_rank(plugin, ns[1], ifn[1], vers, nvers));
	}
	close(sv[1]);
	side = sv[0];
	alarm(DEADLINE_S * 20);
	int failed = run_rank(plugin, ns[0], ifn[0], vers, nvers);

	close(side);
	/* the sender finishes on its own once rank 0 is done; bounded */
	for (int i = 0; i < DEADLINE_S * 10; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			break;
		if (i == DEADLINE_S * 10 - 1) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
		}
		usleep(100000);
	}
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "rank 1 exited 0 (status %#x)", status);
	return failed || !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}
