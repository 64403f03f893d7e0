/* Socket activation: reading the sd_listen_fds environment, examining the
 * inherited descriptors, and matching them to listen addresses. The
 * protocol is small and documented as stable, so it is written here
 * instead of pulling in libsystemd for it. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "activate.h"
#include "log.h"

/* Digits only, no sign, no spaces, at most max. */
static int activate_number(const char *s, unsigned long max,
			   unsigned long *out)
{
	unsigned long v = 0;

	if (!*s)
		return -1;
	for (; *s; s++) {
		if (!isdigit((unsigned char)*s))
			return -1;
		v = v * 10 + (unsigned long)(*s - '0');
		if (v > max)
			return -1;
	}
	*out = v;
	return 0;
}

/* One name per fd, separated by ':'; an empty string gives every fd an
 * empty name (as a launcher that names nothing may send). */
static int activate_split_names(const char *names, struct activate_set *out,
				char *err, size_t errlen)
{
	const char *p = names ? names : "";
	size_t i, count = 1, len;

	for (const char *c = p; *c; c++)
		count += *c == ':';
	if (*p && count != out->n) {
		snprintf(err, errlen, "LISTEN_FDNAMES has %zu names for "
			 "LISTEN_FDS=%zu", count, out->n);
		return -1;
	}
	for (i = 0; i < out->n; i++) {
		len = strcspn(p, ":");
		if (len > ACTIVATE_MAX_NAME) {
			snprintf(err, errlen, "LISTEN_FDNAMES: name %zu is "
				 "longer than %d characters", i + 1,
				 ACTIVATE_MAX_NAME);
			return -1;
		}
		out->socks[i].name = strndup(p, len);
		if (!out->socks[i].name) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		p += len + (p[len] == ':');
	}
	return 0;
}

int activate_parse(const char *pid, const char *fds, const char *names,
		   pid_t self, int first, struct activate_set *out, char *err,
		   size_t errlen)
{
	unsigned long p, n;
	size_t i;

	memset(out, 0, sizeof(*out));
	/* Without LISTEN_PID nobody can tell whom the fds were for. */
	if (!pid || !fds)
		return ACTIVATE_NONE;
	if (activate_number(pid, INT_MAX, &p) < 0 || p == 0) {
		snprintf(err, errlen, "LISTEN_PID=%s is not a process id", pid);
		return -1;
	}
	if ((pid_t)p != self)
		return ACTIVATE_NOT_OURS;
	if (activate_number(fds, ACTIVATE_MAX_FDS, &n) < 0) {
		snprintf(err, errlen, "LISTEN_FDS=%s is not a count from 0 "
			 "to %d", fds, ACTIVATE_MAX_FDS);
		return -1;
	}
	if (n == 0)
		return ACTIVATE_NONE;
	out->socks = calloc(n, sizeof(*out->socks));
	if (!out->socks) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	out->n = n;
	for (i = 0; i < n; i++)
		out->socks[i].fd = first + (int)i;
	if (activate_split_names(names, out, err, errlen) < 0) {
		for (i = 0; i < n; i++)
			out->socks[i].fd = -1;
		activate_free(out);
		return -1;
	}
	return ACTIVATE_OURS;
}

static int activate_sockopt(int fd, int level, int opt, int *val)
{
	socklen_t len = sizeof(*val);

	return getsockopt(fd, level, opt, val, &len) < 0 ? -errno : 0;
}

void activate_examine(struct activate_sock *s)
{
	int v = 0;

	s->err = activate_sockopt(s->fd, SOL_SOCKET, SO_TYPE, &s->type);
	if (s->err)
		return;
	s->sslen = sizeof(s->ss);
	if (getsockname(s->fd, (struct sockaddr *)&s->ss, &s->sslen) < 0) {
		s->err = -errno;
		return;
	}
	s->family = s->ss.ss_family;
	if (activate_sockopt(s->fd, SOL_SOCKET, SO_PROTOCOL, &s->protocol))
		s->protocol = 0;
	if (activate_sockopt(s->fd, SOL_SOCKET, SO_ACCEPTCONN, &v) == 0)
		s->listening = v != 0;
	v = 0;
	if (s->family == AF_INET6 &&
	    activate_sockopt(s->fd, IPPROTO_IPV6, IPV6_V6ONLY, &v) == 0)
		s->v6only = v != 0;
}

int activate_take_at(struct activate_set *out, int first)
{
	const char *pid = getenv("LISTEN_PID");
	char err[160];
	size_t i;
	int r;

	r = activate_parse(pid, getenv("LISTEN_FDS"), getenv("LISTEN_FDNAMES"),
			   getpid(), first, out, err, sizeof(err));
	if (r == ACTIVATE_NOT_OURS)
		log_notice("activate: LISTEN_FDS ignored: LISTEN_PID is not "
			   "this process listen_pid=%s pid=%d", pid,
			   (int)getpid());
	/* Whatever they said, a child we start must not take them for its
	 * own. The strings parse() read stay valid: unsetenv() only takes
	 * them out of environ. */
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	if (r < 0) {
		log_err("activate: %s", err);
		return -1;
	}
	for (i = 0; i < out->n; i++) {
		struct activate_sock *s = &out->socks[i];

		if (fcntl(s->fd, F_SETFD, FD_CLOEXEC) < 0) {
			char e[LOG_VALUE_MAX];

			log_err("activate: an inherited fd is unusable "
				"listen_fds=%zu fd=%d error=%s", out->n, s->fd,
				log_value(e, sizeof(e), strerror(errno)));
			for (; i < out->n; i++)
				out->socks[i].fd = -1;
			activate_free(out);
			return -1;
		}
		activate_examine(s);
	}
	if (out->n)
		log_info("activate: inherited sockets count=%zu", out->n);
	return 0;
}

int activate_take(struct activate_set *out)
{
	return activate_take_at(out, ACTIVATE_FDS_START);
}

bool activate_name_is_anonymous(const char *name)
{
	size_t len = strlen(name);

	return len == 0 || strcmp(name, "unknown") == 0 ||
	       strcmp(name, "ringd") == 0 ||
	       (len > 7 && strcmp(name + len - 7, ".socket") == 0);
}

static in_port_t activate_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ((const struct sockaddr_in *)ss)->sin_port;
	return ((const struct sockaddr_in6 *)ss)->sin6_port;
}

static bool activate_inet_matches(const struct activate_sock *s,
				  const struct listen_addr *a)
{
	const struct sockaddr_in *s4 = (const void *)&s->ss;
	const struct sockaddr_in6 *s6 = (const void *)&s->ss;
	const struct sockaddr_in *a4 = (const void *)&a->ss;
	const struct sockaddr_in6 *a6 = (const void *)&a->ss;
	bool v4any = s->family == AF_INET && s4->sin_addr.s_addr == INADDR_ANY;
	bool v6any = s->family == AF_INET6 &&
		     IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr);

	if ((s->family != AF_INET && s->family != AF_INET6) ||
	    activate_port(&s->ss) == 0 ||
	    activate_port(&s->ss) != activate_port(&a->ss))
		return false;
	/* "*" is what our own bind makes of it: [::] taking IPv4 too, or
	 * 0.0.0.0 on a host without IPv6. */
	if (a->any)
		return v4any || (v6any && !s->v6only);
	if (a->ss.ss_family == AF_INET)
		return s->family == AF_INET &&
		       s4->sin_addr.s_addr == a4->sin_addr.s_addr;
	if (s->family != AF_INET6 ||
	    memcmp(&s6->sin6_addr, &a6->sin6_addr, sizeof(s6->sin6_addr)))
		return false;
	/* A dual-stack [::] is "*", not the IPv6-only "[::]". */
	return !v6any || s->v6only;
}

/* sun_path as bound; getsockname() need not NUL-terminate it. */
static bool activate_path_matches(const struct activate_sock *s,
				  const char *path)
{
	const struct sockaddr_un *sun = (const void *)&s->ss;
	size_t off = offsetof(struct sockaddr_un, sun_path);
	size_t max = s->sslen > off ? s->sslen - off : 0;
	size_t len = strnlen(sun->sun_path, max);

	return len > 0 && len == strlen(path) &&
	       memcmp(sun->sun_path, path, len) == 0;
}

bool activate_matches(const struct activate_sock *s, const char *svc,
		      const struct listen_addr *a)
{
	if (s->err || s->fd < 0 || s->claimed)
		return false;
	if (!activate_name_is_anonymous(s->name) && strcmp(s->name, svc) != 0)
		return false;
	switch (a->kind) {
	case LISTEN_UNIX:
		return s->family == AF_UNIX && s->type == SOCK_STREAM &&
		       s->listening && activate_path_matches(s, a->path);
	case LISTEN_TCP:
		if (s->type != SOCK_STREAM || s->protocol != IPPROTO_TCP ||
		    !s->listening)
			return false;
		break;
	case LISTEN_UDP:
		if (s->type != SOCK_DGRAM || s->protocol != IPPROTO_UDP)
			return false;
		break;
	}
	return activate_inet_matches(s, a);
}

struct activate_sock *activate_claim(struct activate_set *set, const char *svc,
				     const struct listen_addr *a)
{
	size_t i;

	for (i = 0; set && i < set->n; i++) {
		if (activate_matches(&set->socks[i], svc, a)) {
			set->socks[i].claimed = true;
			return &set->socks[i];
		}
	}
	return NULL;
}

static int activate_set_int(int fd, int level, int opt, int val)
{
	return setsockopt(fd, level, opt, &val, sizeof(val)) < 0 ? -errno : 0;
}

int activate_prepare(int fd, const struct listen_addr *a)
{
	int fl = fcntl(fd, F_GETFL);
	int r = 0;

	/* The open file is systemd's too; it polls and does not mind. */
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	if (a->kind == LISTEN_TCP)
		r = activate_set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1);
	if (a->kind == LISTEN_UDP && a->any) {
		if (a->ss.ss_family == AF_INET6)
			r = activate_set_int(fd, IPPROTO_IPV6,
					     IPV6_RECVPKTINFO, 1);
		if (r == 0)
			r = activate_set_int(fd, IPPROTO_IP, IP_PKTINFO, 1);
	}
	return r;
}

void activate_describe(const struct activate_sock *s, char *buf, size_t len)
{
	struct listen_addr a = { .ss = s->ss, .sslen = s->sslen };
	const struct sockaddr_un *sun = (const void *)&s->ss;
	size_t off = offsetof(struct sockaddr_un, sun_path);

	if (s->err) {
		snprintf(buf, len, "(%s)", strerror(-s->err));
		return;
	}
	if (s->family == AF_UNIX && s->sslen > off && sun->sun_path[0]) {
		snprintf(buf, len, "%s:%.*s",
			 s->type == SOCK_STREAM ? "unix" : "unix-dgram",
			 (int)strnlen(sun->sun_path, s->sslen - off),
			 sun->sun_path);
		return;
	}
	if ((s->family != AF_INET && s->family != AF_INET6) ||
	    (s->type != SOCK_STREAM && s->type != SOCK_DGRAM)) {
		snprintf(buf, len, "(family %d type %d)", s->family, s->type);
		return;
	}
	a.kind = s->type == SOCK_STREAM ? LISTEN_TCP : LISTEN_UDP;
	a.any = s->family == AF_INET6 && !s->v6only &&
		IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)&s->ss)
						   ->sin6_addr);
	listen_addr_format(&a, buf, len);
}

/* Why s could not serve anything, beyond its address matching nothing. */
static const char *activate_why_unusable(const struct activate_sock *s)
{
	if (s->err)
		return ": not a socket we can use";
	if (s->type == SOCK_STREAM && !s->listening)
		return ": a stream socket that is not listening";
	return "";
}

size_t activate_report_unclaimed(struct activate_set *set)
{
	char text[160];
	size_t i, n = 0;

	for (i = 0; set && i < set->n; i++) {
		struct activate_sock *s = &set->socks[i];

		if (s->claimed || s->fd < 0)
			continue;
		activate_describe(s, text, sizeof(text));
		log_err("activate: inherited socket matches no listen = "
			"entry%s; our copy is closed fd=%d name=%s addr=%s",
			activate_why_unusable(s), s->fd, s->name, text);
		close(s->fd);
		s->fd = -1;
		n++;
	}
	return n;
}

void activate_free(struct activate_set *set)
{
	size_t i;

	if (!set)
		return;
	for (i = 0; i < set->n; i++) {
		if (set->socks[i].fd >= 0)
			close(set->socks[i].fd);
		free(set->socks[i].name);
	}
	free(set->socks);
	set->socks = NULL;
	set->n = 0;
}
