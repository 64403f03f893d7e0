/* The stop sequence of a TCP listener: once listen_refuse_new() runs, a
 * new client's SYN goes unanswered while a connection the kernel already
 * completed is still there to accept; after the shutdown that follows,
 * clients are refused. Over loopback, IPv4 and IPv6. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/listen.h"

struct pair {
	int lfd;
	struct sockaddr_storage addr;
	socklen_t alen;
};

static int setup_family(void **state, int family)
{
	static struct pair p;
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6,
				     .sin6_addr = IN6ADDR_LOOPBACK_INIT };

	memset(&p, 0, sizeof(p));
	p.lfd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (p.lfd < 0)
		return -1;
	if (family == AF_INET)
		memcpy(&p.addr, &sin, p.alen = sizeof(sin));
	else
		memcpy(&p.addr, &sin6, p.alen = sizeof(sin6));
	if (bind(p.lfd, (struct sockaddr *)&p.addr, p.alen) ||
	    listen(p.lfd, 16) ||
	    getsockname(p.lfd, (struct sockaddr *)&p.addr, &p.alen)) {
		close(p.lfd);
		/* No IPv6 loopback here: skip rather than fail. */
		return family == AF_INET6 ? (skip(), -1) : -1;
	}
	*state = &p;
	return 0;
}

static int setup_v4(void **state) { return setup_family(state, AF_INET); }
static int setup_v6(void **state) { return setup_family(state, AF_INET6); }

static int teardown(void **state)
{
	struct pair *p = *state;

	close(p->lfd);
	return 0;
}

/* Starts a non-blocking connect; returns the socket. */
static int start_connect(const struct pair *p)
{
	int fd = socket(p->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
	int rc;

	assert_true(fd >= 0);
	rc = connect(fd, (const struct sockaddr *)&p->addr, p->alen);
	assert_true(rc == 0 || errno == EINPROGRESS);
	return fd;
}

/* Waits up to ms for the connect to finish; returns 0, the socket error,
 * or ETIMEDOUT when it is still in progress. */
static int finish_connect(int fd, int ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	int err = 0;
	socklen_t len = sizeof(err);

	if (poll(&pfd, 1, ms) == 0)
		return ETIMEDOUT;
	assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len), 0);
	return err;
}

static void test_listen_completed_connection_survives_filter(void **state)
{
	struct pair *p = *state;
	int c = start_connect(p), a;

	assert_int_equal(finish_connect(c, 2000), 0);
	assert_int_equal(listen_refuse_new(p->lfd), 0);
	a = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(a >= 0);
	/* The connection is whole: data crosses it both ways. */
	assert_int_equal(send(c, "ping", 4, 0), 4);
	{
		char buf[4];

		assert_int_equal(recv(a, buf, 4, MSG_WAITALL), 4);
		assert_memory_equal(buf, "ping", 4);
	}
	close(a);
	close(c);
}

/* Waits up to ms for the listener to have a connection to accept. */
static int accept_within(int lfd, int ms)
{
	struct pollfd pfd = { .fd = lfd, .events = POLLIN };

	if (poll(&pfd, 1, ms) != 1)
		return -1;
	return accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

static void test_listen_handshake_under_way_completes(void **state)
{
	struct pair *p = *state;
	int one = 1, c, a;
	char buf[1];

	/* TCP_DEFER_ACCEPT keeps the server side of a connection out of
	 * the accept queue until its first data segment: the client sees
	 * itself connected while the listener still waits for the segment
	 * that completes the handshake, as it does for a round trip on a
	 * real network. That segment must pass the filter. */
	assert_int_equal(setsockopt(p->lfd, IPPROTO_TCP, TCP_DEFER_ACCEPT,
				    &one, sizeof(one)), 0);
	c = start_connect(p);
	assert_int_equal(finish_connect(c, 2000), 0);
	assert_int_equal(listen_refuse_new(p->lfd), 0);
	assert_int_equal(accept4(p->lfd, NULL, NULL, SOCK_NONBLOCK), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(send(c, "x", 1, 0), 1);
	a = accept_within(p->lfd, 2000);
	assert_true(a >= 0);
	assert_int_equal(recv(a, buf, 1, MSG_WAITALL), 1);
	assert_int_equal(buf[0], 'x');
	close(a);
	close(c);
}

static void test_listen_new_syn_is_dropped(void **state)
{
	struct pair *p = *state;
	int c;

	assert_int_equal(listen_refuse_new(p->lfd), 0);
	c = start_connect(p);
	/* No SYN-ACK within 300 ms (Linux retransmits the SYN after 1 s),
	 * and nothing reaches the accept queue. */
	assert_int_equal(finish_connect(c, 300), ETIMEDOUT);
	assert_int_equal(accept4(p->lfd, NULL, NULL, SOCK_NONBLOCK), -1);
	assert_int_equal(errno, EAGAIN);
	close(c);
}

static void test_listen_refused_after_shutdown(void **state)
{
	struct pair *p = *state;
	int c;

	assert_int_equal(listen_refuse_new(p->lfd), 0);
	assert_int_equal(shutdown(p->lfd, SHUT_RDWR), 0);
	c = start_connect(p);
	assert_int_equal(finish_connect(c, 2000), ECONNREFUSED);
	close(c);
}

static void test_listen_refuse_new_reports_errors(void **state)
{
	int fds[2];

	(void)state;
	assert_int_equal(listen_refuse_new(-1), -EBADF);
	assert_int_equal(pipe(fds), 0);
	assert_int_equal(listen_refuse_new(fds[0]), -ENOTSOCK);
	close(fds[0]);
	close(fds[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_listen_completed_connection_survives_filter, setup_v4,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_listen_handshake_under_way_completes, setup_v4,
			teardown),
		cmocka_unit_test_setup_teardown(test_listen_new_syn_is_dropped,
						setup_v4, teardown),
		cmocka_unit_test_setup_teardown(test_listen_refused_after_shutdown,
						setup_v4, teardown),
		cmocka_unit_test_setup_teardown(
			test_listen_completed_connection_survives_filter, setup_v6,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_listen_handshake_under_way_completes, setup_v6,
			teardown),
		cmocka_unit_test_setup_teardown(test_listen_new_syn_is_dropped,
						setup_v6, teardown),
		cmocka_unit_test_setup_teardown(test_listen_refused_after_shutdown,
						setup_v6, teardown),
		cmocka_unit_test(test_listen_refuse_new_reports_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
