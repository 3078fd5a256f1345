/* SPDX-License-Identifier: MIT */
/*
 * relay_pg.h — the relay's Postgres side: its connections, the outbox
 * read, and the per-window settlement (leadership: relay_lease.h).
 *
 * Contract: functions return 0 on success, RELAY_PG_RETRY when the
 * connection is gone (the caller reconnects with backoff and repeats),
 * RELAY_PG_FATAL when Postgres refused the statement on a live connection
 * (the caller stops) and, for the settlement, RELAY_PG_LOST
 * (relay_lease.h) when the lease belongs to a later epoch: nothing was
 * settled. err says why. Every statement is parameterized; arrays travel
 * as one text parameter each.
 *
 * The read (relay_pg_fetch) returns unpublished rows in seq order and stops
 * before the first row whose writer may still be in flight — txid >=
 * pg_snapshot_xmin(pg_current_snapshot()) — so no row is published while
 * a row with a lower seq could still commit (docs/relay.md has why this is
 * a prefix cut, not a filter). Unpublished means published_at IS NULL, so
 * a row that commits late is never skipped.
 */
#ifndef PAYMENTD_RELAY_PG_H
#define PAYMENTD_RELAY_PG_H

#include <stddef.h>
#include <stdint.h>
#include <libpq-fe.h>

#include "journal/journal.h"
#include "relay_envelope.h"
#include "relay_lease.h"
#include "relay_retry.h"

#define RELAY_PG_RETRY (-1)
#define RELAY_PG_FATAL (-2)
#define RELAY_PG_STOP  (-3) /* the retrying calls: the relay is stopping */

/* Column numbers of a fetched row. */
enum {
	RF_SEQ,
	RF_EVENT_ID,
	RF_AGG_TYPE,
	RF_AGG_ID,
	RF_KEY,
	RF_TYPE,
	RF_PAYLOAD,
	RF_CORR,
	RF_CREATED,
	RF_RETRIES,
	RF_LAST_ERROR,
	RF_HELD,
	RF_CLIENT /* NULL before migration 0004 */
};

/*
 * Connects with application_name = ident (host and journal: a new leader
 * ends an expired holder's sessions by that name, relay_lease.h). No lock is
 * taken: the lease decides who leads, so a hung holder's session cannot
 * keep a standby out past the lease.
 */
int relay_pg_connect(const char *url, const char *ident, PGconn **out, char *err, size_t errlen);
/* *res holds up to limit rows; only the first *usable may be published.
 * *held is 1 when the read stopped at a row whose writer is in flight. */
int relay_pg_fetch(
    PGconn *c, int limit, PGresult **res, int *usable, int *held, char *err, size_t errlen);
/* Row r of relay_pg_fetch()'s result; the strings stay owned by res. */
void relay_pg_row(PGresult *res, int r, struct relay_row *row);

/* Outcome of one window, applied in one statement (one transaction), only
 * while epoch still holds the lease: the rows, the cursors raised to the
 * highest next[] offset per partition, and (close_window) the Postgres
 * copy of the window deleted. */
struct relay_settle {
	int64_t epoch;
	const int64_t *published;
	size_t npublished; /* reached the broker */
	const int64_t *dlq;
	const char *const *dlq_error;
	size_t ndlq;
	const int64_t *failed;
	const char *const *fail_error;
	size_t nfailed;
	const struct journal_offset *next;
	size_t nnext;
	int close_window;
};
int relay_pg_settle(PGconn *c, const struct relay_settle *s, char *err, size_t errlen);

/*
 * The relay's connection through Postgres outages (retry: relay_retry.h).
 * relay_pg_ready() returns at once while conn is up, else connects until
 * that works: 0, RELAY_PG_STOP, or RELAY_PG_FATAL with err.
 * relay_pg_lost() logs why a statement failed on a connection that is gone
 * and closes it, so that the next relay_pg_ready() reconnects.
 * relay_pg_settle_retry() is relay_pg_settle() repeated (reconnecting as
 * needed) until Postgres takes the outcome: 0, RELAY_PG_STOP,
 * RELAY_PG_LOST or RELAY_PG_FATAL with err. Settling twice is harmless: every update is
 * guarded by published_at IS NULL.
 */
struct relay_pg_link {
	const char *url;
	const char *ident; /* application_name */
	const struct relay_retry *retry;
	PGconn *conn; /* NULL: not connected */
};
int relay_pg_ready(struct relay_pg_link *l, char *err, size_t errlen);
void relay_pg_lost(struct relay_pg_link *l, const char *what, const char *err);
int relay_pg_settle_retry(
    struct relay_pg_link *l, const struct relay_settle *s, char *err, size_t errlen);
void relay_pg_close(struct relay_pg_link *l);

/* Committed rows not yet published, for the stats line. */
int relay_pg_backlog(PGconn *c, int64_t *n, char *err, size_t errlen);

/* Postgres array literals ("{1,2}", "{\"a\",\"b\\\"c\"}"); malloc'd. */
char *relay_pg_int_array(const int64_t *v, size_t n);
char *relay_pg_text_array(const char *const *v, size_t n);

#endif
