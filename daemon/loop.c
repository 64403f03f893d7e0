/* What both engines share: engine choice, the timer heap, the cached
 * clock, run/stop and the cross-thread wake. The kernel interfaces live
 * in loop_uring.c and loop_epoll.c. */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "loop_backend.h"

#define LOOP_HEAP_MIN 64u

struct loop {
	const struct loop_engine *engine;
	void *state;
	int64_t now;
	bool stop;
	int fatal; /* an error loop_run() returns: the loop cannot go on */
	unsigned bufs_kept; /* loop_buf_keep() minus loop_buf_release() */
	struct loop_counters counters;

	struct loop_timer **heap;
	uint32_t nheap;
	uint32_t heap_cap;
	uint64_t timer_seq; /* the next loop_timer.seq */

	int wake_fd;
	uint64_t wake_val;
	struct loop_op wake_op;
	atomic_bool wake_pending;
	loop_wake_cb wake_cb;
	void *wake_arg;
};

static int64_t loop_clock(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void loop_update_now(struct loop *l)
{
	l->now = loop_clock();
}

int64_t loop_now(const struct loop *l)
{
	return l->now;
}

#if !HAVE_IO_URING
int loop_uring_probe(const char **why)
{
	if (why)
		*why = "built without io_uring";
	return -ENOSYS;
}
#endif

static int loop_config_get(struct loop_config *cfg, const struct loop_params *p)
{
	static const struct loop_params none;

	if (!p)
		p = &none;
	cfg->entries = p->entries ? p->entries : LOOP_DEFAULT_ENTRIES;
	cfg->nbufs = p->nbufs ? p->nbufs : LOOP_DEFAULT_NBUFS;
	cfg->buf_size = p->buf_size ? p->buf_size : LOOP_DEFAULT_BUF_SIZE;
	cfg->counters = NULL; /* loop_new() points it into the loop */
	if (cfg->nbufs > LOOP_MAX_NBUFS || (cfg->nbufs & (cfg->nbufs - 1)))
		return -EINVAL;
	if (cfg->buf_size > INT_MAX || cfg->entries > INT_MAX)
		return -EINVAL;
	return 0;
}

/* AUTO tries the io_uring engine, whose init runs the same checks as
 * loop_uring_probe() on the ring it keeps, so no ring is built twice. */
static int loop_engine_start(struct loop *l, enum loop_backend backend,
			     const struct loop_config *cfg)
{
	int err = -ENOSYS;

	if (backend != LOOP_BACKEND_AUTO && backend != LOOP_BACKEND_IO_URING &&
	    backend != LOOP_BACKEND_EPOLL)
		return -EINVAL;
	if (backend != LOOP_BACKEND_EPOLL) {
#if HAVE_IO_URING
		l->engine = &loop_uring_engine;
		err = l->engine->init(l, cfg, &l->state);
#endif
		if (err == 0 || backend == LOOP_BACKEND_IO_URING)
			return err;
	}
	l->engine = &loop_epoll_engine;
	return l->engine->init(l, cfg, &l->state);
}

static void loop_wake_done(struct loop_op *op, int res, unsigned flags,
			   void *buf)
{
	struct loop *l = op->data;

	/* Any other failure reading our own eventfd would repeat at once,
	 * and a loop that cannot be woken cannot be stopped: end the loop
	 * with the error so its owner notices. */
	if (res < 0 && res != -EAGAIN && res != -EINTR) {
		l->fatal = res;
		l->stop = true;
		return;
	}
	loop_read(l, op, l->wake_fd, &l->wake_val, sizeof(l->wake_val));
	if (res > 0) {
		/* Cleared after the read emptied the eventfd, so a wake
		 * that saw it still set is covered by the call below. */
		atomic_store(&l->wake_pending, false);
		if (l->wake_cb)
			l->wake_cb(l, l->wake_arg);
	}
}

int loop_new(struct loop **out, const struct loop_params *p)
{
	struct loop_config cfg;
	struct loop *l;
	int err = loop_config_get(&cfg, p);

	if (err)
		return err;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	atomic_init(&l->wake_pending, false);
	for (int i = 0; i < LOOP_STAT_N; i++)
		atomic_init(&l->counters.n[i], 0);
	cfg.counters = &l->counters;
	loop_update_now(l);
	l->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (l->wake_fd < 0) {
		err = -errno;
		free(l);
		return err;
	}
	err = loop_engine_start(l, p ? p->backend : LOOP_BACKEND_AUTO, &cfg);
	if (err) {
		close(l->wake_fd);
		free(l);
		return err;
	}
	l->wake_op.cb = loop_wake_done;
	l->wake_op.data = l;
	loop_read(l, &l->wake_op, l->wake_fd, &l->wake_val,
		  sizeof(l->wake_val));
	*out = l;
	return 0;
}

void loop_free(struct loop *l)
{
	if (!l)
		return;
	l->engine->destroy(l->state);
	close(l->wake_fd);
	for (uint32_t i = 0; i < l->nheap; i++)
		l->heap[i]->idx = 0;
	free(l->heap);
	free(l);
}

const char *loop_backend_name(const struct loop *l)
{
	return l->engine->name;
}

/* The caller has set the union member its opcode uses; a RECV's park
 * stays as it is, since parked input outlives the op that parked it. */
static void loop_submit_flags(struct loop *l, struct loop_op *op,
			      uint8_t opcode, int fd, uint8_t flags)
{
	assert(!(op->flags & LOOP_OPF_INFLIGHT));
	op->opcode = opcode;
	op->flags = LOOP_OPF_INFLIGHT | flags;
	op->fd = fd;
	op->res = 0;
	op->next = NULL;
	l->engine->submit(l->state, op);
}

static void loop_submit(struct loop *l, struct loop_op *op, uint8_t opcode,
			int fd)
{
	loop_submit_flags(l, op, opcode, fd, 0);
}

/* Results are ints, like the kernel's MAX_RW_COUNT clamp. */
static void loop_set_buf(struct loop_op *op, const void *buf, size_t len)
{
	op->buf = (void *)buf;
	op->len = len > INT_MAX ? INT_MAX : len;
}

void loop_accept(struct loop *l, struct loop_op *op, int fd)
{
	loop_submit(l, op, LOOP_OP_ACCEPT, fd);
}

void loop_recv(struct loop *l, struct loop_op *op, int fd)
{
	/* The first RECV of an op: no parked input yet. */
	if (op->opcode != LOOP_OP_RECV) {
		op->park = NULL;
		op->parked = 0;
	}
	loop_submit(l, op, LOOP_OP_RECV, fd);
}

void loop_send(struct loop *l, struct loop_op *op, int fd, const void *buf,
	       size_t len)
{
	loop_set_buf(op, buf, len);
	loop_submit(l, op, LOOP_OP_SEND, fd);
}

void loop_send_more(struct loop *l, struct loop_op *op, int fd,
		    const void *buf, size_t len)
{
	loop_set_buf(op, buf, len);
	loop_submit_flags(l, op, LOOP_OP_SEND, fd, LOOP_OPF_MORE);
}

void loop_recvmsg(struct loop *l, struct loop_op *op, int fd,
		  struct msghdr *msg)
{
	op->msg = msg;
	loop_submit(l, op, LOOP_OP_RECVMSG, fd);
}

void loop_sendmsg(struct loop *l, struct loop_op *op, int fd,
		  struct msghdr *msg)
{
	op->msg = msg;
	loop_submit(l, op, LOOP_OP_SENDMSG, fd);
}

void loop_read(struct loop *l, struct loop_op *op, int fd, void *buf,
	       size_t len)
{
	loop_set_buf(op, buf, len);
	loop_submit(l, op, LOOP_OP_READ, fd);
}

void loop_cancel(struct loop *l, struct loop_op *op)
{
	if (!(op->flags & LOOP_OPF_INFLIGHT) ||
	    (op->flags & (LOOP_OPF_DONE | LOOP_OPF_CANCEL)))
		return;
	l->engine->cancel(l->state, op);
}

size_t loop_recv_parked(const struct loop_op *op)
{
	return op->parked;
}

int loop_buf_keep(struct loop *l, const void *buf)
{
	int res;

	if (!l->engine->keep)
		return -EOPNOTSUPP;
	res = l->engine->keep(l->state, buf);
	if (res > 0)
		l->bufs_kept++;
	return res;
}

void loop_buf_release(struct loop *l, const void *buf)
{
	assert(l->bufs_kept > 0);
	l->bufs_kept--;
	l->engine->release(l->state, buf);
}

unsigned loop_bufs_kept(const struct loop *l)
{
	return l->bufs_kept;
}

void loop_close(struct loop *l, int fd)
{
	l->engine->forget(l->state, fd);
	close(fd);
}

void loop_forget(struct loop *l, int fd)
{
	l->engine->forget(l->state, fd);
}

static void loop_heap_place(struct loop *l, uint32_t i, struct loop_timer *t)
{
	l->heap[i] = t;
	t->idx = i + 1;
}

/* Ordered by deadline, then by arming order: a timer set during a pass
 * for "now" sorts after every timer that was due when the pass began. */
static bool loop_timer_before(const struct loop_timer *a,
			      const struct loop_timer *b)
{
	return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static void loop_heap_up(struct loop *l, uint32_t i)
{
	struct loop_timer *t = l->heap[i];

	while (i > 0) {
		uint32_t parent = (i - 1) / 2;

		if (!loop_timer_before(t, l->heap[parent]))
			break;
		loop_heap_place(l, i, l->heap[parent]);
		i = parent;
	}
	loop_heap_place(l, i, t);
}

static void loop_heap_down(struct loop *l, uint32_t i)
{
	struct loop_timer *t = l->heap[i];

	for (;;) {
		uint32_t c = 2 * i + 1;

		if (c >= l->nheap)
			break;
		if (c + 1 < l->nheap &&
		    loop_timer_before(l->heap[c + 1], l->heap[c]))
			c++;
		if (!loop_timer_before(l->heap[c], t))
			break;
		loop_heap_place(l, i, l->heap[c]);
		i = c;
	}
	loop_heap_place(l, i, t);
}

static void loop_heap_grow(struct loop *l)
{
	uint32_t cap = l->heap_cap ? 2 * l->heap_cap : LOOP_HEAP_MIN;
	struct loop_timer **heap = realloc(l->heap, cap * sizeof(*heap));

	/* loop_timer_set() has no error path and a daemon that cannot
	 * keep its deadlines must not run on without them. */
	if (!heap)
		abort();
	l->heap = heap;
	l->heap_cap = cap;
}

void loop_timer_set(struct loop *l, struct loop_timer *t, int64_t when)
{
	uint32_t i;

	t->when = when;
	t->seq = l->timer_seq++;
	if (t->idx) {
		i = t->idx - 1;
		loop_heap_up(l, i);
		loop_heap_down(l, t->idx - 1);
		return;
	}
	if (l->nheap == l->heap_cap)
		loop_heap_grow(l);
	i = l->nheap++;
	loop_heap_place(l, i, t);
	loop_heap_up(l, i);
}

void loop_timer_stop(struct loop *l, struct loop_timer *t)
{
	struct loop_timer *last;
	uint32_t i;

	if (!t->idx)
		return;
	i = t->idx - 1;
	t->idx = 0;
	last = l->heap[--l->nheap];
	if (last == t)
		return;
	loop_heap_place(l, i, last);
	loop_heap_up(l, i);
	loop_heap_down(l, last->idx - 1);
}

/* Fires at most the timers armed on entry, so one that re-arms itself
 * for "now" cannot starve I/O: it fires again next iteration. Counting
 * the heap on entry is not enough, as a re-armed timer would take the
 * turns of timers that are not due; the arming order tells them apart.
 * A timer set during the pass for a time earlier than other due ones
 * becomes the heap top and holds them back until the next iteration,
 * one poll that does not block: late by microseconds, never early. */
static void loop_timers_run(struct loop *l)
{
	uint64_t entry = l->timer_seq;

	while (l->nheap > 0 && !l->stop) {
		struct loop_timer *t = l->heap[0];

		if (t->when > l->now || t->seq >= entry)
			break;
		loop_timer_stop(l, t);
		t->cb(t);
	}
}

static int64_t loop_timeout(const struct loop *l)
{
	int64_t left;

	if (l->nheap == 0)
		return -1;
	left = l->heap[0]->when - loop_clock();
	return left > 0 ? left : 0;
}

int loop_run(struct loop *l)
{
	int err = 0;

	l->stop = false;
	while (!l->stop && !err) {
		loop_update_now(l);
		loop_timers_run(l);
		if (l->stop)
			break;
		err = l->engine->poll(l->state, loop_timeout(l));
	}
	return err ? err : l->fatal;
}

static uint64_t loop_stat(const struct loop *l, enum loop_stat s)
{
	return atomic_load_explicit(&l->counters.n[s], memory_order_relaxed);
}

void loop_stats(const struct loop *l, struct loop_stats *out)
{
	out->rearm_nobufs = loop_stat(l, LOOP_STAT_REARM_NOBUFS);
	out->rearm_overflow = loop_stat(l, LOOP_STAT_REARM_OVERFLOW);
	out->rearm_accept = loop_stat(l, LOOP_STAT_REARM_ACCEPT);
	out->sq_full = loop_stat(l, LOOP_STAT_SQ_FULL);
	out->eagain_reads = loop_stat(l, LOOP_STAT_EAGAIN_READS);
	out->eagain_writes = loop_stat(l, LOOP_STAT_EAGAIN_WRITES);
	out->waits = loop_stat(l, LOOP_STAT_WAITS);
	out->late_after_cancel = loop_stat(l, LOOP_STAT_LATE);
	out->spills = loop_stat(l, LOOP_STAT_SPILLS);
	out->keeps = loop_stat(l, LOOP_STAT_KEEPS);
	out->keeps_refused = loop_stat(l, LOOP_STAT_KEEPS_REFUSED);
}

void loop_stop(struct loop *l)
{
	l->stop = true;
}

void loop_set_wake(struct loop *l, loop_wake_cb cb, void *arg)
{
	l->wake_cb = cb;
	l->wake_arg = arg;
}

void loop_wake(struct loop *l)
{
	uint64_t one = 1;

	/* One eventfd write per burst: later wakers see the flag set and
	 * know the loop's thread will call wake_cb after they wrote. */
	if (atomic_exchange(&l->wake_pending, true))
		return;
	if (write(l->wake_fd, &one, sizeof(one)) != sizeof(one))
		atomic_store(&l->wake_pending, false);
}
