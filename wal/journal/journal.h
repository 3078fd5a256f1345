/* SPDX-License-Identifier: MIT */
/*
 * journal.h — the relay's local SQLite journal (WAL mode, synchronous=FULL).
 *
 * Contract: every function returns 0 on success and -1 with err filled on
 * failure. A failure means durability is in doubt: the caller must stop
 * (payment-relay calls fatal()), because nothing may be acknowledged that
 * is not on disk. Every write is one SQLite transaction, durable when the
 * call returns. The journal holds
 *   - the in-flight window: the events handed to the producer and not yet
 *     settled, each with its topic-partition, plus the offset of every
 *     involved partition before the window (where a recovery scan starts);
 *   - the publish cursors: per topic-partition the next offset after the
 *     relay's last confirmed message, and the highest outbox seq published;
 *   - per-event failure counts and the DLQ records.
 * One process owns a journal at a time: journal_lock()/journal_open() take
 * an exclusive flock on "<path>.lock" and fail if another process holds it.
 * Arrays returned through pointers are malloc'd and owned by the caller.
 */
#ifndef PAYMENTD_JOURNAL_H
#define PAYMENTD_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

struct journal;

#define JOURNAL_TOPIC_MAX 128

struct journal_event {
	int64_t seq;
	char event_id[40];
	char topic[JOURNAL_TOPIC_MAX];
	int32_t partition;
};

struct journal_offset {
	char topic[JOURNAL_TOPIC_MAX];
	int32_t partition;
	int64_t offset;
};

struct journal_dlq {
	int64_t seq;
	const char *event_id;
	const char *error;
	int retry_count;
};

struct journal_stats {
	int64_t max_published_seq; /* highest outbox seq that reached the broker */
	int64_t windows;           /* windows settled since the journal was created */
	int64_t dlq;               /* DLQ records */
	int64_t open_window;       /* events in the unsettled window (0: none) */
	int64_t synchronous;       /* this connection's PRAGMA synchronous (2 = FULL) */
};

/* Takes the journal's lock (an exclusive flock on "<path>.lock") into *fd;
 * fails if another process holds it. For callers that must lock before
 * they lose the right to flock (the relay's seccomp profile). */
int journal_lock(const char *path, int *fd, char *err, size_t errlen);
/* Opens (creating) the journal. lock_fd is journal_lock()'s descriptor,
 * whose ownership passes to the journal (closed on failure too), or -1 to
 * take the lock here. */
int journal_open(const char *path, int lock_fd, struct journal **out, char *err, size_t errlen);
void journal_close(struct journal *j);

int journal_stats(struct journal *j, struct journal_stats *st, char *err, size_t errlen);

/* Publish cursors of every known partition. */
int journal_cursors(
    struct journal *j, struct journal_offset **out, size_t *n, char *err, size_t errlen);
/* Raises cursors (never lowers one: a stale value only widens a scan). */
int journal_cursors_raise(
    struct journal *j, const struct journal_offset *off, size_t n, char *err, size_t errlen);

/* Records a window, replacing any previous one, in one durable commit. */
int journal_window_begin(struct journal *j, const struct journal_event *ev, size_t n,
    const struct journal_offset *start, size_t nstart, char *err, size_t errlen);
/* The same, recording the lease epoch the window was opened under. */
int journal_window_begin_epoch(struct journal *j, int64_t epoch, const struct journal_event *ev,
    size_t n, const struct journal_offset *start, size_t nstart, char *err, size_t errlen);
/* The epoch of the last window begun (0: none recorded). */
int journal_window_epoch(struct journal *j, int64_t *epoch, char *err, size_t errlen);
/* Drops the unsettled window without settling it: Postgres, which holds
 * the truth the journal caches, says it is settled or another epoch's. */
int journal_window_discard(struct journal *j, char *err, size_t errlen);
/* Loads the unsettled window (n == 0: none). */
int journal_window_load(struct journal *j, struct journal_event **ev, size_t *n,
    struct journal_offset **start, size_t *nstart, char *err, size_t errlen);
/* Settles the window in one durable commit: clears it, raises the cursors
 * to next[], the published seq to max_seq, and records the DLQ entries. */
int journal_window_end(struct journal *j, int64_t max_seq, const struct journal_offset *next,
    size_t nnext, const struct journal_dlq *dlq, size_t ndlq, char *err, size_t errlen);

/* Adds one failure to seq's count; *count gets the new total. */
int journal_failure(struct journal *j, int64_t seq, const char *event_id, const char *error,
    int *count, char *err, size_t errlen);
/* Current failure count of seq (0 if none). */
int journal_failures_of(struct journal *j, int64_t seq, int *count, char *err, size_t errlen);

#endif
