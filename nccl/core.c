// SPDX-License-Identifier: MIT
/*
 * core.c - the plugin's version-independent half: configuration from the
 * environment, the one device, its properties, connection setup as NCCL
 * drives it (never blocking: connect and accept return success with a NULL
 * comm until the connection is up), registrations, and framed messages.
 *
 * Host mode: one TCP stream per comm, headers inline, plain non-blocking
 * TCP (the kernel copies).  Devmem mode (the listen handle says so): two
 * connections per comm, the control one for the frame headers and the data
 * one for payload only, whose flow accept steers to the devmem queue
 * before acking; an isend from a dma-buf registration goes to the comm's
 * send engine (dmt_tx_submit, cookie = request, done at its zerocopy
 * completion), a host-memory one is a plain sendmsg after the engine's
 * bytes; a receive into device memory is published as UNPACK loadMeta and
 * held until irecvConsumed (devmem.c).
 *
 * Framing: every isend puts a 16-byte header (size, tag) before its
 * payload (devmem mode: on the control connection, in the same order).  A receive request of n buffers takes the next n frames; each
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
#include <net/if.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/uio.h>
#include <time.h>
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

/* The MTU by ioctl: /sys shows the netns it was mounted in, which need not
 * be this thread's (a process that setns()'d). */
static int read_mtu(const char *ifname)
{
	struct ifreq ifr = { 0 };
	int fd, mtu = 1500;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return mtu;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(fd, SIOCGIFMTU, &ifr) == 0 && ifr.ifr_mtu >= 1280)
		mtu = ifr.ifr_mtu;
	close(fd);
	return mtu;
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
	d->mtu = read_mtu(d->ifname);
}

/*
 * The most bytes one receive into device memory can take: UNPACK holds
 * NET_UNPACK_MAX_SLICE_PAGES fragments per receive, and the kernel gives
 * at most one TCP segment of payload per fragment, so at MTU 1500 a 4 MiB
 * receive needs ~2900 fragments and would be refused (E2BIG).  A segment
 * carries at least MTU - 72 bytes of payload (IPv6 and TCP headers,
 * timestamps); NCCL cuts its messages to what getProperties says.
 */
static size_t devmem_max_bytes(int mtu)
{
	size_t b = (size_t)NET_UNPACK_MAX_SLICE_PAGES * (size_t)(mtu - 72);

	b &= ~(size_t)4095;
	return b < NET_UNPACK_MAX_SLICE_SIZE ? b : NET_UNPACK_MAX_SLICE_SIZE;
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
	/*
	 * NCCL_DEVMEMTCP_MAX_RECVS: the grouped receives advertised (maxRecvs)
	 * and taken per irecv, 1..8.  Default 8 in host mode, 1 in devmem
	 * mode: with maxRecvs > 1 NCCL shares one receive comm among the
	 * connections of a peer and channel (NCCL_NET_SHARED_COMMS, on by
	 * default), calls accept for the first only, and the others keep an
	 * empty UNPACK device handle (no metadata, needsProxyProgress 0:
	 * src/transport/net.cc recvProxyConnect); each would need its own
	 * loadMeta queue, which one recvComm cannot give.  Set 2..8 with
	 * NCCL_NET_SHARED_COMMS=0, or to drive grouped receives directly.
	 */
	s->max_recvs = s->mode == DN_MODE_DEVMEM ? 1 : DN_MAX_RECVS;
	v = getenv("NCCL_DEVMEMTCP_MAX_RECVS");
	if (v && *v) {
		unsigned a;
		char c;

		if (sscanf(v, "%u%c", &a, &c) != 1 || a < 1 || a > DN_MAX_RECVS) {
			snprintf(why, len, "NCCL_DEVMEMTCP_MAX_RECVS=%s: expected 1..%d", v,
				 DN_MAX_RECVS);
			return -EINVAL;
		}
		s->max_recvs = (int)a;
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
		DN_INFO(NCCL_INIT | NCCL_NET, "dma-buf registrations sent with bind-tx, device "
			"receives published as UNPACK loadMeta (one slot per buffer, maxRecvs %d); "
			"host buffers copied out of the dma-buf", s->max_recvs);
	if (s->mode == DN_MODE_DEVMEM)
		DN_INFO(NCCL_INIT | NCCL_NET, "MTU %d: at most %zu bytes per receive (%d UNPACK "
			"fragments of at least %d bytes)", s->dev.mtu,
			devmem_max_bytes(s->dev.mtu), NET_UNPACK_MAX_SLICE_PAGES, s->dev.mtu - 72);
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
	/* devmem mode: sends straight from NCCL's dma-buf (bind-tx,
	 * dmt_tx_submit) and receives published as UNPACK loadMeta for
	 * NCCL's device code; host buffers work in both modes */
	p->ptr_support = dm ? NCCL_PTR_HOST | NCCL_PTR_CUDA | NCCL_PTR_DMABUF : NCCL_PTR_HOST;
	p->speed = dn_state.dev.speed;
	p->port = 0;
	p->max_comms = 65536;
	/* grouped receives: NCCL_DEVMEMTCP_MAX_RECVS (read_config says why
	 * devmem mode defaults to 1) */
	p->max_recvs = dn_state.max_recvs;
	p->dev_type = dm ? NCCL_NET_DEVICE_UNPACK : NCCL_NET_DEVICE_HOST;
	p->dev_version = dm ? NCCL_NET_DEVICE_UNPACK_VERSION : NCCL_NET_DEVICE_INVALID_VERSION;
	/* test() reports int sizes; a receive into device memory takes what
	 * UNPACK's fragment slots hold at this MTU */
	p->max_bytes = dm ? devmem_max_bytes(dn_state.dev.mtu) : INT_MAX;
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
	h->dfd = -1;
	h->flags = l->devmem ? DN_H_SPLIT : 0;
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
	c->cfd = -1;
	for (int i = 0; i < DN_MAX_REQS; i++)
		c->reqs[i].comm = c;
	return c;
}

enum { ST_START = 0, ST_CONNECTING, ST_HELLO, ST_DSTART, ST_DCONNECTING, ST_DHELLO, ST_ACK,
       ST_FAILED };

/* One connection of connect(): socket, connect, hello, each step retried
 * from the stage kept in the handle (base: ST_START or ST_DSTART).  1 once
 * the hello is out, 0 to be called again, -errno. */
static int conn_step(struct dn_handle *h, int32_t *fd, int base, const struct sockaddr_storage *ss,
		     socklen_t len, uint32_t hflags)
{
	struct dn_hello hello;
	socklen_t elen;
	int err = 0;
	ssize_t n;

	switch (h->stage - base) {
	case 0:
		*fd = socket(h->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (*fd < 0)
			return -errno;
		set_nodelay(*fd);
		h->sent = 0;
		/* devmem TX leaves through the bound interface: route the data
		 * connection there from the start (the send engine sets it too,
		 * but after connect the kernel must drop its cached route) */
		if ((hflags & DN_HELLO_DATA) && dn_state.mode == DN_MODE_DEVMEM)
			setsockopt(*fd, SOL_SOCKET, SO_BINDTODEVICE, dn_state.dev.ifname,
				   strlen(dn_state.dev.ifname) + 1);
		if (connect(*fd, (const struct sockaddr *)ss, len) && errno != EINPROGRESS)
			return -errno;
		h->stage = base + 1;
		/* fall through */
	case 1: {
		struct pollfd p = { .fd = *fd, .events = POLLOUT };

		if (poll(&p, 1, 0) <= 0)
			return 0;	/* not yet (or EINTR): call again */
		elen = sizeof(err);
		if (getsockopt(*fd, SOL_SOCKET, SO_ERROR, &err, &elen))
			return -errno;
		if (err)
			return -err;
		h->stage = base + 2;
	}
		/* fall through */
	case 2:
		hello = (struct dn_hello){ .magic = DN_MAGIC, .flags = hflags, .nonce = h->nonce,
					   .connid = h->connid };
		n = send(*fd, (char *)&hello + h->sent, sizeof(hello) - h->sent,
			 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -errno;
		h->sent += n;
		return h->sent == sizeof(hello);
	}
	return -EINVAL;
}

ncclResult_t dn_connect(int dev, void *handle, void **send_comm,
			ncclNetDeviceHandle_v8_t **dev_comm)
{
	struct dn_handle *h = handle;
	struct sockaddr_storage ss = { 0 };
	bool split;
	socklen_t len;
	struct dn_comm *c;
	const char *what = "connect";
	int rc;

	(void)dev_comm;		/* the send side offers no device offload */
	if (!dev_ok(dev) || !h || !send_comm)
		return ncclInvalidArgument;
	*send_comm = NULL;
	if (h->magic != DN_MAGIC || (h->family != AF_INET && h->family != AF_INET6)) {
		DN_WARN("connect: the handle is not one of ours (magic %#x)", h->magic);
		return ncclInvalidArgument;
	}
	if (h->stage < ST_START || h->stage >= ST_FAILED) {
		DN_WARN("connect: called again after a failure");
		return ncclInvalidArgument;
	}
	split = h->flags & DN_H_SPLIT;
	len = dn_handle_addr(h, &ss);
	if (h->stage == ST_START) {
		h->fd = h->dfd = -1;
		if (getrandom(&h->connid, sizeof(h->connid), 0) != sizeof(h->connid))
			h->connid = (uint64_t)getpid() << 32 ^ (uintptr_t)h ^ (uint64_t)time(NULL);
	}
	if (h->stage <= ST_HELLO) {
		rc = conn_step(h, &h->fd, ST_START, &ss, len, split ? DN_HELLO_CTRL : 0);
		if (rc <= 0)
			goto out;
		if (!split) {
			c = comm_new(DN_SEND, h->fd, dev);
			if (!c)
				return ncclSystemError;
			goto done;
		}
		h->stage = ST_DSTART;
	}
	/* devmem listen: the data connection, then wait for the receiver's
	 * ack on the control one (the data flow is steered by then) */
	if (h->stage <= ST_DHELLO) {
		what = "connect (data connection)";
		rc = conn_step(h, &h->dfd, ST_DSTART, &ss, len, DN_HELLO_DATA);
		if (rc <= 0)
			goto out;
		h->stage = ST_ACK;
	}
	{
		uint8_t ack;
		ssize_t n = recv(h->fd, &ack, 1, MSG_DONTWAIT);

		what = "connect (waiting for the receiver's ack)";
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return ncclSuccess;
		rc = n < 0 ? -errno : n == 0 ? -ECONNRESET : ack != DN_ACK ? -EPROTO : 1;
		if (rc < 0)
			goto out;
	}
	c = comm_new(DN_SEND, h->dfd, dev);
	if (!c)
		return ncclSystemError;
	c->cfd = h->fd;
done:
	h->fd = h->dfd = -1;
	h->stage = ST_START;	/* the handle may be used again */
	*send_comm = c;
	return ncclSuccess;
out:
	if (rc >= 0)
		return ncclSuccess;
	DN_WARN("%s to port %u: %s", what, ntohs(h->port), strerror(-rc));
	if (h->fd >= 0)
		close(h->fd);
	if (h->dfd >= 0)
		close(h->dfd);
	h->fd = h->dfd = -1;
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
	if (!l->devmem) {
		c = comm_new(DN_RECV, l->pfd, l->dev);
		if (!c)
			return ncclSystemError;
		l->pfd = -1;
		*recv_comm = c;
		return ncclSuccess;
	}
	/* devmem: a control connection and its data connection, accepted in
	 * either order; the first waits for the other */
	bool data = l->hello.flags & DN_HELLO_DATA;
	int p;

	if (!(l->hello.flags & (DN_HELLO_CTRL | DN_HELLO_DATA))) {
		DN_INFO(NCCL_NET, "accept: dropped a connection (a host-mode peer: this "
			"listen comm is in devmem mode)");
		close(l->pfd);
		l->pfd = -1;
		return ncclSuccess;
	}
	for (p = 0; p < l->npend && (l->pend[p].connid != l->hello.connid ||
				     l->pend[p].data == data); p++)
		;
	if (p == l->npend) {
		if (l->npend == (int)(sizeof(l->pend) / sizeof(l->pend[0]))) {
			DN_WARN("accept: %d connects half done: dropped one", l->npend);
			close(l->pfd);
		} else {
			l->pend[l->npend].fd = l->pfd;
			l->pend[l->npend].connid = l->hello.connid;
			l->pend[l->npend].data = data;
			l->pend[l->npend++].peer = l->peer;
		}
		l->pfd = -1;
		return ncclSuccess;
	}
	struct sockaddr_storage peer = data ? l->peer : l->pend[p].peer;

	c = comm_new(DN_RECV, data ? l->pfd : l->pend[p].fd, l->dev);
	if (!c)
		return ncclSystemError;
	c->cfd = data ? l->pend[p].fd : l->pfd;
	l->pend[p] = l->pend[--l->npend];
	l->pfd = -1;
	if (dn_devmem_accept(&dn_state.dev, c, &peer) < 0)
		goto fail;	/* logged */
	/* steered: the sender may start */
	uint8_t ack = DN_ACK;

	if (send(c->cfd, &ack, 1, MSG_DONTWAIT | MSG_NOSIGNAL) != 1) {
		DN_WARN("accept: ack to the sender: %s", strerror(errno));
		dn_devmem_conn_free(c);
		goto fail;
	}
	if (dev_comm)
		*dev_comm = &c->devhandle;
	*recv_comm = c;
	return ncclSuccess;
fail:
	close(c->fd);
	close(c->cfd);
	free(c);
	return ncclSystemError;
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
	mr->comm = c;
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
	mr->comm = c;
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
	struct dn_mr *mr = mh;

	(void)comm;
	if (!mr)
		return ncclSuccess;
	if (mr->anchor) {
		/* the send engine was made with this binding and lives as long
		 * as the connection (send ids): freed with the comm */
		mr->dead = true;
		return ncclSuccess;
	}
	dn_devmem_mr_free(mr);
	free(mr);
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

static ncclResult_t tx_fail(struct dn_comm *c, const char *what)
{
	char msg[600];

	DN_WARN("send comm: %s: %s", what, dmt_err_str(dmt_tx_error(c->tx), msg, sizeof(msg)));
	c->err = ncclRemoteError;
	return c->err;
}

/* The send engine's finished requests: done once the kernel's zerocopy
 * completion for every byte arrived (NCCL may reuse the buffer then). */
static ncclResult_t tx_reap(struct dn_comm *c)
{
	uint64_t cookies[DN_MAX_REQS];
	int n;

	if (!c->tx)
		return ncclSuccess;
	if (dmt_tx_progress(c->tx) < 0)
		return tx_fail(c, "dma-buf send");
	while ((n = dmt_tx_reap(c->tx, cookies, DN_MAX_REQS)) > 0)
		for (int i = 0; i < n; i++) {
			struct dn_req *r = (struct dn_req *)(uintptr_t)cookies[i];

			r->got[0] = r->cap[0];
			r->state = DN_REQ_DONE;
		}
	return ncclSuccess;
}

/*
 * Hand what the requests have left to the kernel, in posting order, until
 * the socket is full.  Split comms (devmem listen) write every header to
 * the control connection first and payload only to the data one; a
 * dma-buf request goes to the send engine (dmt_tx_submit, cookie = the
 * request), and a host-memory payload after it waits until the engine has
 * handed all its bytes to the kernel (one stream, one order).
 */
static ncclResult_t send_progress(struct dn_comm *c)
{
	bool split = c->cfd >= 0;

	if (c->err)
		return c->err;
	if (split && c->chdr_len) {
		ssize_t n = send(c->cfd, c->chdr, c->chdr_len, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return comm_fail(c, ncclRemoteError, "send (control connection)", errno);
		if (n > 0) {
			memmove(c->chdr, c->chdr + n, c->chdr_len - n);
			c->chdr_len -= n;
		}
		if (c->chdr_len)
			return ncclSuccess;
	}
	if (tx_reap(c))
		return c->err;
	while (c->count && !c->err) {
		struct dn_req *r = &c->reqs[c->fifo[c->head]];
		size_t hlen = split ? 0 : sizeof(r->hdr);
		size_t total = hlen + r->cap[0];
		struct iovec iov[2];
		int niov = 0;
		ssize_t n;

		if (r->engine) {
			struct dn_mr *mr = r->mr[0];
			struct dmt_txvec v = {
				.bind = mr->txbind,
				.off = mr->buf_off + (uint64_t)((char *)r->data[0] - (char *)mr->data),
				.len = r->cap[0],
			};
			int rc = dmt_tx_submit(c->tx, &v, 1, (uint64_t)(uintptr_t)r);

			if (rc == -EAGAIN)
				break;		/* engine full: its completions free it */
			if (rc < 0)
				return tx_fail(c, "dmt_tx_submit");
			r->written = true;
			fifo_pop(c);
			continue;
		}
		if (c->tx && dmt_tx_pending(c->tx))
			break;			/* the engine's bytes go first */
		if (r->off < hlen)
			iov[niov++] = (struct iovec){ (char *)&r->hdr + r->off, hlen - r->off };
		if (r->cap[0]) {
			size_t poff = r->off > hlen ? r->off - hlen : 0;

			iov[niov++] = (struct iovec){ (char *)r->data[0] + poff, r->cap[0] - poff };
		}
		if (niov) {
			struct msghdr msg = { .msg_iov = iov, .msg_iovlen = niov };

			n = sendmsg(c->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n < 0) {
				if (errno == EAGAIN || errno == EINTR)
					break;
				return comm_fail(c, ncclRemoteError, "send", errno);
			}
			r->off += n;
			if (r->off < total)
				break;
		}
		r->written = true;
		r->state = DN_REQ_DONE;
		r->got[0] = r->cap[0];
		fifo_pop(c);
	}
	if (!c->err)
		tx_reap(c);
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

/* A frame header: from the control connection (split), else inline. */
static ssize_t header_read(struct dn_comm *c, void *dst, size_t len)
{
	ssize_t n;

	if (c->cfd < 0)
		return stream_read(c, dst, len);
	n = recv(c->cfd, dst, len, MSG_DONTWAIT);
	return n < 0 ? -errno : n;
}

/* Read frames into the head receive requests until the socket is empty. */
static ncclResult_t recv_progress(struct dn_comm *c)
{
	while (c->count && !c->err) {
		struct dn_req *r = &c->reqs[c->fifo[c->head]];
		ssize_t n;

		if (c->rslot < 0) {		/* the next frame's header */
			n = header_read(c, (char *)&c->rhdr + c->rhdr_got,
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
			if (r->dev[slot] && c->rhdr.size > NET_UNPACK_MAX_SLICE_SIZE) {
				DN_WARN("receive: a %llu-byte message into device memory: UNPACK takes "
					"at most %d bytes per receive (NET_UNPACK_MAX_SLICE_SIZE)",
					(unsigned long long)c->rhdr.size, NET_UNPACK_MAX_SLICE_SIZE);
				return comm_fail(c, ncclInternalError, "message larger than an UNPACK slice", 0);
			}
			c->rslot = slot;
			c->rleft = c->rhdr.size;
			r->got[slot] = 0;
		}
		if (c->rleft) {
			int s = c->rslot;

			if (r->dev[s])
				n = dn_devmem_hold(c, r, s, r->got[s], c->rleft);
			else
				n = stream_read(c, (char *)r->data[s] + r->got[s], c->rleft);
			if (n == 0)
				return comm_fail(c, ncclRemoteError, "peer closed the connection mid-message", 0);
			if (n < 0) {
				if (n == -EAGAIN || n == -EINTR)
					return ncclSuccess;
				return comm_fail(c, ncclRemoteError, r->dev[s] ?
						 "receive into device memory" : "recv", (int)-n);
			}
			r->got[s] += n;
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
	bool engine = mr && mr->txbind && size;

	if (!c || c->kind != DN_SEND || !req || (size && !data))
		return ncclInvalidArgument;
	*req = NULL;
	if (c->err)
		return c->err;
	if (size > INT_MAX) {
		DN_WARN("isend: %zu bytes: at most %d per message", size, INT_MAX);
		return ncclInvalidArgument;
	}
	if (engine) {
		if ((char *)data < (char *)mr->data || size > mr->size ||
		    (size_t)((char *)data - (char *)mr->data) > mr->size - size) {
			DN_WARN("isend: %zu bytes at %p outside the registration [%p, +%zu)", size,
				data, mr->data, mr->size);
			return ncclInvalidArgument;
		}
		if (c->cfd < 0) {
			DN_WARN("isend from a dma-buf: the peer's listen comm is in host mode");
			return ncclInvalidArgument;
		}
		if (!c->tx) {
			/* one engine per connection (send ids count per
			 * socket), made with the first dma-buf sent from; any
			 * binding on the interface rides on it */
			DMT_OPTS(dmt_tx_opts, o, .max_requests = DN_MAX_REQS);
			struct dmt_err e = { 0 };
			char msg[600];

			c->tx = dmt_tx_new(c->fd, mr->txbind, &o, &e);
			if (!c->tx) {
				DN_WARN("isend: send engine: %s", dmt_err_str(&e, msg, sizeof(msg)));
				return ncclSystemError;
			}
			c->anchor = mr;
			mr->anchor = true;
		}
	}
	if (c->cfd >= 0 && c->chdr_len + sizeof(struct dn_frame) > sizeof(c->chdr))
		return ncclSuccess;	/* headers not out yet: retry later */
	r = req_get(c);
	if (!r)
		return ncclSuccess;	/* NCCL_NET_MAX_REQUESTS in flight: retry later */
	r->n = 1;
	r->data[0] = data;
	r->cap[0] = size;
	r->tag[0] = tag;
	r->mr[0] = mr;
	r->engine = engine;
	r->hdr = (struct dn_frame){ .size = size, .tag = tag, .magic = DN_MAGIC };
	if (c->cfd >= 0) {
		memcpy(c->chdr + c->chdr_len, &r->hdr, sizeof(r->hdr));
		c->chdr_len += sizeof(r->hdr);
	}
	*req = r;
	send_progress(c);	/* start now; errors come back through test */
	return ncclSuccess;
}

ncclResult_t dn_irecv(void *recv_comm, int n, void **data, const size_t *sizes,
		      const int *tags, void **mh, void **req)
{
	struct dn_comm *c = recv_comm;
	struct dn_req *r;
	int ndev = 0;

	if (!c || c->kind != DN_RECV || !req || n < 1 || n > dn_state.max_recvs || !data ||
	    !sizes || !tags) {
		DN_WARN("irecv: bad arguments (n %d, maxRecvs %d)", n, dn_state.max_recvs);
		return ncclInvalidArgument;
	}
	*req = NULL;
	if (c->err)
		return c->err;
	for (int i = 0; i < n; i++) {
		struct dn_mr *m = mh ? mh[i] : NULL;

		if (m && m->type != NCCL_PTR_HOST) {
			if (!c->drx) {
				DN_WARN("irecv into device memory: this comm is in host mode");
				return ncclInvalidArgument;
			}
			ndev++;
		}
		if (sizes[i] > INT_MAX || (sizes[i] && !data[i])) {
			DN_WARN("irecv: buffer %d: %zu bytes at %p", i, sizes[i], data[i]);
			return ncclInvalidArgument;
		}
	}
	/* device buffers: one UNPACK slot each, held until irecvConsumed */
	if (c->slots_used + ndev > NCCL_NET_DEVICE_UNPACK_MAX_QUEUE_DEPTH)
		return ncclSuccess;
	r = req_get(c);
	if (!r)
		return ncclSuccess;
	r->n = n;
	for (int i = 0; i < n; i++) {
		r->data[i] = data[i];
		r->cap[i] = sizes[i];
		r->tag[i] = tags[i];
		r->mr[i] = mh ? mh[i] : NULL;
		if (r->mr[i] && r->mr[i]->type != NCCL_PTR_HOST) {
			r->dev[i] = true;
			r->mslot[i] = (int)(c->slot_next++ % NCCL_NET_DEVICE_UNPACK_MAX_QUEUE_DEPTH);
			dn_devmem_slot_reset(c, r->mslot[i]);
		}
	}
	r->nslots = ndev;
	c->slots_used += ndev;
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
	if (r->state != DN_REQ_DONE && r->state != DN_REQ_HELD)
		return ncclSuccess;
	*done = 1;
	if (sizes)
		for (int i = 0; i < r->n; i++)
			sizes[i] = (int)r->got[i];
	/* host buffers hold nothing past test; device buffers hold their
	 * fragments and slots until irecvConsumed (NCCL's unpack reads them) */
	r->state = r->nslots ? DN_REQ_HELD : DN_REQ_FREE;
	return ncclSuccess;
}

ncclResult_t dn_irecv_consumed(void *recv_comm, int n, void *request)
{
	struct dn_comm *c = recv_comm;
	struct dn_req *r = request;
	int rc;

	(void)n;
	if (!c || c->kind != DN_RECV)
		return ncclInvalidArgument;
	if (!r || r->state == DN_REQ_FREE)
		return ncclSuccess;	/* host buffers: nothing was held */
	if (r->comm != c || r->state != DN_REQ_HELD) {
		DN_WARN("irecvConsumed: request %p is not a finished receive of this comm", request);
		return ncclInvalidArgument;
	}
	rc = dn_devmem_put(c, r, "irecvConsumed");
	c->slots_used -= r->nslots;
	r->nslots = 0;
	r->state = DN_REQ_FREE;
	return rc < 0 ? ncclSystemError : ncclSuccess;
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
	/* requests in flight die with the comm (NCCL closes after aborting);
	 * every fragment a request holds goes back first */
	if (c->drx)
		for (int i = 0; i < DN_MAX_REQS; i++)
			if (c->reqs[i].chunks || c->reqs[i].state == DN_REQ_HELD)
				dn_devmem_put(c, &c->reqs[i], "close");
	dn_devmem_conn_free(c);
	if (c->tx) {
		dmt_tx_free(c->tx);	/* before the binding it was made with */
		if (c->anchor->dead) {
			dn_devmem_mr_free(c->anchor);
			free(c->anchor);
		} else {
			c->anchor->anchor = false;
		}
	}
	close(c->fd);
	if (c->cfd >= 0)
		close(c->cfd);
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
	for (int i = 0; i < l->npend; i++)
		close(l->pend[i].fd);
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
