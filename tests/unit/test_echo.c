/* The echo plugin against the fake host: bytes back in order, datagrams
 * answered with the same bytes, half-close left to the daemon. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <ringd/plugin.h>

#include "fake_host.h"

extern const struct ringd_plugin ringd_plugin;

static int setup(void **state)
{
	fake_host_reset();
	*state = ringd_plugin.start(&fake_host_get()->host, NULL, NULL);
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	ringd_plugin.stop(*state);
	return 0;
}

static void test_echo_abi(void **state)
{
	(void)state;
	assert_int_equal(ringd_plugin.abi, RINGD_PLUGIN_ABI);
	assert_int_equal(ringd_plugin.size, sizeof(struct ringd_plugin));
	assert_string_equal(ringd_plugin.name, "echo");
	assert_int_equal(ringd_plugin.transports, RINGD_STREAM | RINGD_DGRAM);
	/* No on_eof: the daemon's default (flush, then FIN) is RFC 862's. */
	assert_null(ringd_plugin.on_eof);
}

static void test_echo_stream_in_order(void **state)
{
	struct ringd_conn c = { .wstate = *state };
	struct fake_host *f = fake_host_get();
	char buf[100000];
	size_t i, off = 0;

	for (i = 0; i < sizeof(buf); i++)
		buf[i] = (char)(i * 7 + 3);
	/* Uneven chunks, as recv would deliver them. */
	for (i = 1; off < sizeof(buf); i = i * 3 + 1) {
		size_t n = i < sizeof(buf) - off ? i : sizeof(buf) - off;

		ringd_plugin.on_data(&c, buf + off, n);
		off += n;
	}
	assert_int_equal(f->outlen, sizeof(buf));
	assert_memory_equal(f->out, buf, sizeof(buf));
	assert_int_equal(f->closes, 0);
}

/* Input goes back through send_input(), which may spare the copy. */
static void test_echo_stream_uses_send_input(void **state)
{
	struct ringd_conn c = { .wstate = *state };
	struct fake_host *f = fake_host_get();

	ringd_plugin.on_data(&c, "abc", 3);
	ringd_plugin.on_data(&c, "de", 2);
	assert_int_equal(f->sends, 2);
	assert_int_equal(f->inputs, 2);
	assert_int_equal(f->outlen, 5);
	assert_memory_equal(f->out, "abcde", 5);
}

/* A daemon whose host ends before send_input (built before it was
 * appended) still gets every byte, through send(). */
static int setup_old_host(void **state)
{
	fake_host_reset();
	fake_host_get()->host.size = offsetof(struct ringd_host, send_input);
	*state = ringd_plugin.start(&fake_host_get()->host, NULL, NULL);
	return *state ? 0 : -1;
}

static void test_echo_stream_old_host_uses_send(void **state)
{
	struct ringd_conn c = { .wstate = *state };
	struct fake_host *f = fake_host_get();

	assert_false(RINGD_HAS(&f->host, send_input));
	ringd_plugin.on_data(&c, "abc", 3);
	assert_int_equal(f->sends, 1);
	assert_int_equal(f->inputs, 0);
	assert_int_equal(f->outlen, 3);
	assert_memory_equal(f->out, "abc", 3);
}

static void test_echo_datagram_same_bytes(void **state)
{
	struct fake_host *f = fake_host_get();
	char big[1400];
	struct ringd_dgram d = { .wstate = *state, .len = sizeof(big) };

	memset(big, 'x', sizeof(big));
	ringd_plugin.on_datagram(&d, big, sizeof(big));
	assert_int_equal(f->replies, 1);
	assert_int_equal(f->outlen, sizeof(big));
	assert_memory_equal(f->out, big, sizeof(big));

	d.len = 0;
	ringd_plugin.on_datagram(&d, "", 0);
	assert_int_equal(f->replies, 2);
	assert_int_equal(f->outlen, sizeof(big));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_echo_abi),
		cmocka_unit_test_setup_teardown(test_echo_stream_in_order,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_echo_stream_uses_send_input,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_echo_stream_old_host_uses_send, setup_old_host,
			teardown),
		cmocka_unit_test_setup_teardown(test_echo_datagram_same_bytes,
						setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
