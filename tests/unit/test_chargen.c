/* The chargen plugin against the fake host: the RFC 864 pattern, flow
 * control through queued() and on_writable, the byte and time limits,
 * and UDP refused at check() unless allowed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <ringd/plugin.h>

#include "fake_host.h"

extern const struct ringd_plugin ringd_plugin;

struct fixture {
	void *cfg;
	void *w;
	struct ringd_conn c;
};

static void *config(int64_t max_bytes, int64_t max_time_ms, bool allow_udp)
{
	char *cfg = calloc(1, ringd_plugin.config_size);

	assert_non_null(cfg);
	memcpy(cfg + fake_plugin_key("max_bytes")->offset, &max_bytes,
	       sizeof(max_bytes));
	memcpy(cfg + fake_plugin_key("max_time")->offset, &max_time_ms,
	       sizeof(max_time_ms));
	memcpy(cfg + fake_plugin_key("allow_udp")->offset, &allow_udp,
	       sizeof(allow_udp));
	return cfg;
}

static void start(struct fixture *fx, int64_t max_bytes, int64_t max_time)
{
	fake_host_reset();
	fx->cfg = config(max_bytes, max_time, false);
	fx->w = ringd_plugin.start(&fake_host_get()->host, NULL, fx->cfg);
	assert_non_null(fx->w);
	fx->c = (struct ringd_conn){ .wstate = fx->w };
}

static void finish(struct fixture *fx)
{
	ringd_plugin.on_close(&fx->c);
	ringd_plugin.stop(fx->w);
	free(fx->cfg);
}

/* Byte i of the stream: line i / 74 starts (i / 74) % 95 characters
 * along the ring that begins at the space. */
static char expect(size_t i)
{
	size_t row = i / 74, col = i % 74;

	if (col == 72)
		return '\r';
	if (col == 73)
		return '\n';
	return (char)(0x20 + (row + col) % 95);
}

static void assert_pattern(const char *buf, size_t len, size_t from)
{
	for (size_t i = 0; i < len; i++)
		if (buf[i] != expect(from + i))
			fail_msg("byte %zu is 0x%02x, expected 0x%02x",
				 from + i, (unsigned char)buf[i],
				 (unsigned char)expect(from + i));
}

static void test_chargen_abi(void **state)
{
	(void)state;
	assert_int_equal(ringd_plugin.abi, RINGD_PLUGIN_ABI);
	assert_int_equal(ringd_plugin.size, sizeof(struct ringd_plugin));
	assert_string_equal(ringd_plugin.name, "chargen");
	assert_int_equal(ringd_plugin.transports, RINGD_STREAM | RINGD_DGRAM);
	assert_string_equal(fake_plugin_key("max_bytes")->def, "1m");
	assert_string_equal(fake_plugin_key("max_time")->def, "1m");
	assert_string_equal(fake_plugin_key("allow_udp")->def, "no");
	assert_non_null(ringd_plugin.on_writable);
	assert_non_null(ringd_plugin.on_eof);
}

static void test_chargen_first_lines(void **state)
{
	struct fixture fx;
	struct fake_host *f;
	char line[75];

	(void)state;
	start(&fx, 0, 0);
	f = fake_host_get();
	assert_int_equal(ringd_plugin.on_open(&fx.c), 0);
	assert_true(f->outlen >= 96 * 74);
	/* RFC 864's first lines, starting at the space as BSD inetd does. */
	for (int i = 0; i < 72; i++)
		line[i] = (char)(0x20 + i);
	memcpy(line + 72, "\r\n", 2);
	assert_memory_equal(f->out, line, 74);
	assert_int_equal(f->out[71], 0x67);
	assert_memory_equal(f->out + 74,
			    "!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNO"
			    "PQRSTUVWXYZ[\\]^_`abcdefgh\r\n",
			    74);
	/* Line 95 starts with the tilde and wraps round to the space. */
	assert_memory_equal(f->out + 94 * 74, "~ !\"#", 5);
	/* Line 96 is line 1 again. */
	assert_memory_equal(f->out + 95 * 74, f->out, 74);
	assert_pattern(f->out, f->outlen, 0);
	finish(&fx);
}

static void test_chargen_flow_control(void **state)
{
	struct fixture fx;
	struct fake_host *f;
	size_t before;

	(void)state;
	start(&fx, 0, 0);
	f = fake_host_get();
	assert_int_equal(ringd_plugin.on_open(&fx.c), 0);
	/* Topped up to 128 KiB, by less than one 64 KiB send more. */
	assert_true(f->queue >= 128 * 1024);
	assert_true(f->queue < 192 * 1024);
	before = f->outlen;
	/* Nothing drained: nothing more queued, however often asked. */
	for (int i = 0; i < 10; i++)
		ringd_plugin.on_writable(&fx.c);
	assert_int_equal(f->outlen, before);
	/* Drained, but still at 128 KiB or more: still nothing. */
	fake_host_drain(f->queue - 128 * 1024);
	ringd_plugin.on_writable(&fx.c);
	assert_int_equal(f->outlen, before);
	/* The daemon calls on_writable below 64 KiB queued. */
	for (int round = 0; round < 6; round++) {
		fake_host_drain(f->queue - 60000);
		ringd_plugin.on_writable(&fx.c);
		assert_true(f->queue >= 128 * 1024);
		assert_true(f->queue < 192 * 1024);
	}
	assert_true(f->outlen > 800000);
	/* The chunks join up: one continuous pattern. */
	assert_pattern(f->out, f->outlen, 0);
	assert_int_equal(f->closes, 0);
	finish(&fx);
}

/* Opens a connection and drains until the plugin closes it; returns the
 * bytes sent. */
static size_t run_to_close(struct fixture *fx)
{
	struct fake_host *f = fake_host_get();
	int rounds = 0;

	assert_int_equal(ringd_plugin.on_open(&fx->c), 0);
	while (f->closes == 0) {
		assert_true(++rounds < 100);
		fake_host_drain(f->queue);
		ringd_plugin.on_writable(&fx->c);
	}
	assert_int_equal(f->closes, 1);
	assert_pattern(f->out, f->outlen, 0);
	return f->outlen;
}

static void test_chargen_max_bytes(void **state)
{
	static const int64_t limits[] = { 1,	 74,	 100,	 7030,
					  63270, 126540, 300001, 1000000 };
	struct fixture fx;

	(void)state;
	for (size_t i = 0; i < sizeof(limits) / sizeof(*limits); i++) {
		start(&fx, limits[i], 0);
		assert_int_equal(run_to_close(&fx), (size_t)limits[i]);
		finish(&fx);
	}
}

static void test_chargen_max_time(void **state)
{
	struct fixture fx;

	(void)state;
	start(&fx, 0, 2500);
	assert_int_equal(ringd_plugin.on_open(&fx.c), 0);
	assert_int_equal(fake_host_get()->timeout_ms, 2500);
	finish(&fx);

	start(&fx, 0, 0);
	fake_host_get()->timeout_ms = -7;
	assert_int_equal(ringd_plugin.on_open(&fx.c), 0);
	assert_int_equal(fake_host_get()->timeout_ms, -7);
	finish(&fx);
}

static void test_chargen_ignores_input(void **state)
{
	struct fixture fx;
	struct fake_host *f;
	size_t before;

	(void)state;
	start(&fx, 0, 0);
	f = fake_host_get();
	assert_int_equal(ringd_plugin.on_open(&fx.c), 0);
	before = f->outlen;
	ringd_plugin.on_data(&fx.c, "stop\r\n", 6);
	/* A half-close is not the end: RFC 864 sends until the client
	 * closes the connection. */
	ringd_plugin.on_eof(&fx.c);
	assert_int_equal(f->outlen, before);
	assert_int_equal(f->closes, 0);
	fake_host_drain(f->queue);
	ringd_plugin.on_writable(&fx.c);
	assert_true(f->outlen > before);
	finish(&fx);
}

static char errmsg[1024], errkey[64];
static int nerrs;

static void collect(struct ringd_check *chk, const char *k, const char *fmt,
		    ...) __attribute__((format(printf, 3, 4)));

static void collect(struct ringd_check *chk, const char *k, const char *fmt,
		    ...)
{
	va_list ap;

	(void)chk;
	snprintf(errkey, sizeof(errkey), "%s", k ? k : "-");
	va_start(ap, fmt);
	vsnprintf(errmsg, sizeof(errmsg), fmt, ap);
	va_end(ap);
	nerrs++;
}

static int check(unsigned transports, bool allow_udp)
{
	struct ringd_check chk = { .instance = "chargen",
				   .transports = transports };
	void *cfg = config(0, 0, allow_udp);
	int rc;

	nerrs = 0;
	rc = ringd_plugin.check(cfg, &chk, collect);
	free(cfg);
	return rc;
}

static void test_chargen_check_udp(void **state)
{
	(void)state;
	assert_int_equal(check(RINGD_STREAM | RINGD_DGRAM, false), -1);
	assert_int_equal(nerrs, 1);
	assert_string_equal(errkey, "allow_udp");
	assert_non_null(strstr(errmsg, "CERT CA-1996-01"));
	assert_non_null(strstr(errmsg, "allow_udp = yes"));
	assert_int_equal(check(RINGD_DGRAM, false), -1);
	assert_int_equal(check(RINGD_STREAM | RINGD_DGRAM, true), 0);
	assert_int_equal(check(RINGD_DGRAM, true), 0);
	assert_int_equal(check(RINGD_STREAM, false), 0);
	assert_int_equal(nerrs, 0);
}

static void test_chargen_udp_reply(void **state)
{
	struct fixture fx;
	struct fake_host *f;
	struct ringd_dgram d;
	size_t minlen = 513, maxlen = 0, at = 0;

	(void)state;
	start(&fx, 0, 0);
	f = fake_host_get();
	d = (struct ringd_dgram){ .wstate = fx.w, .len = 1 };
	for (int i = 0; i < 400; i++) {
		size_t n;

		ringd_plugin.on_datagram(&d, "x", 1);
		assert_int_equal(f->replies, i + 1);
		n = f->outlen - at;
		assert_true(n <= 512);
		/* Each reply starts at the next line of the stream. */
		assert_pattern(f->out + at, n, (size_t)(i % 95) * 74);
		minlen = n < minlen ? n : minlen;
		maxlen = n > maxlen ? n : maxlen;
		at = f->outlen;
	}
	/* Random lengths over the whole range. */
	assert_true(minlen < 60);
	assert_true(maxlen > 450);
	assert_int_equal(f->sends, 0);
	/* Replies leave nothing for a stream's flow control to wait on. */
	assert_int_equal(f->queue, 0);
	ringd_plugin.stop(fx.w);
	free(fx.cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chargen_abi),
		cmocka_unit_test(test_chargen_first_lines),
		cmocka_unit_test(test_chargen_flow_control),
		cmocka_unit_test(test_chargen_max_bytes),
		cmocka_unit_test(test_chargen_max_time),
		cmocka_unit_test(test_chargen_ignores_input),
		cmocka_unit_test(test_chargen_check_udp),
		cmocka_unit_test(test_chargen_udp_reply),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
