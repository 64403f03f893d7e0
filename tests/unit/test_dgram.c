/* The UDP source rules every UDP plugin sits behind: reflection source
 * ports, our own service ports and bogus sources are refused; ordinary
 * clients, loopback included, are admitted. Then the socket itself on a
 * real loop (epoll): the rate limit, the reply rules and the back-off
 * after receive errors. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/conf.h"
#include "daemon/daemon.h"
#include "daemon/dgram.h"
#include "daemon/host.h"
#include "daemon/loop.h"

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

/* -- the socket on a loop ---------------------------------------------- */

struct dg_seen {
	int datagrams;
	int reply_res[3];
	size_t reply_len; /* what the plugin tries to send back */
	int nreplies;     /* how many times it tries */
	int idle;
};

static struct dg_seen dg_seen;
static struct ringd_dgram *dg_last; /* kept past the hook, wrongly */

static void p_datagram(struct ringd_dgram *d, const void *buf, size_t len)
{
	static char out[2048];

	dg_seen.datagrams++;
	dg_last = d;
	memset(out, 'r', sizeof(out));
	for (int i = 0; i < dg_seen.nreplies && i < 3; i++)
		dg_seen.reply_res[i] = host_api.reply(
			d, out, dg_seen.reply_len ? dg_seen.reply_len : len);
}

static void on_idle(void *arg)
{
	dg_seen.idle++;
}

static struct ringd_plugin dg_plugin = { .abi = RINGD_PLUGIN_ABI,
					 .size = sizeof(struct ringd_plugin),
					 .name = "test",
					 .on_datagram = p_datagram };
static struct service_conf dg_sc = { .name = "test" };
static struct daemon dg_daemon;
static struct ringd_instance dg_inst = { .sc = &dg_sc, .p = &dg_plugin,
					 .d = &dg_daemon };

struct dg_fixture {
	struct loop *l;
	struct ringd_conf conf;
	struct dgram_guard *gd;
	struct dgram *g;
	int server, client;
};

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void stop_fired(struct loop_timer *t)
{
	loop_stop(t->data);
}

static void dg_run_for(struct dg_fixture *f, int64_t ms)
{
	struct loop_timer t = { .cb = stop_fired, .data = f->l };

	loop_timer_set(f->l, &t, mono_ns() + ms * 1000000);
	assert_int_equal(loop_run(f->l), 0);
}

static int udp_bound(struct sockaddr_in *sin)
{
	socklen_t len = sizeof(*sin);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;

	assert_true(fd >= 0);
	*sin = (struct sockaddr_in){ .sin_family = AF_INET,
				     .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
	assert_int_equal(bind(fd, (struct sockaddr *)sin, sizeof(*sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)sin, &len), 0);
	return fd;
}

/* server is a bound UDP socket served by a dgram; client talks to it. */
static struct dg_fixture *dg_new(int64_t rate, int64_t burst, int server)
{
	struct dg_fixture *f = calloc(1, sizeof(*f));
	struct loop_params p = { .backend = LOOP_BACKEND_EPOLL };
	struct sockaddr_in ss, cs;

	assert_non_null(f);
	memset(&dg_seen, 0, sizeof(dg_seen));
	dg_seen.nreplies = 1;
	assert_int_equal(loop_new(&f->l, &p), 0);
	f->conf.udp_rate = rate;
	f->conf.udp_burst = burst;
	f->gd = dgram_guard_new(&f->conf);
	assert_non_null(f->gd);
	if (server < 0) {
		f->server = udp_bound(&ss);
		f->client = udp_bound(&cs);
		assert_int_equal(connect(f->client, (struct sockaddr *)&ss,
					 sizeof(ss)), 0);
	} else {
		f->server = server;
		f->client = -1;
	}
	f->g = dgram_open(f->l, f->gd, &dg_inst, NULL, f->server, on_idle, f);
	assert_non_null(f->g);
	return f;
}

static void dg_free(struct dg_fixture *f)
{
	dgram_close(f->g);
	if (!dgram_idle(f->g))
		dg_run_for(f, 20);
	assert_true(dgram_idle(f->g));
	dgram_free(f->g);
	dgram_guard_free(f->gd);
	loop_free(f->l);
	close(f->server);
	if (f->client >= 0)
		close(f->client);
	free(f);
}

static int dg_replies(struct dg_fixture *f)
{
	char buf[4096];
	int n = 0;

	while (recv(f->client, buf, sizeof(buf), MSG_DONTWAIT) >= 0)
		n++;
	return n;
}

static void test_dgram_one_reply_per_datagram(void **state)
{
	struct dg_fixture *f = dg_new(0, 0, -1);

	dg_seen.nreplies = 3;
	assert_int_equal(send(f->client, "ping", 4, 0), 4);
	dg_run_for(f, 20);
	assert_int_equal(dg_seen.datagrams, 1);
	assert_int_equal(dg_seen.reply_res[0], 0);
	assert_int_equal(dg_seen.reply_res[1], -EALREADY);
	assert_int_equal(dg_seen.reply_res[2], -EALREADY);
	assert_int_equal(dg_replies(f), 1);
	/* The next datagram may be answered again. */
	assert_int_equal(send(f->client, "ping", 4, 0), 4);
	dg_run_for(f, 20);
	assert_int_equal(dg_seen.reply_res[0], 0);
	assert_int_equal(dg_replies(f), 1);
	dg_free(f);
}

/* A plugin that keeps the datagram and replies after its hook returned
 * is refused: the address it would answer is no longer its source. */
static void test_dgram_no_reply_after_the_hook(void **state)
{
	struct dg_fixture *f = dg_new(0, 0, -1);

	dg_seen.nreplies = 0;
	assert_int_equal(send(f->client, "ping", 4, 0), 4);
	dg_run_for(f, 20);
	assert_int_equal(dg_seen.datagrams, 1);
	assert_int_equal(host_api.reply(dg_last, "late", 4), -EALREADY);
	assert_int_equal(dg_replies(f), 0);
	dg_free(f);
}

static void test_dgram_reply_size_rule(void **state)
{
	struct dg_fixture *f = dg_new(0, 0, -1);
	char big[1000] = { 0 };

	/* Larger than the request and than 512: refused. */
	dg_seen.reply_len = 513;
	assert_int_equal(send(f->client, "ping", 4, 0), 4);
	dg_run_for(f, 20);
	assert_int_equal(dg_seen.reply_res[0], -EMSGSIZE);
	assert_int_equal(dg_replies(f), 0);
	/* 512 is allowed whatever the request. */
	dg_seen.reply_len = 512;
	assert_int_equal(send(f->client, "ping", 4, 0), 4);
	dg_run_for(f, 20);
	assert_int_equal(dg_seen.reply_res[0], 0);
	/* No larger than the request: allowed. */
	dg_seen.reply_len = 1000;
	assert_int_equal(send(f->client, big, sizeof(big), 0), sizeof(big));
	dg_run_for(f, 20);
	assert_int_equal(dg_seen.reply_res[0], 0);
	assert_int_equal(dg_replies(f), 2);
	dg_free(f);
}

static void test_dgram_rate_limit_drops_before_plugin(void **state)
{
	struct dg_fixture *f = dg_new(1, 3, -1);

	for (int i = 0; i < 10; i++)
		assert_int_equal(send(f->client, "ping", 4, 0), 4);
	dg_run_for(f, 30);
	/* The burst reaches the plugin; the rest never do. */
	assert_int_equal(dg_seen.datagrams, 3);
	assert_int_equal(dg_replies(f), 3);
	dg_free(f);
}

/* recvmsg on a stream socket that is not connected fails at once, every
 * time: without a back-off the worker would spin on it. */
static void test_dgram_recv_error_backs_off(void **state)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct dg_fixture *f;

	assert_true(fd >= 0);
	f = dg_new(0, 0, fd);
	dg_run_for(f, 300);
	/* 10, 20, 40, 80, 160 ms: at most six tries in 300 ms. */
	assert_true(dgram_recv_errors(f->g) >= 2);
	assert_true(dgram_recv_errors(f->g) <= 6);
	assert_int_equal(dg_seen.datagrams, 0);
	dg_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dgram_refuses_reflection_ports),
		cmocka_unit_test(test_dgram_refuses_own_ports),
		cmocka_unit_test(test_dgram_refuses_bogus_sources),
		cmocka_unit_test(test_dgram_admits_clients),
		cmocka_unit_test(test_dgram_refuses_non_ip),
		cmocka_unit_test(test_dgram_one_reply_per_datagram),
		cmocka_unit_test(test_dgram_no_reply_after_the_hook),
		cmocka_unit_test(test_dgram_reply_size_rule),
		cmocka_unit_test(test_dgram_rate_limit_drops_before_plugin),
		cmocka_unit_test(test_dgram_recv_error_backs_off),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
