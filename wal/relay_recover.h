/* SPDX-License-Identifier: MIT */
/*
 * relay_recover.h — reading back what a window left on the broker.
 *
 * Contract: relay_recover_scan() reads every listed partition from its
 * start offset up to the high watermark it finds when called (recorded in
 * parts[i].end) with a throw-away consumer (assign + seek, no group
 * commits), and calls fn for each message that carries an event_id header.
 * Returns 0 once every partition was read to its end, or -1 with err when
 * the broker could not be reached or made no progress for timeout_ms (the
 * caller backs off and scans again; fn may then see messages twice and
 * must be idempotent).
 */
#ifndef PAYMENTD_RELAY_RECOVER_H
#define PAYMENTD_RELAY_RECOVER_H

#include <stddef.h>
#include <stdint.h>

#include "journal/journal.h"
#include "relay_retry.h"

struct relay_scan_part {
	char topic[128];
	int32_t partition;
	int64_t start;
	int64_t end; /* out: high watermark at scan time */
};

typedef void (*relay_scan_fn)(void *arg, const char *topic, int32_t partition, int64_t offset,
    const char *event_id, const char *value, size_t len);

int relay_recover_scan(const char *brokers, struct relay_scan_part *parts, size_t n,
    relay_scan_fn fn, void *arg, int timeout_ms, char *err, size_t errlen);

/* One event of a journaled window, and whether the scan found it. */
struct relay_found {
	struct journal_event ev;
	int hit;         /* on the broker, on ev.topic */
	int dlq;         /* ev.topic is the DLQ topic ... */
	char error[512]; /* ... and this is the DLQ record's error */
	int retry_count; /* ... and its retry_count */
};

/*
 * relay_recover_window() resolves a journaled window (journal_window_load:
 * ev[n], start[nstart]): it scans the partitions from their start offsets,
 * retrying with retry (relay_retry.h) while the broker is away, and
 * returns every event in *found (malloc'd, n of them, in event_id order)
 * with hit set for those found on their own topic — a DLQ copy of an
 * event is not the event, nor the other way round. next[] (the caller's,
 * nstart entries) gets each partition's cursor past what the scan read.
 * 0, or -1 when stopping.
 */
int relay_recover_window(const char *brokers, const char *dlq_topic, const struct journal_event *ev,
    size_t n, const struct journal_offset *start, size_t nstart, const struct relay_retry *retry,
    struct relay_found **found, struct journal_offset *next);

#endif
