/* Load mode's latency histogram: exact small values, percentiles within
 * the bucket width of a sorted list's nearest rank, min and max exact,
 * the empty histogram. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "probe/hist.h"

static void test_probe_hist_empty(void **state)
{
	struct hist h;

	hist_init(&h);
	assert_int_equal(h.count, 0);
	assert_int_equal(hist_quantile(&h, 0.5), 0);
	assert_int_equal(hist_quantile(&h, 1.0), 0);
}

/* Below 2 * HIST_SUB every value has a bucket of its own. */
static void test_probe_hist_small_values_exact(void **state)
{
	struct hist h;

	hist_init(&h);
	for (uint64_t v = 1; v <= 10; v++)
		hist_add(&h, v);
	assert_int_equal(h.count, 10);
	assert_int_equal(h.min, 1);
	assert_int_equal(h.max, 10);
	assert_int_equal(h.sum, 55);
	assert_int_equal(hist_quantile(&h, 0.5), 5);
	assert_int_equal(hist_quantile(&h, 0.9), 9);
	assert_int_equal(hist_quantile(&h, 0.91), 10);
	assert_int_equal(hist_quantile(&h, 0.01), 1);
	assert_int_equal(hist_quantile(&h, 1.0), 10);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* Spread over six decades of nanoseconds, every quantile lands within
 * one bucket (1/HIST_SUB of the value) of the sorted samples' rank. */
static void test_probe_hist_quantiles_within_bucket(void **state)
{
	enum { N = 20000 };
	static uint64_t v[N];
	static const double qs[] = { 0.001, 0.1, 0.5, 0.9, 0.99, 0.999 };
	struct hist h;
	uint64_t x = 88172645463325252ull;

	hist_init(&h);
	for (unsigned i = 0; i < N; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		/* log-uniform from 1 us to 1 s */
		v[i] = 1000ull << (x % 20);
		v[i] += (x >> 8) % v[i];
		hist_add(&h, v[i]);
	}
	qsort(v, N, sizeof(*v), cmp_u64);
	assert_int_equal(h.min, v[0]);
	assert_int_equal(h.max, v[N - 1]);
	for (size_t i = 0; i < sizeof(qs) / sizeof(*qs); i++) {
		size_t rank = (size_t)(qs[i] * N + 0.999999);
		uint64_t want = v[rank - 1], got = hist_quantile(&h, qs[i]);
		uint64_t slack = want / HIST_SUB + 1;

		assert_in_range(got, want - slack, want + slack);
	}
	assert_int_equal(hist_quantile(&h, 1.0), v[N - 1]);
}

/* The largest values still fall in a bucket. */
static void test_probe_hist_huge_values(void **state)
{
	struct hist h;

	hist_init(&h);
	hist_add(&h, UINT64_MAX / 2);
	hist_add(&h, UINT64_MAX);
	assert_int_equal(h.max, UINT64_MAX);
	assert_in_range(hist_quantile(&h, 0.5), UINT64_MAX / 2, UINT64_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_probe_hist_empty),
		cmocka_unit_test(test_probe_hist_small_values_exact),
		cmocka_unit_test(test_probe_hist_quantiles_within_bucket),
		cmocka_unit_test(test_probe_hist_huge_values),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
