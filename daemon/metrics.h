/* The daemon's counters. Each worker owns one block per service and is
 * the only thread that writes it (a relaxed load and store, no atomic
 * read-modify-write, no lock); a scrape from any thread sums the blocks of
 * every worker with relaxed loads. Conn, accept and dgram count into the
 * block their owner hands them; metrics.c knows the names. */
#ifndef RINGD_METRICS_H
#define RINGD_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include <ringd/plugin.h>

struct daemon;

/* Sizes of the reason arrays; accept.c, dgram.c and conn.c assert that
 * their enums fit. */
#define METRICS_CLOSE_N 6    /* enum ringd_close_reason */
#define METRICS_REFUSED_N 5  /* enum accept_refusal */
#define METRICS_DROP_N 8     /* enum dgram_drop */

/* Stream counters, kept apart per transport. */
enum metrics_transport {
	METRICS_TCP = 0,
	METRICS_UNIX,
	METRICS_NSTREAM,
};

struct metrics_stream {
	uint64_t accepted; /* handed to the plugin (conn_open) */
	uint64_t closed[METRICS_CLOSE_N];
	uint64_t refused[METRICS_REFUSED_N];
	uint64_t bytes_in, bytes_out;
};

struct metrics_dgram {
	uint64_t in, out;
	uint64_t bytes_in, bytes_out;
	uint64_t dropped[METRICS_DROP_N];
};

/* One service in one worker. */
struct metrics_svc {
	struct metrics_stream stream[METRICS_NSTREAM];
	struct metrics_dgram dgram;
	uint64_t *own; /* the plugin's counters(), ringd_instance.ncounters */
};

/* A worker's counters: one entry per service. */
struct metrics_block {
	struct metrics_svc *svc;
	size_t nsvc;
};

/* Service svc's stream counters for transport t in block m; NULL when
 * nothing counts (no block: a test's conn_set) or svc is not in it. */
static inline struct metrics_stream *
metrics_stream_of(struct metrics_block *m, size_t svc, unsigned t)
{
	if (m == NULL || svc >= m->nsvc)
		return NULL;
	return &m->svc[svc].stream[t];
}

static inline void metrics_add(uint64_t *ctr, uint64_t n)
{
	__atomic_store_n(ctr, __atomic_load_n(ctr, __ATOMIC_RELAXED) + n,
			 __ATOMIC_RELAXED);
}

static inline uint64_t metrics_get(const uint64_t *ctr)
{
	return __atomic_load_n(ctr, __ATOMIC_RELAXED);
}

/* Allocate d's services' entries (and their plugin counters) zeroed.
 * Returns 0 or -ENOMEM. */
int metrics_block_init(struct metrics_block *b, const struct daemon *d);
void metrics_block_free(struct metrics_block *b);

/* Ask every service's plugin to name its counters (the counters() hook)
 * and check the names: a metric name, ringd_ first, _total last, one help
 * and label name per family; and note when the process started, which a
 * scrape reports and never changes. Main thread, before the workers
 * start. Returns 0, or -1 after logging what is wrong. */
int metrics_name_counters(struct daemon *d);
void metrics_forget_counters(struct daemon *d);

/* Reloads keep the counters' totals: each generation carries what the
 * ones before it counted, by service name (a service of the same name
 * and plugin; a renamed or new one starts at 0), and a scrape adds that
 * in. metrics_total() fills out (initialised for d) with d's totals, its
 * carried part included. metrics_carry() adds now - base (base NULL: 0)
 * of from's services into to's carried part. Main thread only: it is
 * the one writer of every carried block. */
void metrics_total(const struct daemon *d, struct metrics_block *out);
void metrics_carry(struct daemon *to, const struct daemon *from,
		   const struct metrics_block *now,
		   const struct metrics_block *base);

/* One service's counters summed over every worker and transport (UDP's
 * bytes in bytes_in and bytes_out too): what SIGUSR1 logs. Any thread
 * while the workers run; relaxed loads, so the fields are each a recent
 * value, not one snapshot. */
struct metrics_total {
	uint64_t accepted, closed, refused;
	uint64_t bytes_in, bytes_out;
	uint64_t dgram_in, dgram_out, dgram_dropped;
};
void metrics_total_of(const struct daemon *d, size_t svc,
		      struct metrics_total *out);

/* The label of a close reason (enum ringd_close_reason), as /metrics
 * names it: "peer", "idle"...; "unknown" out of range. */
const char *metrics_close_name(unsigned reason);

/* host->metrics(): every series of the daemon, its workers' blocks
 * summed, grouped by family. Returns the number emitted. */
size_t metrics_walk(const struct daemon *d, ringd_metric_fn emit, void *arg);

#endif
