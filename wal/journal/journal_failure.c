/* SPDX-License-Identifier: MIT */
/*
 * journal_failure.c — per-event failure counts (see journal.h).
 *
 * Kept in the journal as well as in outbox.retry_count: the journal's
 * count is what the relay itself decided on, durable before the next
 * attempt, and survives an operator resetting the Postgres column.
 */
#include "journal_int.h"

#include <stdio.h>

int
journal_failure(struct journal *j, int64_t seq, const char *event_id, const char *error, int *count,
    char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	int rc = -1;

	if (jn_prepare(j,
	        "INSERT INTO failures VALUES (?, ?, 1, ?, strftime('%Y-%m-%dT%H:%M:%fZ')) "
	        "ON CONFLICT (seq) DO UPDATE SET count = count + 1, last_error = excluded.last_error, "
	        "updated_at = excluded.updated_at RETURNING count",
	        &s, err, errlen) < 0)
		return -1;
	sqlite3_bind_int64(s, 1, seq);
	sqlite3_bind_text(s, 2, event_id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 3, error, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(s) != SQLITE_ROW) {
		jn_fail(j, "failure", err, errlen);
		goto out;
	}
	*count = sqlite3_column_int(s, 0);
	/* RETURNING: the change is committed when the statement completes. */
	if (sqlite3_step(s) != SQLITE_DONE) {
		jn_fail(j, "failure", err, errlen);
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(s);
	return rc;
}

int
journal_failures_of(struct journal *j, int64_t seq, int *count, char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	int r, rc = -1;

	if (jn_prepare(j, "SELECT count FROM failures WHERE seq = ?", &s, err, errlen) < 0)
		return -1;
	sqlite3_bind_int64(s, 1, seq);
	r = sqlite3_step(s);
	if (r == SQLITE_ROW)
		*count = sqlite3_column_int(s, 0);
	else if (r == SQLITE_DONE)
		*count = 0;
	else {
		jn_fail(j, "failures", err, errlen);
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(s);
	return rc;
}
