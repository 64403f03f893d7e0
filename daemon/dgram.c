/* One UDP socket of one service. Every UDP plugin gets the same guard
 * here, before its code runs: sources that reflection attacks forge are
 * dropped, each source and all of them together are rate-limited, and a
 * reply may amplify a request only up to 512 bytes. */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "accept.h"
#include "daemon.h"
#include "dgram.h"
#include "log.h"
#include "metrics.h"
#include "ratelimit.h"

#define DGRAM_MAX 65536
#define DGRAM_DROP_LOG_NS (10LL * 1000000000)
/* Room for IP_PKTINFO and IPV6_PKTINFO. */
#define DGRAM_CTL_SPACE 128
_Static_assert(CMSG_SPACE(sizeof(struct in6_pktinfo)) +
			       CMSG_SPACE(sizeof(struct in_pktinfo)) <=
		       DGRAM_CTL_SPACE,
	       "control buffer too small for packet info");

struct dgram {
	struct ringd_dgram pub; /* first: plugins hold &pub */
	struct loop_op op;
	struct loop *loop;
	struct dgram_guard *guard;
	const struct ringd_instance *inst;
	dgram_idle_fn idle;
	void *idle_arg;
	int fd;
	bool armed, closing;
	bool replied; /* the current datagram has had its reply */
	struct loop_timer retry; /* after a receive error */
	int64_t retry_ns;        /* the next wait; 0 after a success */
	uint64_t recv_errors;
	struct msghdr msg;
	struct iovec iov;
	struct sockaddr_storage peer;
	_Alignas(struct cmsghdr) char ctl[DGRAM_CTL_SPACE];
	/* Where the current datagram arrived, to answer from there. */
	int pktinfo_level; /* 0: none */
	struct in_pktinfo pi4;
	struct in6_pktinfo pi6;
	struct metrics_dgram *ctr; /* NULL: not counted */
	char data[DGRAM_MAX];
};

_Static_assert(DGRAM_DROP_NREASONS == METRICS_DROP_N, "metrics.h sizes");

/* Slots of the per-source table: 192 KiB that bound memory whatever
 * the number of (spoofed) sources. */
#define DGRAM_RATE_SLOTS 8192

struct dgram_guard {
	struct ratelimit *per_source;
	struct rate_params global_p;
	struct rate_bucket global;
	uint64_t drops[DGRAM_DROP_NREASONS]; /* since the last log line */
	uint64_t total;
	int64_t last_log;
};

static const char *const dgram_drop_names[DGRAM_DROP_NREASONS] = {
	[DGRAM_DROP_LOW_PORT] = "low_port",
	[DGRAM_DROP_OWN_PORT] = "own_port",
	[DGRAM_DROP_BOGUS] = "bogus_source",
	[DGRAM_DROP_TRUNCATED] = "truncated",
	[DGRAM_DROP_RATE] = "rate",
	[DGRAM_DROP_GLOBAL] = "global_rate",
	[DGRAM_DROP_REPEAT] = "repeat_reply",
	[DGRAM_DROP_ACCESS] = "access",
};

static uint16_t dgram_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return 0;
}

static bool dgram_port_is_ours(uint16_t port, const uint16_t *own, size_t n)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (own[mid] == port)
			return true;
		if (own[mid] < port)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* No real client sends from these: "this network" 0/8, multicast 224/4,
 * reserved 240/4 with the limited broadcast 255.255.255.255. A forged
 * one would make us answer a whole network. */
static bool dgram_bogus_v4(uint32_t host_order)
{
	uint8_t top = (uint8_t)(host_order >> 24);

	return top == 0 || top >= 224;
}

static bool dgram_bogus_source(const struct sockaddr *sa)
{
	const struct in6_addr *a6;
	uint32_t v4;

	if (sa->sa_family == AF_INET) {
		v4 = ((const struct sockaddr_in *)sa)->sin_addr.s_addr;
		return dgram_bogus_v4(ntohl(v4));
	}
	a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	if (IN6_IS_ADDR_V4MAPPED(a6)) {
		memcpy(&v4, &a6->s6_addr[12], 4);
		return dgram_bogus_v4(ntohl(v4));
	}
	return IN6_IS_ADDR_UNSPECIFIED(a6) || IN6_IS_ADDR_MULTICAST(a6);
}

int dgram_check_source(const struct sockaddr *sa, const uint16_t *own_ports,
		       size_t nown)
{
	uint16_t port;

	if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6)
		return DGRAM_DROP_BOGUS;
	if (dgram_bogus_source(sa))
		return DGRAM_DROP_BOGUS;
	port = dgram_port(sa);
	if (port < DGRAM_MIN_SOURCE_PORT)
		return DGRAM_DROP_LOW_PORT;
	if (dgram_port_is_ours(port, own_ports, nown))
		return DGRAM_DROP_OWN_PORT;
	return -1;
}

struct dgram_guard *dgram_guard_new(const struct ringd_conf *c)
{
	struct dgram_guard *gd = calloc(1, sizeof(*gd));
	uint64_t seed = 0;

	if (!gd)
		return NULL;
	/* The seed only has to be unknown outside; a failed getrandom
	 * leaves the address of gd, which ASLR makes unknown enough. */
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed))
		seed = (uint64_t)(uintptr_t)gd;
	gd->per_source = ratelimit_new(DGRAM_RATE_SLOTS, c->udp_rate,
				       c->udp_burst, seed);
	if (!gd->per_source) {
		free(gd);
		return NULL;
	}
	rate_params_init(&gd->global_p, c->udp_global_rate, c->udp_global_rate);
	return gd;
}

void dgram_guard_free(struct dgram_guard *gd)
{
	if (!gd)
		return;
	ratelimit_free(gd->per_source);
	free(gd);
}

/* A flood must not become a flood of log lines: one line per interval
 * with the counts by reason, written when the next drop comes. */
static void dgram_guard_log(struct dgram_guard *gd, int64_t now)
{
	char line[256];

	if (gd->last_log && now - gd->last_log < DGRAM_DROP_LOG_NS)
		return;
	gd->last_log = now;
	log_notice("udp: dropped datagrams%s total=%llu",
		   log_counts(line, sizeof(line), dgram_drop_names, gd->drops,
			      DGRAM_DROP_NREASONS),
		   (unsigned long long)gd->total);
}

static void dgram_count_drop(struct dgram *g, enum dgram_drop why)
{
	struct dgram_guard *gd = g->guard;

	gd->drops[why]++;
	gd->total++;
	if (g->ctr != NULL)
		metrics_add(&g->ctr->dropped[why], 1);
	dgram_guard_log(gd, loop_now(g->loop));
}

static void dgram_arm(struct dgram *g)
{
	g->iov = (struct iovec){ .iov_base = g->data, .iov_len = DGRAM_MAX };
	g->msg = (struct msghdr){
		.msg_name = &g->peer,
		.msg_namelen = sizeof(g->peer),
		.msg_iov = &g->iov,
		.msg_iovlen = 1,
		.msg_control = g->ctl,
		.msg_controllen = sizeof(g->ctl),
	};
	g->armed = true;
	loop_recvmsg(g->loop, &g->op, g->fd, &g->msg);
}

static void dgram_read_pktinfo(struct dgram *g)
{
	struct cmsghdr *cm;

	g->pktinfo_level = 0;
	for (cm = CMSG_FIRSTHDR(&g->msg); cm; cm = CMSG_NXTHDR(&g->msg, cm)) {
		if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO) {
			memcpy(&g->pi4, CMSG_DATA(cm), sizeof(g->pi4));
			g->pktinfo_level = IPPROTO_IP;
		} else if (cm->cmsg_level == IPPROTO_IPV6 &&
			   cm->cmsg_type == IPV6_PKTINFO) {
			memcpy(&g->pi6, CMSG_DATA(cm), sizeof(g->pi6));
			g->pktinfo_level = IPPROTO_IPV6;
		}
	}
}

static void dgram_deliver(struct dgram *g, size_t len)
{
	const struct ringd_plugin *p = g->inst->p;
	struct daemon *d = g->inst->d;
	struct sockaddr *src = (struct sockaddr *)&g->peer;
	int why;

	if (g->msg.msg_flags & MSG_TRUNC) {
		dgram_count_drop(g, DGRAM_DROP_TRUNCATED);
		return;
	}
	why = dgram_check_source(src, d->own_ports, d->nown_ports);
	if (why < 0 && accept_access(g->inst->sc, src) >= 0)
		why = DGRAM_DROP_ACCESS;
	if (why < 0 && !ratelimit_take(g->guard->per_source, src,
				       loop_now(g->loop)))
		why = DGRAM_DROP_RATE;
	if (why >= 0) {
		dgram_count_drop(g, (enum dgram_drop)why);
		return;
	}
	dgram_read_pktinfo(g);
	g->pub.peer = src;
	g->pub.peerlen = g->msg.msg_namelen;
	g->pub.len = len;
	g->replied = false;
	if (g->ctr != NULL) {
		metrics_add(&g->ctr->in, 1);
		metrics_add(&g->ctr->bytes_in, len);
	}
	if (PLUGIN_HAS(p, on_datagram))
		p->on_datagram(&g->pub, g->data, len);
	/* A reply after the hook returned would go to whatever source the
	 * next datagram, admitted or not, leaves in g->peer. */
	g->replied = true;
}

static void dgram_retry_fired(struct loop_timer *t)
{
	struct dgram *g = t->data;

	dgram_arm(g);
}

/* An error that does not go away (a socket the kernel has shut, say)
 * would otherwise come back at once on every re-arm and spin the worker:
 * wait, longer each time, and say so once per streak. */
static void dgram_recv_failed(struct dgram *g, int err)
{
	g->recv_errors++;
	if (!g->retry_ns) {
		char e[LOG_VALUE_MAX];

		log_warnx("udp: recvmsg failed; retrying with backoff svc=%s "
			  "error=%s", g->inst->sc->name,
			  log_value(e, sizeof(e), strerror(err)));
		g->retry_ns = DGRAM_RETRY_MIN_NS;
	} else if (g->retry_ns < DGRAM_RETRY_MAX_NS) {
		g->retry_ns *= 2;
		if (g->retry_ns > DGRAM_RETRY_MAX_NS)
			g->retry_ns = DGRAM_RETRY_MAX_NS;
	}
	loop_timer_set(g->loop, &g->retry, loop_now(g->loop) + g->retry_ns);
}

static void dgram_recv_done(struct loop_op *op, int res, unsigned flags,
			    void *buf)
{
	struct dgram *g = op->data;

	g->armed = false;
	if (g->closing) {
		/* A datagram that raced the cancel is answered: on a reload the
		 * next generation, reading the same socket, never sees it. */
		if (res >= 0)
			dgram_deliver(g, (size_t)res);
		g->idle(g->idle_arg);
		return;
	}
	if (res >= 0) {
		g->retry_ns = 0;
		dgram_deliver(g, (size_t)res);
	} else if (res != -EAGAIN && res != -EINTR) {
		dgram_recv_failed(g, -res);
		return;
	}
	dgram_arm(g);
}

struct dgram *dgram_open(struct loop *l, struct dgram_guard *gd,
			 const struct ringd_instance *inst, void *wstate,
			 int fd, dgram_idle_fn idle, void *idle_arg)
{
	struct dgram *g = calloc(1, sizeof(*g));

	if (!g)
		return NULL;
	g->loop = l;
	g->guard = gd;
	g->inst = inst;
	g->idle = idle;
	g->idle_arg = idle_arg;
	g->fd = fd;
	g->pub.wstate = wstate;
	g->op = (struct loop_op){ .cb = dgram_recv_done, .data = g };
	g->retry = (struct loop_timer){ .cb = dgram_retry_fired, .data = g };
	dgram_arm(g);
	return g;
}

uint64_t dgram_recv_errors(const struct dgram *g)
{
	return g->recv_errors;
}

void dgram_close(struct dgram *g)
{
	g->closing = true;
	loop_timer_stop(g->loop, &g->retry);
	if (g->armed)
		loop_cancel(g->loop, &g->op);
}

bool dgram_idle(const struct dgram *g)
{
	return !g->armed;
}

void dgram_free(struct dgram *g)
{
	free(g);
}

/* ctl has room for either (DGRAM_CTL_SPACE, asserted at the top). */
static size_t dgram_pktinfo(struct dgram *g, char *ctl)
{
	struct cmsghdr *cm = (struct cmsghdr *)ctl;

	if (g->pktinfo_level == IPPROTO_IP) {
		struct in_pktinfo pi = { .ipi_spec_dst = g->pi4.ipi_addr };

		cm->cmsg_level = IPPROTO_IP;
		cm->cmsg_type = IP_PKTINFO;
		cm->cmsg_len = CMSG_LEN(sizeof(pi));
		memcpy(CMSG_DATA(cm), &pi, sizeof(pi));
		return CMSG_SPACE(sizeof(pi));
	}
	if (g->pktinfo_level == IPPROTO_IPV6) {
		cm->cmsg_level = IPPROTO_IPV6;
		cm->cmsg_type = IPV6_PKTINFO;
		cm->cmsg_len = CMSG_LEN(sizeof(g->pi6));
		memcpy(CMSG_DATA(cm), &g->pi6, sizeof(g->pi6));
		return CMSG_SPACE(sizeof(g->pi6));
	}
	return 0;
}

/* Replies go out at once with a plain sendmsg: UDP never waits for room,
 * a full socket buffer just drops the reply as the network would. */
int dgram_reply(struct ringd_dgram *d, const void *buf, size_t len)
{
	struct dgram *g = (struct dgram *)d;
	_Alignas(struct cmsghdr) char ctl[DGRAM_CTL_SPACE];
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr msg = {
		.msg_name = &g->peer,
		.msg_namelen = g->pub.peerlen,
		.msg_iov = &iov,
		.msg_iovlen = 1,
	};

	if (len > DGRAM_MAX_AMPLIFIED && len > g->pub.len)
		return -EMSGSIZE;
	/* The source was charged once, on arrival: a second reply would
	 * let a plugin multiply what one forged datagram brings back. */
	if (g->replied) {
		dgram_count_drop(g, DGRAM_DROP_REPEAT);
		return -EALREADY;
	}
	g->replied = true;
	/* The per-source limit was charged on arrival; the global cap is on
	 * replies, so a flood from many forged sources still stays small. */
	if (!rate_take(&g->guard->global_p, &g->guard->global,
		       loop_now(g->loop))) {
		dgram_count_drop(g, DGRAM_DROP_GLOBAL);
		return -EAGAIN;
	}
	memset(&ctl, 0, sizeof(ctl));
	msg.msg_controllen = dgram_pktinfo(g, ctl);
	if (msg.msg_controllen)
		msg.msg_control = ctl;
	if (sendmsg(g->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		return -errno;
	if (g->ctr != NULL) {
		metrics_add(&g->ctr->out, 1);
		metrics_add(&g->ctr->bytes_out, len);
	}
	return 0;
}

void dgram_set_metrics(struct dgram *g, struct metrics_dgram *m)
{
	g->ctr = m;
}
