/* Generations: building one from a configuration, retiring the one it
 * replaces, freeing it when its workers end. The reload itself is the
 * story in reload_apply(). */
#include <errno.h>
#include <pwd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "accept.h"
#include "conf.h"
#include "daemon.h"
#include "listen.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "notify.h"
#include "reload.h"
#include "srclimit.h"
#include "worker.h"

/* The per-source table exists only when a service sets a limit. Every
 * entry stands for an open connection: max_connections, plus what each
 * worker may hold, plus what a stop may take from a full backlog past it,
 * bounds how many there are. It grows only as far as it is used. */
static int gen_srclimit(struct daemon *d)
{
	size_t i, room;

	for (i = 0; i < d->conf->nsvc; i++)
		if (d->conf->svc[i].max_per_source > 0)
			break;
	if (i == d->conf->nsvc)
		return 0;
	room = (size_t)d->conf->max_connections +
	       d->nworkers * (ACCEPT_MAX_WAITING + SOMAXCONN);
	d->srclimit = srclimit_new(room);
	return d->srclimit ? 0 : -1;
}

static int gen_instances(struct daemon *d)
{
	size_t i;

	d->svc = calloc(d->conf->nsvc + 1, sizeof(*d->svc));
	if (!d->svc)
		return -1;
	for (i = 0; i < d->conf->nsvc; i++)
		d->svc[i] = (struct ringd_instance){
			.sc = &d->conf->svc[i],
			.p = d->conf->svc[i].plugin->p,
			.d = d,
			.idx = i,
		};
	d->nworkers = (size_t)d->conf->workers_n;
	if (metrics_name_counters(d) < 0)
		return -1;
	return gen_srclimit(d);
}

/* auto falls back to epoll with one line saying why; an explicit
 * io_uring that cannot run is an error, never a silent substitute. */
static int gen_backend(struct daemon *d, bool starting, char *err,
		       size_t errlen)
{
	const char *why = "unknown";
	int backend = d->conf->backend;

	if (backend == CONF_BACKEND_EPOLL) {
		d->backend = LOOP_BACKEND_EPOLL;
		return 0;
	}
	if (loop_uring_probe(&why) == 0) {
		d->backend = LOOP_BACKEND_IO_URING;
		return 0;
	}
	if (backend == CONF_BACKEND_IO_URING) {
		snprintf(err, errlen,
			 "loop: io_uring unavailable (%s); "
			 "backend = io_uring was asked for",
			 why);
		log_err("loop: io_uring unavailable (%s); %s backend=io_uring",
			why, starting ? "not starting" : "not reloading");
		return -1;
	}
	log_notice("loop: io_uring unavailable (%s); using epoll backend=epoll",
		   why);
	d->backend = LOOP_BACKEND_EPOLL;
	return 0;
}

static void gen_free(struct daemon *d)
{
	if (!d)
		return;
	listen_close_all(d);
	metrics_block_free(&d->carried);
	metrics_block_free(&d->retired_at);
	srclimit_free(d->srclimit);
	metrics_forget_counters(d);
	free(d->svc);
	conf_free(d->conf);
	free(d);
}

/* The watchdog's timing and the last STATUS= go on; the heartbeat counts
 * are the new workers' own, so the first check only takes them. */
static void gen_take_supervision(struct daemon *d, const struct daemon *old)
{
	d->sup = old->sup;
	d->sup.primed = false;
	memset(d->sup.stalled, 0, sizeof(d->sup.stalled));
}

/* Everything but the workers, from conf (which d owns from here on); the
 * listeners take over those of old (NULL at start) that did not change. */
static int gen_new(struct reload *r, struct ringd_conf *conf,
		   struct activate_set *inherited, struct daemon **out,
		   char *err, size_t errlen)
{
	struct daemon *d = calloc(1, sizeof(*d));

	*out = NULL;
	if (!d) {
		conf_free(conf);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	d->conf = conf;
	d->nconns = &r->nconns;
	if (gen_instances(d) < 0 || metrics_block_init(&d->carried, d) < 0) {
		snprintf(err, errlen,
			 "services failed to set up (see the log)");
		gen_free(d);
		return -1;
	}
	if (gen_backend(d, !r->cur, err, errlen) < 0) {
		gen_free(d);
		return -1;
	}
	d->activation = inherited;
	if (listen_open_next(d, r->cur, err, errlen) < 0) {
		d->activation = NULL;
		gen_free(d);
		return -1;
	}
	d->activation = NULL;
	if (r->cur)
		gen_take_supervision(d, r->cur);
	*out = d;
	return 0;
}

int reload_first(struct reload *r, struct ringd_conf *conf,
		 struct activate_set *inherited)
{
	char err[256];

	r->user = conf->user ? strdup(conf->user) : NULL;
	if (conf->user && !r->user) {
		conf_free(conf);
		return -1;
	}
	return gen_new(r, conf, inherited, &r->cur, err, sizeof(err));
}

int reload_start_first(struct reload *r)
{
	return worker_start_all(r->cur);
}

void reload_announce(struct daemon *d, const char *verb)
{
	const char *engine =
		d->backend == LOOP_BACKEND_IO_URING ? "io_uring" : "epoll";
	char listeners[4096], status[4400];

	listen_describe(d, listeners, sizeof(listeners));
	log_info("ringd: %s backend=%s workers=%zu pid=%d version=%s", verb,
		 engine, d->nworkers, (int)getpid(), RINGD_VERSION);
	log_info("ringd: listening listen=%s", listeners);
	snprintf(status, sizeof(status),
		 "READY=1\nSTATUS=running backend=%s workers=%zu listen=%s",
		 engine, d->nworkers, listeners);
	notify_send(status);
}

/* systemd (since 253) times a reload from MONOTONIC_USEC: without it,
 * `systemctl reload` of a Type=notify-reload unit waits forever. */
static void reload_notify_begin(void)
{
	char msg[64];

	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
		 (unsigned long long)(supervise_now() / 1000));
	notify_send(msg);
}

static void reload_failed(struct reload *r, const char *why)
{
	char msg[640], v[LOG_VALUE_MAX];

	log_err("ringd: reload failed; the running configuration stays "
		"error=%s",
		log_value(v, sizeof(v), why));
	snprintf(msg, sizeof(msg),
		 "READY=1\nSTATUS=reload failed: %s (old configuration kept)",
		 why);
	notify_send(msg);
	r->cur->reload_failed = true;
}

/* Every error, FILE:LINE first, as a log line of its own. */
static int reload_load(struct reload *r, struct ringd_conf **out, char *err,
		       size_t errlen)
{
	struct conf_errors errs = { 0 };

	if (conf_load(r->config, r->sets, r->nsets, r->plugin_dir, out,
		      &errs) == 0)
		return 0;
	for (size_t i = 0; i < errs.n; i++)
		log_err("%s", errs.msg[i]);
	snprintf(err, errlen, "%s%s", errs.n ? errs.msg[0] : r->config,
		 errs.n ? "" : ": cannot be loaded");
	conf_errors_free(&errs);
	return -1;
}

/* Privileges drop once, at start: a changed user waits for a restart.
 * A user that does not exist would make that restart fail, so it fails
 * the reload now, while the running configuration can still stay. */
static int reload_check_user(const struct reload *r, const struct ringd_conf *c,
			     char *err, size_t errlen)
{
	const char *was = r->user ? r->user : "";
	const char *now = c->user ? c->user : "";
	char v[LOG_VALUE_MAX], w[LOG_VALUE_MAX];

	if (*now && !getpwnam(now)) {
		snprintf(err, errlen, "%s: [ringd] user = %s: no such user",
			 c->path ? c->path : r->config, now);
		return -1;
	}
	if (strcmp(was, now) != 0)
		log_warnx("ringd: a new user = takes effect at the next "
			  "restart; privileges were set at start user=%s "
			  "started_with=%s",
			  log_value(v, sizeof(v), now),
			  log_value(w, sizeof(w), *was ? was : "none"));
	return 0;
}

static int reload_retire_room(struct reload *r)
{
	size_t cap = r->capold ? 2 * r->capold : 4;
	struct daemon **n;

	if (r->nold < r->capold)
		return 0;
	n = realloc(r->old, cap * sizeof(*n));
	if (!n)
		return -ENOMEM;
	r->old = n;
	r->capold = cap;
	return 0;
}

/* How long a reload waits for the old generation to stop accepting. */
#define RELOAD_QUIET_MS 1000

/* old stops accepting and its connections finish; the sockets it handed
 * over stay open and listening, the unix socket files of listeners that
 * went away are removed at once. */
static void reload_retire(struct reload *r, struct daemon *old)
{
	struct timespec ms = { .tv_nsec = 1000000 };

	r->old[r->nold++] = old;
	atomic_store(&old->retiring, 1);
	atomic_store(&old->stopping, 1);
	listen_stop_all(old);
	worker_wake_all(old);
	/* READY=1 then means what it says: every client from here on meets
	 * the new configuration (new quotes, new routes). A worker that
	 * does not answer in time only delays it. */
	for (int i = 0; i < RELOAD_QUIET_MS; i++) {
		if ((size_t)atomic_load(&old->nquiet) >= old->nworkers)
			return;
		nanosleep(&ms, NULL);
	}
	log_warnx("ringd: reload: the previous configuration still accepts "
		  "waited_ms=%d",
		  RELOAD_QUIET_MS);
}

/* d's workers run: the running generation's sockets pass to d, and it
 * retires (its counters passed before d's workers started: snap).
 * Nothing here can fail. */
static void reload_commit(struct reload *r, struct daemon *d,
			  struct metrics_block *snap)
{
	r->cur->retired_at = *snap;
	listen_hand_over(d);
	reload_retire(r, r->cur);
	r->cur = d;
	log_set_level(conf_log_level(d->conf));
	reload_announce(d, "reloaded");
}

void reload_apply(struct reload *r)
{
	struct ringd_conf *conf;
	struct metrics_block snap;
	struct daemon *d;
	char err[512], v[LOG_VALUE_MAX];

	reload_notify_begin();
	log_info("ringd: SIGHUP received, reloading file=%s",
		 log_value(v, sizeof(v), r->config));
	if (reload_load(r, &conf, err, sizeof(err)) < 0) {
		reload_failed(r, err);
		return;
	}
	if (reload_check_user(r, conf, err, sizeof(err)) < 0) {
		conf_free(conf);
		reload_failed(r, err);
		return;
	}
	if (gen_new(r, conf, NULL, &d, err, sizeof(err)) < 0) {
		reload_failed(r, err);
		return;
	}
	/* Room first: past the commit nothing may fail. */
	if (reload_retire_room(r) < 0 ||
	    metrics_block_init(&snap, r->cur) < 0) {
		gen_free(d);
		reload_failed(r, "out of memory");
		return;
	}
	/* The totals so far go on with the new generation before any of
	 * its workers can answer a scrape, so no total ever goes down;
	 * what the old one counts after snap follows when it is freed. */
	metrics_total(r->cur, &snap);
	metrics_carry(d, r->cur, &snap, NULL);
	if (worker_start_all(d) < 0) {
		metrics_block_free(&snap);
		gen_free(d);
		reload_failed(r, "a worker of the new configuration failed to "
				 "start (see the log)");
		return;
	}
	reload_commit(r, d, &snap);
}

bool reload_pending(const struct reload *r)
{
	return r->nold > 0;
}

static void reload_free_old(struct reload *r, size_t i, const char *how)
{
	struct daemon *old = r->old[i];
	struct metrics_block now;

	if (metrics_block_init(&now, old) == 0) {
		metrics_total(old, &now);
		metrics_carry(r->cur, old, &now, &old->retired_at);
		metrics_block_free(&now);
	} else {
		log_warnx("ringd: out of memory: counters of the previous "
			  "configuration since the reload are lost");
	}
	if (atomic_load(&old->failed))
		log_err("ringd: a worker of a previous configuration failed");
	log_notice("ringd: previous configuration %s", how);
	worker_free_all(old);
	gen_free(old);
	r->old[i] = r->old[--r->nold];
}

void reload_reap(struct reload *r)
{
	size_t i = 0;

	while (i < r->nold) {
		if (worker_try_join_all(r->old[i]))
			reload_free_old(r, i,
					"released: its last connection "
					"ended");
		else
			i++;
	}
}

void reload_draining(struct reload *r)
{
	atomic_store(&r->cur->state, RINGD_DRAINING);
	for (size_t i = 0; i < r->nold; i++)
		atomic_store(&r->old[i]->state, RINGD_DRAINING);
}

void reload_stop_retiring(struct reload *r)
{
	for (size_t i = 0; i < r->nold; i++) {
		atomic_store(&r->old[i]->retiring, 0);
		worker_wake_all(r->old[i]);
	}
}

void reload_stop_now(struct reload *r)
{
	for (size_t i = 0; i < r->nold; i++) {
		atomic_store(&r->old[i]->stop_now, 1);
		worker_wake_all(r->old[i]);
	}
	atomic_store(&r->cur->stop_now, 1);
	worker_wake_all(r->cur);
}

bool reload_try_join_all(struct reload *r)
{
	bool all = worker_try_join_all(r->cur);

	for (size_t i = 0; i < r->nold; i++)
		all &= worker_try_join_all(r->old[i]);
	return all;
}

bool reload_fini(struct reload *r)
{
	bool failed = false;

	while (r->nold) {
		struct daemon *old = r->old[r->nold - 1];

		worker_stop_all(old);
		failed |= atomic_load(&old->failed) != 0;
		r->nold--;
		gen_free(old);
	}
	free(r->old);
	r->old = NULL;
	r->capold = 0;
	if (r->cur) {
		if (r->cur->workers) {
			atomic_store(&r->cur->stopping, 1);
			worker_stop_all(r->cur);
		}
		failed |= atomic_load(&r->cur->failed) != 0;
		gen_free(r->cur);
		r->cur = NULL;
	}
	free(r->user);
	r->user = NULL;
	return failed;
}
