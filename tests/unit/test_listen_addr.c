/* Unit tests for listen_addr.c: accepted forms, round trips through the
 * canonical text, and refusals with their exact messages. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "daemon/listen_addr.h"

static char err[512];

static struct listen_addr listen_ok(const char *s)
{
	struct listen_addr a;
	char back[160];

	err[0] = '\0';
	assert_int_equal(listen_addr_parse(s, &a, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	listen_addr_format(&a, back, sizeof(back));
	assert_string_equal(back, s);
	return a;
}

static void listen_bad(const char *s, const char *msg)
{
	struct listen_addr a;

	assert_int_equal(listen_addr_parse(s, &a, err, sizeof(err)), -1);
	assert_string_equal(err, msg);
}

static void test_listen_addr_ipv4(void **state)
{
	struct listen_addr a = listen_ok("tcp://127.0.0.1:7");
	struct sockaddr_in *sin = (struct sockaddr_in *)&a.ss;

	assert_int_equal(a.kind, LISTEN_TCP);
	assert_false(a.any);
	assert_int_equal(sin->sin_family, AF_INET);
	assert_int_equal(ntohs(sin->sin_port), 7);
	assert_int_equal(sin->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
	assert_int_equal(a.sslen, sizeof(*sin));
	a = listen_ok("udp://0.0.0.0:65535");
	assert_int_equal(a.kind, LISTEN_UDP);
}

static void test_listen_addr_ipv6_and_any(void **state)
{
	struct listen_addr a = listen_ok("udp://[::1]:7007");
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a.ss;

	assert_int_equal(a.kind, LISTEN_UDP);
	assert_int_equal(sin6->sin6_family, AF_INET6);
	assert_int_equal(ntohs(sin6->sin6_port), 7007);
	assert_true(IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr));
	assert_int_equal(a.sslen, sizeof(*sin6));
	a = listen_ok("tcp://*:7007");
	assert_true(a.any);
	assert_int_equal(sin6->sin6_family, AF_INET6);
	assert_true(IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr));
	listen_ok("tcp://[fe80::1:2]:80");
}

static void test_listen_addr_port_zero_and_format_bound_port(void **state)
{
	struct listen_addr a = listen_ok("tcp://127.0.0.1:0");
	char buf[160];

	((struct sockaddr_in *)&a.ss)->sin_port = htons(40123);
	listen_addr_format(&a, buf, sizeof(buf));
	assert_string_equal(buf, "tcp://127.0.0.1:40123");
	a = listen_ok("udp://*:0");
	((struct sockaddr_in6 *)&a.ss)->sin6_port = htons(5);
	listen_addr_format(&a, buf, sizeof(buf));
	assert_string_equal(buf, "udp://*:5");
}

static void test_listen_addr_unix(void **state)
{
	char longp[200];
	struct listen_addr a = listen_ok("unix:/run/ringd/echo.sock");

	assert_int_equal(a.kind, LISTEN_UNIX);
	assert_string_equal(a.path, "/run/ringd/echo.sock");
	a = listen_ok("unix:rel/x.sock");
	assert_string_equal(a.path, "rel/x.sock");
	memset(longp, 0, sizeof(longp));
	strcpy(longp, "unix:/");
	memset(longp + 6, 'a', 106);
	listen_ok(longp);
	longp[6 + 106] = 'a';
	listen_bad(longp, "unix socket path too long: 108 characters (max 107)");
	listen_bad("unix:", "missing path in 'unix:'");
}

static void test_listen_addr_refusals(void **state)
{
	listen_bad("tcp://localhost:7",
		   "not a numeric address: 'localhost' (use 127.0.0.1 or [::1])");
	listen_bad("tcp://::1:7",
		   "IPv6 address needs brackets: '::1' (e.g. tcp://[::1]:7)");
	listen_bad("tcp://[::1:7",
		   "not a numeric address: '::1:7' (use 127.0.0.1 or [::1])");
	listen_bad("tcp://[127.0.0.1]:7", "not a numeric address: "
		   "'127.0.0.1' (use 127.0.0.1 or [::1])");
	listen_bad("tcp://[::1]7", "expected ':' after ']' in 'tcp://[::1]7'");
	listen_bad("tcp://127.0.0.1", "missing port in 'tcp://127.0.0.1'");
	listen_bad("tcp://127.0.0.1:", "missing port in 'tcp://127.0.0.1:'");
	listen_bad("udp://[::1]", "missing port in 'udp://[::1]'");
	listen_bad("tcp://127.0.0.1:65536",
		   "bad port '65536' in 'tcp://127.0.0.1:65536' (0..65535)");
	listen_bad("tcp://127.0.0.1:7x",
		   "bad port '7x' in 'tcp://127.0.0.1:7x' (0..65535)");
	listen_bad("tcp://127.0.0.1:-1",
		   "bad port '-1' in 'tcp://127.0.0.1:-1' (0..65535)");
	listen_bad("tcp://1.2.3:7",
		   "not a numeric address: '1.2.3' (use 127.0.0.1 or [::1])");
	listen_bad("sctp://1.2.3.4:7", "not a listen address: 'sctp://1.2.3.4:7' "
		   "(use tcp://HOST:PORT, udp://HOST:PORT or unix:PATH)");
	listen_bad("127.0.0.1:7", "not a listen address: '127.0.0.1:7' (use "
		   "tcp://HOST:PORT, udp://HOST:PORT or unix:PATH)");
}

static struct listen_addr parsed(const char *s)
{
	struct listen_addr a;

	assert_int_equal(listen_addr_parse(s, &a, err, sizeof(err)), 0);
	return a;
}

/* What a reload compares to keep a listener's socket. */
static void test_listen_addr_same(void **state)
{
	static const char *const differ[] = {
		"tcp://127.0.0.1:7", "udp://127.0.0.1:7", "tcp://127.0.0.1:8",
		"tcp://127.0.0.2:7", "tcp://[::1]:7",     "tcp://*:7",
		"unix:/run/a",       "unix:/run/b",       "tcp://127.0.0.1:0",
	};
	size_t n = sizeof(differ) / sizeof(differ[0]);

	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < n; j++) {
			struct listen_addr a = parsed(differ[i]);
			struct listen_addr b = parsed(differ[j]);

			assert_int_equal(listen_addr_same(&a, &b), i == j);
		}
	}
}

/* What listen_addr_each() handed over, as text: "tcp://...|!why|...". */
struct seen {
	char text[1024];
	int stop_after; /* stop after this many; 0: never */
	int calls;
};

static int seen_one(const struct listen_addr *a, const char *why, void *arg)
{
	struct seen *s = arg;
	char buf[256];
	size_t n = strlen(s->text);

	if (a != NULL)
		listen_addr_format(a, buf, sizeof(buf));
	snprintf(s->text + n, sizeof(s->text) - n, "%s%s%s", n ? "|" : "",
		 a != NULL ? "" : "!", a != NULL ? buf : why);
	return ++s->calls == s->stop_after;
}

static void test_listen_addr_each_splits_as_ringd_does(void **state)
{
	struct seen s = { .text = "" };

	/* Commas, blanks and the line breaks of a continued value. */
	assert_int_equal(listen_addr_each("tcp://127.0.0.1:7, udp://[::1]:7\n"
					  "  unix:/run/x,,tcp://*:9\ttcp://h:1",
					  seen_one, &s), 5);
	assert_string_equal(s.text, "tcp://127.0.0.1:7|udp://[::1]:7|"
				    "unix:/run/x|tcp://*:9|!not a numeric "
				    "address: 'h' (use 127.0.0.1 or [::1])");
	memset(&s, 0, sizeof(s));
	assert_int_equal(listen_addr_each(" ,\n, ", seen_one, &s), 0);
	assert_int_equal(s.calls, 0);
	/* A non-zero return stops the walk. */
	s.stop_after = 1;
	assert_int_equal(listen_addr_each("tcp://127.0.0.1:1 tcp://127.0.0.1:2",
					  seen_one, &s), 1);
	assert_string_equal(s.text, "tcp://127.0.0.1:1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_listen_addr_ipv4),
		cmocka_unit_test(test_listen_addr_ipv6_and_any),
		cmocka_unit_test(test_listen_addr_port_zero_and_format_bound_port),
		cmocka_unit_test(test_listen_addr_unix),
		cmocka_unit_test(test_listen_addr_refusals),
		cmocka_unit_test(test_listen_addr_same),
		cmocka_unit_test(test_listen_addr_each_splits_as_ringd_does),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
