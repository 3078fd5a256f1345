/*
 * journal.c — the relay's SQLite journal (see journal.h).
 *
 * Every write is one transaction; with journal_mode=WAL and
 * synchronous=FULL a COMMIT returns only after the WAL is fsynced, which
 * is the point: the relay produces only what the journal already knows.
 */
#include "journal.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sqlite3.h>

struct journal {
	sqlite3 *db;
	int      lock_fd;
};

static const char *schema =
	"PRAGMA journal_mode=WAL;"
	"PRAGMA synchronous=FULL;"
	"CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS window (seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL,"
	"  topic TEXT NOT NULL);"
	"CREATE TABLE IF NOT EXISTS window_offsets (topic TEXT NOT NULL, partition INTEGER NOT NULL,"
	"  start_offset INTEGER NOT NULL, PRIMARY KEY (topic, partition));"
	"CREATE TABLE IF NOT EXISTS partition_cursor (topic TEXT NOT NULL, partition INTEGER NOT NULL,"
	"  next_offset INTEGER NOT NULL, PRIMARY KEY (topic, partition));"
	"CREATE TABLE IF NOT EXISTS failures (seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL,"
	"  count INTEGER NOT NULL, last_error TEXT, updated_at TEXT NOT NULL);"
	"CREATE TABLE IF NOT EXISTS dlq (seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL,"
	"  error TEXT NOT NULL, retry_count INTEGER NOT NULL, failed_at TEXT NOT NULL);"
	"INSERT OR IGNORE INTO meta VALUES ('max_published_seq', 0), ('windows', 0);";

static int
fail(struct journal *j, const char *what, char *err, size_t errlen)
{
	snprintf(err, errlen, "journal %s: %s", what, sqlite3_errmsg(j->db));
	return -1;
}

static int
exec(struct journal *j, const char *sql, char *err, size_t errlen)
{
	char *msg = NULL;

	if (sqlite3_exec(j->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, errlen, "journal: %s", msg ? msg : "?");
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

int
journal_open(const char *path, struct journal **out, char *err, size_t errlen)
{
	struct journal *j = xcalloc(1, sizeof(*j));
	char lockpath[512];
	int rc = -1;

	*out = NULL;
	j->lock_fd = -1;
	if (util_fmt(lockpath, sizeof(lockpath), "%s.lock", path) < 0) {
		snprintf(err, errlen, "journal path too long");
		goto out;
	}
	/* One relay per journal: a second one would double-publish. */
	j->lock_fd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (j->lock_fd < 0) {
		snprintf(err, errlen, "journal lock %s: %s", lockpath, strerror(errno));
		goto out;
	}
	if (flock(j->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		snprintf(err, errlen, "journal %s is in use by another relay", path);
		goto out;
	}
	if (sqlite3_open_v2(path, &j->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
	    SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "journal %s: %s", path, j->db ? sqlite3_errmsg(j->db) : "out of memory");
		goto out;
	}
	sqlite3_busy_timeout(j->db, 5000);
	if (exec(j, schema, err, errlen) < 0)
		goto out;
	*out = j;
	j = NULL;
	rc = 0;
out:
	if (j)
		journal_close(j);
	return rc;
}

void
journal_close(struct journal *j)
{
	if (j == NULL)
		return;
	if (j->db)
		sqlite3_close(j->db);
	if (j->lock_fd >= 0)
		close(j->lock_fd);
	free(j);
}

static int
step_done(struct journal *j, sqlite3_stmt *s, const char *what, char *err, size_t errlen)
{
	int r = sqlite3_step(s);

	sqlite3_reset(s);
	if (r != SQLITE_DONE)
		return fail(j, what, err, errlen);
	return 0;
}

int
journal_window_begin(struct journal *j, const struct journal_event *ev, size_t n,
    const struct journal_offset *off, size_t noff, char *err, size_t errlen)
{
	sqlite3_stmt *si = NULL, *so = NULL;
	size_t i;
	int rc = -1;

	if (exec(j, "BEGIN IMMEDIATE; DELETE FROM window; DELETE FROM window_offsets;", err, errlen) < 0)
		return -1;
	if (sqlite3_prepare_v2(j->db, "INSERT INTO window VALUES (?, ?, ?)", -1, &si, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(j->db, "INSERT INTO window_offsets VALUES (?, ?, ?)", -1, &so, NULL) != SQLITE_OK) {
		fail(j, "prepare", err, errlen);
		goto out;
	}
	for (i = 0; i < n; i++) {
		sqlite3_bind_int64(si, 1, ev[i].seq);
		sqlite3_bind_text(si, 2, ev[i].event_id, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(si, 3, ev[i].topic, -1, SQLITE_TRANSIENT);
		if (step_done(j, si, "window insert", err, errlen) < 0)
			goto out;
	}
	for (i = 0; i < noff; i++) {
		sqlite3_bind_text(so, 1, off[i].topic, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int(so, 2, off[i].partition);
		sqlite3_bind_int64(so, 3, off[i].offset);
		if (step_done(j, so, "window offsets", err, errlen) < 0)
			goto out;
	}
	if (exec(j, "COMMIT", err, errlen) < 0)
		goto out;
	rc = 0;
out:
	sqlite3_finalize(si);
	sqlite3_finalize(so);
	if (rc < 0)
		sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

int
journal_window_load(struct journal *j, struct journal_event **ev, size_t *n,
    struct journal_offset **off, size_t *noff, char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	size_t cap = 0;
	int r, rc = -1;

	*ev = NULL; *n = 0; *off = NULL; *noff = 0;
	if (sqlite3_prepare_v2(j->db, "SELECT seq, event_id, topic FROM window ORDER BY seq",
	    -1, &s, NULL) != SQLITE_OK)
		return fail(j, "prepare", err, errlen);
	while ((r = sqlite3_step(s)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 64;
			*ev = realloc(*ev, cap * sizeof(**ev));
			if (*ev == NULL)
				abort();
		}
		(*ev)[*n].seq = sqlite3_column_int64(s, 0);
		snprintf((*ev)[*n].event_id, sizeof((*ev)[*n].event_id), "%s", sqlite3_column_text(s, 1));
		snprintf((*ev)[*n].topic, sizeof((*ev)[*n].topic), "%s", sqlite3_column_text(s, 2));
		(*n)++;
	}
	if (r != SQLITE_DONE) {
		fail(j, "window load", err, errlen);
		goto out;
	}
	sqlite3_finalize(s);
	s = NULL;
	cap = 0;
	if (sqlite3_prepare_v2(j->db, "SELECT topic, partition, start_offset FROM window_offsets",
	    -1, &s, NULL) != SQLITE_OK) {
		fail(j, "prepare", err, errlen);
		goto out;
	}
	while ((r = sqlite3_step(s)) == SQLITE_ROW) {
		if (*noff == cap) {
			cap = cap ? cap * 2 : 16;
			*off = realloc(*off, cap * sizeof(**off));
			if (*off == NULL)
				abort();
		}
		snprintf((*off)[*noff].topic, sizeof((*off)[*noff].topic), "%s", sqlite3_column_text(s, 0));
		(*off)[*noff].partition = sqlite3_column_int(s, 1);
		(*off)[*noff].offset = sqlite3_column_int64(s, 2);
		(*noff)++;
	}
	if (r != SQLITE_DONE) {
		fail(j, "offsets load", err, errlen);
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(s);
	if (rc < 0) {
		free(*ev); free(*off);
		*ev = NULL; *off = NULL; *n = *noff = 0;
	}
	return rc;
}

int
journal_window_end(struct journal *j, int64_t max_seq, const struct journal_offset *next,
    size_t nnext, char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL, *m = NULL;
	size_t i;
	int rc = -1;

	if (exec(j, "BEGIN IMMEDIATE; DELETE FROM window; DELETE FROM window_offsets;"
	    "UPDATE meta SET value = value + 1 WHERE key = 'windows';", err, errlen) < 0)
		return -1;
	if (sqlite3_prepare_v2(j->db, "UPDATE meta SET value = max(value, ?) WHERE key = 'max_published_seq'",
	    -1, &m, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(j->db, "INSERT INTO partition_cursor VALUES (?, ?, ?) ON CONFLICT (topic, partition) "
	    "DO UPDATE SET next_offset = max(next_offset, excluded.next_offset)", -1, &s, NULL) != SQLITE_OK) {
		fail(j, "prepare", err, errlen);
		goto out;
	}
	sqlite3_bind_int64(m, 1, max_seq);
	if (step_done(j, m, "cursor", err, errlen) < 0)
		goto out;
	for (i = 0; i < nnext; i++) {
		sqlite3_bind_text(s, 1, next[i].topic, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int(s, 2, next[i].partition);
		sqlite3_bind_int64(s, 3, next[i].offset);
		if (step_done(j, s, "partition cursor", err, errlen) < 0)
			goto out;
	}
	if (exec(j, "COMMIT", err, errlen) < 0)
		goto out;
	rc = 0;
out:
	sqlite3_finalize(s);
	sqlite3_finalize(m);
	if (rc < 0)
		sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

static int
meta_get(struct journal *j, const char *key, int64_t *v, char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	int rc = -1;

	if (sqlite3_prepare_v2(j->db, "SELECT value FROM meta WHERE key = ?", -1, &s, NULL) != SQLITE_OK)
		return fail(j, "prepare", err, errlen);
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	if (sqlite3_step(s) == SQLITE_ROW) {
		*v = sqlite3_column_int64(s, 0);
		rc = 0;
	} else {
		fail(j, key, err, errlen);
	}
	sqlite3_finalize(s);
	return rc;
}

int
journal_cursor(struct journal *j, int64_t *max_seq, int64_t *windows, char *err, size_t errlen)
{
	if (meta_get(j, "max_published_seq", max_seq, err, errlen) < 0)
		return -1;
	return meta_get(j, "windows", windows, err, errlen);
}

int
journal_failure(struct journal *j, int64_t seq, const char *event_id, const char *error,
    int *count, char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	int rc = -1;

	if (sqlite3_prepare_v2(j->db, "INSERT INTO failures VALUES (?, ?, 1, ?, datetime('now')) "
	    "ON CONFLICT (seq) DO UPDATE SET count = count + 1, last_error = excluded.last_error, "
	    "updated_at = excluded.updated_at RETURNING count", -1, &s, NULL) != SQLITE_OK)
		return fail(j, "prepare", err, errlen);
	sqlite3_bind_int64(s, 1, seq);
	sqlite3_bind_text(s, 2, event_id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 3, error, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(s) == SQLITE_ROW) {
		*count = sqlite3_column_int(s, 0);
		rc = 0;
	} else {
		fail(j, "failure", err, errlen);
	}
	sqlite3_finalize(s);
	return rc;
}

int
journal_dlq(struct journal *j, int64_t seq, const char *event_id, const char *error,
    int retry_count, char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if (sqlite3_prepare_v2(j->db, "INSERT OR REPLACE INTO dlq VALUES (?, ?, ?, ?, datetime('now'))",
	    -1, &s, NULL) != SQLITE_OK)
		return fail(j, "prepare", err, errlen);
	sqlite3_bind_int64(s, 1, seq);
	sqlite3_bind_text(s, 2, event_id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 3, error, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(s, 4, retry_count);
	rc = sqlite3_step(s) == SQLITE_DONE ? 0 : fail(j, "dlq", err, errlen);
	sqlite3_finalize(s);
	return rc;
}

int
journal_dlq_count(struct journal *j, int64_t *n, char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	int rc = -1;

	if (sqlite3_prepare_v2(j->db, "SELECT count(*) FROM dlq", -1, &s, NULL) != SQLITE_OK)
		return fail(j, "prepare", err, errlen);
	if (sqlite3_step(s) == SQLITE_ROW) {
		*n = sqlite3_column_int64(s, 0);
		rc = 0;
	} else {
		fail(j, "dlq count", err, errlen);
	}
	sqlite3_finalize(s);
	return rc;
}
