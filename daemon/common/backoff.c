/* SPDX-License-Identifier: MIT */
/*
 * backoff.c — jittered exponential backoff (see backoff.h).
 */
#include "backoff.h"

double
backoff_delay(int attempt, double base, double cap, uint32_t rnd)
{
	double d = base, half;
	int i;

	if (d <= 0)
		return 0;
	/* Doubling stops at the cap, so a huge attempt costs nothing. */
	for (i = 0; i < attempt && d < cap; i++)
		d *= 2;
	if (d > cap)
		d = cap;
	half = d / 2;
	/* rnd picks one of 10001 points in [0, 1]: both ends reachable. */
	return half + half * ((double)(rnd % 10001) / 10000.0);
}
