/* Loop conformance: every case runs against the engine named by argv[1]
 * ("epoll" or "io_uring"); the io_uring run exits 77 (meson: skip) where
 * io_uring is unusable. Real sockets, no sleeps: a guard timer fails a
 * case that stalls. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "daemon/loop.h"

#define MSEC 1000000LL
#define GUARD_NS (5000 * MSEC)

static enum loop_backend test_backend;

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static struct loop *new_loop_sized(unsigned entries, unsigned nbufs,
				   unsigned buf_size)
{
	struct loop_params p = {
		.backend = test_backend,
		.entries = entries,
		.nbufs = nbufs,
		.buf_size = buf_size,
	};
	struct loop *l = NULL;

	assert_int_equal(loop_new(&l, &p), 0);
	assert_non_null(l);
	return l;
}

static struct loop *new_loop(unsigned nbufs, unsigned buf_size)
{
	return new_loop_sized(0, nbufs, buf_size);
}

struct stopper {
	struct loop_timer t;
	struct loop *l;
	bool fired;
};

static void stopper_fire(struct loop_timer *t)
{
	struct stopper *s = t->data;

	s->fired = true;
	loop_stop(s->l);
}

/* Runs until a callback stops the loop; the case fails after 5 s. */
static void run_guarded(struct loop *l)
{
	struct stopper g = { .t = { .cb = stopper_fire }, .l = l };

	g.t.data = &g;
	loop_timer_set(l, &g.t, mono_ns() + GUARD_NS);
	assert_int_equal(loop_run(l), 0);
	loop_timer_stop(l, &g.t);
	assert_false(g.fired);
}

/* Runs for ms milliseconds, to see that nothing else arrives. */
static void run_for(struct loop *l, int64_t ms)
{
	struct stopper s = { .t = { .cb = stopper_fire }, .l = l };

	s.t.data = &s;
	loop_timer_set(l, &s.t, mono_ns() + ms * MSEC);
	assert_int_equal(loop_run(l), 0);
	assert_true(s.fired);
}

static void fill_pattern(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)((i * 131 + seed * 7 + (i >> 9)) & 0xff);
}

static void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	assert_true(fl >= 0);
	assert_int_equal(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
}

static int tcp_listener(uint16_t *port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(fd, 64), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

static int tcp_connect(uint16_t port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(port);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	return fd;
}

/* A connected loopback TCP pair, both ends nonblocking. rcvbuf, when
 * not 0, is set on the accepting side before the handshake. */
static void tcp_pair(int *client, int *server, int rcvbuf)
{
	uint16_t port;
	int lfd = tcp_listener(&port);

	if (rcvbuf)
		assert_int_equal(setsockopt(lfd, SOL_SOCKET, SO_RCVBUF, &rcvbuf,
					    sizeof(rcvbuf)),
				 0);
	*client = tcp_connect(port);
	*server = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	assert_true(*server >= 0);
	set_nonblock(*client);
	close(lfd);
}

static void unix_pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX,
				    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
				    0, sv),
			 0);
}

static void write_all(int fd, const void *buf, size_t len)
{
	assert_int_equal(send(fd, buf, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* A record of every completion one op received. */
struct tally {
	struct loop *l;
	struct loop_op op;
	int calls;
	int more;
	int finals;
	int final_res;
	unsigned final_flags;
	bool bad; /* a completion broke the contract */
};

static void tally_init(struct tally *t, struct loop *l, loop_cb cb)
{
	memset(t, 0, sizeof(*t));
	t->l = l;
	t->op.cb = cb;
	t->op.data = t;
}

static void tally_final(struct loop_op *op, int res, unsigned flags,
			void *buf)
{
	struct tally *t = op->data;

	t->calls++;
	if (flags & LOOP_F_MORE) {
		t->more++;
		return;
	}
	t->finals++;
	t->final_res = res;
	t->final_flags = flags;
	loop_stop(t->l);
}

static void test_loop_backend_name(void **state)
{
	struct loop *l = new_loop(0, 0);
	const char *want =
		test_backend == LOOP_BACKEND_IO_URING ? "io_uring" : "epoll";

	assert_string_equal(loop_backend_name(l), want);
	loop_free(l);
}

static void test_loop_uring_probe(void **state)
{
	struct loop_params p = { .backend = LOOP_BACKEND_IO_URING };
	const char *why = NULL;
	struct loop *l = NULL;
	int err = loop_uring_probe(&why);
	int rc = loop_new(&l, &p);

	assert_non_null(why);
	assert_true(strlen(why) > 0);
	if (err == 0) {
		assert_int_equal(rc, 0);
		assert_string_equal(loop_backend_name(l), "io_uring");
		loop_free(l);
	} else {
		/* An explicit io_uring never turns into epoll. */
		assert_true(err < 0 && rc < 0);
		assert_null(l);
	}
	p.backend = LOOP_BACKEND_AUTO;
	assert_int_equal(loop_new(&l, &p), 0);
	assert_string_equal(loop_backend_name(l), err ? "epoll" : "io_uring");
	loop_free(l);
	assert_int_equal(loop_uring_probe(NULL), err);
}

struct acceptor {
	struct tally t;
	int fds[8];
	int n;
	int cancel_at;
};

static void acceptor_cb(struct loop_op *op, int res, unsigned flags,
			void *buf)
{
	struct acceptor *a = op->data;

	if (!(flags & LOOP_F_MORE) || res < 0 || a->n == 8 || buf) {
		a->t.bad |= (flags & LOOP_F_MORE) || buf;
		tally_final(op, res, flags, buf);
		return;
	}
	a->t.calls++;
	a->t.more++;
	a->fds[a->n++] = res;
	if ((fcntl(res, F_GETFD) & FD_CLOEXEC) == 0 ||
	    (fcntl(res, F_GETFL) & O_NONBLOCK) == 0)
		a->t.bad = true;
	if (a->n == a->cancel_at)
		loop_cancel(a->t.l, op);
}

static void test_loop_accept_multishot(void **state)
{
	struct loop *l = new_loop(0, 0);
	struct acceptor a = { .cancel_at = 4 };
	int clients[5];
	uint16_t port;
	int lfd = tcp_listener(&port);

	tally_init(&a.t, l, acceptor_cb);
	a.t.op.data = &a;
	for (int i = 0; i < 4; i++)
		clients[i] = tcp_connect(port);
	loop_accept(l, &a.t.op, lfd);
	run_guarded(l);
	assert_int_equal(a.n, 4);
	assert_int_equal(a.t.more, 4);
	assert_false(a.t.bad);
	assert_int_equal(a.t.finals, 1);
	assert_int_equal(a.t.final_res, -ECANCELED);
	for (int i = 0; i < 4; i++) {
		struct sockaddr_in peer;
		socklen_t len = sizeof(peer);

		assert_int_equal(
			getpeername(a.fds[i], (struct sockaddr *)&peer, &len),
			0);
		assert_int_equal(peer.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
	}
	/* Cancelled: a new client must not produce a completion. */
	clients[4] = tcp_connect(port);
	run_for(l, 50);
	assert_int_equal(a.t.calls, 5);
	for (int i = 0; i < 4; i++)
		close(a.fds[i]);
	for (int i = 0; i < 5; i++)
		close(clients[i]);
	loop_close(l, lfd);
	loop_free(l);
}

static void test_loop_cancel_accept(void **state)
{
	struct loop *l = new_loop(0, 0);
	struct tally t;
	uint16_t port;
	int lfd = tcp_listener(&port);
	int c;

	tally_init(&t, l, tally_final);
	loop_accept(l, &t.op, lfd);
	loop_cancel(l, &t.op);
	assert_int_equal(t.calls, 0); /* never from inside a submit */
	run_guarded(l);
	assert_int_equal(t.calls, 1);
	assert_int_equal(t.finals, 1);
	assert_int_equal(t.final_res, -ECANCELED);
	assert_int_equal(t.final_flags & LOOP_F_MORE, 0);
	c = tcp_connect(port);
	run_for(l, 50);
	assert_int_equal(t.calls, 1);
	close(c);
	loop_close(l, lfd);
	loop_free(l);
}

struct reader {
	struct tally t;
	int peer;
	uint8_t *got;
	size_t ngot;
	size_t cap;
	const uint8_t *const *pieces;
	const size_t *lens;
	size_t npieces;
	size_t next; /* piece to write once all before it arrived */
	size_t written;
};

static void reader_feed(struct reader *r)
{
	if (r->ngot < r->written)
		return;
	if (r->next == r->npieces) {
		shutdown(r->peer, SHUT_WR);
		r->next++;
		return;
	}
	if (r->next > r->npieces)
		return;
	write_all(r->peer, r->pieces[r->next], r->lens[r->next]);
	r->written += r->lens[r->next++];
}

static void reader_cb(struct loop_op *op, int res, unsigned flags, void *buf)
{
	struct reader *r = op->data;

	if (res <= 0) {
		r->t.bad |= (flags != 0) || buf;
		tally_final(op, res, flags, buf);
		return;
	}
	r->t.calls++;
	r->t.more++;
	if (flags != (LOOP_F_MORE | LOOP_F_BUFFER) || !buf ||
	    r->ngot + (size_t)res > r->cap) {
		r->t.bad = true;
		return;
	}
	memcpy(r->got + r->ngot, buf, (size_t)res);
	r->ngot += (size_t)res;
	reader_feed(r);
}

static void test_loop_recv_multishot_eof(void **state)
{
	static uint8_t big[40000];
	static const uint8_t *const pieces[] = {
		(const uint8_t *)"hello ", (const uint8_t *)"world", big,
		(const uint8_t *)"!"
	};
	static const size_t lens[] = { 6, 5, sizeof(big), 1 };
	struct loop *l = new_loop(0, 0);
	struct reader r = { .pieces = pieces, .lens = lens, .npieces = 4 };
	size_t total = 6 + 5 + sizeof(big) + 1;
	int sv[2];

	fill_pattern(big, sizeof(big), 1);
	unix_pair(sv);
	tally_init(&r.t, l, reader_cb);
	r.t.op.data = &r;
	r.peer = sv[1];
	r.cap = total;
	r.got = malloc(total);
	assert_non_null(r.got);
	reader_feed(&r);
	loop_recv(l, &r.t.op, sv[0]);
	run_guarded(l);
	assert_false(r.t.bad);
	assert_int_equal(r.t.finals, 1);
	assert_int_equal(r.t.final_res, 0);
	assert_int_equal(r.ngot, total);
	/* Each piece waited for the one before, so at least 4 chunks. */
	assert_true(r.t.more >= 4);
	assert_memory_equal(r.got, "hello world", 11);
	assert_memory_equal(r.got + 11, big, sizeof(big));
	assert_int_equal(r.got[total - 1], '!');
	free(r.got);
	loop_close(l, sv[0]);
	close(sv[1]);
	loop_free(l);
}

/* One end of a byte stream driven by the loop: sends out[] with
 * resubmits after short completions, receives into in[] until full,
 * then cancels its recv. *pending counts unfinished halves. */
struct stream {
	struct loop *l;
	int fd;
	int *pending;
	bool bad;
	struct loop_op send_op;
	const uint8_t *out;
	size_t out_len;
	size_t sent;
	size_t asked;
	int shorts;
	struct loop_op recv_op;
	uint8_t *in;
	size_t in_len;
	size_t got;
};

static void pending_done(struct loop *l, int *pending)
{
	if (--*pending == 0)
		loop_stop(l);
}

static void stream_fail(struct stream *s)
{
	s->bad = true;
	loop_stop(s->l);
}

static void stream_send_more(struct stream *s)
{
	s->asked = s->out_len - s->sent;
	loop_send(s->l, &s->send_op, s->fd, s->out + s->sent, s->asked);
}

static void stream_sent(struct loop_op *op, int res, unsigned flags,
			void *buf)
{
	struct stream *s = op->data;

	if (res <= 0 || (size_t)res > s->asked || flags || buf) {
		stream_fail(s);
		return;
	}
	if ((size_t)res < s->asked)
		s->shorts++;
	s->sent += (size_t)res;
	if (s->sent < s->out_len)
		stream_send_more(s);
	else
		pending_done(s->l, s->pending);
}

static void stream_received(struct loop_op *op, int res, unsigned flags,
			    void *buf)
{
	struct stream *s = op->data;

	if (!(flags & LOOP_F_MORE)) {
		if (res != -ECANCELED || s->got != s->in_len)
			stream_fail(s);
		else
			pending_done(s->l, s->pending);
		return;
	}
	if (res <= 0 || !buf || s->got + (size_t)res > s->in_len) {
		stream_fail(s);
		return;
	}
	memcpy(s->in + s->got, buf, (size_t)res);
	s->got += (size_t)res;
	if (s->got == s->in_len)
		loop_cancel(s->l, op);
}

static void stream_init(struct stream *s, struct loop *l, int fd,
			int *pending)
{
	memset(s, 0, sizeof(*s));
	s->l = l;
	s->fd = fd;
	s->pending = pending;
	s->send_op.cb = stream_sent;
	s->send_op.data = s;
	s->recv_op.cb = stream_received;
	s->recv_op.data = s;
}

static void test_loop_send_short(void **state)
{
	const size_t len = 4u << 20;
	struct loop *l = new_loop(0, 0);
	struct stream tx, rx;
	int pending = 2;
	int sndbuf = 4096;
	int a, b;
	uint8_t *out = malloc(len);
	uint8_t *in = malloc(len);

	assert_non_null(out);
	assert_non_null(in);
	fill_pattern(out, len, 2);
	tcp_pair(&a, &b, 4096);
	assert_int_equal(
		setsockopt(a, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)),
		0);
	stream_init(&tx, l, a, &pending);
	tx.out = out;
	tx.out_len = len;
	stream_init(&rx, l, b, &pending);
	rx.in = in;
	rx.in_len = len;
	stream_send_more(&tx);
	loop_recv(l, &rx.recv_op, b);
	run_guarded(l);
	assert_false(tx.bad);
	assert_false(rx.bad);
	assert_int_equal(pending, 0);
	assert_int_equal(tx.sent, len);
	assert_true(tx.shorts > 0); /* 4 MiB never fits a 4 KiB buffer */
	assert_int_equal(rx.got, len);
	assert_memory_equal(in, out, len);
	free(in);
	free(out);
	loop_close(l, a);
	loop_close(l, b);
	loop_free(l);
}

static void test_loop_send_completes_in_run(void **state)
{
	struct loop *l = new_loop(0, 0);
	struct tally t;
	char got[8] = { 0 };
	int sv[2];

	unix_pair(sv);
	tally_init(&t, l, tally_final);
	loop_send(l, &t.op, sv[0], "ringd", 5);
	/* The socket is writable, yet the callback waits for loop_run(). */
	assert_int_equal(t.calls, 0);
	run_guarded(l);
	assert_int_equal(t.calls, 1);
	assert_int_equal(t.final_res, 5);
	assert_int_equal(t.final_flags, 0);
	assert_int_equal(read(sv[1], got, sizeof(got)), 5);
	assert_string_equal(got, "ringd");
	loop_close(l, sv[0]);
	close(sv[1]);
	loop_free(l);
}

/* Echoes what it receives with one send in flight at a time. */
struct echo {
	struct loop *l;
	int fd;
	int *pending;
	bool bad;
	struct loop_op recv_op;
	struct loop_op send_op;
	uint8_t *buf;
	size_t cap;
	size_t in;
	size_t out;
	size_t asked;
	bool sending;
};

static void echo_fail(struct echo *e)
{
	e->bad = true;
	loop_stop(e->l);
}

static void echo_send_more(struct echo *e)
{
	if (e->sending || e->out == e->in)
		return;
	e->sending = true;
	e->asked = e->in - e->out;
	loop_send(e->l, &e->send_op, e->fd, e->buf + e->out, e->asked);
}

static void echo_sent(struct loop_op *op, int res, unsigned flags,
		      void *buf)
{
	struct echo *e = op->data;

	e->sending = false;
	if (res <= 0 || (size_t)res > e->asked) {
		echo_fail(e);
		return;
	}
	e->out += (size_t)res;
	if (e->out == e->cap)
		loop_cancel(e->l, &e->recv_op);
	else
		echo_send_more(e);
}

static void echo_received(struct loop_op *op, int res, unsigned flags,
			  void *buf)
{
	struct echo *e = op->data;

	if (!(flags & LOOP_F_MORE)) {
		if (res != -ECANCELED || e->out != e->cap)
			echo_fail(e);
		else
			pending_done(e->l, e->pending);
		return;
	}
	if (res <= 0 || e->in + (size_t)res > e->cap) {
		echo_fail(e);
		return;
	}
	memcpy(e->buf + e->in, buf, (size_t)res);
	e->in += (size_t)res;
	echo_send_more(e);
}

static void echo_roundtrip(size_t len)
{
	struct loop *l = new_loop(0, 0);
	struct echo e = { .l = l, .cap = len };
	struct stream c;
	int pending = 3;
	int a, b;
	uint8_t *out = malloc(len);
	uint8_t *in = malloc(len);

	e.buf = malloc(len);
	assert_true(out && in && e.buf);
	fill_pattern(out, len, 3);
	tcp_pair(&a, &b, 0);
	e.fd = b;
	e.pending = &pending;
	e.recv_op = (struct loop_op){ .cb = echo_received, .data = &e };
	e.send_op = (struct loop_op){ .cb = echo_sent, .data = &e };
	stream_init(&c, l, a, &pending);
	c.out = out;
	c.out_len = len;
	c.in = in;
	c.in_len = len;
	loop_recv(l, &e.recv_op, b);
	loop_recv(l, &c.recv_op, a);
	stream_send_more(&c);
	run_guarded(l);
	assert_false(e.bad);
	assert_false(c.bad);
	assert_int_equal(pending, 0);
	assert_int_equal(c.got, len);
	assert_memory_equal(in, out, len);
	free(e.buf);
	free(in);
	free(out);
	loop_close(l, a);
	loop_close(l, b);
	loop_free(l);
}

static void test_loop_echo_64k(void **state)
{
	echo_roundtrip(64u << 10);
}

static void test_loop_echo_1m(void **state)
{
	echo_roundtrip(1u << 20);
}

static void test_loop_cancel_recv_armed(void **state)
{
	struct loop *l = new_loop(0, 0);
	struct tally t;
	int sv[2];

	unix_pair(sv);
	tally_init(&t, l, tally_final);
	loop_recv(l, &t.op, sv[0]);
	loop_cancel(l, &t.op);
	loop_cancel(l, &t.op); /* a second cancel changes nothing */
	run_guarded(l);
	assert_int_equal(t.calls, 1);
	assert_int_equal(t.final_res, -ECANCELED);
	assert_int_equal(t.final_flags, 0);
	write_all(sv[1], "late", 4);
	run_for(l, 50);
	assert_int_equal(t.calls, 1);
	loop_close(l, sv[0]);
	close(sv[1]);
	loop_free(l);
}

static void cancel_on_data(struct loop_op *op, int res, unsigned flags,
			   void *buf)
{
	struct tally *t = op->data;

	if (flags & LOOP_F_MORE) {
		t->bad |= res != 1 || memcmp(buf, "x", 1) != 0;
		loop_cancel(t->l, op);
	}
	tally_final(op, res, flags, buf);
}

static void test_loop_cancel_recv_in_callback(void **state)
{
	struct loop *l = new_loop(0, 0);
	struct tally t;
	int sv[2];

	unix_pair(sv);
	tally_init(&t, l, cancel_on_data);
	loop_recv(l, &t.op, sv[0]);
	write_all(sv[1], "x", 1);
	run_guarded(l);
	assert_false(t.bad);
	assert_int_equal(t.more, 1);
	assert_int_equal(t.finals, 1);
	assert_int_equal(t.final_res, -ECANCELED);
	assert_int_equal(t.final_flags, 0);
	write_all(sv[1], "yz", 2);
	run_for(l, 50);
	assert_int_equal(t.calls, 2);
	loop_close(l, sv[0]);
	close(sv[1]);
	loop_free(l);
}

/* A RECV that is paused and resumed, as a connection over its budget
 * does: it cancels after stop_after bytes (0: never) and must then get
 * nothing more until it is submitted again. */
struct pauser {
	struct tally t;
	uint8_t got[8192];
	size_t ngot;
	size_t stop_after;
	size_t after_cancel; /* bytes delivered after the cancel: a bug */
	bool cancelled;
};

static void pauser_cb(struct loop_op *op, int res, unsigned flags, void *buf)
{
	struct pauser *p = op->data;

	p->t.calls++;
	if (res > 0) {
		if (p->cancelled)
			p->after_cancel += (size_t)res;
		p->t.bad |= flags != (LOOP_F_MORE | LOOP_F_BUFFER) ||
			    p->ngot + (size_t)res > sizeof(p->got);
		if (p->t.bad)
			return;
		memcpy(p->got + p->ngot, buf, (size_t)res);
		p->ngot += (size_t)res;
		if (p->stop_after && !p->cancelled &&
		    p->ngot >= p->stop_after) {
			p->cancelled = true;
			loop_cancel(p->t.l, op);
		}
		return;
	}
	p->t.bad |= (flags & LOOP_F_MORE) != 0;
	p->t.finals++;
	p->t.final_res = res;
	loop_stop(p->t.l);
}

static void pauser_init(struct pauser *p, struct loop *l)
{
	memset(p, 0, sizeof(*p));
	tally_init(&p->t, l, pauser_cb);
	p->t.op.data = p;
}

static void pauser_recv(struct pauser *p, int fd, size_t stop_after)
{
	p->stop_after = stop_after;
	p->cancelled = false;
	loop_recv(p->t.l, &p->t.op, fd);
}

/* Reads fd to its EOF, which must end a stream equal to want. */
static void pauser_expect_all(struct pauser *p, int fd, const uint8_t *want,
			      size_t len)
{
	pauser_recv(p, fd, 0);
	run_guarded(p->t.l);
	assert_false(p->t.bad);
	assert_int_equal(p->t.final_res, 0);
	assert_int_equal(p->ngot, len);
	assert_memory_equal(p->got, want, len);
}

/* 2 KiB and the peer's FIN are queued before the first recv, so io_uring
 * completes eight 256-byte buffers and the EOF in one batch: everything
 * after the first buffer comes after the cancel. It must reach the next
 * recv, in order, EOF last, and never the one that cancelled. */
static void test_loop_recv_parks_input_after_cancel(void **state)
{
	struct loop *l = new_loop(16, 256);
	struct pauser p;
	struct loop_stats st;
	uint8_t want[2048];
	int sv[2];

	unix_pair(sv);
	pauser_init(&p, l);
	fill_pattern(want, sizeof(want), 3);
	write_all(sv[1], want, sizeof(want));
	shutdown(sv[1], SHUT_WR);
	pauser_recv(&p, sv[0], 1);
	run_guarded(l);
	assert_false(p.t.bad);
	assert_int_equal(p.after_cancel, 0);
	assert_int_equal(p.t.final_res, -ECANCELED);
	assert_true(p.ngot > 0 && p.ngot < sizeof(want));
	loop_stats(l, &st);
	/* Without the counter this case passes whether or not anything
	 * arrived after the cancel; epoll reads only when asked. */
	if (test_backend == LOOP_BACKEND_IO_URING) {
		assert_true(st.late_after_cancel > 0);
		assert_int_equal(loop_recv_parked(&p.t.op),
				 sizeof(want) - p.ngot);
	} else {
		assert_int_equal(st.late_after_cancel, 0);
	}
	pauser_expect_all(&p, sv[0], want, sizeof(want));
	assert_int_equal(p.t.finals, 2);
	assert_int_equal(loop_recv_parked(&p.t.op), 0);
	loop_close(l, sv[0]);
	close(sv[1]);
	loop_free(l);
}

/* A pause in the middle of parked input stops it there: the rest waits
 * for the next recv, still in order. */
static void test_loop_recv_pause_while_parked(void **state)
{
	struct loop *l = new_loop(16, 256);
	struct pauser p;
	uint8_t want[2048];
	int sv[2];

	unix_pair(sv);
	pauser_init(&p, l);
	fill_pattern(want, sizeof(want), 4);
	write_all(sv[1], want, sizeof(want));
	shutdown(sv[1], SHUT_WR);
	for (size_t stop = 256; p.t.final_res != 0 || p.t.finals == 0;
	     stop += 256) {
		pauser_recv(&p, sv[0], stop);
		run_guarded(l);
		assert_false(p.t.bad);
		assert_int_equal(p.after_cancel, 0);
		assert_true(p.t.finals <= (int)(sizeof(want) / 256) + 1);
	}
	assert_int_equal(p.ngot, sizeof(want));
	assert_memory_equal(p.got, want, sizeof(want));
	loop_close(l, sv[0]);
	close(sv[1]);
	loop_free(l);
}

/* A connection that paused holds parked input in the pool; another,
 * still reading, must not starve for buffers: the loop copies parked
 * input out for it. Then the first gets its input back intact. */
static void test_loop_parked_input_does_not_starve_others(void **state)
{
	struct loop *l = new_loop(4, 256);
	struct pauser a, b;
	struct loop_stats st;
	uint8_t want_a[4096], want_b[4096];
	int sa[2], sb[2];

	unix_pair(sa);
	unix_pair(sb);
	pauser_init(&a, l);
	pauser_init(&b, l);
	fill_pattern(want_a, sizeof(want_a), 5);
	fill_pattern(want_b, sizeof(want_b), 6);
	write_all(sa[1], want_a, sizeof(want_a));
	pauser_recv(&a, sa[0], 1);
	run_guarded(l);
	assert_int_equal(a.after_cancel, 0);
	write_all(sb[1], want_b, sizeof(want_b));
	shutdown(sb[1], SHUT_WR);
	pauser_expect_all(&b, sb[0], want_b, sizeof(want_b));
	loop_stats(l, &st);
	if (test_backend == LOOP_BACKEND_IO_URING)
		assert_true(st.spills > 0);
	else
		assert_int_equal(st.spills, 0);
	shutdown(sa[1], SHUT_WR);
	pauser_expect_all(&a, sa[0], want_a, sizeof(want_a));
	loop_close(l, sa[0]);
	loop_close(l, sb[0]);
	close(sa[1]);
	close(sb[1]);
	loop_free(l);
}

/* Parked input nobody asks for again goes with loop_close() or
 * loop_free(), its buffers back to the pool (ASan sees any leak). */
static void test_loop_parked_input_dropped_on_close(void **state)
{
	struct loop *l = new_loop(16, 256);
	struct pauser p, q;
	uint8_t want[2048];
	int sv[2], sw[2];

	unix_pair(sv);
	unix_pair(sw);
	pauser_init(&p, l);
	pauser_init(&q, l);
	fill_pattern(want, sizeof(want), 7);
	write_all(sv[1], want, sizeof(want));
	write_all(sw[1], want, sizeof(want));
	pauser_recv(&p, sv[0], 1);
	run_guarded(l);
	pauser_recv(&q, sw[0], 1);
	run_guarded(l);
	loop_close(l, sv[0]);
	assert_int_equal(loop_recv_parked(&p.t.op), 0);
	close(sv[1]);
	/* sw's parked input goes with the loop. */
	loop_free(l);
	close(sw[0]);
	close(sw[1]);
}

/* A RECV that tries to keep its buffers past the callback
 * (loop_buf_keep()): the first `tries` buffers, or every one with
 * release_now, which gives each back inside the callback that kept it.
 * It records what the kept buffers held, to check that the pool leaves
 * them alone, and stops the loop once it has stop_at bytes. */
#define KEEPER_MAX 16

struct keeper {
	struct tally t;
	int tries;
	bool release_now;
	size_t stop_at;
	size_t cancel_at; /* 0: never; else cancel once this much came */
	int answers[64];  /* what loop_buf_keep() returned, in order */
	int nanswers;
	const uint8_t *kept[KEEPER_MAX];
	uint8_t copy[KEEPER_MAX][256];
	size_t len[KEEPER_MAX];
	int nkept;
	uint8_t got[16384];
	size_t ngot;
};

static void keeper_cb(struct loop_op *op, int res, unsigned flags, void *buf)
{
	struct keeper *k = op->data;
	int r;

	k->t.calls++;
	if (res <= 0) {
		k->t.finals++;
		k->t.final_res = res;
		k->t.bad |= (flags & LOOP_F_MORE) != 0;
		loop_stop(k->t.l);
		return;
	}
	k->t.bad |= !(flags & LOOP_F_BUFFER) ||
		    k->ngot + (size_t)res > sizeof(k->got);
	if (k->t.bad)
		return;
	memcpy(k->got + k->ngot, buf, (size_t)res);
	k->ngot += (size_t)res;
	if (k->release_now || k->nanswers < k->tries) {
		r = loop_buf_keep(k->t.l, buf);
		if (k->nanswers < 64)
			k->answers[k->nanswers++] = r;
		if (r > 0) {
			/* Once per buffer. */
			k->t.bad |= loop_buf_keep(k->t.l, buf) != -EINVAL;
			if (k->release_now) {
				loop_buf_release(k->t.l, buf);
			} else if (k->nkept < KEEPER_MAX &&
				   (size_t)res <= sizeof(k->copy[0])) {
				k->kept[k->nkept] = buf;
				memcpy(k->copy[k->nkept], buf, (size_t)res);
				k->len[k->nkept++] = (size_t)res;
			} else {
				k->t.bad = true;
			}
		}
	}
	if (k->cancel_at && k->ngot >= k->cancel_at) {
		k->cancel_at = 0;
		loop_cancel(k->t.l, op);
	}
	if (k->stop_at && k->ngot >= k->stop_at)
		loop_stop(k->t.l);
}

static void keeper_init(struct keeper *k, struct loop *l)
{
	memset(k, 0, sizeof(*k));
	tally_init(&k->t, l, keeper_cb);
	k->t.op.data = k;
}

/* The kept buffers still hold what they held. */
static void keeper_check(const struct keeper *k)
{
	for (int i = 0; i < k->nkept; i++)
		assert_memory_equal(k->kept[i], k->copy[i], k->len[i]);
}

static void keeper_release(struct keeper *k)
{
	for (int i = 0; i < k->nkept; i++)
		loop_buf_release(k->t.l, k->kept[i]);
	k->nkept = 0;
}

/* Kept buffers survive the pool's reuse of the others until released;
 * epoll lends its one read buffer, which it never lets go. */
static void test_loop_recv_keep_release(void **state)
{
	struct loop *l = new_loop(16, 256);
	bool uring = test_backend == LOOP_BACKEND_IO_URING;
	struct keeper k;
	struct loop_stats st;
	uint8_t want[8192];
	int sv[2];

	unix_pair(sv);
	keeper_init(&k, l);
	fill_pattern(want, sizeof(want), 21);
	k.tries = 3;
	k.stop_at = 1024;
	write_all(sv[1], want, 1024);
	loop_recv(l, &k.t.op, sv[0]);
	run_guarded(l);
	assert_false(k.t.bad);
	assert_int_equal(k.nanswers, 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(k.answers[i], uring ? 256 : -EOPNOTSUPP);
	assert_int_equal(k.nkept, uring ? 3 : 0);
	assert_int_equal(loop_bufs_kept(l), uring ? 3 : 0);
	/* Outside a callback nothing can be kept. */
	if (uring)
		assert_int_equal(loop_buf_keep(l, k.kept[0]), -EINVAL);
	/* Ten times the pool's worth of input goes through the 13 buffers
	 * left: not one of them is a kept one. */
	for (size_t off = 1024; off < sizeof(want); off += 1024) {
		k.stop_at = off + 1024;
		write_all(sv[1], want + off, 1024);
		run_guarded(l);
		assert_false(k.t.bad);
		keeper_check(&k);
	}
	assert_int_equal(k.ngot, sizeof(want));
	assert_memory_equal(k.got, want, sizeof(want));
	loop_stats(l, &st);
	assert_int_equal(st.keeps, uring ? 3 : 0);
	keeper_release(&k);
	assert_int_equal(loop_bufs_kept(l), 0);
	shutdown(sv[1], SHUT_WR);
	k.stop_at = 0;
	run_guarded(l);
	assert_int_equal(k.t.final_res, 0);
	loop_close(l, sv[0]);
	close(sv[1]);
	loop_free(l);
}

/* At most a quarter of the pool is kept; past it loop_buf_keep() says
 * -ENOBUFS and the input still flows. Released buffers count again. */
static void test_loop_keep_quarter_of_pool(void **state)
{
	struct loop *l = new_loop(8, 256);
	bool uring = test_backend == LOOP_BACKEND_IO_URING;
	struct keeper k;
	struct loop_stats st;
	uint8_t want[4096];
	int sv[2];

	unix_pair(sv);
	keeper_init(&k, l);
	fill_pattern(want, sizeof(want), 22);
	k.tries = 6;
	k.stop_at = 2048;
	write_all(sv[1], want, 2048);
	loop_recv(l, &k.t.op, sv[0]);
	run_guarded(l);
	assert_false(k.t.bad);
	assert_int_equal(k.nanswers, 6);
	for (int i = 0; i < 6; i++)
		assert_int_equal(k.answers[i], !uring  ? -EOPNOTSUPP
					       : i < 2 ? 256
						       : -ENOBUFS);
	assert_int_equal(loop_bufs_kept(l), uring ? 2 : 0);
	loop_stats(l, &st);
	assert_int_equal(st.keeps, uring ? 2 : 0);
	assert_int_equal(st.keeps_refused, uring ? 4 : 0);
	keeper_check(&k);
	keeper_release(&k);
	/* Both back: two more can be kept. */
	k.tries = 8;
	k.stop_at = 4096;
	write_all(sv[1], want + 2048, 2048);
	run_guarded(l);
	assert_false(k.t.bad);
	assert_int_equal(k.nanswers, 8);
	assert_int_equal(k.answers[6], uring ? 256 : -EOPNOTSUPP);
	assert_int_equal(k.answers[7], uring ? 256 : -EOPNOTSUPP);
	assert_int_equal(k.ngot, sizeof(want));
	assert_memory_equal(k.got, want, sizeof(want));
	keeper_check(&k);
	keeper_release(&k);
	loop_close(l, sv[0]);
	close(sv[1]);
	loop_free(l);
}

/* A buffer released inside the callback that kept it goes back to the
 * pool once, not twice: 16 KiB through four buffers arrive intact (a
 * buffer recycled twice would be filled twice; one never recycled
 * would leave the pool short and stall). */
static void test_loop_keep_release_in_callback(void **state)
{
	struct loop *l = new_loop(4, 256);
	bool uring = test_backend == LOOP_BACKEND_IO_URING;
	struct keeper k;
	uint8_t want[16384];
	int sv[2];

	unix_pair(sv);
	keeper_init(&k, l);
	fill_pattern(want, sizeof(want), 23);
	k.release_now = true;
	loop_recv(l, &k.t.op, sv[0]);
	for (size_t off = 0; off < sizeof(want); off += 2048) {
		k.stop_at = off + 2048;
		write_all(sv[1], want + off, 2048);
		run_guarded(l);
		assert_false(k.t.bad);
	}
	assert_int_equal(k.ngot, sizeof(want));
	assert_memory_equal(k.got, want, sizeof(want));
	for (int i = 0; i < k.nanswers; i++)
		assert_int_equal(k.answers[i], uring ? 256 : -EOPNOTSUPP);
	assert_int_equal(loop_bufs_kept(l), 0);
	loop_close(l, sv[0]);
	close(sv[1]);
	loop_free(l);
}

/* Kept buffers outlive loop_close() of their fd and are released after
 * it; another socket then has the whole pool. */
static void test_loop_keep_across_close(void **state)
{
	struct loop *l = new_loop(8, 256);
	bool uring = test_backend == LOOP_BACKEND_IO_URING;
	struct keeper k, m;
	uint8_t want[4096];
	int sv[2], sw[2];

	unix_pair(sv);
	unix_pair(sw);
	keeper_init(&k, l);
	keeper_init(&m, l);
	fill_pattern(want, sizeof(want), 24);
	k.tries = 2;
	write_all(sv[1], want, 512);
	shutdown(sv[1], SHUT_WR);
	loop_recv(l, &k.t.op, sv[0]);
	run_guarded(l);
	assert_int_equal(k.t.final_res, 0);
	assert_int_equal(k.ngot, 512);
	loop_close(l, sv[0]);
	close(sv[1]);
	assert_int_equal(loop_bufs_kept(l), uring ? 2 : 0);
	keeper_check(&k);
	/* The other socket's input may use any buffer but the kept two. */
	m.stop_at = 2048;
	write_all(sw[1], want, 2048);
	loop_recv(l, &m.t.op, sw[0]);
	run_guarded(l);
	assert_false(m.t.bad);
	keeper_check(&k);
	keeper_release(&k);
	m.tries = 2; /* the quarter is free again */
	m.stop_at = 4096;
	write_all(sw[1], want + 2048, 2048);
	run_guarded(l);
	assert_false(m.t.bad);
	assert_int_equal(m.ngot, sizeof(want));
	assert_memory_equal(m.got, want, sizeof(want));
	assert_int_equal(m.nkept, uring ? 2 : 0);
	keeper_check(&m);
	keeper_release(&m);
	assert_int_equal(loop_bufs_kept(l), 0);
	loop_close(l, sw[0]);
	close(sw[1]);
	loop_free(l);
}

/* Parked input (loop_cancel()) is lent from the pool like fresh input
 * and can be kept as well, in order. */
static void test_loop_keep_parked_input(void **state)
{
	struct loop *l = new_loop(16, 256);
	bool uring = test_backend == LOOP_BACKEND_IO_URING;
	struct keeper k, m;
	uint8_t want[2048], more[8192];
	int sv[2];

	unix_pair(sv);
	keeper_init(&k, l);
	fill_pattern(want, sizeof(want), 25);
	write_all(sv[1], want, sizeof(want));
	shutdown(sv[1], SHUT_WR);
	k.cancel_at = 1;
	loop_recv(l, &k.t.op, sv[0]);
	run_guarded(l);
	assert_int_equal(k.t.final_res, -ECANCELED);
	assert_true(k.ngot < sizeof(want));
	if (uring)
		assert_true(loop_recv_parked(&k.t.op) > 0);
	/* Keep the first four buffers of what follows: parked ones. */
	k.tries = k.nanswers + 4;
	loop_recv(l, &k.t.op, sv[0]);
	run_guarded(l);
	assert_false(k.t.bad);
	assert_int_equal(k.t.final_res, 0);
	assert_int_equal(k.ngot, sizeof(want));
	assert_memory_equal(k.got, want, sizeof(want));
	assert_int_equal(k.nkept, uring ? 4 : 0);
	assert_int_equal(loop_bufs_kept(l), uring ? 4 : 0);
	loop_close(l, sv[0]);
	close(sv[1]);
	/* Twice the pool's worth through another socket leaves them be. */
	unix_pair(sv);
	keeper_init(&m, l);
	fill_pattern(more, sizeof(more), 26);
	write_all(sv[1], more, sizeof(more));
	shutdown(sv[1], SHUT_WR);
	loop_recv(l, &m.t.op, sv[0]);
	run_guarded(l);
	assert_false(m.t.bad);
	assert_int_equal(m.ngot, sizeof(more));
	assert_memory_equal(m.got, more, sizeof(more));
	keeper_check(&k);
	keeper_release(&k);
	assert_int_equal(loop_bufs_kept(l), 0);
	loop_close(l, sv[0]);
	close(sv[1]);
	loop_free(l);
}

#define NSOCK 8
#define PER_SOCK (32u << 10)

struct sink {
	struct tally t;
	int idx;
	size_t got;
	int *eofs;
	uint8_t *want;
};

static void sink_cb(struct loop_op *op, int res, unsigned flags, void *buf)
{
	struct sink *s = op->data;

	s->t.calls++;
	if (res > 0) {
		if (s->got + (size_t)res > PER_SOCK ||
		    memcmp(buf, s->want + s->got, (size_t)res) != 0 ||
		    !(flags & LOOP_F_MORE))
			s->t.bad = true;
		s->got += (size_t)res;
		return;
	}
	/* Neither -ENOBUFS nor any error: EOF only, after all bytes. */
	s->t.final_res = res;
	s->t.bad |= res != 0 || flags != 0 || s->got != PER_SOCK;
	if (++*s->eofs == NSOCK || s->t.bad)
		loop_stop(s->t.l);
}

/* Eight sockets with 32 KiB pending each, all read by multishot recvs
 * on l, must deliver every byte and then EOF, never an error. */
static void drain_sockets(struct loop *l)
{
	struct sink sinks[NSOCK];
	int sv[NSOCK][2];
	int eofs = 0;
	uint8_t *want = malloc(NSOCK * PER_SOCK);

	assert_non_null(want);
	for (int i = 0; i < NSOCK; i++) {
		unix_pair(sv[i]);
		fill_pattern(want + i * PER_SOCK, PER_SOCK, 10 + i);
		write_all(sv[i][1], want + i * PER_SOCK, PER_SOCK);
		shutdown(sv[i][1], SHUT_WR);
		tally_init(&sinks[i].t, l, sink_cb);
		sinks[i].t.op.data = &sinks[i];
		sinks[i].got = 0;
		sinks[i].eofs = &eofs;
		sinks[i].want = want + i * PER_SOCK;
	}
	for (int i = 0; i < NSOCK; i++)
		loop_recv(l, &sinks[i].t.op, sv[i][0]);
	run_guarded(l);
	assert_int_equal(eofs, NSOCK);
	for (int i = 0; i < NSOCK; i++) {
		assert_false(sinks[i].t.bad);
		assert_int_equal(sinks[i].got, PER_SOCK);
		assert_int_equal(sinks[i].t.final_res, 0);
		loop_close(l, sv[i][0]);
		close(sv[i][1]);
	}
	free(want);
}

static void test_loop_enobufs_rearm(void **state)
{
	/* Two 1 KiB buffers for 256 KiB pending: the pool runs dry. */
	struct loop *l = new_loop(2, 1024);
	struct loop_stats st;

	drain_sockets(l);
	loop_stats(l, &st);
	/* Without the counter this case passes whether or not io_uring
	 * ever ended a recv with -ENOBUFS; epoll has no pool to run dry. */
	if (test_backend == LOOP_BACKEND_IO_URING)
		assert_true(st.rearm_nobufs > 0);
	else
		assert_int_equal(st.rearm_nobufs, 0);
	loop_free(l);
}

static void test_loop_cq_overflow_rearm(void **state)
{
	/* A 2-entry SQ (4 CQEs) and 256-byte buffers: multishot recvs end
	 * on a full CQ with data, and 9 ops overflow the SQ at submit.
	 * Without the counters this case passes whether or not either
	 * path was taken. */
	struct loop *l = new_loop_sized(2, 64, 256);
	struct loop_stats st;

	drain_sockets(l);
	loop_stats(l, &st);
	if (test_backend == LOOP_BACKEND_IO_URING) {
		assert_true(st.rearm_overflow > 0);
		assert_true(st.sq_full > 0);
	} else {
		assert_int_equal(st.rearm_overflow, 0);
		assert_int_equal(st.sq_full, 0);
	}
	loop_free(l);
}

static void test_loop_stats_count_waits(void **state)
{
	struct loop *l = new_loop(0, 0);
	struct loop_stats st;

	memset(&st, 0xff, sizeof(st));
	loop_stats(l, &st);
	assert_int_equal(st.waits, 0);
	assert_int_equal(st.rearm_nobufs, 0);
	assert_int_equal(st.rearm_overflow, 0);
	assert_int_equal(st.rearm_accept, 0);
	assert_int_equal(st.sq_full, 0);
	assert_int_equal(st.eagain_reads, 0);
	assert_int_equal(st.eagain_writes, 0);
	run_for(l, 10);
	loop_stats(l, &st);
	/* At least the wait that ran into the stop timer. */
	assert_true(st.waits >= 1);
	assert_int_equal(st.eagain_reads + st.eagain_writes, 0);
	loop_free(l);
}

static void test_loop_bad_params(void **state)
{
	struct loop_params p = { .backend = test_backend, .nbufs = 3 };
	struct loop *l = NULL;

	assert_int_equal(loop_new(&l, &p), -EINVAL);
	assert_null(l);
}

static int udp_socket(struct sockaddr_in *addr)
{
	socklen_t len = sizeof(*addr);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	memset(addr, 0, sizeof(*addr));
	addr->sin_family = AF_INET;
	addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)addr, sizeof(*addr)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)addr, &len), 0);
	return fd;
}

/* One UDP endpoint: a msghdr for receiving and one for sending. */
struct dgram {
	struct loop *l;
	int fd;
	struct loop_op rop;
	struct loop_op sop;
	struct msghdr rmsg;
	struct msghdr smsg;
	struct iovec riov;
	struct iovec siov;
	struct sockaddr_in from;
	struct sockaddr_in to;
	char rbuf[64];
	int received;
	int sent;
	int rres;
	bool bad;
	struct dgram *peer;
};

static void dgram_send(struct dgram *d, const struct sockaddr_in *to,
		       const char *text)
{
	d->to = *to;
	d->siov = (struct iovec){ .iov_base = (void *)text,
				  .iov_len = strlen(text) };
	d->smsg = (struct msghdr){ .msg_name = &d->to,
				   .msg_namelen = sizeof(d->to),
				   .msg_iov = &d->siov,
				   .msg_iovlen = 1 };
	loop_sendmsg(d->l, &d->sop, d->fd, &d->smsg);
}

static void dgram_arm(struct dgram *d)
{
	d->riov = (struct iovec){ .iov_base = d->rbuf,
				  .iov_len = sizeof(d->rbuf) };
	d->rmsg = (struct msghdr){ .msg_name = &d->from,
				   .msg_namelen = sizeof(d->from),
				   .msg_iov = &d->riov,
				   .msg_iovlen = 1 };
	loop_recvmsg(d->l, &d->rop, d->fd, &d->rmsg);
}

static void dgram_sent(struct loop_op *op, int res, unsigned flags,
		       void *buf)
{
	struct dgram *d = op->data;

	d->sent++;
	d->bad |= res != (int)d->siov.iov_len || flags != 0;
}

/* The first endpoint answers "ping" with "pong" to the sender's
 * address; the second stops the loop when the answer arrives. */
static void dgram_received(struct loop_op *op, int res, unsigned flags,
			   void *buf)
{
	struct dgram *d = op->data;

	d->received++;
	d->rres = res;
	d->bad |= flags != 0 || buf != NULL || res <= 0 ||
		  d->rmsg.msg_namelen != sizeof(d->from);
	if (d->bad) {
		loop_stop(d->l);
		return;
	}
	d->rbuf[res] = '\0';
	if (strcmp(d->rbuf, "ping") == 0)
		dgram_send(d, &d->from, "pong");
	else
		loop_stop(d->l);
}

static void dgram_init(struct dgram *d, struct loop *l)
{
	memset(d, 0, sizeof(*d));
	d->l = l;
	d->fd = udp_socket(&d->to);
	d->rop = (struct loop_op){ .cb = dgram_received, .data = d };
	d->sop = (struct loop_op){ .cb = dgram_sent, .data = d };
}

static void test_loop_udp_msg(void **state)
{
	struct loop *l = new_loop(0, 0);
	struct dgram a, b;
	struct sockaddr_in a_addr, b_addr;

	dgram_init(&a, l);
	dgram_init(&b, l);
	a_addr = a.to;
	b_addr = b.to;
	dgram_arm(&a);
	dgram_arm(&b);
	dgram_send(&b, &a_addr, "ping");
	run_guarded(l);
	assert_false(a.bad);
	assert_false(b.bad);
	assert_int_equal(a.received, 1);
	assert_int_equal(b.received, 1);
	assert_string_equal(a.rbuf, "ping");
	assert_string_equal(b.rbuf, "pong");
	/* Each side saw the other's address. */
	assert_int_equal(a.from.sin_port, b_addr.sin_port);
	assert_int_equal(a.from.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
	assert_int_equal(b.from.sin_port, a_addr.sin_port);
	run_for(l, 10); /* lets a's send completion arrive */
	assert_int_equal(a.sent, 1);
	assert_int_equal(b.sent, 1);
	loop_close(l, a.fd);
	loop_close(l, b.fd);
	loop_free(l);
}

/* Collects what a multishot RECV delivers and stops the loop after each
 * completion, so a case can act between them; cancels the op on its
 * first data when asked. */
struct collect {
	struct tally t;
	char got[64];
	size_t ngot;
	bool cancel;
};

static void collect_cb(struct loop_op *op, int res, unsigned flags,
		       void *buf)
{
	struct collect *c = op->data;

	if (!(flags & LOOP_F_MORE)) {
		c->t.bad |= buf != NULL;
		tally_final(op, res, flags, buf);
		return;
	}
	c->t.calls++;
	c->t.more++;
	loop_stop(c->t.l);
	if (res <= 0 || !buf || c->ngot + (size_t)res > sizeof(c->got)) {
		c->t.bad = true;
		return;
	}
	memcpy(c->got + c->ngot, buf, (size_t)res);
	c->ngot += (size_t)res;
	if (c->cancel)
		loop_cancel(c->t.l, op);
}

static void collect_init(struct collect *c, struct loop *l)
{
	memset(c, 0, sizeof(*c));
	tally_init(&c->t, l, collect_cb);
	c->t.op.data = c;
}

/* Runs until n bytes arrived or the op ended (n = SIZE_MAX: ended). */
static void collect_until(struct loop *l, struct collect *c, size_t n)
{
	while (c->ngot < n && !c->t.finals && !c->t.bad)
		run_guarded(l);
	assert_false(c->t.bad);
}

static void collect_recv(struct collect *c, int fd)
{
	c->t.finals = 0;
	c->t.final_res = INT_MIN;
	loop_recv(c->t.l, &c->t.op, fd);
}

static void collect_cancel(struct collect *c)
{
	loop_cancel(c->t.l, &c->t.op);
	collect_until(c->t.l, c, SIZE_MAX);
	assert_int_equal(c->t.final_res, -ECANCELED);
}

/* A loop and a TCP pair whose accepted end a collector reads. */
struct tcp_case {
	struct loop *l;
	struct collect c;
	int peer; /* the connecting end, which the case writes */
	int fd;
};

static void tcp_case_start(struct tcp_case *k)
{
	k->l = new_loop(0, 0);
	tcp_pair(&k->peer, &k->fd, 0);
	collect_init(&k->c, k->l);
}

static void tcp_case_end(struct tcp_case *k)
{
	loop_close(k->l, k->fd);
	close(k->peer);
	loop_free(k->l);
}

static void test_loop_tcp_short_read_ends_burst(void **state)
{
	struct loop_stats st;
	struct tcp_case k;

	tcp_case_start(&k);
	collect_recv(&k.c, k.fd);
	write_all(k.peer, "request", 7);
	collect_until(k.l, &k.c, 7);
	/* A short read on TCP took all there was: no recv() to see EAGAIN. */
	loop_stats(k.l, &st);
	assert_int_equal(st.eagain_reads, 0);
	/* Data after a short read raises an edge of its own. */
	write_all(k.peer, "second", 6);
	collect_until(k.l, &k.c, 13);
	/* Data and FIN: both arrive, the FIN as the final completion. */
	write_all(k.peer, "last", 4);
	shutdown(k.peer, SHUT_WR);
	collect_until(k.l, &k.c, SIZE_MAX);
	assert_int_equal(k.c.ngot, 17);
	assert_memory_equal(k.c.got, "requestsecondlast", 17);
	assert_int_equal(k.c.t.final_res, 0);
	assert_int_equal(k.c.t.final_flags, 0);
	loop_stats(k.l, &st);
	assert_int_equal(st.eagain_reads, 0);
	/* EOF stays readable: a new RECV ends at once, with no new edge. */
	collect_recv(&k.c, k.fd);
	collect_until(k.l, &k.c, SIZE_MAX);
	assert_int_equal(k.c.t.final_res, 0);
	tcp_case_end(&k);
}

static void test_loop_tcp_urgent_data(void **state)
{
	struct tcp_case k;

	tcp_case_start(&k);
	/* recv() stops short at the urgent mark with "def" still queued,
	 * and no edge will come for it. The urgent byte is not inline. */
	write_all(k.peer, "abc", 3);
	assert_int_equal(send(k.peer, "X", 1, MSG_OOB | MSG_NOSIGNAL), 1);
	write_all(k.peer, "def", 3);
	collect_recv(&k.c, k.fd);
	collect_until(k.l, &k.c, 6);
	assert_int_equal(k.c.ngot, 6);
	assert_memory_equal(k.c.got, "abcdef", 6);
	collect_cancel(&k.c);
	tcp_case_end(&k);
}

static void test_loop_tcp_recv_again_after_cancel(void **state)
{
	struct tcp_case k;

	tcp_case_start(&k);
	k.c.cancel = true; /* as a connection pauses its reading */
	collect_recv(&k.c, k.fd);
	write_all(k.peer, "one", 3);
	collect_until(k.l, &k.c, SIZE_MAX);
	assert_int_equal(k.c.t.final_res, -ECANCELED);
	/* Arrives while no RECV is queued; its edge must not be lost. */
	write_all(k.peer, "two", 3);
	k.c.cancel = false;
	collect_recv(&k.c, k.fd);
	collect_until(k.l, &k.c, 6);
	assert_memory_equal(k.c.got, "onetwo", 6);
	collect_cancel(&k.c);
	tcp_case_end(&k);
}

static void test_loop_recv_datagrams(void **state)
{
	struct loop *l = new_loop(0, 0);
	struct sockaddr_in to, from;
	struct collect c;
	int rx = udp_socket(&to);
	int tx = udp_socket(&from);

	/* Each read takes one datagram, however short: a short read says
	 * nothing about what else is queued. */
	for (int i = 0; i < 2; i++)
		assert_int_equal(sendto(tx, i ? "two" : "first", i ? 3 : 5, 0,
					(struct sockaddr *)&to, sizeof(to)),
				 i ? 3 : 5);
	collect_init(&c, l);
	collect_recv(&c, rx);
	collect_until(l, &c, 8);
	assert_int_equal(c.t.more, 2);
	assert_memory_equal(c.got, "firsttwo", 8);
	collect_cancel(&c);
	loop_close(l, rx);
	close(tx);
	loop_free(l);
}

struct evread {
	struct loop *l;
	int efd;
	struct loop_op op;
	struct loop_timer t;
	uint64_t val;
	uint64_t seen[2];
	int reads;
	bool timer_fired;
	bool bad;
};

static void evread_write(struct loop_timer *t)
{
	struct evread *e = t->data;
	uint64_t seven = 7;

	e->timer_fired = true;
	assert_int_equal(write(e->efd, &seven, sizeof(seven)), 8);
}

static void evread_done(struct loop_op *op, int res, unsigned flags,
			void *buf)
{
	struct evread *e = op->data;

	e->bad |= res != 8 || flags != 0 || buf != NULL;
	e->seen[e->reads++] = e->val;
	if (e->reads == 2 || e->bad) {
		loop_stop(e->l);
		return;
	}
	/* The eventfd is empty now: this read must wait for the timer. */
	loop_read(e->l, op, e->efd, &e->val, sizeof(e->val));
	loop_timer_set(e->l, &e->t, loop_now(e->l) + 20 * MSEC);
}

static void test_loop_read_eventfd(void **state)
{
	struct loop *l = new_loop(0, 0);
	struct evread e = { .l = l };
	uint64_t v = 42;

	e.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	assert_true(e.efd >= 0);
	e.op = (struct loop_op){ .cb = evread_done, .data = &e };
	e.t = (struct loop_timer){ .cb = evread_write, .data = &e };
	assert_int_equal(write(e.efd, &v, sizeof(v)), 8);
	loop_read(l, &e.op, e.efd, &e.val, sizeof(e.val));
	run_guarded(l);
	assert_false(e.bad);
	assert_int_equal(e.reads, 2);
	assert_int_equal(e.seen[0], 42);
	assert_int_equal(e.seen[1], 7);
	assert_true(e.timer_fired);
	loop_close(l, e.efd);
	loop_free(l);
}

struct tick {
	struct loop_timer t;
	struct loop *l;
	int id;
	int64_t deadline;
	int *order;
	int *n;
	bool late; /* fired before its deadline */
	bool last;
};

static void tick_fire(struct loop_timer *t)
{
	struct tick *k = t->data;

	k->late |= loop_now(k->l) < k->deadline;
	k->order[(*k->n)++] = k->id;
	if (k->last)
		loop_stop(k->l);
}

static void tick_set(struct tick *k, int64_t at)
{
	k->deadline = at;
	loop_timer_set(k->l, &k->t, at);
}

static void test_loop_timers_order(void **state)
{
	struct loop *l = new_loop(0, 0);
	struct tick k[5];
	int order[5] = { 0 };
	int n = 0;
	int64_t now = mono_ns();

	for (int i = 0; i < 5; i++)
		k[i] = (struct tick){ .t = { .cb = tick_fire, .data = &k[i] },
				      .l = l,
				      .id = i,
				      .order = order,
				      .n = &n };
	tick_set(&k[0], now + 30 * MSEC);
	tick_set(&k[1], now + 10 * MSEC);
	tick_set(&k[2], now + 20 * MSEC);
	tick_set(&k[3], now + 5 * MSEC);
	tick_set(&k[4], now + 15 * MSEC);
	tick_set(&k[3], now + 40 * MSEC); /* re-set moves it last */
	k[3].last = true;
	loop_timer_stop(l, &k[4].t);
	assert_false(loop_timer_armed(&k[4].t));
	assert_true(loop_timer_armed(&k[3].t));
	run_guarded(l);
	assert_int_equal(n, 4);
	assert_int_equal(order[0], 1);
	assert_int_equal(order[1], 2);
	assert_int_equal(order[2], 0);
	assert_int_equal(order[3], 3);
	for (int i = 0; i < 5; i++) {
		assert_false(k[i].late);
		assert_false(loop_timer_armed(&k[i].t));
	}
	loop_free(l);
}

/* A timer that re-arms itself, stops another and arms a third from its
 * own callback. */
struct chain {
	struct loop *l;
	struct loop_timer self;
	struct loop_timer victim;
	struct loop_timer finish;
	int self_fired;
	int victim_fired;
	int finish_fired;
};

static void chain_victim(struct loop_timer *t)
{
	struct chain *c = t->data;

	c->victim_fired++;
}

static void chain_finish(struct loop_timer *t)
{
	struct chain *c = t->data;

	c->finish_fired++;
	loop_stop(c->l);
}

static void chain_self(struct loop_timer *t)
{
	struct chain *c = t->data;

	if (++c->self_fired < 4) {
		loop_timer_set(c->l, t, loop_now(c->l) + MSEC);
		return;
	}
	loop_timer_stop(c->l, &c->victim);
	loop_timer_set(c->l, &c->finish, loop_now(c->l) + 2 * MSEC);
}

static void test_loop_timer_callbacks_rearm(void **state)
{
	struct loop *l = new_loop(0, 0);
	struct chain c = { .l = l };

	c.self = (struct loop_timer){ .cb = chain_self, .data = &c };
	c.victim = (struct loop_timer){ .cb = chain_victim, .data = &c };
	c.finish = (struct loop_timer){ .cb = chain_finish, .data = &c };
	loop_timer_set(l, &c.victim, mono_ns() + 1000 * MSEC);
	loop_timer_set(l, &c.self, mono_ns() + MSEC);
	run_guarded(l);
	assert_int_equal(c.self_fired, 4);
	assert_int_equal(c.victim_fired, 0);
	assert_int_equal(c.finish_fired, 1);
	assert_false(loop_timer_armed(&c.victim));
	loop_free(l);
}

/* A timer that re-arms itself for "now" from its callback, with a send
 * it starts each time: a pass fires at most the timers armed on entry,
 * so the send completes before the timer fires again. */
struct spinner {
	struct loop *l;
	struct loop_timer t;
	struct loop_op op;
	int fd;
	int fires;
	int sends;
	bool sending;
	bool twice; /* fired again with no I/O in between */
};

static void spinner_fire(struct loop_timer *t)
{
	struct spinner *s = t->data;

	s->fires++;
	if (s->sending) {
		s->twice = true;
		loop_stop(s->l);
		return;
	}
	s->sending = true;
	loop_send(s->l, &s->op, s->fd, "s", 1);
	loop_timer_set(s->l, t, loop_now(s->l));
}

static void spinner_sent(struct loop_op *op, int res, unsigned flags,
			 void *buf)
{
	struct spinner *s = op->data;

	s->sending = false;
	if (res != 1 || ++s->sends == 20) {
		loop_timer_stop(s->l, &s->t);
		loop_stop(s->l);
	}
}

static void test_loop_timer_rearm_now_once_per_pass(void **state)
{
	struct loop *l = new_loop(0, 0);
	struct spinner s = { .l = l };
	struct loop_timer far[3];
	int sv[2];

	unix_pair(sv);
	s.fd = sv[0];
	s.t = (struct loop_timer){ .cb = spinner_fire, .data = &s };
	s.op = (struct loop_op){ .cb = spinner_sent, .data = &s };
	/* More timers in the heap than the spinner: a pass that counted
	 * the heap's size on entry would let the spinner run again. */
	for (int i = 0; i < 3; i++) {
		far[i] = (struct loop_timer){ .cb = chain_victim };
		loop_timer_set(l, &far[i], mono_ns() + 1000 * MSEC);
	}
	loop_timer_set(l, &s.t, mono_ns());
	run_guarded(l);
	assert_false(s.twice);
	assert_int_equal(s.sends, 20);
	assert_int_equal(s.fires, 20);
	for (int i = 0; i < 3; i++)
		loop_timer_stop(l, &far[i]);
	loop_close(l, sv[0]);
	close(sv[1]);
	loop_free(l);
}

static void test_loop_timer_alone_wakes(void **state)
{
	struct loop *l = new_loop(0, 0);
	struct stopper s = { .t = { .cb = stopper_fire }, .l = l };
	int64_t start = mono_ns();
	int64_t elapsed;

	s.t.data = &s;
	loop_timer_set(l, &s.t, start + 50 * MSEC);
	assert_int_equal(loop_run(l), 0);
	elapsed = mono_ns() - start;
	assert_true(s.fired);
	assert_true(elapsed >= 50 * MSEC);
	assert_true(elapsed < 300 * MSEC);
	loop_free(l);
}

struct waker {
	struct loop *l;
	pthread_t loop_thread;
	int calls;
	bool stop; /* stop the loop on a wake */
	bool wrong_thread;
};

static void waker_cb(struct loop *l, void *arg)
{
	struct waker *w = arg;

	w->calls++;
	w->wrong_thread |= !pthread_equal(pthread_self(), w->loop_thread);
	if (w->stop)
		loop_stop(l);
}

static void *waker_thread(void *arg)
{
	struct waker *w = arg;

	for (int i = 0; i < 10; i++)
		loop_wake(w->l);
	return NULL;
}

static void test_loop_wake_from_thread(void **state)
{
	struct loop *l = new_loop(0, 0);
	struct waker w = { .l = l, .stop = true };
	pthread_t th;

	w.loop_thread = pthread_self();
	loop_set_wake(l, waker_cb, &w);
	assert_int_equal(pthread_create(&th, NULL, waker_thread, &w), 0);
	run_guarded(l);
	assert_int_equal(pthread_join(th, NULL), 0);
	w.stop = false;
	run_for(l, 20); /* a late wake of the burst may still land */
	assert_true(w.calls >= 1 && w.calls <= 10);
	assert_false(w.wrong_thread);
	/* A later wake gets its own callback. */
	w.calls = 0;
	w.stop = true;
	loop_wake(l);
	run_guarded(l);
	assert_int_equal(w.calls, 1);
	loop_free(l);
}

static void test_loop_stop_from_callback(void **state)
{
	struct loop *l = new_loop(0, 0);
	struct stopper s = { .t = { .cb = stopper_fire }, .l = l };

	s.t.data = &s;
	for (int round = 0; round < 2; round++) {
		s.fired = false;
		loop_timer_set(l, &s.t, mono_ns() + MSEC);
		assert_int_equal(loop_run(l), 0);
		assert_true(s.fired);
		assert_false(loop_timer_armed(&s.t));
	}
	loop_free(l);
}

/* Peers that never stop sending: after loop_cancel() a multishot recv
 * may still deliver what was already under way, but no more than the
 * buffer pool holds, and its final completion must come. (io_uring: a
 * cancel can miss a multishot recv the kernel is running from task work;
 * the engine then asks again and holds the buffers back.) */
struct streamer {
	int fd;
	atomic_bool stop;
};

static void *stream_main(void *arg)
{
	struct streamer *s = arg;
	static const char chunk[4096];

	while (!atomic_load(&s->stop))
		if (send(s->fd, chunk, sizeof(chunk), MSG_NOSIGNAL) < 0)
			break;
	return NULL;
}

struct late_tally {
	struct tally t;
	bool cancelled;
	size_t late; /* bytes delivered after the cancel */
};

#define STREAM_NBUFS 16
#define STREAM_BUF 4096
#define NSTREAM 16

struct stream_case {
	struct streamer s;
	struct late_tally lt;
	pthread_t th;
	int client, server;
};

static int finals_left;

static void cancel_then_count_n(struct loop_op *op, int res, unsigned flags,
				void *buf)
{
	struct late_tally *lt = (struct late_tally *)op->data;

	if ((flags & LOOP_F_MORE) && res > 0) {
		if (lt->cancelled)
			lt->late += (size_t)res;
		lt->cancelled = true;
		loop_cancel(lt->t.l, op);
		return;
	}
	lt->t.finals++;
	lt->t.final_res = res;
	if (!(flags & LOOP_F_MORE) && --finals_left == 0)
		loop_stop(lt->t.l);
}

static void test_loop_cancel_recv_under_stream(void **state)
{
	static struct stream_case c[NSTREAM];
	struct loop *l = new_loop(STREAM_NBUFS, STREAM_BUF);
	size_t maxlate = 0;

	(void)state;

	memset(c, 0, sizeof(c));
	finals_left = NSTREAM;
	for (int i = 0; i < NSTREAM; i++) {
		tcp_pair(&c[i].client, &c[i].server, 0);
		c[i].s.fd = c[i].client;
		tally_init(&c[i].lt.t, l, cancel_then_count_n);
		c[i].lt.t.op.data = &c[i].lt;
		loop_recv(l, &c[i].lt.t.op, c[i].server);
		assert_int_equal(pthread_create(&c[i].th, NULL, stream_main,
						&c[i].s), 0);
	}
	run_guarded(l);
	for (int i = 0; i < NSTREAM; i++) {
		atomic_store(&c[i].s.stop, true);
		shutdown(c[i].client, SHUT_RDWR);
		pthread_join(c[i].th, NULL);
		assert_int_equal(c[i].lt.t.finals, 1);
		if (c[i].lt.late > maxlate)
			maxlate = c[i].lt.late;
		loop_close(l, c[i].server);
		close(c[i].client);
	}
	/* What an op takes from the pool after its cancel (io_uring) is
	 * parked for its next recv, never delivered. */
	assert_int_equal(maxlate, 0);
	loop_free(l);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loop_backend_name),
		cmocka_unit_test(test_loop_uring_probe),
		cmocka_unit_test(test_loop_bad_params),
		cmocka_unit_test(test_loop_stats_count_waits),
		cmocka_unit_test(test_loop_accept_multishot),
		cmocka_unit_test(test_loop_cancel_accept),
		cmocka_unit_test(test_loop_recv_multishot_eof),
		cmocka_unit_test(test_loop_send_completes_in_run),
		cmocka_unit_test(test_loop_send_short),
		cmocka_unit_test(test_loop_echo_64k),
		cmocka_unit_test(test_loop_echo_1m),
		cmocka_unit_test(test_loop_cancel_recv_armed),
		cmocka_unit_test(test_loop_cancel_recv_in_callback),
		cmocka_unit_test(test_loop_cancel_recv_under_stream),
		cmocka_unit_test(test_loop_recv_parks_input_after_cancel),
		cmocka_unit_test(test_loop_recv_pause_while_parked),
		cmocka_unit_test(test_loop_parked_input_does_not_starve_others),
		cmocka_unit_test(test_loop_parked_input_dropped_on_close),
		cmocka_unit_test(test_loop_recv_keep_release),
		cmocka_unit_test(test_loop_keep_quarter_of_pool),
		cmocka_unit_test(test_loop_keep_release_in_callback),
		cmocka_unit_test(test_loop_keep_across_close),
		cmocka_unit_test(test_loop_keep_parked_input),
		cmocka_unit_test(test_loop_enobufs_rearm),
		cmocka_unit_test(test_loop_cq_overflow_rearm),
		cmocka_unit_test(test_loop_udp_msg),
		cmocka_unit_test(test_loop_tcp_short_read_ends_burst),
		cmocka_unit_test(test_loop_tcp_urgent_data),
		cmocka_unit_test(test_loop_tcp_recv_again_after_cancel),
		cmocka_unit_test(test_loop_recv_datagrams),
		cmocka_unit_test(test_loop_read_eventfd),
		cmocka_unit_test(test_loop_timers_order),
		cmocka_unit_test(test_loop_timer_callbacks_rearm),
		cmocka_unit_test(test_loop_timer_rearm_now_once_per_pass),
		cmocka_unit_test(test_loop_timer_alone_wakes),
		cmocka_unit_test(test_loop_wake_from_thread),
		cmocka_unit_test(test_loop_stop_from_callback),
	};
	const char *why = NULL;

	if (argc != 2) {
		fprintf(stderr, "usage: test_loop epoll|io_uring\n");
		return 2;
	}
	if (strcmp(argv[1], "epoll") == 0) {
		test_backend = LOOP_BACKEND_EPOLL;
	} else if (strcmp(argv[1], "io_uring") == 0) {
		test_backend = LOOP_BACKEND_IO_URING;
		if (loop_uring_probe(&why) < 0) {
			printf("test_loop: io_uring: %s; skipping\n", why);
			return 77;
		}
	} else {
		fprintf(stderr, "test_loop: unknown engine: %s\n", argv[1]);
		return 2;
	}
	return cmocka_run_group_tests_name(argv[1], tests, NULL, NULL);
}
