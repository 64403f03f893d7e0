/* A worker is one thread running one loop and owning its connections;
 * workers share nothing on the hot path. main starts them, each reports
 * whether its loop and plugin instances came up, and stops them by
 * waking their loops. */
#ifndef RINGD_WORKER_H
#define RINGD_WORKER_H

#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stddef.h>

#include "loop.h"

struct daemon;
struct conn;
struct dgram;
struct dgram_guard;
struct wlisten;
struct outseg;
struct worker_waiting;

struct worker {
	struct daemon *d;
	size_t id;
	pthread_t tid;
	struct loop *loop;
	int start_err; /* set before posting started */
	sem_t *started; /* main's: posted once per worker */

	void **wstate; /* per service, from the plugin's start() */
	struct wlisten *wl;
	size_t nwl;
	struct dgram **dg;
	size_t ndg;
	struct dgram_guard *udp_guard; /* worker 0, when it has UDP sockets */

	/* conn.c's cache of output segments, per size class */
	struct outseg *free_segs[2];
	size_t nfree_segs[2];

	/* Accepted while at max_connections (a multishot accept can run
	 * ahead of its cancel): held unserved until a slot frees. */
	struct worker_waiting *waiting;
	size_t nwaiting;

	struct conn *conns; /* doubly linked */
	size_t nconns;
	bool stopping;
	bool closing_listeners; /* stopping, listeners not yet shut down */
	struct loop_timer stop_timer;
	struct loop_timer grace_timer;
	struct loop_timer drain_timer; /* conn.c: graceful stop checks */
};

/* Start d->nworkers threads. Returns 0 when all came up, else stops the
 * ones that did and returns -1 (the failing worker logged why). */
int worker_start_all(struct daemon *d);

/* Ask every worker to drain and stop (d->state must already say
 * RINGD_DRAINING); returns when all threads ended. */
void worker_stop_all(struct daemon *d);

/* Called by conn.c after a connection left w->conns: resumes a paused
 * accept and ends a draining worker whose last connection went. */
void worker_conn_removed(struct worker *w);
/* Called when something a draining worker waits for has finished. */
void worker_check_done(struct worker *w);

#endif
