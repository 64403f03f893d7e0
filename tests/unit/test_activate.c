/* Socket activation: the LISTEN_* values and their errors, taking the
 * environment (it is unset afterwards, the fds are close-on-exec), what
 * the kernel says about real sockets, and the matching rules on sockets
 * described by hand, so that wildcards need no wildcard bind. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/activate.h"

/* Where take_at() finds the test's fds: far above what cmocka opens. */
#define FIRST 200

static char pidbuf[16];

static const char *self(void)
{
	snprintf(pidbuf, sizeof(pidbuf), "%d", (int)getpid());
	return pidbuf;
}

static int parse(const char *pid, const char *fds, const char *names,
		 struct activate_set *set, char *err)
{
	err[0] = '\0';
	return activate_parse(pid, fds, names, getpid(), FIRST, set, err, 160);
}

static void test_activate_parse_absent(void **state)
{
	struct activate_set set;
	char err[160];

	assert_int_equal(parse(NULL, NULL, NULL, &set, err), ACTIVATE_NONE);
	assert_int_equal(set.n, 0);
	/* LISTEN_FDS alone names no process: not for us. */
	assert_int_equal(parse(NULL, "2", "a:b", &set, err), ACTIVATE_NONE);
	assert_int_equal(parse(self(), NULL, NULL, &set, err), ACTIVATE_NONE);
	assert_int_equal(parse(self(), "0", NULL, &set, err), ACTIVATE_NONE);
	assert_int_equal(set.n, 0);
	assert_null(set.socks);
}

static void test_activate_parse_other_pid(void **state)
{
	struct activate_set set;
	char err[160], other[16];

	snprintf(other, sizeof(other), "%d", (int)getpid() + 1);
	assert_int_equal(parse(other, "2", "a:b", &set, err),
			 ACTIVATE_NOT_OURS);
	assert_int_equal(set.n, 0);
	/* Another process's bad LISTEN_FDS is none of our business. */
	assert_int_equal(parse(other, "lots", NULL, &set, err),
			 ACTIVATE_NOT_OURS);
}

static void test_activate_parse_fds_and_names(void **state)
{
	struct activate_set set;
	char err[160];

	assert_int_equal(parse(self(), "3", "echo::ringd.socket", &set, err),
			 ACTIVATE_OURS);
	assert_int_equal(set.n, 3);
	assert_int_equal(set.socks[0].fd, FIRST);
	assert_int_equal(set.socks[2].fd, FIRST + 2);
	assert_string_equal(set.socks[0].name, "echo");
	assert_string_equal(set.socks[1].name, "");
	assert_string_equal(set.socks[2].name, "ringd.socket");
	assert_false(set.socks[0].claimed);
	/* parse() touches no fd: freeing must not close ours. */
	for (size_t i = 0; i < set.n; i++)
		set.socks[i].fd = -1;
	activate_free(&set);

	assert_int_equal(parse(self(), "2", NULL, &set, err), ACTIVATE_OURS);
	assert_string_equal(set.socks[1].name, "");
	set.socks[0].fd = set.socks[1].fd = -1;
	activate_free(&set);
	assert_int_equal(parse(self(), "2", "", &set, err), ACTIVATE_OURS);
	assert_int_equal(set.n, 2);
	set.socks[0].fd = set.socks[1].fd = -1;
	activate_free(&set);
}

static void test_activate_parse_bad_values(void **state)
{
	static const char *const pids[] = { "", "0", "-1", "+5", "12x", " 7",
					    "99999999999999999999" };
	static const char *const counts[] = { "", "x", "-1", "+1", "1 ",
					      "4097", "18446744073709551617" };
	struct activate_set set;
	char err[160];
	size_t i;

	for (i = 0; i < sizeof(pids) / sizeof(pids[0]); i++) {
		assert_int_equal(parse(pids[i], "1", NULL, &set, err), -1);
		assert_non_null(strstr(err, "LISTEN_PID="));
	}
	for (i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		assert_int_equal(parse(self(), counts[i], NULL, &set, err), -1);
		assert_non_null(strstr(err, "LISTEN_FDS="));
		assert_int_equal(set.n, 0);
	}
	assert_int_equal(parse(self(), "4096", NULL, &set, err), ACTIVATE_OURS);
	for (i = 0; i < set.n; i++)
		set.socks[i].fd = -1;
	activate_free(&set);
}

static void test_activate_parse_names_mismatch(void **state)
{
	struct activate_set set;
	char err[160], longname[300];

	assert_int_equal(parse(self(), "3", "echo:qotd", &set, err), -1);
	assert_string_equal(err, "LISTEN_FDNAMES has 2 names for LISTEN_FDS=3");
	assert_int_equal(set.n, 0);
	assert_int_equal(parse(self(), "1", "a:b", &set, err), -1);
	assert_string_equal(err, "LISTEN_FDNAMES has 2 names for LISTEN_FDS=1");
	memset(longname, 'n', 256);
	longname[256] = '\0';
	assert_int_equal(parse(self(), "1", longname, &set, err), -1);
	assert_non_null(strstr(err, "longer than 255"));
	longname[255] = '\0';
	assert_int_equal(parse(self(), "1", longname, &set, err),
			 ACTIVATE_OURS);
	set.socks[0].fd = -1;
	activate_free(&set);
}

static int tcp_listener(struct sockaddr_in *sin)
{
	socklen_t len = sizeof(*sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	*sin = (struct sockaddr_in){ .sin_family = AF_INET };
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)sin, sizeof(*sin)), 0);
	assert_int_equal(listen(fd, 4), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)sin, &len), 0);
	return fd;
}

static void set_env(const char *pid, const char *fds, const char *names)
{
	setenv("LISTEN_PID", pid, 1);
	setenv("LISTEN_FDS", fds, 1);
	if (names)
		setenv("LISTEN_FDNAMES", names, 1);
	else
		unsetenv("LISTEN_FDNAMES");
}

static void assert_env_gone(void)
{
	assert_null(getenv("LISTEN_PID"));
	assert_null(getenv("LISTEN_FDS"));
	assert_null(getenv("LISTEN_FDNAMES"));
}

static void test_activate_take_examines_and_unsets(void **state)
{
	struct sockaddr_in sin;
	struct activate_set set;
	int t = tcp_listener(&sin), u = socket(AF_INET, SOCK_DGRAM, 0), p[2];

	assert_int_equal(pipe(p), 0);
	assert_int_equal(dup2(t, FIRST), FIRST);
	assert_int_equal(dup2(u, FIRST + 1), FIRST + 1);
	assert_int_equal(dup2(p[0], FIRST + 2), FIRST + 2);
	close(t);
	close(u);
	close(p[0]);
	close(p[1]);
	set_env(self(), "3", "echo:udp:fifo");
	assert_int_equal(activate_take_at(&set, FIRST), 0);
	assert_env_gone();
	assert_int_equal(set.n, 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(fcntl(FIRST + i, F_GETFD), FD_CLOEXEC);
	assert_int_equal(set.socks[0].err, 0);
	assert_int_equal(set.socks[0].family, AF_INET);
	assert_int_equal(set.socks[0].type, SOCK_STREAM);
	assert_int_equal(set.socks[0].protocol, IPPROTO_TCP);
	assert_true(set.socks[0].listening);
	assert_memory_equal(&set.socks[0].ss, &sin, sizeof(sin));
	assert_int_equal(set.socks[1].type, SOCK_DGRAM);
	assert_int_equal(set.socks[1].protocol, IPPROTO_UDP);
	assert_false(set.socks[1].listening);
	assert_int_equal(set.socks[2].err, -ENOTSOCK);
	/* Nothing claimed: every one is reported and closed. */
	assert_int_equal(activate_report_unclaimed(&set), 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(fcntl(FIRST + i, F_GETFD), -1);
		assert_int_equal(set.socks[i].fd, -1);
	}
	activate_free(&set);
}

static void test_activate_take_refusals(void **state)
{
	struct activate_set set;
	char other[16];

	/* Someone else's fds are left alone, and so is the fd. */
	snprintf(other, sizeof(other), "%d", (int)getpid() + 1);
	assert_int_equal(dup2(STDERR_FILENO, FIRST), FIRST);
	set_env(other, "1", NULL);
	assert_int_equal(activate_take_at(&set, FIRST), 0);
	assert_int_equal(set.n, 0);
	assert_env_gone();
	assert_true(fcntl(FIRST, F_GETFD) >= 0);
	close(FIRST);

	set_env(self(), "two", NULL);
	assert_int_equal(activate_take_at(&set, FIRST), -1);
	assert_env_gone();
	set_env(self(), "2", "a:b:c");
	assert_int_equal(activate_take_at(&set, FIRST), -1);
	assert_env_gone();
	/* Two fds promised, none open. */
	set_env(self(), "2", NULL);
	assert_int_equal(activate_take_at(&set, FIRST), -1);
	assert_env_gone();
	assert_int_equal(set.n, 0);
}

/* A socket as examine() would describe it, at address text. */
static struct activate_sock sock_at(const char *text, bool v6only,
				    const char *name)
{
	struct activate_sock s = { .fd = 99, .name = (char *)name };
	struct listen_addr a;
	char err[128];

	assert_int_equal(listen_addr_parse(text, &a, err, sizeof(err)), 0);
	s.type = a.kind == LISTEN_UDP ? SOCK_DGRAM : SOCK_STREAM;
	s.listening = a.kind != LISTEN_UDP;
	s.v6only = v6only;
	if (a.kind == LISTEN_UNIX) {
		struct sockaddr_un *sun = (struct sockaddr_un *)&s.ss;

		sun->sun_family = AF_UNIX;
		strcpy(sun->sun_path, a.path);
		s.sslen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
				      strlen(a.path));
		s.family = AF_UNIX;
		return s;
	}
	s.ss = a.ss;
	s.sslen = a.sslen;
	s.family = a.ss.ss_family;
	s.protocol = a.kind == LISTEN_UDP ? IPPROTO_UDP : IPPROTO_TCP;
	return s;
}

static bool matches(const struct activate_sock *s, const char *svc,
		    const char *text)
{
	struct listen_addr a;
	char err[128];

	assert_int_equal(listen_addr_parse(text, &a, err, sizeof(err)), 0);
	return activate_matches(s, svc, &a);
}

static void test_activate_match_exact_address(void **state)
{
	struct activate_sock s = sock_at("tcp://127.0.0.1:7007", false, "");
	struct activate_sock s6 = sock_at("udp://[::1]:7", true, "");

	assert_true(matches(&s, "echo", "tcp://127.0.0.1:7007"));
	assert_false(matches(&s, "echo", "tcp://127.0.0.1:7008"));
	assert_false(matches(&s, "echo", "tcp://127.0.0.2:7007"));
	assert_false(matches(&s, "echo", "udp://127.0.0.1:7007"));
	assert_false(matches(&s, "echo", "tcp://[::1]:7007"));
	assert_false(matches(&s, "echo", "tcp://*:7007"));
	/* Port 0 asks for a port of the kernel's choosing: never inherited. */
	assert_false(matches(&s, "echo", "tcp://127.0.0.1:0"));
	assert_true(matches(&s6, "echo", "udp://[::1]:7"));
	assert_false(matches(&s6, "echo", "tcp://[::1]:7"));
	assert_false(matches(&s6, "echo", "udp://127.0.0.1:7"));
}

static void test_activate_match_wildcards(void **state)
{
	struct activate_sock dual = sock_at("tcp://*:7", false, "");
	struct activate_sock only6 = sock_at("tcp://[::]:7", true, "");
	struct activate_sock any4 = sock_at("tcp://0.0.0.0:7", false, "");

	assert_true(matches(&dual, "echo", "tcp://*:7"));
	assert_false(matches(&dual, "echo", "tcp://[::]:7"));
	assert_false(matches(&dual, "echo", "tcp://[::1]:7"));
	assert_false(matches(&dual, "echo", "tcp://0.0.0.0:7"));
	assert_true(matches(&only6, "echo", "tcp://[::]:7"));
	assert_false(matches(&only6, "echo", "tcp://*:7"));
	assert_true(matches(&any4, "echo", "tcp://*:7"));
	assert_true(matches(&any4, "echo", "tcp://0.0.0.0:7"));
	assert_false(matches(&any4, "echo", "tcp://127.0.0.1:7"));
	/* A wildcard listen = entry takes no specific address. */
	any4 = sock_at("tcp://127.0.0.1:7", false, "");
	assert_false(matches(&any4, "echo", "tcp://*:7"));
}

static void test_activate_match_kind(void **state)
{
	struct activate_sock s = sock_at("tcp://127.0.0.1:7", false, "");
	struct activate_sock u = sock_at("unix:/run/ringd/echo", false, "");

	s.listening = false;
	assert_false(matches(&s, "echo", "tcp://127.0.0.1:7"));
	s.listening = true;
	s.protocol = IPPROTO_SCTP;
	assert_false(matches(&s, "echo", "tcp://127.0.0.1:7"));
	s = sock_at("udp://127.0.0.1:7", false, "");
	s.protocol = IPPROTO_UDPLITE;
	assert_false(matches(&s, "echo", "udp://127.0.0.1:7"));
	s = sock_at("tcp://127.0.0.1:7", false, "");
	s.err = -ENOTSOCK;
	assert_false(matches(&s, "echo", "tcp://127.0.0.1:7"));

	assert_true(matches(&u, "echo", "unix:/run/ringd/echo"));
	assert_false(matches(&u, "echo", "unix:/run/ringd/echo2"));
	assert_false(matches(&u, "echo", "unix:/run/ringd/ech"));
	u.type = SOCK_SEQPACKET;
	assert_false(matches(&u, "echo", "unix:/run/ringd/echo"));
	u.type = SOCK_STREAM;
	u.listening = false;
	assert_false(matches(&u, "echo", "unix:/run/ringd/echo"));
}

static void test_activate_match_names(void **state)
{
	static const char *const anonymous[] = { "", "unknown", "ringd",
						 "ringd.socket",
						 "ringd-echo.socket" };
	struct activate_sock s;
	size_t i;

	for (i = 0; i < sizeof(anonymous) / sizeof(anonymous[0]); i++) {
		assert_true(activate_name_is_anonymous(anonymous[i]));
		s = sock_at("tcp://127.0.0.1:7", false, anonymous[i]);
		assert_true(matches(&s, "echo", "tcp://127.0.0.1:7"));
		assert_true(matches(&s, "qotd", "tcp://127.0.0.1:7"));
	}
	assert_false(activate_name_is_anonymous(".socket"));
	s = sock_at("tcp://127.0.0.1:7", false, "echo");
	assert_true(matches(&s, "echo", "tcp://127.0.0.1:7"));
	assert_false(matches(&s, "qotd", "tcp://127.0.0.1:7"));
	/* A name that is no section's is nobody's: a typo shows at once. */
	s.name = "ehco";
	assert_false(matches(&s, "echo", "tcp://127.0.0.1:7"));
}

static void test_activate_claim_once(void **state)
{
	struct activate_sock socks[2] = {
		sock_at("tcp://127.0.0.1:7", false, "qotd"),
		sock_at("tcp://127.0.0.1:7", false, "echo"),
	};
	struct activate_set set = { .socks = socks, .n = 2 };
	struct listen_addr a;
	char err[128];

	assert_int_equal(listen_addr_parse("tcp://127.0.0.1:7", &a, err,
					   sizeof(err)), 0);
	assert_null(activate_claim(NULL, "echo", &a));
	/* The first socket has the address but another service's name. */
	assert_ptr_equal(activate_claim(&set, "echo", &a), &socks[1]);
	assert_true(socks[1].claimed);
	assert_null(activate_claim(&set, "echo", &a));
	assert_false(socks[0].claimed);
}

static void test_activate_prepare(void **state)
{
	struct sockaddr_in sin;
	struct activate_sock s = { .name = "" };
	struct listen_addr a;
	char err[128], text[160];
	int one = 0;
	socklen_t len = sizeof(one);

	s.fd = tcp_listener(&sin);
	activate_examine(&s);
	activate_describe(&s, text, sizeof(text));
	snprintf(err, sizeof(err), "tcp://127.0.0.1:%u", ntohs(sin.sin_port));
	assert_string_equal(text, err);
	assert_int_equal(listen_addr_parse(text, &a, err, sizeof(err)), 0);
	assert_true(activate_matches(&s, "echo", &a));
	assert_false(fcntl(s.fd, F_GETFL) & O_NONBLOCK);
	assert_int_equal(activate_prepare(s.fd, &a), 0);
	assert_true(fcntl(s.fd, F_GETFL) & O_NONBLOCK);
	assert_int_equal(getsockopt(s.fd, IPPROTO_TCP, TCP_NODELAY, &one, &len),
			 0);
	assert_int_equal(one, 1);
	close(s.fd);
	/* A closed fd cannot be set up. */
	assert_int_equal(activate_prepare(s.fd, &a), -EBADF);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_activate_parse_absent),
		cmocka_unit_test(test_activate_parse_other_pid),
		cmocka_unit_test(test_activate_parse_fds_and_names),
		cmocka_unit_test(test_activate_parse_bad_values),
		cmocka_unit_test(test_activate_parse_names_mismatch),
		cmocka_unit_test(test_activate_take_examines_and_unsets),
		cmocka_unit_test(test_activate_take_refusals),
		cmocka_unit_test(test_activate_match_exact_address),
		cmocka_unit_test(test_activate_match_wildcards),
		cmocka_unit_test(test_activate_match_kind),
		cmocka_unit_test(test_activate_match_names),
		cmocka_unit_test(test_activate_claim_once),
		cmocka_unit_test(test_activate_prepare),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
