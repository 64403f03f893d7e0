/* The stop sequence of a TCP listener: once listen_refuse_new() runs, a
 * new client's SYN goes unanswered while a connection the kernel already
 * completed is still there to accept; after the shutdown that follows,
 * clients are refused. Over loopback, IPv4 and IPv6. Then the socket
 * options listen_open_all() sets: the kernel takes every one of them on
 * a fresh socket of its kind, so their failures come from a setsockopt
 * of this file's that refuses one chosen option. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/daemon.h"
#include "daemon/listen.h"
#include "daemon/log.h"
#include "daemon/plugin.h"

/* The option setsockopt() refuses with EPERM; level -1: none. */
static int refuse_level = -1, refuse_opt = -1;

/* Stands in for libc's (the executable's definition wins over it for
 * the core library's calls too). */
int setsockopt(int fd, int level, int opt, const void *val, socklen_t len)
{
	if (level == refuse_level && opt == refuse_opt) {
		errno = EPERM;
		return -1;
	}
	return (int)syscall(SYS_setsockopt, fd, level, opt, val, len);
}

struct pair {
	int lfd;
	struct sockaddr_storage addr;
	socklen_t alen;
};

static int setup_family(void **state, int family)
{
	static struct pair p;
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6,
				     .sin6_addr = IN6ADDR_LOOPBACK_INIT };

	memset(&p, 0, sizeof(p));
	p.lfd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (p.lfd < 0)
		return -1;
	if (family == AF_INET)
		memcpy(&p.addr, &sin, p.alen = sizeof(sin));
	else
		memcpy(&p.addr, &sin6, p.alen = sizeof(sin6));
	if (bind(p.lfd, (struct sockaddr *)&p.addr, p.alen) ||
	    listen(p.lfd, 16) ||
	    getsockname(p.lfd, (struct sockaddr *)&p.addr, &p.alen)) {
		close(p.lfd);
		/* No IPv6 loopback here: skip rather than fail. */
		return family == AF_INET6 ? (skip(), -1) : -1;
	}
	*state = &p;
	return 0;
}

static int setup_v4(void **state) { return setup_family(state, AF_INET); }
static int setup_v6(void **state) { return setup_family(state, AF_INET6); }

static int teardown(void **state)
{
	struct pair *p = *state;

	close(p->lfd);
	return 0;
}

/* Starts a non-blocking connect; returns the socket. */
static int start_connect(const struct pair *p)
{
	int fd = socket(p->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
	int rc;

	assert_true(fd >= 0);
	rc = connect(fd, (const struct sockaddr *)&p->addr, p->alen);
	assert_true(rc == 0 || errno == EINPROGRESS);
	return fd;
}

/* Waits up to ms for the connect to finish; returns 0, the socket error,
 * or ETIMEDOUT when it is still in progress. */
static int finish_connect(int fd, int ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	int err = 0;
	socklen_t len = sizeof(err);

	if (poll(&pfd, 1, ms) == 0)
		return ETIMEDOUT;
	assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len), 0);
	return err;
}

static void test_listen_completed_connection_survives_filter(void **state)
{
	struct pair *p = *state;
	int c = start_connect(p), a;

	assert_int_equal(finish_connect(c, 2000), 0);
	assert_int_equal(listen_refuse_new(p->lfd), 0);
	a = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(a >= 0);
	/* The connection is whole: data crosses it both ways. */
	assert_int_equal(send(c, "ping", 4, 0), 4);
	{
		char buf[4];

		assert_int_equal(recv(a, buf, 4, MSG_WAITALL), 4);
		assert_memory_equal(buf, "ping", 4);
	}
	close(a);
	close(c);
}

/* Waits up to ms for the listener to have a connection to accept. */
static int accept_within(int lfd, int ms)
{
	struct pollfd pfd = { .fd = lfd, .events = POLLIN };

	if (poll(&pfd, 1, ms) != 1)
		return -1;
	return accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

static void test_listen_handshake_under_way_completes(void **state)
{
	struct pair *p = *state;
	int one = 1, c, a;
	char buf[1];

	/* TCP_DEFER_ACCEPT keeps the server side of a connection out of
	 * the accept queue until its first data segment: the client sees
	 * itself connected while the listener still waits for the segment
	 * that completes the handshake, as it does for a round trip on a
	 * real network. That segment must pass the filter. */
	assert_int_equal(setsockopt(p->lfd, IPPROTO_TCP, TCP_DEFER_ACCEPT,
				    &one, sizeof(one)), 0);
	c = start_connect(p);
	assert_int_equal(finish_connect(c, 2000), 0);
	assert_int_equal(listen_refuse_new(p->lfd), 0);
	assert_int_equal(accept4(p->lfd, NULL, NULL, SOCK_NONBLOCK), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(send(c, "x", 1, 0), 1);
	a = accept_within(p->lfd, 2000);
	assert_true(a >= 0);
	assert_int_equal(recv(a, buf, 1, MSG_WAITALL), 1);
	assert_int_equal(buf[0], 'x');
	close(a);
	close(c);
}

static void test_listen_new_syn_is_dropped(void **state)
{
	struct pair *p = *state;
	int c;

	assert_int_equal(listen_refuse_new(p->lfd), 0);
	c = start_connect(p);
	/* No SYN-ACK within 300 ms (Linux retransmits the SYN after 1 s),
	 * and nothing reaches the accept queue. */
	assert_int_equal(finish_connect(c, 300), ETIMEDOUT);
	assert_int_equal(accept4(p->lfd, NULL, NULL, SOCK_NONBLOCK), -1);
	assert_int_equal(errno, EAGAIN);
	close(c);
}

static void test_listen_refused_after_shutdown(void **state)
{
	struct pair *p = *state;
	int c;

	assert_int_equal(listen_refuse_new(p->lfd), 0);
	assert_int_equal(shutdown(p->lfd, SHUT_RDWR), 0);
	c = start_connect(p);
	assert_int_equal(finish_connect(c, 2000), ECONNREFUSED);
	close(c);
}

static void test_listen_refuse_new_reports_errors(void **state)
{
	int fds[2];

	(void)state;
	assert_int_equal(listen_refuse_new(-1), -EBADF);
	assert_int_equal(pipe(fds), 0);
	assert_int_equal(listen_refuse_new(fds[0]), -ENOTSOCK);
	close(fds[0]);
	close(fds[1]);
}

/* One service "echo" of a plugin whose peer speaks first, listening on
 * one address, in a daemon of two workers. */
struct fixture {
	struct ringd_plugin rp;
	struct plugin pl;
	struct listen_addr addr;
	struct service_conf sc;
	struct ringd_conf conf;
	struct ringd_instance inst;
	struct daemon d;
};

static void fixture_init(struct fixture *f, const char *addr, bool reuseport)
{
	char err[128];

	memset(f, 0, sizeof(*f));
	f->rp = (struct ringd_plugin){ .size = sizeof(f->rp),
				       .stream_flags = RINGD_PEER_FIRST };
	f->pl.p = &f->rp;
	assert_int_equal(listen_addr_parse(addr, &f->addr, err, sizeof(err)),
			 0);
	f->sc = (struct service_conf){ .name = "echo", .plugin = &f->pl,
				       .listen = &f->addr, .nlisten = 1,
				       .defer_accept = true };
	f->conf = (struct ringd_conf){ .reuseport = reuseport, .svc = &f->sc,
				       .nsvc = 1 };
	f->inst = (struct ringd_instance){ .sc = &f->sc };
	f->d = (struct daemon){ .conf = &f->conf, .svc = &f->inst,
				.nworkers = 2 };
}

/* Stderr goes to a pipe while fn runs on the fixture; *log gets what
 * was logged, and the lowest free fd after it must be the one before
 * (nothing was left open). Returns fn's result. */
static int logged(int (*fn)(struct fixture *, char *, size_t),
		  struct fixture *f, char *err, char *log, size_t loglen)
{
	int probe = open("/dev/null", O_RDONLY | O_CLOEXEC), fds[2], saved, r;
	ssize_t n;

	close(probe);
	saved = dup(STDERR_FILENO);
	assert_int_equal(pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
	assert_true(saved >= 0);
	unsetenv("JOURNAL_STREAM");
	log_init(RINGD_LOG_INFO);
	dup2(fds[1], STDERR_FILENO);
	r = fn(f, err, 128);
	dup2(saved, STDERR_FILENO);
	close(saved);
	n = read(fds[0], log, loglen - 1);
	log[n > 0 ? n : 0] = '\0';
	close(fds[0]);
	close(fds[1]);
	if (r < 0) {
		int again = open("/dev/null", O_RDONLY | O_CLOEXEC);

		assert_int_equal(again, probe);
		close(again);
	}
	return r;
}

static int open_next(struct fixture *f, char *err, size_t len)
{
	return listen_open_next(&f->d, NULL, err, len);
}

struct refusal {
	int level, opt;
	const char *name, *addr;
	bool reuseport, v6;
};

/* An option the listener needs fails the open (the start, or a reload,
 * with its STATUS= text) with a line naming the service, the option and
 * the address, and leaves no socket open. */
static void test_listen_needed_option_fails(void **state)
{
	static const struct refusal cases[] = {
		{ SOL_SOCKET, SO_REUSEPORT, "SO_REUSEPORT",
		  "tcp://127.0.0.1:0", true, false },
		{ IPPROTO_IPV6, IPV6_V6ONLY, "IPV6_V6ONLY", "tcp://*:0", false,
		  true },
		{ IPPROTO_IPV6, IPV6_V6ONLY, "IPV6_V6ONLY", "udp://[::1]:0",
		  false, true },
		{ IPPROTO_IP, IP_PKTINFO, "IP_PKTINFO", "udp://*:0", false,
		  false },
		{ IPPROTO_IPV6, IPV6_RECVPKTINFO, "IPV6_RECVPKTINFO",
		  "udp://*:0", false, true },
	};
	int v6 = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct fixture f;
	char err[128], log[4096], want[256];
	int alen;

	(void)state;
	if (v6 >= 0)
		close(v6);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct refusal *c = &cases[i];

		/* Without IPv6, "*" is 0.0.0.0 and sets no IPv6 option. */
		if (c->v6 && v6 < 0)
			continue;
		fixture_init(&f, c->addr, c->reuseport);
		refuse_level = c->level;
		refuse_opt = c->opt;
		err[0] = '\0';
		assert_int_equal(logged(open_next, &f, err, log, sizeof(log)),
				 -EPERM);
		refuse_level = refuse_opt = -1;
		/* The port may be fixed by then (a probe bind): not
		 * compared. */
		alen = (int)strlen(c->addr) - 1;
		snprintf(want, sizeof(want), "error: listen: setsockopt %s failed "
			 "svc=echo addr=%.*s", c->name, alen, c->addr);
		if (strncmp(log, want, strlen(want)) != 0 ||
		    !strstr(log, " error=\"Operation not permitted\"\n"))
			fail_msg("%s: want %s... in:\n%s", c->name, want, log);
		snprintf(want, sizeof(want), "echo: setsockopt %s %.*s",
			 c->name, alen, c->addr);
		assert_int_equal(strncmp(err, want, strlen(want)), 0);
		assert_non_null(strstr(err, ": Operation not permitted"));
		assert_null(f.d.listeners);
	}
}

/* A tuning that fails is one warning for the listener (not one per
 * worker's socket), and the listener serves. */
static void test_listen_tuning_option_warns(void **state)
{
	static const struct refusal cases[] = {
		{ IPPROTO_TCP, TCP_NODELAY, "TCP_NODELAY", "tcp://127.0.0.1:0",
		  true, false },
		{ SOL_SOCKET, SO_REUSEADDR, "SO_REUSEADDR", "tcp://127.0.0.1:0",
		  false, false },
		{ IPPROTO_TCP, TCP_DEFER_ACCEPT, "TCP_DEFER_ACCEPT",
		  "tcp://127.0.0.1:0", true, false },
	};
	struct fixture f;
	char err[128], log[4096], want[256];
	struct pair p = { 0 };

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct refusal *c = &cases[i];
		int cfd;

		fixture_init(&f, c->addr, c->reuseport);
		refuse_level = c->level;
		refuse_opt = c->opt;
		assert_int_equal(logged(open_next, &f, err, log, sizeof(log)),
				 0);
		refuse_level = refuse_opt = -1;
		snprintf(want, sizeof(want), "warning: listen: setsockopt %s "
			 "failed svc=echo addr=", c->name);
		if (!strstr(log, want) || strstr(strstr(log, want) + 1, want))
			fail_msg("%s: want one line %s in:\n%s", c->name, want,
				 log);
		assert_non_null(strstr(log, "error=\"Operation not permitted\""));
		assert_int_equal(f.d.nlisteners, 1);
		assert_int_equal(f.d.listeners[0].nfds, c->reuseport ? 2 : 1);
		p.lfd = f.d.listeners[0].fds[0];
		p.alen = f.d.listeners[0].addr.sslen;
		memcpy(&p.addr, &f.d.listeners[0].addr.ss, p.alen);
		cfd = start_connect(&p);
		assert_int_equal(finish_connect(cfd, 2000), 0);
		close(cfd);
		listen_close_all(&f.d);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_listen_completed_connection_survives_filter, setup_v4,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_listen_handshake_under_way_completes, setup_v4,
			teardown),
		cmocka_unit_test_setup_teardown(test_listen_new_syn_is_dropped,
						setup_v4, teardown),
		cmocka_unit_test_setup_teardown(test_listen_refused_after_shutdown,
						setup_v4, teardown),
		cmocka_unit_test_setup_teardown(
			test_listen_completed_connection_survives_filter, setup_v6,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_listen_handshake_under_way_completes, setup_v6,
			teardown),
		cmocka_unit_test_setup_teardown(test_listen_new_syn_is_dropped,
						setup_v6, teardown),
		cmocka_unit_test_setup_teardown(test_listen_refused_after_shutdown,
						setup_v6, teardown),
		cmocka_unit_test(test_listen_refuse_new_reports_errors),
		cmocka_unit_test(test_listen_needed_option_fails),
		cmocka_unit_test(test_listen_tuning_option_warns),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
