/* Log-linear buckets: values below 2 * HIST_SUB have a bucket each; above,
 * each power of two is cut into HIST_SUB equal steps, so a bucket is never
 * wider than 1/HIST_SUB of the values it holds. */
#include "probe/hist.h"

#include <string.h>

void hist_init(struct hist *h)
{
	memset(h, 0, sizeof(*h));
}

static unsigned bucket_of(uint64_t v)
{
	unsigned top, shift;

	if (v < 2 * HIST_SUB)
		return (unsigned)v;
	top = 63u - (unsigned)__builtin_clzll(v);
	shift = top - HIST_SUB_BITS;
	/* v >> shift is in [HIST_SUB, 2 * HIST_SUB): its low bits pick
	 * the step within the octave. */
	return (shift + 1) * HIST_SUB + (unsigned)((v >> shift) - HIST_SUB);
}

/* The midpoint of bucket i's range of values. */
static uint64_t bucket_mid(unsigned i)
{
	unsigned shift;
	uint64_t lo;

	if (i < 2 * HIST_SUB)
		return i;
	shift = i / HIST_SUB - 1;
	lo = (uint64_t)(HIST_SUB + i % HIST_SUB) << shift;
	return lo + ((uint64_t)1 << shift) / 2;
}

void hist_add(struct hist *h, uint64_t v)
{
	if (h->count == 0 || v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
	h->count++;
	h->sum += v;
	h->bucket[bucket_of(v)]++;
}

uint64_t hist_quantile(const struct hist *h, double q)
{
	uint64_t rank, seen = 0, v;

	if (h->count == 0)
		return 0;
	if (q >= 1.0)
		return h->max;
	/* Nearest rank: ceil(q * count), at least 1. */
	rank = (uint64_t)(q * (double)h->count);
	if ((double)rank < q * (double)h->count)
		rank++;
	if (rank == 0)
		rank = 1;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->bucket[i];
		if (seen < rank)
			continue;
		v = bucket_mid(i);
		if (v < h->min)
			v = h->min;
		return v > h->max ? h->max : v;
	}
	return h->max;
}
