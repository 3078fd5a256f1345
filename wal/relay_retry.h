/* SPDX-License-Identifier: MIT */
/*
 * relay_retry.h — how the relay's retrying helpers (relay_pg.h,
 * relay_kafka.h) wait between attempts.
 *
 * Contract: a helper that keeps trying through an outage calls
 * sleep(attempt) (attempt 0, 1, 2, ... within one outage) between tries,
 * and gives up with its "stopping" result once *stop is non-zero. The
 * process owns both: the stop flag is set from its signal handler, and
 * sleep is its jittered backoff, which returns early when stop is set.
 */
#ifndef PAYMENTD_RELAY_RETRY_H
#define PAYMENTD_RELAY_RETRY_H

#include <signal.h>

struct relay_retry {
	const volatile sig_atomic_t *stop;
	void (*sleep)(int attempt);
};

#endif
