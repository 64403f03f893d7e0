/* How ringd-probe tells what it found: thresholds turn a result into a
 * verdict, tries into statistics, and verdicts into Nagios lines, JSON
 * or the Prometheus text format. Formatting only: no sockets, no loop;
 * every writer takes a FILE so tests read back what it wrote. */
#ifndef RINGD_PROBE_REPORT_H
#define RINGD_PROBE_REPORT_H

#include <stdio.h>

#include "probe/check.h"

/* Applies --warn/--crit (0: unset) to an OK result's duration. */
enum probe_state report_threshold(enum probe_state s, int64_t duration_ns,
				  int64_t warn_ns, int64_t crit_ns);

/* The exit status of several verdicts: CRITICAL wins, then WARNING,
 * then UNKNOWN, then OK. */
enum probe_state report_worst(enum probe_state a, enum probe_state b);
const char *report_state_name(enum probe_state s); /* "OK"... */

/* Every try of one target. durations holds the successful tries'
 * latencies (ns), grown by report_stats_add(). */
struct report_stats {
	unsigned tries, ok;
	int64_t *durations;
	unsigned cap;
};
/* Returns 0 or -ENOMEM. */
int report_stats_add(struct report_stats *s, bool ok, int64_t duration_ns);
void report_stats_free(struct report_stats *s);

struct report_summary {
	int64_t min, avg, max, p50, p99; /* ns; 0 when no try succeeded */
	double loss;                     /* 0..1 */
};
/* Percentiles by nearest rank on the sorted durations (sorts them). */
void report_summarize(struct report_stats *s, struct report_summary *out);

/* One target's report, as the writers see it. */
struct report_entry {
	const char *url;
	struct probe_result result; /* the verdict after thresholds */
	bool http;                  /* probe_http_status_code applies */
	struct report_stats *stats; /* NULL without --count; summarizing
				       sorts its durations */
};

/* "OK - URL MESSAGE | time=0.000410s;WARN;CRIT;0" */
void report_nagios(FILE *f, const struct report_entry *e, int64_t warn_ns,
		   int64_t crit_ns);
/* "--- URL statistics ---" and "N tries, K ok, L% loss, min/avg/..." */
void report_stats_lines(FILE *f, const char *url, struct report_stats *s);
/* One JSON document for every entry: {"status":..,"targets":[...]} */
void report_json(FILE *f, const struct report_entry *e, size_t n,
		 enum probe_state overall);
/* s as a JSON string, quotes and escapes included (load mode too). */
void report_json_string(FILE *f, const char *s);
/* probe_success, probe_duration_seconds, probe_http_status_code, each
 * with HELP and TYPE once and a target="URL" label per entry. */
void report_prometheus(FILE *f, const struct report_entry *e, size_t n);

#endif
