/* The qotd plugin against the fake host: loading and refusing quotes
 * files with FILE:LINE messages, the three pick orders, one quote per
 * TCP connection and per datagram. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <ringd/plugin.h>

#include "fake_host.h"

extern const struct ringd_plugin ringd_plugin;

#define DAY_NS (86400LL * 1000000000LL)

/* A plugin config filled in as the daemon would: through the key table. */
struct loaded {
	void *cfg;
	char path[64];
	void *w;
	int rc;
};

static void write_file(char *path, size_t len, const char *text, size_t textlen)
{
	int fd;

	snprintf(path, len, "/tmp/test_qotd.XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, textlen), (ssize_t)textlen);
	close(fd);
}

/* Writes text to a temporary file and runs check() on it. */
static void load_n(struct loaded *l, const char *text, size_t len,
		   const char *pick)
{
	const char *path = l->path;
	struct ringd_check chk = { .instance = "qotd",
				   .transports = RINGD_STREAM | RINGD_DGRAM };
	int idx = 0;

	fake_nerrs = 0;
	l->w = NULL;
	l->cfg = calloc(1, ringd_plugin.config_size);
	assert_non_null(l->cfg);
	if (text)
		write_file(l->path, sizeof(l->path), text, len);
	else
		snprintf(l->path, sizeof(l->path), "/nonexistent/quotes");
	memcpy((char *)l->cfg + fake_plugin_key("quotes")->offset, &path,
	       sizeof(path));
	for (; pick && fake_plugin_key("pick")->choices[idx]; idx++)
		if (strcmp(fake_plugin_key("pick")->choices[idx], pick) == 0)
			break;
	memcpy((char *)l->cfg + fake_plugin_key("pick")->offset, &idx, sizeof(idx));
	l->rc = ringd_plugin.check(l->cfg, &chk, fake_check_err);
	if (text)
		unlink(l->path);
}

static void load(struct loaded *l, const char *text, const char *pick)
{
	load_n(l, text, text ? strlen(text) : 0, pick);
}

static void start(struct loaded *l)
{
	assert_int_equal(l->rc, 0);
	fake_host_reset();
	l->w = ringd_plugin.start(&fake_host_get()->host, NULL, l->cfg);
	assert_non_null(l->w);
}

static void unload(struct loaded *l)
{
	if (l->w)
		ringd_plugin.stop(l->w);
	if (l->rc == 0)
		ringd_plugin.release(l->cfg);
	free(l->cfg);
}

/* What one TCP connection receives. */
static void tcp_quote(struct loaded *l, char *out, size_t len)
{
	struct fake_host *f = fake_host_get();
	struct ringd_conn c = { .wstate = l->w };

	f->outlen = 0;
	f->sends = f->closes = 0;
	assert_int_equal(ringd_plugin.on_open(&c), 0);
	assert_int_equal(f->sends, 1);
	assert_int_equal(f->closes, 1);
	assert_true(f->outlen < len);
	memcpy(out, f->out, f->outlen);
	out[f->outlen] = '\0';
}

static const char three[] = "First quote.\n"
			    "    -- One\n"
			    "%\n"
			    "\n"
			    "Second quote,\n"
			    "\n"
			    "two paragraphs.\n"
			    "\n"
			    "%\n"
			    "Third quote.\n"
			    "%\n";

static void test_qotd_abi(void **state)
{
	(void)state;
	assert_int_equal(ringd_plugin.abi, RINGD_PLUGIN_ABI);
	assert_int_equal(ringd_plugin.size, sizeof(struct ringd_plugin));
	assert_string_equal(ringd_plugin.name, "qotd");
	assert_int_equal(ringd_plugin.transports, RINGD_STREAM | RINGD_DGRAM);
	/* Relative: the daemon resolves it in its data directory, so a
	 * section without quotes = serves the quotes installed with ringd. */
	assert_string_equal(fake_plugin_key("quotes")->def, "quotes");
	assert_string_equal(fake_plugin_key("pick")->def, "daily");
	/* Input is never looked at. */
	assert_null(ringd_plugin.on_data);
}

static void test_qotd_load_good(void **state)
{
	struct loaded l;
	char q[600];

	(void)state;
	load(&l, three, "sequential");
	assert_int_equal(fake_nerrs, 0);
	start(&l);
	tcp_quote(&l, q, sizeof(q));
	assert_string_equal(q, "First quote.\r\n    -- One\r\n");
	/* Blank lines around a quote go; inner ones stay. */
	tcp_quote(&l, q, sizeof(q));
	assert_string_equal(q, "Second quote,\r\n\r\ntwo paragraphs.\r\n");
	tcp_quote(&l, q, sizeof(q));
	assert_string_equal(q, "Third quote.\r\n");
	tcp_quote(&l, q, sizeof(q));
	assert_string_equal(q, "First quote.\r\n    -- One\r\n");
	unload(&l);
}

static void test_qotd_load_crlf_file_no_final_newline(void **state)
{
	struct loaded l;
	char q[600];

	(void)state;
	load(&l, "One.\r\n%\r\nTwo,\r\nlines.", "sequential");
	assert_int_equal(fake_nerrs, 0);
	start(&l);
	tcp_quote(&l, q, sizeof(q));
	assert_string_equal(q, "One.\r\n");
	tcp_quote(&l, q, sizeof(q));
	assert_string_equal(q, "Two,\r\nlines.\r\n");
	unload(&l);
}

/* The limit counts the bytes sent: 509 characters and CRLF is the
 * longest quote, 511 bytes. */
static void test_qotd_load_long_quote(void **state)
{
	char text[2000], want[256];
	struct loaded l;
	size_t n;

	(void)state;
	n = (size_t)snprintf(text, sizeof(text), "ok\n%%\nfine\n%%\n");
	memset(text + n, 'a', 509);
	n += 509;
	n += (size_t)snprintf(text + n, sizeof(text) - n, "\n%%\nx\n");
	memset(text + n, 'b', 600);
	n += 600;
	text[n] = '\0';
	load(&l, text, NULL);
	assert_int_equal(l.rc, -1);
	assert_int_equal(fake_nerrs, 1);
	/* The quote starts on line 7: "x", CRLF, 600 b's, CRLF. */
	snprintf(want, sizeof(want),
		 "quotes: %s:7: quote is 605 bytes as sent (limit 511)",
		 l.path);
	assert_string_equal(fake_errs[0], want);
	unload(&l);

	text[strlen(text) - 600 - 3] = '\0'; /* drop the long one */
	load(&l, text, NULL);
	assert_int_equal(l.rc, 0);
	assert_int_equal(fake_nerrs, 0);
	unload(&l);

	memcpy(text, "ok\n%\n", 5);
	memset(text + 5, 'c', 510);
	strcpy(text + 515, "\n");
	load(&l, text, NULL);
	assert_int_equal(fake_nerrs, 1);
	snprintf(want, sizeof(want),
		 "quotes: %s:3: quote is 512 bytes as sent (limit 511)",
		 l.path);
	assert_string_equal(fake_errs[0], want);
	unload(&l);
}

static void test_qotd_load_non_ascii(void **state)
{
	struct loaded l;
	char want[256];

	(void)state;
	load(&l, "Fine.\n%\nA caf\xc3\xa9 quote.\n", NULL);
	assert_int_equal(l.rc, -1);
	assert_int_equal(fake_nerrs, 1);
	snprintf(want, sizeof(want),
		 "quotes: %s:3: byte 0xc3 is not printable ASCII", l.path);
	assert_string_equal(fake_errs[0], want);
	unload(&l);

	/* Tab, NUL and DEL are refused too: printable ASCII, CR, LF only. */
	load_n(&l, "a\tb\n%\nc\0d\n%\ne\x7f\n", 15, NULL);
	assert_int_equal(l.rc, -1);
	assert_int_equal(fake_nerrs, 3);
	assert_non_null(strstr(fake_errs[0], ":1: byte 0x09 is not"));
	assert_non_null(strstr(fake_errs[1], ":3: byte 0x00 is not"));
	assert_non_null(strstr(fake_errs[2], ":5: byte 0x7f is not"));
	unload(&l);
}

static void test_qotd_load_empty(void **state)
{
	static const char *const empties[] = { "", "%\n", "\n\n%\n  \n%\n" };
	struct loaded l;
	char want[256];

	(void)state;
	for (size_t i = 0; i < sizeof(empties) / sizeof(*empties); i++) {
		load(&l, empties[i], NULL);
		assert_int_equal(l.rc, -1);
		assert_int_equal(fake_nerrs, 1);
		snprintf(want, sizeof(want), "quotes: %s: no quotes", l.path);
		assert_memory_equal(fake_errs[0], want, strlen(want));
		unload(&l);
	}
}

static void test_qotd_load_missing(void **state)
{
	struct loaded l;

	(void)state;
	load(&l, NULL, NULL);
	assert_int_equal(l.rc, -1);
	assert_int_equal(fake_nerrs, 1);
	assert_string_equal(fake_errs[0], "quotes: /nonexistent/quotes: cannot "
				     "open: No such file or directory");
	unload(&l);
}

static void test_qotd_load_all_errors_reported(void **state)
{
	char text[4000];
	struct loaded l;
	size_t n = 0;

	(void)state;
	n += (size_t)snprintf(text, sizeof(text), "good\n%%\nbad \xff\n%%\n");
	memset(text + n, 'z', 700);
	n += 700;
	n += (size_t)snprintf(text + n, sizeof(text) - n,
			      "\n%%\ngood\n%%\nx\ny\x80\n");
	load(&l, text, NULL);
	assert_int_equal(l.rc, -1);
	assert_int_equal(fake_nerrs, 3);
	assert_non_null(strstr(fake_errs[0], ":3: byte 0xff is not printable"));
	assert_non_null(strstr(fake_errs[1], ":5: quote is 702 bytes as sent"));
	assert_non_null(strstr(fake_errs[2], ":10: byte 0x80 is not printable"));
	unload(&l);
}

/* A binary file would print thousands of lines; twenty and a count do. */
static void test_qotd_load_error_cap(void **state)
{
	char text[200];
	struct loaded l;

	(void)state;
	for (int i = 0; i < 30; i++)
		memcpy(text + 4 * i, "\x01\n%\n", 4);
	text[120] = '\0';
	load(&l, text, NULL);
	assert_int_equal(l.rc, -1);
	assert_int_equal(fake_nerrs, 21);
	assert_non_null(strstr(fake_errs[19], ":39: byte 0x01"));
	assert_non_null(strstr(fake_errs[20], ": 10 more errors not shown"));
	unload(&l);
}

static void test_qotd_pick_daily(void **state)
{
	struct fake_host *f;
	struct loaded l;
	char a[600], b[600];
	int64_t day = 20000; /* 2024-10-04 */

	(void)state;
	load(&l, three, "daily");
	start(&l);
	f = fake_host_get();
	f->now_ns = day * DAY_NS;
	tcp_quote(&l, a, sizeof(a));
	f->now_ns = (day + 1) * DAY_NS - 1;
	tcp_quote(&l, b, sizeof(b));
	assert_string_equal(a, b);
	/* The next UTC day gives the next quote. */
	f->now_ns = (day + 1) * DAY_NS;
	tcp_quote(&l, b, sizeof(b));
	assert_string_not_equal(a, b);
	/* 20000 % 3 == 2: the third quote. */
	assert_string_equal(a, "Third quote.\r\n");
	assert_string_equal(b, "First quote.\r\n    -- One\r\n");
	/* Before 1970 the day still runs midnight to midnight. */
	f->now_ns = -1;
	tcp_quote(&l, a, sizeof(a));
	f->now_ns = -DAY_NS;
	tcp_quote(&l, b, sizeof(b));
	assert_string_equal(a, b);
	assert_string_equal(a, "Third quote.\r\n"); /* day -1 */
	unload(&l);
}

static void test_qotd_pick_daily_udp_matches_tcp(void **state)
{
	struct fake_host *f;
	struct loaded l;
	char a[600];
	struct ringd_dgram d = { .len = 1 };

	(void)state;
	load(&l, three, "daily");
	start(&l);
	f = fake_host_get();
	f->now_ns = 12345 * DAY_NS + 5;
	tcp_quote(&l, a, sizeof(a));
	f->outlen = 0;
	d.wstate = l.w;
	ringd_plugin.on_datagram(&d, "x", 1);
	assert_int_equal(f->replies, 1);
	assert_int_equal(f->outlen, strlen(a));
	assert_memory_equal(f->out, a, f->outlen);
	unload(&l);
}

static void test_qotd_pick_sequential(void **state)
{
	struct ringd_dgram d = { .len = 0 };
	struct loaded l;
	struct fake_host *f;
	char q[600];

	(void)state;
	load(&l, "1\n%\n2\n%\n3\n%\n4\n", "sequential");
	start(&l);
	f = fake_host_get();
	d.wstate = l.w;
	/* TCP and UDP share the worker's one sequence. */
	for (int i = 0; i < 9; i++) {
		char want[8];

		snprintf(want, sizeof(want), "%d\r\n", i % 4 + 1);
		if (i % 2) {
			tcp_quote(&l, q, sizeof(q));
			assert_string_equal(q, want);
		} else {
			f->outlen = 0;
			ringd_plugin.on_datagram(&d, "", 0);
			assert_memory_equal(f->out, want, strlen(want));
			assert_int_equal(f->outlen, strlen(want));
		}
	}
	unload(&l);
}

static void test_qotd_pick_random(void **state)
{
	int seen[5] = { 0 };
	struct loaded l;
	char q[600];

	(void)state;
	load(&l, "1\n%\n2\n%\n3\n%\n4\n%\n5\n", "random");
	start(&l);
	for (int i = 0; i < 500; i++) {
		tcp_quote(&l, q, sizeof(q));
		assert_int_equal(strlen(q), 3);
		assert_true(q[0] >= '1' && q[0] <= '5');
		seen[q[0] - '1']++;
	}
	/* 500 picks of 5: each is expected 100 times; 40 is far out. */
	for (int i = 0; i < 5; i++)
		assert_true(seen[i] > 40);
	unload(&l);
}

static void test_qotd_udp_reply(void **state)
{
	struct fake_host *f;
	struct loaded l;
	struct ringd_dgram d = { .len = 100 };
	char big[1000];

	(void)state;
	load(&l, three, "sequential");
	start(&l);
	f = fake_host_get();
	d.wstate = l.w;
	memset(big, 'q', sizeof(big));
	ringd_plugin.on_datagram(&d, big, sizeof(big));
	assert_int_equal(f->replies, 1);
	assert_int_equal(f->sends, 0);
	assert_int_equal(f->closes, 0);
	assert_int_equal(f->outlen, strlen("First quote.\r\n    -- One\r\n"));
	assert_memory_equal(f->out, "First quote.\r\n    -- One\r\n",
			    f->outlen);
	unload(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_qotd_abi),
		cmocka_unit_test(test_qotd_load_good),
		cmocka_unit_test(test_qotd_load_crlf_file_no_final_newline),
		cmocka_unit_test(test_qotd_load_long_quote),
		cmocka_unit_test(test_qotd_load_non_ascii),
		cmocka_unit_test(test_qotd_load_empty),
		cmocka_unit_test(test_qotd_load_missing),
		cmocka_unit_test(test_qotd_load_all_errors_reported),
		cmocka_unit_test(test_qotd_load_error_cap),
		cmocka_unit_test(test_qotd_pick_daily),
		cmocka_unit_test(test_qotd_pick_daily_udp_matches_tcp),
		cmocka_unit_test(test_qotd_pick_sequential),
		cmocka_unit_test(test_qotd_pick_random),
		cmocka_unit_test(test_qotd_udp_reply),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
