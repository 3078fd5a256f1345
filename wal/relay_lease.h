/* SPDX-License-Identifier: MIT */
/*
 * relay_lease.h — leadership of the outbox by a lease with an epoch, and
 * the Postgres copy of the open window (migration 0005_relay_lease.sql).
 *
 * Contract: one relay leads an outbox at a time, the holder of the
 * relay_lease row while it is unexpired. A standby asks relay_lease_try()
 * until it gets the lease (free, expired, or its own: same ident, whose
 * previous process died), which bumps the epoch. The leader renews the
 * lease from a thread with its own connection (relay_lease_renewer_*) and
 * names its epoch in every write (relay_lease_window_open(), relay_pg_settle()):
 * such a write locks the lease row and does nothing once the epoch moved on,
 * so a relay that lost the lease (a zombie, e.g. one that was SIGSTOPped past
 * the lease) can neither record nor settle a window. Functions return 0 (or
 * the count said), RELAY_PG_RETRY, RELAY_PG_FATAL (relay_pg.h) or
 * RELAY_PG_LOST: the lease belongs to a later epoch (*now_epoch when asked).
 * Every statement is one transaction of its own, so a holder stopped between
 * statements holds no lock that could keep a takeover waiting.
 */
#ifndef PAYMENTD_RELAY_LEASE_H
#define PAYMENTD_RELAY_LEASE_H

#include <stddef.h>
#include <stdint.h>
#include <libpq-fe.h>

#include "journal/journal.h"

#define RELAY_PG_LOST (-4)

/* The exit status of a relay that found itself fenced (systemd restarts it,
 * and it comes back as a standby). */
#define RELAY_EXIT_FENCED 3

struct relay_lease_take {
	int taken;             /* 1: this relay leads now, at epoch */
	int64_t epoch;         /* taken: the new epoch; else the holder's */
	char prev_holder[64];  /* who held it before ("" none) */
	int takeover;          /* taken from another holder */
	int64_t expires_in_ms; /* not taken: how long the holder's lease still runs */
};

/* One attempt at the lease for lease_s seconds. */
int relay_lease_try(PGconn *c, const char *ident, int lease_s, struct relay_lease_take *t,
    char *err, size_t errlen);
/* Ends the Postgres sessions of an expired holder (application_name holder,
 * not this session): a hung relay keeps no backend, connection slot or lock.
 * *n gets how many. */
int relay_lease_terminate(PGconn *c, const char *holder, int *n, char *err, size_t errlen);
/* A clean stop hands the lease over at once (expires now). */
int relay_lease_release(PGconn *c, int64_t epoch, char *err, size_t errlen);
/* The current epoch and the fenced-exit count (for logs and /metrics). */
int relay_lease_read(
    PGconn *c, int64_t *epoch, int64_t *fenced, int64_t *takeovers, char *err, size_t errlen);
/* Counts a fenced exit (best effort: the zombie is on its way out). */
void relay_lease_count_fenced(PGconn *c);

/*
 * The window, in Postgres before anything of it is produced (replacing any
 * previous one of this outbox), and loaded back by a relay that resolves it:
 * *n == 0 when there is none; *epoch is the epoch that wrote it.
 */
int relay_lease_window_open(PGconn *c, int64_t epoch, const struct journal_event *ev, size_t n,
    const struct journal_offset *start, size_t nstart, int64_t *now_epoch, char *err,
    size_t errlen);
int relay_lease_window_load(PGconn *c, int64_t *epoch, struct journal_event **ev, size_t *n,
    struct journal_offset **start, size_t *nstart, char *err, size_t errlen);
/* The confirmed cursors (relay_cursors), malloc'd. */
int
relay_lease_cursors(PGconn *c, struct journal_offset **out, size_t *n, char *err, size_t errlen);

/*
 * The renewal thread: every lease_s / 5 seconds (at least 200 ms) it
 * extends the lease of epoch on a connection of its own (url, ident), so
 * the lease stays fresh while the main thread waits for the broker, scans
 * or commits. When a renewal finds a later epoch it calls on_lost(mine,
 * now) on its thread (which must not return: the process exits); a
 * Postgres outage only makes it retry. start: 0, or -1 with err.
 */
int relay_lease_renewer_start(const char *url, const char *ident, int64_t epoch, int lease_s,
    void (*on_lost)(int64_t mine, int64_t now), char *err, size_t errlen);
void relay_lease_renewer_stop(void);
/* Milliseconds since the last successful renewal (monotonic). */
int64_t relay_lease_renewed_ago_ms(void);

#endif
