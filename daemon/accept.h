/* Admission for one worker: its listening sockets, the checks a new
 * connection passes before any plugin sees it (max_connections, and the
 * access controls), the holding queue for connections a multishot accept
 * took past the limit, pause and resume at EMFILE and at the limit, and
 * the stop's quiesce and grace. This module alone raises and lowers the
 * daemon's connection count; connections themselves are conn.c's. */
#ifndef RINGD_ACCEPT_H
#define RINGD_ACCEPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct accept_set;
struct conn_set;
struct daemon;
struct listener;
struct loop;
struct ringd_instance;

/* After EMFILE or max_connections, retry accepting this often at most
 * (sooner when one of our connections closes): no busy loop on a limit. */
#define ACCEPT_RETRY_NS (1000LL * 1000000)
/* Connections held unserved at max_connections; beyond, they close. */
#define ACCEPT_MAX_WAITING 64
/* How long a stopping TCP listener keeps taking the handshakes that were
 * under way when it began dropping new SYNs: a few round trips on most
 * networks, and well under the 1 s after which a dropped client sends its
 * SYN again and should find the listener gone and be refused. */
#define ACCEPT_STOP_GRACE_NS (250LL * 1000000)

/* Why a TCP connection was closed at accept, before any plugin saw it. */
enum accept_refusal {
	ACCEPT_REFUSED_DENY,        /* its address is in deny */
	ACCEPT_REFUSED_NOT_ALLOWED, /* allow is set and does not have it */
	ACCEPT_REFUSED_PER_SOURCE,  /* its source is at
				       max_connections_per_source */
	ACCEPT_REFUSED_LIMIT,       /* max_connections reached and the
				       holding queue full */
	ACCEPT_REFUSED_EMFILE,      /* accept failed for want of fds or
				       memory (counted per failure; the
				       client stays in the backlog) */
	ACCEPT_REFUSED_N,
};

/* allow and deny applied to sa, the same for TCP and UDP: -1 when it is
 * admitted, else ACCEPT_REFUSED_DENY or ACCEPT_REFUSED_NOT_ALLOWED. deny
 * wins; an empty allow admits everyone. */
struct service_conf;
int accept_access(const struct service_conf *sc, const struct sockaddr *sa);

/* Refusals are counted in the metrics block of the set's conn_set
 * (struct metrics_stream.refused, by enum accept_refusal). */

/* Refusal lines: at most one per worker per interval, with the counts
 * since the last one and the last refused peer. */
#define ACCEPT_REFUSAL_LOG_NS (10LL * 1000000000)

/* Called during a stop when the last accept in flight has ended (see
 * accept_quiet()) and again when the grace is over (accept_idle()), so
 * the owner may look whether to finish; never from inside a call into
 * this module that the owner made. */
typedef void (*accept_idle_fn)(void *arg);

/* Admission for worker number worker of d, opening what it admits in
 * conns (whose gone callback must call accept_conn_gone). NULL when out
 * of memory. */
struct accept_set *accept_new(struct daemon *d, size_t worker, struct loop *l,
			      struct conn_set *conns, accept_idle_fn idle,
			      void *idle_arg);
/* Closes the connections still held; the listeners stay (main's). */
void accept_free(struct accept_set *a);

/* Start accepting on stream listener l (tcp:// or unix:). 0 or -ENOMEM. */
int accept_add(struct accept_set *a, const struct listener *l);

/* A connection this module opened is gone: its slot frees, a held one is
 * served, a paused listener resumes. Safe to re-enter from conn_open(). */
void accept_conn_gone(struct accept_set *a, const struct ringd_instance *inst,
		      const struct sockaddr *peer);

/* First step of a stop: no more accepts from the loop, held connections
 * served even past max_connections, new SYNs dropped, the kernel's queue
 * taken now and again when grace_ns ends; then the listeners are shut
 * down, so later clients are refused. Connections opened from here on
 * join conns, which the owner drains. */
void accept_quiesce(struct accept_set *a, int64_t grace_ns);
/* Nothing in flight and the grace over. */
bool accept_idle(const struct accept_set *a);
/* Stopping and no accept in flight: no new connection comes through
 * here any more (the grace may still take queued ones). */
bool accept_quiet(const struct accept_set *a);

#endif
