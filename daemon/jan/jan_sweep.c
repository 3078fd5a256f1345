/* SPDX-License-Identifier: MIT */
/*
 * jan_sweep.c — one janitor batch: expire due holds, then delete expired
 * keys, each one statement and so one transaction (see jan.h).
 *
 * The work itself is in SQL (migrations/0009_janitor.sql): the selection
 * with FOR UPDATE SKIP LOCKED and expire_hold's re-check under its locks are
 * what make an expiry happen exactly once, whichever process gets there
 * first; this side only calls, counts and tells a failed statement (retry
 * later, on the same connection) from a lost connection (the process must
 * go: its sandbox cannot open another).
 */
#include "jan.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One "SELECT fn($1)" returning an int; -1 on failure (err filled). */
static int64_t
jan_sweep_call(PGconn *c, const char *sql, int batch, char *err, size_t errlen)
{
	char b[16];
	const char *p[1] = { b };
	PGresult *r;
	int64_t n = -1;
	char *end;

	snprintf(b, sizeof(b), "%d", batch);
	r = PQexecParams(c, sql, 1, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1 || PQnfields(r) != 1) {
		const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;

		snprintf(err, errlen, "%s [%s]: %s", sql, st ? st : "-", PQerrorMessage(c));
		err[strcspn(err, "\n")] = '\0';
		goto out;
	}
	n = strtoll(PQgetvalue(r, 0, 0), &end, 10);
	if (*end != '\0' || n < 0) {
		snprintf(err, errlen, "%s: unexpected result \"%s\"", sql, PQgetvalue(r, 0, 0));
		n = -1;
	}
out:
	PQclear(r);
	return n;
}

int
jan_sweep_once(PGconn *c, int batch, struct jan_batch *out, char *err, size_t errlen)
{
	char err2[512];

	memset(out, 0, sizeof(*out));
	err[0] = '\0';
	out->holds = jan_sweep_call(c, "SELECT janitor_expire_holds($1)", batch, err, errlen);
	if (out->holds < 0) {
		out->failed++;
		if (PQstatus(c) != CONNECTION_OK)
			return JAN_SWEEP_LOST;
	}
	out->keys = jan_sweep_call(c, "SELECT janitor_purge_keys($1)", batch, err2, sizeof(err2));
	if (out->keys < 0) {
		out->failed++;
		if (err[0] == '\0')
			snprintf(err, errlen, "%s", err2);
		if (PQstatus(c) != CONNECTION_OK)
			return JAN_SWEEP_LOST;
	}
	return out->failed ? JAN_SWEEP_FAILED : JAN_SWEEP_OK;
}

int
jan_sweep_full(const struct jan_batch *b, int batch)
{
	return b->holds >= batch || b->keys >= batch;
}
