/* Opens the listening sockets of every service before the workers start:
 * tcp and udp on IPv4, IPv6 or both ("*"), and unix stream sockets whose
 * stale files are replaced only when nobody answers on them. */
#include <errno.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "activate.h"
#include "daemon.h"
#include "listen.h"
#include "log.h"
#include "plugin.h"

/* One listener being opened, for its log lines: the service's name,
 * and the step that failed ("bind", or "setsockopt SO_REUSEPORT"). */
struct listen_try {
	const char *svc;
	const char *step;
	bool quiet; /* a probe socket, or warned once already */
};

#define LISTEN_OPT(level, opt) level, opt, "setsockopt " #opt

/* An option the listener cannot work as configured without: its failure
 * fails the start or the reload like a failed bind, naming the option. */
static int listen_must(int fd, int level, int opt, const char *name, int val,
		       struct listen_try *t)
{
	if (setsockopt(fd, level, opt, &val, sizeof(val)) == 0)
		return 0;
	t->step = name;
	return -errno;
}

/* A tuning the listener serves correctly without: a warning, once per
 * listener rather than once per worker's socket. */
static void listen_tune(int fd, int level, int opt, const char *name, int val,
			struct listen_try *t, const struct listen_addr *a)
{
	char text[160], v[LOG_VALUE_MAX];
	int e;

	if (setsockopt(fd, level, opt, &val, sizeof(val)) == 0 || t->quiet)
		return;
	e = errno;
	listen_addr_format(a, text, sizeof(text));
	log_value(v, sizeof(v), text);
	errno = e;
	log_warn("listen: %s failed svc=%s addr=%s", name, t->svc, v);
	t->quiet = true;
}

/* A unix socket file left by a process that died is replaced; one that
 * still accepts connections belongs to someone alive and is refused. */
static int listen_unix_clear(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, r;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	strcpy(sun.sun_path, path);
	r = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	close(fd);
	if (r == 0)
		return -EADDRINUSE;
	if (errno != ECONNREFUSED)
		return -errno;
	return unlink(path) < 0 ? -errno : 0;
}

static int listen_unix(struct listener *l, int mode, int *out)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	mode_t old;
	int fd, r;

	r = listen_unix_clear(l->addr.path);
	if (r < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	strcpy(sun.sun_path, l->addr.path);
	/* Creating the file with its final mode leaves no window in which a
	 * looser mode is visible; threads have not started, so the
	 * process-wide umask is ours to borrow. */
	old = umask((mode_t)(~mode & 0777));
	r = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (r < 0 || listen(fd, SOMAXCONN) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	l->unlink_path = true;
	*out = fd;
	return 0;
}

/* The options of a new inet socket, before its bind. */
static int listen_inet_options(int fd, const struct listen_addr *a,
			       bool reuseport, struct listen_try *t)
{
	int type = a->kind == LISTEN_UDP ? SOCK_DGRAM : SOCK_STREAM;
	int fam = a->ss.ss_family, r = 0;

	/* Tunings: without SO_REUSEADDR only a bind beside connections in
	 * TIME_WAIT fails, and says so itself; without TCP_NODELAY, which
	 * accepted sockets inherit so that no connection pays a setsockopt
	 * of its own, replies may wait for Nagle but are still right. */
	if (type == SOCK_STREAM) {
		listen_tune(fd, LISTEN_OPT(SOL_SOCKET, SO_REUSEADDR), 1, t, a);
		listen_tune(fd, LISTEN_OPT(IPPROTO_TCP, TCP_NODELAY), 1, t, a);
	}
	/* Errors: without SO_REUSEPORT the workers' sockets cannot share
	 * the port; IPV6_V6ONLY decides whether the socket serves IPv4 too,
	 * which the address says ("*" both, "[::]" IPv6 only); a wildcard
	 * UDP socket must answer from the address the request went to,
	 * which only the packet info tells. */
	if (reuseport)
		r = listen_must(fd, LISTEN_OPT(SOL_SOCKET, SO_REUSEPORT), 1, t);
	if (r == 0 && fam == AF_INET6)
		r = listen_must(fd, LISTEN_OPT(IPPROTO_IPV6, IPV6_V6ONLY),
				!a->any, t);
	if (r == 0 && type == SOCK_DGRAM && a->any)
		r = listen_must(fd, LISTEN_OPT(IPPROTO_IP, IP_PKTINFO), 1, t);
	if (r == 0 && type == SOCK_DGRAM && a->any && fam == AF_INET6)
		r = listen_must(fd, LISTEN_OPT(IPPROTO_IPV6, IPV6_RECVPKTINFO),
				1, t);
	return r;
}

static int listen_inet_one(struct listen_addr *a, bool reuseport, int *out,
			   struct listen_try *t)
{
	int type = a->kind == LISTEN_UDP ? SOCK_DGRAM : SOCK_STREAM;
	socklen_t len = sizeof(a->ss);
	int fd, r;

	fd = socket(a->ss.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	r = listen_inet_options(fd, a, reuseport, t);
	if (r == 0 &&
	    (bind(fd, (struct sockaddr *)&a->ss, a->sslen) < 0 ||
	     (type == SOCK_STREAM && listen(fd, SOMAXCONN) < 0) ||
	     getsockname(fd, (struct sockaddr *)&a->ss, &len) < 0))
		r = -errno;
	if (r < 0) {
		close(fd);
		return r;
	}
	*out = fd;
	return 0;
}

/* "*" means both families; a host without IPv6 gets IPv4 only. */
static int listen_inet(struct listener *l, bool reuseport, int *out,
		       struct listen_try *t)
{
	int r = listen_inet_one(&l->addr, reuseport, out, t);

	if (r == -EAFNOSUPPORT && l->addr.any &&
	    l->addr.ss.ss_family == AF_INET6) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&l->addr.ss;
		in_port_t port = ((struct sockaddr_in6 *)&l->addr.ss)->sin6_port;

		memset(&l->addr.ss, 0, sizeof(l->addr.ss));
		sin->sin_family = AF_INET;
		sin->sin_port = port;
		sin->sin_addr.s_addr = htonl(INADDR_ANY);
		l->addr.sslen = sizeof(*sin);
		r = listen_inet_one(&l->addr, reuseport, out, t);
	}
	return r;
}

/* SO_REUSEPORT lets any socket of the same user that also sets it share
 * the port, so a second ringd would silently split the traffic instead of
 * failing. A plain socket bound first fails with EADDRINUSE against any
 * holder; it also fixes the port when the address asked for port 0. */
static int listen_probe_free(struct listener *l, struct listen_try *t)
{
	/* Its options are the real sockets' to warn about. */
	struct listen_try probe = { .svc = t->svc, .step = t->step,
				    .quiet = true };
	int fd, r = listen_inet(l, false, &fd, &probe);

	t->step = probe.step;
	if (r == 0)
		close(fd);
	return r;
}

/* An inherited socket stands in for the bind: l takes over the one that
 * matches, if any. */
static int listen_claim(struct daemon *d, struct listener *l)
{
	const char *name = d->svc[l->svc].sc->name;
	struct activate_sock *s = activate_claim(d->activation, name, &l->addr);

	if (!s)
		return 0;
	l->fds = malloc(sizeof(*l->fds));
	if (!l->fds)
		return -ENOMEM;
	l->nfds = 1;
	l->inherited = true;
	l->fds[0] = s->fd;
	s->fd = -1;
	if (l->addr.kind != LISTEN_UNIX) {
		l->addr.ss = s->ss;
		l->addr.sslen = s->sslen;
	}
	return 0;
}

/* An SO_REUSEPORT group cannot be inherited one socket per worker, so
 * with reuseport the workers share the one socket, as with reuseport =
 * no. */
static int listen_adopt(struct daemon *d, struct listener *l)
{
	const char *name = d->svc[l->svc].sc->name;
	char text[160], v[LOG_VALUE_MAX];
	int r = activate_prepare(l->fds[0], &l->addr);

	if (r < 0)
		return r;
	listen_addr_format(&l->addr, text, sizeof(text));
	if (d->conf->reuseport && l->addr.kind == LISTEN_TCP &&
	    d->nworkers > 1)
		log_notice("listen: inherited, one socket shared by all "
			   "workers (reuseport applies to sockets ringd binds) "
			   "svc=%s addr=%s workers=%zu", name,
			   log_value(v, sizeof(v), text), d->nworkers);
	else
		log_info("listen: inherited svc=%s addr=%s fd=%d", name,
			 log_value(v, sizeof(v), text), l->fds[0]);
	return 0;
}

/* Whether a listener of d other than l has taken o's sockets, or will
 * by its exact address (which goes first: see listen_match()). */
static bool listen_taken(const struct daemon *d, const struct listener *l,
			 const struct listener *o, bool or_exact)
{
	for (size_t i = 0; i < d->nlisteners; i++) {
		const struct listener *n = &d->listeners[i];

		if (n == l)
			continue;
		if (n->from == o ||
		    (or_exact && listen_addr_same(&o->addr, &n->asked)))
			return true;
	}
	return false;
}

/* The running generation's listener bound to the address l asks for
 * (a port 0 that became 7007 is kept when the file now says 7007), or
 * that asked the same of the same service: port 0 is "any port", which
 * two services may both ask for. One old listener goes to one new one
 * only, and an exact address match beats "the same service asked port 0
 * again": two listeners sharing one socket would both close it. */
static struct listener *listen_match(struct daemon *d, struct daemon *old,
				     const struct listener *l)
{
	const char *name = d->svc[l->svc].sc->name;

	for (size_t i = 0; old && i < old->nlisteners; i++) {
		struct listener *o = &old->listeners[i];

		if (listen_addr_same(&o->addr, &l->asked) &&
		    !listen_taken(d, l, o, false))
			return o;
	}
	for (size_t i = 0; old && i < old->nlisteners; i++) {
		struct listener *o = &old->listeners[i];

		if (listen_addr_same(&o->asked, &l->asked) &&
		    strcmp(old->svc[o->svc].sc->name, name) == 0 &&
		    !listen_taken(d, l, o, true))
			return o;
	}
	return NULL;
}

/* Takes over the sockets of the matching old listener. A shared socket
 * has no SO_REUSEPORT, so no per-worker socket can join it: it stays
 * shared until a restart. Per-worker sockets are kept up to the new
 * worker count; the next ones join the same reuseport group. An
 * inherited socket stays inherited: one, shared, never shut down. */
static void listen_borrow(struct daemon *d, struct daemon *old,
			  struct listener *l, bool *per_worker)
{
	struct listener *from = listen_match(d, old, l);
	char text[160];

	if (!from)
		return;
	if (*per_worker && !from->inherited && !old->conf->reuseport) {
		listen_addr_format(&from->addr, text, sizeof(text));
		log_warnx("listen: reuseport = yes needs a restart for a kept "
			  "shared socket svc=%s addr=%s",
			  d->svc[l->svc].sc->name, text);
		*per_worker = false;
	}
	if (from->inherited)
		*per_worker = false;
	l->inherited = from->inherited;
	l->from = from;
	l->addr = from->addr;
	l->nfds = *per_worker ? d->nworkers : 1;
	l->nlent = l->nfds < from->nfds ? l->nfds : from->nfds;
}

static int listen_open(struct daemon *d, struct daemon *old, struct listener *l,
		       struct listen_try *t)
{
	const struct service_conf *sc = d->svc[l->svc].sc;
	bool per_worker = d->conf->reuseport && l->addr.kind == LISTEN_TCP;
	size_t i;
	int r;

	if (l->inherited)
		return listen_adopt(d, l);
	l->nfds = per_worker ? d->nworkers : 1;
	listen_borrow(d, old, l, &per_worker);
	l->fds = calloc(l->nfds, sizeof(*l->fds));
	if (!l->fds)
		return -ENOMEM;
	for (i = 0; i < l->nfds; i++)
		l->fds[i] = i < l->nlent ? l->from->fds[i] : -1;
	/* Our own kept sockets hold the port: no probe then. */
	if (per_worker && !l->nlent) {
		r = listen_probe_free(l, t);
		if (r < 0)
			return r;
	}
	for (i = l->nlent; i < l->nfds; i++) {
		if (l->addr.kind == LISTEN_UNIX)
			r = listen_unix(l, (int)sc->socket_mode, &l->fds[i]);
		else
			r = listen_inet(l, per_worker, &l->fds[i], t);
		if (r < 0)
			return r;
	}
	return 0;
}

/* TCP_DEFER_ACCEPT for a TCP listener whose service's clients speak
 * first (include/ringd/plugin.h, RINGD_PEER_FIRST) and does not turn it
 * off; cleared otherwise, since a socket taken over from a generation
 * or from systemd may carry it. One second is one SYN-ACK retransmit:
 * the kernel hands over a connection that sent nothing after it. Only
 * fds from..nfds: the others are still another generation's.
 * A tuning, so a failure is a warning: every connection is still
 * accepted (one that stays deferred by mistake a second or so late),
 * and at listen_hand_over() the reload is committed and cannot fail. */
static void listen_defer(const struct daemon *d, const struct listener *l,
			 size_t from)
{
	const struct service_conf *sc = d->svc[l->svc].sc;
	const struct ringd_plugin *p = sc->plugin->p;
	bool peer_first = RINGD_KNOWS(p, stream_flags) &&
			  (p->stream_flags & RINGD_PEER_FIRST);
	int secs = sc->defer_accept && peer_first ? 1 : 0;
	struct listen_try t = { .svc = sc->name };

	if (l->addr.kind != LISTEN_TCP)
		return;
	for (size_t i = from; i < l->nfds; i++)
		listen_tune(l->fds[i], LISTEN_OPT(IPPROTO_TCP, TCP_DEFER_ACCEPT),
			    secs, &t, &l->addr);
}

static int listen_cmp_port(const void *a, const void *b)
{
	return (int)*(const uint16_t *)a - (int)*(const uint16_t *)b;
}

static uint16_t listen_port(const struct listen_addr *a)
{
	if (a->kind == LISTEN_UNIX)
		return 0;
	if (a->ss.ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
}

static int listen_collect_ports(struct daemon *d)
{
	size_t i;

	d->own_ports = calloc(d->nlisteners + 1, sizeof(*d->own_ports));
	if (!d->own_ports)
		return -ENOMEM;
	for (i = 0; i < d->nlisteners; i++) {
		uint16_t port = listen_port(&d->listeners[i].addr);

		/* Only a UDP service can answer a reply with a reply: a TCP
		 * port is any UDP client's to have as its source. */
		if (port && d->listeners[i].addr.kind == LISTEN_UDP)
			d->own_ports[d->nown_ports++] = port;
	}
	qsort(d->own_ports, d->nown_ports, sizeof(*d->own_ports),
	      listen_cmp_port);
	return 0;
}

static size_t listen_count(const struct ringd_conf *c)
{
	size_t i, n = 0;

	for (i = 0; i < c->nsvc; i++)
		n += c->svc[i].nlisten;
	return n;
}

int listen_open_all(struct daemon *d)
{
	return listen_open_next(d, NULL, NULL, 0);
}

/* Every listener of the configuration, each with the inherited socket
 * that stands in for it, if any. */
static int listen_claim_all(struct daemon *d)
{
	const struct ringd_conf *c = d->conf;
	size_t i, j, k = 0;

	d->listeners = calloc(listen_count(c) + 1, sizeof(*d->listeners));
	if (!d->listeners)
		return -ENOMEM;
	for (i = 0; i < c->nsvc; i++) {
		for (j = 0; j < c->svc[i].nlisten; j++) {
			struct listener *l = &d->listeners[k++];

			l->svc = i;
			l->addr = l->asked = c->svc[i].listen[j];
			d->nlisteners = k;
			if (listen_claim(d, l) < 0)
				return -ENOMEM;
		}
	}
	return 0;
}

int listen_open_next(struct daemon *d, struct daemon *old, char *err,
		     size_t errlen)
{
	const struct ringd_conf *c = d->conf;
	char text[160], v[LOG_VALUE_MAX], e[LOG_VALUE_MAX];
	size_t k;
	int r;

	if (listen_claim_all(d) < 0) {
		log_err("ringd: out of memory");
		if (err)
			snprintf(err, errlen, "out of memory");
		listen_close_all(d);
		return -ENOMEM;
	}
	/* Before any bind, which a socket left over may be why one fails. */
	activate_report_unclaimed(d->activation);
	for (k = 0; k < d->nlisteners; k++) {
		struct listener *l = &d->listeners[k];
		struct listen_try t = { .svc = c->svc[l->svc].name,
					.step = "bind" };

		r = listen_open(d, old, l, &t);
		if (r == 0)
			listen_defer(d, l, l->nlent);
		if (r < 0) {
			listen_addr_format(&l->addr, text, sizeof(text));
			log_err("listen: %s failed svc=%s addr=%s error=%s",
				l->inherited ? "inherited socket" : t.step,
				t.svc, log_value(v, sizeof(v), text),
				log_value(e, sizeof(e), strerror(-r)));
			if (err)
				snprintf(err, errlen, "%s: %s %s: %s", t.svc,
					 l->inherited ? "inherited" : t.step,
					 text, strerror(-r));
			listen_close_all(d);
			return r;
		}
	}
	return listen_collect_ports(d);
}

void listen_stop_all(struct daemon *d)
{
	size_t i;

	for (i = 0; i < d->nlisteners; i++) {
		struct listener *l = &d->listeners[i];

		if (l->unlink_path) {
			unlink(l->addr.path);
			l->unlink_path = false;
		}
	}
}

void listen_close_all(struct daemon *d)
{
	size_t i, j;

	for (i = 0; i < d->nlisteners; i++) {
		struct listener *l = &d->listeners[i];

		for (j = l->nlent; l->fds && j < l->nfds; j++)
			if (l->fds[j] >= 0)
				close(l->fds[j]);
		if (l->unlink_path)
			unlink(l->addr.path);
		free(l->fds);
	}
	free(d->listeners);
	free(d->own_ports);
	d->listeners = NULL;
	d->own_ports = NULL;
	d->nlisteners = d->nown_ports = 0;
}

int listen_refuse_new(int fd)
{
	/* A socket filter on a TCP socket sees the segment from its TCP
	 * header on; byte 13 holds the flags. Drop a bare SYN, keep the
	 * rest (the last ACK of a handshake already under way included). */
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 13),
		BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0x12), /* SYN | ACK */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x02, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, 0),
		BPF_STMT(BPF_RET | BPF_K, 0xffffffffu),
	};
	struct sock_fprog prog = { .len = sizeof(code) / sizeof(code[0]),
				   .filter = code };

	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)))
		return -errno;
	return 0;
}

int listen_fd_for(const struct listener *l, size_t worker)
{
	return l->fds[l->nfds > 1 ? worker % l->nfds : 0];
}

bool listen_fd_lent(const struct listener *l, size_t worker)
{
	return (l->nfds > 1 ? worker % l->nfds : 0) < l->nlent;
}

void listen_hand_over(struct daemon *d)
{
	for (size_t i = 0; i < d->nlisteners; i++) {
		struct listener *l = &d->listeners[i];

		if (!l->from)
			continue;
		listen_defer(d, l, 0);
		l->from->nlent = l->nlent;
		l->unlink_path = l->from->unlink_path;
		l->from->unlink_path = false;
		l->nlent = 0;
		l->from = NULL;
	}
}

void listen_describe(const struct daemon *d, char *buf, size_t len)
{
	char text[160];
	size_t i, off = 0;
	int n;

	buf[0] = '\0';
	for (i = 0; i < d->nlisteners && off < len; i++) {
		const struct listener *l = &d->listeners[i];

		listen_addr_format(&l->addr, text, sizeof(text));
		n = snprintf(buf + off, len - off, "%s%s:%s", i ? "," : "",
			     d->svc[l->svc].sc->name, text);
		if (n < 0)
			break;
		off += (size_t)n;
	}
}
