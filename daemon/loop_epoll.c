/* The epoll engine: waits for readiness, performs the syscall itself and
 * completes ops the way io_uring would. Each fd is registered once,
 * edge-triggered, and its readiness cached between syscalls. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loop_backend.h"

#define EPOLL_BUDGET 16 /* syscalls per fd and direction per iteration */
#define EPOLL_MAX_EVENTS 64
#define EPOLL_MIN_FDS 64u

struct epoll_queue {
	struct loop_op *head;
	struct loop_op *tail;
};

struct epoll_fd {
	struct epoll_queue rq; /* ACCEPT, RECV, RECVMSG, READ; FIFO */
	struct epoll_queue wq; /* SEND, SENDMSG; FIFO */
	bool registered;
	bool exclusive;
	bool readable; /* no EAGAIN seen since the last edge */
	bool writable;
	bool short_drains; /* a short RECV empties it: epoll_is_tcp() */
	bool listed; /* on the ready list; survives epoll_forget() */
	int next_ready;
};

struct epoll_state {
	struct loop *loop;
	struct loop_counters *counters;
	int epfd;
	struct epoll_fd *fds;
	unsigned nfds;
	int ready_head; /* fds with work to do without waiting; -1: none */
	int ready_tail;
	struct epoll_queue done; /* results to deliver, op->res */
	void *buf; /* lent to RECV callbacks, one at a time */
	unsigned buf_size;
	struct epoll_event events[EPOLL_MAX_EVENTS];
};

static void epoll_queue_push(struct epoll_queue *q, struct loop_op *op)
{
	op->next = NULL;
	if (q->tail)
		q->tail->next = op;
	else
		q->head = op;
	q->tail = op;
}

static bool epoll_queue_remove(struct epoll_queue *q, struct loop_op *op)
{
	struct loop_op *prev = NULL;

	for (struct loop_op *o = q->head; o; prev = o, o = o->next) {
		if (o != op)
			continue;
		if (prev)
			prev->next = op->next;
		else
			q->head = op->next;
		if (q->tail == op)
			q->tail = prev;
		op->next = NULL;
		return true;
	}
	return false;
}

/* Queue a final result for loop_run(): submitters never get called
 * back from inside loop_send() and friends. */
static void epoll_finish_later(struct epoll_state *es, struct loop_op *op,
			       int res)
{
	op->res = res;
	op->flags |= LOOP_OPF_DONE;
	epoll_queue_push(&es->done, op);
}

static void epoll_ready_add(struct epoll_state *es, int fd)
{
	struct epoll_fd *st = &es->fds[fd];

	if (st->listed)
		return;
	st->listed = true;
	st->next_ready = -1;
	if (es->ready_tail >= 0)
		es->fds[es->ready_tail].next_ready = fd;
	else
		es->ready_head = fd;
	es->ready_tail = fd;
}

static int epoll_fds_grow(struct epoll_state *es, int fd)
{
	unsigned n = es->nfds ? es->nfds : EPOLL_MIN_FDS;
	struct epoll_fd *fds;

	while (n <= (unsigned)fd)
		n *= 2;
	fds = realloc(es->fds, n * sizeof(*fds));
	if (!fds)
		return -ENOMEM;
	memset(fds + es->nfds, 0, (n - es->nfds) * sizeof(*fds));
	es->fds = fds;
	es->nfds = n;
	return 0;
}

static int epoll_set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -errno;
	if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

/* On TCP, recv() returns less than asked only when it took everything
 * the socket held, and data that comes later raises a new edge: after
 * such a short read the engine marks the fd not readable instead of
 * spending a recv() that returns EAGAIN. One exception is urgent data,
 * where a read stops short at the mark; it shows as EPOLLPRI, which
 * epoll_mark() sees in time because urgent data that arrives after a
 * wait raises an edge of its own. Unix stream sockets are left out (with
 * SO_PASSCRED a read stops where the writer changes), and so are
 * datagrams, where a read takes one datagram whatever else is queued. */
static bool epoll_is_tcp(int fd)
{
	int proto = 0;
	socklen_t len = sizeof(proto);

	return getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len) == 0 &&
	       proto == IPPROTO_TCP;
}

/* accept4() and read() have no per-call MSG_DONTWAIT, and with cached
 * readiness a blocking fd would stall the thread. */
static int epoll_register(struct epoll_state *es, struct loop_op *op)
{
	struct epoll_fd *st = &es->fds[op->fd];
	struct epoll_event ev = { .data.fd = op->fd };
	int err;

	if (op->opcode == LOOP_OP_ACCEPT || op->opcode == LOOP_OP_READ) {
		err = epoll_set_nonblock(op->fd);
		if (err)
			return err;
	} else {
		st->short_drains = epoll_is_tcp(op->fd);
	}
	/* A listener may sit in every worker's epoll set: wake one of
	 * them per connection. EPOLLEXCLUSIVE rejects EPOLLRDHUP, and a
	 * listener needs neither it nor EPOLLOUT. */
	if (op->opcode == LOOP_OP_ACCEPT)
		ev.events = EPOLLIN | EPOLLET | EPOLLEXCLUSIVE;
	else
		ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI | EPOLLET;
	if (epoll_ctl(es->epfd, EPOLL_CTL_ADD, op->fd, &ev) < 0) {
		/* Regular files cannot be polled and never block. */
		if (errno == EPERM)
			st->readable = true;
		else if (errno != EEXIST)
			return -errno;
	}
	st->registered = true;
	st->exclusive = op->opcode == LOOP_OP_ACCEPT;
	/* Most sockets are writable: try a send before waiting for the
	 * edge the ADD will report anyway. */
	st->writable = true;
	return 0;
}

static int epoll_syscall(struct epoll_state *es, struct loop_op *op)
{
	ssize_t n;

	switch (op->opcode) {
	case LOOP_OP_ACCEPT:
		n = accept4(op->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		break;
	case LOOP_OP_RECV:
		n = recv(op->fd, es->buf, es->buf_size, MSG_DONTWAIT);
		break;
	case LOOP_OP_SEND:
		n = send(op->fd, op->buf, op->len,
			 MSG_NOSIGNAL | MSG_DONTWAIT |
			 (op->flags & LOOP_OPF_MORE ? MSG_MORE : 0));
		break;
	case LOOP_OP_RECVMSG:
		n = recvmsg(op->fd, op->msg, MSG_DONTWAIT);
		break;
	case LOOP_OP_SENDMSG:
		n = sendmsg(op->fd, op->msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		break;
	case LOOP_OP_READ:
		n = read(op->fd, op->buf, op->len);
		break;
	default:
		return -EINVAL;
	}
	if (n < 0)
		return -errno;
	return n > INT_MAX ? INT_MAX : (int)n;
}

static bool epoll_op_writes(const struct loop_op *op)
{
	return op->opcode == LOOP_OP_SEND || op->opcode == LOOP_OP_SENDMSG;
}

static void epoll_submit(void *state, struct loop_op *op)
{
	struct epoll_state *es = state;
	struct epoll_fd *st;
	int res;

	if (op->fd < 0) {
		epoll_finish_later(es, op, -EBADF);
		return;
	}
	if ((unsigned)op->fd >= es->nfds) {
		res = epoll_fds_grow(es, op->fd);
		if (res) {
			epoll_finish_later(es, op, res);
			return;
		}
	}
	st = &es->fds[op->fd];
	if (!st->registered) {
		res = epoll_register(es, op);
		if (res) {
			epoll_finish_later(es, op, res);
			return;
		}
	}
	if (!epoll_op_writes(op)) {
		epoll_queue_push(&st->rq, op);
		if (st->readable)
			epoll_ready_add(es, op->fd);
		return;
	}
	/* A send on a writable socket usually completes now: saves a
	 * round trip through epoll_wait(). */
	if (!st->wq.head && st->writable) {
		res = epoll_syscall(es, op);
		if (res != -EAGAIN) {
			epoll_finish_later(es, op, res);
			return;
		}
		loop_count(es->counters, LOOP_STAT_EAGAIN_WRITES);
		st->writable = false;
	}
	epoll_queue_push(&st->wq, op);
}

static void epoll_cancel(void *state, struct loop_op *op)
{
	struct epoll_state *es = state;
	struct epoll_fd *st;

	if (op->fd < 0 || (unsigned)op->fd >= es->nfds)
		return;
	st = &es->fds[op->fd];
	if (epoll_queue_remove(&st->rq, op) || epoll_queue_remove(&st->wq, op))
		epoll_finish_later(es, op, -ECANCELED);
}

static void epoll_cancel_queue(struct epoll_state *es, struct epoll_queue *q)
{
	while (q->head) {
		struct loop_op *op = q->head;

		q->head = op->next;
		epoll_finish_later(es, op, -ECANCELED);
	}
	q->tail = NULL;
}

static void epoll_forget(void *state, int fd)
{
	struct epoll_state *es = state;
	struct epoll_fd *st;
	bool listed;
	int next;

	if (fd < 0 || (unsigned)fd >= es->nfds)
		return;
	st = &es->fds[fd];
	/* close() drops the registration only with the last reference to
	 * the file, and listeners are often shared or duplicated. */
	if (st->exclusive)
		epoll_ctl(es->epfd, EPOLL_CTL_DEL, fd, NULL);
	/* The caller should have waited for its ops; finish strays rather
	 * than leave them pointing at a reused fd number. */
	epoll_cancel_queue(es, &st->rq);
	epoll_cancel_queue(es, &st->wq);
	listed = st->listed;
	next = st->next_ready;
	memset(st, 0, sizeof(*st));
	st->listed = listed;
	st->next_ready = next;
}

/* Hands one result to its op. Multishot ops stay at the head of their
 * queue until a final result. */
static void epoll_deliver(struct epoll_state *es, struct epoll_queue *q,
			  struct loop_op *op, int res)
{
	bool more = false;
	void *buf = NULL;
	unsigned flags;

	if (op->opcode == LOOP_OP_ACCEPT) {
		if (res < 0 && loop_accept_transient(res)) {
			loop_count(es->counters, LOOP_STAT_REARM_ACCEPT);
			return;
		}
		more = res >= 0;
	} else if (op->opcode == LOOP_OP_RECV && res > 0) {
		more = true;
		buf = es->buf;
	}
	if (!more) {
		q->head = op->next;
		if (!q->head)
			q->tail = NULL;
		op->next = NULL;
		op->flags = 0;
	}
	flags = (more ? LOOP_F_MORE : 0) | (buf ? LOOP_F_BUFFER : 0);
	op->cb(op, res, flags, buf);
}

/* Runs queued ops on one side of fd until EAGAIN or the budget runs out.
 * Callbacks may close fds or grow the table: re-read it every time. */
static void epoll_run_side(struct epoll_state *es, int fd, bool write)
{
	for (int budget = EPOLL_BUDGET; budget > 0; budget--) {
		struct epoll_fd *st = &es->fds[fd];
		struct epoll_queue *q = write ? &st->wq : &st->rq;
		bool *ready = write ? &st->writable : &st->readable;
		struct loop_op *op = q->head;
		int res;

		if (!op || !*ready)
			return;
		res = epoll_syscall(es, op);
		if (res == -EAGAIN) {
			loop_count(es->counters, write ? LOOP_STAT_EAGAIN_WRITES
						       : LOOP_STAT_EAGAIN_READS);
			*ready = false;
			return;
		}
		/* A short TCP read emptied the socket (epoll_is_tcp()); note
		 * it before the callback, which may close fd or grow the
		 * table. */
		if (op->opcode == LOOP_OP_RECV && st->short_drains && res > 0 &&
		    (unsigned)res < es->buf_size)
			st->readable = false;
		epoll_deliver(es, q, op, res);
	}
}

static void epoll_run_ready(struct epoll_state *es)
{
	int fd = es->ready_head;

	/* Walk a detached list: fds that still have work after their
	 * budget go on the new one and wait for the next iteration. */
	es->ready_head = es->ready_tail = -1;
	while (fd >= 0) {
		struct epoll_fd *st = &es->fds[fd];
		int next = st->next_ready;

		st->listed = false;
		epoll_run_side(es, fd, false);
		epoll_run_side(es, fd, true);
		st = &es->fds[fd];
		if ((st->rq.head && st->readable) ||
		    (st->wq.head && st->writable))
			epoll_ready_add(es, fd);
		fd = next;
	}
}

static void epoll_run_done(struct epoll_state *es)
{
	struct loop_op *op = es->done.head;

	es->done.head = es->done.tail = NULL;
	while (op) {
		struct loop_op *next = op->next;

		op->next = NULL;
		op->flags = 0;
		op->cb(op, op->res, 0, NULL);
		op = next;
	}
}

static void epoll_mark(struct epoll_state *es, int n)
{
	for (int i = 0; i < n; i++) {
		uint32_t ev = es->events[i].events;
		int fd = es->events[i].data.fd;
		struct epoll_fd *st;

		if (fd < 0 || (unsigned)fd >= es->nfds)
			continue;
		st = &es->fds[fd];
		if (!st->registered)
			continue;
		if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR | EPOLLPRI))
			st->readable = true;
		/* After the peer's FIN or an error the read that returns 0 or
		 * the error must come, and no edge would announce it again;
		 * at urgent data a read stops short of the end. For good. */
		if (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR | EPOLLPRI))
			st->short_drains = false;
		if (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR))
			st->writable = true;
		if (st->rq.head || st->wq.head)
			epoll_ready_add(es, fd);
	}
}

static int epoll_poll(void *state, int64_t timeout_ns)
{
	struct epoll_state *es = state;
	int ms = -1;
	int n;

	if (es->done.head || es->ready_head >= 0)
		ms = 0;
	else if (timeout_ns >= 0 && timeout_ns / 1000000 < INT_MAX - 1)
		ms = (int)((timeout_ns + 999999) / 1000000);
	loop_count(es->counters, LOOP_STAT_WAITS);
	n = epoll_wait(es->epfd, es->events, EPOLL_MAX_EVENTS, ms);
	if (n < 0) {
		if (errno != EINTR)
			return -errno;
		n = 0;
	}
	loop_update_now(es->loop);
	epoll_run_done(es);
	epoll_mark(es, n);
	epoll_run_ready(es);
	return 0;
}

static void epoll_destroy(void *state)
{
	struct epoll_state *es = state;

	if (es->epfd >= 0)
		close(es->epfd);
	free(es->fds);
	free(es->buf);
	free(es);
}

static int epoll_init(struct loop *l, const struct loop_config *cfg,
		      void **state)
{
	struct epoll_state *es = calloc(1, sizeof(*es));
	int err;

	if (!es)
		return -ENOMEM;
	es->loop = l;
	es->counters = cfg->counters;
	es->ready_head = es->ready_tail = -1;
	es->buf_size = cfg->buf_size;
	es->buf = malloc(cfg->buf_size);
	es->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (es->epfd < 0 || !es->buf) {
		err = es->epfd < 0 ? -errno : -ENOMEM;
		epoll_destroy(es);
		return err;
	}
	*state = es;
	return 0;
}

const struct loop_engine loop_epoll_engine = {
	.name = "epoll",
	.init = epoll_init,
	.destroy = epoll_destroy,
	.submit = epoll_submit,
	.cancel = epoll_cancel,
	.forget = epoll_forget,
	.poll = epoll_poll,
};
