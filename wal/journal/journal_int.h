/* SPDX-License-Identifier: MIT */
/*
 * journal_int.h — what the journal_*.c files share (not for callers).
 *
 * Contract: jn_fail() formats SQLite's current error into err and returns
 * -1; jn_exec() runs SQL without parameters (schema, BEGIN/COMMIT only);
 * jn_step_done() steps a statement that returns no row and resets it;
 * jn_rollback() undoes an open transaction after a failure.
 */
#ifndef PAYMENTD_JOURNAL_INT_H
#define PAYMENTD_JOURNAL_INT_H

#include "journal.h"

#include <sqlite3.h>

struct journal {
	sqlite3 *db;
	int lock_fd;
};

int jn_fail(struct journal *j, const char *what, char *err, size_t errlen);
int jn_exec(struct journal *j, const char *sql, char *err, size_t errlen);
int jn_prepare(struct journal *j, const char *sql, sqlite3_stmt **s, char *err, size_t errlen);
int jn_step_done(struct journal *j, sqlite3_stmt *s, const char *what, char *err, size_t errlen);
void jn_rollback(struct journal *j);

#endif
