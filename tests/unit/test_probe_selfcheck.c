/* ringd-probe --config: a ringd.ini into targets. Every plugin and
 * transport, wildcards through loopback, IPv6, unix: sockets, http's
 * endpoint paths (a disabled healthz included), what is skipped, and
 * the FILE:LINE errors. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "probe/selfcheck.h"

/* Writes text to a fresh file; the caller unlinks and frees the name. */
static char *ini_file(const char *text)
{
	char *path = strdup("/tmp/test_probe_selfcheck.XXXXXX");
	int fd;

	assert_non_null(path);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

/* Loads text; returns 0 with *sc filled, or -1 with the error in err
 * (its file name replaced by "F" so cases can spell it). */
static int load(const char *text, struct selfcheck *sc, char *err,
		size_t len)
{
	char *path = ini_file(text), raw[1024] = "";
	int rc = selfcheck_load(path, sc, raw, sizeof(raw));
	size_t n = strlen(path);

	if (rc < 0) {
		assert_memory_equal(raw, path, n);
		snprintf(err, len, "F%s", raw + n);
	}
	unlink(path);
	free(path);
	return rc;
}

static void target_is(const struct selfcheck *sc, size_t i,
		      enum probe_proto proto, bool udp, const char *host,
		      const char *port, const char *path, const char *label)
{
	const struct probe_target *t;

	assert_true(i < sc->n);
	t = &sc->v[i].t;
	assert_int_equal(t->proto, proto);
	assert_int_equal(t->udp, udp);
	assert_string_equal(t->host, host);
	assert_string_equal(t->port, port);
	assert_string_equal(t->path, path);
	assert_string_equal(t->url, label);
	assert_null(sc->v[i].why);
}

static void test_probe_selfcheck_every_plugin(void **state)
{
	struct selfcheck sc;
	char err[1024];

	assert_int_equal(load("[ringd]\nworkers = 2\n"
			      "[echo]\n"
			      "listen = tcp://127.0.0.1:7007, udp://127.0.0.1:7007\n"
			      "listen = tcp://[::1]:7007\n"
			      "[daytime]\nplugin = time\nformat = daytime\n"
			      "listen = tcp://127.0.0.1:13 udp://[::1]:13\n"
			      "[time]\nlisten = udp://127.0.0.1:37\n"
			      "[quotes]\nplugin = qotd\n"
			      "listen = udp://127.0.0.1:17,\n tcp://127.0.0.1:17\n"
			      "[discard]\nlisten = tcp://127.0.0.1:9, udp://127.0.0.1:9\n"
			      "[chargen]\nallow_udp = yes\n"
			      "listen = udp://127.0.0.1:19, tcp://127.0.0.1:19\n"
			      "[http]\nlisten = tcp://127.0.0.1:8080\n"
			      "[hang]\nlisten = tcp://127.0.0.1:99\n",
			      &sc, err, sizeof(err)), 0);
	assert_int_equal(sc.n, 11);
	target_is(&sc, 0, PROBE_ECHO, false, "127.0.0.1", "7007", "",
		  "[echo] echo://127.0.0.1:7007");
	target_is(&sc, 1, PROBE_ECHO, true, "127.0.0.1", "7007", "",
		  "[echo] echo+udp://127.0.0.1:7007");
	target_is(&sc, 2, PROBE_ECHO, false, "::1", "7007", "",
		  "[echo] echo://[::1]:7007");
	target_is(&sc, 3, PROBE_DAYTIME, false, "127.0.0.1", "13", "",
		  "[daytime] daytime://127.0.0.1:13");
	target_is(&sc, 4, PROBE_DAYTIME, true, "::1", "13", "",
		  "[daytime] daytime+udp://[::1]:13");
	/* time's format defaults to RFC 868. */
	target_is(&sc, 5, PROBE_TIME, true, "127.0.0.1", "37", "",
		  "[time] time+udp://127.0.0.1:37");
	/* A continued listen line, in file order. */
	target_is(&sc, 6, PROBE_QOTD, true, "127.0.0.1", "17", "",
		  "[quotes] qotd+udp://127.0.0.1:17");
	target_is(&sc, 7, PROBE_QOTD, false, "127.0.0.1", "17", "",
		  "[quotes] qotd://127.0.0.1:17");
	target_is(&sc, 8, PROBE_DISCARD, false, "127.0.0.1", "9", "",
		  "[discard] discard://127.0.0.1:9");
	target_is(&sc, 9, PROBE_CHARGEN, false, "127.0.0.1", "19", "",
		  "[chargen] chargen://127.0.0.1:19");
	target_is(&sc, 10, PROBE_HTTP, false, "127.0.0.1", "8080", "/healthz",
		  "[http] http://127.0.0.1:8080/healthz");
	assert_false(sc.v[10].any_status);
	/* discard's and chargen's udp://, and the unknown plugin's tcp://. */
	assert_int_equal(sc.skipped, 3);
	selfcheck_free(&sc);
}

static void test_probe_selfcheck_wildcards_unix(void **state)
{
	struct selfcheck sc;
	char err[1024];

	assert_int_equal(load("[echo]\n"
			      "listen = tcp://*:7, udp://*:7, tcp://0.0.0.0:8\n"
			      "listen = udp://0.0.0.0:8, tcp://[::]:9, udp://[::]:9\n"
			      "listen = unix:/run/ringd/echo.sock, unix:rel.sock\n"
			      "[web]\nplugin = http\nlisten = unix:/run/h.sock\n"
			      "[zero]\nplugin = echo\nlisten = tcp://127.0.0.1:0\n",
			      &sc, err, sizeof(err)), 0);
	assert_int_equal(sc.n, 10);
	target_is(&sc, 0, PROBE_ECHO, false, "127.0.0.1", "7", "",
		  "[echo] echo://127.0.0.1:7");
	target_is(&sc, 1, PROBE_ECHO, true, "127.0.0.1", "7", "",
		  "[echo] echo+udp://127.0.0.1:7");
	target_is(&sc, 2, PROBE_ECHO, false, "127.0.0.1", "8", "",
		  "[echo] echo://127.0.0.1:8");
	target_is(&sc, 3, PROBE_ECHO, true, "127.0.0.1", "8", "",
		  "[echo] echo+udp://127.0.0.1:8");
	/* [::] is IPv6 only (IPV6_V6ONLY): ::1, not 127.0.0.1. */
	target_is(&sc, 4, PROBE_ECHO, false, "::1", "9", "",
		  "[echo] echo://[::1]:9");
	target_is(&sc, 5, PROBE_ECHO, true, "::1", "9", "",
		  "[echo] echo+udp://[::1]:9");
	target_is(&sc, 6, PROBE_ECHO, false, "localhost", "7", "",
		  "[echo] echo://localhost via unix:/run/ringd/echo.sock");
	assert_string_equal(sc.v[6].t.unix_path, "/run/ringd/echo.sock");
	/* Relative, as ringd binds it: from the working directory. */
	assert_string_equal(sc.v[7].t.unix_path, "rel.sock");
	target_is(&sc, 8, PROBE_HTTP, false, "localhost", "80", "/healthz",
		  "[web] http://localhost/healthz via unix:/run/h.sock");
	assert_string_equal(sc.v[8].t.unix_path, "/run/h.sock");
	/* Port 0 cannot be found from the file: UNKNOWN, not skipped. */
	assert_string_equal(sc.v[9].t.url, "[zero] echo://127.0.0.1:0");
	assert_non_null(sc.v[9].why);
	assert_int_equal(sc.skipped, 0);
	assert_int_equal(sc.v[0].t.unix_path[0], '\0');
	selfcheck_free(&sc);
}

static void test_probe_selfcheck_http_paths(void **state)
{
	struct selfcheck sc;
	char err[1024];

	assert_int_equal(load("[a]\nplugin = http\nhealthz = /live\n"
			      "listen = tcp://127.0.0.1:1\n"
			      "[b]\nplugin = http\nhealthz =\n"
			      "listen = tcp://127.0.0.1:2\n"
			      "[c]\nplugin = http\nhealthz =\nreadyz =\n"
			      "listen = tcp://127.0.0.1:3\n"
			      "[d]\nplugin = http\nhealthz =\nreadyz =\n"
			      "metrics =\nlisten = tcp://[::1]:4\n",
			      &sc, err, sizeof(err)), 0);
	assert_int_equal(sc.n, 4);
	target_is(&sc, 0, PROBE_HTTP, false, "127.0.0.1", "1", "/live",
		  "[a] http://127.0.0.1:1/live");
	/* healthz disabled: readyz, then metrics, then / with any status. */
	target_is(&sc, 1, PROBE_HTTP, false, "127.0.0.1", "2", "/readyz",
		  "[b] http://127.0.0.1:2/readyz");
	target_is(&sc, 2, PROBE_HTTP, false, "127.0.0.1", "3", "/metrics",
		  "[c] http://127.0.0.1:3/metrics");
	target_is(&sc, 3, PROBE_HTTP, false, "::1", "4", "/",
		  "[d] http://[::1]:4/");
	assert_false(sc.v[0].any_status || sc.v[1].any_status ||
		     sc.v[2].any_status);
	assert_true(sc.v[3].any_status);
	selfcheck_free(&sc);
}

static void error_is(const char *text, const char *want)
{
	struct selfcheck sc;
	char err[1024];

	assert_int_equal(load(text, &sc, err, sizeof(err)), -1);
	assert_string_equal(err, want);
	assert_int_equal(sc.n, 0);
	assert_null(sc.v);
	selfcheck_free(&sc);
}

static void test_probe_selfcheck_errors(void **state)
{
	struct selfcheck sc;
	char err[1024];

	error_is("[echo]\nlisten = tcp://127.0.0.1:7\nlisten = tcp://1.2.3:7\n",
		 "F:3: [echo] listen: not a numeric address: '1.2.3' (use "
		 "127.0.0.1 or [::1])");
	error_is("[echo]\nlisten = tcp://127.0.0.1:70000\n",
		 "F:2: [echo] listen: bad port '70000' in "
		 "'tcp://127.0.0.1:70000' (0..65535)");
	error_is("[echo]\nlisten = , ,\n",
		 "F:2: [echo] listen: no address given");
	/* The first error in file order, whichever was found first. */
	error_is("[ringd]\n\n[t]\nplugin = time\nlisten = udp://nope:1\n"
		 "format = rfc868\nformat = time\n",
		 "F:5: [t] listen: not a numeric address: 'nope' (use "
		 "127.0.0.1 or [::1])");
	error_is("[t]\nplugin = time\nformat = rfc868\nlisten = udp://[::1]:1\n",
		 "F:3: [t] format: expected one of time, daytime: 'rfc868'");
	error_is("[t]\nplugin = time\nlisten = tcp://[::1]:1\nplugin = echo\n",
		 "F:4: [t] plugin: duplicate key (first at line 2)");
	error_is("[ringd]\nworkers = 2\n[echo]\nplugin = echo\n",
		 "F:3: [echo] listen: required key missing");
	error_is("[ringd]\nworkers = 2\n", "F: no services configured");
	error_is("[echo]\nlisten = tcp://127.0.0.1:7\nthis is no key line\n",
		 "F:3: expected 'key = value', '[section]' or a comment");
	error_is("[echo]\nlisten = tcp://127.0.0.1:7\n[echo]\n",
		 "F:3: [echo]: duplicate section (first at line 1)");
	error_is("[h]\nplugin = http\nhealthz = live\n"
		 "listen = tcp://127.0.0.1:1\n",
		 "F:3: [h] healthz: \"live\": a path starts with '/'");
	error_is("[h]\nplugin = http\nhealthz =\nreadyz = /a b\n"
		 "listen = tcp://127.0.0.1:1\n",
		 "F:4: [h] readyz: \"/a b\": blank or control character in "
		 "path");
	/* A file that cannot be read names the file alone. */
	assert_int_equal(selfcheck_load("/nonexistent/ringd.ini", &sc, err,
					sizeof(err)), -1);
	assert_string_equal(err, "/nonexistent/ringd.ini: cannot open: No "
				 "such file or directory");
	selfcheck_free(&sc);
	assert_int_equal(selfcheck_load("/tmp", &sc, err, sizeof(err)), -1);
	assert_string_equal(err, "/tmp: not a regular file");
	selfcheck_free(&sc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_probe_selfcheck_every_plugin),
		cmocka_unit_test(test_probe_selfcheck_wildcards_unix),
		cmocka_unit_test(test_probe_selfcheck_http_paths),
		cmocka_unit_test(test_probe_selfcheck_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
