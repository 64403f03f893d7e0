/* Unit tests for cidr.c: accepted forms and how they are stored,
 * refusals with their messages, and matching at prefix boundaries for
 * both families and v4-mapped peers. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "daemon/cidr.h"

/* Parses s and checks what is stored; addr, when given, is the whole
 * 16-byte field (host bits and the unused tail zero). */
static void cidr_ok_at(const char *s, int family, unsigned len,
		       const uint8_t *addr)
{
	const char *why = NULL;
	struct cidr c;

	memset(&c, 0xaa, sizeof(c));
	assert_int_equal(cidr_parse(s, &c, &why), 0);
	assert_null(why);
	assert_int_equal(c.family, family);
	assert_int_equal(c.len, len);
	if (addr != NULL)
		assert_memory_equal(c.addr, addr, sizeof(c.addr));
}

static void cidr_ok(const char *s, int family, unsigned len)
{
	cidr_ok_at(s, family, len, NULL);
}

static void cidr_bad(const char *s, const char *msg)
{
	const char *why = NULL;
	struct cidr c = { .family = 99 };

	assert_int_equal(cidr_parse(s, &c, &why), -EINVAL);
	assert_non_null(why);
	assert_string_equal(why, msg);
	assert_int_equal(c.family, 99);
}

static void test_cidr_parse_prefixes_and_bare_addresses(void **state)
{
	static const uint8_t net24[16] = { 192, 0, 2, 0 };
	static const uint8_t db8[16] = { 0x20, 0x01, 0x0d, 0xb8 };

	cidr_ok_at("192.0.2.0/24", AF_INET, 24, net24);
	cidr_ok_at("2001:db8::/32", AF_INET6, 32, db8);
	cidr_ok("10.1.2.3", AF_INET, 32);
	cidr_ok("::1", AF_INET6, 128);
	cidr_ok("0.0.0.0/0", AF_INET, 0);
	cidr_ok("::/0", AF_INET6, 0);
	cidr_ok("10.1.2.3/32", AF_INET, 32);
	cidr_ok("2001:db8::1/128", AF_INET6, 128);
	cidr_ok("10.0.0.0/07", AF_INET, 7);
	cidr_ok("10.0.0.128/25", AF_INET, 25);
}

static void test_cidr_parse_v4_mapped_becomes_ipv4(void **state)
{
	static const uint8_t net24[16] = { 192, 0, 2, 0 };
	static const uint8_t host[16] = { 192, 0, 2, 7 };

	cidr_ok_at("::ffff:192.0.2.0/120", AF_INET, 24, net24);
	cidr_ok_at("::ffff:192.0.2.7", AF_INET, 32, host);
	cidr_ok("::ffff:0.0.0.0/96", AF_INET, 0);
	/* Shorter than the mapped space itself: an IPv6 prefix. */
	cidr_ok("::fffe:0:0/95", AF_INET6, 95);
	cidr_bad("::ffff:0:0/95", "host bits set past the prefix length "
		 "(write the network address)");
}

static void test_cidr_parse_refusals(void **state)
{
	cidr_bad("10.0.0.0/33", "prefix length past 32 for IPv4");
	cidr_bad("::/129", "prefix length past 128 for IPv6");
	cidr_bad("10.0.0.0/99999999999", "prefix length past 32 for IPv4");
	cidr_bad("::ffff:10.0.0.0/129", "prefix length past 128 for IPv6");
	cidr_bad("localhost", "not an IPv4 or IPv6 address (host names are "
		 "not accepted)");
	cidr_bad("10.0.0/8", "not an IPv4 or IPv6 address (host names are "
		 "not accepted)");
	cidr_bad("", "empty prefix");
	cidr_bad("/8", "missing address before '/'");
	cidr_bad("10.0.0.0/", "missing prefix length after '/'");
	cidr_bad("10.0.0.0/x", "prefix length is not a number");
	cidr_bad("10.0.0.0/-1", "prefix length is not a number");
	cidr_bad("10.0.0.0/8x", "unexpected text after the prefix length");
	cidr_bad("10.0.0.0/8/8", "unexpected text after the prefix length");
	cidr_bad("10.0.0.0/ 8", "prefix length is not a number");
	cidr_bad("10.0.0.1/8", "host bits set past the prefix length (write "
		 "the network address)");
	cidr_bad("10.0.0.64/25", "host bits set past the prefix length "
		 "(write the network address)");
	cidr_bad("2001:db8::1/64", "host bits set past the prefix length "
		 "(write the network address)");
	cidr_bad("1.2.3.4.5", "not an IPv4 or IPv6 address (host names are "
		 "not accepted)");
}

static struct sockaddr_in6 sa6(const char *text)
{
	struct sockaddr_in6 s = { .sin6_family = AF_INET6 };

	assert_int_equal(inet_pton(AF_INET6, text, &s.sin6_addr), 1);
	return s;
}

static struct sockaddr_in sa4(const char *text)
{
	struct sockaddr_in s = { .sin_family = AF_INET };

	assert_int_equal(inet_pton(AF_INET, text, &s.sin_addr), 1);
	return s;
}

static bool match4(const struct cidr_list *l, const char *text)
{
	struct sockaddr_in s = sa4(text);

	return cidr_list_match(l, (const struct sockaddr *)&s);
}

static bool match6(const struct cidr_list *l, const char *text)
{
	struct sockaddr_in6 s = sa6(text);

	return cidr_list_match(l, (const struct sockaddr *)&s);
}

static void list_of(struct cidr_list *l, struct cidr *v, size_t n,
		    const char *const *text)
{
	const char *why;

	for (size_t i = 0; i < n; i++)
		assert_int_equal(cidr_parse(text[i], &v[i], &why), 0);
	l->v = v;
	l->n = n;
}

static void test_cidr_match_ipv4_boundaries(void **state)
{
	static const char *const text[] = { "10.0.0.0/8", "192.0.2.128/25" };
	struct cidr v[2];
	struct cidr_list l;

	list_of(&l, v, 2, text);
	assert_true(match4(&l, "10.0.0.0"));
	assert_true(match4(&l, "10.255.255.255"));
	assert_false(match4(&l, "11.0.0.0"));
	assert_false(match4(&l, "9.255.255.255"));
	assert_true(match4(&l, "192.0.2.128"));
	assert_true(match4(&l, "192.0.2.255"));
	assert_false(match4(&l, "192.0.2.127"));
	assert_false(match4(&l, "192.0.3.128"));
	/* v4-mapped peers (a dual-stack listener) match as IPv4. */
	assert_true(match6(&l, "::ffff:10.1.2.3"));
	assert_false(match6(&l, "::ffff:192.0.2.1"));
	assert_false(match6(&l, "::a01:203"));
}

static void test_cidr_match_ipv6_and_mapped_prefixes(void **state)
{
	static const char *const text[] = { "2001:db8::/33", "::1",
					     "::ffff:198.51.100.0/120" };
	struct cidr v[3];
	struct cidr_list l;

	list_of(&l, v, 3, text);
	assert_true(match6(&l, "2001:db8::"));
	assert_true(match6(&l, "2001:db8:7fff:ffff:ffff:ffff:ffff:ffff"));
	assert_false(match6(&l, "2001:db8:8000::"));
	assert_false(match6(&l, "2001:db9::"));
	assert_true(match6(&l, "::1"));
	assert_false(match6(&l, "::2"));
	assert_true(match4(&l, "198.51.100.9"));
	assert_true(match6(&l, "::ffff:198.51.100.9"));
	assert_false(match4(&l, "198.51.101.9"));
	/* An IPv4 peer is never inside an IPv6 prefix, ::/0 included. */
	v[0] = (struct cidr){ .family = AF_INET6, .len = 0 };
	assert_true(match6(&l, "fe80::1"));
	assert_false(match4(&l, "10.0.0.1"));
}

static void test_cidr_match_other_families_and_empty(void **state)
{
	static const char *const text[] = { "0.0.0.0/0", "::/0" };
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	struct cidr_list empty = { 0 };
	struct cidr v[2];
	struct cidr_list l;

	list_of(&l, v, 2, text);
	assert_true(match4(&l, "203.0.113.1"));
	assert_true(match6(&l, "2001:db8::1"));
	assert_false(cidr_list_match(&l, (const struct sockaddr *)&un));
	assert_false(cidr_list_match(&empty, (const struct sockaddr *)&un));
	assert_false(match4(&empty, "10.0.0.1"));
	assert_false(match4(NULL, "10.0.0.1"));
}

static void test_cidr_list_free_empties(void **state)
{
	struct cidr_list l = { .v = calloc(3, sizeof(struct cidr)), .n = 3 };

	assert_non_null(l.v);
	cidr_list_free(&l);
	assert_null(l.v);
	assert_int_equal(l.n, 0);
	cidr_list_free(&l);
	cidr_list_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cidr_parse_prefixes_and_bare_addresses),
		cmocka_unit_test(test_cidr_parse_v4_mapped_becomes_ipv4),
		cmocka_unit_test(test_cidr_parse_refusals),
		cmocka_unit_test(test_cidr_match_ipv4_boundaries),
		cmocka_unit_test(test_cidr_match_ipv6_and_mapped_prefixes),
		cmocka_unit_test(test_cidr_match_other_families_and_empty),
		cmocka_unit_test(test_cidr_list_free_empties),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
