/* ringd-probe's reply judges: RFC 868 across the 2036 wrap, daytime and
 * QOTD text rules, the RFC 864 pattern, HTTP heads and status lists. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "probe/verify.h"

#define EPOCH1900 2208988800LL
#define WRAP 4294967296LL
#define T2036 (WRAP - EPOCH1900) /* 2036-02-07T06:28:16Z */

static void test_probe_verify_time_before_and_after_2036(void **state)
{
	int64_t now = 1796169600; /* 2026-12-02 */

	assert_int_equal(verify_time_unix(verify_time_rfc868(now), now), now);
	assert_int_equal(verify_time_rfc868(now), (uint32_t)(now + EPOCH1900));
	/* One second before the wrap, and right at it: 0 means 2036. */
	assert_int_equal(verify_time_rfc868(T2036 - 1), 0xffffffffu);
	assert_int_equal(verify_time_rfc868(T2036), 0u);
	assert_int_equal(verify_time_unix(0, T2036), T2036);
	assert_int_equal(verify_time_unix(0xffffffffu, T2036), T2036 - 1);
	/* A server just past the wrap seen by a client just before it,
	 * and the other way round. */
	assert_int_equal(verify_time_unix(3, T2036 - 2), T2036 + 3);
	assert_int_equal(verify_time_unix(0xfffffffeu, T2036 + 5), T2036 - 2);
	/* Long after: 2100 (second era), judged from 2100. */
	int64_t y2100 = 4102444800;
	assert_int_equal(verify_time_unix(verify_time_rfc868(y2100), y2100),
			 y2100);
	/* 1970 itself is in the first era. */
	assert_int_equal(verify_time_unix((uint32_t)EPOCH1900, 0), 0);
}

static void test_probe_verify_daytime(void **state)
{
	const char *why = NULL;
	const unsigned char good[] = "Wed Dec  2 01:23:01 2026\r\n";
	const unsigned char lf[] = "Wed Dec  2 01:23:01 2026\n";

	assert_true(verify_daytime(good, sizeof(good) - 1, &why));
	assert_true(verify_daytime(lf, sizeof(lf) - 1, &why));
	assert_true(verify_daytime((const unsigned char *)"x\ty", 3, &why));
	assert_false(verify_daytime((const unsigned char *)"", 0, &why));
	assert_string_equal(why, "empty daytime line");
	assert_false(verify_daytime((const unsigned char *)"\r\n", 2, &why));
	assert_false(verify_daytime((const unsigned char *)"a\nb\n", 4, &why));
	assert_string_equal(why, "daytime reply is not one printable line");
	assert_false(verify_daytime((const unsigned char *)"a\x01", 2, &why));
	assert_false(verify_daytime((const unsigned char *)"\x01a\n", 3, &why));
	assert_string_equal(why, "daytime reply is not one printable line");
	assert_false(verify_daytime((const unsigned char *)"a\r", 2, &why));
	assert_false(verify_daytime((const unsigned char *)"\xc3\xa9", 2, &why));
}

static void test_probe_verify_qotd(void **state)
{
	unsigned char q[600];
	const char *why = NULL;

	memset(q, 'a', sizeof(q));
	assert_true(verify_qotd(q, 511, &why));
	assert_false(verify_qotd(q, 512, &why));
	assert_string_equal(why, "quote of 512 bytes or more");
	assert_false(verify_qotd(q, 0, &why));
	assert_string_equal(why, "empty quote");
	memcpy(q, "Line one\r\n\tline two\r\n", 21);
	assert_true(verify_qotd(q, 21, &why));
	q[3] = 0;
	assert_false(verify_qotd(q, 21, &why));
	assert_string_equal(why, "quote is not printable ASCII");
}

/* The pattern as RFC 864 prints it, from line first on. */
static size_t chargen_make(unsigned char *out, size_t n, unsigned first)
{
	size_t k = 0;

	for (unsigned line = first; k < n; line++)
		for (unsigned col = 0; col < 74 && k < n; col++)
			out[k++] = col == 72 ? '\r' : col == 73 ? '\n' :
				   (unsigned char)(0x20 + (line + col) % 95);
	return k;
}

static void test_probe_verify_chargen_pattern(void **state)
{
	unsigned char buf[74 * 100];
	struct verify_chargen st = { 0 };

	chargen_make(buf, sizeof(buf), 0);
	assert_memory_equal(buf, " !\"#$%&", 7);
	assert_int_equal(buf[74], '!');
	/* Fed in odd pieces, across line ends and the 95-line period. */
	for (size_t off = 0; off < sizeof(buf);) {
		size_t n = sizeof(buf) - off < 37 ? sizeof(buf) - off : 37;

		assert_true(verify_chargen_feed(&st, buf + off, n));
		off += n;
	}
	assert_int_equal(st.offset, sizeof(buf));
	/* Any first line: xinetd and ringd may start elsewhere. */
	memset(&st, 0, sizeof(st));
	chargen_make(buf, sizeof(buf), 40);
	assert_true(verify_chargen_feed(&st, buf, sizeof(buf)));
}

/* xinetd's ring: '!' to '}', 93 characters. */
static size_t chargen_make93(unsigned char *out, size_t n, unsigned first)
{
	size_t k = 0;

	for (unsigned line = first; k < n; line++)
		for (unsigned col = 0; col < 74 && k < n; col++)
			out[k++] = col == 72 ? '\r' : col == 73 ? '\n' :
				   (unsigned char)(0x21 + (line + col) % 93);
	return k;
}

static void test_probe_verify_chargen_xinetd_ring(void **state)
{
	unsigned char buf[74 * 200];
	struct verify_chargen st = { 0 };

	chargen_make93(buf, sizeof(buf), 0);
	assert_memory_equal(buf + 74 * 22 + 70, "}!\r\n", 4);
	assert_true(verify_chargen_feed(&st, buf, sizeof(buf)));
	assert_int_equal(st.lo, '!');
	assert_int_equal(st.hi, '}');
	/* xinetd starts over after 95 lines: back to the first line. */
	memset(&st, 0, sizeof(st));
	chargen_make93(buf, 74 * 95, 0);
	chargen_make93(buf + 74 * 95, 74 * 95, 0);
	assert_true(verify_chargen_feed(&st, buf, 74 * 190));
	/* Going back to any other line is still a break. */
	memset(&st, 0, sizeof(st));
	chargen_make93(buf, 74 * 10, 0);
	chargen_make93(buf + 74 * 10, 74 * 10, 3);
	assert_false(verify_chargen_feed(&st, buf, 74 * 20));
	assert_int_equal(st.offset, 74 * 10);
	/* Once the ring is known, a wrap elsewhere is a break: here the
	 * RFC's 95-character stream after xinetd's first wrap. */
	memset(&st, 0, sizeof(st));
	chargen_make93(buf, 74 * 23, 0);
	chargen_make(buf + 74 * 23, 74 * 100, 24);
	assert_false(verify_chargen_feed(&st, buf, 74 * 123));
	assert_true(st.offset >= 74 * 23);
	/* A wrong character late in a line breaks it too. */
	memset(&st, 0, sizeof(st));
	chargen_make(buf, 148, 30);
	buf[74 + 71] = 'A';
	assert_false(verify_chargen_feed(&st, buf, 148));
	assert_int_equal(st.offset, 74 + 71);
}

static void test_probe_verify_chargen_breaks(void **state)
{
	unsigned char buf[300];
	struct verify_chargen st = { 0 };

	chargen_make(buf, sizeof(buf), 0);
	buf[100] = 'X';
	assert_false(verify_chargen_feed(&st, buf, sizeof(buf)));
	assert_int_equal(st.offset, 100);
	/* A missing CR, an LF where a character belongs, a line that
	 * repeats instead of advancing. */
	memset(&st, 0, sizeof(st));
	chargen_make(buf, sizeof(buf), 0);
	buf[72] = '\n';
	assert_false(verify_chargen_feed(&st, buf, sizeof(buf)));
	assert_int_equal(st.offset, 72);
	memset(&st, 0, sizeof(st));
	chargen_make(buf, 148, 0);
	chargen_make(buf + 148, 74, 1);
	assert_false(verify_chargen_feed(&st, buf, 222));
	assert_int_equal(st.offset, 148);
	memset(&st, 0, sizeof(st));
	assert_false(verify_chargen_feed(&st, (const unsigned char *)"\n", 1));
	assert_int_equal(st.offset, 0);
}

static int head(struct verify_http *h, const char *s, const char **why)
{
	return verify_http_head(h, s, strlen(s), why);
}

static void test_probe_verify_http_head(void **state)
{
	struct verify_http h;
	const char *why = NULL;
	const char *r = "HTTP/1.1 503 Service Unavailable\r\n"
			"Content-Length: 12\r\nX-A:  v a l \r\n\r\nbody";
	size_t vlen = 0;
	const char *v;

	assert_int_equal(head(&h, r, &why), 1);
	assert_int_equal(h.status, 503);
	assert_int_equal(h.clen, 12);
	assert_false(h.chunked);
	assert_int_equal(h.head_len, strlen(r) - 4);
	v = verify_http_header(r, h.head_len, "x-a", &vlen);
	assert_non_null(v);
	assert_int_equal(vlen, 5);
	assert_memory_equal(v, "v a l", 5);
	assert_null(verify_http_header(r, h.head_len, "X", &vlen));
	assert_null(verify_http_header(r, h.head_len, "body", &vlen));

	assert_int_equal(head(&h, "HTTP/1.0 200\r\nTransfer-Encoding: "
			      "gzip, chunked\r\n\r\n", &why), 1);
	assert_int_equal(h.status, 200);
	assert_int_equal(h.clen, -1);
	assert_true(h.chunked);
	/* Only chunked as the whole last coding frames the body. */
	assert_int_equal(head(&h, "HTTP/1.1 200\r\nTransfer-Encoding: "
			      "xchunked\r\n\r\n", &why), 1);
	assert_false(h.chunked);
	assert_int_equal(head(&h, "HTTP/1.1 200\r\nTransfer-Encoding: "
			      "chunked, gzip\r\n\r\n", &why), 1);
	assert_false(h.chunked);
	assert_int_equal(head(&h, "HTTP/1.1 200\r\nTransfer-Encoding: "
			      "gzip,\tChunked\r\n\r\n", &why), 1);
	assert_true(h.chunked);
	/* Incomplete heads ask for more, at every cut. */
	for (size_t n = 0; n < strlen(r) - 4; n++)
		assert_int_equal(verify_http_head(&h, r, n, &why), 0);
}

static void test_probe_verify_http_bad_heads(void **state)
{
	struct verify_http h;
	const char *why = NULL;

	assert_int_equal(head(&h, "SSH-2.0-OpenSSH\r\n", &why), -1);
	assert_string_equal(why, "not an HTTP/1.x status line");
	assert_int_equal(head(&h, "HTTP/2 200 OK\r\n\r\n", &why), -1);
	/* Garbage fails before any line end arrives. */
	assert_int_equal(head(&h, "hello", &why), -1);
	assert_string_equal(why, "not an HTTP/1.x status line");
	assert_int_equal(head(&h, "HTTP/", &why), 0);
	assert_int_equal(head(&h, "HTTP/1.1 2x0 OK\r\n\r\n", &why), -1);
	assert_string_equal(why, "bad HTTP status code");
	assert_int_equal(head(&h, "HTTP/1.1 099 X\r\n\r\n", &why), -1);
	assert_int_equal(head(&h, "HTTP/1.1 2000 X\r\n\r\n", &why), -1);
	assert_int_equal(head(&h, "HTTP/1.1 200 OK\r\nnocolon\r\n\r\n", &why),
			 -1);
	assert_string_equal(why, "malformed HTTP header line");
	assert_int_equal(head(&h, "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n"
			      "\r\n", &why), -1);
	assert_string_equal(why, "bad Content-Length");
	assert_int_equal(head(&h, "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n"
			      "\r\n", &why), -1);
}

static int chunked(const char *in, size_t cap, char *out, size_t *len,
		   const char **why)
{
	struct verify_chunked st = { 0 };

	return verify_chunked_feed(&st, (const unsigned char *)in, strlen(in),
				   (unsigned char *)out, cap, len, why);
}

static void test_probe_verify_chunked_body(void **state)
{
	const char *body = "4\r\nWiki\r\n6;ext=1\r\npedia \r\nE\r\nin \r\n\r\n"
			   "chunks.\r\n0\r\nX-Trailer: 1\r\n\r\nafter";
	const char *why = NULL;
	char out[64], buf[128];
	struct verify_chunked st = { 0 };
	size_t len = 0, total = 0;
	int r = 0;

	assert_int_equal(verify_chunked_feed(&st, (const unsigned char *)body,
					     strlen(body), (unsigned char *)out,
					     sizeof(out), &len, &why), 1);
	assert_int_equal(len, 24);
	assert_memory_equal(out, "Wikipedia in \r\n\r\nchunks.", 24);
	/* What follows the end is counted, in the same call or later. */
	assert_int_equal(st.after, 5);
	assert_int_equal(verify_chunked_feed(&st, (const unsigned char *)"xyz",
					     3, (unsigned char *)out,
					     sizeof(out), &len, &why), 1);
	assert_int_equal(len, 0);
	assert_int_equal(st.after, 8);
	memset(&st, 0, sizeof(st));
	/* One byte at a time gives the same, and stops at the end. */
	for (size_t i = 0; i < strlen(body) && r == 0; i++) {
		r = verify_chunked_feed(&st, (const unsigned char *)body + i, 1,
					(unsigned char *)out + total,
					sizeof(out) - total, &len, &why);
		total += len;
	}
	assert_int_equal(r, 1);
	assert_int_equal(total, 24);
	assert_int_equal(st.after, 0);
	assert_memory_equal(out, "Wikipedia in \r\n\r\nchunks.", 24);
	/* In place, and with a cap: the rest is dropped, not an error. */
	strcpy(buf, "a\n0123456789\n0\n\n");
	memset(&st, 0, sizeof(st));
	assert_int_equal(verify_chunked_feed(&st, (unsigned char *)buf,
					     strlen(buf), (unsigned char *)buf,
					     4, &len, &why), 1);
	assert_int_equal(len, 4);
	assert_memory_equal(buf, "0123", 4);
	/* The data count is what came, not what was kept. */
	assert_int_equal(st.data, 10);
	/* Incomplete: more wanted. */
	assert_int_equal(chunked("5\r\nab", 64, out, &len, &why), 0);
	assert_int_equal(len, 2);
	assert_int_equal(chunked("0\r\nTrailer: x\r\n", 64, out, &len, &why), 0);
}

static void test_probe_verify_chunked_malformed(void **state)
{
	const char *why = NULL;
	char out[64];
	size_t len;

	assert_int_equal(chunked("\r\nabc", 64, out, &len, &why), -1);
	assert_string_equal(why, "bad chunk size");
	assert_int_equal(chunked("zz\r\n", 64, out, &len, &why), -1);
	assert_string_equal(why, "bad chunk size");
	assert_int_equal(chunked("2\r\nabc\r\n", 64, out, &len, &why), -1);
	assert_string_equal(why, "chunk not followed by CRLF");
	assert_int_equal(chunked("1234567890abcdef0\r\n", 64, out, &len, &why),
			 -1);
	assert_string_equal(why, "chunk size too large");
}

static bool has_close(const char *v)
{
	return verify_http_has_token(v, strlen(v), "close");
}

static void test_probe_verify_token_lists(void **state)
{
	assert_true(has_close("close"));
	assert_true(has_close("Close"));
	assert_true(has_close("keep-alive, close"));
	assert_true(has_close("keep-alive,close"));
	/* OWS is a tab as well as a space (RFC 9110 5.6.3). */
	assert_true(has_close("keep-alive,\tclose"));
	assert_true(has_close("close\t, te"));
	assert_true(has_close("te ,\t close \t"));
	assert_true(has_close(", , close"));
	assert_false(has_close(""));
	assert_false(has_close("keep-alive"));
	assert_false(has_close("closed"));
	assert_false(has_close("x-close, te"));
	assert_false(has_close("clo se"));
	assert_false(has_close("close-please"));
	/* Only the n bytes given count. */
	assert_false(verify_http_has_token("closed", 4, "close"));
	assert_true(verify_http_has_token("te, closed", 9, "close"));
}

static void test_probe_verify_status_lists(void **state)
{
	assert_int_equal(verify_status_match("200-399", 200), 1);
	assert_int_equal(verify_status_match("200-399", 399), 1);
	assert_int_equal(verify_status_match("200-399", 404), 0);
	assert_int_equal(verify_status_match("503", 503), 1);
	assert_int_equal(verify_status_match("200,204,300-302", 301), 1);
	assert_int_equal(verify_status_match("200,204,300-302", 303), 0);
	assert_int_equal(verify_status_match("", 200), -1);
	assert_int_equal(verify_status_match("20", 200), -1);
	assert_int_equal(verify_status_match("300-200", 250), -1);
	assert_int_equal(verify_status_match("200,", 200), -1);
	assert_int_equal(verify_status_match("200x", 200), -1);
	assert_int_equal(verify_status_match("2000", 200), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_probe_verify_time_before_and_after_2036),
		cmocka_unit_test(test_probe_verify_daytime),
		cmocka_unit_test(test_probe_verify_qotd),
		cmocka_unit_test(test_probe_verify_chargen_pattern),
		cmocka_unit_test(test_probe_verify_chargen_breaks),
		cmocka_unit_test(test_probe_verify_chargen_xinetd_ring),
		cmocka_unit_test(test_probe_verify_http_head),
		cmocka_unit_test(test_probe_verify_http_bad_heads),
		cmocka_unit_test(test_probe_verify_chunked_body),
		cmocka_unit_test(test_probe_verify_chunked_malformed),
		cmocka_unit_test(test_probe_verify_token_lists),
		cmocka_unit_test(test_probe_verify_status_lists),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
