/* Logging: plain level words or journald "<N>" prefixes, level filtering,
 * log_warn's error= field, quoting of field values, the once-per-interval
 * limit, truncation of long messages and one write
 * per line. Stderr is a packet socket here, so each write is a record. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/log.h"

/* cap[0] reads what log.c writes to cap[1], which is stderr during a test.
 * SOCK_SEQPACKET keeps write boundaries without SOCK_DGRAM's small queue
 * limit, so a sanitizer report written there cannot block. */
static int cap[2] = { -1, -1 };
static int saved_stderr = -1;
static char line[8192];

/* Called by AddressSanitizer before its report, which must reach the real
 * stderr; without ASan nothing calls it. */
void __asan_on_error(void);
void __asan_on_error(void)
{
	if (saved_stderr >= 0)
		dup2(saved_stderr, STDERR_FILENO);
}

static int stderr_capture(void **state)
{
	(void)state;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, cap) < 0)
		return -1;
	saved_stderr = dup(STDERR_FILENO);
	if (saved_stderr < 0 || dup2(cap[1], STDERR_FILENO) < 0)
		return -1;
	unsetenv("JOURNAL_STREAM");
	log_init(RINGD_LOG_INFO);
	return 0;
}

static int stderr_restore(void **state)
{
	(void)state;
	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	saved_stderr = -1;
	close(cap[0]);
	close(cap[1]);
	unsetenv("JOURNAL_STREAM");
	log_init(RINGD_LOG_INFO);
	return 0;
}

/* The next record written to stderr, NUL-terminated; its length, or -1
 * when nothing was written. Writes are synchronous, so never wait. */
static ssize_t next_write(void)
{
	ssize_t n = recv(cap[0], line, sizeof(line) - 1, MSG_DONTWAIT);

	if (n < 0) {
		assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
		line[0] = '\0';
		return -1;
	}
	line[n] = '\0';
	return n;
}

/* The next write must be exactly this line, and the only write. */
static void expect_line(const char *want)
{
	ssize_t n = next_write();

	assert_int_equal(n, (ssize_t)strlen(want));
	assert_string_equal(line, want);
	assert_int_equal(next_write(), -1);
}

static void expect_nothing(void)
{
	assert_int_equal(next_write(), -1);
}

/* JOURNAL_STREAM as systemd sets it: "device:inode" of our stderr. */
static void set_journal_stream(void)
{
	struct stat st;
	char val[64];

	assert_int_equal(fstat(STDERR_FILENO, &st), 0);
	snprintf(val, sizeof(val), "%ju:%ju", (uintmax_t)st.st_dev,
		 (uintmax_t)st.st_ino);
	assert_int_equal(setenv("JOURNAL_STREAM", val, 1), 0);
}

static void test_log_plain_style(void **state)
{
	(void)state;
	log_init(RINGD_LOG_DEBUG);
	log_err("echo: bind %s: %s", "0.0.0.0:7", "Permission denied");
	expect_line("error: echo: bind 0.0.0.0:7: Permission denied\n");
	log_warnx("conf: key %d", 3);
	expect_line("warning: conf: key 3\n");
	log_notice("loop: using %s", "epoll");
	expect_line("notice: loop: using epoll\n");
	log_info("ringd: ready svc=%s", "echo");
	expect_line("info: ringd: ready svc=echo\n");
	log_debug("conn: open fd=%d", 9);
	expect_line("debug: conn: open fd=9\n");
}

static void test_log_empty_journal_stream_is_plain(void **state)
{
	(void)state;
	assert_int_equal(setenv("JOURNAL_STREAM", "", 1), 0);
	log_init(RINGD_LOG_INFO);
	log_info("x");
	expect_line("info: x\n");
}

static void test_log_journal_stream_of_another_stream_is_plain(void **state)
{
	(void)state;
	/* Inherited from a parent whose stderr was the journal: not ours. */
	assert_int_equal(setenv("JOURNAL_STREAM", "8:123456789", 1), 0);
	log_init(RINGD_LOG_INFO);
	log_info("x");
	expect_line("info: x\n");
	assert_int_equal(setenv("JOURNAL_STREAM", "garbage", 1), 0);
	log_init(RINGD_LOG_INFO);
	log_info("y");
	expect_line("info: y\n");
}

static void test_log_control_characters_cannot_forge_lines(void **state)
{
	(void)state;
	log_init(RINGD_LOG_INFO);
	log_err("qotd: %s: bad", "/tmp/a\nerror: forged\x1b[2J\tx");
	expect_line("error: qotd: /tmp/a?error: forged?[2J x: bad\n");
	set_journal_stream();
	log_init(RINGD_LOG_INFO);
	log_warnx("a\rb");
	expect_line("<4>a?b\n");
}

static void test_log_journal_prefix(void **state)
{
	(void)state;
	set_journal_stream();
	log_init(RINGD_LOG_DEBUG);
	log_err("a");
	expect_line("<3>a\n");
	log_warnx("b");
	expect_line("<4>b\n");
	log_notice("c");
	expect_line("<5>c\n");
	log_info("d svc=%s", "qotd");
	expect_line("<6>d svc=qotd\n");
	log_debug("e");
	expect_line("<7>e\n");
	errno = EACCES;
	log_warn("f");
	expect_line("<4>f error=\"Permission denied\"\n");

	/* The style is chosen by log_init(), not at every message. */
	unsetenv("JOURNAL_STREAM");
	log_info("g");
	expect_line("<6>g\n");
	log_init(RINGD_LOG_INFO);
	log_info("h");
	expect_line("info: h\n");
}

static void test_log_level_filter(void **state)
{
	(void)state;
	log_init(RINGD_LOG_INFO);
	assert_int_equal(log_level(), RINGD_LOG_INFO);
	log_debug("dropped");
	expect_nothing();
	log_info("kept");
	expect_line("info: kept\n");

	log_set_level(RINGD_LOG_DEBUG);
	assert_int_equal(log_level(), RINGD_LOG_DEBUG);
	log_debug("now kept");
	expect_line("debug: now kept\n");

	log_set_level(RINGD_LOG_ERR);
	assert_int_equal(log_level(), RINGD_LOG_ERR);
	log_info("dropped");
	log_notice("dropped");
	log_warnx("dropped");
	errno = ENOENT;
	log_warn("dropped");
	expect_nothing();
	log_err("kept");
	expect_line("error: kept\n");

	log_set_level(RINGD_LOG_WARNING);
	log_notice("dropped");
	expect_nothing();
	log_warn("kept");
	assert_true(next_write() > 0);
	assert_memory_equal(line, "warning: kept error=", 20);
}

static void test_log_warn_appends_strerror(void **state)
{
	char want[256];
	int after;

	(void)state;
	errno = ENOENT;
	log_warn("conf: open %s", "/etc/ringd/x.ini");
	/* errno survives, so a caller may log it again or return it. */
	after = errno;
	snprintf(want, sizeof(want),
		 "warning: conf: open /etc/ringd/x.ini error=\"%s\"\n",
		 strerror(ENOENT));
	expect_line(want);
	assert_string_equal(want, "warning: conf: open /etc/ringd/x.ini "
				  "error=\"No such file or directory\"\n");
	assert_int_equal(after, ENOENT);

	/* log_warnx has no suffix even when errno is set. */
	errno = ENOENT;
	log_warnx("conf: open %s", "x");
	expect_line("warning: conf: open x\n");
}

static void test_log_preserves_errno(void **state)
{
	int ro;

	(void)state;
	errno = EPIPE;
	log_info("a");
	assert_int_equal(errno, EPIPE);
	log_debug("filtered");
	assert_int_equal(errno, EPIPE);
	/* Even when the write itself fails (EBADF on a read-only stderr). */
	ro = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_true(ro >= 0);
	assert_int_equal(dup2(ro, STDERR_FILENO), STDERR_FILENO);
	close(ro);
	errno = EPIPE;
	log_err("nobody reads this");
	assert_int_equal(errno, EPIPE);
	log_warn("nor this");
	assert_int_equal(errno, EPIPE);
}

/* A line that fits, or the cut one: the prefix, the fill, perhaps (part
 * of) an error="strerror" field, one '\n' at the end and no NUL, in no more
 * than the 2048-byte line buffer. */
static void check_line(ssize_t n, const char *prefix, char fill)
{
	size_t plen = strlen(prefix);
	ssize_t i = (ssize_t)plen;

	assert_true(n > (ssize_t)plen);
	assert_true(n <= 2048);
	assert_memory_equal(line, prefix, plen);
	assert_int_equal(strlen(line), (size_t)n);
	assert_ptr_equal(strchr(line, '\n'), line + n - 1);
	while (i < n - 1 && line[i] == fill)
		i++;
	if (i < n - 1)
		assert_int_equal(line[i], ' ');
}

static void test_log_truncates_long_message(void **state)
{
	static char msg[6000];
	size_t len;
	ssize_t n;

	(void)state;
	memset(msg, 'a', sizeof(msg) - 1);
	log_info("%s", msg);
	n = next_write();
	check_line(n, "info: ", 'a');
	/* Cut, not lost: the line is as long as the buffer allows. */
	assert_true(n >= 2040);
	expect_nothing();

	/* Around the limit, with and without the strerror suffix and with the
	 * journald prefix, the line is cut cleanly and never split. */
	for (len = 2000; len < 2100; len++) {
		msg[len] = '\0';
		log_info("%s", msg);
		check_line(next_write(), "info: ", 'a');
		expect_nothing();
		errno = EADDRINUSE;
		log_warn("%s", msg);
		check_line(next_write(), "warning: ", 'a');
		expect_nothing();
		msg[len] = 'a';
	}
	set_journal_stream();
	log_init(RINGD_LOG_INFO);
	log_err("%s", msg);
	check_line(next_write(), "<3>", 'a');
	expect_nothing();
}

static void test_log_value_quotes_when_needed(void **state)
{
	char b[LOG_VALUE_MAX], small[8];

	(void)state;
	assert_string_equal(log_value(b, sizeof(b), "echo"), "echo");
	assert_string_equal(log_value(b, sizeof(b), "tcp://127.0.0.1:7"),
			    "tcp://127.0.0.1:7");
	assert_string_equal(log_value(b, sizeof(b), "Permission denied"),
			    "\"Permission denied\"");
	assert_string_equal(log_value(b, sizeof(b), ""), "\"\"");
	assert_string_equal(log_value(b, sizeof(b), "a=b"), "\"a=b\"");
	/* A control character never reaches the line as it is: a newline
	 * would start a forged line of its own. */
	assert_string_equal(log_value(b, sizeof(b), "tab\there"),
			    "\"tab\\there\"");
	assert_string_equal(log_value(b, sizeof(b), "x\ninfo: forged\r"),
			    "\"x\\ninfo: forged\\r\"");
	assert_string_equal(log_value(b, sizeof(b), "nul\x01" "del\x7f"),
			    "\"nul\\x01del\\x7f\"");
	assert_string_equal(log_value(small, sizeof(small), "ab\x01" "cd"),
			    "\"ab\"");
	assert_string_equal(log_value(b, sizeof(b), "say \"hi\" \\o/"),
			    "\"say \\\"hi\\\" \\\\o/\"");
	/* Cut to fit, the closing quote kept; an escape is never split. */
	assert_string_equal(log_value(small, sizeof(small), "a b c d e"),
			    "\"a b c\"");
	assert_string_equal(log_value(small, sizeof(small), "ab \"\"\"\""),
			    "\"ab \\\"\"");
	assert_string_equal(log_value(small, sizeof(small), "abcdefghij"),
			    "abcdefg");
	assert_string_equal(log_value(small, 2, "a b"), "");
	/* Used as the value of a field, a quoted value stays one word for
	 * logfmt readers. */
	log_info("x: y error=%s", log_value(b, sizeof(b), "No route"));
	expect_line("info: x: y error=\"No route\"\n");
}

static void test_log_limit_counts_what_it_held_back(void **state)
{
	struct log_limit ll = { 0 };
	uint64_t held = 99;

	(void)state;
	/* The first line always goes, even at time 0. */
	assert_true(log_limit_take(&ll, 0, 100, &held));
	assert_int_equal(held, 0);
	assert_false(log_limit_take(&ll, 50, 100, &held));
	assert_false(log_limit_take(&ll, 99, 100, &held));
	assert_true(log_limit_take(&ll, 100, 100, &held));
	assert_int_equal(held, 2);
	assert_false(log_limit_take(&ll, 150, 100, &held));
	/* After a quiet spell the next line goes at once, with the count. */
	assert_true(log_limit_take(&ll, 10000, 100, &held));
	assert_int_equal(held, 1);
	assert_true(log_limit_take(&ll, 20000, 100, &held));
	assert_int_equal(held, 0);
}

static void test_log_one_write_per_line(void **state)
{
	int i;

	(void)state;
	/* Each message is one write ending in exactly one '\n', so lines
	 * from several threads cannot interleave. */
	for (i = 0; i < 3; i++) {
		errno = ECONNRESET;
		log_warn("conn: recv peer=%s fd=%d", "127.0.0.1:5131", i);
		assert_true(next_write() > 0);
		assert_non_null(strstr(line, "fd="));
		assert_non_null(strstr(line, strerror(ECONNRESET)));
		assert_ptr_equal(strchr(line, '\n'), line + strlen(line) - 1);
		expect_nothing();
	}
	log_info("%s", "");
	expect_line("info: \n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_log_value_quotes_when_needed,
						stderr_capture, stderr_restore),
		cmocka_unit_test_setup_teardown(test_log_limit_counts_what_it_held_back,
						stderr_capture, stderr_restore),
		cmocka_unit_test_setup_teardown(test_log_plain_style,
						stderr_capture, stderr_restore),
		cmocka_unit_test_setup_teardown(
			test_log_empty_journal_stream_is_plain, stderr_capture,
			stderr_restore),
		cmocka_unit_test_setup_teardown(
			test_log_journal_stream_of_another_stream_is_plain,
			stderr_capture, stderr_restore),
		cmocka_unit_test_setup_teardown(
			test_log_control_characters_cannot_forge_lines,
			stderr_capture, stderr_restore),
		cmocka_unit_test_setup_teardown(test_log_journal_prefix,
						stderr_capture, stderr_restore),
		cmocka_unit_test_setup_teardown(test_log_level_filter,
						stderr_capture, stderr_restore),
		cmocka_unit_test_setup_teardown(test_log_warn_appends_strerror,
						stderr_capture, stderr_restore),
		cmocka_unit_test_setup_teardown(test_log_preserves_errno,
						stderr_capture, stderr_restore),
		cmocka_unit_test_setup_teardown(test_log_truncates_long_message,
						stderr_capture, stderr_restore),
		cmocka_unit_test_setup_teardown(test_log_one_write_per_line,
						stderr_capture, stderr_restore),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
