// SPDX-License-Identifier: MIT
/*
 * core.c - the plugin's version-independent half: configuration from the
 * environment, the one device, its properties, connection setup as NCCL
 * drives it (never blocking: connect and accept return success with a NULL
 * comm until the connection is up), registrations, and framed messages on
 * one TCP stream per comm.
 *
 * The payload path here is plain non-blocking TCP (the kernel copies).
 * libdevmemtcp 0.1 cannot send a caller-owned host buffer: its send engine
 * only sends regions it reserved itself from its own ring, in reservation
 * order, and its zerocopy/copy modes work on the library's own buffer.
 * With 0.2's caller-owned iovecs and cookies (PORTING.md) isend becomes
 * one library call per request and the request's cookie its completion.
 *
 * Framing: every isend puts a 16-byte header (size, tag) before its
 * payload.  A receive request of n buffers takes the next n frames; each
 * frame lands in the buffer whose tag it carries (NCCL posts grouped sends
 * and receives in the same order and with distinct tags in a group), and
 * its real size is what test() reports.  A frame larger than the buffer
 * posted for it is an error (NCCL never does that).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <limits.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/uio.h>
#include <unistd.h>

#include "plugin.h"

struct dn_state dn_state = { .lock = PTHREAD_MUTEX_INITIALIZER };

void dn_log(ncclDebugLogLevel lvl, unsigned long sub, const char *file, int line,
	    const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!dn_state.log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	dn_state.log(lvl, sub, file, line, "NET/" DN_NAME ": %s", msg);
}

/* ------------------------------------------------------- configuration */

/* "64M", "1G", "4096": bytes; false on anything else. */
static bool parse_size(const char *s, size_t *out)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		return false;
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	}
	if (*end || !v)
		return false;
	*out = v;
	return true;
}

/* The interface's address to listen on: IPv4 first, then global IPv6. */
static bool if_address(const char *ifname, struct sockaddr_storage *ss, socklen_t *len)
{
	struct ifaddrs *ifa, *i;
	bool found = false;

	if (getifaddrs(&ifa))
		return false;
	for (int pass = 0; pass < 2 && !found; pass++)
		for (i = ifa; i && !found; i = i->ifa_next) {
			if (!i->ifa_addr || strcmp(i->ifa_name, ifname))
				continue;
			if (pass == 0 && i->ifa_addr->sa_family == AF_INET) {
				memcpy(ss, i->ifa_addr, sizeof(struct sockaddr_in));
				*len = sizeof(struct sockaddr_in);
				found = true;
			} else if (pass == 1 && i->ifa_addr->sa_family == AF_INET6 &&
				   !IN6_IS_ADDR_LINKLOCAL(&((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr)) {
				memcpy(ss, i->ifa_addr, sizeof(struct sockaddr_in6));
				*len = sizeof(struct sockaddr_in6);
				found = true;
			}
		}
	freeifaddrs(ifa);
	return found;
}

/* No NCCL_DEVMEMTCP_IFNAME: the first interface that is up, not loopback,
 * and has an address. */
static bool default_ifname(char *name)
{
	struct ifaddrs *ifa, *i;
	bool found = false;

	if (getifaddrs(&ifa))
		return false;
	for (i = ifa; i && !found; i = i->ifa_next) {
		if (!i->ifa_addr || (i->ifa_flags & IFF_LOOPBACK) || !(i->ifa_flags & IFF_UP))
			continue;
		if (i->ifa_addr->sa_family != AF_INET && i->ifa_addr->sa_family != AF_INET6)
			continue;
		snprintf(name, IF_NAMESIZE, "%s", i->ifa_name);
		found = true;
	}
	freeifaddrs(ifa);
	return found;
}

static void read_sysfs(struct dn_dev *d)
{
	char path[128], *real;
	FILE *f;
	int speed = -1;

	snprintf(path, sizeof(path), "/sys/class/net/%s/device", d->ifname);
	real = realpath(path, NULL);	/* virtual devices have none */
	snprintf(d->pci_path, sizeof(d->pci_path), "%s", real ? real : "");
	free(real);
	snprintf(path, sizeof(path), "/sys/class/net/%s/speed", d->ifname);
	f = fopen(path, "re");
	if (f) {
		if (fscanf(f, "%d", &speed) != 1)
			speed = -1;
		fclose(f);
	}
	/* virtual links report -1 or nothing: say 10 Gb/s, as NCCL's socket
	 * transport does when it cannot tell */
	d->speed = speed > 0 ? speed : 10000;
}

static int read_config(char *why, size_t len)
{
	struct dn_state *s = &dn_state;
	const char *v;

	s->mode = DN_MODE_DEVMEM;
	v = getenv("NCCL_DEVMEMTCP_MODE");
	if (v && !strcmp(v, "host"))
		s->mode = DN_MODE_HOST;
	else if (v && strcmp(v, "devmem")) {
		snprintf(why, len, "NCCL_DEVMEMTCP_MODE=%s: expected devmem or host", v);
		return -EINVAL;
	}

	v = getenv("NCCL_DEVMEMTCP_IFNAME");
	if (v && *v) {
		if (strlen(v) >= IF_NAMESIZE) {
			snprintf(why, len, "NCCL_DEVMEMTCP_IFNAME=%s: name too long", v);
			return -EINVAL;
		}
		snprintf(s->dev.ifname, IF_NAMESIZE, "%s", v);
	} else if (!default_ifname(s->dev.ifname)) {
		snprintf(why, len, "no interface up with an address (set NCCL_DEVMEMTCP_IFNAME)");
		return -ENODEV;
	}
	s->dev.ifindex = if_nametoindex(s->dev.ifname);
	if (!s->dev.ifindex) {
		snprintf(why, len, "interface %s: %s (NCCL_DEVMEMTCP_IFNAME)", s->dev.ifname,
			 strerror(errno));
		return -ENODEV;
	}
	if (!if_address(s->dev.ifname, &s->dev.addr, &s->dev.addrlen)) {
		snprintf(why, len, "interface %s has no IPv4 or global IPv6 address",
			 s->dev.ifname);
		return -EADDRNOTAVAIL;
	}
	read_sysfs(&s->dev);

	/* NCCL_DEVMEMTCP_QUEUES: COUNT or START:COUNT; default 1 queue, the
	 * last one (probe fills in the start) */
	s->q_start = UINT_MAX;
	s->q_count = 1;
	v = getenv("NCCL_DEVMEMTCP_QUEUES");
	if (v && *v) {
		unsigned a, b;
		char c;

		if (sscanf(v, "%u:%u%c", &a, &b, &c) == 2 && b) {
			s->q_start = a;
			s->q_count = b;
		} else if (sscanf(v, "%u%c", &a, &c) == 1 && a) {
			s->q_count = a;
		} else {
			snprintf(why, len, "NCCL_DEVMEMTCP_QUEUES=%s: expected COUNT or START:COUNT", v);
			return -EINVAL;
		}
	}
	s->buf_size = 64 << 20;
	v = getenv("NCCL_DEVMEMTCP_BUF_SIZE");
	if (v && *v && !parse_size(v, &s->buf_size)) {
		snprintf(why, len, "NCCL_DEVMEMTCP_BUF_SIZE=%s: expected bytes (K, M, G suffix)", v);
		return -EINVAL;
	}
	s->provider = DMT_PROVIDER_UDMABUF;
	v = getenv("NCCL_DEVMEMTCP_PROVIDER");
	if (v && *v && dmt_provider_parse(v, &s->provider) < 0) {
		snprintf(why, len, "NCCL_DEVMEMTCP_PROVIDER=%s: expected udmabuf, heap or cuda", v);
		return -EINVAL;
	}
	return 0;
}

ncclResult_t dn_init(ncclDebugLogger_t log)
{
	struct dn_state *s = &dn_state;
	ncclResult_t ret = ncclSuccess;
	char why[512] = "";

	pthread_mutex_lock(&s->lock);
	if (log)
		s->log = log;
	if (s->ready) {		/* v11+: once per communicator */
		s->inits++;
		goto out;
	}
	memset(&s->dev, 0, sizeof(s->dev));
	if (read_config(why, sizeof(why)) < 0) {
		DN_WARN("init: %s", why);
		ret = ncclInvalidArgument;
		goto out;
	}
	if (s->mode == DN_MODE_DEVMEM && dn_devmem_probe(&s->dev, why, sizeof(why)) < 0) {
		/* NCCL falls back to its own transports; nothing was changed */
		DN_WARN("init: devmem TCP is not usable on %s: %s", s->dev.ifname, why);
		ret = ncclSystemError;
		goto out;
	}
	s->ready = true;
	s->inits = 1;
	DN_INFO(NCCL_INIT | NCCL_NET, "using %s (%s mode, libdevmemtcp %s)", s->dev.ifname,
		s->mode == DN_MODE_DEVMEM ? "devmem" : "host", dmt_version());
	if (s->mode == DN_MODE_DEVMEM)
		DN_INFO(NCCL_INIT | NCCL_NET, "devmem RX serves host buffers (copied out of the "
			"dma-buf); CUDA buffers (UNPACK, dma-buf TX) need libdevmemtcp 0.2");
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

ncclResult_t dn_finalize(void)
{
	pthread_mutex_lock(&dn_state.lock);
	if (dn_state.inits > 0)
		dn_state.inits--;
	pthread_mutex_unlock(&dn_state.lock);
	return ncclSuccess;
}

ncclResult_t dn_devices(int *ndev)
{
	if (!ndev)
		return ncclInvalidArgument;
	*ndev = dn_state.ready ? 1 : 0;
	return ncclSuccess;
}

static bool dev_ok(int dev)
{
	if (!dn_state.ready || dev != 0) {
		DN_WARN("device %d: %s", dev, dn_state.ready ? "no such device (1 device)" :
			"init has not succeeded");
		return false;
	}
	return true;
}

ncclResult_t dn_get_properties(int dev, struct dn_props *p)
{
	bool dm = dn_state.mode == DN_MODE_DEVMEM;

	if (!dev_ok(dev) || !p)
		return ncclInvalidArgument;
	memset(p, 0, sizeof(*p));
	p->name = dn_state.dev.ifname;
	p->pci_path = dn_state.dev.pci_path[0] ? dn_state.dev.pci_path : NULL;
	p->guid = dn_state.dev.ifindex;
	/* Only what works today: devmem mode carries host buffers (payload
	 * lands in the bound dma-buf and is copied out).  NCCL_PTR_CUDA |
	 * NCCL_PTR_DMABUF and NCCL_NET_DEVICE_UNPACK come with sends from
	 * registered dma-bufs and published loadMeta (nccl/PORTING.md):
	 * advertising them now would make NCCL pick this plugin for GPU
	 * buffers and fail on the first transfer. */
	p->ptr_support = NCCL_PTR_HOST;
	p->speed = dn_state.dev.speed;
	p->port = 0;
	p->max_comms = 65536;
	/* UNPACK: one destination per receive step (loadMeta dst_off is
	 * relative to it), so no grouped receives in devmem mode */
	p->max_recvs = dm ? 1 : DN_MAX_RECVS;
	p->dev_type = NCCL_NET_DEVICE_HOST;
	p->dev_version = NCCL_NET_DEVICE_INVALID_VERSION;
	p->max_bytes = INT_MAX;		/* test() reports int sizes */
	return ncclSuccess;
}

/* ----------------------------------------------------- connection setup */

static int set_nodelay(int fd)
{
	int one = 1;

	return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

ncclResult_t dn_listen(int dev, void *handle, void **listen_comm)
{
	struct dn_handle *h = handle;
	struct sockaddr_storage ss;
	socklen_t len;
	struct dn_listen *l;
	int one = 1;

	if (!dev_ok(dev) || !handle || !listen_comm)
		return ncclInvalidArgument;
	*listen_comm = NULL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return ncclSystemError;
	l->kind = DN_LISTEN;
	l->dev = dev;
	l->pfd = -1;
	if (getrandom(&l->nonce, sizeof(l->nonce), 0) != sizeof(l->nonce))
		l->nonce = (uint64_t)getpid() << 32 ^ (uintptr_t)l;
	ss = dn_state.dev.addr;
	len = dn_state.dev.addrlen;
	((struct sockaddr_in *)&ss)->sin_port = 0;	/* same offset in sin6 */
	l->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l->fd < 0 || setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(l->fd, (struct sockaddr *)&ss, len) || listen(l->fd, 128) ||
	    getsockname(l->fd, (struct sockaddr *)&ss, &len)) {
		DN_WARN("listen on %s: %s", dn_state.dev.ifname, strerror(errno));
		goto err;
	}
	if (dn_state.mode == DN_MODE_DEVMEM) {
		pthread_mutex_lock(&dn_state.lock);
		int rc = dn_devmem_rx_get(&dn_state.dev);
		pthread_mutex_unlock(&dn_state.lock);
		if (rc < 0)
			goto err;	/* logged */
		l->devmem = true;
	}
	memset(h, 0, NCCL_NET_HANDLE_MAXSIZE);
	h->magic = DN_MAGIC;
	h->family = ss.ss_family;
	if (ss.ss_family == AF_INET) {
		h->port = ((struct sockaddr_in *)&ss)->sin_port;
		memcpy(h->addr, &((struct sockaddr_in *)&ss)->sin_addr, 4);
	} else {
		h->port = ((struct sockaddr_in6 *)&ss)->sin6_port;
		memcpy(h->addr, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
	}
	h->nonce = l->nonce;
	h->fd = -1;
	*listen_comm = l;
	return ncclSuccess;
err:
	if (l->fd >= 0)
		close(l->fd);
	free(l);
	return ncclSystemError;
}

static struct dn_comm *comm_new(enum dn_kind kind, int fd, int dev)
{
	struct dn_comm *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->kind = kind;
	c->fd = fd;
	c->dev = dev;
	c->rslot = -1;
	for (int i = 0; i < DN_MAX_REQS; i++)
		c->reqs[i].comm = c;
	return c;
}

enum { ST_START = 0, ST_CONNECTING, ST_HELLO, ST_FAILED };

ncclResult_t dn_connect(int dev, void *handle, void **send_comm,
			ncclNetDeviceHandle_v8_t **dev_comm)
{
	struct dn_handle *h = handle;
	struct sockaddr_storage ss = { 0 };
	struct dn_hello hello;
	socklen_t len;
	struct dn_comm *c;
	int err = 0;
	ssize_t n;

	(void)dev_comm;		/* the send side offers no device offload */
	if (!dev_ok(dev) || !h || !send_comm)
		return ncclInvalidArgument;
	*send_comm = NULL;
	if (h->magic != DN_MAGIC || (h->family != AF_INET && h->family != AF_INET6)) {
		DN_WARN("connect: the handle is not one of ours (magic %#x)", h->magic);
		return ncclInvalidArgument;
	}
	if (h->family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		a->sin_family = AF_INET;
		a->sin_port = h->port;
		memcpy(&a->sin_addr, h->addr, 4);
		len = sizeof(*a);
	} else {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = h->port;
		memcpy(&a->sin6_addr, h->addr, 16);
		len = sizeof(*a);
	}
	switch (h->stage) {
	case ST_START:
		h->fd = socket(h->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (h->fd < 0) {
			DN_WARN("connect: socket: %s", strerror(errno));
			return ncclSystemError;
		}
		set_nodelay(h->fd);
		h->sent = 0;
		if (connect(h->fd, (struct sockaddr *)&ss, len) && errno != EINPROGRESS) {
			err = errno;
			goto fail;
		}
		h->stage = ST_CONNECTING;
		/* fall through */
	case ST_CONNECTING: {
		struct pollfd p = { .fd = h->fd, .events = POLLOUT };

		if (poll(&p, 1, 0) <= 0)
			return ncclSuccess;	/* not yet (or EINTR): call again */
		len = sizeof(err);
		if (getsockopt(h->fd, SOL_SOCKET, SO_ERROR, &err, &len) || err)
			goto fail;
		h->stage = ST_HELLO;
	}
		/* fall through */
	case ST_HELLO:
		hello = (struct dn_hello){ .magic = DN_MAGIC, .nonce = h->nonce };
		n = send(h->fd, (char *)&hello + h->sent, sizeof(hello) - h->sent,
			 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return ncclSuccess;
		if (n < 0) {
			err = errno;
			goto fail;
		}
		h->sent += n;
		if (h->sent < sizeof(hello))
			return ncclSuccess;
		c = comm_new(DN_SEND, h->fd, dev);
		if (!c)
			return ncclSystemError;
		h->fd = -1;
		h->stage = ST_START;	/* the handle may be used again */
		*send_comm = c;
		return ncclSuccess;
	default:
		DN_WARN("connect: called again after a failure");
		return ncclInvalidArgument;
	}
fail:
	DN_WARN("connect to port %u: %s", ntohs(h->port), strerror(err));
	close(h->fd);
	h->fd = -1;
	h->stage = ST_FAILED;
	return ncclRemoteError;
}

ncclResult_t dn_accept(void *listen_comm, void **recv_comm,
		       ncclNetDeviceHandle_v8_t **dev_comm)
{
	struct dn_listen *l = listen_comm;
	struct dn_comm *c;
	socklen_t len;
	ssize_t n;

	if (!l || l->kind != DN_LISTEN || !recv_comm)
		return ncclInvalidArgument;
	*recv_comm = NULL;
	if (l->pfd < 0) {
		len = sizeof(l->peer);
		l->pfd = accept4(l->fd, (struct sockaddr *)&l->peer, &len,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (l->pfd < 0) {
			if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
				return ncclSuccess;
			DN_WARN("accept: %s", strerror(errno));
			return ncclSystemError;
		}
		l->hello_got = 0;
	}
	n = recv(l->pfd, (char *)&l->hello + l->hello_got, sizeof(l->hello) - l->hello_got,
		 MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return ncclSuccess;
	if (n > 0)
		l->hello_got += n;
	if (n <= 0 || (l->hello_got == sizeof(l->hello) &&
		       (l->hello.magic != DN_MAGIC || l->hello.nonce != l->nonce))) {
		/* a peer that went away, or not one of ours: drop it, keep
		 * listening */
		DN_INFO(NCCL_NET, "accept: dropped a connection (%s)",
			n <= 0 ? "closed before its hello" : "hello does not match this listen");
		close(l->pfd);
		l->pfd = -1;
		return ncclSuccess;
	}
	if (l->hello_got < sizeof(l->hello))
		return ncclSuccess;
	set_nodelay(l->pfd);
	c = comm_new(DN_RECV, l->pfd, l->dev);
	if (!c)
		return ncclSystemError;
	if (l->devmem) {
		if (dn_devmem_accept(&dn_state.dev, c, &l->peer) < 0) {
			close(l->pfd);
			l->pfd = -1;
			free(c);
			return ncclSystemError;	/* logged */
		}
		if (dev_comm)
			*dev_comm = &c->devhandle;
	}
	l->pfd = -1;
	*recv_comm = c;
	return ncclSuccess;
}

/* -------------------------------------------------------- registration */

ncclResult_t dn_reg_mr(void *comm, void *data, size_t size, int type, void **mh)
{
	struct dn_comm *c = comm;
	struct dn_mr *mr;

	if (!c || (c->kind != DN_SEND && c->kind != DN_RECV) || !mh)
		return ncclInvalidArgument;
	if (type != NCCL_PTR_HOST) {
		/* CUDA memory reaches us as a dma-buf (regMrDmaBuf): NCCL
		 * passes one since ptrSupport has NCCL_PTR_DMABUF */
		DN_WARN("regMr: memory type %d needs a dma-buf (regMrDmaBuf; NCCL_DMABUF_ENABLE=1)",
			type);
		return ncclInvalidArgument;
	}
	mr = calloc(1, sizeof(*mr));
	if (!mr)
		return ncclSystemError;
	mr->type = type;
	mr->data = data;
	mr->size = size;
	*mh = mr;
	return ncclSuccess;
}

ncclResult_t dn_reg_mr_dmabuf(void *comm, void *data, size_t size, int type, uint64_t off,
			      int fd, void **mh)
{
	struct dn_comm *c = comm;
	struct dn_mr *mr;

	if (type == NCCL_PTR_HOST)
		return dn_reg_mr(comm, data, size, type, mh);
	if (!c || (c->kind != DN_SEND && c->kind != DN_RECV) || !mh || fd < 0)
		return ncclInvalidArgument;
	if (dn_state.mode != DN_MODE_DEVMEM) {
		DN_WARN("regMrDmaBuf: host mode takes host memory only");
		return ncclInvalidArgument;
	}
	mr = calloc(1, sizeof(*mr));
	if (!mr)
		return ncclSystemError;
	mr->type = type;
	mr->data = data;
	mr->size = size;
	mr->buf_off = off;
	/* send side: bind-tx of NCCL's dma-buf; receive side: bookkeeping
	 * only (the kernel picks where received bytes land, inside the
	 * bounce buffer bound at listen; NCCL's unpack copies them out) */
	if (c->kind == DN_SEND && dn_devmem_reg_tx(&dn_state.dev, mr, fd, off) < 0) {
		free(mr);
		return ncclSystemError;	/* logged */
	}
	*mh = mr;
	return ncclSuccess;
}

ncclResult_t dn_dereg_mr(void *comm, void *mh)
{
	(void)comm;
	if (!mh)
		return ncclSuccess;
	dn_devmem_mr_free(mh);
	free(mh);
	return ncclSuccess;
}

/* ------------------------------------------------------------ requests */

static struct dn_req *req_get(struct dn_comm *c)
{
	if (c->count == DN_MAX_REQS)
		return NULL;
	for (int i = 0; i < DN_MAX_REQS; i++)
		if (c->reqs[i].state == DN_REQ_FREE) {
			struct dn_req *r = &c->reqs[i];

			memset(&r->n, 0, sizeof(*r) - offsetof(struct dn_req, n));
			r->state = DN_REQ_POSTED;
			c->fifo[(c->head + c->count++) % DN_MAX_REQS] = i;
			return r;
		}
	return NULL;	/* all held until irecvConsumed */
}

static void fifo_pop(struct dn_comm *c)
{
	c->head = (c->head + 1) % DN_MAX_REQS;
	c->count--;
}

static ncclResult_t comm_fail(struct dn_comm *c, ncclResult_t r, const char *what, int err)
{
	if (!c->err) {
		DN_WARN("%s comm: %s%s%s", c->kind == DN_SEND ? "send" : "receive", what,
			err ? ": " : "", err ? strerror(err) : "");
		c->err = r;
	}
	return c->err;
}

/* Write what the head requests have left, in order, until the socket is full. */
static ncclResult_t send_progress(struct dn_comm *c)
{
	while (c->count && !c->err) {
		struct dn_req *r = &c->reqs[c->fifo[c->head]];
		size_t total = sizeof(r->hdr) + r->cap[0];
		struct iovec iov[2];
		int niov = 0;
		ssize_t n;

		if (r->off < sizeof(r->hdr))
			iov[niov++] = (struct iovec){ (char *)&r->hdr + r->off,
						      sizeof(r->hdr) - r->off };
		if (r->cap[0]) {
			size_t poff = r->off > sizeof(r->hdr) ? r->off - sizeof(r->hdr) : 0;

			iov[niov++] = (struct iovec){ (char *)r->data[0] + poff, r->cap[0] - poff };
		}
		struct msghdr msg = { .msg_iov = iov, .msg_iovlen = niov };

		n = sendmsg(c->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return ncclSuccess;
			return comm_fail(c, ncclRemoteError, "send", errno);
		}
		r->off += n;
		if (r->off < total)
			return ncclSuccess;
		r->state = DN_REQ_DONE;
		r->got[0] = r->cap[0];
		fifo_pop(c);
	}
	return c->err;
}

/* The next bytes of the stream: a plain recv, or out of the devmem
 * fragments.  > 0, 0 at end of stream, or -errno (-EAGAIN: nothing now). */
static ssize_t stream_read(struct dn_comm *c, void *dst, size_t len)
{
	ssize_t n;

	if (c->drx)
		return dn_devmem_read(c, dst, len);
	n = recv(c->fd, dst, len, MSG_DONTWAIT);
	return n < 0 ? -errno : n;
}

/* Read frames into the head receive requests until the socket is empty. */
static ncclResult_t recv_progress(struct dn_comm *c)
{
	while (c->count && !c->err) {
		struct dn_req *r = &c->reqs[c->fifo[c->head]];
		ssize_t n;

		if (c->rslot < 0) {		/* the next frame's header */
			n = stream_read(c, (char *)&c->rhdr + c->rhdr_got,
					sizeof(c->rhdr) - c->rhdr_got);
			if (n == 0)
				return comm_fail(c, ncclRemoteError, "peer closed the connection", 0);
			if (n < 0) {
				if (n == -EAGAIN || n == -EINTR)
					return ncclSuccess;
				return comm_fail(c, ncclRemoteError, "recv", (int)-n);
			}
			c->rhdr_got += n;
			if (c->rhdr_got < sizeof(c->rhdr))
				continue;
			c->rhdr_got = 0;
			if (c->rhdr.magic != DN_MAGIC)
				return comm_fail(c, ncclRemoteError, "stream out of sync (bad frame header)", 0);
			int slot = -1;

			for (int i = 0; i < r->n; i++)
				if (!r->filled[i] && r->tag[i] == c->rhdr.tag) {
					slot = i;
					break;
				}
			if (slot < 0)
				return comm_fail(c, ncclInternalError, "a frame whose tag no posted buffer has", 0);
			if (c->rhdr.size > r->cap[slot]) {
				DN_WARN("receive: a %llu-byte message for a %zu-byte buffer (tag %d)",
					(unsigned long long)c->rhdr.size, r->cap[slot], c->rhdr.tag);
				return comm_fail(c, ncclInternalError, "message larger than the buffer", 0);
			}
			c->rslot = slot;
			c->rleft = c->rhdr.size;
			r->got[slot] = 0;
		}
		if (c->rleft) {
			n = stream_read(c, (char *)r->data[c->rslot] + r->got[c->rslot], c->rleft);
			if (n == 0)
				return comm_fail(c, ncclRemoteError, "peer closed the connection mid-message", 0);
			if (n < 0) {
				if (n == -EAGAIN || n == -EINTR)
					return ncclSuccess;
				return comm_fail(c, ncclRemoteError, "recv", (int)-n);
			}
			r->got[c->rslot] += n;
			c->rleft -= n;
			if (c->rleft)
				continue;
		}
		r->filled[c->rslot] = true;
		c->rslot = -1;
		if (++r->frames == r->n) {
			r->state = DN_REQ_DONE;
			fifo_pop(c);
		}
	}
	return c->err;
}

ncclResult_t dn_isend(void *send_comm, void *data, size_t size, int tag, void *mh, void **req)
{
	struct dn_comm *c = send_comm;
	struct dn_mr *mr = mh;
	struct dn_req *r;

	if (!c || c->kind != DN_SEND || !req || (size && !data))
		return ncclInvalidArgument;
	*req = NULL;
	if (c->err)
		return c->err;
	if (mr && mr->txbind) {
		/* devmem send from NCCL's dma-buf: libdevmemtcp 0.1 sends only
		 * regions of its own ring (dmt_tx_alloc/dmt_tx_send); a
		 * caller-owned (binding, offset, length) send with a cookie is
		 * 0.2's dmt_tx_sendv (PORTING.md).  Refuse rather than copy. */
		DN_WARN("isend from a dma-buf registration needs libdevmemtcp 0.2 (caller-owned TX iovecs)");
		return ncclInternalError;
	}
	if (size > INT_MAX) {
		DN_WARN("isend: %zu bytes: at most %d per message", size, INT_MAX);
		return ncclInvalidArgument;
	}
	r = req_get(c);
	if (!r)
		return ncclSuccess;	/* NCCL_NET_MAX_REQUESTS in flight: retry later */
	r->n = 1;
	r->data[0] = data;
	r->cap[0] = size;
	r->tag[0] = tag;
	r->mr[0] = mr;
	r->hdr = (struct dn_frame){ .size = size, .tag = tag, .magic = DN_MAGIC };
	*req = r;
	send_progress(c);	/* start now; errors come back through test */
	return ncclSuccess;
}

ncclResult_t dn_irecv(void *recv_comm, int n, void **data, const size_t *sizes,
		      const int *tags, void **mh, void **req)
{
	struct dn_comm *c = recv_comm;
	struct dn_req *r;

	if (!c || c->kind != DN_RECV || !req || n < 1 || n > DN_MAX_RECVS || !data || !sizes ||
	    !tags) {
		DN_WARN("irecv: bad arguments (n %d, at most %d)", n, DN_MAX_RECVS);
		return ncclInvalidArgument;
	}
	*req = NULL;
	if (c->err)
		return c->err;
	for (int i = 0; i < n; i++) {
		struct dn_mr *m = mh ? mh[i] : NULL;

		if (c->drx && m && m->type != NCCL_PTR_HOST) {
			/* device memory: the fragments must be published as
			 * UNPACK metadata and held until irecvConsumed; 0.1's
			 * dmt_rx_recv gives them back at its next call
			 * (PORTING.md: 0.2's held fragments) */
			DN_WARN("irecv into device memory needs libdevmemtcp 0.2 (held RX fragments)");
			return ncclInternalError;
		}
		if (sizes[i] > INT_MAX || (sizes[i] && !data[i])) {
			DN_WARN("irecv: buffer %d: %zu bytes at %p", i, sizes[i], data[i]);
			return ncclInvalidArgument;
		}
	}
	r = req_get(c);
	if (!r)
		return ncclSuccess;
	r->n = n;
	for (int i = 0; i < n; i++) {
		r->data[i] = data[i];
		r->cap[i] = sizes[i];
		r->tag[i] = tags[i];
		r->mr[i] = mh ? mh[i] : NULL;
	}
	*req = r;
	recv_progress(c);
	return ncclSuccess;
}

ncclResult_t dn_iflush(void *recv_comm, int n, void **data, int *sizes, void **mh, void **req)
{
	(void)recv_comm, (void)n, (void)data, (void)sizes, (void)mh;
	/* host memory needs no flush; with UNPACK NCCL's device code copies
	 * (forceFlush is 0): nothing to wait for */
	if (req)
		*req = NULL;
	return ncclSuccess;
}

ncclResult_t dn_test(void *request, int *done, int *sizes)
{
	struct dn_req *r = request;
	struct dn_comm *c;
	ncclResult_t ret;

	if (!r || !done)
		return ncclInvalidArgument;
	*done = 0;
	c = r->comm;
	if (r->state == DN_REQ_FREE) {
		DN_WARN("test: request %p is not in flight", request);
		return ncclInvalidArgument;
	}
	if (r->state == DN_REQ_POSTED) {
		ret = c->kind == DN_SEND ? send_progress(c) : recv_progress(c);
		if (ret != ncclSuccess)
			return ret;
	}
	if (r->state != DN_REQ_DONE)
		return ncclSuccess;
	*done = 1;
	if (sizes)
		for (int i = 0; i < r->n; i++)
			sizes[i] = (int)r->got[i];
	/* nothing is held past test: the copy path gave every byte to the
	 * destination (UNPACK's held fragments, 0.2: until irecvConsumed) */
	r->state = DN_REQ_FREE;
	return ncclSuccess;
}

ncclResult_t dn_irecv_consumed(void *recv_comm, int n, void *request)
{
	struct dn_comm *c = recv_comm;
	struct dn_req *r = request;

	(void)n, (void)r;
	if (!c || c->kind != DN_RECV)
		return ncclInvalidArgument;
	/* receives are complete at test(): nothing is held yet */
	return ncclSuccess;
}

ncclResult_t dn_get_device_mr(void *comm, void *mh, void **dptr)
{
	(void)comm, (void)mh;
	/* UNPACK device code needs no memory handle: it copies from the
	 * bounce buffer named in the device handle */
	if (dptr)
		*dptr = NULL;
	return ncclSuccess;
}

/* --------------------------------------------------------------- close */

static ncclResult_t comm_close(struct dn_comm *c, enum dn_kind kind)
{
	if (!c)
		return ncclSuccess;
	if (c->kind != kind)
		return ncclInvalidArgument;
	/* requests in flight die with the comm (NCCL closes after aborting) */
	dn_devmem_conn_free(c);
	close(c->fd);
	c->kind = 0;
	free(c);
	return ncclSuccess;
}

ncclResult_t dn_close_send(void *comm)
{
	return comm_close(comm, DN_SEND);
}

ncclResult_t dn_close_recv(void *comm)
{
	return comm_close(comm, DN_RECV);
}

ncclResult_t dn_close_listen(void *comm)
{
	struct dn_listen *l = comm;

	if (!l)
		return ncclSuccess;
	if (l->kind != DN_LISTEN)
		return ncclInvalidArgument;
	if (l->pfd >= 0)
		close(l->pfd);
	close(l->fd);
	if (l->devmem) {
		pthread_mutex_lock(&dn_state.lock);
		dn_devmem_rx_put(&dn_state.dev);
		pthread_mutex_unlock(&dn_state.lock);
	}
	l->kind = 0;
	free(l);
	return ncclSuccess;
}
