// SPDX-License-Identifier: MIT
/*
 * runstat: run a command and write what it cost to a file, for `make bench`.
 * usage: runstat OUTFILE CMD [ARG...]
 * OUTFILE gets one line "wall user sys nvcsw nivcsw status": wall seconds
 * from fork to exit, user and system CPU seconds and voluntary and
 * involuntary context switches (getrusage(RUSAGE_CHILDREN) of the command
 * and everything it waited for), its exit status.  runstat exits with the
 * command's status.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double dmt_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	struct rusage ru;
	double t0, t1;
	int status, rc;
	FILE *f;
	pid_t pid;

	if (argc < 3) {
		fprintf(stderr, "usage: runstat OUTFILE CMD [ARG...]\n");
		return 2;
	}
	t0 = dmt_now();
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "runstat: fork: %s\n", strerror(errno));
		return 2;
	}
	if (pid == 0) {
		execvp(argv[2], argv + 2);
		fprintf(stderr, "runstat: %s: %s\n", argv[2], strerror(errno));
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			fprintf(stderr, "runstat: waitpid: %s\n", strerror(errno));
			return 2;
		}
	t1 = dmt_now();
	getrusage(RUSAGE_CHILDREN, &ru);
	rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	f = fopen(argv[1], "w");
	if (!f) {
		fprintf(stderr, "runstat: %s: %s\n", argv[1], strerror(errno));
		return 2;
	}
	fprintf(f, "%.6f %.6f %.6f %ld %ld %d\n", t1 - t0,
		ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
		ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6,
		ru.ru_nvcsw, ru.ru_nivcsw, rc);
	fclose(f);
	return rc;
}
