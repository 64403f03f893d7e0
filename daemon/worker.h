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

#include "conn.h"
#include "metrics.h"
#include "supervise.h"

struct accept_set;
struct daemon;
struct dgram;
struct dgram_guard;

struct worker {
	struct daemon *d;
	size_t id;
	pthread_t tid;
	struct loop *loop;
	int start_err; /* set before posting started */
	sem_t *started; /* main's: posted once per worker */

	void **wstate; /* per service, from the plugin's start() */
	struct conn_set conns;
	/* Written by this thread only; freed by worker_stop_all() after
	 * every thread ended, since any worker's scrape reads them all. */
	struct metrics_block metrics;
	struct accept_set *acc;
	struct dgram **dg;
	size_t ndg;
	struct dgram_guard *udp_guard; /* worker 0, when it has UDP sockets */

	bool stopping;
	bool retired; /* stopping for a reload: connections run on */
	bool quiet;   /* stopping, and no accept in flight any more */
	bool joined; /* main's: the thread has been joined */
	bool cut;    /* this thread's: stop_now has reset what was left */
	struct loop_timer stop_timer;
	/* Read by main for the watchdog; no timer without one. */
	struct supervise_beat beat;
};

/* Start d->nworkers threads. Returns 0 when all came up, else stops the
 * ones that did and returns -1 (the failing worker logged why). */
int worker_start_all(struct daemon *d);

/* Ask every worker to drain and stop (d->state must already say
 * RINGD_DRAINING); returns when all threads ended. */
void worker_stop_all(struct daemon *d);

/* The same in steps, for main while it goes on handling signals (a
 * generation a reload retires, a stop's drain): wake every loop
 * (d->stopping already set), then join without blocking until every
 * thread has ended (true), then free the loops and counters. */
void worker_wake_all(struct daemon *d);
bool worker_try_join_all(struct daemon *d);
void worker_free_all(struct daemon *d);

#endif
