/* The per-source connection table: limits per IPv4 address and IPv6 /64,
 * per service, v4-mapped addresses counted as IPv4, entries gone when
 * their last connection is, memory bounded whatever the number of
 * sources, and deletion that keeps every other entry findable. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/srclimit.h"

static struct sockaddr_storage addr(const char *text)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *sin = (void *)&ss;
	struct sockaddr_in6 *sin6 = (void *)&ss;

	if (inet_pton(AF_INET, text, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(40000);
	} else {
		assert_int_equal(inet_pton(AF_INET6, text, &sin6->sin6_addr), 1);
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(40000);
	}
	return ss;
}

#define SA(ss) ((const struct sockaddr *)&(ss))

static void test_srclimit_limit_per_source(void **state)
{
	struct srclimit *t = srclimit_new(64);
	struct sockaddr_storage a = addr("127.0.0.1"), b = addr("127.0.0.2");

	assert_non_null(t);
	assert_true(srclimit_take(t, 0, SA(a), 2));
	assert_true(srclimit_take(t, 0, SA(a), 2));
	assert_false(srclimit_take(t, 0, SA(a), 2));
	/* Another source, and the same source on another service, are
	 * counted apart. */
	assert_true(srclimit_take(t, 0, SA(b), 2));
	assert_true(srclimit_take(t, 1, SA(a), 2));
	assert_int_equal(srclimit_count(t, 0, SA(a)), 2);
	srclimit_put(t, 0, SA(a));
	assert_true(srclimit_take(t, 0, SA(a), 2));
	srclimit_free(t);
}

static void test_srclimit_ipv6_slash64_and_mapped(void **state)
{
	struct srclimit *t = srclimit_new(64);
	struct sockaddr_storage a1 = addr("2001:db8:1:2::1"),
				a2 = addr("2001:db8:1:2:ffff::9"),
				other = addr("2001:db8:1:82::1"),
				v4 = addr("192.0.2.7"),
				mapped = addr("::ffff:192.0.2.7");

	assert_true(srclimit_take(t, 0, SA(a1), 2));
	assert_true(srclimit_take(t, 0, SA(a2), 2));
	/* Same /64: at its limit. The /64 differing in one bit is not. */
	assert_false(srclimit_take(t, 0, SA(a1), 2));
	assert_true(srclimit_take(t, 0, SA(other), 2));
	assert_true(srclimit_take(t, 0, SA(v4), 1));
	assert_false(srclimit_take(t, 0, SA(mapped), 1));
	srclimit_put(t, 0, SA(mapped));
	assert_int_equal(srclimit_count(t, 0, SA(v4)), 0);
	srclimit_free(t);
}

static void test_srclimit_unix_peers_pass(void **state)
{
	struct srclimit *t = srclimit_new(4);
	struct sockaddr sa = { .sa_family = AF_UNIX };

	for (int i = 0; i < 10; i++)
		assert_true(srclimit_take(t, 0, &sa, 1));
	srclimit_put(t, 0, &sa);
	srclimit_free(t);
}

/* Many sources come and go: the table never holds more than max_open,
 * and after each goes a later lookup still finds every one left (the
 * backward-shift delete). */
static void test_srclimit_bounded_and_consistent(void **state)
{
	enum { MAX = 256 };
	struct srclimit *t = srclimit_new(MAX);
	struct sockaddr_storage ss[MAX + 10];
	char text[32];
	int refused = 0;

	for (int i = 0; i < MAX + 10; i++) {
		snprintf(text, sizeof(text), "10.%d.%d.1", i / 256, i % 256);
		ss[i] = addr(text);
		if (!srclimit_take(t, 0, SA(ss[i]), 5))
			refused++;
	}
	/* Full: the ten past max_open are refused, not stored. */
	assert_int_equal(refused, 10);
	for (int i = 0; i < MAX; i += 2)
		srclimit_put(t, 0, SA(ss[i]));
	for (int i = 1; i < MAX; i += 2)
		assert_int_equal(srclimit_count(t, 0, SA(ss[i])), 1);
	for (int i = 0; i < MAX; i += 2)
		assert_int_equal(srclimit_count(t, 0, SA(ss[i])), 0);
	/* Room again for new sources. */
	for (int i = MAX; i < MAX + 10; i++)
		assert_true(srclimit_take(t, 0, SA(ss[i]), 5));
	srclimit_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_srclimit_limit_per_source),
		cmocka_unit_test(test_srclimit_ipv6_slash64_and_mapped),
		cmocka_unit_test(test_srclimit_unix_peers_pass),
		cmocka_unit_test(test_srclimit_bounded_and_consistent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
