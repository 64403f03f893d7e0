/* The per-target state machine: socket, connect, request, bounded read,
 * verdict. Every op and the deadline timer run on the caller's loop; a
 * check ends only after its last op has completed, so its socket can be
 * closed and its memory reused at once. */
#include "probe/check.h"

#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "probe/check_priv.h"

static int64_t mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void check_connect(struct probe_check *c);

static void check_close_fd(struct probe_check *c)
{
	if (c->fd >= 0) {
		loop_close(c->l, c->fd);
		c->fd = -1;
	}
}

static void check_maybe_done(struct probe_check *c)
{
	if (c->phase != PH_CLOSING || c->inflight)
		return;
	check_close_fd(c);
	if (c->restart) {
		/* A stale kept connection is gone; the try it was to carry
		 * goes on over a new one. */
		c->restart = c->reused = false;
		c->out_off = 0;
		c->phase = PH_CONNECT;
		check_connect(c);
		return;
	}
	loop_timer_stop(c->l, &c->deadline);
	c->phase = PH_IDLE;
	c->done(c, c->arg);
}

/* A good reply on a connection that can carry the next request: done
 * once the request's send has completed too (a reply can overtake its
 * send's completion), so the next try may submit a send at once. */
static void check_keep(struct probe_check *c)
{
	loop_timer_stop(c->l, &c->deadline);
	c->phase = PH_KEEPING;
	if (c->send_live)
		return;
	c->phase = PH_KEPT;
	c->done(c, c->arg);
}

/* Records the verdict once; later events of the same try are ignored. */
void check_finish(struct probe_check *c, enum probe_state s,
		  const char *fmt, ...)
{
	va_list ap;

	if (c->phase != PH_CONNECT && c->phase != PH_EXCHANGE)
		return;
	c->res.state = s;
	/* The "in X ms" of the message, read just before, is the time. */
	c->res.duration_ns = (c->end ? c->end : mono_now()) - c->start;
	c->res.reply_bytes = c->got;
	va_start(ap, fmt);
	vsnprintf(c->res.message, sizeof(c->res.message), fmt, ap);
	va_end(ap);
	loop_timer_stop(c->l, &c->resend);
	if (s == PROBE_OK && c->o->keepalive && c->reuse) {
		check_keep(c);
		return;
	}
	c->phase = PH_CLOSING;
	loop_cancel(c->l, &c->send_op);
	/* Waiting for the server's close: the deadline still bounds it. */
	if (s == PROBE_OK && c->o->await_close && c->recv_live)
		return;
	loop_timer_stop(c->l, &c->deadline);
	loop_cancel(c->l, &c->recv_op);
	check_maybe_done(c);
}

double check_ms(struct probe_check *c)
{
	c->end = mono_now();
	return (double)(c->end - c->start) / 1e6;
}

static const char *errno_text(int err)
{
	switch (err) {
	case ECONNREFUSED:
		return "connection refused";
	case ECONNRESET:
		return "connection reset by peer";
	case EPIPE:
		return "connection closed while sending";
	case ETIMEDOUT:
		return "connection timed out";
	case ENETUNREACH:
		return "network unreachable";
	case EHOSTUNREACH:
		return "host unreachable";
	default:
		return strerror(err);
	}
}

int probe_loop_new(struct loop **out, enum loop_backend backend, unsigned nbufs,
		   FILE *f)
{
	struct loop_params lp = { .backend = backend, .nbufs = nbufs };
	const char *why = NULL;
	int err = loop_new(out, &lp);

	if (!err)
		return 0;
	/* An explicit io_uring says why it cannot run, as ringd -V does. */
	if (backend == LOOP_BACKEND_IO_URING)
		loop_uring_probe(&why);
	fprintf(f, "UNKNOWN - ringd-probe: loop: %s\n",
		why ? why : strerror(-err));
	return err;
}

int probe_resolve(const struct probe_target *t, struct addrinfo **out,
		  struct probe_result *r)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = t->udp ? SOCK_DGRAM : SOCK_STREAM,
		.ai_flags = AI_ADDRCONFIG | AI_NUMERICSERV,
	};
	int err;

	*out = NULL;
	if (t->unix_path[0])
		return 0;
	/* [IPv6] is a literal: never a name to look up. */
	if (strchr(t->host, ':'))
		hints.ai_flags |= AI_NUMERICHOST;
	err = getaddrinfo(t->host, t->port, &hints, out);
	if (err == EAI_ADDRFAMILY || err == EAI_NONAME) {
		/* AI_ADDRCONFIG hides ::1 on a host whose only IPv6
		 * address is loopback; ask again without it. */
		hints.ai_flags &= ~AI_ADDRCONFIG;
		err = getaddrinfo(t->host, t->port, &hints, out);
	}
	if (err == 0)
		return 0;
	memset(r, 0, sizeof(*r));
	r->state = PROBE_UNKNOWN;
	snprintf(r->message, sizeof(r->message), "cannot resolve %.100s: %s",
		 t->host, err == EAI_SYSTEM ? strerror(errno) : gai_strerror(err));
	return -EHOSTUNREACH;
}

static void on_send(struct loop_op *op, int res, unsigned flags, void *buf);
static void on_recv(struct loop_op *op, int res, unsigned flags, void *buf);
static void on_recvmsg(struct loop_op *op, int res, unsigned flags,
		       void *buf);
static void on_deadline(struct loop_timer *t);
static void on_resend(struct loop_timer *t);

struct probe_check *probe_check_new(struct loop *l,
				    const struct probe_target *t,
				    const struct addrinfo *ai,
				    const struct probe_opts *o)
{
	struct probe_check *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->l = l;
	c->t = t;
	c->ai_head = ai;
	c->o = o;
	c->fd = -1;
	c->send_op = (struct loop_op){ .cb = on_send, .data = c };
	c->recv_op = (struct loop_op){ .cb = t->udp ? on_recvmsg : on_recv,
				       .data = c };
	c->deadline = (struct loop_timer){ .cb = on_deadline, .data = c };
	c->resend = (struct loop_timer){ .cb = on_resend, .data = c };
	return c;
}

void probe_check_free(struct probe_check *c)
{
	if (!c)
		return;
	free(c->out);
	free(c->in);
	free(c);
}

const struct probe_result *probe_check_result(const struct probe_check *c)
{
	return &c->res;
}

uint64_t probe_check_connects(const struct probe_check *c)
{
	return c->connects;
}

size_t probe_check_request_bytes(const struct probe_check *c)
{
	return c->out_len;
}

static void spread_source(int fd, const struct sockaddr *dst, uint64_t n)
{
	const struct sockaddr_in *in = (const struct sockaddr_in *)dst;
	struct sockaddr_in src = { .sin_family = AF_INET };
	int one = 1;

	if ((ntohl(in->sin_addr.s_addr) >> 24) != 127)
		return;
	src.sin_addr.s_addr = htonl(0x7f000002u + (uint32_t)(n % 253));
	/* Best effort: without it the connection still goes, from the
	 * kernel's choice of source. */
	setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
	(void)bind(fd, (const struct sockaddr *)&src, sizeof(src));
}

static int check_socket(struct probe_check *c, const struct addrinfo *ai)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	const struct sockaddr *sa = (const struct sockaddr *)&sun;
	socklen_t salen = sizeof(sun);
	int family = AF_UNIX, one = 1;

	if (ai) {
		family = ai->ai_family;
		sa = ai->ai_addr;
		salen = ai->ai_addrlen;
	} else {
		memcpy(sun.sun_path, c->t->unix_path, sizeof(sun.sun_path));
	}
	c->fd = socket(family,
		       (c->t->udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK |
			       SOCK_CLOEXEC,
		       0);
	if (c->fd < 0)
		return -errno;
	if (c->o->spread_source && family == AF_INET)
		spread_source(c->fd, sa, c->connects);
	c->connects++;
	if (family != AF_UNIX && !c->t->udp)
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, sa, salen) == 0 || errno == EINPROGRESS ||
	    errno == EAGAIN)
		return 0;
	return -errno;
}

/* Tries c->ai and the addresses after it until one connects or starts
 * connecting; a stream socket's zero-byte send completes when the
 * handshake does (or fails with its error) on either engine. */
static void check_connect(struct probe_check *c)
{
	int err;

	for (;;) {
		err = check_socket(c, c->ai);
		if (err == 0)
			break;
		check_close_fd(c);
		if (!c->ai || !c->ai->ai_next) {
			check_finish(c, PROBE_CRITICAL, "%s", errno_text(-err));
			return;
		}
		c->ai = c->ai->ai_next;
	}
	if (c->t->udp) {
		c->phase = PH_EXCHANGE;
		c->msg = (struct msghdr){ .msg_iov = &c->iov, .msg_iovlen = 1 };
		c->iov = (struct iovec){ .iov_base = c->in,
					 .iov_len = c->in_cap };
		c->inflight++;
		c->recv_live = true;
		loop_recvmsg(c->l, &c->recv_op, c->fd, &c->msg);
		on_resend(&c->resend);
		return;
	}
	c->phase = PH_CONNECT;
	c->inflight++;
	c->send_live = true;
	loop_send(c->l, &c->send_op, c->fd, c->out, 0);
}

static void send_more(struct probe_check *c);

/* The next try on a kept connection: the request goes out on it, or, if
 * the connection went stale while kept, after it is closed. */
static void check_reconnect(struct probe_check *c)
{
	c->stale = false;
	c->restart = true;
	c->phase = PH_CLOSING;
	loop_cancel(c->l, &c->send_op);
	loop_cancel(c->l, &c->recv_op);
	check_maybe_done(c);
}

static void check_reuse(struct probe_check *c)
{
	if (c->stale) {
		check_reconnect(c);
		return;
	}
	c->reused = true;
	c->phase = PH_EXCHANGE;
	send_more(c);
}

/* A kept connection the server closed just as the request went out (an
 * idle timeout racing it): no byte of the reply came, so the request
 * goes again, once, on a new connection, as HTTP clients do. */
static bool check_retry_fresh(struct probe_check *c)
{
	if (!c->reused || c->got || c->phase != PH_EXCHANGE)
		return false;
	check_reconnect(c);
	return true;
}

void probe_check_start(struct probe_check *c, probe_done_cb done, void *arg)
{
	bool kept = c->phase == PH_KEPT;

	c->reused = false;
	c->done = done;
	c->arg = arg;
	c->ai = c->ai_head;
	c->start = mono_now();
	c->end = 0;
	memset(&c->res, 0, sizeof(c->res));
	c->phase = PH_CONNECT;
	c->out_off = c->in_len = 0;
	c->got = c->body_got = 0;
	c->sent = c->udp_sending = false;
	memset(&c->cg, 0, sizeof(c->cg));
	memset(&c->http, 0, sizeof(c->http));
	memset(&c->chunks, 0, sizeof(c->chunks));
	/* HTTP decides once it has read the response head. */
	c->reuse = c->t->proto == PROBE_ECHO;
	if (reply_prepare(c) < 0) {
		check_finish(c, PROBE_UNKNOWN, "out of memory");
		return;
	}
	loop_timer_set(c->l, &c->deadline, c->start + c->o->timeout_ns);
	if (kept)
		check_reuse(c);
	else
		check_connect(c);
}

static void send_more(struct probe_check *c)
{
	c->inflight++;
	c->send_live = true;
	loop_send(c->l, &c->send_op, c->fd, c->out + c->out_off,
		  c->out_len - c->out_off);
}

/* The handshake is done: read from now on (early closes and resets show
 * there), and send the request if the protocol has one. */
static void check_connected(struct probe_check *c)
{
	c->phase = PH_EXCHANGE;
	c->inflight++;
	c->recv_live = true;
	loop_recv(c->l, &c->recv_op, c->fd);
	if (c->out_len)
		send_more(c);
	else
		reply_sent(c);
}

static void connect_failed(struct probe_check *c, int err)
{
	if (c->ai && c->ai->ai_next &&
	    (err == ECONNREFUSED || err == ENETUNREACH ||
	     err == EHOSTUNREACH || err == EADDRNOTAVAIL)) {
		check_close_fd(c);
		c->ai = c->ai->ai_next;
		check_connect(c);
		return;
	}
	check_finish(c, PROBE_CRITICAL, "%s", errno_text(err));
}

static void on_send(struct loop_op *op, int res, unsigned flags, void *buf)
{
	struct probe_check *c = op->data;

	c->inflight--;
	c->send_live = false;
	c->udp_sending = false;
	if (c->phase == PH_KEEPING) {
		/* A reply that came before all of its request was sent
		 * leaves the rest in the way of the next request. */
		if (res < 0 || c->out_off + (size_t)res < c->out_len)
			c->stale = true;
		c->phase = PH_KEPT;
		c->done(c, c->arg);
	} else if (c->phase == PH_CLOSING) {
		check_maybe_done(c);
	} else if (res < 0) {
		if (c->phase == PH_CONNECT)
			connect_failed(c, -res);
		else if (!check_retry_fresh(c))
			check_finish(c, PROBE_CRITICAL, "%s after %llu bytes",
				     errno_text(-res),
				     (unsigned long long)c->got);
	} else if (c->t->udp) {
		c->sent = true;
	} else if (c->phase == PH_CONNECT) {
		check_connected(c);
	} else {
		c->out_off += (size_t)res;
		if (c->out_off < c->out_len) {
			send_more(c);
		} else {
			c->sent = true;
			reply_sent(c);
		}
	}
}

static void on_recv(struct loop_op *op, int res, unsigned flags, void *buf)
{
	struct probe_check *c = op->data;

	if (!(flags & LOOP_F_MORE)) {
		c->inflight--;
		c->recv_live = false;
	}
	if (c->phase == PH_KEEPING || c->phase == PH_KEPT)
		c->stale = true; /* bytes or an end between two replies */
	else if (c->phase == PH_CLOSING)
		check_maybe_done(c);
	else if (res > 0)
		reply_data(c, buf, (size_t)res);
	else if (check_retry_fresh(c))
		; /* a new connection carries the request */
	else if (res == 0)
		reply_eof(c);
	else
		check_finish(c, PROBE_CRITICAL, "%s after %llu bytes",
			     errno_text(-res), (unsigned long long)c->got);
	/* A multishot RECV that ended without a verdict (it should not)
	 * must not leave the check waiting for nothing. */
	if (!(flags & LOOP_F_MORE) && c->phase == PH_EXCHANGE)
		check_finish(c, PROBE_CRITICAL, "reply ended unexpectedly");
}

static void on_recvmsg(struct loop_op *op, int res, unsigned flags,
		       void *buf)
{
	struct probe_check *c = op->data;

	c->inflight--;
	c->recv_live = false;
	if (c->phase == PH_CLOSING)
		check_maybe_done(c);
	else if (res < 0)
		check_finish(c, PROBE_CRITICAL, "%s", errno_text(-res));
	else
		reply_datagram(c, c->in, (size_t)res);
}

static void on_deadline(struct loop_timer *t)
{
	struct probe_check *c = t->data;

	/* A stale kept connection still closing: the try it was to carry
	 * ends here, since a new connection would run without a deadline. */
	if (c->phase == PH_CLOSING && c->restart) {
		c->restart = false;
		c->phase = PH_EXCHANGE;
	} else if (c->phase == PH_CLOSING) {
		/* The reply was good but the close it promised never came
		 * (RFC 9112 section 9.6: after "close" the server must end
		 * the connection): a server that keeps it open would make a
		 * connection-per-request load a timeout-per-request one. */
		c->res.state = PROBE_CRITICAL;
		snprintf(c->res.message, sizeof(c->res.message),
			 "reply complete, but the server did not close the "
			 "connection within %.1f s", c->o->timeout_ns / 1e9);
		loop_cancel(c->l, &c->recv_op);
		return;
	}
	if (c->phase == PH_CONNECT)
		check_finish(c, PROBE_CRITICAL, "timeout after %.1f s connecting",
			     c->o->timeout_ns / 1e9);
	else
		check_finish(c, PROBE_CRITICAL,
			     "timeout after %.1f s, %llu bytes received",
			     c->o->timeout_ns / 1e9,
			     (unsigned long long)c->got);
}

/* UDP loses datagrams: the request goes out again every quarter of the
 * timeout until a reply or the deadline. */
static void on_resend(struct loop_timer *t)
{
	struct probe_check *c = t->data;

	if (c->phase != PH_EXCHANGE)
		return;
	if (!c->udp_sending) {
		c->udp_sending = true;
		c->smsg = (struct msghdr){ .msg_iov = &c->siov,
					   .msg_iovlen = 1 };
		c->siov = (struct iovec){ .iov_base = c->out,
					  .iov_len = c->out_len };
		c->inflight++;
		c->send_live = true;
		loop_sendmsg(c->l, &c->send_op, c->fd, &c->smsg);
	}
	loop_timer_set(c->l, &c->resend,
		       loop_now(c->l) + c->o->timeout_ns / 4);
}
