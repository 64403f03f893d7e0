/* ringd-probe's check state machine on a real loop (the engine named by
 * argv[1]; io_uring exits 77 where unavailable): trying the next address
 * after a refusal, a refusal on the last, a failure before the loop
 * runs, one check reused for a second try, and load mode's kept
 * connections (reused, reopened after Connection: close or after the
 * server closed one). The server side is a listener the test accepts on
 * from a loop timer, in the same thread. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "probe/check.h"

static enum loop_backend test_backend;

struct server {
	struct loop *l;
	struct loop_timer t;
	int lfd;
	unsigned served;
};

/* Accepts what the backlog holds and answers each with a daytime line;
 * polls every millisecond until the test stops the loop. */
static void server_tick(struct loop_timer *t)
{
	struct server *s = t->data;
	int fd;

	while ((fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
		assert_int_equal(send(fd, "hello\r\n", 7, 0), 7);
		close(fd);
		s->served++;
	}
	loop_timer_set(s->l, &s->t, loop_now(s->l) + 1000000);
}

static int listener(struct sockaddr_in *sin)
{
	socklen_t len = sizeof(*sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

	assert_true(fd >= 0);
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin->sin_port = 0;
	assert_int_equal(bind(fd, (struct sockaddr *)sin, len), 0);
	assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)sin, &len), 0);
	return fd;
}

/* A loopback port nobody listens on (bound, then closed). */
static void closed_port(struct sockaddr_in *sin)
{
	int fd = listener(sin);

	close(fd);
}

static void ai_of(struct addrinfo *ai, struct sockaddr_in *sin,
		  struct addrinfo *next)
{
	memset(ai, 0, sizeof(*ai));
	ai->ai_family = AF_INET;
	ai->ai_socktype = SOCK_STREAM;
	ai->ai_addr = (struct sockaddr *)sin;
	ai->ai_addrlen = sizeof(*sin);
	ai->ai_next = next;
}

struct done {
	struct loop *l;
	unsigned calls;
};

static void on_done(struct probe_check *c, void *arg)
{
	struct done *d = arg;

	d->calls++;
	loop_stop(d->l);
}

static const struct probe_opts opts = {
	.timeout_ns = 2000000000,
	.size = 64,
	.method = "GET",
	.expect_status = "200-399",
};

static struct loop *new_loop(void)
{
	struct loop_params p = { .backend = test_backend };
	struct loop *l = NULL;

	assert_int_equal(loop_new(&l, &p), 0);
	return l;
}

static void test_probe_check_next_address_after_refusal(void **state)
{
	struct sockaddr_in dead, live;
	struct addrinfo ai[2];
	struct probe_target t;
	const char *why;
	struct loop *l = new_loop();
	struct server s = { .l = l, .t = { .cb = server_tick, .data = &s } };
	struct done d = { .l = l };
	struct probe_check *c;

	closed_port(&dead);
	s.lfd = listener(&live);
	ai_of(&ai[1], &live, NULL);
	ai_of(&ai[0], &dead, &ai[1]);
	assert_int_equal(probe_target_parse(&t, "daytime://h", &why), 0);
	c = probe_check_new(l, &t, ai, &opts);
	assert_non_null(c);
	server_tick(&s.t);
	for (unsigned i = 0; i < 2; i++) {
		probe_check_start(c, on_done, &d);
		assert_int_equal(loop_run(l), 0);
		assert_int_equal(d.calls, i + 1);
		assert_int_equal(probe_check_result(c)->state, PROBE_OK);
		assert_non_null(strstr(probe_check_result(c)->message,
				       "'hello' in "));
		assert_true(probe_check_result(c)->duration_ns > 0);
	}
	assert_int_equal(s.served, 2);
	probe_check_free(c);
	loop_timer_stop(l, &s.t);
	close(s.lfd);
	loop_free(l);
}

static void test_probe_check_refused_on_last_address(void **state)
{
	struct sockaddr_in dead;
	struct addrinfo ai;
	struct probe_target t;
	const char *why;
	struct loop *l = new_loop();
	struct done d = { .l = l };
	struct probe_check *c;

	closed_port(&dead);
	ai_of(&ai, &dead, NULL);
	assert_int_equal(probe_target_parse(&t, "echo://h", &why), 0);
	c = probe_check_new(l, &t, &ai, &opts);
	probe_check_start(c, on_done, &d);
	assert_int_equal(loop_run(l), 0);
	assert_int_equal(d.calls, 1);
	assert_int_equal(probe_check_result(c)->state, PROBE_CRITICAL);
	assert_string_equal(probe_check_result(c)->message,
			    "connection refused");
	probe_check_free(c);
	loop_free(l);
}

static void test_probe_check_fails_before_the_loop(void **state)
{
	struct probe_target t;
	struct probe_result r;
	struct addrinfo *ai = (struct addrinfo *)&r; /* must stay unused */
	const char *why;
	struct loop *l = new_loop();
	struct done d = { .l = l };
	struct probe_check *c;

	assert_int_equal(probe_target_parse(&t, "http://localhost/", &why), 0);
	strcpy(t.unix_path, "/nonexistent/ringd-probe.sock");
	assert_int_equal(probe_resolve(&t, &ai, &r), 0);
	assert_null(ai);
	c = probe_check_new(l, &t, ai, &opts);
	probe_check_start(c, on_done, &d);
	/* done ran already: the socket could not even start connecting. */
	assert_int_equal(d.calls, 1);
	assert_int_equal(probe_check_result(c)->state, PROBE_CRITICAL);
	assert_string_equal(probe_check_result(c)->message,
			    "No such file or directory");
	probe_check_free(c);
	loop_free(l);
}

static void test_probe_check_resolve_failure_is_unknown(void **state)
{
	struct probe_target t;
	struct probe_result r;
	struct addrinfo *ai = NULL;
	const char *why;

	/* A numeric host that is no address fails without asking DNS. */
	assert_int_equal(probe_target_parse(&t, "echo://[::1::2]", &why), 0);
	assert_int_equal(probe_resolve(&t, &ai, &r), -EHOSTUNREACH);
	assert_null(ai);
	assert_int_equal(r.state, PROBE_UNKNOWN);
	assert_non_null(strstr(r.message, "cannot resolve ::1::2: "));
}

/* An HTTP server on the same loop: every request head it reads gets
 * "200 ok" with Content-Length, and Connection: close (then the close)
 * while close_each is set. drop() closes what it holds, as an idle
 * timeout would. */
struct http_server {
	struct loop *l;
	struct loop_timer t;
	int lfd;
	int fds[8];
	unsigned nfds, accepted, served;
	bool close_each;
};

static void http_answer(struct http_server *s, unsigned i)
{
	static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
				 "\r\nok";
	static const char bye[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
				  "Connection: close\r\n\r\nok";
	const char *r = s->close_each ? bye : ok;
	char buf[2048];
	ssize_t n = recv(s->fds[i], buf, sizeof(buf) - 1, 0);

	if (n <= 0)
		return;
	buf[n] = '\0';
	assert_non_null(strstr(buf, "\r\n\r\n"));
	/* Load mode's requests leave the connection open. */
	assert_null(strstr(buf, "Connection: close"));
	assert_int_equal(send(s->fds[i], r, strlen(r), 0), (ssize_t)strlen(r));
	s->served++;
	if (s->close_each) {
		close(s->fds[i]);
		s->fds[i] = -1;
	}
}

static void http_tick(struct loop_timer *t)
{
	struct http_server *s = t->data;
	int fd;

	while ((fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
		assert_true(s->nfds < 8);
		s->fds[s->nfds++] = fd;
		s->accepted++;
	}
	for (unsigned i = 0; i < s->nfds; i++)
		if (s->fds[i] >= 0)
			http_answer(s, i);
	loop_timer_set(s->l, &s->t, loop_now(s->l) + 1000000);
}

static void http_drop(struct http_server *s)
{
	for (unsigned i = 0; i < s->nfds; i++)
		if (s->fds[i] >= 0) {
			close(s->fds[i]);
			s->fds[i] = -1;
		}
}

static void try_ok(struct probe_check *c, struct loop *l, struct done *d)
{
	unsigned calls = d->calls;

	probe_check_start(c, on_done, d);
	assert_int_equal(loop_run(l), 0);
	assert_int_equal(d->calls, calls + 1);
	if (probe_check_result(c)->state != PROBE_OK)
		fail_msg("try %u: %s", calls + 1,
			 probe_check_result(c)->message);
	assert_int_equal(probe_check_result(c)->http_status, 200);
}

/* A keep-alive http:// check against an http_server on loopback. */
struct kept {
	struct sockaddr_in sin;
	struct addrinfo ai;
	struct probe_target t;
	struct probe_opts o;
	struct http_server s;
	struct done d;
	struct probe_check *c;
};

static void kept_new(struct kept *k)
{
	struct loop *l = new_loop();
	const char *why;

	memset(k, 0, sizeof(*k));
	k->o = opts;
	k->o.keepalive = true;
	k->s = (struct http_server){ .l = l,
				     .t = { .cb = http_tick, .data = &k->s } };
	k->d.l = l;
	k->s.lfd = listener(&k->sin);
	ai_of(&k->ai, &k->sin, NULL);
	assert_int_equal(probe_target_parse(&k->t, "http://h/x", &why), 0);
	k->c = probe_check_new(l, &k->t, &k->ai, &k->o);
	assert_non_null(k->c);
	http_tick(&k->s.t);
}

/* The loop first: the kept connection has a receive armed. */
static void kept_free(struct kept *k)
{
	loop_timer_stop(k->s.l, &k->s.t);
	http_drop(&k->s);
	close(k->s.lfd);
	loop_free(k->s.l);
	probe_check_free(k->c);
}

static void test_probe_check_keepalive_reuses_and_reopens(void **state)
{
	struct kept k;

	kept_new(&k);
	for (unsigned i = 0; i < 3; i++)
		try_ok(k.c, k.s.l, &k.d);
	assert_int_equal(k.s.served, 3);
	assert_int_equal(k.s.accepted, 1);
	assert_int_equal(probe_check_connects(k.c), 1);
	/* Closed by the server while kept: the next try connects anew. */
	http_drop(&k.s);
	usleep(20000);
	try_ok(k.c, k.s.l, &k.d);
	assert_int_equal(k.s.accepted, 2);
	assert_int_equal(probe_check_connects(k.c), 2);
	/* Connection: close is heeded before the server's FIN arrives. */
	k.s.close_each = true;
	try_ok(k.c, k.s.l, &k.d);
	k.s.close_each = false;
	try_ok(k.c, k.s.l, &k.d);
	assert_int_equal(k.s.accepted, 3);
	assert_int_equal(probe_check_connects(k.c), 3);
	assert_int_equal(k.s.served, 6);
	kept_free(&k);
}

static void on_guard(struct loop_timer *t)
{
	loop_stop(t->data);
}

/* Runs l until it stops itself or ms milliseconds have passed. */
static void run_for(struct loop *l, unsigned ms)
{
	struct loop_timer guard = { .cb = on_guard, .data = l };

	loop_timer_set(l, &guard, loop_now(l) + (int64_t)ms * 1000000);
	assert_int_equal(loop_run(l), 0);
	loop_timer_stop(l, &guard);
}

/* A try whose time runs out while its stale kept connection is being
 * closed still ends, as a timeout, rather than going on over a new
 * connection with no deadline left (a server that then never answers
 * would hold the probe forever). */
static void test_probe_check_deadline_while_reopening(void **state)
{
	struct kept k;

	kept_new(&k);
	try_ok(k.c, k.s.l, &k.d);
	/* A stray byte makes the kept connection stale; the server then
	 * stops answering (the kernel still completes handshakes). */
	loop_timer_stop(k.s.l, &k.s.t);
	assert_int_equal(send(k.s.fds[0], "x", 1, 0), 1);
	run_for(k.s.l, 20);
	k.o.timeout_ns = 1;
	probe_check_start(k.c, on_done, &k.d);
	run_for(k.s.l, 1000);
	assert_int_equal(k.d.calls, 2);
	assert_int_equal(probe_check_result(k.c)->state, PROBE_CRITICAL);
	assert_non_null(strstr(probe_check_result(k.c)->message, "timeout"));
	kept_free(&k);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_probe_check_next_address_after_refusal),
		cmocka_unit_test(test_probe_check_refused_on_last_address),
		cmocka_unit_test(test_probe_check_fails_before_the_loop),
		cmocka_unit_test(test_probe_check_resolve_failure_is_unknown),
		cmocka_unit_test(test_probe_check_keepalive_reuses_and_reopens),
		cmocka_unit_test(test_probe_check_deadline_while_reopening),
	};
	const char *why = NULL;

	if (argc != 2 || (strcmp(argv[1], "epoll") && strcmp(argv[1], "io_uring"))) {
		fprintf(stderr, "usage: test_probe_check epoll|io_uring\n");
		return 2;
	}
	test_backend = strcmp(argv[1], "epoll") == 0 ? LOOP_BACKEND_EPOLL
						     : LOOP_BACKEND_IO_URING;
	if (test_backend == LOOP_BACKEND_IO_URING && loop_uring_probe(&why) < 0) {
		printf("test_probe_check: io_uring: %s; skipping\n", why);
		return 77;
	}
	return cmocka_run_group_tests_name(argv[1], tests, NULL, NULL);
}
