/* Generations of the daemon and the SIGHUP reload between them. Each
 * configuration runs as one generation (struct daemon: its conf,
 * instances, listeners, workers, counters). A reload validates the whole
 * new file, builds the next generation beside the running one (keeping
 * the sockets of unchanged listeners), starts its workers, and only then
 * retires the old one, which stops accepting and is freed once its last
 * connection has ended. main owns the signals; this module owns the
 * generations. */
#ifndef RINGD_RELOAD_H
#define RINGD_RELOAD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

struct activate_set;
struct daemon;
struct ringd_conf;

/* The process: what every generation shares. */
struct reload {
	/* How the process was started; a reload reads the same file with
	 * the same -s overrides. Borrowed from main. */
	const char *config;
	const char *const *sets;
	size_t nsets;
	const char *plugin_dir;
	/* user = as the process started: privileges drop only once. */
	char *user;

	struct daemon *cur;  /* the generation that accepts */
	struct daemon **old; /* retiring, until their workers end */
	size_t nold, capold;

	_Atomic long nconns; /* open connections of every generation */
};

/* Builds the first generation from conf (taken over, freed on failure):
 * instances, engine, listeners (those inherited stand in for binds; the
 * ones it takes leave the set); no worker runs yet, so main can drop
 * privileges before starting them with reload_start_first(). Each
 * returns 0, or -1 after logging why (the workers that did start are
 * stopped again); reload_fini() frees what they kept either way. */
int reload_first(struct reload *r, struct ringd_conf *conf,
		 struct activate_set *inherited);
int reload_start_first(struct reload *r);

/* SIGHUP: reload r->config. Never fails the process: an invalid file,
 * a listener that cannot be bound, a worker that cannot start leave the
 * running generation serving, and the log and STATUS= say what and
 * where. Notifies RELOADING=1 before and READY=1 after. */
void reload_apply(struct reload *r);

/* Whether retiring generations are still waiting for their connections
 * (main then polls reload_reap() while it waits for signals). */
bool reload_pending(const struct reload *r);
/* Frees every retiring generation whose workers have all ended; never
 * blocks. */
void reload_reap(struct reload *r);

/* A stop begins: every generation reports itself draining (/readyz of
 * a connection a reload let run included). */
void reload_draining(struct reload *r);
/* Stop: every retiring generation drains as on a normal stop too, so
 * connections a reload let run are not left waiting. */
void reload_stop_retiring(struct reload *r);

/* A second stop signal: every generation resets what its graceful stop
 * has left, now (as shutdown_timeout would). */
void reload_stop_now(struct reload *r);
/* Joins, without blocking, the workers of every generation that have
 * returned; true once all have, so reload_fini() will not block. */
bool reload_try_join_all(struct reload *r);
/* Waits for every generation's workers (which must be stopping), then
 * frees all of them; returns whether a worker of any generation failed. */
bool reload_fini(struct reload *r);

/* Logs the running generation (verb: "started" or "reloaded") and tells
 * the supervisor READY=1 with its STATUS=running line. */
void reload_announce(struct daemon *d, const char *verb);

#endif
