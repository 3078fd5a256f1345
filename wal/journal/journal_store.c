/* SPDX-License-Identifier: MIT */
/*
 * journal_store.c — opening, locking and describing the relay journal
 * (see journal.h for the contract).
 *
 * journal_mode=WAL with synchronous=FULL makes every COMMIT return only
 * after the WAL is fsynced: the relay produces only what the journal
 * already knows, and acknowledges only what it has durably recorded.
 */
#include "journal_int.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>

static const char *schema =
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS window (seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL,"
    "  topic TEXT NOT NULL, partition INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS window_offsets (topic TEXT NOT NULL, partition INTEGER NOT NULL,"
    "  start_offset INTEGER NOT NULL, PRIMARY KEY (topic, partition));"
    "CREATE TABLE IF NOT EXISTS partition_cursor (topic TEXT NOT NULL, partition INTEGER NOT NULL,"
    "  next_offset INTEGER NOT NULL, PRIMARY KEY (topic, partition));"
    "CREATE TABLE IF NOT EXISTS failures (seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL,"
    "  count INTEGER NOT NULL, last_error TEXT, updated_at TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS dlq (seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL,"
    "  error TEXT NOT NULL, retry_count INTEGER NOT NULL, failed_at TEXT NOT NULL);"
    "INSERT OR IGNORE INTO meta VALUES ('max_published_seq', 0), ('windows', 0);";

int
jn_fail(struct journal *j, const char *what, char *err, size_t errlen)
{
	snprintf(err, errlen, "journal %s: %s", what, sqlite3_errmsg(j->db));
	return -1;
}

int
jn_exec(struct journal *j, const char *sql, char *err, size_t errlen)
{
	char *msg = NULL;

	if (sqlite3_exec(j->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, errlen, "journal: %s", msg ? msg : sqlite3_errmsg(j->db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

int
jn_prepare(struct journal *j, const char *sql, sqlite3_stmt **s, char *err, size_t errlen)
{
	if (sqlite3_prepare_v2(j->db, sql, -1, s, NULL) != SQLITE_OK)
		return jn_fail(j, "prepare", err, errlen);
	return 0;
}

int
jn_step_done(struct journal *j, sqlite3_stmt *s, const char *what, char *err, size_t errlen)
{
	int r = sqlite3_step(s);

	if (r != SQLITE_DONE) {
		jn_fail(j, what, err, errlen);
		sqlite3_reset(s);
		return -1;
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return 0;
}

void
jn_rollback(struct journal *j)
{
	if (!sqlite3_get_autocommit(j->db))
		sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL);
}

/* Reads one PRAGMA's text value into out. */
static int
pragma_text(struct journal *j, const char *sql, char *out, size_t outlen, char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	int rc = -1;

	if (jn_prepare(j, sql, &s, err, errlen) < 0)
		return -1;
	if (sqlite3_step(s) != SQLITE_ROW) {
		jn_fail(j, sql, err, errlen);
		goto out;
	}
	snprintf(out, outlen, "%s", (const char *)sqlite3_column_text(s, 0));
	rc = 0;
out:
	sqlite3_finalize(s);
	return rc;
}

int
journal_lock(const char *path, int *fd, char *err, size_t errlen)
{
	char lockpath[512];

	*fd = -1;
	if (util_fmt(lockpath, sizeof(lockpath), "%s.lock", path) < 0) {
		snprintf(err, errlen, "journal path too long");
		return -1;
	}
	/* One relay per journal: a second one would publish the same rows. */
	*fd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (*fd < 0) {
		snprintf(err, errlen, "journal lock %s: %s", lockpath, strerror(errno));
		return -1;
	}
	if (flock(*fd, LOCK_EX | LOCK_NB) < 0) {
		snprintf(err, errlen, "journal %s is locked by another relay (%s)", path,
		    strerror(errno));
		close(*fd);
		*fd = -1;
		return -1;
	}
	return 0;
}

int
journal_open(const char *path, int lock_fd, struct journal **out, char *err, size_t errlen)
{
	struct journal *j = xcalloc(1, sizeof(*j));
	char mode[32];
	int rc = -1;

	*out = NULL;
	j->lock_fd = lock_fd;
	if (j->lock_fd < 0 && journal_lock(path, &j->lock_fd, err, errlen) < 0)
		goto out;
	if (sqlite3_open_v2(path, &j->db,
	        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
	        NULL) != SQLITE_OK) {
		snprintf(err, errlen, "journal %s: %s", path,
		    j->db ? sqlite3_errmsg(j->db) : "out of memory");
		goto out;
	}
	/* Nobody else writes this file (the flock); waiting only covers an
	 * operator's sqlite3 shell reading it. */
	sqlite3_busy_timeout(j->db, 1000);
	if (pragma_text(j, "PRAGMA journal_mode=WAL", mode, sizeof(mode), err, errlen) < 0)
		goto out;
	if (strcmp(mode, "wal") != 0) {
		snprintf(err, errlen, "journal %s: cannot enter WAL mode (got %s)", path, mode);
		goto out;
	}
	if (jn_exec(j, "PRAGMA synchronous=FULL", err, errlen) < 0 ||
	    jn_exec(j, schema, err, errlen) < 0)
		goto out;
	*out = j;
	j = NULL;
	rc = 0;
out:
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
count_of(struct journal *j, const char *sql, int64_t *v, char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	int rc = -1;

	if (jn_prepare(j, sql, &s, err, errlen) < 0)
		return -1;
	if (sqlite3_step(s) != SQLITE_ROW) {
		jn_fail(j, "stats", err, errlen);
		goto out;
	}
	*v = sqlite3_column_int64(s, 0);
	rc = 0;
out:
	sqlite3_finalize(s);
	return rc;
}

int
journal_stats(struct journal *j, struct journal_stats *st, char *err, size_t errlen)
{
	memset(st, 0, sizeof(*st));
	if (count_of(j, "SELECT value FROM meta WHERE key = 'max_published_seq'",
	        &st->max_published_seq, err, errlen) < 0 ||
	    count_of(j, "SELECT value FROM meta WHERE key = 'windows'", &st->windows, err, errlen) <
	        0 ||
	    count_of(j, "SELECT count(*) FROM dlq", &st->dlq, err, errlen) < 0 ||
	    count_of(j, "SELECT count(*) FROM window", &st->open_window, err, errlen) < 0 ||
	    count_of(j, "PRAGMA synchronous", &st->synchronous, err, errlen) < 0)
		return -1;
	return 0;
}
