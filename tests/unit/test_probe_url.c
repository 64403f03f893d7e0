/* ringd-probe's target URLs: every scheme with its well-known port,
 * explicit ports, [IPv6], host names, paths, and the refusals. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "probe/target.h"

static void url_ok(const char *url, enum probe_proto proto, bool udp,
		   const char *host, const char *port, const char *path)
{
	struct probe_target t;
	const char *why = NULL;

	assert_int_equal(probe_target_parse(&t, url, &why), 0);
	assert_int_equal(t.proto, proto);
	assert_int_equal(t.udp, udp);
	assert_string_equal(t.host, host);
	assert_string_equal(t.port, port);
	assert_string_equal(t.path, path);
	assert_string_equal(t.url, url);
}

static void url_bad(const char *url, const char *reason)
{
	struct probe_target t;
	const char *why = NULL;

	assert_int_equal(probe_target_parse(&t, url, &why), -EINVAL);
	assert_non_null(why);
	assert_string_equal(why, reason);
}

static void test_probe_url_default_ports(void **state)
{
	url_ok("echo://h", PROBE_ECHO, false, "h", "7", "");
	url_ok("echo+udp://h", PROBE_ECHO, true, "h", "7", "");
	url_ok("discard://h", PROBE_DISCARD, false, "h", "9", "");
	url_ok("daytime://h", PROBE_DAYTIME, false, "h", "13", "");
	url_ok("daytime+udp://h", PROBE_DAYTIME, true, "h", "13", "");
	url_ok("qotd://h", PROBE_QOTD, false, "h", "17", "");
	url_ok("qotd+udp://h", PROBE_QOTD, true, "h", "17", "");
	url_ok("chargen://h", PROBE_CHARGEN, false, "h", "19", "");
	url_ok("time://h", PROBE_TIME, false, "h", "37", "");
	url_ok("time+udp://h", PROBE_TIME, true, "h", "37", "");
	url_ok("http://h", PROBE_HTTP, false, "h", "80", "/");
}

static void test_probe_url_ports_hosts_paths(void **state)
{
	url_ok("echo://127.0.0.1:7007", PROBE_ECHO, false, "127.0.0.1",
	       "7007", "");
	url_ok("ECHO+UDP://localhost:65535/", PROBE_ECHO, true, "localhost",
	       "65535", "");
	url_ok("http://[::1]:8080/healthz?x=1", PROBE_HTTP, false, "::1",
	       "8080", "/healthz?x=1");
	url_ok("time://[2001:db8::5]", PROBE_TIME, false, "2001:db8::5", "37",
	       "");
	url_ok("http://my-host.example_1.org:0080", PROBE_HTTP, false,
	       "my-host.example_1.org", "80", "/");
}

static void test_probe_url_refusals(void **state)
{
	url_bad("127.0.0.1:7", "not a URL (SCHEME://HOST[:PORT])");
	url_bad("gopher://h", "unknown scheme");
	url_bad("discard+udp://h", "unknown scheme");
	url_bad("https://h/", "unknown scheme");
	url_bad("echo://", "missing host");
	url_bad("echo://:7", "missing host");
	url_bad("echo://h:0", "bad port (1-65535)");
	url_bad("echo://h:65536", "bad port (1-65535)");
	url_bad("echo://h:", "bad port (1-65535)");
	url_bad("echo://h:7x", "bad port (1-65535)");
	url_bad("echo://h:123456", "bad port (1-65535)");
	url_bad("echo://h/path", "only http:// takes a path");
	url_bad("echo://[::1", "bad [IPv6] address");
	url_bad("echo://[]:7", "bad [IPv6] address");
	url_bad("echo://[::1]7", "junk after ']'");
	url_bad("echo://[::g]", "bad [IPv6] address");
	url_bad("echo://ho st", "bad character in host");
	url_bad("echo://::1", "missing host");
	url_bad("http://[fe80::1%25eth0]/", "bad [IPv6] address");
	url_bad("http://u@h/", "user info is not supported");
	url_bad("http://h/a b", "blank or control character in path");
}

static void test_probe_url_length_limits(void **state)
{
	char url[PROBE_URL_MAX + 16];
	char host[PROBE_HOST_MAX + 1];

	memset(host, 'a', sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	snprintf(url, sizeof(url), "echo://%s", host);
	url_bad(url, "host name too long");
	memset(url, 'a', sizeof(url) - 1);
	memcpy(url, "http://h/", 9);
	url[sizeof(url) - 1] = '\0';
	url_bad(url, "URL too long");
}

static void test_probe_url_hostport(void **state)
{
	struct probe_target t;
	const char *why;
	char out[64];

	assert_int_equal(probe_target_parse(&t, "http://[::1]:81/", &why), 0);
	probe_target_hostport(&t, out, sizeof(out));
	assert_string_equal(out, "[::1]:81");
	assert_int_equal(probe_target_parse(&t, "qotd://q.example", &why), 0);
	probe_target_hostport(&t, out, sizeof(out));
	assert_string_equal(out, "q.example:17");
	assert_string_equal(probe_proto_name(t.proto), "qotd");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_probe_url_default_ports),
		cmocka_unit_test(test_probe_url_ports_hosts_paths),
		cmocka_unit_test(test_probe_url_refusals),
		cmocka_unit_test(test_probe_url_length_limits),
		cmocka_unit_test(test_probe_url_hostport),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
