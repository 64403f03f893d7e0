/* The discard plugin against the fake host: nothing is ever sent or
 * replied, and every connection gets the max_time deadline. */
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

struct fixture {
	void *cfg;
	void *w;
};

static void start(struct fixture *fx, int64_t max_time_ms)
{
	fake_host_reset();
	fx->cfg = calloc(1, ringd_plugin.config_size);
	assert_non_null(fx->cfg);
	memcpy((char *)fx->cfg + fake_plugin_key("max_time")->offset, &max_time_ms,
	       sizeof(max_time_ms));
	fx->w = ringd_plugin.start(&fake_host_get()->host, NULL, fx->cfg);
	assert_non_null(fx->w);
}

static void finish(struct fixture *fx)
{
	ringd_plugin.stop(fx->w);
	free(fx->cfg);
}

static void test_discard_abi(void **state)
{
	(void)state;
	assert_int_equal(ringd_plugin.abi, RINGD_PLUGIN_ABI);
	assert_int_equal(ringd_plugin.size, sizeof(struct ringd_plugin));
	assert_string_equal(ringd_plugin.name, "discard");
	assert_int_equal(ringd_plugin.transports, RINGD_STREAM | RINGD_DGRAM);
	assert_int_equal(fake_plugin_key("max_time")->type, RINGD_KEY_DURATION);
	assert_string_equal(fake_plugin_key("max_time")->def, "10m");
	/* The client's FIN takes the daemon's default: close. */
	assert_null(ringd_plugin.on_eof);
	assert_null(ringd_plugin.check);
}

static void test_discard_stream_sends_nothing(void **state)
{
	struct fake_host *f;
	struct fixture fx;
	struct ringd_conn c;
	char buf[65536];

	(void)state;
	start(&fx, 600000);
	f = fake_host_get();
	c = (struct ringd_conn){ .wstate = fx.w };
	assert_int_equal(ringd_plugin.on_open(&c), 0);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (char)(i * 31);
	for (size_t n = 0; n <= sizeof(buf); n = n * 2 + 1)
		ringd_plugin.on_data(&c, buf, n);
	ringd_plugin.on_data(&c, "GET / HTTP/1.0\r\n\r\n", 18);
	assert_int_equal(f->sends, 0);
	assert_int_equal(f->outlen, 0);
	assert_int_equal(f->closes, 0);
	assert_int_equal(f->aborts, 0);
	finish(&fx);
}

static void test_discard_sets_max_time(void **state)
{
	struct fixture fx;
	struct ringd_conn c;

	(void)state;
	start(&fx, 1500);
	c = (struct ringd_conn){ .wstate = fx.w };
	assert_int_equal(ringd_plugin.on_open(&c), 0);
	assert_int_equal(fake_host_get()->timeout_ms, 1500);
	finish(&fx);

	/* 0: no deadline of its own, only the service's idle_timeout. */
	start(&fx, 0);
	fake_host_get()->timeout_ms = -7;
	c = (struct ringd_conn){ .wstate = fx.w };
	assert_int_equal(ringd_plugin.on_open(&c), 0);
	assert_int_equal(fake_host_get()->timeout_ms, -7);
	finish(&fx);
}

static void test_discard_datagram_dropped(void **state)
{
	struct fake_host *f;
	struct fixture fx;
	struct ringd_dgram d;
	char big[1400];

	(void)state;
	start(&fx, 0);
	f = fake_host_get();
	memset(big, 'd', sizeof(big));
	d = (struct ringd_dgram){ .wstate = fx.w, .len = sizeof(big) };
	ringd_plugin.on_datagram(&d, big, sizeof(big));
	d.len = 0;
	ringd_plugin.on_datagram(&d, "", 0);
	assert_int_equal(f->replies, 0);
	assert_int_equal(f->outlen, 0);
	finish(&fx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_discard_abi),
		cmocka_unit_test(test_discard_stream_sends_nothing),
		cmocka_unit_test(test_discard_sets_max_time),
		cmocka_unit_test(test_discard_datagram_dropped),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
