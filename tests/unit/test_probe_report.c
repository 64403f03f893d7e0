/* ringd-probe's output layer: thresholds, the severity order of several
 * verdicts, statistics and percentiles, and the exact Nagios, JSON and
 * Prometheus text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "probe/report.h"

#define MS 1000000LL

struct capture {
	char *buf;
	size_t len;
	FILE *f;
};

static FILE *cap_open(struct capture *c)
{
	c->buf = NULL;
	c->f = open_memstream(&c->buf, &c->len);
	assert_non_null(c->f);
	return c->f;
}

static void cap_expect(struct capture *c, const char *want)
{
	fclose(c->f);
	assert_string_equal(c->buf, want);
	free(c->buf);
}

static void test_probe_report_thresholds(void **state)
{
	assert_int_equal(report_threshold(PROBE_OK, 5 * MS, 0, 0), PROBE_OK);
	assert_int_equal(report_threshold(PROBE_OK, 5 * MS, 4 * MS, 0),
			 PROBE_WARNING);
	assert_int_equal(report_threshold(PROBE_OK, 5 * MS, 5 * MS, 0),
			 PROBE_OK);
	assert_int_equal(report_threshold(PROBE_OK, 5 * MS, 1 * MS, 2 * MS),
			 PROBE_CRITICAL);
	assert_int_equal(report_threshold(PROBE_OK, 5 * MS, 0, 4 * MS),
			 PROBE_CRITICAL);
	/* A failed check stays what it was, however fast. */
	assert_int_equal(report_threshold(PROBE_UNKNOWN, 1, 1, 1),
			 PROBE_UNKNOWN);
}

static void test_probe_report_worst_order(void **state)
{
	/* CRITICAL, then WARNING, then UNKNOWN, then OK. */
	assert_int_equal(report_worst(PROBE_UNKNOWN, PROBE_CRITICAL),
			 PROBE_CRITICAL);
	assert_int_equal(report_worst(PROBE_CRITICAL, PROBE_UNKNOWN),
			 PROBE_CRITICAL);
	assert_int_equal(report_worst(PROBE_UNKNOWN, PROBE_WARNING),
			 PROBE_WARNING);
	assert_int_equal(report_worst(PROBE_OK, PROBE_UNKNOWN), PROBE_UNKNOWN);
	assert_int_equal(report_worst(PROBE_WARNING, PROBE_OK), PROBE_WARNING);
	assert_int_equal(report_worst(PROBE_OK, PROBE_OK), PROBE_OK);
	assert_string_equal(report_state_name(PROBE_UNKNOWN), "UNKNOWN");
}

static void test_probe_report_percentiles(void **state)
{
	struct report_stats s = { 0 };
	struct report_summary m;

	/* 1..100 ms shuffled, plus 25 lost tries. */
	for (int i = 0; i < 100; i++)
		assert_int_equal(report_stats_add(&s, true,
						  ((i * 37) % 100 + 1) * MS), 0);
	for (int i = 0; i < 25; i++)
		assert_int_equal(report_stats_add(&s, false, 0), 0);
	report_summarize(&s, &m);
	assert_int_equal(s.tries, 125);
	assert_int_equal(s.ok, 100);
	assert_int_equal(m.min, 1 * MS);
	assert_int_equal(m.max, 100 * MS);
	assert_int_equal(m.avg, 50 * MS + MS / 2);
	assert_int_equal(m.p50, 50 * MS);
	assert_int_equal(m.p99, 99 * MS);
	assert_true(m.loss > 0.1999 && m.loss < 0.2001);
	report_stats_free(&s);

	/* One sample: every percentile is it; none: zeros, full loss. */
	assert_int_equal(report_stats_add(&s, true, 7), 0);
	report_summarize(&s, &m);
	assert_int_equal(m.p50, 7);
	assert_int_equal(m.p99, 7);
	report_stats_free(&s);
	assert_int_equal(report_stats_add(&s, false, 0), 0);
	report_summarize(&s, &m);
	assert_int_equal(m.max, 0);
	assert_true(m.loss == 1.0);
	report_stats_free(&s);
}

static void test_probe_report_nagios(void **state)
{
	struct capture c;
	struct report_entry e = {
		.url = "http://127.0.0.1:8080/healthz",
		.result = { .state = PROBE_OK, .duration_ns = 410000,
			    .message = "200 in 0.41 ms" },
	};

	report_nagios(cap_open(&c), &e, 0, 0);
	cap_expect(&c, "OK - http://127.0.0.1:8080/healthz 200 in 0.41 ms | "
		       "time=0.000410s\n");
	e.result.state = PROBE_WARNING;
	report_nagios(cap_open(&c), &e, 250000, 2000000000);
	cap_expect(&c, "WARNING - http://127.0.0.1:8080/healthz 200 in 0.41 ms"
		       " | time=0.000410s;0.000250;2.000000\n");
	e = (struct report_entry){ .url = "foo://x",
				   .result = { .state = PROBE_UNKNOWN,
					       .message = "bad URL: unknown "
							  "scheme" } };
	report_nagios(cap_open(&c), &e, 0, 0);
	cap_expect(&c, "UNKNOWN - foo://x bad URL: unknown scheme\n");
}

static void test_probe_report_stats_lines(void **state)
{
	struct capture c;
	struct report_stats s = { 0 };

	report_stats_add(&s, true, 2 * MS);
	report_stats_add(&s, false, 0);
	report_stats_add(&s, true, 1 * MS);
	report_stats_add(&s, true, 3 * MS);
	report_stats_lines(cap_open(&c), "echo://h", &s);
	cap_expect(&c, "--- echo://h statistics ---\n"
		       "4 tries, 3 ok, 25% loss, min/avg/max/p50/p99 = "
		       "1.000/2.000/3.000/2.000/3.000 ms\n");
	report_stats_free(&s);
	report_stats_add(&s, false, 0);
	report_stats_lines(cap_open(&c), "echo://h", &s);
	cap_expect(&c, "--- echo://h statistics ---\n"
		       "1 tries, 0 ok, 100% loss\n");
	report_stats_free(&s);
}

static void test_probe_report_json(void **state)
{
	struct capture c;
	struct report_stats s = { 0 };
	struct report_entry e[2] = {
		{ .url = "http://h/\"q\"", .http = true,
		  .result = { .state = PROBE_CRITICAL, .duration_ns = 1500000,
			      .http_status = 503,
			      .message = "503, expected 200-399\t" } },
		{ .url = "echo://h", .stats = &s,
		  .result = { .state = PROBE_OK, .duration_ns = 2000000,
			      .message = "ok" } },
	};

	report_stats_add(&s, true, 2000000);
	report_stats_add(&s, false, 0);
	report_json(cap_open(&c), e, 2, PROBE_CRITICAL);
	cap_expect(&c,
		   "{\"status\":\"CRITICAL\",\"exit\":2,\"targets\":["
		   "{\"url\":\"http://h/\\\"q\\\"\",\"status\":\"CRITICAL\","
		   "\"success\":false,\"duration_seconds\":0.001500000,"
		   "\"http_status\":503,\"message\":"
		   "\"503, expected 200-399\\u0009\"},"
		   "{\"url\":\"echo://h\",\"status\":\"OK\",\"success\":true,"
		   "\"duration_seconds\":0.002000000,\"message\":\"ok\","
		   "\"tries\":2,\"ok\":1,\"loss\":0.5000,"
		   "\"min_seconds\":0.002000000,\"avg_seconds\":0.002000000,"
		   "\"max_seconds\":0.002000000,\"p50_seconds\":0.002000000,"
		   "\"p99_seconds\":0.002000000}]}\n");
	report_stats_free(&s);
}

static void test_probe_report_prometheus(void **state)
{
	struct capture c;
	struct report_entry e[2] = {
		{ .url = "http://h/a\\b", .http = true,
		  .result = { .state = PROBE_OK, .duration_ns = 1000,
			      .http_status = 200 } },
		{ .url = "time://h",
		  .result = { .state = PROBE_CRITICAL, .duration_ns = 2000 } },
	};

	report_prometheus(cap_open(&c), e, 2);
	cap_expect(&c,
		   "# HELP probe_success Whether the check succeeded (1) or "
		   "not (0).\n# TYPE probe_success gauge\n"
		   "probe_success{target=\"http://h/a\\\\b\"} 1\n"
		   "probe_success{target=\"time://h\"} 0\n"
		   "# HELP probe_duration_seconds How long the check took.\n"
		   "# TYPE probe_duration_seconds gauge\n"
		   "probe_duration_seconds{target=\"http://h/a\\\\b\"} "
		   "0.000001000\n"
		   "probe_duration_seconds{target=\"time://h\"} 0.000002000\n"
		   "# HELP probe_http_status_code The HTTP status of the "
		   "reply (0: none).\n# TYPE probe_http_status_code gauge\n"
		   "probe_http_status_code{target=\"http://h/a\\\\b\"} 200\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_probe_report_thresholds),
		cmocka_unit_test(test_probe_report_worst_order),
		cmocka_unit_test(test_probe_report_percentiles),
		cmocka_unit_test(test_probe_report_nagios),
		cmocka_unit_test(test_probe_report_stats_lines),
		cmocka_unit_test(test_probe_report_json),
		cmocka_unit_test(test_probe_report_prometheus),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
