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

struct relay_scan_part {
	char    topic[128];
	int32_t partition;
	int64_t start;
	int64_t end;		/* out: high watermark at scan time */
};

typedef void (*relay_scan_fn)(void *arg, const char *topic, int32_t partition, int64_t offset,
    const char *event_id, const char *value, size_t len);

int relay_recover_scan(const char *brokers, struct relay_scan_part *parts, size_t n,
    relay_scan_fn fn, void *arg, int timeout_ms, char *err, size_t errlen);

#endif
