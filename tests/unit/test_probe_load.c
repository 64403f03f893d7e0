/* Load mode's parts without sockets: a /proc/N/stat line, the summary's
 * text (its RESULT line is what bench/ reads) and JSON. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "probe/load.h"

static void test_probe_load_parse_stat(void **state)
{
	struct load_stat st = { 0 };

	/* A command name with blanks and a ')' of its own. */
	assert_int_equal(load_parse_stat("1234 (a b) c) S 77 1234 1234 0 -1 "
					 "4194560 100 0 0 0 250 31 7 5 20 0 "
					 "3 0 12345\n",
					 &st),
			 0);
	assert_int_equal(st.ppid, 77);
	assert_int_equal(st.own_ticks, 281);
	assert_int_equal(st.child_ticks, 12);
	assert_int_equal(load_parse_stat("1234 no parenthesis", &st), -EINVAL);
	assert_int_equal(load_parse_stat("1 (x) S 1 2 3", &st), -EINVAL);
	assert_int_equal(load_parse_stat("1 (x) S 1 2 3 4 5 6 7 8 9 10 11 x 13 "
					 "14",
					 &st),
			 -EINVAL);
}

/* This process, then with a child that burns CPU: the child's time is
 * counted while it lives (from schedstat), the reaped child's after. */
static void test_probe_load_proc_cpu_counts_children(void **state)
{
	uint64_t ns0 = 0, ns1 = 0, ns2 = 0;
	unsigned n = 0;
	pid_t child;
	int status, pfd[2];
	char byte;

	assert_int_equal(load_proc_cpu((long)getpid(), &ns0, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(pipe(pfd), 0);
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		struct timespec t;

		/* 250 ms of its own CPU time, however busy the machine. */
		do
			clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
		while (t.tv_sec == 0 && t.tv_nsec < 250000000L);
		if (write(pfd[1], "x", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	assert_int_equal(read(pfd[0], &byte, 1), 1);
	assert_int_equal(load_proc_cpu((long)getpid(), &ns1, &n), 0);
	assert_int_equal(n, 2);
	assert_true(ns1 - ns0 >= 200000000ull);
	kill(child, SIGTERM);
	assert_int_equal(waitpid(child, &status, 0), child);
	close(pfd[0]);
	close(pfd[1]);
	assert_int_equal(load_proc_cpu((long)getpid(), &ns2, &n), 0);
	assert_int_equal(n, 1);
	/* Ticks truncate what schedstat counted exactly. */
	assert_true(ns2 + 20000000ull >= ns1);
	assert_int_equal(load_proc_cpu(1 << 30, &ns0, &n), -ESRCH);
}

static char *render(const struct load_summary *s, bool json)
{
	char *out = NULL;
	size_t len;
	FILE *f = open_memstream(&out, &len);

	if (json)
		load_report_json(f, s);
	else
		load_report_text(f, s);
	fclose(f);
	return out;
}

/* The histogram's own reading (its accuracy is test_probe_hist's). */
static double q_us(const struct hist *h, double q)
{
	return (double)hist_quantile(h, q) / 1e3;
}

static void summary(struct load_summary *s, struct hist *h)
{
	hist_init(h);
	for (uint64_t v = 1; v <= 100; v++)
		hist_add(h, v * 1000); /* 1..100 us */
	*s = (struct load_summary){
		.url = "http://127.0.0.1:8080/",
		.name = "lg",
		.backend = "epoll",
		.mode = "http",
		.conns = 4,
		.size = 80,
		.warmup_s = 1,
		.window_s = 2,
		.requests = 100,
		.errors = 0,
		.connects = 6,
		.resp_bytes = 120,
		.latency = h,
		.cpu = { .measured = true,
			 .processes = 2,
			 .server_s = 0.001,
			 .probe_s = 1.5 },
	};
}

static void test_probe_load_report_text(void **state)
{
	struct load_summary s;
	struct hist h;
	char *out, want[512];

	summary(&s, &h);
	out = render(&s, false);
	assert_non_null(strstr(out, "LOAD http://127.0.0.1:8080/: http, 4 "
				    "connections"));
	assert_non_null(strstr(out, "  requests     100 = 50.0 req/s, 0 "
				    "errors, 6 connections opened\n"));
	snprintf(want, sizeof(want),
		 "min 1.0  p50 %.1f  p90 %.1f  p99 %.1f  "
		 "p999 %.1f  max 100.0  mean 50.5\n",
		 q_us(&h, 0.5), q_us(&h, 0.9), q_us(&h, 0.99), q_us(&h, 0.999));
	assert_non_null(strstr(out, want));
	assert_non_null(strstr(out, "  server cpu   10.000 us/request"));
	snprintf(want, sizeof(want),
		 "\nRESULT name=lg conns=4 size=80 "
		 "rps=50.0 p50_us=%.1f p99_us=%.1f p999_us=%.1f "
		 "cpu_us_per_req=10.000 errors=0 reqs=100 window_s=2.000 "
		 "srv_util=0.001 lg_util=0.750 mode=http resp_bytes=120.0 "
		 "reconnects=2\n",
		 q_us(&h, 0.5), q_us(&h, 0.99), q_us(&h, 0.999));
	assert_non_null(strstr(out, want));
	assert_null(strstr(out, "first error"));
	free(out);

	s.cpu.measured = false;
	s.cpu.pid = 4242;
	out = render(&s, false);
	assert_non_null(strstr(out, "  server cpu   not measured: pid 4242 "
				    "ended during the run\n"));
	free(out);
	s.cpu.pid = 0;
	s.errors = 3;
	strcpy(s.first_error, "echo reply differs at byte 7");
	out = render(&s, false);
	assert_non_null(strstr(out, "not measured"));
	assert_non_null(strstr(out, "  first error  echo reply differs at "
				    "byte 7\n"));
	assert_non_null(strstr(out, " cpu_us_per_req=NA errors=3 "));
	assert_non_null(strstr(out, " srv_util=NA "));
	free(out);
}

static void test_probe_load_report_json(void **state)
{
	struct load_summary s;
	struct hist h;
	char *out, want[512];

	summary(&s, &h);
	s.errors = 1;
	strcpy(s.first_error, "a \"quoted\" reason");
	out = render(&s, true);
	assert_non_null(strstr(out, "{\"url\":\"http://127.0.0.1:8080/\","
				    "\"name\":\"lg\",\"mode\":\"http\","));
	assert_non_null(strstr(out, "\"requests\":100,\"errors\":1,"));
	assert_non_null(strstr(out, "\"requests_per_second\":50.0,"));
	snprintf(want, sizeof(want),
		 "\"latency_us\":{\"min\":1.0,"
		 "\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,"
		 "\"max\":100.0,\"mean\":50.5}",
		 q_us(&h, 0.5), q_us(&h, 0.9), q_us(&h, 0.99), q_us(&h, 0.999));
	assert_non_null(strstr(out, want));
	assert_non_null(strstr(out, "\"server_cpu_us_per_request\":10.000"));
	assert_non_null(strstr(out, "\"first_error\":\"a \\\"quoted\\\" "
				    "reason\"}\n"));
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_probe_load_parse_stat),
		cmocka_unit_test(test_probe_load_proc_cpu_counts_children),
		cmocka_unit_test(test_probe_load_report_text),
		cmocka_unit_test(test_probe_load_report_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
