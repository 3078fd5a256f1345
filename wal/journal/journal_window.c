/* SPDX-License-Identifier: MIT */
/*
 * journal_window.c — the in-flight window and the publish cursors
 * (see journal.h for the contract).
 *
 * A window is begun before the first byte of it goes to the broker and
 * settled after Postgres knows the outcome; a crash in between leaves it
 * here for the recovery scan. Cursors only ever move forward: an old value
 * makes a scan longer, never wrong.
 */
#include "journal_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *RAISE_SQL =
    "INSERT INTO partition_cursor VALUES (?, ?, ?) ON CONFLICT (topic, partition) "
    "DO UPDATE SET next_offset = max(next_offset, excluded.next_offset)";

static void
copy_text(char *dst, size_t len, sqlite3_stmt *s, int col)
{
	const unsigned char *t = sqlite3_column_text(s, col);

	snprintf(dst, len, "%s", t ? (const char *)t : "");
}

static int
grow(void **arr, size_t *cap, size_t n, size_t elem)
{
	void *p;

	if (n < *cap)
		return 0;
	*cap = *cap ? *cap * 2 : 64;
	p = realloc(*arr, *cap * elem);
	if (p == NULL)
		return -1;
	*arr = p;
	return 0;
}

static int
raise_all(struct journal *j, const struct journal_offset *off, size_t n, char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	size_t i;
	int rc = -1;

	if (n == 0)
		return 0;
	if (jn_prepare(j, RAISE_SQL, &s, err, errlen) < 0)
		return -1;
	for (i = 0; i < n; i++) {
		sqlite3_bind_text(s, 1, off[i].topic, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int(s, 2, off[i].partition);
		sqlite3_bind_int64(s, 3, off[i].offset);
		if (jn_step_done(j, s, "cursor", err, errlen) < 0)
			goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(s);
	return rc;
}

static int
load_offsets(struct journal *j, const char *sql, struct journal_offset **out, size_t *n, char *err,
    size_t errlen)
{
	sqlite3_stmt *s = NULL;
	size_t cap = 0;
	int r, rc = -1;

	*out = NULL;
	*n = 0;
	if (jn_prepare(j, sql, &s, err, errlen) < 0)
		return -1;
	while ((r = sqlite3_step(s)) == SQLITE_ROW) {
		if (grow((void **)out, &cap, *n, sizeof(**out)) < 0) {
			snprintf(err, errlen, "journal: out of memory");
			goto out;
		}
		copy_text((*out)[*n].topic, sizeof((*out)[*n].topic), s, 0);
		(*out)[*n].partition = sqlite3_column_int(s, 1);
		(*out)[*n].offset = sqlite3_column_int64(s, 2);
		(*n)++;
	}
	if (r != SQLITE_DONE) {
		jn_fail(j, "offsets", err, errlen);
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(s);
	if (rc < 0) {
		free(*out);
		*out = NULL;
		*n = 0;
	}
	return rc;
}

int
journal_cursors(struct journal *j, struct journal_offset **out, size_t *n, char *err, size_t errlen)
{
	return load_offsets(j,
	    "SELECT topic, partition, next_offset FROM partition_cursor "
	    "ORDER BY topic, partition",
	    out, n, err, errlen);
}

int
journal_cursors_raise(
    struct journal *j, const struct journal_offset *off, size_t n, char *err, size_t errlen)
{
	if (jn_exec(j, "BEGIN IMMEDIATE", err, errlen) < 0)
		return -1;
	if (raise_all(j, off, n, err, errlen) < 0 || jn_exec(j, "COMMIT", err, errlen) < 0) {
		jn_rollback(j);
		return -1;
	}
	return 0;
}

int
journal_window_begin(struct journal *j, const struct journal_event *ev, size_t n,
    const struct journal_offset *start, size_t nstart, char *err, size_t errlen)
{
	return journal_window_begin_epoch(j, 0, ev, n, start, nstart, err, errlen);
}

int
journal_window_begin_epoch(struct journal *j, int64_t epoch, const struct journal_event *ev,
    size_t n, const struct journal_offset *start, size_t nstart, char *err, size_t errlen)
{
	sqlite3_stmt *si = NULL, *so = NULL, *se = NULL;
	size_t i;
	int rc = -1;

	if (jn_exec(j, "BEGIN IMMEDIATE", err, errlen) < 0)
		return -1;
	if (jn_exec(j, "DELETE FROM window; DELETE FROM window_offsets", err, errlen) < 0 ||
	    jn_prepare(j, "INSERT OR REPLACE INTO meta VALUES ('window_epoch', ?)", &se, err,
	        errlen) < 0 ||
	    jn_prepare(j, "INSERT INTO window VALUES (?, ?, ?, ?)", &si, err, errlen) < 0 ||
	    jn_prepare(j, "INSERT INTO window_offsets VALUES (?, ?, ?)", &so, err, errlen) < 0)
		goto out;
	sqlite3_bind_int64(se, 1, epoch);
	if (jn_step_done(j, se, "window epoch", err, errlen) < 0)
		goto out;
	for (i = 0; i < n; i++) {
		sqlite3_bind_int64(si, 1, ev[i].seq);
		sqlite3_bind_text(si, 2, ev[i].event_id, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(si, 3, ev[i].topic, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int(si, 4, ev[i].partition);
		if (jn_step_done(j, si, "window", err, errlen) < 0)
			goto out;
	}
	for (i = 0; i < nstart; i++) {
		sqlite3_bind_text(so, 1, start[i].topic, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int(so, 2, start[i].partition);
		sqlite3_bind_int64(so, 3, start[i].offset);
		if (jn_step_done(j, so, "window offsets", err, errlen) < 0)
			goto out;
	}
	if (jn_exec(j, "COMMIT", err, errlen) < 0)
		goto out;
	rc = 0;
out:
	sqlite3_finalize(si);
	sqlite3_finalize(so);
	sqlite3_finalize(se);
	if (rc < 0)
		jn_rollback(j);
	return rc;
}

int
journal_window_epoch(struct journal *j, int64_t *epoch, char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	int r;

	*epoch = 0;
	if (jn_prepare(j, "SELECT value FROM meta WHERE key = 'window_epoch'", &s, err, errlen) < 0)
		return -1;
	r = sqlite3_step(s);
	if (r == SQLITE_ROW)
		*epoch = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	if (r != SQLITE_ROW && r != SQLITE_DONE)
		return jn_fail(j, "window epoch", err, errlen);
	return 0;
}

int
journal_window_discard(struct journal *j, char *err, size_t errlen)
{
	if (jn_exec(j, "BEGIN IMMEDIATE", err, errlen) < 0)
		return -1;
	if (jn_exec(j, "DELETE FROM window; DELETE FROM window_offsets", err, errlen) < 0 ||
	    jn_exec(j, "COMMIT", err, errlen) < 0) {
		jn_rollback(j);
		return -1;
	}
	return 0;
}

int
journal_window_load(struct journal *j, struct journal_event **ev, size_t *n,
    struct journal_offset **start, size_t *nstart, char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	size_t cap = 0;
	int r, rc = -1;

	*ev = NULL;
	*n = 0;
	*start = NULL;
	*nstart = 0;
	if (jn_prepare(j, "SELECT seq, event_id, topic, partition FROM window ORDER BY seq", &s,
	        err, errlen) < 0)
		return -1;
	while ((r = sqlite3_step(s)) == SQLITE_ROW) {
		if (grow((void **)ev, &cap, *n, sizeof(**ev)) < 0) {
			snprintf(err, errlen, "journal: out of memory");
			goto out;
		}
		(*ev)[*n].seq = sqlite3_column_int64(s, 0);
		copy_text((*ev)[*n].event_id, sizeof((*ev)[*n].event_id), s, 1);
		copy_text((*ev)[*n].topic, sizeof((*ev)[*n].topic), s, 2);
		(*ev)[*n].partition = sqlite3_column_int(s, 3);
		(*n)++;
	}
	if (r != SQLITE_DONE) {
		jn_fail(j, "window", err, errlen);
		goto out;
	}
	if (load_offsets(j,
	        "SELECT topic, partition, start_offset FROM window_offsets "
	        "ORDER BY topic, partition",
	        start, nstart, err, errlen) < 0)
		goto out;
	rc = 0;
out:
	sqlite3_finalize(s);
	if (rc < 0) {
		free(*ev);
		*ev = NULL;
		*n = 0;
	}
	return rc;
}

int
journal_window_end(struct journal *j, int64_t max_seq, const struct journal_offset *next,
    size_t nnext, const struct journal_dlq *dlq, size_t ndlq, char *err, size_t errlen)
{
	sqlite3_stmt *m = NULL, *d = NULL;
	size_t i;
	int rc = -1;

	if (jn_exec(j, "BEGIN IMMEDIATE", err, errlen) < 0)
		return -1;
	if (jn_exec(j,
	        "DELETE FROM window; DELETE FROM window_offsets;"
	        "UPDATE meta SET value = value + 1 WHERE key = 'windows'",
	        err, errlen) < 0 ||
	    jn_prepare(j, "UPDATE meta SET value = max(value, ?) WHERE key = 'max_published_seq'",
	        &m, err, errlen) < 0 ||
	    jn_prepare(j,
	        "INSERT OR REPLACE INTO dlq VALUES (?, ?, ?, ?, strftime('%Y-%m-%dT%H:%M:%fZ'))",
	        &d, err, errlen) < 0)
		goto out;
	sqlite3_bind_int64(m, 1, max_seq);
	if (jn_step_done(j, m, "cursor", err, errlen) < 0 ||
	    raise_all(j, next, nnext, err, errlen) < 0)
		goto out;
	for (i = 0; i < ndlq; i++) {
		sqlite3_bind_int64(d, 1, dlq[i].seq);
		sqlite3_bind_text(d, 2, dlq[i].event_id, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(d, 3, dlq[i].error, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int(d, 4, dlq[i].retry_count);
		if (jn_step_done(j, d, "dlq", err, errlen) < 0)
			goto out;
	}
	if (jn_exec(j, "COMMIT", err, errlen) < 0)
		goto out;
	rc = 0;
out:
	sqlite3_finalize(m);
	sqlite3_finalize(d);
	if (rc < 0)
		jn_rollback(j);
	return rc;
}
