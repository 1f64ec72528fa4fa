// SPDX-License-Identifier: MIT
/*
 * tx-noalloc: the send engine allocates nothing per send in steady state.
 *
 * This program interposes malloc, calloc, realloc and friends (the
 * library is linked statically into it, and glibc's own entry points stay
 * reachable as __libc_*) and counts the calls made by the sending thread
 * while a counting flag is on.  After a warm-up of 1 MiB, 16 MiB go through
 * dmt_tx_alloc / fill / dmt_tx_send / dmt_tx_poll over lo, in zerocopy and
 * in copy mode (udmabuf when the kernel has it, else host memory); the
 * count must be 0.  The receiver thread checks every byte.
 */
#include "tx-common.h"

#include <stdlib.h>

#ifdef __SANITIZE_ADDRESS__
/* AddressSanitizer owns malloc in the sanitizer build (make asan): counting
 * needs the plain build, where this test runs in full. */
int main(void)
{
	struct ktap t = { 0 };

	skip(&t, "tx-noalloc", "the ASan build replaces malloc; counted in the plain build");
	return ktap_exit(&t);
}
#else
#define WINDOW (1u << 20)
#define CHUNK (16u << 10)

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void *__libc_memalign(size_t align, size_t size);

/* Counting is per thread: the receiver and libc's internals are not ours. */
static __thread bool counting;
static __thread unsigned long allocs;

void *malloc(size_t size)
{
	allocs += counting;
	return __libc_malloc(size);
}

void *calloc(size_t n, size_t size)
{
	allocs += counting;
	return __libc_calloc(n, size);
}

void *realloc(void *p, size_t size)
{
	allocs += counting;
	return __libc_realloc(p, size);
}

void *aligned_alloc(size_t align, size_t size)
{
	allocs += counting;
	return __libc_memalign(align, size);
}

int posix_memalign(void **out, size_t align, size_t size)
{
	allocs += counting;
	*out = __libc_memalign(align, size);
	return *out ? 0 : ENOMEM;
}

static void one_mode(struct ktap *t, struct dmt_dmabuf *buf, enum dmt_mode mode)
{
	DMT_OPTS(dmt_txbind_opts, po, .policy = mode);
	const char *name = dmt_mode_name(mode);
	struct tx_link l = TX_LINK_INIT;
	struct dmt_txbind *bind = NULL;
	struct dmt_tx *tx = NULL;
	uint64_t pos = 0, total = 17u << 20;
	unsigned long steady;
	struct dmt_err err;
	int ret;

	bind = dmt_txbind_new("lo", buf, &po, &err);
	ret = tx_link_open(&l, NULL, "127.0.0.1", 0);
	allocs = 0;
	counting = true;
	tx = bind && !ret ? dmt_tx_new(l.fd, bind, NULL, &err) : NULL;
	counting = false;
	/* the library's own calls go through the interposer too */
	check(t, allocs > 0, "%s: dmt_tx_new's allocations are seen (%lu)", name, allocs);
	ret = tx ? tx_link_connect(&l, "127.0.0.1") : -EINVAL;
	if (!check(t, !ret, "%s: setup on lo", name)) {
		diag_err("setup", &err);
		goto out;
	}
	ret = tx_pump(tx, buf, &pos, 1u << 20, CHUNK, NULL, NULL);		/* warm-up */
	allocs = 0;
	counting = true;
	if (!ret)
		ret = tx_pump(tx, buf, &pos, total, CHUNK, NULL, NULL);
	counting = false;
	steady = allocs;
	if (!ret)
		ret = dmt_tx_drain(tx, 10000);
	tx_link_finish(&l);
	if (!check(t, !ret, "%s: %llu bytes sent and completed", name,
		   (unsigned long long)total))
		diag_err("send", dmt_tx_error(tx));
	check(t, steady == 0, "%s: no heap allocation in %u steady-state sends (counted %lu)",
	      name, (unsigned)((total - (1u << 20)) / CHUNK), steady);
	check(t, !l.rx.err && l.rx.bytes == total && l.rx.bad < 0,
	      "%s: receiver validated all %llu bytes", name, (unsigned long long)total);
out:
	tx_link_close(&l, tx);
	dmt_txbind_free(bind);
}

int main(void)
{
	DMT_OPTS(dmt_dmabuf_opts, bo, .provider = test_provider(), .size = WINDOW);
	struct ktap t = { 0 };
	struct dmt_dmabuf *buf;
	struct dmt_err err;
	void *(*volatile alloc)(size_t) = malloc;	/* not elided */
	void *probe;

	/* the interposer must really be in the path, or 0 proves nothing */
	counting = true;
	probe = alloc(16);
	counting = false;
	free(probe);
	if (!check(&t, allocs == 1, "malloc interposed (counted %lu)", allocs))
		return ktap_exit(&t);
	buf = dmt_dmabuf_new(&bo, &err);
	if (!check(&t, buf, "%s buffer", dmt_provider_name(bo.provider))) {
		diag_err("dmt_dmabuf_new", &err);
		return ktap_exit(&t);
	}
	one_mode(&t, buf, DMT_MODE_ZEROCOPY);
	one_mode(&t, buf, DMT_MODE_COPY);
	dmt_dmabuf_free(buf);
	return ktap_exit(&t);
}
#endif
