/* The time plugin against the fake host: RFC 868 arithmetic across both
 * wraps, daytime lines in UTC and local zones, the synced-clock refusal and
 * its logging, and check() on bad daytime formats. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <ringd/plugin.h>

#include "fake_host.h"

extern const struct ringd_plugin ringd_plugin;

#define NS INT64_C(1000000000)
/* 2026-11-22 01:02:03 UTC, a Sunday. */
#define T_2026 (INT64_C(1795309323) * NS)
/* 2036-02-07 06:28:16 UTC: the first second of RFC 868 era 1. */
#define T_WRAP (INT64_C(2085978496) * NS)
/* 2024-02-29 12:34:56 UTC, a Thursday. */
#define T_LEAP (INT64_C(1709210096) * NS)

/* A test double of the host: the fake's functions, with log() counted.
 * The plugin keeps the host pointer it got from start(), so it is static. */
static struct ringd_host counting_host;
static int log_calls, log_warnings, log_notices;
static char log_last[256];

static void counting_log(const struct ringd_instance *inst,
			 enum ringd_log_level lvl, const char *fmt, ...)
{
	va_list ap;

	(void)inst;
	log_calls++;
	log_warnings += lvl == RINGD_LOG_WARNING;
	log_notices += lvl == RINGD_LOG_NOTICE;
	va_start(ap, fmt);
	vsnprintf(log_last, sizeof(log_last), fmt, ap);
	va_end(ap);
}

/* Errors check() reports. */
static int err_calls;
static char err_key[64], err_msg[256];

static void record_err(struct ringd_check *chk, const char *key,
		       const char *fmt, ...)
{
	va_list ap;

	(void)chk;
	err_calls++;
	snprintf(err_key, sizeof(err_key), "%s", key ? key : "(null)");
	va_start(ap, fmt);
	vsnprintf(err_msg, sizeof(err_msg), fmt, ap);
	va_end(ap);
}

static const struct ringd_key *key_find(const char *name)
{
	const struct ringd_key *k;

	for (k = ringd_plugin.keys; k->name; k++)
		if (strcmp(k->name, name) == 0)
			return k;
	fail_msg("no key %s", name);
	return NULL;
}

/* Stores one value the way the daemon does (memcpy at the key's offset),
 * for the types this plugin uses. value must outlive the config. */
static void key_set(void *cfg, const struct ringd_key *k, const char *value)
{
	char *at = (char *)cfg + k->offset;
	bool b;
	int e;

	switch (k->type) {
	case RINGD_KEY_STRING:
		memcpy(at, &value, sizeof(value));
		break;
	case RINGD_KEY_BOOL:
		b = strcmp(value, "yes") == 0;
		assert_true(b || strcmp(value, "no") == 0);
		memcpy(at, &b, sizeof(b));
		break;
	case RINGD_KEY_ENUM:
		for (e = 0; k->choices[e]; e++)
			if (strcmp(k->choices[e], value) == 0)
				break;
		assert_non_null(k->choices[e]);
		memcpy(at, &e, sizeof(e));
		break;
	default:
		fail_msg("key %s: type %d not handled", k->name, (int)k->type);
	}
}

/* A config from the key table's defaults, then NULL-terminated pairs of
 * key and value. */
static void *config_new(const char *key, ...)
{
	void *cfg = calloc(1, ringd_plugin.config_size);
	const struct ringd_key *k;
	va_list ap;

	assert_non_null(cfg);
	for (k = ringd_plugin.keys; k->name; k++)
		key_set(cfg, k, k->def);
	va_start(ap, key);
	for (; key; key = va_arg(ap, const char *))
		key_set(cfg, key_find(key), va_arg(ap, const char *));
	va_end(ap);
	return cfg;
}

static int run_check(void *cfg)
{
	struct ringd_check chk = { .instance = "time",
				   .transports = RINGD_STREAM | RINGD_DGRAM };

	err_calls = 0;
	err_key[0] = err_msg[0] = '\0';
	return ringd_plugin.check(cfg, &chk, record_err);
}

/* The plugin as the daemon runs it: checked, then started on a host. */
struct inst {
	void *cfg;
	void *w;
};

static struct inst inst_start(const struct ringd_host *host, void *cfg)
{
	struct inst in = { .cfg = cfg };

	assert_int_equal(run_check(cfg), 0);
	in.w = ringd_plugin.start(host, NULL, cfg);
	assert_non_null(in.w);
	return in;
}

static void inst_stop(struct inst *in)
{
	ringd_plugin.stop(in->w);
	ringd_plugin.release(in->cfg);
	free(in->cfg);
}

static struct inst fake_start(void *cfg)
{
	fake_host_reset();
	return inst_start(&fake_host_get()->host, cfg);
}

/* One TCP connection at instant ns: what was sent before the close. */
static size_t stream_at(struct inst *in, int64_t ns, char *out, size_t size)
{
	struct fake_host *f = fake_host_get();
	struct ringd_conn c = { .wstate = in->w };
	int closes = f->closes;

	f->outlen = 0;
	f->now_ns = ns;
	assert_int_equal(ringd_plugin.on_open(&c), 0);
	assert_int_equal(f->closes, closes + 1);
	assert_true(f->outlen < size);
	memcpy(out, f->out, f->outlen);
	return f->outlen;
}

/* One datagram of len bytes at instant ns: the reply (0 bytes: none). */
static size_t dgram_at(struct inst *in, int64_t ns, size_t len, char *out,
		       size_t size)
{
	struct fake_host *f = fake_host_get();
	static const char junk[1500];
	struct ringd_dgram d = { .wstate = in->w, .len = len };
	int replies = f->replies;

	f->outlen = 0;
	f->now_ns = ns;
	ringd_plugin.on_datagram(&d, junk, len);
	assert_true(f->outlen < size);
	assert_int_equal(f->replies, replies + (f->outlen > 0));
	memcpy(out, f->out, f->outlen);
	return f->outlen;
}

static uint32_t be32(const char *p)
{
	const unsigned char *u = (const unsigned char *)p;

	return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 |
	       (uint32_t)u[2] << 8 | u[3];
}

static void test_time_abi(void **state)
{
	const char *names[] = { "format", "daytime_format", "timezone",
				"require_synced_clock" };
	size_t i;

	(void)state;
	assert_int_equal(ringd_plugin.abi, RINGD_PLUGIN_ABI);
	assert_int_equal(ringd_plugin.size, sizeof(struct ringd_plugin));
	assert_string_equal(ringd_plugin.name, "time");
	assert_int_equal(ringd_plugin.transports, RINGD_STREAM | RINGD_DGRAM);
	/* Input is never read: the daemon drains it after our FIN. */
	assert_null(ringd_plugin.on_data);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		assert_non_null(key_find(names[i])->def);
	assert_string_equal(key_find("format")->def, "time");
	assert_string_equal(key_find("timezone")->def, "utc");
	assert_string_equal(key_find("require_synced_clock")->def, "no");
}

static void test_time_rfc868_known_instants(void **state)
{
	static const struct {
		int64_t ns;
		uint32_t want;
	} cases[] = {
		{ -INT64_C(2208988800) * NS, 0 }, /* 1900-01-01 00:00 */
		{ 0, 0x83AA7E80 },		  /* 1970-01-01 */
		{ 999999999, 0x83AA7E80 },	  /* not rounded up */
		{ -1, 0x83AA7E7F },		  /* 1969-12-31 23:59:59 */
		{ T_2026, 0xEEACBD8B },
		{ T_2026 + NS / 2, 0xEEACBD8B },
		{ T_WRAP - NS, 0xFFFFFFFF }, /* 2036-02-07 06:28:15 */
		{ T_WRAP - 1, 0xFFFFFFFF },
		{ T_WRAP, 0x00000000 }, /* era 1 begins */
		{ T_WRAP + 3 * NS, 0x00000003 },
		{ -INT64_C(2208988801) * NS, 0xFFFFFFFF }, /* 1899, era -1 */
		{ INT64_MIN, 0x5DE9017B },		   /* 1677 */
		{ INT64_MAX, 0xA96BFB84 },		   /* 2262 */
	};
	struct inst in = fake_start(config_new("format", "time", NULL));
	char out[16];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(stream_at(&in, cases[i].ns, out, sizeof(out)),
				 4);
		assert_int_equal(be32(out), cases[i].want);
		assert_int_equal(
			dgram_at(&in, cases[i].ns, 1, out, sizeof(out)), 4);
		assert_int_equal(be32(out), cases[i].want);
	}
	inst_stop(&in);
}

static void test_time_rfc868_is_default_and_big_endian(void **state)
{
	struct inst in = fake_start(config_new(NULL));
	char out[16];

	(void)state;
	assert_int_equal(stream_at(&in, 0, out, sizeof(out)), 4);
	assert_memory_equal(out, "\x83\xAA\x7E\x80", 4);
	assert_int_equal(fake_host_get()->sends, 1);
	inst_stop(&in);
}

/* Any datagram asks for the time: empty, or large and full of zeros. */
static void test_time_datagram_any_content(void **state)
{
	struct inst in = fake_start(config_new(NULL));
	char out[16];

	(void)state;
	assert_int_equal(dgram_at(&in, T_WRAP, 0, out, sizeof(out)), 4);
	assert_int_equal(be32(out), 0);
	assert_int_equal(dgram_at(&in, T_WRAP, 1500, out, sizeof(out)), 4);
	assert_int_equal(be32(out), 0);
	inst_stop(&in);
}

/* The daytime reply at ns, over TCP and UDP (which must agree), as a
 * NUL-terminated string. */
static const char *daytime_at(struct inst *in, int64_t ns)
{
	static char line[1024];
	char udp[1024];
	size_t n = stream_at(in, ns, line, sizeof(line) - 1);

	line[n] = '\0';
	assert_int_equal(dgram_at(in, ns, 1, udp, sizeof(udp)), n);
	assert_memory_equal(udp, line, n);
	return line;
}

static void test_time_daytime_default_format(void **state)
{
	struct inst in = fake_start(config_new("format", "daytime", NULL));

	(void)state;
	assert_string_equal(daytime_at(&in, T_2026),
			    "Sunday, November 22, 2026 01:02:03-UTC\r\n");
	assert_string_equal(daytime_at(&in, T_WRAP),
			    "Thursday, February 7, 2036 06:28:16-UTC\r\n");
	assert_string_equal(daytime_at(&in, -1),
			    "Wednesday, December 31, 1969 23:59:59-UTC\r\n");
	assert_string_equal(daytime_at(&in, -INT64_C(2208988800) * NS),
			    "Monday, January 1, 1900 00:00:00-UTC\r\n");
	inst_stop(&in);
}

static void test_time_daytime_leap_day(void **state)
{
	struct inst in = fake_start(config_new("format", "daytime", NULL));
	const int64_t march1 = INT64_C(1709251200) * NS;

	(void)state;
	assert_string_equal(daytime_at(&in, T_LEAP),
			    "Thursday, February 29, 2024 12:34:56-UTC\r\n");
	assert_string_equal(daytime_at(&in, march1 - 1),
			    "Thursday, February 29, 2024 23:59:59-UTC\r\n");
	assert_string_equal(daytime_at(&in, march1),
			    "Friday, March 1, 2024 00:00:00-UTC\r\n");
	inst_stop(&in);
}

static void set_tz(const char *tz)
{
	if (tz)
		setenv("TZ", tz, 1);
	else
		unsetenv("TZ");
	tzset();
}

/* A POSIX TZ string needs no tzdata: five hours west, named ABC. */
static void test_time_daytime_local_posix_zone(void **state)
{
	struct inst in;

	(void)state;
	set_tz("ABC+5");
	in = fake_start(
		config_new("format", "daytime", "timezone", "local", NULL));
	assert_string_equal(daytime_at(&in, T_2026),
			    "Saturday, November 21, 2026 20:02:03-ABC\r\n");
	inst_stop(&in);
	/* utc ignores TZ. */
	in = fake_start(config_new("format", "daytime", NULL));
	assert_string_equal(daytime_at(&in, T_2026),
			    "Sunday, November 22, 2026 01:02:03-UTC\r\n");
	inst_stop(&in);
	set_tz(NULL);
}

/* A tzdata zone with daylight saving time: the name follows the date. */
static void test_time_daytime_local_new_york(void **state)
{
	const int64_t july4 = INT64_C(1720108800) * NS; /* 2024-07-04 16:00 */
	struct inst in;

	(void)state;
	if (access("/usr/share/zoneinfo/America/New_York", R_OK) != 0)
		skip(); /* no tzdata; the POSIX zone test still runs */
	set_tz("America/New_York");
	in = fake_start(
		config_new("format", "daytime", "timezone", "local", NULL));
	assert_string_equal(daytime_at(&in, T_2026),
			    "Saturday, November 21, 2026 20:02:03-EST\r\n");
	assert_string_equal(daytime_at(&in, july4),
			    "Thursday, July 4, 2024 12:00:00-EDT\r\n");
	inst_stop(&in);
	set_tz(NULL);
}

static void test_time_daytime_custom_format(void **state)
{
	struct inst in =
		fake_start(config_new("format", "daytime", "daytime_format",
				      "%Y-%m-%dT%H:%M:%SZ", NULL));

	(void)state;
	assert_string_equal(daytime_at(&in, T_LEAP),
			    "2024-02-29T12:34:56Z\r\n");
	inst_stop(&in);
	in = fake_start(config_new("format", "daytime", "daytime_format",
				   "%a %b %e %H:%M:%S %Y %z", NULL));
	assert_string_equal(daytime_at(&in, T_2026),
			    "Sun Nov 22 01:02:03 2026 +0000\r\n");
	inst_stop(&in);
}

/* Every line: printable ASCII, then one CRLF at the very end, under 512
 * bytes, whatever the instant and zone. */
static void assert_daytime_line(const char *line)
{
	size_t i, n = strlen(line);

	assert_true(n >= 3 && n < 512);
	assert_string_equal(line + n - 2, "\r\n");
	for (i = 0; i < n - 2; i++)
		assert_true(line[i] >= 0x20 && line[i] <= 0x7e);
}

static void test_time_daytime_always_printable_crlf(void **state)
{
	static const char *const zones[] = { "utc", "local" };
	const int64_t step = (INT64_C(86400) * 37 + 3601) * NS;
	struct inst in;
	size_t z;
	int64_t ns;

	(void)state;
	set_tz("ABC+5DEF,M3.2.0,M11.1.0");
	for (z = 0; z < 2; z++) {
		in = fake_start(config_new("format", "daytime", "timezone",
					   zones[z], NULL));
		for (ns = -INT64_C(4000000000) * NS;
		     ns < INT64_C(5000000000) * NS; ns += step)
			assert_daytime_line(daytime_at(&in, ns));
		assert_daytime_line(daytime_at(&in, INT64_MIN));
		assert_daytime_line(daytime_at(&in, INT64_MAX));
		inst_stop(&in);
	}
	set_tz(NULL);
}

static void test_time_unsynced_refuses_stream(void **state)
{
	struct inst in =
		fake_start(config_new("require_synced_clock", "yes", NULL));
	char out[16];

	(void)state;
	fake_host_get()->clock_synced = 0;
	assert_int_equal(stream_at(&in, T_2026, out, sizeof(out)), 0);
	assert_int_equal(fake_host_get()->sends, 0);
	/* Not being able to tell counts as not synchronised. */
	fake_host_get()->clock_synced = -EPERM;
	assert_int_equal(stream_at(&in, T_2026, out, sizeof(out)), 0);
	fake_host_get()->clock_synced = 1;
	assert_int_equal(stream_at(&in, T_2026, out, sizeof(out)), 4);
	inst_stop(&in);
}

static void test_time_unsynced_refuses_datagram(void **state)
{
	struct inst in = fake_start(config_new(
		"format", "daytime", "require_synced_clock", "yes", NULL));
	char out[1024];

	(void)state;
	fake_host_get()->clock_synced = 0;
	assert_int_equal(dgram_at(&in, T_2026, 1, out, sizeof(out)), 0);
	assert_int_equal(fake_host_get()->replies, 0);
	fake_host_get()->clock_synced = -ENOSYS;
	assert_int_equal(dgram_at(&in, T_2026, 1, out, sizeof(out)), 0);
	fake_host_get()->clock_synced = 1;
	assert_true(dgram_at(&in, T_2026, 1, out, sizeof(out)) > 0);
	inst_stop(&in);
}

/* Without require_synced_clock the clock's state does not matter. */
static void test_time_unsynced_served_by_default(void **state)
{
	struct inst in = fake_start(config_new(NULL));
	char out[16];

	(void)state;
	fake_host_get()->clock_synced = 0;
	assert_int_equal(stream_at(&in, T_2026, out, sizeof(out)), 4);
	assert_int_equal(dgram_at(&in, T_2026, 1, out, sizeof(out)), 4);
	inst_stop(&in);
}

static void test_time_sync_logged_once_per_change(void **state)
{
	/* synced at start is not news; then down, up, down. */
	static const int seq[] = { 1, 1, 0, 0, 0, -EIO, 1, 1, 0, 1 };
	static const int want_calls[] = { 0, 0, 1, 1, 1, 1, 2, 2, 3, 4 };
	struct inst in;
	char out[16];
	size_t i;

	(void)state;
	fake_host_reset();
	counting_host = fake_host_get()->host;
	counting_host.log = counting_log;
	log_calls = log_warnings = log_notices = 0;
	in = inst_start(&counting_host,
			config_new("require_synced_clock", "yes", NULL));
	for (i = 0; i < sizeof(seq) / sizeof(seq[0]); i++) {
		fake_host_get()->clock_synced = seq[i];
		if (i % 2)
			stream_at(&in, T_2026, out, sizeof(out));
		else
			dgram_at(&in, T_2026, 1, out, sizeof(out));
		assert_int_equal(log_calls, want_calls[i]);
		if (i == 2)
			assert_string_equal(log_last,
					    "time: clock not synchronised; "
					    "refusing");
	}
	assert_int_equal(log_warnings, 2);
	assert_int_equal(log_notices, 2);
	inst_stop(&in);
}

/* Two workers of one instance: a change is one line, not one per worker. */
static void test_time_sync_logged_once_per_instance(void **state)
{
	struct inst a, b;
	char out[16];

	(void)state;
	fake_host_reset();
	counting_host = fake_host_get()->host;
	counting_host.log = counting_log;
	log_calls = log_warnings = log_notices = 0;
	a = inst_start(&counting_host,
		       config_new("require_synced_clock", "yes", NULL));
	b.cfg = a.cfg;
	b.w = ringd_plugin.start(&counting_host, NULL, a.cfg);
	assert_non_null(b.w);
	fake_host_get()->clock_synced = 0;
	dgram_at(&a, T_2026, 1, out, sizeof(out));
	dgram_at(&b, T_2026, 1, out, sizeof(out));
	stream_at(&b, T_2026, out, sizeof(out));
	assert_int_equal(log_warnings, 1);
	fake_host_get()->clock_synced = 1;
	stream_at(&b, T_2026, out, sizeof(out));
	dgram_at(&a, T_2026, 1, out, sizeof(out));
	assert_int_equal(log_notices, 1);
	assert_int_equal(log_calls, 2);
	ringd_plugin.stop(b.w);
	inst_stop(&a);
}

static void check_rejects(const char *fmt, const char *msg_part)
{
	void *cfg = config_new("daytime_format", fmt, NULL);

	assert_int_equal(run_check(cfg), -1);
	assert_int_equal(err_calls, 1);
	assert_string_equal(err_key, "daytime_format");
	if (!strstr(err_msg, msg_part))
		fail_msg("'%s': message '%s' lacks '%s'", fmt, err_msg,
			 msg_part);
	free(cfg);
}

static void check_accepts(const char *fmt)
{
	void *cfg =
		config_new("format", "daytime", "daytime_format", fmt, NULL);

	if (run_check(cfg) != 0)
		fail_msg("'%s' rejected: %s", fmt, err_msg);
	assert_int_equal(err_calls, 0);
	ringd_plugin.release(cfg);
	free(cfg);
}

static void test_time_check_rejects_bad_daytime_format(void **state)
{
	char fmt[4096];

	(void)state;
	check_accepts(key_find("daytime_format")->def);
	check_accepts("%c");
	check_rejects("", "empty or over-long");
	memset(fmt, 'x', 509);
	fmt[509] = '\0';
	check_accepts(fmt);
	fmt[509] = 'x';
	fmt[510] = '\0';
	check_rejects(fmt, "510 bytes");
	/* 60 Wednesdays: a short format with a long result. */
	fmt[0] = '\0';
	while (strlen(fmt) < 120)
		strcat(fmt, "%A");
	check_rejects(fmt, "540 bytes");
	memset(fmt, 'y', sizeof(fmt) - 1);
	fmt[sizeof(fmt) - 1] = '\0';
	check_rejects(fmt, "over-long");
	check_rejects("%H:%M%n", "printable");
	check_rejects("%H\t%M", "printable");
	check_rejects("caf\xc3\xa9 %H", "printable");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_time_abi),
		cmocka_unit_test(test_time_rfc868_known_instants),
		cmocka_unit_test(test_time_rfc868_is_default_and_big_endian),
		cmocka_unit_test(test_time_datagram_any_content),
		cmocka_unit_test(test_time_daytime_default_format),
		cmocka_unit_test(test_time_daytime_leap_day),
		cmocka_unit_test(test_time_daytime_local_posix_zone),
		cmocka_unit_test(test_time_daytime_local_new_york),
		cmocka_unit_test(test_time_daytime_custom_format),
		cmocka_unit_test(test_time_daytime_always_printable_crlf),
		cmocka_unit_test(test_time_unsynced_refuses_stream),
		cmocka_unit_test(test_time_unsynced_refuses_datagram),
		cmocka_unit_test(test_time_unsynced_served_by_default),
		cmocka_unit_test(test_time_sync_logged_once_per_change),
		cmocka_unit_test(test_time_sync_logged_once_per_instance),
		cmocka_unit_test(test_time_check_rejects_bad_daytime_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
