/* SPDX-License-Identifier: MIT */
/*
 * relay_status.h — `payment-relay status`: the outbox's leadership and lag,
 * read from Postgres (relay_lease, relay_windows, outbox), so it answers the
 * same on any host of an active/standby pair and while no relay runs.
 *
 * Contract: relay_status_print() prints "key: value" lines to out and
 * returns the process exit status: 0, or 1 when Postgres cannot be read
 * (said on stderr). Read-only: one connection, parameterless SELECTs.
 */
#ifndef PAYMENTD_RELAY_STATUS_H
#define PAYMENTD_RELAY_STATUS_H

#include <stdio.h>

int relay_status_print(const char *database_url, FILE *out);

#endif
