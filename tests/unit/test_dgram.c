/* The UDP guard every UDP plugin sits behind: reflection source ports and
 * our own service ports are refused, ordinary clients admitted. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/dgram.h"

static const uint16_t own[] = { 7007, 7013, 8080 };

static const char *guard_v4(uint16_t port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_port = htons(port) };

	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	return dgram_guard((struct sockaddr *)&sin, own, 3);
}

static const char *guard_v6(uint16_t port)
{
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6,
				     .sin6_port = htons(port) };

	inet_pton(AF_INET6, "::1", &sin6.sin6_addr);
	return dgram_guard((struct sockaddr *)&sin6, own, 3);
}

static void test_dgram_guard_reflection_ports(void **state)
{
	static const uint16_t bad[] = { 0, 7, 19, 53, 123, 1023 };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_non_null(guard_v4(bad[i]));
		assert_non_null(guard_v6(bad[i]));
	}
	assert_string_equal(guard_v4(53), "source port below 1024");
}

static void test_dgram_guard_own_ports(void **state)
{
	(void)state;
	assert_string_equal(guard_v4(7007),
			    "source port is one of our service ports");
	assert_non_null(guard_v6(7013));
	assert_non_null(guard_v4(8080));
	assert_null(guard_v4(8081));
}

static void test_dgram_guard_admits_clients(void **state)
{
	(void)state;
	assert_null(guard_v4(1024));
	assert_null(guard_v4(40000));
	assert_null(guard_v6(65535));
}

static void test_dgram_guard_refuses_non_ip(void **state)
{
	struct sockaddr sa = { .sa_family = AF_UNIX };

	(void)state;
	assert_non_null(dgram_guard(&sa, own, 3));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dgram_guard_reflection_ports),
		cmocka_unit_test(test_dgram_guard_own_ports),
		cmocka_unit_test(test_dgram_guard_admits_clients),
		cmocka_unit_test(test_dgram_guard_refuses_non_ip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
