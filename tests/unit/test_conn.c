/* conn.c against a real loop (the engine named by argv[1]) over unix
 * socketpairs, with plugins defined here: close ordering, high and low
 * water, the set's output budget, a plugin that refuses in on_open() and
 * one that calls the host from on_close(), the log_connections line, and
 * running out of memory (calloc is wrapped to fail on demand). The peer
 * end is driven from this thread between short runs of the loop. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "daemon/conf.h"
#include "daemon/conn.h"
#include "daemon/daemon.h"
#include "daemon/host.h"
#include "daemon/log.h"
#include "daemon/loop.h"

#define MSEC 1000000LL

/* The next fail_callocs calls of calloc() fail, as under memory
 * pressure. */
static int fail_callocs;
void *__real_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size)
{
	if (fail_callocs > 0) {
		fail_callocs--;
		errno = ENOMEM;
		return NULL;
	}
	return __real_calloc(n, size);
}

/* stderr into a pipe of ours while a test looks at log lines. */
static int log_pipe[2] = { -1, -1 };
static int saved_stderr = -1;
static char logged[8192];

static void capture_log(void)
{
	assert_int_equal(pipe2(log_pipe, O_NONBLOCK | O_CLOEXEC), 0);
	saved_stderr = dup(STDERR_FILENO);
	assert_true(saved_stderr >= 0);
	assert_true(dup2(log_pipe[1], STDERR_FILENO) >= 0);
	log_init(RINGD_LOG_INFO);
}

/* What was logged since the last call, NUL-terminated. */
static const char *read_log(void)
{
	ssize_t n = read(log_pipe[0], logged, sizeof(logged) - 1);

	logged[n > 0 ? n : 0] = '\0';
	return logged;
}

static void release_log(void)
{
	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	close(log_pipe[0]);
	close(log_pipe[1]);
}

static enum loop_backend test_backend;

/* What the plugins and the gone callback saw. */
struct seen {
	int gone;
	int opened, closed;
	size_t received;
	size_t max_queued;
	int close_send_res;
	size_t send_on_open; /* bytes on_open queues before close() */
	size_t max_held;     /* the set's held memory, seen from on_data */
};

/* The set under test, for plugins that look at its accounting. */
static struct conn_set *cur_set;

static struct seen seen;

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void on_gone(void *arg, const struct ringd_instance *inst,
		    const struct sockaddr *peer)
{
	seen.gone++;
}

static int p_refuse_open(struct ringd_conn *c)
{
	seen.opened++;
	return -1;
}

static int p_count_open(struct ringd_conn *c)
{
	static char big[256 * 1024];

	seen.opened++;
	if (seen.send_on_open) {
		memset(big, 'o', sizeof(big));
		assert_true(seen.send_on_open <= sizeof(big));
		assert_int_equal(host_api.send(c, big, seen.send_on_open), 0);
		host_api.close(c);
	}
	return 0;
}

static void p_echo(struct ringd_conn *c, const void *buf, size_t len)
{
	size_t q;

	seen.received += len;
	assert_int_equal(host_api.send(c, buf, len), 0);
	q = host_api.queued(c);
	if (q > seen.max_queued)
		seen.max_queued = q;
}

/* Echo through send_input(): the reply may leave from the loop's own
 * buffer. */
static void p_echo_input(struct ringd_conn *c, const void *buf, size_t len)
{
	size_t q;

	seen.received += len;
	assert_int_equal(host_api.send_input(c, buf, len), 0);
	q = host_api.queued(c);
	if (q > seen.max_queued)
		seen.max_queued = q;
	if (cur_set->held > seen.max_held)
		seen.max_held = cur_set->held;
}

/* Echo in two send_input() calls: the second, behind the first, must
 * be copied, and the two leave in order. */
static void p_echo_input_halves(struct ringd_conn *c, const void *buf,
				size_t len)
{
	size_t half = len / 2;

	seen.received += len;
	assert_int_equal(host_api.send_input(c, buf, half), 0);
	assert_int_equal(
		host_api.send_input(c, (const char *)buf + half, len - half), 0);
}

static void p_bad_close(struct ringd_conn *c)
{
	seen.closed++;
	seen.close_send_res = host_api.send(c, "x", 1);
	host_api.close(c);
	host_api.abort(c);
	host_api.set_timeout(c, 1);
}

static void p_count_close(struct ringd_conn *c)
{
	seen.closed++;
}

static struct ringd_plugin plugin = { .abi = RINGD_PLUGIN_ABI,
				      .size = sizeof(struct ringd_plugin),
				      .name = "test" };
static struct service_conf sc = { .name = "test" };
static struct ringd_instance inst = { .sc = &sc, .p = &plugin };
static void *wstate[1];

struct fixture {
	struct loop *l;
	struct conn_set set;
};

static struct fixture *fixture_new(size_t budget)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct loop_params p = { .backend = test_backend };

	assert_non_null(f);
	assert_int_equal(loop_new(&f->l, &p), 0);
	conn_set_init(&f->set, f->l, wstate, budget, on_gone, NULL);
	memset(&seen, 0, sizeof(seen));
	cur_set = &f->set;
	return f;
}

static void fixture_free(struct fixture *f)
{
	assert_int_equal(conn_set_count(&f->set), 0);
	conn_set_fini(&f->set);
	loop_free(f->l);
	free(f);
}

struct stopper {
	struct loop_timer t;
	struct loop *l;
};

static void stopper_fire(struct loop_timer *t)
{
	loop_stop(((struct stopper *)t->data)->l);
}

/* Let the loop work for ms milliseconds. */
static void run_for(struct fixture *f, int64_t ms)
{
	struct stopper s = { .t = { .cb = stopper_fire }, .l = f->l };

	s.t.data = &s;
	loop_timer_set(f->l, &s.t, mono_ns() + ms * MSEC);
	assert_int_equal(loop_run(f->l), 0);
}

/* Returns the peer end; the other end belongs to the set. */
static int open_pair(struct fixture *f, int sndbuf)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
						     SOCK_CLOEXEC, 0, sv), 0);
	if (sndbuf) {
		setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
		setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	}
	assert_int_equal(conn_open(&f->set, &inst, sv[0], NULL, 0), 0);
	return sv[1];
}

/* Reads what is there; -1 once EOF was seen. */
static ssize_t drain_peer(int fd, unsigned char *out, size_t *have,
			  size_t cap)
{
	ssize_t n;

	for (;;) {
		n = read(fd, out ? out + *have : (unsigned char[65536]){ 0 },
			 out ? cap - *have : 65536);
		if (n == 0)
			return -1;
		if (n < 0)
			return errno == EAGAIN ? 0 : -1;
		*have += (size_t)n;
	}
}

/* A response of a copied header and a referenced body, twice, as a
 * plugin answering two pipelined requests in one on_data() would. */
static void p_respond_twice(struct ringd_conn *c, const void *buf, size_t len)
{
	static const char body[] = "body\n";

	for (int i = 0; i < 2; i++) {
		conn_send(c, "head\n", 5, 1);
		conn_send(c, body, 5, 0);
	}
}

/* Sends made inside a hook leave together when it returns. */
static void test_conn_sends_in_a_hook_leave_together(void **state)
{
	struct fixture *f = fixture_new(0);
	unsigned char got[64];
	size_t have = 0;
	int peer;

	plugin.on_data = p_respond_twice;
	peer = open_pair(f, 0);
	run_for(f, 10);
	assert_int_equal(write(peer, "x", 1), 1);
	run_for(f, 30);
	drain_peer(peer, got, &have, sizeof(got));
	assert_int_equal(have, 20);
	assert_memory_equal(got, "head\nbody\nhead\nbody\n", 20);
	/* One send: nothing left before the hook returned, and the small
	 * referenced bodies joined the copied headers. */
	assert_int_equal(f->set.stats.sends, 1);
	close(peer);
	run_for(f, 20);
	fixture_free(f);
}

static void peer_roundtrip_unlogged(struct fixture *f)
{
	unsigned char got[4];
	size_t have = 0;
	int peer = open_pair(f, 0);

	assert_int_equal(write(peer, "abc", 3), 3);
	run_for(f, 20);
	drain_peer(peer, got, &have, sizeof(got));
	assert_int_equal(have, 3);
	close(peer);
	run_for(f, 20);
}

/* A connected TCP pair over loopback: *srv gets the accepted end. */
static int tcp_pair(int *srv)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int cl = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;

	assert_true(ls >= 0 && cl >= 0);
	assert_int_equal(bind(ls, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(ls, 1), 0);
	assert_int_equal(getsockname(ls, (struct sockaddr *)&a, &alen), 0);
	assert_int_equal(connect(cl, (struct sockaddr *)&a, sizeof(a)), 0);
	*srv = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	assert_true(*srv >= 0);
	/* As on ringd's listeners: without the FIN riding along, the reply
	 * and the FIN would be two packets. */
	setsockopt(*srv, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	close(ls);
	return cl;
}

/* Sends a request, reads to EOF; returns the segments the client got
 * over the whole connection (TCP_INFO). */
static unsigned client_segments(struct fixture *f, int cl)
{
	struct tcp_info ti = { 0 };
	socklen_t tlen = sizeof(ti);
	char buf[256];
	int64_t end = mono_ns() + 3000 * MSEC;
	ssize_t n = 1;

	assert_int_equal(write(cl, "q", 1), 1);
	while (n != 0 && mono_ns() < end) {
		if (f)
			run_for(f, 2);
		n = recv(cl, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && !f)
			poll(&(struct pollfd){ .fd = cl, .events = POLLIN }, 1,
			     100);
	}
	assert_int_equal(n, 0);
	assert_int_equal(getsockopt(cl, IPPROTO_TCP, TCP_INFO, &ti, &tlen), 0);
	return ti.tcpi_segs_in;
}

static void p_reply_and_close(struct ringd_conn *c, const void *buf,
			      size_t len)
{
	host_api.send(c, "reply\n", 6);
	host_api.close(c);
}

static void p_reply_and_close_no_linger(struct ringd_conn *c,
				       const void *buf, size_t len)
{
	host_api.send(c, "reply\n", 6);
	host_api.close_no_linger(c);
}

/* close() waits for the peer's FIN after ours; close_no_linger() does
 * not: the connection is gone while the peer still holds its end open,
 * and the peer has the whole reply and then EOF. */
static void test_conn_close_no_linger(void **state)
{
	for (int nolinger = 0; nolinger < 2; nolinger++) {
		struct fixture *f = fixture_new(0);
		char got[16];
		size_t have = 0;
		int peer;

		plugin.on_data = nolinger ? p_reply_and_close_no_linger :
					    p_reply_and_close;
		peer = open_pair(f, 0);
		assert_int_equal(write(peer, "q", 1), 1);
		run_for(f, 50);
		assert_int_equal(seen.gone, nolinger);
		assert_int_equal(drain_peer(peer, (unsigned char *)got, &have,
					    sizeof(got)), -1);
		assert_int_equal(have, 6);
		assert_memory_equal(got, "reply\n", 6);
		close(peer);
		run_for(f, 20);
		assert_int_equal(seen.gone, 1);
		fixture_free(f);
	}
}

static int p_hold_reply_close_no_linger(struct ringd_conn *c)
{
	host_api.hold_input(c, true);
	host_api.send(c, "reply\n", 6);
	host_api.close_no_linger(c);
	return 0;
}

/* Input the peer sent that nobody read turns close_no_linger() into a
 * plain close(): closing at once would reset the connection. */
static void test_conn_close_no_linger_with_unread_input(void **state)
{
	struct fixture *f = fixture_new(0);
	int sv[2];
	char got[16];
	size_t have = 0;

	plugin.on_open = p_hold_reply_close_no_linger;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
						     SOCK_CLOEXEC, 0, sv), 0);
	/* There before the daemon's first look, and held from reading. */
	assert_int_equal(write(sv[1], "more", 4), 4);
	assert_int_equal(conn_open(&f->set, &inst, sv[0], NULL, 0), 0);
	run_for(f, 50);
	assert_int_equal(seen.gone, 0);
	assert_int_equal(drain_peer(sv[1], (unsigned char *)got, &have,
				    sizeof(got)), -1);
	assert_int_equal(have, 6);
	close(sv[1]);
	run_for(f, 20);
	assert_int_equal(seen.gone, 1);
	fixture_free(f);
}

/* A reply followed by a close leaves with the FIN in one packet: the
 * client sees one segment fewer than when the same bytes are sent and
 * then shut down in two steps. */
static void test_conn_close_fin_rides_with_reply(void **state)
{
	struct fixture *f = fixture_new(0);
	unsigned ours, plain;
	int srv, cl;
	char req;

	plugin.on_data = p_reply_and_close;
	cl = tcp_pair(&srv);
	assert_int_equal(conn_open(&f->set, &inst, srv, NULL, 0), 0);
	ours = client_segments(f, cl);
	close(cl);
	run_for(f, 20);

	cl = tcp_pair(&srv);
	assert_int_equal(write(cl, "q", 1), 1);
	poll(&(struct pollfd){ .fd = srv, .events = POLLIN }, 1, 1000);
	assert_int_equal(read(srv, &req, 1), 1);
	assert_int_equal(send(srv, "reply\n", 6, 0), 6);
	shutdown(srv, SHUT_WR);
	plain = client_segments(NULL, cl);
	close(srv);
	close(cl);
	assert_true(plain > 0);
	if (ours >= plain)
		fail_msg("client got %u segments, %u with send+shutdown", ours,
			 plain);
	fixture_free(f);
}

static void test_conn_on_open_refusal_calls_gone_once(void **state)
{
	struct fixture *f = fixture_new(0);
	size_t have = 0;
	int peer;

	plugin.on_open = p_refuse_open;
	plugin.on_close = p_count_close;
	peer = open_pair(f, 0);
	/* Refused inside conn_open(): gone before it returned. */
	assert_int_equal(seen.gone, 1);
	assert_int_equal(seen.opened, 1);
	/* on_open failed, so on_close is not owed. */
	assert_int_equal(seen.closed, 0);
	run_for(f, 20);
	assert_int_equal(seen.gone, 1);
	assert_int_equal(drain_peer(peer, NULL, &have, 0), -1);
	close(peer);
	fixture_free(f);
}

/* Once per interval, with the count of what was held back; the fd is
 * closed and gone() never called. */
static void test_conn_out_of_memory_logged_once_per_interval(void **state)
{
	struct fixture *f = fixture_new(0);
	char buf[1];
	int sv[2];

	capture_log();
	for (int i = 0; i < 3; i++) {
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC,
					    0, sv), 0);
		fail_callocs = 1;
		assert_int_equal(conn_open(&f->set, &inst, sv[0], NULL, 0),
				 -ENOMEM);
		assert_int_equal(fail_callocs, 0);
		/* Our end was closed: the peer reads EOF. */
		assert_int_equal(read(sv[1], buf, 1), 0);
		close(sv[1]);
		if (i == 0)
			assert_string_equal(read_log(),
					    "warning: conn: out of memory "
					    "svc=test suppressed=0\n");
		else if (i == 1)
			assert_string_equal(read_log(), "");
		else
			assert_string_equal(read_log(),
					    "warning: conn: out of memory "
					    "svc=test suppressed=1\n");
		/* The interval passes between the second and third. */
		if (i == 1)
			f->set.oom_log.last -= CONN_OOM_LOG_NS;
	}
	assert_int_equal(seen.gone, 0);
	assert_int_equal(conn_set_count(&f->set), 0);
	release_log();
	fixture_free(f);
}

/* log_connections: one line at close with the bytes each way. */
static void test_conn_log_connections_line(void **state)
{
	static struct service_conf lsc = { .name = "logged",
					   .log_connections = true };
	struct ringd_instance linst = { .sc = &lsc, .p = &plugin };
	struct fixture *f = fixture_new(0);
	unsigned char got[16];
	size_t have = 0;
	int sv[2];
	const char *l;

	plugin.on_data = p_echo;
	capture_log();
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
						     SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(conn_open(&f->set, &linst, sv[0], NULL, 0), 0);
	assert_int_equal(write(sv[1], "hello", 5), 5);
	run_for(f, 20);
	drain_peer(sv[1], got, &have, sizeof(got));
	assert_int_equal(have, 5);
	assert_string_equal(read_log(), "");
	close(sv[1]);
	run_for(f, 20);
	l = read_log();
	assert_non_null(strstr(l, "info: conn: closed svc=logged "
				  "transport=unix peer=unix local=unix "
				  "bytes_in=5 bytes_out=5 duration_us="));
	assert_non_null(strstr(l, " reason=peer\n"));
	assert_ptr_equal(strchr(l, '\n'), l + strlen(l) - 1);
	/* A service without it logs nothing. */
	peer_roundtrip_unlogged(f);
	assert_string_equal(read_log(), "");
	release_log();
	fixture_free(f);
}

static void test_conn_on_close_host_calls_are_ignored(void **state)
{
	struct fixture *f = fixture_new(0);
	int peer;

	plugin.on_open = p_count_open;
	plugin.on_close = p_bad_close;
	peer = open_pair(f, 0);
	run_for(f, 10);
	close(peer); /* EOF, then on_close calls the host */
	run_for(f, 50);
	assert_int_equal(seen.closed, 1);
	assert_int_equal(seen.close_send_res, -EPIPE);
	assert_int_equal(seen.gone, 1);
	fixture_free(f);
}

/* Output queued before close() all arrives, then EOF. */
static void test_conn_close_flushes_then_fin(void **state)
{
	struct fixture *f = fixture_new(0);
	static unsigned char got[300 * 1024];
	size_t have = 0;
	int64_t end = mono_ns() + 5000 * MSEC;
	int peer;

	plugin.on_open = p_count_open;
	plugin.on_close = p_count_close;
	seen.send_on_open = 200 * 1024;
	peer = open_pair(f, 8192);
	while (mono_ns() < end) {
		run_for(f, 5);
		if (drain_peer(peer, got, &have, sizeof(got)) < 0)
			break;
	}
	assert_int_equal(have, 200 * 1024);
	for (size_t i = 0; i < have; i++)
		if (got[i] != 'o')
			fail_msg("byte %zu is %#x", i, got[i]);
	shutdown(peer, SHUT_WR);
	run_for(f, 20);
	assert_int_equal(seen.gone, 1);
	close(peer);
	fixture_free(f);
}

/* Writes pattern bytes from *sent until the socket is full. */
static void fill_peer(int fd, size_t *sent, size_t total)
{
	unsigned char buf[16384];
	ssize_t n;

	while (*sent < total) {
		size_t len = total - *sent < sizeof(buf) ? total - *sent :
							   sizeof(buf);

		for (size_t i = 0; i < len; i++)
			buf[i] = (unsigned char)((*sent + i) * 7 + 3);
		n = write(fd, buf, len);
		if (n <= 0)
			return;
		*sent += (size_t)n;
	}
}

static void check_pattern(const unsigned char *got, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (got[i] != (unsigned char)(i * 7 + 3))
			fail_msg("byte %zu is %#x", i, got[i]);
}

/* A peer that writes 2 MiB without reading: the connection stops reading
 * near the high water mark, and once the peer reads, resumes below the
 * low one until everything came back in order. */
static void test_conn_high_and_low_water(void **state)
{
	struct fixture *f = fixture_new(0);
	const size_t total = 2 * 1024 * 1024;
	unsigned char *got = malloc(total);
	size_t sent = 0, have = 0;
	int64_t end;
	int peer;

	plugin.on_open = p_count_open;
	plugin.on_close = p_count_close;
	plugin.on_data = p_echo;
	peer = open_pair(f, 16384);
	for (int i = 0; i < 40; i++) {
		fill_peer(peer, &sent, total);
		run_for(f, 5);
	}
	/* Stopped: far from everything taken, the queue near high water. */
	assert_true(seen.received < total);
	assert_true(seen.max_queued >= CONN_HIGH_WATER);
	assert_true(seen.max_queued <= CONN_HIGH_WATER + 8 * 16384);
	end = mono_ns() + 10000 * MSEC;
	while (have < total && mono_ns() < end) {
		fill_peer(peer, &sent, total);
		run_for(f, 2);
		drain_peer(peer, got, &have, total);
	}
	assert_int_equal(have, total);
	check_pattern(got, have);
	close(peer);
	run_for(f, 20);
	assert_int_equal(seen.gone, 1);
	free(got);
	fixture_free(f);
}

#define BUDGET_PEERS 8

/* Eight peers that write without reading against a 128 KiB budget: the
 * set's output memory stays within budget plus one buffer per
 * connection, the budget (not high water) is what stopped them, and
 * everything comes back intact once they read. */
static void budget_bounds_the_set(void (*echo)(struct ringd_conn *,
					       const void *, size_t))
{
	const size_t budget = 128 * 1024, total = 1024 * 1024;
	struct fixture *f = fixture_new(budget);
	unsigned char *got[BUDGET_PEERS];
	size_t sent[BUDGET_PEERS] = { 0 }, have[BUDGET_PEERS] = { 0 };
	size_t max_held = 0, done = 0;
	int peer[BUDGET_PEERS];
	int64_t end;

	plugin.on_open = p_count_open;
	plugin.on_close = p_count_close;
	plugin.on_data = echo;
	for (int i = 0; i < BUDGET_PEERS; i++) {
		peer[i] = open_pair(f, 16384);
		got[i] = malloc(total);
	}
	for (int r = 0; r < 40; r++) {
		for (int i = 0; i < BUDGET_PEERS; i++)
			fill_peer(peer[i], &sent[i], total);
		run_for(f, 5);
		if (f->set.held > max_held)
			max_held = f->set.held;
	}
	assert_true(f->set.stats.budget_pauses > 0);
	assert_true(max_held >= budget);
	/* Each may overshoot by what one buffer of input became. Without
	 * the budget they would hold 8 x 256 KiB. */
	assert_true(max_held <= budget + BUDGET_PEERS * 96 * 1024);
	/* No single connection came near its own limit. */
	assert_true(seen.max_queued < CONN_HIGH_WATER);
	end = mono_ns() + 20000 * MSEC;
	while (done < BUDGET_PEERS && mono_ns() < end) {
		done = 0;
		for (int i = 0; i < BUDGET_PEERS; i++) {
			fill_peer(peer[i], &sent[i], total);
			drain_peer(peer[i], got[i], &have[i], total);
			done += have[i] == total;
		}
		run_for(f, 2);
	}
	for (int i = 0; i < BUDGET_PEERS; i++) {
		assert_int_equal(have[i], total);
		check_pattern(got[i], total);
		close(peer[i]);
		free(got[i]);
	}
	run_for(f, 20);
	assert_int_equal(seen.gone, BUDGET_PEERS);
	assert_int_equal(f->set.held, 0);
	assert_int_equal(loop_bufs_kept(f->l), 0);
	fixture_free(f);
}

static void test_conn_budget_bounds_the_set(void **state)
{
	budget_bounds_the_set(p_echo);
}

/* The same with kept loop buffers (io_uring): they count as held, so
 * the bound is the same. */
static void test_conn_budget_bounds_the_set_send_input(void **state)
{
	budget_bounds_the_set(p_echo_input);
}

static uint64_t keeps(struct fixture *f)
{
	struct loop_stats st;

	loop_stats(f->l, &st);
	return st.keeps;
}

/* Every byte comes back in order whether send_input() kept the loop's
 * buffer (io_uring: a reference segment, the buffer given back once
 * sent) or copied (epoll; or behind queued output), and a kept buffer
 * counts as held memory like the copy segment it replaces. */
static void send_input_in_order(void (*echo)(struct ringd_conn *,
					     const void *, size_t))
{
	struct fixture *f = fixture_new(0);
	const size_t total = 1024 * 1024;
	unsigned char *got = malloc(total);
	size_t sent = 0, have = 0;
	int64_t end = mono_ns() + 10000 * MSEC;
	int peer;

	plugin.on_open = p_count_open;
	plugin.on_close = p_count_close;
	plugin.on_data = echo;
	peer = open_pair(f, 0);
	while (have < total && mono_ns() < end) {
		fill_peer(peer, &sent, total);
		run_for(f, 2);
		drain_peer(peer, got, &have, total);
	}
	assert_int_equal(have, total);
	check_pattern(got, have);
	if (test_backend == LOOP_BACKEND_IO_URING)
		assert_true(keeps(f) > 0);
	else
		assert_int_equal(keeps(f), 0);
	if (echo == p_echo_input)
		assert_true(seen.max_held >= 16384);
	assert_int_equal(loop_bufs_kept(f->l), 0);
	assert_int_equal(f->set.held, 0);
	close(peer);
	run_for(f, 20);
	assert_int_equal(seen.gone, 1);
	free(got);
	fixture_free(f);
}

static void test_conn_send_input_in_order(void **state)
{
	send_input_in_order(p_echo_input);
}

static void test_conn_send_input_behind_queued_copies(void **state)
{
	send_input_in_order(p_echo_input_halves);
}

/* A kept buffer stays out of the pool while its bytes wait for a peer
 * that does not read, and goes back when the connection goes: by the
 * peer's close (with_abort false) or by an abort. */
static void send_input_kept_until_closed(bool with_abort)
{
	struct fixture *f = fixture_new(0);
	size_t sent = 0;
	int peer;

	plugin.on_open = p_count_open;
	plugin.on_close = p_count_close;
	plugin.on_data = p_echo_input;
	peer = open_pair(f, 16384);
	for (int i = 0; i < 20; i++) {
		fill_peer(peer, &sent, 1024 * 1024);
		run_for(f, 5);
	}
	/* Stuck at high water, the first reply still at the head. */
	assert_true(seen.max_queued >= CONN_HIGH_WATER);
	assert_int_equal(loop_bufs_kept(f->l),
			 test_backend == LOOP_BACKEND_IO_URING ? 1 : 0);
	assert_true(f->set.held >= CONN_HIGH_WATER);
	if (with_abort)
		conn_abort_all(&f->set);
	else
		close(peer);
	run_for(f, 50);
	assert_int_equal(seen.gone, 1);
	assert_int_equal(seen.closed, 1);
	assert_int_equal(loop_bufs_kept(f->l), 0);
	assert_int_equal(f->set.held, 0);
	if (with_abort)
		close(peer);
	fixture_free(f);
}

static void test_conn_send_input_kept_until_peer_closes(void **state)
{
	send_input_kept_until_closed(false);
}

static void test_conn_send_input_kept_until_abort(void **state)
{
	send_input_kept_until_closed(true);
}

#define IDLE_PEERS 24

/* A peer that writes without reading pushes a 64 KiB set past its slack,
 * which stops 24 idle connections too. Once the hog has read everything
 * and nothing is queued anywhere, all 24 must take input again: no freed
 * segment is left to let them go. */
static void test_conn_budget_waiters_resume_when_drained(void **state)
{
	const size_t budget = 64 * 1024, total = 1024 * 1024;
	struct fixture *f = fixture_new(budget);
	unsigned char *got = malloc(total);
	size_t sent = 0, have = 0;
	int idle[IDLE_PEERS], hog, answered = 0;
	char b[4];

	plugin.on_open = p_count_open;
	plugin.on_close = p_count_close;
	plugin.on_data = p_echo;
	for (int i = 0; i < IDLE_PEERS; i++)
		idle[i] = open_pair(f, 0);
	hog = open_pair(f, 16384);
	for (int r = 0; r < 40; r++) {
		fill_peer(hog, &sent, total);
		run_for(f, 5);
	}
	assert_true(f->set.stats.budget_pauses > 0);
	for (int r = 0; r < 400 && (f->set.held || r < 50); r++) {
		drain_peer(hog, got, &have, total);
		run_for(f, 2);
	}
	assert_int_equal(f->set.held, 0);
	for (int i = 0; i < IDLE_PEERS; i++)
		assert_int_equal(write(idle[i], "x", 1), 1);
	run_for(f, 100);
	for (int i = 0; i < IDLE_PEERS; i++)
		answered += read(idle[i], b, sizeof(b)) == 1;
	assert_int_equal(answered, IDLE_PEERS);
	/* The level that stops everyone at once is down again. */
	assert_int_equal(f->set.budget_level, 0);
	for (int i = 0; i < IDLE_PEERS; i++)
		close(idle[i]);
	close(hog);
	run_for(f, 50);
	assert_int_equal(seen.gone, IDLE_PEERS + 1);
	free(got);
	fixture_free(f);
}

/* Three peers at their own high water hold most of a 900 KiB budget; a
 * fourth crosses it and is then drained by its reader, which empties the
 * wait list while the set is still above the low line. When everything
 * is read, the level must fall back, so the next crossing stops everyone
 * at once again. */
static void test_conn_budget_level_falls_back(void **state)
{
	const size_t budget = 900 * 1024, total = 4 * 1024 * 1024;
	struct fixture *f = fixture_new(budget);
	size_t sent[4] = { 0 }, have = 0;
	int peer[4];

	plugin.on_open = p_count_open;
	plugin.on_close = p_count_close;
	plugin.on_data = p_echo;
	for (int i = 0; i < 4; i++)
		peer[i] = open_pair(f, 16384);
	for (int i = 0; i < 4; i++) {
		for (int r = 0; r < 40; r++) {
			fill_peer(peer[i], &sent[i], total);
			run_for(f, 3);
		}
	}
	assert_true(f->set.budget_level > 0);
	/* The fourth first, then the rest. */
	for (int r = 0; r < 200; r++) {
		have = 0;
		drain_peer(peer[3], NULL, &have, 0);
		run_for(f, 2);
	}
	for (int r = 0; r < 500 && (f->set.held || r < 100); r++) {
		for (int i = 0; i < 3; i++) {
			have = 0;
			drain_peer(peer[i], NULL, &have, 0);
		}
		run_for(f, 2);
	}
	assert_int_equal(f->set.held, 0);
	assert_int_equal(f->set.budget_level, 0);
	for (int i = 0; i < 4; i++)
		close(peer[i]);
	run_for(f, 50);
	assert_int_equal(seen.gone, 4);
	fixture_free(f);
}

/* conn_abort_all: every connection goes, each gone() once. */
static void test_conn_abort_all(void **state)
{
	struct fixture *f = fixture_new(0);
	int peer[3];

	plugin.on_open = p_count_open;
	plugin.on_close = p_count_close;
	plugin.on_data = p_echo;
	for (int i = 0; i < 3; i++)
		peer[i] = open_pair(f, 0);
	run_for(f, 5);
	conn_abort_all(&f->set);
	run_for(f, 20);
	assert_int_equal(seen.gone, 3);
	assert_int_equal(seen.closed, 3);
	for (int i = 0; i < 3; i++)
		close(peer[i]);
	fixture_free(f);
}

static int reset_plugin(void **state)
{
	plugin.on_open = NULL;
	plugin.on_data = NULL;
	plugin.on_close = NULL;
	return 0;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_conn_on_open_refusal_calls_gone_once,
				       reset_plugin),
		cmocka_unit_test_setup(test_conn_on_close_host_calls_are_ignored,
				       reset_plugin),
		cmocka_unit_test_setup(
			test_conn_out_of_memory_logged_once_per_interval,
			reset_plugin),
		cmocka_unit_test_setup(test_conn_log_connections_line,
				       reset_plugin),
		cmocka_unit_test_setup(test_conn_close_flushes_then_fin,
				       reset_plugin),
		cmocka_unit_test_setup(test_conn_high_and_low_water,
				       reset_plugin),
		cmocka_unit_test_setup(test_conn_budget_bounds_the_set,
				       reset_plugin),
		cmocka_unit_test_setup(test_conn_budget_waiters_resume_when_drained,
				       reset_plugin),
		cmocka_unit_test_setup(test_conn_budget_level_falls_back,
				       reset_plugin),
		cmocka_unit_test_setup(test_conn_abort_all, reset_plugin),
		cmocka_unit_test_setup(test_conn_budget_bounds_the_set_send_input,
				       reset_plugin),
		cmocka_unit_test_setup(test_conn_send_input_in_order,
				       reset_plugin),
		cmocka_unit_test_setup(test_conn_send_input_behind_queued_copies,
				       reset_plugin),
		cmocka_unit_test_setup(test_conn_send_input_kept_until_peer_closes,
				       reset_plugin),
		cmocka_unit_test_setup(test_conn_send_input_kept_until_abort,
				       reset_plugin),
		cmocka_unit_test_setup(test_conn_close_fin_rides_with_reply,
				       reset_plugin),
		cmocka_unit_test_setup(test_conn_close_no_linger, reset_plugin),
		cmocka_unit_test_setup(test_conn_close_no_linger_with_unread_input,
				       reset_plugin),
		cmocka_unit_test_setup(test_conn_sends_in_a_hook_leave_together,
				       reset_plugin),
	};

	if (argc != 2) {
		fprintf(stderr, "usage: test_conn epoll|io_uring\n");
		return 2;
	}
	if (strcmp(argv[1], "io_uring") == 0) {
		if (loop_uring_probe(NULL) < 0) {
			printf("SKIP: io_uring unavailable\n");
			return 77;
		}
		test_backend = LOOP_BACKEND_IO_URING;
	} else {
		test_backend = LOOP_BACKEND_EPOLL;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
