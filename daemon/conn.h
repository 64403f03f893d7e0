/* One stream connection and the set that owns it: the plugin's callbacks,
 * a bounded output queue with one send in flight, reading paused while a
 * queue (or the set's whole budget) is over its limit, idle deadlines, and
 * a close that waits for every in-flight completion before the memory goes
 * (the io_uring lifetime rule). conn.c knows no listener and no worker:
 * the owner of a set hears of each connection that went away through the
 * callback it handed in. */
#ifndef RINGD_CONN_H
#define RINGD_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <ringd/plugin.h>

#include "log.h"
#include "loop.h"

struct conn;
struct metrics_block;
struct outseg;
struct ringd_instance;

/* Output above this stops reading; below CONN_LOW_WATER it resumes and
 * on_writable fires. Bounds a connection's memory whatever the peer does. */
#define CONN_HIGH_WATER (256 * 1024)
#define CONN_LOW_WATER (64 * 1024)

/* How long a closing connection drains the peer's input after our FIN
 * before it gives up; closing with unread input would send a reset. */
#define CONN_LINGER_MS 2000

/* Called once for every connection conn_open() took, when it is gone (fd
 * closed, memory freed). inst and peer are the ones conn_open() was given;
 * peer is valid only during the call. May run from inside conn_open()
 * (a plugin that refuses in on_open), from a host call's completion, or
 * from conn_abort_all(), so the owner must be ready to be re-entered. */
typedef void (*conn_gone_fn)(void *arg, const struct ringd_instance *inst,
			     const struct sockaddr *peer);

/* Counters of a set; written only by its thread. */
struct conn_stats {
	uint64_t budget_pauses; /* reads stopped because the set was over
				   its budget */
	uint64_t sends;         /* send operations started */
};

/* A worker's connections. Owned by one thread; embed it and set it up
 * with conn_set_init(). The fields are conn.c's. */
struct conn_set {
	struct loop *loop;
	void *const *wstate; /* per service index: the plugin's worker state */
	conn_gone_fn gone;
	void *gone_arg;

	struct conn *head; /* doubly linked */
	size_t n;
	/* Freed output segments kept for reuse, per size class, and
	 * freed reference segments (no data of their own). */
	struct outseg *free_segs[2];
	size_t nfree_segs[2];
	struct outseg *free_refs;
	size_t nfree_refs;
	/* During one connection's on_data(): that connection and the
	 * buffer the loop lent for it, which send_input() may keep (here,
	 * not in struct conn, which every idle connection pays for). */
	struct conn *in_conn;
	const char *in_buf;
	size_t in_len;
	/* A graceful stop checks draining connections after each batch of
	 * completions. */
	struct loop_timer drain_timer;
	bool draining;
	bool retiring; /* conn_retire_all() */

	/* Memory held by the output queues of the set's connections, and
	 * the most it may hold before connections with output of their own
	 * stop reading (0: no budget). Past budget + slack every connection
	 * stops. Reading resumes below 7/8 of the budget. */
	size_t held;
	size_t budget;
	size_t slack;
	int budget_level; /* 1: held crossed budget, 2: and the slack */
	struct conn *budget_wait; /* stopped by the budget, oldest first */
	struct loop_timer budget_timer; /* lets the next batch of them go */
	struct conn *budget_wait_tail;
	struct conn_stats stats;

	/* Where the set's connections count (and accept.c its refusals);
	 * NULL counts nothing. Set by the owner after conn_set_init(). */
	struct metrics_block *metrics;

	/* Connections whose held input was released wait here for the
	 * next iteration (hold_input() never calls back from inside). */
	struct loop_timer unhold_timer;

	/* Out of memory comes once per accepted connection: a line per
	 * interval (CONN_OOM_LOG_NS). */
	struct log_limit oom_log;
};

#define CONN_OOM_LOG_NS (10LL * 1000000000)

/* Input a connection with an empty queue may still turn into output once
 * the set is over its budget: enough to keep serving clients that read
 * their replies while others hold the budget, small enough that the set
 * stays within budget plus a constant whatever the number of connections.
 * An eighth of the budget, at most 1 MiB. */
#define CONN_BUDGET_SLACK_MAX (1024 * 1024)

void conn_set_init(struct conn_set *s, struct loop *l, void *const *wstate,
		   size_t budget, conn_gone_fn gone, void *gone_arg);
/* Frees the segment cache. Every connection must be gone. */
void conn_set_fini(struct conn_set *s);

static inline size_t conn_set_count(const struct conn_set *s)
{
	return s->n;
}

/* Take ownership of an accepted fd from peer (peerlen 0: unknown, as for
 * unix: clients), start the plugin and reading. Returns 0 when the set
 * took it: gone() will be called for it exactly once, possibly before
 * conn_open() returns. Returns -ENOMEM when it could not: the fd is
 * closed and gone() is not called. */
int conn_open(struct conn_set *s, const struct ringd_instance *inst, int fd,
	      const struct sockaddr *peer, socklen_t peerlen);

/* Graceful stop of every connection of s. A plugin with on_drain() hears
 * of it and closes each connection itself (input keeps flowing until it
 * does). For the others what the peer sent before the stop still reaches
 * the plugin, then flush, FIN, close; idle ones close at once.
 * Connections opened later are drained too. conn_abort_all closes them
 * all now, with a reset. */
void conn_shutdown_all(struct conn_set *s);
void conn_abort_all(struct conn_set *s);
/* A reload replaces s's generation: a plugin with on_drain() hears of it
 * (once what the peer had sent has reached it) and ends its connections
 * where its protocol allows; the others' connections run on until they
 * close (an echo stream is never cut), bounded by the owner's
 * shutdown_timeout. Connections opened later are treated the same. */
void conn_retire_all(struct conn_set *s);

/* The ringd_host operations on a connection. */
int conn_send(struct ringd_conn *c, const void *buf, size_t len, int copy);
/* host->send_input(): as conn_send(c, buf, len, 1), except that bytes of
 * the on_data() call in progress may be sent from the loop's buffer they
 * arrived in (loop_buf_keep()), given back when they are sent or the
 * connection goes. Keeps only with nothing queued, at least
 * CONN_KEEP_MIN bytes, and a buffer the loop will lend; copies
 * otherwise. The kept buffer's whole size counts toward the set's
 * budget while queued. */
int conn_send_input(struct ringd_conn *c, const void *buf, size_t len);
/* host->close_no_linger(): conn_close() without the drain of the peer's
 * input after our FIN, unless unread input is waiting. */
void conn_close_no_linger(struct ringd_conn *c);
void conn_close(struct ringd_conn *c);
void conn_abort(struct ringd_conn *c);
size_t conn_queued(const struct ringd_conn *c);
void conn_set_timeout(struct ringd_conn *c, int64_t ms);
void conn_hold_input(struct ringd_conn *c, bool hold);
enum ringd_close_reason conn_close_reason(const struct ringd_conn *c);
void conn_count(struct ringd_conn *c, unsigned idx, uint64_t n);
/* host->loop_time(): the time c's loop last woke (loop_now()). */
int64_t conn_loop_time(const struct ringd_conn *c);

#endif
