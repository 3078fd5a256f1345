/*
 * relay_pg.h — the relay's Postgres side: one connection holding the
 * relay's advisory lock, the outbox read, and the per-window settlement.
 *
 * Contract: functions return 0 on success, RELAY_PG_RETRY when the
 * connection is gone (the caller reconnects with backoff and repeats) and
 * RELAY_PG_FATAL when Postgres refused the statement on a live connection
 * or another relay holds the lock (the caller stops). err says why. Every
 * statement is parameterized; arrays travel as one text parameter each.
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

#define RELAY_PG_RETRY (-1)
#define RELAY_PG_FATAL (-2)

/* pg_try_advisory_lock key: one relay per database. ("PAYRELAY") */
#define RELAY_PG_LOCK_KEY 0x50415952454c4159LL

/* Column numbers of a fetched row. */
enum { RF_SEQ, RF_EVENT_ID, RF_AGG_TYPE, RF_AGG_ID, RF_KEY, RF_TYPE, RF_PAYLOAD, RF_CORR,
       RF_CREATED, RF_RETRIES, RF_LAST_ERROR, RF_HELD };

/*
 * Connects with application_name = ident and takes the advisory lock.
 * When the lock is held by a session with the same ident — the backend of
 * this relay's own previous run (same host, same journal), which Postgres
 * has not reaped yet after a crash — it returns RELAY_PG_RETRY: waiting is
 * safe, the journal is the same. Held by anyone else: RELAY_PG_FATAL,
 * because a relay with another journal cannot know that one's window.
 */
int  relay_pg_connect(const char *url, const char *ident, PGconn **out, char *err, size_t errlen);
/* *res holds up to limit rows; only the first *usable may be published.
 * *held is 1 when the read stopped at a row whose writer is in flight. */
int  relay_pg_fetch(PGconn *c, int limit, PGresult **res, int *usable, int *held,
         char *err, size_t errlen);

/* Outcome of one window, applied in one statement (one transaction). */
struct relay_settle {
	const int64_t *published; size_t npublished;	/* reached the broker */
	const int64_t *dlq;       const char *const *dlq_error;  size_t ndlq;
	const int64_t *failed;    const char *const *fail_error; size_t nfailed;
};
int  relay_pg_settle(PGconn *c, const struct relay_settle *s, char *err, size_t errlen);

/* Committed rows not yet published, for the stats line. */
int  relay_pg_backlog(PGconn *c, int64_t *n, char *err, size_t errlen);

/* Postgres array literals ("{1,2}", "{\"a\",\"b\\\"c\"}"); malloc'd. */
char *relay_pg_int_array(const int64_t *v, size_t n);
char *relay_pg_text_array(const char *const *v, size_t n);

#endif
