/* SPDX-License-Identifier: MIT */
/*
 * jan.h — the janitor: a sandboxed child of the supervisor that expires
 * holds past hold_expires_at and deletes expired idempotency and operation
 * keys, in bounded batches, over one Postgres connection.
 *
 * Contract: jan_main() is the process (jan_main.c): started, locked down,
 * stopped and restarted as daemon/sup/sup_proto.h's janitor section says,
 * exit codes SUP_JAN_EXIT_*. jan_sweep_once() (jan_sweep.c) is one batch of
 * each job, each its own transaction (the SQL of
 * migrations/0009_janitor.sql); it runs on a connection it is given and
 * neither connects nor sleeps, so it can be driven from a test as well.
 */
#ifndef PAYMENTD_JAN_H
#define PAYMENTD_JAN_H

#include <stddef.h>
#include <stdint.h>
#include <libpq-fe.h>

#include "common/config.h"
#include "metrics/metrics.h"

void jan_main(const struct config *cfg, struct metrics *m) __attribute__((noreturn));

/* What one batch did: holds expired, keys deleted (-1: that call failed),
 * and how many of the two calls failed. */
struct jan_batch {
	int64_t holds;
	int64_t keys;
	int failed;
};

enum jan_sweep_rc {
	JAN_SWEEP_OK = 0,      /* both calls succeeded */
	JAN_SWEEP_FAILED = -1, /* a call failed (err: the first failure); retry later */
	JAN_SWEEP_LOST = -2,   /* the connection is gone */
};

/* Runs janitor_expire_holds(batch), then janitor_purge_keys(batch) (the
 * second even if the first failed: a missing or broken expire_hold must
 * not let the key tables grow). Returns an enum jan_sweep_rc. */
int jan_sweep_once(PGconn *c, int batch, struct jan_batch *out, char *err, size_t errlen);
/* 1 if either job filled its batch: there may be more due right now. */
int jan_sweep_full(const struct jan_batch *b, int batch);

#endif
