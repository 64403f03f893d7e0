/* The per-source token buckets: burst then rate, per source network,
 * other sources unaffected, bounded table, unlimited when rate is 0. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/ratelimit.h"

#define SEC 1000000000LL

static struct sockaddr_storage v4(const char *a, uint16_t port)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	inet_pton(AF_INET, a, &sin->sin_addr);
	return ss;
}

static struct sockaddr_storage v6(const char *a)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(40000);
	inet_pton(AF_INET6, a, &sin6->sin6_addr);
	return ss;
}

static int take_n(struct ratelimit *rl, struct sockaddr_storage *ss, int n,
		  int64_t now)
{
	int ok = 0;

	while (n-- > 0)
		ok += ratelimit_take(rl, (struct sockaddr *)ss, now);
	return ok;
}

static void test_ratelimit_burst_then_rate(void **state)
{
	struct ratelimit *rl = ratelimit_new(64, 10, 20, 1);
	struct sockaddr_storage a = v4("127.0.0.1", 40000);
	int64_t t = 100 * SEC;
	int got = 0, i;

	(void)state;
	assert_int_equal(take_n(rl, &a, 100, t), 20);
	/* A flood for 5 s, one datagram per ms: 10 per second get through. */
	for (i = 1; i <= 5000; i++)
		got += ratelimit_take(rl, (struct sockaddr *)&a,
				      t + i * (SEC / 1000));
	assert_in_range(got, 49, 51);
	ratelimit_free(rl);
}

static void test_ratelimit_sources_independent(void **state)
{
	struct ratelimit *rl = ratelimit_new(4096, 10, 20, 7);
	struct sockaddr_storage a = v4("127.0.0.1", 40000);
	struct sockaddr_storage b = v4("127.0.0.2", 40000);
	int64_t t = 5 * SEC;

	(void)state;
	assert_int_equal(take_n(rl, &a, 1000, t), 20);
	assert_int_equal(take_n(rl, &b, 5, t), 5);
	/* Another port of the same host is the same source. */
	a = v4("127.0.0.1", 50000);
	assert_int_equal(take_n(rl, &a, 5, t), 0);
	ratelimit_free(rl);
}

static void test_ratelimit_ipv6_by_64(void **state)
{
	struct ratelimit *rl = ratelimit_new(4096, 1, 3, 9);
	struct sockaddr_storage a = v6("2001:db8:1:2::1");
	struct sockaddr_storage same64 = v6("2001:db8:1:2:ffff::9");
	struct sockaddr_storage other64 = v6("2001:db8:1:3::1");
	int64_t t = 5 * SEC;

	(void)state;
	assert_int_equal(take_n(rl, &a, 10, t), 3);
	assert_int_equal(take_n(rl, &same64, 10, t), 0);
	assert_int_equal(take_n(rl, &other64, 10, t), 3);
	ratelimit_free(rl);
}

/* The /64s differ only in the top bit of their eighth byte (0x02 against
 * 0x82): the bit a family tag packed into the address would overwrite. */
static void test_ratelimit_ipv6_64_top_bit(void **state)
{
	struct ratelimit *rl = ratelimit_new(4096, 1, 3, 9);
	struct sockaddr_storage a = v6("2001:db8:1:2::1");
	struct sockaddr_storage b = v6("2001:db8:1:82::1");
	int64_t t = 5 * SEC;

	(void)state;
	assert_int_equal(take_n(rl, &a, 10, t), 3);
	assert_int_equal(take_n(rl, &b, 10, t), 3);
	ratelimit_free(rl);
}

/* An IPv4 source and an IPv6 /64 whose leading bytes spell the same
 * address are different sources; a v4-mapped address is the IPv4 one. */
static void test_ratelimit_families_apart(void **state)
{
	struct ratelimit *rl = ratelimit_new(4096, 1, 3, 9);
	struct sockaddr_storage a = v4("10.0.0.1", 40000);
	struct sockaddr_storage look_alike = v6("a00:1::");
	struct sockaddr_storage mapped = v6("::ffff:10.0.0.1");
	int64_t t = 5 * SEC;

	(void)state;
	assert_int_equal(take_n(rl, &a, 10, t), 3);
	assert_int_equal(take_n(rl, &look_alike, 10, t), 3);
	assert_int_equal(take_n(rl, &mapped, 10, t), 0);
	ratelimit_free(rl);
}

static void test_ratelimit_recovers(void **state)
{
	struct ratelimit *rl = ratelimit_new(16, 10, 20, 3);
	struct sockaddr_storage a = v4("10.0.0.1", 40000);
	int64_t t = 5 * SEC;

	(void)state;
	assert_int_equal(take_n(rl, &a, 50, t), 20);
	/* Quiet for 2 s refills the whole burst, and no more. */
	assert_int_equal(take_n(rl, &a, 50, t + 2 * SEC), 20);
	ratelimit_free(rl);
}

static void test_ratelimit_bounded_table(void **state)
{
	/* Far more sources than slots: memory stays fixed, and a flooder
	 * sharing a slot with others still cannot exceed its burst. */
	struct ratelimit *rl = ratelimit_new(8, 10, 20, 5);
	struct sockaddr_storage a = v4("127.0.0.1", 40000);
	char addr[32];
	int64_t t = 5 * SEC;
	int i;

	(void)state;
	for (i = 0; i < 10000; i++) {
		struct sockaddr_storage x;

		snprintf(addr, sizeof(addr), "10.%d.%d.1", i / 250, i % 250);
		x = v4(addr, 40000);
		ratelimit_take(rl, (struct sockaddr *)&x, t);
	}
	assert_true(take_n(rl, &a, 100, t) <= 20);
	ratelimit_free(rl);
}

static void test_ratelimit_zero_rate_unlimited(void **state)
{
	struct rate_params p;
	struct rate_bucket b = { 0 };
	int i, ok = 0;

	(void)state;
	rate_params_init(&p, 0, 0);
	for (i = 0; i < 100000; i++)
		ok += rate_take(&p, &b, 5 * SEC);
	assert_int_equal(ok, 100000);
	rate_params_init(&p, 1000, 1000);
	ok = 0;
	for (i = 0; i < 5000; i++)
		ok += rate_take(&p, &b, 5 * SEC);
	assert_int_equal(ok, 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ratelimit_burst_then_rate),
		cmocka_unit_test(test_ratelimit_sources_independent),
		cmocka_unit_test(test_ratelimit_ipv6_by_64),
		cmocka_unit_test(test_ratelimit_ipv6_64_top_bit),
		cmocka_unit_test(test_ratelimit_families_apart),
		cmocka_unit_test(test_ratelimit_recovers),
		cmocka_unit_test(test_ratelimit_bounded_table),
		cmocka_unit_test(test_ratelimit_zero_rate_unlimited),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
