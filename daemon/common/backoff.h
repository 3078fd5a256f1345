/* SPDX-License-Identifier: MIT */
/*
 * backoff.h — the one jittered exponential backoff (libc only).
 *
 * Contract: backoff_delay() is the wait before retry number attempt
 * (0-based): d = base * 2^attempt, capped at cap, then "equal jitter" —
 * uniform in [d/2, d] by the caller's random value rnd — so that many
 * clients retrying at once spread out instead of arriving together while
 * each still waits at least half the nominal delay. The result is in the
 * unit of base and cap (the caller picks ms or us); it computes, it does
 * not sleep: each caller sleeps in its own way (interruptibly or not).
 * attempt < 0 counts as 0; base <= 0 gives 0.
 */
#ifndef PAYMENTD_BACKOFF_H
#define PAYMENTD_BACKOFF_H

#include <stdint.h>

double backoff_delay(int attempt, double base, double cap, uint32_t rnd);

#endif
