/* The daemon's context, one generation of it: everything main() builds
 * from one configuration and the workers share read-only, plus the few
 * atomics they update (state, connection count). A reload builds the
 * next generation beside it (reload.h). There is no other process-wide
 * state except the log level. */
#ifndef RINGD_DAEMON_H
#define RINGD_DAEMON_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <ringd/plugin.h>

#include "conf.h"
#include "loop.h"
#include "metrics.h"
#include "supervise.h"

struct activate_set;
struct listener;
struct srclimit;
struct worker;

/* One configured service instance, as plugins see it through the host. */
struct ringd_instance {
	const struct service_conf *sc;
	const struct ringd_plugin *p;
	struct daemon *d;
	size_t idx; /* in d->svc and in each worker's wstate[] */
	/* What the plugin's counters() named (metrics.c); count() takes an
	 * index into it. */
	struct ringd_counter *counters;
	size_t ncounters;
};

struct daemon {
	struct ringd_conf *conf;
	enum loop_backend backend; /* resolved: IO_URING or EPOLL */

	struct ringd_instance *svc; /* conf->nsvc entries */
	struct listener *listeners;
	size_t nlisteners;
	/* Sockets passed by socket activation, from start-up until
	 * listen_open_all() has placed them; NULL without. */
	struct activate_set *activation;

	/* Every UDP port a service listens on, so the UDP guard can refuse
	 * datagrams that one of our own services sent (loops between two
	 * reflecting services). Sorted. */
	uint16_t *own_ports;
	size_t nown_ports;

	struct worker *workers;
	size_t nworkers;

	/* What earlier generations counted, by service (metrics_carry()),
	 * which every scrape adds in; and this generation's totals when a
	 * reload retired it, which the next one carries already. */
	struct metrics_block carried;
	struct metrics_block retired_at;

	/* Connections per source, for max_connections_per_source; NULL
	 * when no service sets it. Shared by the workers (it locks). */
	struct srclimit *srclimit;

	_Atomic int state;      /* enum ringd_state */
	_Atomic int stopping;   /* workers stop accepting and drain; set
				   drain_delay after state turned DRAINING */
	_Atomic int failed;     /* a worker's loop died: exit 1 */
	_Atomic int stop_now;   /* a second stop signal: what the graceful
				   stop has left is reset now, as at
				   shutdown_timeout */
	/* Set before stopping when a reload replaces this generation: its
	 * workers stop accepting, leave the sockets they handed over
	 * listening, and let their connections finish. */
	_Atomic int retiring;
	_Atomic int nquiet;     /* stopping workers no longer accepting */
	/* A listener's SYN filter failed at this generation's stop, which
	 * is said once: the cause (an unprivileged process, often) is the
	 * same for every listener and worker. */
	_Atomic int syn_filter_failed;
	/* Open connections, all workers of every generation: the
	 * process's count, which max_connections bounds. */
	_Atomic long *nconns;
	double start_time;      /* Unix seconds the process started
				   (metrics_name_counters()) */
	struct supervise sup;   /* main thread's: watchdog and STATUS= */
	/* main's: a reload of this generation failed, which STATUS= keeps
	 * saying until one succeeds (the next generation starts clear). */
	bool reload_failed;
};

static inline enum ringd_state daemon_state(struct daemon *d)
{
	return (enum ringd_state)atomic_load_explicit(&d->state,
						      memory_order_relaxed);
}

#endif
