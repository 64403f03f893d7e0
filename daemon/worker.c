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

#include "conn.h"
#include "daemon.h"
#include "dgram.h"
#include "host.h"
#include "listen.h"
#include "log.h"
#include "worker.h"

/* After EMFILE or max_connections, retry accepting this often at most
 * (sooner when one of our connections closes): no busy loop on a limit. */
#define WORKER_ACCEPT_RETRY_NS (1000LL * 1000000)

/* Connections held unserved at max_connections; beyond, they close. */
#define WORKER_MAX_WAITING 64
/* How long a stopping TCP listener keeps taking the handshakes that were
 * under way when it began dropping new SYNs: a few round trips on most
 * networks, and well under the 1 s after which a dropped client sends its
 * SYN again and should find the listener gone and be refused. */
#define WORKER_STOP_GRACE_NS (250LL * 1000000)

struct worker_waiting {
	int fd;
	const struct ringd_instance *inst;
};

/* Pause lines: at most one per listener per interval, with a count. */
#define WORKER_PAUSE_LOG_NS (10LL * 1000000000)

struct wlisten {
	struct loop_op op;
	struct worker *w;
	const struct ringd_instance *inst;
	const struct listener *l;
	int fd;
	bool armed, paused;
	struct loop_timer retry;
	int64_t last_log;
	unsigned long unlogged; /* pauses since the last line */
};

static void worker_accept_done(struct loop_op *op, int res, unsigned flags,
			       void *buf);

static void worker_pause(struct wlisten *wl, const char *why);

static bool worker_full(const struct worker *w)
{
	return atomic_load_explicit(&w->d->nconns, memory_order_relaxed) >=
	       (long)w->d->conf->max_connections;
}

static void worker_arm(struct wlisten *wl)
{
	/* The state check covers the moment between main shutting the
	 * listeners down and this worker hearing of the stop. */
	if (wl->armed || wl->paused || wl->w->stopping ||
	    daemon_state(wl->w->d) != RINGD_RUNNING)
		return;
	/* At the limit, clients wait in the kernel's backlog instead of
	 * being accepted only to be closed. */
	if (worker_full(wl->w)) {
		worker_pause(wl, "max_connections reached");
		return;
	}
	wl->armed = true;
	loop_accept(wl->w->loop, &wl->op, wl->fd);
}

static void worker_retry_fired(struct loop_timer *t)
{
	struct wlisten *wl = t->data;

	wl->paused = false;
	worker_arm(wl);
}

static void worker_pause(struct wlisten *wl, const char *why)
{
	int64_t now = loop_now(wl->w->loop);
	char text[160];

	if (wl->paused)
		return;
	wl->paused = true;
	if (wl->armed)
		loop_cancel(wl->w->loop, &wl->op);
	loop_timer_set(wl->w->loop, &wl->retry, now + WORKER_ACCEPT_RETRY_NS);
	wl->unlogged++;
	if (wl->last_log && now - wl->last_log < WORKER_PAUSE_LOG_NS)
		return;
	listen_addr_format(&wl->l->addr, text, sizeof(text));
	log_warnx("%s: accept paused on %s: %s pauses=%lu", wl->inst->sc->name,
		  text, why, wl->unlogged);
	wl->last_log = now;
	wl->unlogged = 0;
}

static void worker_resume(struct worker *w)
{
	size_t i;

	for (i = 0; i < w->nwl; i++) {
		if (!w->wl[i].paused)
			continue;
		loop_timer_stop(w->loop, &w->wl[i].retry);
		w->wl[i].paused = false;
		worker_arm(&w->wl[i]);
	}
}

static bool worker_take_slot(struct worker *w)
{
	long max = (long)w->d->conf->max_connections;

	if (atomic_fetch_add_explicit(&w->d->nconns, 1, memory_order_relaxed) <
	    max)
		return true;
	atomic_fetch_sub_explicit(&w->d->nconns, 1, memory_order_relaxed);
	return false;
}

static void worker_hold(struct wlisten *wl, int fd)
{
	struct worker *w = wl->w;

	if (w->nwaiting < WORKER_MAX_WAITING)
		w->waiting[w->nwaiting++] = (struct worker_waiting){
			.fd = fd, .inst = wl->inst };
	else
		close(fd);
	worker_pause(wl, "max_connections reached");
}

/* On a stop, every connection the kernel completed is served, even past
 * max_connections: its client may have sent a request, and closing it
 * would reset it. The listen backlog and the holding queue bound how many
 * there can be. */
static void worker_open_in_flight(struct worker *w,
				  const struct ringd_instance *inst, int fd)
{
	atomic_fetch_add(&w->d->nconns, 1);
	conn_open(w, inst, fd);
}

/* Held connections go first when a slot frees; all of them on a stop. */
static void worker_serve_waiting(struct worker *w, bool force)
{
	size_t i, n = 0;

	while (n < w->nwaiting && (force || worker_take_slot(w))) {
		if (force)
			worker_open_in_flight(w, w->waiting[n].inst,
					      w->waiting[n].fd);
		else
			conn_open(w, w->waiting[n].inst, w->waiting[n].fd);
		n++;
	}
	for (i = n; i < w->nwaiting; i++)
		w->waiting[i - n] = w->waiting[i];
	w->nwaiting -= n;
}

static void worker_accept_done(struct loop_op *op, int res, unsigned flags,
			       void *buf)
{
	struct wlisten *wl = op->data;
	struct worker *w = wl->w;

	if (!(flags & LOOP_F_MORE))
		wl->armed = false;
	if (res >= 0 && w->stopping) {
		/* Accepted as the stop began: in flight, then drained. */
		worker_open_in_flight(w, wl->inst, res);
		conn_shutdown_all(w);
	} else if (res >= 0) {
		if (!worker_take_slot(w)) {
			worker_hold(wl, res);
		} else {
			conn_open(w, wl->inst, res);
			if (worker_full(w))
				worker_pause(wl, "max_connections reached");
		}
	} else if (res == -EMFILE || res == -ENFILE || res == -ENOBUFS ||
		   res == -ENOMEM) {
		worker_pause(wl, strerror(-res));
	} else if (!w->stopping && res != -ECANCELED &&
		   !(flags & LOOP_F_MORE)) {
		/* An error that ended the accept and that the loop does not
		 * call transient could repeat at once: retry on the timer. */
		worker_pause(wl, strerror(-res));
	}
	if (w->stopping)
		worker_check_done(w);
	else
		worker_arm(wl);
}

void worker_check_done(struct worker *w)
{
	size_t i;

	if (!w->stopping || w->nconns || w->closing_listeners)
		return;
	for (i = 0; i < w->nwl; i++)
		if (w->wl[i].armed)
			return;
	for (i = 0; i < w->ndg; i++)
		if (!dgram_idle(w->dg[i]))
			return;
	loop_stop(w->loop);
}

void worker_conn_removed(struct worker *w)
{
	if (w->stopping) {
		worker_check_done(w);
		return;
	}
	worker_serve_waiting(w, false);
	worker_resume(w);
}

static void worker_stop_timer_fired(struct loop_timer *t)
{
	struct worker *w = t->data;

	log_notice("worker: shutdown_timeout reached, closing %zu connections "
		   "worker=%zu", w->nconns, w->id);
	conn_abort_all(w);
	worker_check_done(w);
}

/* Takes everything queued on a stopping listener. */
static void worker_drain_backlog(struct wlisten *wl)
{
	struct worker *w = wl->w;
	int fd;

	for (;;) {
		fd = accept4(wl->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0 && (errno == EINTR || errno == ECONNABORTED))
			continue;
		if (fd < 0)
			break;
		worker_open_in_flight(w, wl->inst, fd);
	}
	/* EINVAL: another worker already shut this shared listener down. */
	if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINVAL)
		log_warn("%s: stop: clients still queued will be reset: accept",
			 wl->inst->sc->name);
}

/* First step of a stop: no more accepts from the loop, new SYNs dropped,
 * what is queued taken now. A TCP client whose SYN came in before the
 * filter may finish its handshake up to a round trip later: the grace
 * timer takes those before the listener is shut down. */
static void worker_quiesce_listener(struct wlisten *wl)
{
	struct worker *w = wl->w;
	int err;

	loop_timer_stop(w->loop, &wl->retry);
	if (wl->armed)
		loop_cancel(w->loop, &wl->op);
	if (wl->l->addr.kind == LISTEN_TCP &&
	    (err = listen_refuse_new(wl->fd)) < 0)
		log_warnx("%s: stop: cannot filter SYNs (%s); a client that "
			  "connects now may be reset", wl->inst->sc->name,
			  strerror(-err));
	worker_drain_backlog(wl);
}

/* End of the grace: take the last handshakes, then stop listening, so
 * later clients are refused at once instead of waiting in a backlog
 * nobody accepts from. The listener may be shared: shutting it down is
 * idempotent. */
static void worker_grace_fired(struct loop_timer *t)
{
	struct worker *w = t->data;
	size_t i;

	for (i = 0; i < w->nwl; i++) {
		worker_drain_backlog(&w->wl[i]);
		shutdown(w->wl[i].fd, SHUT_RDWR);
	}
	w->closing_listeners = false;
	conn_shutdown_all(w);
	worker_check_done(w);
}

static void worker_begin_stop(struct worker *w)
{
	int64_t timeout = w->d->conf->shutdown_timeout_ms * 1000000;
	int64_t now = loop_now(w->loop);
	size_t i;

	w->stopping = true;
	worker_serve_waiting(w, true);
	for (i = 0; i < w->nwl; i++)
		worker_quiesce_listener(&w->wl[i]);
	for (i = 0; i < w->ndg; i++)
		dgram_close(w->dg[i]);
	w->stop_timer = (struct loop_timer){ .cb = worker_stop_timer_fired,
					     .data = w };
	loop_timer_set(w->loop, &w->stop_timer, now + timeout);
	if (w->nwl) {
		w->closing_listeners = true;
		w->grace_timer = (struct loop_timer){ .cb = worker_grace_fired,
						      .data = w };
		/* Before shutdown_timeout, whose aborts must find every
		 * connection the grace took. */
		loop_timer_set(w->loop, &w->grace_timer,
			       now + (timeout / 2 < WORKER_STOP_GRACE_NS ?
					      timeout / 2 :
					      WORKER_STOP_GRACE_NS));
	}
	conn_shutdown_all(w);
	worker_check_done(w);
}

static void worker_woken(struct loop *l, void *arg)
{
	struct worker *w = arg;

	if (!w->stopping && daemon_state(w->d) == RINGD_DRAINING)
		worker_begin_stop(w);
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
			log_err("%s: plugin %s failed to start worker=%zu",
				inst->sc->name, inst->p->name, w->id);
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

/* Stream listeners go to every worker; datagram sockets to worker 0. */
static int worker_open_listeners(struct worker *w)
{
	struct daemon *d = w->d;
	size_t i;

	w->wl = calloc(d->nlisteners + 1, sizeof(*w->wl));
	w->dg = calloc(d->nlisteners + 1, sizeof(*w->dg));
	w->waiting = calloc(WORKER_MAX_WAITING, sizeof(*w->waiting));
	if (!w->wl || !w->dg || !w->waiting)
		return -ENOMEM;
	for (i = 0; i < d->nlisteners; i++) {
		const struct listener *l = &d->listeners[i];
		const struct ringd_instance *inst = &d->svc[l->svc];

		if (l->addr.kind == LISTEN_UDP) {
			if (w->id != 0)
				continue;
			if (!w->udp_guard)
				w->udp_guard = dgram_guard_new(d->conf);
			if (!w->udp_guard)
				return -ENOMEM;
			w->dg[w->ndg] = dgram_open(w, inst, l->fds[0]);
			if (!w->dg[w->ndg])
				return -ENOMEM;
			w->ndg++;
			continue;
		}
		w->wl[w->nwl] = (struct wlisten){
			.op = { .cb = worker_accept_done, .data = &w->wl[w->nwl] },
			.w = w, .inst = inst, .l = l,
			.fd = listen_fd_for(l, w->id),
			.retry = { .cb = worker_retry_fired, .data = &w->wl[w->nwl] },
		};
		worker_arm(&w->wl[w->nwl++]);
	}
	return 0;
}

/* With backend = auto main's probe already chose io_uring, but a worker
 * whose own ring fails (a memory limit reached by the n-th ring, say)
 * still falls back rather than failing the start. */
static int worker_new_loop(struct worker *w)
{
	struct daemon *d = w->d;
	struct loop_params lp = { .backend = d->backend };
	int r;

	if (d->conf->backend == CONF_BACKEND_AUTO)
		lp.backend = LOOP_BACKEND_AUTO;
	r = loop_new(&w->loop, &lp);
	if (r < 0) {
		log_err("worker: loop: %s: %s worker=%zu",
			d->backend == LOOP_BACKEND_IO_URING ? "io_uring" :
							      "epoll",
			strerror(-r), w->id);
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
	for (i = 0; i < w->nwaiting; i++)
		close(w->waiting[i].fd);
	free(w->waiting);
	w->waiting = NULL;
	w->nwaiting = 0;
	free(w->dg);
	free(w->wl);
	dgram_guard_free(w->udp_guard);
	w->udp_guard = NULL;
	w->dg = NULL;
	w->wl = NULL;
	w->ndg = w->nwl = 0;
	worker_stop_plugins(w);
	conn_free_cache(w);
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
		log_err("worker: loop: %s; stopping the daemon worker=%zu",
			strerror(-r), w->id);
		atomic_store(&w->d->failed, 1);
		kill(getpid(), SIGTERM);
		return NULL;
	}
	worker_teardown(w);
	return NULL;
}

int worker_start_all(struct daemon *d)
{
	sem_t started;
	size_t i, n = 0;
	int failed = 0, r;

	d->workers = calloc(d->nworkers, sizeof(*d->workers));
	if (!d->workers || sem_init(&started, 0, 0) < 0)
		return -1;
	for (i = 0; i < d->nworkers; i++) {
		struct worker *w = &d->workers[i];

		*w = (struct worker){ .d = d, .id = i, .started = &started };
		r = pthread_create(&w->tid, NULL, worker_main, w);
		if (r != 0) {
			log_err("worker: cannot create thread: %s", strerror(r));
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
	d->nworkers = n;
	if (failed) {
		atomic_store(&d->state, RINGD_DRAINING);
		worker_stop_all(d);
		return -1;
	}
	return 0;
}

void worker_stop_all(struct daemon *d)
{
	size_t i;

	for (i = 0; i < d->nworkers; i++) {
		struct worker *w = &d->workers[i];

		/* A worker that failed to start has already returned. */
		if (!w->start_err)
			loop_wake(w->loop);
	}
	for (i = 0; i < d->nworkers; i++) {
		pthread_join(d->workers[i].tid, NULL);
		/* Freed here, not by the thread, so main never wakes a loop
		 * that is gone. */
		if (d->workers[i].loop)
			loop_free(d->workers[i].loop);
	}
	free(d->workers);
	d->workers = NULL;
	d->nworkers = 0;
}
