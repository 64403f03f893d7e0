/* One stream connection between the loop and a plugin. It keeps one recv
 * (multishot) and at most one send in flight, so bytes never reorder, and
 * frees itself only after the last completion of its ops has arrived. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "conn.h"
#include "daemon.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"

enum {
	C_READING = 1u << 0,  /* recv op in flight */
	C_SENDING = 1u << 1,  /* send op in flight */
	C_PAUSED = 1u << 2,   /* reading stopped: output over high water */
	C_EOF = 1u << 3,      /* the peer sent FIN */
	C_CLOSING = 1u << 4,  /* close after flush; no more input to plugin */
	C_SHUT = 1u << 5,     /* our FIN is out; draining the peer's input */
	C_DEAD = 1u << 6,     /* going away; waiting for completions */
	C_OPEN = 1u << 7,     /* on_open succeeded, so on_close is owed */
	C_IN_CB = 1u << 8,    /* inside a plugin hook: do not free */
	C_NOLINGER = 1u << 9, /* close_no_linger(): no drain after our FIN */
	C_RESET = 1u << 10,   /* close with RST (abort) */
	C_DRAIN = 1u << 11,   /* stopping: serve input already received */
	C_BUDGET = 1u << 12,  /* reading stopped by the set's budget; on
				 set->budget_wait */
	C_HELD = 1u << 13,    /* the plugin holds its input (hold_input) */
	C_TOLD = 1u << 14,    /* on_drain() was called */
	C_LOGGED = 1u << 15,  /* log_connections: a struct conn_log follows */
	C_TELL = 1u << 16,    /* retiring: on_drain() once input came and
				 nothing is unread */
	C_FED = 1u << 17,     /* on_data() has been called */
};

_Static_assert(RINGD_CLOSE_STOP + 1 == METRICS_CLOSE_N, "metrics.h sizes");

/* Queued output. A copy segment owns data[cap]; a reference segment
 * (cap 0) points at plugin memory that outlives the connection, or into
 * a RECV buffer the loop lent and we kept (send_input()): kept is that
 * buffer, given back to the loop when the segment leaves the queue, and
 * kept_size the pool memory it holds, which counts as held. */
struct outseg {
	struct outseg *next;
	const char *ptr; /* next byte to send */
	size_t len;      /* bytes left from ptr */
	size_t cap;
	const void *kept;
	size_t kept_size;
	char data[];
};

/* Output that queues behind a send in flight (a 64 KiB reply arriving as
 * 16 KiB ring buffers) goes into big segments, so it leaves in one send
 * instead of one per ring buffer; a reply sent at once needs no more
 * than a small one. */
static const size_t outseg_class[2] = { 16384, 65536 };
/* Freed standard segments a set keeps for reuse, per class. Request/
 * response traffic allocates and frees one per reply; without the cache
 * glibc grows and trims its heap each time and every reply pays page
 * faults. */
static const size_t outseg_cache[2] = { 64, 16 };
/* Reference segments a set keeps: echo through send_input() takes one
 * per reply, and more than a few in a row miss glibc's per-thread
 * cache (malloc and free were 0.7% of the server's CPU at 4 KiB). */
#define OUTSEG_REF_CACHE 64
/* send_ref() data up to this size joins a copy segment with room. */
#define CONN_REF_COPY_MAX 4096
/* send_input() copies less than this: a copy of a few hundred bytes
 * costs less than a segment of its own, and a kept buffer is a whole
 * pool buffer out of the kernel's reach until the send completes. */
#define CONN_KEEP_MIN 1024

struct conn {
	struct ringd_conn pub; /* first: plugins hold &pub */
	struct conn_set *set;
	const struct ringd_instance *inst;
	struct conn *prev, *next;
	struct conn *bprev, *bnext; /* on set->budget_wait */
	int fd;
	unsigned flags;
	struct loop_op rop, sop;
	struct outseg *head, *tail;
	size_t queued;
	struct loop_timer timer;
	int64_t deadline; /* set_timeout() or linger; 0: none */
	int64_t last_active;
	uint8_t transport; /* enum metrics_transport */
	uint8_t why;       /* enum ringd_close_reason + 1; 0 until known */
	/* A TCP peer's address; unix: peers are unnamed (peerlen 0). Not a
	 * sockaddr_storage: 100 bytes less per idle connection. */
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} peer;
};

/* What the close line of log_connections reports, in a tail after
 * struct conn that only the connections of such a service pay for. */
struct conn_log {
	int64_t opened; /* loop time */
	uint64_t bytes_in, bytes_out;
};

static void conn_recv_done(struct loop_op *op, int res, unsigned flags,
			   void *buf);
static void conn_send_done(struct loop_op *op, int res, unsigned flags,
			   void *buf);
static void conn_kill(struct conn *c);
static void conn_release(struct conn *c);
static void conn_drain_soon(struct conn_set *s);
static void conn_drain_check(struct loop_timer *t);
static bool conn_over_budget(const struct conn *c);
static void conn_budget_wait(struct conn *c);
static void conn_budget_cross(struct conn_set *set);
static void conn_budget_resume(struct conn_set *set);
static void conn_budget_timer_fired(struct loop_timer *t);
static void conn_tell_drain(struct conn *c);
static size_t conn_unread(const struct conn *c);

/* Whether input the plugin has not seen waits, parked or in the kernel.
 * While a receive runs (not paused or held), the loop takes input as it
 * arrives, so the kernel holds none worth a syscall to ask about: the
 * moment between its arrival and its delivery is a race no look here
 * could close. */
static bool conn_input_waiting(const struct conn *c)
{
	if (loop_recv_parked(&c->rop))
		return true;
	if ((c->flags & (C_READING | C_PAUSED)) == C_READING)
		return false;
	return conn_unread(c) > 0;
}

static struct conn *conn_of(const struct ringd_conn *pc)
{
	return (struct conn *)pc;
}

static const struct ringd_plugin *conn_plugin(const struct conn *c)
{
	return c->inst->p;
}

/* The first cause wins: a close the plugin asked for that then times out
 * in its linger is still the plugin's. */
static void conn_why(struct conn *c, enum ringd_close_reason r)
{
	if (!c->why)
		c->why = (uint8_t)(r + 1);
}

static struct conn_log *conn_log_of(struct conn *c)
{
	return (c->flags & C_LOGGED) ? (struct conn_log *)(c + 1) : NULL;
}

static struct metrics_stream *conn_ctr(const struct conn *c)
{
	return metrics_stream_of(c->set->metrics, c->inst->idx, c->transport);
}

/* Per-connection lines are debug: formatting them is skipped unless an
 * operator asked for them. */
#define conn_debug(c, fmt, ...)                                             \
	do {                                                                \
		char peer_[LOG_ADDR_MAX];                                   \
		if (log_level() >= RINGD_LOG_DEBUG)                         \
			log_debug("conn: " fmt " svc=%s peer=%s",           \
				  ##__VA_ARGS__, (c)->inst->sc->name,       \
				  log_addr((c)->pub.peer, peer_, sizeof(peer_))); \
	} while (0)

static int64_t conn_expiry(const struct conn *c)
{
	/* The service's idle_timeout, read where it lives rather than
	 * copied: every byte of struct conn is paid per idle connection. */
	int64_t idle_ns = c->inst->sc->idle_timeout_ms * 1000000;
	int64_t e = INT64_MAX;

	if (idle_ns > 0)
		e = c->last_active + idle_ns;
	if (c->deadline > 0 && c->deadline < e)
		e = c->deadline;
	return e;
}

/* The timer may run early (it then re-arms itself) but never late, so
 * activity never has to touch the heap. */
static void conn_arm_timer(struct conn *c)
{
	int64_t e = conn_expiry(c);

	if (e == INT64_MAX)
		loop_timer_stop(c->set->loop, &c->timer);
	else if (!loop_timer_armed(&c->timer) || c->timer.when > e)
		loop_timer_set(c->set->loop, &c->timer, e);
}

/* Idle timers are not moved on every byte: the timer fires at the old
 * expiry and re-arms itself from the last activity, which keeps the heap
 * out of the hot path. */
static void conn_timer_fired(struct loop_timer *t)
{
	struct conn *c = t->data;
	int64_t e = conn_expiry(c);

	if (loop_now(c->set->loop) < e) {
		loop_timer_set(c->set->loop, t, e);
		return;
	}
	/* Stopped by the budget with nothing of its own queued, it waits on
	 * us, not on its client: not idle (the deadline still applies). */
	if ((c->flags & C_BUDGET) && !c->head &&
	    (c->deadline <= 0 || loop_now(c->set->loop) < c->deadline)) {
		c->last_active = loop_now(c->set->loop);
		conn_arm_timer(c);
		return;
	}
	conn_debug(c, "timeout kind=%s", c->flags & C_SHUT ? "linger" : "idle");
	conn_why(c, c->deadline > 0 && loop_now(c->set->loop) >= c->deadline ?
			    RINGD_CLOSE_DEADLINE : RINGD_CLOSE_IDLE);
	conn_kill(c);
	conn_release(c);
}

static void conn_touch(struct conn *c)
{
	c->last_active = loop_now(c->set->loop);
}

static void conn_read_start(struct conn *c)
{
	if (c->flags & (C_READING | C_DEAD | C_EOF))
		return;
	if ((c->flags & C_HELD) && !(c->flags & C_SHUT)) {
		c->flags |= C_PAUSED;
		return;
	}
	/* Draining after our FIN turns no input into output. */
	if (!(c->flags & C_SHUT) && conn_over_budget(c)) {
		c->flags |= C_PAUSED;
		conn_budget_wait(c);
		return;
	}
	c->flags &= ~C_PAUSED;
	c->flags |= C_READING;
	loop_recv(c->set->loop, &c->rop, c->fd);
	/* A draining connection that was paused may have nothing left to
	 * read: look again, or it would wait for shutdown_timeout. */
	if (c->flags & (C_DRAIN | C_TELL))
		conn_drain_soon(c->set);
}

static void conn_flush(struct conn *c)
{
	if ((c->flags & (C_SENDING | C_DEAD)) || !c->head)
		return;
	c->flags |= C_SENDING;
	metrics_add(&c->set->stats.sends, 1);
	/* The last bytes before our FIN: let the FIN ride with them. */
	if ((c->flags & C_CLOSING) && !c->head->next)
		loop_send_more(c->set->loop, &c->sop, c->fd, c->head->ptr,
			       c->head->len);
	else
		loop_send(c->set->loop, &c->sop, c->fd, c->head->ptr,
			  c->head->len);
}

/* Sends made inside a hook leave when it returns, together: a response's
 * header and body, or the answers to several pipelined requests, go out
 * in one send instead of the first alone and the rest behind it. */
static void conn_hook_done(struct conn *c)
{
	c->flags &= ~C_IN_CB;
	conn_flush(c);
}

/* Our side is done: with the peer's FIN already read a plain close sends
 * FIN. Otherwise send FIN now and drain input until the peer closes, as a
 * close with unread input would turn into a reset that can destroy the
 * reply we just sent before the peer reads it; unless the plugin said the
 * peer sends nothing more (close_no_linger()), which saves waiting for the
 * peer's FIN. */
static void conn_finish(struct conn *c)
{
	if (c->flags & (C_SHUT | C_DEAD))
		return;
	if (c->flags & C_EOF) {
		conn_kill(c);
		return;
	}
	/* The FIN leaves here, with the last bytes (loop_send_more()), not
	 * from close(): a close with input that arrived meanwhile would send
	 * a reset instead, and lose them. */
	shutdown(c->fd, SHUT_WR);
	c->flags |= C_SHUT;
	if ((c->flags & C_NOLINGER) && !conn_input_waiting(c)) {
		conn_kill(c);
		return;
	}
	c->deadline = loop_now(c->set->loop) + (int64_t)CONN_LINGER_MS * 1000000;
	conn_arm_timer(c);
	conn_read_start(c);
}

static void conn_put_seg(struct conn_set *set, struct outseg *s)
{
	size_t k = s->cap == outseg_class[1];

	if (s->cap == 0 && set->nfree_refs < OUTSEG_REF_CACHE) {
		s->next = set->free_refs;
		set->free_refs = s;
		set->nfree_refs++;
		return;
	}
	if (s->cap != outseg_class[k] ||
	    set->nfree_segs[k] >= outseg_cache[k]) {
		free(s);
		return;
	}
	s->next = set->free_segs[k];
	set->free_segs[k] = s;
	set->nfree_segs[k]++;
}

void conn_set_init(struct conn_set *set, struct loop *l, void *const *wstate,
		   size_t budget, conn_gone_fn gone, void *gone_arg)
{
	*set = (struct conn_set){ .loop = l, .wstate = wstate, .gone = gone,
				  .gone_arg = gone_arg, .budget = budget };
	set->slack = budget / 8 < CONN_BUDGET_SLACK_MAX ? budget / 8 :
							   CONN_BUDGET_SLACK_MAX;
	set->drain_timer = (struct loop_timer){ .cb = conn_drain_check,
						.data = set };
	set->budget_timer = (struct loop_timer){ .cb = conn_budget_timer_fired,
						 .data = set };
}

void conn_set_fini(struct conn_set *set)
{
	struct outseg *s;

	for (size_t k = 0; k < 2; k++) {
		while ((s = set->free_segs[k])) {
			set->free_segs[k] = s->next;
			free(s);
		}
		set->nfree_segs[k] = 0;
	}
	while ((s = set->free_refs)) {
		set->free_refs = s->next;
		free(s);
	}
	set->nfree_refs = 0;
	if (loop_timer_armed(&set->drain_timer))
		loop_timer_stop(set->loop, &set->drain_timer);
	if (loop_timer_armed(&set->budget_timer))
		loop_timer_stop(set->loop, &set->budget_timer);
}

/* Below this a set that crossed its budget takes input again. */
static size_t conn_budget_low(const struct conn_set *set)
{
	return set->budget - set->budget / 8;
}

static size_t conn_seg_mem(const struct outseg *s)
{
	return sizeof(*s) + s->cap + s->kept_size;
}

/* A segment leaves c's queue: sent, or dropped on close. The set's budget
 * counts segment memory, not bytes, since 1,000 connections with a few
 * bytes each still hold 1,000 segments. */
static void conn_seg_done(struct conn *c, struct outseg *s)
{
	struct conn_set *set = c->set;

	set->held -= conn_seg_mem(s);
	if (s->kept)
		loop_buf_release(set->loop, s->kept);
	conn_put_seg(set, s);
	if (set->budget_level && set->held < conn_budget_low(set))
		set->budget_level = 0;
	if (set->budget_wait)
		conn_budget_resume(set);
}

static void conn_free_queue(struct conn *c)
{
	struct outseg *s, *next;

	for (s = c->head; s; s = next) {
		next = s->next;
		conn_seg_done(c, s);
	}
	c->head = c->tail = NULL;
	c->queued = 0;
}

static void conn_budget_unwait(struct conn *c)
{
	struct conn_set *set = c->set;

	if (!(c->flags & C_BUDGET))
		return;
	c->flags &= ~C_BUDGET;
	if (c->bprev)
		c->bprev->bnext = c->bnext;
	else
		set->budget_wait = c->bnext;
	if (c->bnext)
		c->bnext->bprev = c->bprev;
	else
		set->budget_wait_tail = c->bprev;
	c->bprev = c->bnext = NULL;
}

static void conn_unlink(struct conn *c)
{
	struct conn_set *set = c->set;

	conn_budget_unwait(c);
	if (c->prev)
		c->prev->next = c->next;
	else
		set->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	set->n--;
}

static void conn_call_close(struct conn *c)
{
	const struct ringd_plugin *p = conn_plugin(c);

	if (!(c->flags & C_OPEN) || !PLUGIN_HAS(p, on_close))
		return;
	/* C_DEAD makes every host call on c a no-op (send: -EPIPE) and
	 * C_IN_CB keeps an abort() from freeing c under our feet. */
	c->flags &= ~C_OPEN;
	c->flags |= C_IN_CB;
	p->on_close(&c->pub);
	c->flags &= ~C_IN_CB;
}

/* Our end's address: the listener's for TCP, its path for unix:. */
static const char *conn_local(const struct conn *c, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	const struct sockaddr_un *sun = (const void *)&ss;
	socklen_t sl = sizeof(ss);
	char path[sizeof(sun->sun_path) + 8];

	if (getsockname(c->fd, (struct sockaddr *)&ss, &sl) < 0)
		return log_value(buf, len, "unknown");
	if (ss.ss_family != AF_UNIX)
		return log_addr((const struct sockaddr *)&ss, buf, len);
	/* The kernel need not terminate a path that fills sun_path. */
	if (sl <= offsetof(struct sockaddr_un, sun_path) || !sun->sun_path[0])
		return log_value(buf, len, "unix");
	snprintf(path, sizeof(path), "unix:%.*s",
		 (int)(sl - offsetof(struct sockaddr_un, sun_path)),
		 sun->sun_path);
	return log_value(buf, len, path);
}

static void conn_log_close(struct conn *c)
{
	static const char *const transports[] = { "tcp", "unix" };
	const struct conn_log *lg = conn_log_of(c);
	char peer[LOG_ADDR_MAX], local[LOG_VALUE_MAX];

	if (lg == NULL || log_level() < RINGD_LOG_INFO)
		return;
	log_info("conn: closed svc=%s transport=%s peer=%s local=%s "
		 "bytes_in=%llu bytes_out=%llu duration_us=%lld reason=%s",
		 c->inst->sc->name, transports[c->transport & 1],
		 log_addr(c->pub.peer, peer, sizeof(peer)),
		 conn_local(c, local, sizeof(local)),
		 (unsigned long long)lg->bytes_in,
		 (unsigned long long)lg->bytes_out,
		 (long long)((loop_now(c->set->loop) - lg->opened) / 1000),
		 metrics_close_name(c->why - 1u));
}

/* Frees c once nothing can reach it: no op in flight, no hook running. */
static void conn_release(struct conn *c)
{
	struct conn_set *set = c->set;
	const struct ringd_instance *inst = c->inst;
	struct metrics_stream *ctr = conn_ctr(c);
	struct sockaddr_in6 peer;

	if (!(c->flags & C_DEAD) || (c->flags & (C_READING | C_SENDING | C_IN_CB)))
		return;
	conn_why(c, RINGD_CLOSE_PEER);
	conn_call_close(c);
	if (ctr != NULL)
		metrics_add(&ctr->closed[c->why - 1], 1);
	if (c->flags & C_RESET) {
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };

		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	conn_debug(c, "close rst=%s", c->flags & C_RESET ? "yes" : "no");
	conn_log_close(c);
	loop_timer_stop(set->loop, &c->timer);
	loop_close(set->loop, c->fd);
	conn_unlink(c);
	conn_free_queue(c);
	peer = c->peer.in6;
	free(c);
	set->gone(set->gone_arg, inst, (const struct sockaddr *)&peer);
}

/* Begin the end: cancel what is in flight; conn_release frees later. */
static void conn_kill(struct conn *c)
{
	struct loop *l = c->set->loop;

	if (c->flags & C_DEAD)
		return;
	c->flags |= C_DEAD;
	loop_timer_stop(l, &c->timer);
	if (c->flags & C_READING)
		loop_cancel(l, &c->rop);
	if (c->flags & C_SENDING)
		loop_cancel(l, &c->sop);
}

static void conn_call_data(struct conn *c, const void *buf, size_t len)
{
	const struct ringd_plugin *p = conn_plugin(c);

	if (!PLUGIN_HAS(p, on_data))
		return;
	c->flags |= C_IN_CB | C_FED;
	p->on_data(&c->pub, buf, len);
	conn_hook_done(c);
}

static void conn_peer_eof(struct conn *c)
{
	const struct ringd_plugin *p = conn_plugin(c);

	c->flags |= C_EOF;
	conn_why(c, RINGD_CLOSE_PEER);
	if (c->flags & C_SHUT) {
		conn_kill(c);
	} else if (c->flags & C_CLOSING) {
		if (!c->head)
			conn_finish(c);
	} else if (PLUGIN_HAS(p, on_eof)) {
		c->flags |= C_IN_CB;
		p->on_eof(&c->pub);
		conn_hook_done(c);
	} else {
		conn_close(&c->pub);
	}
}

/* Which line the set's memory is past: 0 none, 1 the budget (those
 * holding output stop reading), 2 the slack beyond it (all stop). */
static int conn_budget_line(const struct conn_set *set)
{
	if (!set->budget || set->held < set->budget)
		return 0;
	return set->held >= set->budget + set->slack ? 2 : 1;
}

static bool conn_over_budget(const struct conn *c)
{
	int line = conn_budget_line(c->set);

	return line == 2 || (line == 1 && c->head);
}

static void conn_budget_wait(struct conn *c)
{
	struct conn_set *set = c->set;

	if (c->flags & C_BUDGET)
		return;
	c->flags |= C_BUDGET;
	c->bprev = set->budget_wait_tail;
	c->bnext = NULL;
	if (set->budget_wait_tail)
		set->budget_wait_tail->bnext = c;
	else
		set->budget_wait = c;
	set->budget_wait_tail = c;
	metrics_add(&set->stats.budget_pauses, 1);
}

/* Takes effect at once: after the cancel the loop delivers nothing (it
 * parks what the kernel still hands over for the next loop_recv()), and
 * the recv's final completion comes later. */
static void conn_pause(struct conn *c)
{
	if (!(c->flags & C_READING) || (c->flags & (C_PAUSED | C_DEAD | C_SHUT)))
		return;
	c->flags |= C_PAUSED;
	loop_cancel(c->set->loop, &c->rop);
}

/* Stopping each connection only after its next read would let every one
 * of them add a buffer past the budget, so when the set's memory crosses
 * a line, every connection the line stops is stopped at once: at the
 * budget those holding output, past the slack all of them. Once per
 * crossing; the level falls back when the set drops below its low line
 * (conn_seg_done()). */
static void conn_budget_cross(struct conn_set *set)
{
	int level = conn_budget_line(set);
	struct conn *c;

	if (level <= set->budget_level)
		return;
	set->budget_level = level;
	for (c = set->head; c; c = c->next) {
		if (!(c->flags & C_READING) ||
		    (c->flags & (C_PAUSED | C_DEAD | C_SHUT)) ||
		    (level == 1 && !c->head))
			continue;
		conn_budget_wait(c);
		conn_pause(c);
	}
}

static bool conn_may_read(const struct conn *c)
{
	return c->queued < CONN_LOW_WATER &&
	       !(c->flags & (C_BUDGET | C_HELD));
}

/* A paused connection whose recv has ended reads again if nothing holds
 * it back (its own queue, the budget). */
static void conn_unpause(struct conn *c)
{
	if ((c->flags & C_PAUSED) && !(c->flags & C_READING) &&
	    conn_may_read(c))
		conn_read_start(c);
}

/* Each connection let go may turn a buffer of input into output before
 * it is checked again, so only as many go as the room below the budget
 * holds (at least one, or a small budget would never resume). The rest
 * go in later batches: the next freed segment, or the next iteration,
 * whichever comes first, so waiters never depend on output still queued
 * somewhere. */
#define CONN_RESUME_COST 16384

static void conn_budget_resume(struct conn_set *set)
{
	size_t room;
	struct conn *c;

	if (!set->budget_wait || set->held >= conn_budget_low(set))
		return;
	room = set->budget - set->held;
	do {
		c = set->budget_wait;
		conn_budget_unwait(c);
		conn_unpause(c);
		room = room > CONN_RESUME_COST ? room - CONN_RESUME_COST : 0;
	} while (set->budget_wait && room >= CONN_RESUME_COST);
	if (set->budget_wait && !loop_timer_armed(&set->budget_timer))
		loop_timer_set(set->loop, &set->budget_timer,
			       loop_now(set->loop));
}

static void conn_budget_timer_fired(struct loop_timer *t)
{
	conn_budget_resume(t->data);
}

static void conn_recv_done(struct loop_op *op, int res, unsigned flags,
			   void *buf)
{
	struct conn *c = op->data;

	if (!(flags & LOOP_F_MORE))
		c->flags &= ~C_READING;
	if (c->flags & C_DEAD) {
		conn_release(c);
		return;
	}
	if (res > 0) {
		struct metrics_stream *ctr = conn_ctr(c);

		if (ctr != NULL)
			metrics_add(&ctr->bytes_in, (uint64_t)res);
		if (c->flags & C_LOGGED)
			conn_log_of(c)->bytes_in += (uint64_t)res;
		conn_touch(c);
		if (!(c->flags & (C_CLOSING | C_SHUT))) {
			struct conn_set *set = c->set;

			if (flags & LOOP_F_BUFFER) {
				set->in_conn = c;
				set->in_buf = buf;
				set->in_len = (size_t)res;
			}
			conn_call_data(c, buf, (size_t)res);
			set->in_conn = NULL;
		}
		if (c->flags & (C_DRAIN | C_TELL))
			conn_drain_soon(c->set);
		if (c->queued >= CONN_HIGH_WATER) {
			conn_pause(c);
		} else if (!(c->flags & (C_DEAD | C_SHUT)) &&
			   conn_over_budget(c)) {
			conn_budget_wait(c);
			conn_pause(c);
		}
	} else if (res == 0) {
		conn_peer_eof(c);
	} else if (res == -ECANCELED && (c->flags & C_PAUSED)) {
		conn_unpause(c);
	} else {
		char e[LOG_VALUE_MAX];

		/* The arguments are evaluated only at log_level = debug. */
		conn_debug(c, "recv failed error=%s",
			   log_value(e, sizeof(e), strerror(-res)));
		conn_why(c, RINGD_CLOSE_RESET);
		c->flags |= C_EOF;
		conn_kill(c);
	}
	conn_release(c);
}

/* Segments leave the queue as soon as they are sent so the cache gets
 * them back while they are still warm. */
static void conn_consume(struct conn *c, size_t n)
{
	struct outseg *s = c->head;

	s->ptr += n;
	s->len -= n;
	c->queued -= n;
	if (s->len == 0) {
		c->head = s->next;
		if (!c->head)
			c->tail = NULL;
		conn_seg_done(c, s);
	}
}

/* A connection stopped by the budget whose own output is all sent takes
 * input again while the slack lasts: its client reads, so serving it
 * costs the set little. */
static void conn_drained(struct conn *c)
{
	const struct ringd_plugin *p = conn_plugin(c);
	struct conn_set *set = c->set;

	if (c->queued >= CONN_LOW_WATER)
		return;
	if ((c->flags & C_BUDGET) && !c->head &&
	    set->held < set->budget + set->slack / 2)
		conn_budget_unwait(c);
	conn_unpause(c);
	if (!(c->flags & (C_CLOSING | C_DEAD)) && PLUGIN_HAS(p, on_writable)) {
		c->flags |= C_IN_CB;
		p->on_writable(&c->pub);
		conn_hook_done(c);
	}
}

static void conn_send_done(struct loop_op *op, int res, unsigned flags,
			   void *buf)
{
	struct conn *c = op->data;
	struct metrics_stream *ctr;

	c->flags &= ~C_SENDING;
	if (c->flags & C_DEAD) {
		conn_release(c);
		return;
	}
	if (res < 0) {
		char e[LOG_VALUE_MAX];

		conn_debug(c, "send failed error=%s",
			   log_value(e, sizeof(e), strerror(-res)));
		conn_why(c, RINGD_CLOSE_RESET);
		c->flags |= C_EOF;
		conn_kill(c);
		conn_release(c);
		return;
	}
	ctr = conn_ctr(c);
	if (ctr != NULL)
		metrics_add(&ctr->bytes_out, (uint64_t)res);
	if (c->flags & C_LOGGED)
		conn_log_of(c)->bytes_out += (uint64_t)res;
	conn_consume(c, (size_t)res);
	conn_touch(c);
	conn_drained(c);
	if (c->head)
		conn_flush(c);
	else if (c->flags & C_CLOSING)
		conn_finish(c);
	conn_release(c);
}

static struct outseg *conn_new_seg(struct conn_set *set, size_t need,
				   bool big)
{
	size_t k = big;
	size_t cap = need > outseg_class[k] ? need : outseg_class[k];
	struct outseg *s = set->free_segs[k];

	if (s && cap == outseg_class[k]) {
		set->free_segs[k] = s->next;
		set->nfree_segs[k]--;
	} else {
		s = malloc(sizeof(*s) + cap);
		if (!s)
			return NULL;
	}
	s->next = NULL;
	s->ptr = s->data;
	s->len = 0;
	s->cap = cap;
	s->kept = NULL;
	s->kept_size = 0;
	return s;
}

/* A reference segment for len bytes at ptr. */
static struct outseg *conn_new_ref(struct conn_set *set, const void *ptr,
				   size_t len)
{
	struct outseg *s = set->free_refs;

	if (s) {
		set->free_refs = s->next;
		set->nfree_refs--;
	} else {
		s = malloc(sizeof(*s));
		if (!s)
			return NULL;
	}
	*s = (struct outseg){ .ptr = ptr, .len = len };
	return s;
}

static void conn_append(struct conn *c, struct outseg *s)
{
	c->set->held += conn_seg_mem(s);
	if (c->set->budget)
		conn_budget_cross(c->set);
	if (c->tail)
		c->tail->next = s;
	else
		c->head = s;
	c->tail = s;
}

/* Room at the end of the tail segment; the bytes a send in flight covers
 * are never moved, only appended to. */
static size_t conn_tail_room(const struct conn *c)
{
	const struct outseg *s = c->tail;

	if (!s || !s->cap)
		return 0;
	return (size_t)(s->data + s->cap - (s->ptr + s->len));
}

int conn_send(struct ringd_conn *pc, const void *buf, size_t len, int copy)
{
	struct conn *c = conn_of(pc);
	struct outseg *s;
	size_t room;

	if (c->flags & (C_DEAD | C_CLOSING))
		return -EPIPE;
	if (!len)
		return 0;
	/* A small reference behind copied bytes is copied too: one more
	 * memcpy of a few KiB is cheaper than a send of its own (a
	 * response's header and body then leave together). */
	if (!copy && len <= CONN_REF_COPY_MAX && conn_tail_room(c) >= len)
		copy = 1;
	if (!copy) {
		s = conn_new_ref(c->set, buf, len);
		if (!s)
			return -ENOMEM;
		conn_append(c, s);
	} else {
		room = conn_tail_room(c);
		if (room < len) {
			/* Big only when a large reply is piling up: small
			 * pipelined replies keep small segments. */
			bool big = (c->flags & (C_SENDING | C_IN_CB)) &&
				   c->queued + len > outseg_class[0];

			s = conn_new_seg(c->set, len, big);
			if (!s)
				return -ENOMEM;
			conn_append(c, s);
		}
		s = c->tail;
		memcpy((char *)s->ptr + s->len, buf, len);
		s->len += len;
	}
	c->queued += len;
	if (!(c->flags & C_IN_CB))
		conn_flush(c);
	return 0;
}

/* Keeps the loop's buffer only where that saves a copy and cannot
 * reorder or pile up output: bytes of the input being delivered, behind
 * nothing queued. Anything else is send(). */
int conn_send_input(struct ringd_conn *pc, const void *buf, size_t len)
{
	struct conn *c = conn_of(pc);
	struct conn_set *set = c->set;
	const char *p = buf;
	struct outseg *s;
	int size;

	if (set->in_conn != c || c->head || len < CONN_KEEP_MIN ||
	    p < set->in_buf || len > set->in_len ||
	    p - set->in_buf > (ptrdiff_t)(set->in_len - len) ||
	    (c->flags & (C_DEAD | C_CLOSING)))
		return conn_send(pc, buf, len, 1);
	size = loop_buf_keep(set->loop, set->in_buf);
	if (size < 0)
		return conn_send(pc, buf, len, 1);
	s = conn_new_ref(set, p, len);
	if (!s) {
		loop_buf_release(set->loop, set->in_buf);
		return conn_send(pc, buf, len, 1);
	}
	s->kept = set->in_buf;
	s->kept_size = (size_t)size;
	set->in_conn = NULL; /* kept once */
	conn_append(c, s);
	c->queued += len;
	if (!(c->flags & C_IN_CB))
		conn_flush(c);
	return 0;
}

void conn_close(struct ringd_conn *pc)
{
	struct conn *c = conn_of(pc);

	if (c->flags & (C_CLOSING | C_DEAD))
		return;
	conn_why(c, RINGD_CLOSE_SERVICE);
	c->flags |= C_CLOSING;
	if (!c->head)
		conn_finish(c);
}

void conn_close_no_linger(struct ringd_conn *pc)
{
	struct conn *c = conn_of(pc);

	if (!(c->flags & (C_CLOSING | C_DEAD)))
		c->flags |= C_NOLINGER;
	conn_close(pc);
}

void conn_abort(struct ringd_conn *pc)
{
	struct conn *c = conn_of(pc);

	/* Already going (an abort from on_close, say): it closes as it
	 * was going to. */
	if (c->flags & C_DEAD)
		return;
	conn_why(c, RINGD_CLOSE_SERVICE);
	c->flags |= C_RESET;
	conn_kill(c);
	conn_release(c);
}

size_t conn_queued(const struct ringd_conn *pc)
{
	return conn_of(pc)->queued;
}

int64_t conn_loop_time(const struct ringd_conn *pc)
{
	return loop_now(conn_of(pc)->set->loop);
}

void conn_set_timeout(struct ringd_conn *pc, int64_t ms)
{
	struct conn *c = conn_of(pc);

	if (c->flags & (C_DEAD | C_SHUT))
		return;
	c->deadline = ms > 0 ? loop_now(c->set->loop) + ms * 1000000 : 0;
	conn_arm_timer(c);
}

static void conn_setup_socket(struct conn *c, const struct sockaddr *peer,
			      socklen_t len)
{
	if (len > sizeof(c->peer) || !peer ||
	    (peer->sa_family != AF_INET && peer->sa_family != AF_INET6))
		len = 0;
	if (len)
		memcpy(&c->peer, peer, len);
	else
		c->peer.sa.sa_family = AF_UNSPEC;
	c->transport = len ? METRICS_TCP : METRICS_UNIX;
	c->pub.peer = &c->peer.sa;
	c->pub.peerlen = len;
}

static void conn_link(struct conn *c)
{
	struct conn_set *set = c->set;

	c->next = set->head;
	if (set->head)
		set->head->prev = c;
	set->head = c;
	set->n++;
}

int conn_open(struct conn_set *set, const struct ringd_instance *inst, int fd,
	      const struct sockaddr *peer, socklen_t peerlen)
{
	const struct ringd_plugin *p = inst->p;
	bool logged = inst->sc->log_connections;
	struct conn *c = calloc(1, sizeof(*c) +
				       (logged ? sizeof(struct conn_log) : 0));
	struct metrics_stream *ctr;

	if (!c) {
		uint64_t held;

		if (log_limit_take(&set->oom_log, loop_now(set->loop),
				   CONN_OOM_LOG_NS, &held))
			log_warnx("conn: out of memory svc=%s suppressed=%llu",
				  inst->sc->name, (unsigned long long)held);
		close(fd);
		return -ENOMEM;
	}
	c->set = set;
	c->inst = inst;
	c->fd = fd;
	c->rop = (struct loop_op){ .cb = conn_recv_done, .data = c };
	c->sop = (struct loop_op){ .cb = conn_send_done, .data = c };
	c->timer = (struct loop_timer){ .cb = conn_timer_fired, .data = c };
	c->pub.wstate = set->wstate[inst->idx];
	conn_setup_socket(c, peer, peerlen);
	conn_link(c);
	c->last_active = loop_now(set->loop);
	if (logged) {
		c->flags |= C_LOGGED;
		conn_log_of(c)->opened = c->last_active;
	}
	conn_arm_timer(c);
	if (set->draining && !PLUGIN_HAS(p, on_drain)) {
		c->flags |= C_DRAIN;
		conn_drain_soon(set);
	}

	conn_debug(c, "open");
	ctr = conn_ctr(c);
	if (ctr != NULL)
		metrics_add(&ctr->accepted, 1);
	c->flags |= C_IN_CB;
	if (PLUGIN_HAS(p, on_open) && p->on_open(&c->pub) < 0) {
		conn_why(c, RINGD_CLOSE_SERVICE);
		conn_kill(c);
	} else {
		c->flags |= C_OPEN;
	}
	if ((c->flags & C_OPEN) && set->draining)
		conn_tell_drain(c);
	else if ((c->flags & C_OPEN) && set->retiring &&
		 PLUGIN_HAS(p, on_drain))
		c->flags |= C_TELL;
	conn_hook_done(c);
	conn_read_start(c);
	conn_release(c);
	return 0;
}

/* A plugin that ends its connections itself hears of the stop once per
 * connection; c may be gone when this returns unless the caller holds
 * C_IN_CB. */
static void conn_tell_drain(struct conn *c)
{
	unsigned in_cb = c->flags & C_IN_CB;

	if ((c->flags & (C_TOLD | C_CLOSING | C_DEAD)) || !(c->flags & C_OPEN) ||
	    !PLUGIN_HAS(conn_plugin(c), on_drain))
		return;
	c->flags |= C_TOLD | C_IN_CB;
	conn_plugin(c)->on_drain(&c->pub);
	if (in_cb)
		return;
	conn_hook_done(c);
	conn_release(c);
}

/* Input the peer sent that has not reached the plugin yet: in the
 * kernel, or parked by the loop after a pause. */
static size_t conn_unread(const struct conn *c)
{
	int n = 0;

	if (ioctl(c->fd, SIOCINQ, &n) < 0)
		n = 0;
	return (size_t)n + loop_recv_parked(&c->rop);
}

/* A draining connection closes once everything the peer had sent before
 * the stop has reached the plugin. Checked after a whole batch of
 * completions, since data the kernel already handed to a completion no
 * longer counts as unread. */
static void conn_drain_check(struct loop_timer *t)
{
	struct conn_set *set = t->data;
	struct conn *c, *next;

	for (c = set->head; c; c = next) {
		next = c->next;
		if (!(c->flags & (C_DRAIN | C_TELL)) ||
		    (c->flags & (C_PAUSED | C_DEAD)))
			continue;
		if (conn_unread(c) > 0)
			continue;
		if (c->flags & C_TELL) {
			/* Told after its first request (conn_retire_all()). */
			if (c->flags & C_FED) {
				c->flags &= ~C_TELL;
				conn_tell_drain(c);
			}
			continue;
		}
		c->flags &= ~C_DRAIN;
		c->flags |= C_IN_CB; /* keep c alive while we look at it */
		conn_why(c, RINGD_CLOSE_STOP);
		conn_close(&c->pub);
		c->flags &= ~C_IN_CB;
		conn_release(c);
	}
}

static void conn_drain_soon(struct conn_set *set)
{
	if (!loop_timer_armed(&set->drain_timer))
		loop_timer_set(set->loop, &set->drain_timer,
			       loop_now(set->loop));
}

void conn_shutdown_all(struct conn_set *set)
{
	struct conn *c;

	struct conn *next;

	set->draining = true;
	for (c = set->head; c; c = next) {
		next = c->next;
		if (c->flags & (C_CLOSING | C_DEAD))
			continue;
		if (PLUGIN_HAS(conn_plugin(c), on_drain))
			conn_tell_drain(c);
		else
			c->flags |= C_DRAIN;
	}
	conn_drain_soon(set);
}

/* A request the peer has already sent must reach the plugin before it
 * hears of the drain, and a connection that has sent nothing yet is
 * told after its first request: told first, the HTTP responder would
 * take the connection for idle and close it under that request. */
void conn_retire_all(struct conn_set *set)
{
	set->retiring = true;
	for (struct conn *c = set->head; c; c = c->next)
		if ((c->flags & C_OPEN) && !(c->flags & (C_CLOSING | C_DEAD)) &&
		    PLUGIN_HAS(conn_plugin(c), on_drain))
			c->flags |= C_TELL;
	conn_drain_soon(set);
}

void conn_abort_all(struct conn_set *set)
{
	struct conn *c, *next;

	for (c = set->head; c; c = next) {
		next = c->next;
		conn_why(c, RINGD_CLOSE_STOP);
		conn_abort(&c->pub);
	}
}

/* A held connection stops reading like one over its high water: the
 * recv is cancelled and the loop keeps whatever it had already read until
 * the next recv (loop.h), so nothing reaches the plugin meanwhile. */
void conn_hold_input(struct ringd_conn *pc, bool hold)
{
	struct conn *c = conn_of(pc);

	if (c->flags & C_DEAD)
		return;
	if (hold) {
		c->flags |= C_HELD;
		conn_pause(c);
		return;
	}
	if (!(c->flags & C_HELD))
		return;
	c->flags &= ~C_HELD;
	conn_unpause(c);
}

enum ringd_close_reason conn_close_reason(const struct ringd_conn *pc)
{
	const struct conn *c = conn_of(pc);

	return c->why ? (enum ringd_close_reason)(c->why - 1) :
			RINGD_CLOSE_PEER;
}

void conn_count(struct ringd_conn *pc, unsigned idx, uint64_t n)
{
	struct conn *c = conn_of(pc);
	struct metrics_block *m = c->set->metrics;

	if (m == NULL || c->inst->idx >= m->nsvc ||
	    idx >= c->inst->ncounters)
		return;
	metrics_add(&m->svc[c->inst->idx].own[idx], n);
}
