/* A latency histogram of fixed size for load mode: log-linear buckets
 * (32 linear steps per power of two), so a percentile read from it is
 * within about 3% of the true sample whatever the run's length, and the
 * memory stays a few KiB however many requests are recorded. Pure: no
 * clock, no I/O. */
#ifndef RINGD_PROBE_HIST_H
#define RINGD_PROBE_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 5
#define HIST_SUB      (1u << HIST_SUB_BITS)
/* Values up to 2^63 ns: 64 - HIST_SUB_BITS octaves of HIST_SUB each,
 * plus the exact buckets below 2 * HIST_SUB. */
#define HIST_BUCKETS ((64 - HIST_SUB_BITS) * HIST_SUB + HIST_SUB)

struct hist {
	uint64_t count;
	uint64_t sum;	   /* of every value, for the mean */
	uint64_t min, max; /* exact; min is 0 while count is 0 */
	uint64_t bucket[HIST_BUCKETS];
};

/* Zero a histogram before use (a zeroed struct is an empty one too). */
void hist_init(struct hist *h);

/* Records one value (nanoseconds, or any unit: the histogram does not
 * care). */
void hist_add(struct hist *h, uint64_t v);

/* The value at quantile q (0 < q <= 1) by nearest rank: the smallest
 * recorded value v such that at least q of all values are <= v, read
 * as its bucket's midpoint and held within [min, max]. q = 1 is max
 * exactly. 0 when the histogram is empty. */
uint64_t hist_quantile(const struct hist *h, double q);

#endif
