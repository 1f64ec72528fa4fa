// SPDX-License-Identifier: MIT
/*
 * receiver.c - a devmem TCP receiver the way a collective-communication
 * transport (an NCCL net plugin, an RPC or storage stack) is built on
 * libdevmemtcp 0.2.  Copy it.
 *
 *   receiver -i IFNAME -l ADDR -p PORT [-q QUEUE] [-c CONNS] [-v PERIOD]
 *            [-s MIB] [-r REQ_BYTES] [-n BYTES_PER_CONN] [-N]
 *
 * What it shows:
 * - NIC setup with an undo log (dmt_nic_*): header split on queue QUEUE,
 *   the default RSS context off it, one ntuple rule that steers every flow
 *   to ADDR:PORT there; all undone at exit (-N: the NIC is set up already).
 * - One dma-buf (a udmabuf of MIB MiB; a GPU buffer in real life) bound to
 *   that queue when listening (dmt_rxbind_new), shared by every connection.
 * - CONNS connections on ONE thread with epoll, each with its own receive
 *   engine (dmt_rx_new).  Each connection's stream is cut into requests of
 *   REQ_BYTES, as a transport receives "exactly N bytes for this request":
 *   dmt_rx_recv_hold(.max_bytes = what the request still lacks,
 *   DMT_RX_DONTWAIT) returns fragments (offset + length in the dma-buf)
 *   and linear bytes (put in the request's own staging buffer); they are
 *   HELD, not copied.
 * - A worker thread "unpacks" each finished request: copies its fragments
 *   out of the dma-buf's mapping (one dmt_dmabuf_sync bracket per
 *   request) and its linear bytes into the destination buffer, at their
 *   place in the request (a GPU kernel does this in a real transport);
 *   then gives the fragments back with dmt_rx_put, OUT OF ORDER: requests
 *   are given back a few at a time in a shuffled order, each in reverse,
 *   in small batches, while the main thread keeps receiving.
 * - Every byte checked against the `ncdevmem -v PERIOD` pattern (what
 *   `devmemtcp send --validate PERIOD` sends); the engines' counters
 *   summed: no token leaked when frags_released == frags_received.
 *
 * The last line is the summary, key=value; exit 0 when every byte of every
 * connection was valid (and -n BYTES_PER_CONN arrived on each), no token
 * leaked and no fragment came from an unknown dma-buf.
 *
 * Build: `make` (build/examples/receiver).  Needs root (bind-rx, ethtool)
 * and a NIC with devmem RX (dmveth, gve, bnxt, mlx5, fbnic).  Send with:
 *   devmemtcp send ADDR:PORT --dev IF --bytes N --validate 7 --mode devmem
 * (CONNS of them).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <devmemtcp.h>

#define MAX_CONNS 64
#define REQ_CHUNKS 512		/* chunks a request may hold */
#define RELEASE_GROUP 4		/* requests given back together, shuffled */
#define PUT_BATCH 8		/* chunks per dmt_rx_put */

/* One request: a piece of one connection's stream, REQ_BYTES or less. */
struct request {
	struct conn *conn;
	uint64_t pos;		/* stream position of its first byte */
	size_t len;		/* bytes in it */
	struct dmt_rx_chunk chunk[REQ_CHUNKS];
	unsigned nchunks;
	char *staging;		/* linear bytes land here, packed */
	size_t staged;
	char *dst;		/* the unpacked request ("the tensor") */
	struct request *next;
};

struct conn {
	int fd;
	struct dmt_rx *rx;
	uint64_t pos;		/* bytes received */
	struct request *cur;	/* being filled */
	bool eof;
};

/* What the main thread and the worker share, under mu. */
struct shared {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct request *ready, **ready_tail;	/* finished, to unpack */
	struct request *pool;		/* free requests */
	unsigned allocated, max_requests;
	bool done;
	/* the worker's results */
	uint64_t validated, bad, unknown, puts, put_errors;
	int64_t first_bad;
};

struct cfg {
	const char *ifname, *addr;
	unsigned port, queue, conns, period, mib, setup;
	size_t req;
	uint64_t expect;
};

static struct cfg cfg = { .queue = 1, .conns = 8, .period = 7, .mib = 16, .setup = 1,
			  .req = 256 << 10 };
static struct dmt_dmabuf *buf;

static void die(const char *what, const struct dmt_err *err)
{
	char line[1024];

	fprintf(stderr, "receiver: %s: %s\n", what, err ? dmt_err_str(err, line, sizeof(line)) :
		strerror(errno));
	exit(1);
}

/* ------------------------------------------------------ request pool */

static struct request *request_get(struct shared *sh)
{
	struct request *r;

	pthread_mutex_lock(&sh->mu);
	/* a bound on what is held: the NIC needs free buffers in the dma-buf */
	while (!sh->pool && sh->allocated >= sh->max_requests)
		pthread_cond_wait(&sh->cv, &sh->mu);
	r = sh->pool;
	if (r)
		sh->pool = r->next;
	else
		sh->allocated++;
	pthread_mutex_unlock(&sh->mu);
	if (!r) {
		r = calloc(1, sizeof(*r));
		if (!r || !(r->staging = malloc(cfg.req)) || !(r->dst = malloc(cfg.req)))
			die("allocate a request", NULL);
	}
	r->nchunks = 0;
	r->len = 0;
	r->staged = 0;
	r->next = NULL;
	return r;
}

static void request_done(struct shared *sh, struct request *r)
{
	pthread_mutex_lock(&sh->mu);
	r->next = NULL;
	*sh->ready_tail = r;
	sh->ready_tail = &r->next;
	pthread_cond_broadcast(&sh->cv);
	pthread_mutex_unlock(&sh->mu);
}

/* ---------------------------------------------------------- the worker */

/* Bracket the CPU's reads of the mapping (DMA_BUF_IOCTL_SYNC). */
static void dmabuf_sync(unsigned flags)
{
	if (dmt_dmabuf_sync(buf, flags | DMT_DMABUF_SYNC_READ) < 0)
		die("dmt_dmabuf_sync", dmt_dmabuf_error(buf));
}

/* Copy a request's bytes into dst in stream order, then check them. */
static void unpack(struct shared *sh, struct request *r)
{
	const char *map = dmt_dmabuf_map(buf);
	size_t at = 0, lin = 0;
	ssize_t bad;
	bool ok = true;

	dmabuf_sync(DMT_DMABUF_SYNC_START);
	for (unsigned i = 0; i < r->nchunks; i++) {
		const struct dmt_rx_chunk *c = &r->chunk[i];

		if (c->flags & DMT_RX_CHUNK_LINEAR) {
			memcpy(r->dst + at, r->staging + lin, c->len);
			lin += c->len;
		} else if (c->flags & DMT_RX_CHUNK_UNKNOWN || c->buf != buf) {
			ok = false;	/* another binding's dma-buf: not ours to read */
			sh->unknown++;
		} else {
			memcpy(r->dst + at, map + c->off, c->len);
		}
		at += c->len;
	}
	dmabuf_sync(DMT_DMABUF_SYNC_END);
	bad = ok ? dmt_pattern_check(r->dst, r->len, r->pos, cfg.period) : 0;
	pthread_mutex_lock(&sh->mu);
	if (bad < 0) {
		sh->validated += r->len;
	} else {
		sh->bad++;
		if (sh->first_bad < 0)
			sh->first_bad = r->pos + bad;
	}
	pthread_mutex_unlock(&sh->mu);
}

/* Give a request's fragments back: from its end, PUT_BATCH at a time. */
static void give_back(struct shared *sh, struct request *r)
{
	unsigned end = r->nchunks;

	while (end) {
		unsigned start = end > PUT_BATCH ? end - PUT_BATCH : 0;
		int ret = dmt_rx_put(r->conn->rx, &r->chunk[start], end - start);

		pthread_mutex_lock(&sh->mu);
		sh->puts++;
		if (ret < 0) {
			char line[512];

			sh->put_errors++;
			fprintf(stderr, "receiver: dmt_rx_put: %s\n",
				dmt_err_str(dmt_rx_error(r->conn->rx), line, sizeof(line)));
		}
		pthread_mutex_unlock(&sh->mu);
		end = start;
	}
	pthread_mutex_lock(&sh->mu);
	r->next = sh->pool;
	sh->pool = r;
	pthread_cond_broadcast(&sh->cv);
	pthread_mutex_unlock(&sh->mu);
}

static void *worker(void *arg)
{
	static const unsigned order[RELEASE_GROUP] = { 2, 0, 3, 1 };
	struct shared *sh = arg;
	struct request *held[RELEASE_GROUP];
	unsigned nheld = 0;

	for (;;) {
		struct request *r;

		pthread_mutex_lock(&sh->mu);
		while (!sh->ready && !sh->done)
			pthread_cond_wait(&sh->cv, &sh->mu);
		r = sh->ready;
		if (r) {
			sh->ready = r->next;
			if (!sh->ready)
				sh->ready_tail = &sh->ready;
		}
		pthread_mutex_unlock(&sh->mu);
		if (!r)
			break;
		unpack(sh, r);
		/* hold a few unpacked requests, give them back shuffled */
		held[nheld++] = r;
		if (nheld == RELEASE_GROUP) {
			for (unsigned i = 0; i < RELEASE_GROUP; i++)
				give_back(sh, held[order[i]]);
			nheld = 0;
		}
	}
	while (nheld)
		give_back(sh, held[--nheld]);
	return NULL;
}

/* ------------------------------------------------------ the main thread */

/*
 * One non-blocking receive on a connection: what the current request
 * still lacks, at most.  A finished request goes to the worker.
 */
static int conn_read(struct shared *sh, struct conn *c)
{
	struct request *r = c->cur;
	int n;

	if (!r) {
		r = c->cur = request_get(sh);
		r->conn = c;
		r->pos = c->pos;
	}
	{
		DMT_OPTS(dmt_rx_recv_opts, ro, .flags = DMT_RX_DONTWAIT,
			 .max_bytes = cfg.req - r->len,
			 /* linear bytes: into this request's staging buffer */
			 .linear = r->staging + r->staged,
			 .linear_len = cfg.req - r->staged);

		n = dmt_rx_recv_hold(c->rx, r->chunk + r->nchunks, REQ_CHUNKS - r->nchunks, &ro);
	}
	if (n == -EAGAIN || n == -EINTR)
		return 0;
	if (n < 0)
		die("dmt_rx_recv_hold", dmt_rx_error(c->rx));
	if (n == 0)
		c->eof = true;
	for (int i = 0; i < n; i++) {
		const struct dmt_rx_chunk *ch = &r->chunk[r->nchunks + i];

		if (ch->flags & DMT_RX_CHUNK_LINEAR)
			r->staged += ch->len;
		r->len += ch->len;
		c->pos += ch->len;
	}
	r->nchunks += n;
	if (r->len == cfg.req || r->nchunks == REQ_CHUNKS || (c->eof && r->len)) {
		request_done(sh, r);
		c->cur = NULL;
	}
	if (c->eof && c->cur) {	/* an empty request at the end */
		give_back(sh, c->cur);
		c->cur = NULL;
	}
	return c->eof;
}

static int listen_on(const char *addr, unsigned port, struct sockaddr_storage *ss,
		     socklen_t *sl)
{
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	int fd, one = 1;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		*sl = sizeof(*s6);
	} else if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		*sl = sizeof(*s4);
	} else {
		errno = EINVAL;
		die(addr, NULL);
	}
	fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)ss, *sl) < 0 || listen(fd, cfg.conns) < 0)
		die("listen", NULL);
	return fd;
}

static void usage(void)
{
	fprintf(stderr, "usage: receiver -i IFNAME -l ADDR -p PORT [-q QUEUE] [-c CONNS] "
		"[-v PERIOD] [-s MIB] [-r REQ_BYTES] [-n BYTES_PER_CONN] [-N]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct shared sh = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER,
			     .first_bad = -1 };
	struct dmt_rx_counters sum = { 0 };
	struct conn conns[MAX_CONNS] = { 0 };
	struct epoll_event ev, evs[MAX_CONNS + 1];
	struct sockaddr_storage ss;
	struct dmt_rxbind *bind;
	struct dmt_nic *nic = NULL;
	struct dmt_err err;
	struct timespec t0, t1;
	unsigned accepted = 0, open_conns, short_conns = 0;
	uint32_t rule;
	pthread_t th;
	socklen_t sl;
	int lfd, ep, c;
	double secs;

	while ((c = getopt(argc, argv, "i:l:p:q:c:v:s:r:n:N")) != -1) {
		switch (c) {
		case 'i': cfg.ifname = optarg; break;
		case 'l': cfg.addr = optarg; break;
		case 'p': cfg.port = atoi(optarg); break;
		case 'q': cfg.queue = atoi(optarg); break;
		case 'c': cfg.conns = atoi(optarg); break;
		case 'v': cfg.period = atoi(optarg); break;
		case 's': cfg.mib = atoi(optarg); break;
		case 'r': cfg.req = strtoull(optarg, NULL, 0); break;
		case 'n': cfg.expect = strtoull(optarg, NULL, 0); break;
		case 'N': cfg.setup = 0; break;
		default: usage();
		}
	}
	if (!cfg.ifname || !cfg.addr || !cfg.port || !cfg.conns || cfg.conns > MAX_CONNS ||
	    cfg.req < 4096)
		usage();

	/* 1. the NIC: header split, RSS off the queue (undone at the end) */
	if (cfg.setup) {
		nic = dmt_nic_open(cfg.ifname, &err);
		if (!nic)
			die("dmt_nic_open", &err);
		if (dmt_nic_prepare_rx(nic, cfg.queue, 1) < 0)
			die("dmt_nic_prepare_rx", dmt_nic_error(nic));
	}
	/* 2. the dma-buf, bound to the queue at listen time */
	{
		DMT_OPTS(dmt_dmabuf_opts, bo, .provider = DMT_PROVIDER_UDMABUF,
			 .size = (size_t)cfg.mib << 20);
		DMT_OPTS(dmt_rxbind_opts, po, .policy = DMT_MODE_DEVMEM, .queue_start = cfg.queue);

		buf = dmt_dmabuf_new(&bo, &err);
		if (!buf)
			die("dmt_dmabuf_new", &err);
		bind = dmt_rxbind_new(cfg.ifname, buf, &po, &err);
		if (!bind)
			die("dmt_rxbind_new", &err);
	}
	lfd = listen_on(cfg.addr, cfg.port, &ss, &sl);
	/* 3. every flow to ADDR:PORT onto the bound queue, any peer */
	if (nic) {
		struct dmt_flow flow;

		memset(&flow, 0, sizeof(flow));
		memcpy(&flow.local, &ss, sl);
		if (dmt_nic_steer(nic, &flow, cfg.queue, &rule) < 0)
			die("dmt_nic_steer", dmt_nic_error(nic));
	}
	printf("receiver: listening on %s port %u, dmabuf id %u on %s queue %u\n", cfg.addr,
	       cfg.port, dmt_rxbind_id(bind), cfg.ifname, cfg.queue);
	fflush(stdout);

	/* 4. the worker, and a bound on held requests: half the dma-buf */
	sh.ready_tail = &sh.ready;
	sh.max_requests = ((size_t)cfg.mib << 20) / 2 / cfg.req;
	if (sh.max_requests < 2 * cfg.conns)
		sh.max_requests = 2 * cfg.conns;
	if (pthread_create(&th, NULL, worker, &sh))
		die("start the worker", NULL);

	/* 5. one thread, epoll: accept CONNS, then receive on all of them */
	ep = epoll_create1(EPOLL_CLOEXEC);
	ev = (struct epoll_event){ .events = EPOLLIN, .data.ptr = NULL };
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
		die("epoll", NULL);
	open_conns = cfg.conns;
	while (open_conns) {
		int n = epoll_wait(ep, evs, MAX_CONNS + 1, -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("epoll_wait", NULL);
		for (int i = 0; i < n; i++) {
			struct conn *cn = evs[i].data.ptr;

			if (!cn) {
				struct conn *nc = &conns[accepted];

				nc->fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
				if (nc->fd < 0)
					continue;
				if (!accepted)
					clock_gettime(CLOCK_MONOTONIC, &t0);
				nc->rx = dmt_rx_new(nc->fd, bind, NULL, &err);
				if (!nc->rx)
					die("dmt_rx_new", &err);
				ev = (struct epoll_event){ .events = EPOLLIN, .data.ptr = nc };
				epoll_ctl(ep, EPOLL_CTL_ADD, nc->fd, &ev);
				if (++accepted == cfg.conns)
					epoll_ctl(ep, EPOLL_CTL_DEL, lfd, NULL);
				continue;
			}
			if (conn_read(&sh, cn)) {
				/* end of stream: out of epoll before any close */
				epoll_ctl(ep, EPOLL_CTL_DEL, cn->fd, NULL);
				open_conns--;
			}
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);

	/* 6. the worker finishes and gives everything back */
	pthread_mutex_lock(&sh.mu);
	sh.done = true;
	pthread_cond_broadcast(&sh.cv);
	pthread_mutex_unlock(&sh.mu);
	pthread_join(th, NULL);

	for (unsigned i = 0; i < accepted; i++) {
		struct dmt_rx_counters cc = { .sz = sizeof(cc) };

		dmt_rx_get_counters(conns[i].rx, &cc);
		sum.bytes += cc.bytes;
		sum.linear_bytes += cc.linear_bytes;
		sum.frags_received += cc.frags_received;
		sum.frags_released += cc.frags_released;
		sum.frags_held += cc.frags_held;
		sum.frags_lost += cc.frags_lost;
		sum.frags_unknown += cc.frags_unknown;
		sum.dontneed_calls += cc.dontneed_calls;
		short_conns += cfg.expect && conns[i].pos != cfg.expect;
		printf("receiver: connection %u: %" PRIu64 " bytes, %" PRIu64 " frags\n", i,
		       conns[i].pos, cc.frags_received);
		dmt_rx_free(conns[i].rx);
		close(conns[i].fd);
	}
	close(lfd);
	close(ep);
	/* 7. unbind, then undo the NIC changes, then the buffer */
	dmt_rxbind_free(bind);
	dmt_nic_close(nic);
	dmt_dmabuf_free(buf);

	secs = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	if (sh.first_bad >= 0)
		fprintf(stderr, "receiver: first wrong byte at stream position %" PRId64 "\n",
			sh.first_bad);
	printf("receiver: conns=%u bytes=%" PRIu64 " validated=%" PRIu64 " bad_requests=%" PRIu64
	       " linear_bytes=%" PRIu64 " frags_received=%" PRIu64 " frags_released=%" PRIu64
	       " frags_held=%" PRIu64 " frags_lost=%" PRIu64 " frags_unknown=%" PRIu64
	       " puts=%" PRIu64 " put_errors=%" PRIu64 " dontneed_calls=%" PRIu64
	       " short_conns=%u mbytes_per_sec=%.0f\n", accepted, sum.bytes, sh.validated,
	       sh.bad, sum.linear_bytes, sum.frags_received, sum.frags_released,
	       sum.frags_held, sum.frags_lost, sum.frags_unknown, sh.puts, sh.put_errors,
	       sum.dontneed_calls, short_conns, secs > 0 ? sum.bytes / secs / 1e6 : 0);
	return sh.validated == sum.bytes && !sh.bad && !sh.put_errors && !short_conns &&
	       sum.frags_released == sum.frags_received && !sum.frags_held &&
	       !sum.frags_lost && !sum.frags_unknown ? 0 : 1;
}
