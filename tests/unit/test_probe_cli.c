/* ringd-probe's command line: durations, sizes, option values, and the
 * one UNKNOWN line every mistake prints. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "probe/cli.h"

static void test_probe_cli_durations(void **state)
{
	int64_t ns = 0;

	assert_int_equal(cli_parse_duration("2", &ns), 0);
	assert_int_equal(ns, 2000000000);
	assert_int_equal(cli_parse_duration("0.5s", &ns), 0);
	assert_int_equal(ns, 500000000);
	assert_int_equal(cli_parse_duration("250ms", &ns), 0);
	assert_int_equal(ns, 250000000);
	assert_int_equal(cli_parse_duration("1.5m", &ns), 0);
	assert_int_equal(ns, 90000000000);
	assert_int_equal(cli_parse_duration("0.001ms", &ns), 0);
	assert_int_equal(ns, 1000);
	assert_int_equal(cli_parse_duration("", &ns), -EINVAL);
	assert_int_equal(cli_parse_duration("0", &ns), -EINVAL);
	assert_int_equal(cli_parse_duration("-1", &ns), -EINVAL);
	assert_int_equal(cli_parse_duration("2h", &ns), -EINVAL);
	assert_int_equal(cli_parse_duration("nan", &ns), -EINVAL);
	assert_int_equal(cli_parse_duration("inf", &ns), -EINVAL);
	assert_int_equal(cli_parse_duration("2 s", &ns), -EINVAL);
	assert_int_equal(cli_parse_duration("1e9", &ns), -EINVAL);
}

static void test_probe_cli_sizes(void **state)
{
	size_t n = 0;

	assert_int_equal(cli_parse_size("64", 100, &n), 0);
	assert_int_equal(n, 64);
	assert_int_equal(cli_parse_size("4k", 1 << 20, &n), 0);
	assert_int_equal(n, 4096);
	assert_int_equal(cli_parse_size("1M", 1 << 20, &n), 0);
	assert_int_equal(n, 1 << 20);
	assert_int_equal(cli_parse_size("2m", 1 << 20, &n), -EINVAL);
	assert_int_equal(cli_parse_size("0", 100, &n), -EINVAL);
	assert_int_equal(cli_parse_size("-1", 100, &n), -EINVAL);
	assert_int_equal(cli_parse_size("1x", 100, &n), -EINVAL);
	assert_int_equal(cli_parse_size("99999999999999999999", ~(size_t)0, &n),
			 -EINVAL);
}

/* Runs cli_parse over a NULL-terminated list; returns its result and
 * what it printed. */
static int parse(struct probe_cli *cli, char **out, const char *first, ...)
{
	char *argv[32] = { "ringd-probe" };
	int argc = 1;
	va_list ap;
	size_t len;
	FILE *f = open_memstream(out, &len);
	int rc;

	va_start(ap, first);
	for (const char *a = first; a; a = va_arg(ap, const char *))
		argv[argc++] = (char *)a;
	va_end(ap);
	rc = cli_parse(cli, argc, argv, f, f);
	fclose(f);
	return rc;
}

static void test_probe_cli_defaults_and_values(void **state)
{
	struct probe_cli cli;
	char *out = NULL;

	assert_int_equal(parse(&cli, &out, "echo://h", NULL), 0);
	assert_string_equal(out, "");
	assert_int_equal(cli.opts.timeout_ns, 2000000000);
	assert_int_equal(cli.opts.size, 256);
	assert_string_equal(cli.opts.method, "GET");
	assert_string_equal(cli.opts.expect_status, "200-399");
	assert_int_equal(cli.count, 1);
	assert_int_equal(cli.format, CLI_NAGIOS);
	assert_int_equal(cli.backend, LOOP_BACKEND_AUTO);
	assert_null(cli.opts.expect_body);
	assert_int_equal(cli.nurls, 1);
	cli_free(&cli);
	free(out);

	assert_int_equal(parse(&cli, &out, "-t", "300ms", "--warn", "1ms",
			       "--crit", "2ms", "--size", "1k", "--method",
			       "HEAD", "--expect-status", "503", "--json",
			       "http://h/", "--count", "5", "--interval",
			       "10ms", "--backend", "epoll", "--expect-body",
			       "^ok$", "--expect-header",
			       "Content-Type:  text/.*", "echo://h", NULL), 0);
	assert_int_equal(cli.opts.timeout_ns, 300000000);
	assert_int_equal(cli.warn_ns, 1000000);
	assert_int_equal(cli.crit_ns, 2000000);
	assert_int_equal(cli.opts.size, 1024);
	assert_string_equal(cli.opts.method, "HEAD");
	assert_string_equal(cli.opts.expect_status, "503");
	assert_int_equal(cli.format, CLI_JSON);
	assert_int_equal(cli.count, 5);
	assert_int_equal(cli.interval_ns, 10000000);
	assert_int_equal(cli.backend, LOOP_BACKEND_EPOLL);
	assert_non_null(cli.opts.expect_body);
	assert_non_null(cli.opts.expect_header);
	assert_string_equal(cli.opts.expect_header_name, "Content-Type");
	assert_int_equal(cli.nurls, 2);
	assert_string_equal(cli.urls[0], "http://h/");
	assert_string_equal(cli.urls[1], "echo://h");
	cli_free(&cli);
	free(out);
}

static void cli_bad(const char *want, const char *a, const char *b)
{
	struct probe_cli cli;
	char *out = NULL;

	assert_int_equal(parse(&cli, &out, a, b, "echo://h", NULL), -EINVAL);
	assert_string_equal(out, want);
	cli_free(&cli);
	free(out);
}

static void test_probe_cli_errors(void **state)
{
	struct probe_cli cli;
	char *out = NULL;

	cli_bad("UNKNOWN - ringd-probe: --timeout wants a duration (2s, "
		"500ms): soon\n", "--timeout", "soon");
	cli_bad("UNKNOWN - ringd-probe: --method is GET, HEAD or OPTIONS: "
		"POST\n", "--method", "POST");
	cli_bad("UNKNOWN - ringd-probe: --backend is auto, io_uring or epoll: "
		"kqueue\n", "--backend", "kqueue");
	cli_bad("UNKNOWN - ringd-probe: --expect-status wants codes and "
		"ranges like 200,300-399: 2xx\n", "--expect-status", "2xx");
	cli_bad("UNKNOWN - ringd-probe: --expect-header wants 'Name: REGEX': "
		"nocolon\n", "--expect-header", "nocolon");
	cli_bad("UNKNOWN - ringd-probe: --size wants 1..64m bytes: 65m\n",
		"--size", "65m");
	cli_bad("UNKNOWN - ringd-probe: --count wants 1..1000000: 0\n",
		"--count", "0");
	cli_bad("UNKNOWN - ringd-probe: bad option or missing argument: "
		"--nope\n", "--nope", "x");
	assert_int_equal(parse(&cli, &out, "--expect-body", "(", "echo://h",
			       NULL), -EINVAL);
	assert_non_null(strstr(out, "UNKNOWN - ringd-probe: "));
	assert_non_null(strstr(out, ": (\n"));
	cli_free(&cli);
	free(out);
	assert_int_equal(parse(&cli, &out, "--json", NULL), -EINVAL);
	assert_string_equal(out, "UNKNOWN - ringd-probe: no target: give a "
				 "URL or --config FILE (--help)\n");
	cli_free(&cli);
	free(out);
	/* --config alone is a target; URLs may come beside it. */
	assert_int_equal(parse(&cli, &out, "--config", "/etc/ringd/ringd.ini",
			       NULL), 0);
	assert_string_equal(cli.config, "/etc/ringd/ringd.ini");
	assert_int_equal(cli.nurls, 0);
	cli_free(&cli);
	free(out);
	assert_int_equal(parse(&cli, &out, "--config", "f.ini", "echo://h",
			       NULL), 0);
	assert_string_equal(cli.config, "f.ini");
	assert_int_equal(cli.nurls, 1);
	cli_free(&cli);
	free(out);
	assert_int_equal(parse(&cli, &out, "--help", NULL), 1);
	assert_non_null(strstr(out, "usage: ringd-probe"));
	cli_free(&cli);
	free(out);
}

static void test_probe_cli_load_options(void **state)
{
	struct probe_cli cli;
	char *out = NULL;

	assert_int_equal(parse(&cli, &out, "echo://h", NULL), 0);
	assert_false(cli.load.on);
	assert_int_equal(cli.load.conns, 1);
	cli_free(&cli);
	free(out);

	assert_int_equal(parse(&cli, &out, "--load", "-c", "50", "-d", "5",
			       "--warmup", "500ms", "--server-pid", "42",
			       "--name", "lg", "--no-keepalive", "http://h/",
			       NULL),
			 0);
	assert_string_equal(out, "");
	assert_true(cli.load.on);
	assert_int_equal(cli.load.conns, 50);
	assert_int_equal(cli.load.duration_ns, 5000000000);
	assert_int_equal(cli.load.requests, 0);
	assert_int_equal(cli.load.warmup_ns, 500000000);
	assert_int_equal(cli.load.server_pid, 42);
	assert_string_equal(cli.load.name, "lg");
	assert_true(cli.load.no_keepalive);
	cli_free(&cli);
	free(out);

	assert_int_equal(parse(&cli, &out, "--load", "--connections", "3",
			       "--requests", "1000", "--json", "echo://h",
			       NULL),
			 0);
	assert_int_equal(cli.load.conns, 3);
	assert_int_equal(cli.load.requests, 1000);
	assert_int_equal(cli.load.duration_ns, 0);
	assert_int_equal(cli.format, CLI_JSON);
	cli_free(&cli);
	free(out);
}

/* Every argument list ends in echo://h. */
static void load_bad(const char *want, const char *a, const char *b,
		     const char *c, const char *d)
{
	struct probe_cli cli;
	char *out = NULL;

	assert_int_equal(parse(&cli, &out, a, b, c, d, "echo://h", NULL),
			 -EINVAL);
	assert_string_equal(out, want);
	cli_free(&cli);
	free(out);
}

static void test_probe_cli_load_errors(void **state)
{
	load_bad("UNKNOWN - ringd-probe: -c wants 1..10000 connections: 0\n",
		 "--load", "-d", "1", "-c0");
	load_bad("UNKNOWN - ringd-probe: -c wants 1..10000 connections: "
		 "10001\n",
		 "--load", "-d", "1", "-c10001");
	load_bad("UNKNOWN - ringd-probe: -n wants 1..10^12 requests: 1e3\n",
		 "--load", "-n", "1e3", "-c1");
	load_bad("UNKNOWN - ringd-probe: -d wants a duration (5s, 500ms): "
		 "forever\n",
		 "--load", "-c1", "-d", "forever");
	load_bad("UNKNOWN - ringd-probe: --server-pid wants a process id: "
		 "-1\n",
		 "--load", "-d1", "--server-pid", "-1");
	load_bad("UNKNOWN - ringd-probe: --name wants a label without blanks: "
		 "a b\n",
		 "--load", "-d1", "--name", "a b");
	load_bad("UNKNOWN - ringd-probe: usage: --load wants one of -d "
		 "DURATION and -n REQUESTS\n",
		 "--load", "-c", "2", "-t1");
	load_bad("UNKNOWN - ringd-probe: usage: --load wants one of -d "
		 "DURATION and -n REQUESTS\n",
		 "--load", "-d1", "-n", "5");
	load_bad("UNKNOWN - ringd-probe: usage: -c, -d, -n, --no-keepalive, "
		 "--server-pid, --warmup and --name need --load\n",
		 "-c", "5", "-d", "1");
	load_bad("UNKNOWN - ringd-probe: usage: --load drives one URL\n",
		 "--load", "-d1", "-c1", "echo://other");
	load_bad("UNKNOWN - ringd-probe: usage: --count and --prometheus are "
		 "for checks, not --load\n",
		 "--load", "-d1", "--count", "2");
	load_bad("UNKNOWN - ringd-probe: usage: --count and --prometheus are "
		 "for checks, not --load\n",
		 "--load", "-d1", "--prometheus", "-c1");
	load_bad("UNKNOWN - ringd-probe: usage: --config is for checks, not "
		 "--load\n",
		 "--load", "-d1", "--config", "/etc/ringd/ringd.ini");
	/* A load judges no latency and waits no interval: each is named,
	 * before --load or after it. */
	static const char *const check_only[] = { "--interval", "--warn",
						   "--crit" };

	for (size_t i = 0; i < sizeof(check_only) / sizeof(*check_only); i++) {
		const char *opt = check_only[i];
		char want[128];

		snprintf(want, sizeof(want), "UNKNOWN - ringd-probe: usage: "
			 "%s is for checks, not --load\n", opt);
		load_bad(want, "--load", "-n9", opt, "200ms");
		load_bad(want, opt, "1s", "--load", "-d1");
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_probe_cli_durations),
		cmocka_unit_test(test_probe_cli_sizes),
		cmocka_unit_test(test_probe_cli_defaults_and_values),
		cmocka_unit_test(test_probe_cli_errors),
		cmocka_unit_test(test_probe_cli_load_options),
		cmocka_unit_test(test_probe_cli_load_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
