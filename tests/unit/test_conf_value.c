/* Unit tests for conf_value.c: each parser's accepted forms, refusals with
 * their exact messages, bounds, overflow. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "daemon/conf_value.h"

static char err[512];

static int64_t int_ok(const char *s, int64_t min, int64_t max)
{
	int64_t v = -12345;

	err[0] = '\0';
	assert_int_equal(conf_parse_int(s, min, max, &v, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	return v;
}

static void int_bad(const char *s, int64_t min, int64_t max, const char *msg)
{
	int64_t v = -12345;

	assert_int_equal(conf_parse_int(s, min, max, &v, err, sizeof(err)), -1);
	assert_string_equal(err, msg);
	assert_int_equal(v, -12345);
}

static void test_conf_value_int_accepts_decimal_and_bounds(void **state)
{
	assert_int_equal(int_ok("0", 0, 10), 0);
	assert_int_equal(int_ok("10", 0, 10), 10);
	assert_int_equal(int_ok("1", 1, 65535), 1);
	assert_int_equal(int_ok("65535", 1, 65535), 65535);
	assert_int_equal(int_ok("-5", -10, 10), -5);
	assert_int_equal(int_ok("+7", 0, 10), 7);
	assert_int_equal(int_ok("9223372036854775807", 0, 0), INT64_MAX);
	assert_int_equal(int_ok("-9223372036854775808", 0, 0), INT64_MIN);
}

static void test_conf_value_int_reads_leading_zero_as_decimal(void **state)
{
	assert_int_equal(int_ok("010", 0, 100), 10);
	assert_int_equal(int_ok("0660", 0, 1000), 660);
	assert_int_equal(int_ok("0099", 0, 100), 99);
	assert_int_equal(int_ok("00", 0, 10), 0);
	int_bad("0778", 0, 0777, "out of range: 0778 (0..511)");
	int_bad("0x10", 0, 0, "not a number: '0x10'");
}

static int64_t mode_ok(const char *s)
{
	int64_t v = -1;

	err[0] = '\0';
	assert_int_equal(conf_parse_mode(s, 0777, &v, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	return v;
}

static void mode_bad(const char *s, const char *msg)
{
	int64_t v = -12345;

	assert_int_equal(conf_parse_mode(s, 0777, &v, err, sizeof(err)), -1);
	assert_string_equal(err, msg);
	assert_int_equal(v, -12345);
}

static void test_conf_value_mode_is_octal_with_or_without_zero(void **state)
{
	assert_int_equal(mode_ok("0660"), 0660);
	assert_int_equal(mode_ok("660"), 0660);
	assert_int_equal(mode_ok("0777"), 0777);
	assert_int_equal(mode_ok("0"), 0);
	assert_int_equal(mode_ok("00007"), 07);
	mode_bad("0778", "not an octal file mode: '0778'");
	mode_bad("01000", "out of range: 01000 (0..0777)");
	mode_bad("", "not an octal file mode: ''");
	mode_bad("-1", "not an octal file mode: '-1'");
	mode_bad("+660", "not an octal file mode: '+660'");
	mode_bad("0o660", "not an octal file mode: '0o660'");
	mode_bad("77777777777777777777777", "out of range: "
		 "77777777777777777777777 (0..0777)");
}

static void test_conf_value_int_refuses_junk_and_range(void **state)
{
	int_bad("abc", 1, 65535, "not a number: 'abc'");
	int_bad("", 1, 65535, "not a number: ''");
	int_bad("12abc", 1, 65535, "not a number: '12abc'");
	int_bad(" 12", 1, 65535, "not a number: ' 12'");
	int_bad("12 ", 1, 65535, "not a number: '12 '");
	int_bad("-", 0, 0, "not a number: '-'");
	int_bad("1.5", 0, 0, "not a number: '1.5'");
	int_bad("70000", 1, 65535, "out of range: 70000 (1..65535)");
	int_bad("0", 1, 65535, "out of range: 0 (1..65535)");
	int_bad("-1", 0, 10, "out of range: -1 (0..10)");
	int_bad("9223372036854775808", 0, 0,
		"out of range: 9223372036854775808");
	int_bad("99999999999999999999999", 1, 10,
		"out of range: 99999999999999999999999 (1..10)");
}

static void test_conf_value_bool_forms(void **state)
{
	static const char *const yes[] = { "yes", "true", "on", "1", "YES" };
	static const char *const no[] = { "no", "false", "off", "0", "No" };
	bool b;

	for (size_t i = 0; i < 5; i++) {
		b = false;
		assert_int_equal(conf_parse_bool(yes[i], &b, err, sizeof(err)),
				 0);
		assert_true(b);
		assert_int_equal(conf_parse_bool(no[i], &b, err, sizeof(err)),
				 0);
		assert_false(b);
	}
	assert_int_equal(conf_parse_bool("maybe", &b, err, sizeof(err)), -1);
	assert_string_equal(err, "expected yes or no: 'maybe'");
	assert_int_equal(conf_parse_bool("", &b, err, sizeof(err)), -1);
	assert_string_equal(err, "expected yes or no: ''");
}

static int64_t dur_ok(const char *s, int64_t min, int64_t max)
{
	int64_t v = -1;

	assert_int_equal(conf_parse_duration(s, min, max, &v, err, sizeof(err)),
			 0);
	return v;
}

static void dur_bad(const char *s, int64_t min, int64_t max, const char *msg)
{
	int64_t v = -1;

	assert_int_equal(conf_parse_duration(s, min, max, &v, err, sizeof(err)),
			 -1);
	assert_string_equal(err, msg);
	assert_int_equal(v, -1);
}

static void test_conf_value_duration_units(void **state)
{
	assert_int_equal(dur_ok("250ms", 0, 0), 250);
	assert_int_equal(dur_ok("10s", 0, 0), 10000);
	assert_int_equal(dur_ok("5m", 0, 0), 300000);
	assert_int_equal(dur_ok("1h", 0, 0), 3600000);
	assert_int_equal(dur_ok("7", 0, 0), 7000);
	assert_int_equal(dur_ok("0", 0, 3600000), 0);
	assert_int_equal(dur_ok("3600s", 0, 3600000), 3600000);
}

static void test_conf_value_duration_refusals(void **state)
{
	dur_bad("5x", 0, 0, "unknown unit 'x' in '5x' (use ms, s, m, h)");
	dur_bad("5 s", 0, 0, "unknown unit ' s' in '5 s' (use ms, s, m, h)");
	dur_bad("5S", 0, 0, "unknown unit 'S' in '5S' (use ms, s, m, h)");
	dur_bad("abc", 0, 0, "not a duration: 'abc'");
	dur_bad("", 0, 0, "not a duration: ''");
	dur_bad("-1s", 0, 0, "not a duration: '-1s'");
	dur_bad("2h", 0, 3600000, "out of range: 2h (0..1h)");
	dur_bad("3601s", 0, 3600000, "out of range: 3601s (0..1h)");
	dur_bad("100ms", 1500, 90000, "out of range: 100ms (1500ms..90s)");
	dur_bad("9223372036854775807h", 0, 0,
		"out of range: 9223372036854775807h");
	dur_bad("99999999999999999999s", 0, 0,
		"out of range: 99999999999999999999s");
}

static void test_conf_value_size_units(void **state)
{
	int64_t v = 0;

	assert_int_equal(conf_parse_size("512", 0, 0, &v, err, sizeof(err)), 0);
	assert_int_equal(v, 512);
	assert_int_equal(conf_parse_size("64k", 0, 0, &v, err, sizeof(err)), 0);
	assert_int_equal(v, 65536);
	assert_int_equal(conf_parse_size("64K", 0, 0, &v, err, sizeof(err)), 0);
	assert_int_equal(v, 65536);
	assert_int_equal(conf_parse_size("1m", 0, 0, &v, err, sizeof(err)), 0);
	assert_int_equal(v, 1048576);
	assert_int_equal(conf_parse_size("1g", 0, 0, &v, err, sizeof(err)), 0);
	assert_int_equal(v, 1073741824);
	assert_int_equal(conf_parse_size("3G", 0, 0, &v, err, sizeof(err)), 0);
	assert_int_equal(v, 3221225472);
	assert_int_equal(conf_parse_size("1t", 0, 0, &v, err, sizeof(err)), 0);
	assert_int_equal(v, 1099511627776);
	assert_int_equal(conf_parse_size("1p", 0, 0, &v, err, sizeof(err)), -1);
	assert_string_equal(err, "unknown unit 'p' in '1p' (use k, m, g, t)");
	assert_int_equal(conf_parse_size("5000000t", 0, 0, &v, err,
					 sizeof(err)), 0);
	assert_int_equal(conf_parse_size("9000000t", 0, 0, &v, err,
					 sizeof(err)), -1);
	assert_string_equal(err, "out of range: 9000000t");
	assert_int_equal(conf_parse_size("2M", 0, 0, &v, err, sizeof(err)), 0);
	assert_int_equal(v, 2097152);
	assert_int_equal(conf_parse_size("k", 0, 0, &v, err, sizeof(err)), -1);
	assert_string_equal(err, "not a size: 'k'");
	assert_int_equal(conf_parse_size("2m", 1024, 1048576, &v, err,
					 sizeof(err)), -1);
	assert_string_equal(err, "out of range: 2m (1k..1m)");
	assert_int_equal(conf_parse_size("9007199254740992m", 0, 0, &v, err,
					 sizeof(err)), -1);
	assert_string_equal(err, "out of range: 9007199254740992m");
	assert_int_equal(v, 2097152);
}

static void test_conf_value_enum_choices(void **state)
{
	static const char *const c[] = { "auto", "io_uring", "epoll", NULL };
	int v = -1;

	assert_int_equal(conf_parse_enum("epoll", c, &v, err, sizeof(err)), 0);
	assert_int_equal(v, 2);
	assert_int_equal(conf_parse_enum("auto", c, &v, err, sizeof(err)), 0);
	assert_int_equal(v, 0);
	assert_int_equal(conf_parse_enum("fast", c, &v, err, sizeof(err)), -1);
	assert_string_equal(err,
			    "expected one of auto, io_uring, epoll: 'fast'");
	assert_int_equal(conf_parse_enum("EPOLL", c, &v, err, sizeof(err)), -1);
	assert_int_equal(v, 0);
}

struct every {
	char *s;
	int64_t i;
	bool b;
	int e;
	char *p;
};

static const char *const every_choices[] = { "a", "b", NULL };

static void test_conf_value_parse_stores_by_type(void **state)
{
	struct ringd_key k[] = {
		{ .name = "s", .type = RINGD_KEY_STRING,
		  .offset = offsetof(struct every, s) },
		{ .name = "i", .type = RINGD_KEY_DURATION, .max = 60000,
		  .offset = offsetof(struct every, i) },
		{ .name = "b", .type = RINGD_KEY_BOOL,
		  .offset = offsetof(struct every, b) },
		{ .name = "e", .type = RINGD_KEY_ENUM, .choices = every_choices,
		  .offset = offsetof(struct every, e) },
		{ .name = "p", .type = RINGD_KEY_PATH,
		  .offset = offsetof(struct every, p) },
	};
	struct every v = { 0 };

	assert_int_equal(conf_value_parse(&k[0], "hi", &v, err, sizeof(err)), 0);
	assert_int_equal(conf_value_parse(&k[1], "2s", &v, err, sizeof(err)), 0);
	assert_int_equal(conf_value_parse(&k[2], "on", &v, err, sizeof(err)), 0);
	assert_int_equal(conf_value_parse(&k[3], "b", &v, err, sizeof(err)), 0);
	assert_int_equal(conf_value_parse(&k[4], "/x", &v, err, sizeof(err)), 0);
	assert_string_equal(v.s, "hi");
	assert_int_equal(v.i, 2000);
	assert_true(v.b);
	assert_int_equal(v.e, 1);
	assert_string_equal(v.p, "/x");
	assert_int_equal(conf_value_parse(&k[1], "2m", &v, err, sizeof(err)),
			 -1);
	assert_string_equal(err, "out of range: 2m (0..1m)");
	assert_int_equal(v.i, 2000);
	for (size_t i = 0; i < 5; i++)
		conf_value_free(&k[i], &v);
	assert_null(v.s);
	assert_null(v.p);
	assert_int_equal(conf_value_size(RINGD_KEY_ENUM), sizeof(int));
	assert_int_equal(conf_value_size((enum ringd_key_type)42), 0);
}

static void describe(const struct ringd_key *k, const char *want)
{
	char buf[256];

	conf_key_describe(k, buf, sizeof(buf));
	assert_string_equal(buf, want);
}

static void test_conf_value_describe_keys(void **state)
{
	static const char *const be[] = { "auto", "io_uring", "epoll", NULL };
	struct ringd_key k = { .name = "x" };

	k = (struct ringd_key){ .type = RINGD_KEY_DURATION, .def = "60s",
				.max = 3600000 };
	describe(&k, "duration, default 60s, 0..1h");
	k = (struct ringd_key){ .type = RINGD_KEY_ENUM, .def = "auto",
				.choices = be };
	describe(&k, "enum auto|io_uring|epoll, default auto");
	k = (struct ringd_key){ .type = RINGD_KEY_STRING };
	describe(&k, "string, required");
	k = (struct ringd_key){ .type = RINGD_KEY_STRING, .def = "" };
	describe(&k, "string, default \"\"");
	k = (struct ringd_key){ .type = RINGD_KEY_INT, .def = "010",
				.max = 0777 };
	describe(&k, "int, default 010, 0..511");
	k = (struct ringd_key){ .type = RINGD_KEY_INT, .def = "65536", .min = 1,
				.max = 1048576 };
	describe(&k, "int, default 65536, 1..1048576");
	k = (struct ringd_key){ .type = RINGD_KEY_SIZE, .def = "4k",
				.min = 1024, .max = 1048576 };
	describe(&k, "size, default 4k, 1k..1m");
	k = (struct ringd_key){ .type = RINGD_KEY_BOOL, .def = "no" };
	describe(&k, "bool, default no");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_conf_value_int_accepts_decimal_and_bounds),
		cmocka_unit_test(test_conf_value_int_reads_leading_zero_as_decimal),
		cmocka_unit_test(test_conf_value_mode_is_octal_with_or_without_zero),
		cmocka_unit_test(test_conf_value_int_refuses_junk_and_range),
		cmocka_unit_test(test_conf_value_bool_forms),
		cmocka_unit_test(test_conf_value_duration_units),
		cmocka_unit_test(test_conf_value_duration_refusals),
		cmocka_unit_test(test_conf_value_size_units),
		cmocka_unit_test(test_conf_value_enum_choices),
		cmocka_unit_test(test_conf_value_parse_stores_by_type),
		cmocka_unit_test(test_conf_value_describe_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
