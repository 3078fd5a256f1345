/* SPDX-License-Identifier: MIT */
/*
 * relay_status.c — `payment-relay status` (see relay_status.h).
 *
 * Why Postgres and not the relays: the lease row is what decides who
 * leads, so it is also what an operator should read; a hung leader would
 * answer nothing, its lease age says it all.
 */
#include "relay_status.h"

#include <stdio.h>
#include <string.h>
#include <libpq-fe.h>

static const char *LEASE_SQL =
    "SELECT coalesce(holder, '-'), coalesce(holder_pid::text, '-'), epoch, "
    "       coalesce(to_char(acquired_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '-'), "
    "       coalesce(round(greatest(extract(epoch FROM clock_timestamp() - renewed_at), 0)::numeric, 3)::text, '-'), "
    "       CASE WHEN expires_at > now() "
    "            THEN round(extract(epoch FROM expires_at - now())::numeric, 3)::text "
    "            ELSE 'expired' END, "
    "       takeovers, fenced_exits, "
    "       coalesce((SELECT count(*) FROM pg_stat_activity a "
    "                  WHERE a.application_name = l.holder), 0) "
    "  FROM relay_lease l WHERE outbox = 'outbox'";
static const char *LAG_SQL =
    "SELECT count(*), coalesce(round(extract(epoch FROM now() - min(created_at))::numeric, 3), 0) "
    "  FROM outbox WHERE published_at IS NULL";
static const char *WINDOW_SQL =
    "SELECT epoch, cardinality(seqs), seqs[1], seqs[cardinality(seqs)], "
    "       round(extract(epoch FROM now() - opened_at)::numeric, 3), "
    "       cardinality(start_topics) "
    "  FROM relay_windows WHERE outbox = 'outbox'";

static PGresult *
query(PGconn *c, const char *sql)
{
	PGresult *r = PQexecParams(c, sql, 0, NULL, NULL, NULL, NULL, 0);

	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		fprintf(stderr, "payment-relay status: %s", PQresultErrorMessage(r));
		PQclear(r);
		return NULL;
	}
	return r;
}

int
relay_status_print(const char *database_url, FILE *out)
{
	const char *kw[] = { "dbname", "application_name", NULL };
	const char *val[] = { database_url, "payment-relay-status", NULL };
	PGconn *c = PQconnectdbParams(kw, val, 1);
	PGresult *l = NULL, *g = NULL, *w = NULL;
	int rc = 1;

	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "payment-relay status: postgres: %s", PQerrorMessage(c));
		goto out;
	}
	if ((l = query(c, LEASE_SQL)) == NULL || (g = query(c, LAG_SQL)) == NULL ||
	    (w = query(c, WINDOW_SQL)) == NULL)
		goto out;
	if (PQntuples(l) != 1) {
		fprintf(
		    stderr, "payment-relay status: no relay_lease row (apply migration 0005)\n");
		goto out;
	}
	fprintf(out, "leader: %s\n",
	    strcmp(PQgetvalue(l, 0, 5), "expired") == 0 ? "none (lease expired)"
	                                                : PQgetvalue(l, 0, 0));
	fprintf(out, "holder: %s\n", PQgetvalue(l, 0, 0));
	fprintf(out, "holder_backend_pid: %s\n", PQgetvalue(l, 0, 1));
	fprintf(out, "holder_sessions: %s\n", PQgetvalue(l, 0, 8));
	fprintf(out, "epoch: %s\n", PQgetvalue(l, 0, 2));
	fprintf(out, "acquired_at: %s\n", PQgetvalue(l, 0, 3));
	fprintf(out, "lease_age_seconds: %s\n", PQgetvalue(l, 0, 4));
	fprintf(out, "lease_expires_in_seconds: %s\n", PQgetvalue(l, 0, 5));
	fprintf(out, "takeovers: %s\n", PQgetvalue(l, 0, 6));
	fprintf(out, "fenced_exits: %s\n", PQgetvalue(l, 0, 7));
	fprintf(out, "lag_rows: %s\n", PQgetvalue(g, 0, 0));
	fprintf(out, "lag_oldest_seconds: %s\n", PQgetvalue(g, 0, 1));
	if (PQntuples(w) == 0)
		fprintf(out, "open_window: none\n");
	else
		fprintf(out,
		    "open_window: epoch %s, %s events (seq %s..%s), %s partitions, open %s s\n",
		    PQgetvalue(w, 0, 0), PQgetvalue(w, 0, 1), PQgetvalue(w, 0, 2),
		    PQgetvalue(w, 0, 3), PQgetvalue(w, 0, 5), PQgetvalue(w, 0, 4));
	rc = 0;
out:
	PQclear(l);
	PQclear(g);
	PQclear(w);
	PQfinish(c);
	return rc;
}
