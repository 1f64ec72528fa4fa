// SPDX-License-Identifier: MIT
/*
 * memcpy-bw: single-core memcpy bandwidth, the ceiling of a software NIC
 * that moves every payload byte with one CPU copy.  Prints MB/s.
 * usage: memcpy-bw [MIB_PER_COPY] [SECONDS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	size_t size = (argc > 1 ? strtoul(argv[1], NULL, 0) : 64) << 20;
	double secs = argc > 2 ? atof(argv[2]) : 2.0, t0, t;
	unsigned long long bytes = 0;
	char *src = malloc(size), *dst = malloc(size);

	if (!src || !dst) {
		fprintf(stderr, "memcpy-bw: out of memory\n");
		return 1;
	}
	memset(src, 1, size);
	memset(dst, 2, size);
	t0 = now();
	do {
		memcpy(dst, src, size);
		bytes += size;
		src[bytes % size] ^= dst[(bytes / 3) % size];
		t = now();
	} while (t - t0 < secs);
	printf("%.0f\n", bytes / (t - t0) / 1e6);
	free(src);
	free(dst);
	return 0;
}
