/* Private contract between loop.c and its engines (loop_uring.c,
 * loop_epoll.c). loop.c owns timers, the clock, the stop flag and wakes;
 * an engine owns its kernel object and the ops in flight. */
#ifndef RINGD_LOOP_BACKEND_H
#define RINGD_LOOP_BACKEND_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "loop.h"

/* Defaults for struct loop_params fields left at 0. */
#define LOOP_DEFAULT_ENTRIES 512u
#define LOOP_DEFAULT_NBUFS 256u
#define LOOP_DEFAULT_BUF_SIZE 16384u
#define LOOP_MAX_NBUFS 32768u /* a buffer ring holds at most 2^15 */

/* Private bits of loop_op.flags. */
#define LOOP_OPF_INFLIGHT 0x01u /* between submit and final completion */
#define LOOP_OPF_DONE 0x02u     /* final result queued, cb not yet run */
#define LOOP_OPF_CANCEL 0x04u   /* loop_cancel() asked for it */
#define LOOP_OPF_REARM 0x08u    /* io_uring: on the engine's later list */
#define LOOP_OPF_ARMED 0x10u    /* io_uring: the kernel holds the op */
#define LOOP_OPF_STARVED 0x20u  /* io_uring: RECV waiting for a buffer */
#define LOOP_OPF_MORE 0x40u     /* SEND: MSG_MORE (loop_send_more()) */

/* The counters behind struct loop_stats, one per field. */
enum loop_stat {
	LOOP_STAT_REARM_NOBUFS,
	LOOP_STAT_REARM_OVERFLOW,
	LOOP_STAT_REARM_ACCEPT,
	LOOP_STAT_SQ_FULL,
	LOOP_STAT_EAGAIN_READS,
	LOOP_STAT_EAGAIN_WRITES,
	LOOP_STAT_WAITS,
	LOOP_STAT_LATE,
	LOOP_STAT_SPILLS,
	LOOP_STAT_KEEPS,
	LOOP_STAT_KEEPS_REFUSED,
	LOOP_STAT_N
};

/* Atomic only so loop_stats() may read them from another thread. */
struct loop_counters {
	_Atomic uint64_t n[LOOP_STAT_N];
};

/* The loop's thread is the only writer, so a load and a store do what
 * an atomic add would, without its locked instruction. */
static inline void loop_count(struct loop_counters *c, enum loop_stat s)
{
	uint64_t v = atomic_load_explicit(&c->n[s], memory_order_relaxed);

	atomic_store_explicit(&c->n[s], v + 1, memory_order_relaxed);
}

/* params with defaults applied and checked by loop.c. */
struct loop_config {
	unsigned entries;
	unsigned nbufs;
	unsigned buf_size;
	struct loop_counters *counters; /* where the engine counts */
};

/* One engine. Every hook gets the state that init() returned.
 * submit() and cancel() never run a callback; completions run only from
 * poll(). poll() waits at most timeout_ns (-1: no limit, 0: do not
 * block), calls loop_update_now() once it stops waiting, runs the
 * completions it found and returns 0 or -errno on a fatal failure. */
struct loop_engine {
	const char *name;
	int (*init)(struct loop *l, const struct loop_config *cfg,
		    void **state);
	void (*destroy)(void *state);
	void (*submit)(void *state, struct loop_op *op);
	void (*cancel)(void *state, struct loop_op *op);
	void (*forget)(void *state, int fd);
	int (*poll)(void *state, int64_t timeout_ns);
	/* loop_buf_keep() and loop_buf_release(), as loop.h says; NULL
	 * where the engine lends no buffer it could keep. */
	int (*keep)(void *state, const void *buf);
	void (*release)(void *state, const void *buf);
};

extern const struct loop_engine loop_epoll_engine;
extern const struct loop_engine loop_uring_engine; /* if HAVE_IO_URING */

void loop_update_now(struct loop *l);

static inline bool loop_op_multishot(const struct loop_op *op)
{
	return op->opcode == LOOP_OP_ACCEPT || op->opcode == LOOP_OP_RECV;
}

/* accept(2) errors that concern one aborted connection, not the
 * listener: a multishot ACCEPT stays armed across them (accept(2) NOTES
 * asks to retry on these). */
static inline bool loop_accept_transient(int err)
{
	switch (err) {
	case -EAGAIN:
	case -EINTR:
	case -ECONNABORTED:
	case -EPROTO:
	case -ENETDOWN:
	case -ENOPROTOOPT:
	case -EHOSTDOWN:
	case -ENONET:
	case -EHOSTUNREACH:
	case -ENETUNREACH:
		return true;
	default:
		return false;
	}
}

#endif
