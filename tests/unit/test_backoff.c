/* SPDX-License-Identifier: MIT */
/*
 * test_backoff.c — daemon/common/backoff.c: doubling from base up to the
 * cap, equal jitter inside [d/2, d] with both ends reachable, and the
 * edges (attempt < 0, huge attempts, base 0), with the numbers its two
 * callers use (the ledger's 2..64 ms in us, the relay's seconds in ms).
 */
#include <check.h>
#include <stdint.h>

#include "common/backoff.h"
#include "unit_suites_extra.h"
#include "tests/lib/testlib.h"

/* The ends of the jitter range: rnd % 10001 == 0 and == 10000. */
#define LO 0u
#define HI 10000u

START_TEST(doubles_up_to_the_cap)
{
	ck_assert_double_eq(backoff_delay(0, 2000, 64000, HI), 2000);
	ck_assert_double_eq(backoff_delay(1, 2000, 64000, HI), 4000);
	ck_assert_double_eq(backoff_delay(4, 2000, 64000, HI), 32000);
	ck_assert_double_eq(backoff_delay(5, 2000, 64000, HI), 64000);
	ck_assert_double_eq(backoff_delay(6, 2000, 64000, HI), 64000);
	ck_assert_double_eq(backoff_delay(1000000, 2000, 64000, HI), 64000);
	/* A base above the cap is cut to the cap. */
	ck_assert_double_eq(backoff_delay(0, 100, 30, HI), 30);
}
END_TEST

START_TEST(equal_jitter_bounds)
{
	uint32_t rnd[] = { LO, 1, 5000, 9999, HI, 10001, 123456789u, UINT32_MAX };
	int attempt;
	size_t i;

	ck_assert_double_eq(backoff_delay(0, 500, 30000, LO), 250);
	ck_assert_double_eq(backoff_delay(0, 500, 30000, 5000), 375);
	ck_assert_double_eq(backoff_delay(0, 500, 30000, 10001), 250); /* wraps */
	for (attempt = 0; attempt < 12; attempt++) {
		double d = backoff_delay(attempt, 100, 2000, HI);

		for (i = 0; i < sizeof(rnd) / sizeof(rnd[0]); i++) {
			double v = backoff_delay(attempt, 100, 2000, rnd[i]);

			ck_assert(v >= d / 2 && v <= d);
		}
		/* The nominal delay never shrinks from one attempt to the next. */
		if (attempt > 0)
			ck_assert(d >= backoff_delay(attempt - 1, 100, 2000, HI));
	}
}
END_TEST

START_TEST(edges)
{
	ck_assert_double_eq(backoff_delay(-3, 2000, 64000, HI), 2000); /* as attempt 0 */
	ck_assert_double_eq(backoff_delay(0, 0, 64000, HI), 0);
	ck_assert_double_eq(backoff_delay(10, -1, 64000, HI), 0);
	ck_assert_double_eq_tol(backoff_delay(3, 0.001, 1, HI), 0.008, 1e-12);
}
END_TEST

Suite *
backoff_suite(void)
{
	const TTest *const tests[] = { doubles_up_to_the_cap, equal_jitter_bounds, edges, NULL };

	return tl_suite("backoff", 0, tests);
}
