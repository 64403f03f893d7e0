/* The UDP source rules every UDP plugin sits behind: reflection source
 * ports, our own service ports and bogus sources are refused; ordinary
 * clients, loopback included, are admitted. */
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

static int check_v4(const char *addr, uint16_t port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_port = htons(port) };

	assert_int_equal(inet_pton(AF_INET, addr, &sin.sin_addr), 1);
	return dgram_check_source((struct sockaddr *)&sin, own, 3);
}

static int check_v6(const char *addr, uint16_t port)
{
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6,
				     .sin6_port = htons(port) };

	assert_int_equal(inet_pton(AF_INET6, addr, &sin6.sin6_addr), 1);
	return dgram_check_source((struct sockaddr *)&sin6, own, 3);
}

static void test_dgram_refuses_reflection_ports(void **state)
{
	static const uint16_t bad[] = { 0, 7, 19, 53, 123, 1023 };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(check_v4("127.0.0.1", bad[i]),
				 DGRAM_DROP_LOW_PORT);
		assert_int_equal(check_v6("::1", bad[i]), DGRAM_DROP_LOW_PORT);
	}
}

static void test_dgram_refuses_own_ports(void **state)
{
	(void)state;
	assert_int_equal(check_v4("127.0.0.1", 7007), DGRAM_DROP_OWN_PORT);
	assert_int_equal(check_v6("::1", 7013), DGRAM_DROP_OWN_PORT);
	assert_int_equal(check_v4("192.0.2.1", 8080), DGRAM_DROP_OWN_PORT);
	assert_int_equal(check_v4("192.0.2.1", 8081), -1);
}

static void test_dgram_refuses_bogus_sources(void **state)
{
	static const char *const v4[] = { "0.0.0.0", "0.1.2.3",
					   "224.0.0.1", "239.255.255.250",
					   "240.0.0.1", "255.255.255.255" };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(v4) / sizeof(v4[0]); i++)
		assert_int_equal(check_v4(v4[i], 40000), DGRAM_DROP_BOGUS);
	assert_int_equal(check_v6("::", 40000), DGRAM_DROP_BOGUS);
	assert_int_equal(check_v6("ff02::1", 40000), DGRAM_DROP_BOGUS);
	assert_int_equal(check_v6("::ffff:255.255.255.255", 40000),
			 DGRAM_DROP_BOGUS);
	assert_int_equal(check_v6("::ffff:224.0.0.5", 40000), DGRAM_DROP_BOGUS);
}

static void test_dgram_admits_clients(void **state)
{
	(void)state;
	assert_int_equal(check_v4("127.0.0.1", 1024), -1);
	assert_int_equal(check_v4("127.255.0.9", 40000), -1);
	assert_int_equal(check_v4("223.255.255.254", 40000), -1);
	assert_int_equal(check_v4("1.0.0.1", 65535), -1);
	assert_int_equal(check_v6("::1", 65535), -1);
	assert_int_equal(check_v6("2001:db8::1", 50000), -1);
	assert_int_equal(check_v6("::ffff:127.0.0.1", 50000), -1);
}

static void test_dgram_refuses_non_ip(void **state)
{
	struct sockaddr sa = { .sa_family = AF_UNIX };

	(void)state;
	assert_int_equal(dgram_check_source(&sa, own, 3), DGRAM_DROP_BOGUS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dgram_refuses_reflection_ports),
		cmocka_unit_test(test_dgram_refuses_own_ports),
		cmocka_unit_test(test_dgram_refuses_bogus_sources),
		cmocka_unit_test(test_dgram_admits_clients),
		cmocka_unit_test(test_dgram_refuses_non_ip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
