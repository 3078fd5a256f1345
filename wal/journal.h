/*
 * journal.h — the relay's local SQLite journal (WAL mode, synchronous=FULL).
 *
 * Contract: every function returns 0 on success and -1 with err filled on
 * failure; a failure means durability is in doubt and the caller must stop
 * (the relay calls fatal()): nothing is acknowledged that is not on disk.
 * The journal holds
 *   - the in-flight window: events handed to the producer but not yet
 *     confirmed as published in Postgres, with the partition end offsets
 *     taken before producing (where a recovery scan starts);
 *   - the cursor: highest outbox seq published, per-partition next offsets;
 *   - per-event failure counts and the DLQ record.
 * One relay owns a journal at a time (flock on the file).
 */
#ifndef PAYMENTD_JOURNAL_H
#define PAYMENTD_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

struct journal;

struct journal_event {
	int64_t seq;
	char    event_id[40];
	char    topic[128];
};

struct journal_offset {
	char    topic[128];
	int32_t partition;
	int64_t offset;
};

int  journal_open(const char *path, struct journal **out, char *err, size_t errlen);
void journal_close(struct journal *j);
/* Records a window (replacing any previous one) in one durable commit. */
int  journal_window_begin(struct journal *j, const struct journal_event *ev, size_t n,
         const struct journal_offset *off, size_t noff, char *err, size_t errlen);
/* Loads the pending window; *ev / *off are malloc'd (caller frees). */
int  journal_window_load(struct journal *j, struct journal_event **ev, size_t *n,
         struct journal_offset **off, size_t *noff, char *err, size_t errlen);
/* Clears the window and advances the cursor in one durable commit. */
int  journal_window_end(struct journal *j, int64_t max_seq, const struct journal_offset *next,
         size_t nnext, char *err, size_t errlen);
int  journal_cursor(struct journal *j, int64_t *max_seq, int64_t *windows, char *err, size_t errlen);
/* Adds one failure to seq's count; *count gets the new total. */
int  journal_failure(struct journal *j, int64_t seq, const char *event_id, const char *error,
         int *count, char *err, size_t errlen);
int  journal_dlq(struct journal *j, int64_t seq, const char *event_id, const char *error,
         int retry_count, char *err, size_t errlen);
int  journal_dlq_count(struct journal *j, int64_t *n, char *err, size_t errlen);

#endif
