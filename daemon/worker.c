/* Worker threads: each builds its own loop, starts its own plugin
 * instances, accepts on the listeners, and drains itself on stop. Nothing
 * here is shared between workers except the read-only daemon context, its
 * connection counter, and (with reuseport = no) the listening sockets,
 * where the stop's filter and shutdown are idempotent. */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "accept.h"
#include "conn.h"
#include "daemon.h"
#include "dgram.h"
#include "host.h"
#include "listen.h"
#include "log.h"
#include "worker.h"

static void worker_check_done(struct worker *w)
{
	size_t i;

	if (w->stopping && !w->quiet && accept_quiet(w->acc)) {
		w->quiet = true;
		atomic_fetch_add(&w->d->nquiet, 1);
	}
	if (!w->stopping || conn_set_count(&w->conns) || !accept_idle(w->acc))
		return;
	for (i = 0; i < w->ndg; i++)
		if (!dgram_idle(w->dg[i]))
			return;
	loop_stop(w->loop);
}

static void worker_done_cb(void *arg)
{
	worker_check_done(arg);
}

/* conns' "a connection went away": admission gets its slot back. */
static void worker_conn_gone(void *arg, const struct ringd_instance *inst,
			     const struct sockaddr *peer)
{
	struct worker *w = arg;

	accept_conn_gone(w->acc, inst, peer);
	worker_check_done(w);
}

static void worker_cut(struct worker *w, const char *why)
{
	w->cut = true;
	loop_timer_stop(w->loop, &w->stop_timer);
	log_notice("worker: %s, closing %zu connections worker=%zu", why,
		   conn_set_count(&w->conns), w->id);
	conn_abort_all(&w->conns);
	worker_check_done(w);
}

static void worker_stop_timer_fired(struct loop_timer *t)
{
	worker_cut(t->data, "shutdown_timeout reached");
}

static void worker_begin_stop(struct worker *w)
{
	int64_t timeout = w->d->conf->shutdown_timeout_ms * 1000000;
	size_t i;

	w->stopping = true;
	/* The grace ends before shutdown_timeout, whose aborts must find
	 * every connection the grace took. */
	accept_quiesce(w->acc, timeout / 2 < ACCEPT_STOP_GRACE_NS ?
				       timeout / 2 :
				       ACCEPT_STOP_GRACE_NS);
	for (i = 0; i < w->ndg; i++)
		dgram_close(w->dg[i]);
	w->stop_timer = (struct loop_timer){ .cb = worker_stop_timer_fired,
					     .data = w };
	loop_timer_set(w->loop, &w->stop_timer, loop_now(w->loop) + timeout);
	w->retired = atomic_load(&w->d->retiring);
	if (w->retired)
		conn_retire_all(&w->conns);
	else
		conn_shutdown_all(&w->conns);
	worker_check_done(w);
}

static void worker_woken(struct loop *l, void *arg)
{
	struct worker *w = arg;

	if (!w->stopping && atomic_load(&w->d->stopping)) {
		worker_begin_stop(w);
	} else if (w->retired && !atomic_load(&w->d->retiring)) {
		/* A stop signal while this generation was retiring: what the
		 * reload let run now drains like any stop. */
		w->retired = false;
		conn_shutdown_all(&w->conns);
		worker_check_done(w);
	}
	if (w->stopping && !w->cut && atomic_load(&w->d->stop_now))
		worker_cut(w, "second stop signal");
}

static int worker_start_plugins(struct worker *w)
{
	struct daemon *d = w->d;
	size_t i;

	w->wstate = calloc(d->conf->nsvc + 1, sizeof(*w->wstate));
	if (!w->wstate)
		return -ENOMEM;
	for (i = 0; i < d->conf->nsvc; i++) {
		const struct ringd_instance *inst = &d->svc[i];

		if (!PLUGIN_HAS(inst->p, start))
			continue;
		w->wstate[i] = inst->p->start(&host_api, inst, inst->sc->pconf);
		if (!w->wstate[i]) {
			log_err("worker: plugin failed to start svc=%s "
				"plugin=%s worker=%zu", inst->sc->name,
				inst->p->name, w->id);
			return -EINVAL;
		}
	}
	return 0;
}

static void worker_stop_plugins(struct worker *w)
{
	struct daemon *d = w->d;
	size_t i;

	for (i = 0; w->wstate && i < d->conf->nsvc; i++)
		if (w->wstate[i] && PLUGIN_HAS(d->svc[i].p, stop))
			d->svc[i].p->stop(w->wstate[i]);
	free(w->wstate);
	w->wstate = NULL;
}

/* The output budget is the daemon's, split evenly: workers share
 * nothing on the hot path, and reuseport spreads connections evenly. */
static size_t worker_budget(const struct worker *w)
{
	return (size_t)(w->d->conf->max_buffered / (int64_t)w->d->nworkers);
}

static int worker_open_dgram(struct worker *w, const struct listener *l)
{
	const struct ringd_instance *inst = &w->d->svc[l->svc];

	if (!w->udp_guard)
		w->udp_guard = dgram_guard_new(w->d->conf);
	if (!w->udp_guard)
		return -ENOMEM;
	w->dg[w->ndg] = dgram_open(w->loop, w->udp_guard, inst,
				   w->wstate[inst->idx], l->fds[0],
				   worker_done_cb, w);
	if (w->dg[w->ndg])
		dgram_set_metrics(w->dg[w->ndg], &w->metrics.svc[inst->idx].dgram);
	if (!w->dg[w->ndg])
		return -ENOMEM;
	w->ndg++;
	return 0;
}

/* Stream listeners go to every worker; datagram sockets to worker 0. */
static int worker_open_listeners(struct worker *w)
{
	struct daemon *d = w->d;
	size_t i;
	int r;

	conn_set_init(&w->conns, w->loop, w->wstate, worker_budget(w),
		      worker_conn_gone, w);
	w->conns.metrics = &w->metrics;
	w->acc = accept_new(d, w->id, w->loop, &w->conns, worker_done_cb, w);
	w->dg = calloc(d->nlisteners + 1, sizeof(*w->dg));
	if (!w->acc || !w->dg)
		return -ENOMEM;
	for (i = 0; i < d->nlisteners; i++) {
		const struct listener *l = &d->listeners[i];

		if (l->addr.kind != LISTEN_UDP)
			r = accept_add(w->acc, l);
		else if (w->id == 0)
			r = worker_open_dgram(w, l);
		else
			r = 0;
		if (r < 0)
			return r;
	}
	return 0;
}

/* The receive pool is memory the budget does not see, and on io_uring
 * it also holds what a receive takes after its cancel (parked until the
 * connection reads again, see loop_cancel()): keep it
 * within a quarter of the worker's share of max_buffered, from 32 to 256
 * buffers. */
#define WORKER_POOL_BUF 16384u
#define WORKER_POOL_MIN 32u
#define WORKER_POOL_MAX 256u

static unsigned worker_pool_bufs(size_t budget)
{
	unsigned n = WORKER_POOL_MAX;

	while (n > WORKER_POOL_MIN && (size_t)n * WORKER_POOL_BUF > budget / 4)
		n /= 2;
	return n;
}

/* With backend = auto main's probe already chose io_uring, but a worker
 * whose own ring fails (a memory limit reached by the n-th ring, say)
 * still falls back rather than failing the start. */
static int worker_new_loop(struct worker *w)
{
	struct daemon *d = w->d;
	struct loop_params lp = { .backend = d->backend,
				  .nbufs = worker_pool_bufs(worker_budget(w)),
				  .buf_size = WORKER_POOL_BUF };
	int r;

	if (d->conf->backend == CONF_BACKEND_AUTO)
		lp.backend = LOOP_BACKEND_AUTO;
	r = loop_new(&w->loop, &lp);
	if (r < 0) {
		char e[LOG_VALUE_MAX];

		log_err("worker: loop failed to start backend=%s error=%s "
			"worker=%zu",
			d->backend == LOOP_BACKEND_IO_URING ? "io_uring" :
							      "epoll",
			log_value(e, sizeof(e), strerror(-r)), w->id);
		w->loop = NULL;
		return r;
	}
	if (d->backend == LOOP_BACKEND_IO_URING &&
	    strcmp(loop_backend_name(w->loop), "io_uring") != 0)
		log_notice("loop: io_uring ring failed in this worker; using "
			   "epoll worker=%zu", w->id);
	return 0;
}

static int worker_setup(struct worker *w)
{
	int r = worker_new_loop(w);

	if (r < 0)
		return r;
	loop_set_wake(w->loop, worker_woken, w);
	supervise_beat_start(&w->beat, w->loop, w->d->sup.beat_ns);
	r = worker_start_plugins(w);
	if (r < 0)
		return r;
	return worker_open_listeners(w);
}

static void worker_teardown(struct worker *w)
{
	size_t i;

	for (i = 0; i < w->ndg; i++)
		dgram_free(w->dg[i]);
	free(w->dg);
	w->dg = NULL;
	w->ndg = 0;
	accept_free(w->acc);
	w->acc = NULL;
	dgram_guard_free(w->udp_guard);
	w->udp_guard = NULL;
	worker_stop_plugins(w);
	conn_set_fini(&w->conns);
	supervise_beat_stop(&w->beat);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	int r;

	w->start_err = worker_setup(w);
	sem_post(w->started);
	if (w->start_err) {
		worker_teardown(w);
		return NULL;
	}
	r = loop_run(w->loop);
	if (r < 0) {
		/* Its connections can no longer complete, so they are left
		 * to the exit; main is told to stop the whole daemon rather
		 * than run on with a dead worker. */
		char e[LOG_VALUE_MAX];

		log_err("worker: loop failed; stopping the daemon error=%s "
			"worker=%zu", log_value(e, sizeof(e), strerror(-r)),
			w->id);
		atomic_store(&w->d->failed, 1);
		kill(getpid(), SIGTERM);
		return NULL;
	}
	worker_teardown(w);
	return NULL;
}

static void worker_free_blocks(struct daemon *d)
{
	for (size_t i = 0; i < d->nworkers; i++)
		metrics_block_free(&d->workers[i].metrics);
	free(d->workers);
	d->workers = NULL;
}

int worker_start_all(struct daemon *d)
{
	sem_t started;
	size_t i, n = 0;
	int failed = 0, r;

	d->workers = calloc(d->nworkers, sizeof(*d->workers));
	if (!d->workers || sem_init(&started, 0, 0) < 0)
		return -1;
	/* Every block exists before any thread runs: a scrape on one
	 * worker reads them all. */
	for (i = 0; i < d->nworkers; i++) {
		d->workers[i] = (struct worker){ .d = d, .id = i,
						 .started = &started };
		if (metrics_block_init(&d->workers[i].metrics, d) < 0) {
			log_err("worker: out of memory workers=%zu",
				d->nworkers);
			sem_destroy(&started);
			worker_free_blocks(d);
			return -1;
		}
	}
	for (i = 0; i < d->nworkers; i++) {
		struct worker *w = &d->workers[i];

		r = pthread_create(&w->tid, NULL, worker_main, w);
		if (r != 0) {
			char e[LOG_VALUE_MAX];

			log_err("worker: cannot create thread error=%s "
				"worker=%zu",
				log_value(e, sizeof(e), strerror(r)), i);
			failed = 1;
			break;
		}
		n++;
	}
	for (i = 0; i < n; i++)
		sem_wait(&started);
	sem_destroy(&started);
	for (i = 0; i < n; i++)
		failed |= d->workers[i].start_err != 0;
	for (i = n; i < d->nworkers; i++)
		metrics_block_free(&d->workers[i].metrics);
	d->nworkers = n;
	if (failed) {
		atomic_store(&d->state, RINGD_DRAINING);
		atomic_store(&d->stopping, 1);
		worker_stop_all(d);
		return -1;
	}
	return 0;
}

void worker_wake_all(struct daemon *d)
{
	for (size_t i = 0; i < d->nworkers; i++) {
		struct worker *w = &d->workers[i];

		/* A worker that failed to start has already returned. */
		if (!w->start_err)
			loop_wake(w->loop);
	}
}

/* Freed here, not by the thread, so main never wakes a loop that is
 * gone. */
static void worker_free_one(struct worker *w)
{
	if (w->loop)
		loop_free(w->loop);
	w->loop = NULL;
	metrics_block_free(&w->metrics);
}

bool worker_try_join_all(struct daemon *d)
{
	for (size_t i = 0; i < d->nworkers; i++) {
		struct worker *w = &d->workers[i];

		if (w->joined)
			continue;
		if (pthread_tryjoin_np(w->tid, NULL) != 0)
			return false;
		w->joined = true;
	}
	return true;
}

void worker_free_all(struct daemon *d)
{
	for (size_t i = 0; i < d->nworkers; i++)
		worker_free_one(&d->workers[i]);
	free(d->workers);
	d->workers = NULL;
	d->nworkers = 0;
}

void worker_stop_all(struct daemon *d)
{
	size_t i;

	worker_wake_all(d);
	for (i = 0; i < d->nworkers; i++) {
		if (!d->workers[i].joined)
			pthread_join(d->workers[i].tid, NULL);
		d->workers[i].joined = true;
	}
	worker_free_all(d);
}
