/* SPDX-License-Identifier: MIT */
/*
 * relay_envelope.h — turning an outbox row into Kafka message bodies, as
 * pure functions (no I/O; unit-tested in tests/relay/relay_unit.c).
 *
 * Contract:
 *  - relay_envelope() validates the row against schemas/ (envelope plus the
 *    event type's payload schema) and returns 0 with a malloc'd compact
 *    JSON envelope {event_id, aggregate_type, aggregate_id, event_type,
 *    payload, timestamp}, or -1 with the reason in why when the row is
 *    poison: such rows go to the DLQ instead of blocking the stream.
 *  - relay_classify() decides what a row becomes: its envelope (returns
 *    0), or a DLQ record (returns 1) when the row is poison, out of retries
 *    (retry_count >= max_retries > 0), marked "permanent: " by an earlier
 *    failure, or too large for a message of max_bytes; error then says
 *    why. *value is malloc'd. -1: out of memory.
 *  - relay_topic() maps an event type to "<prefix>.<lowercased type>".
 *  - relay_dlq_record() builds the DLQ value (schemas/dlq-record.schema.json):
 *    {envelope, outbox_seq, retry_count, failed_at, error}. With
 *    envelope == NULL (poison, or too large to repeat) the record's envelope
 *    carries the row's identity and raw_payload, the payload text cut to
 *    RELAY_RAW_PAYLOAD_MAX bytes on a UTF-8 boundary. Returns malloc'd JSON
 *    or NULL on allocation failure.
 *  - relay_backoff_ms() is backoff_delay() (common/backoff.h) for the
 *    relay's settings: base and max in seconds, the delay in milliseconds,
 *    never less than 1.
 *  - relay_utf8_cut() is utf8_cut() (common/utf8.h), under the name the
 *    relay's unit tests use.
 */
#ifndef PAYMENTD_RELAY_ENVELOPE_H
#define PAYMENTD_RELAY_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#define RELAY_RAW_PAYLOAD_MAX 500

struct relay_row {
	int64_t seq;
	const char *event_id;
	const char *aggregate_type;
	const char *aggregate_id;
	const char *partition_key;
	const char *event_type;
	const char *payload; /* JSON text */
	const char *correlation_id;
	const char *created_at; /* RFC 3339 */
	int retry_count;
	const char *last_error;
	/* The acting client (outbox.client_name); NULL for rows written
	 * before migration 0003. A Kafka header, never in the payload. */
	const char *client_name;
};

/* The event types the relay publishes, in topic-id order (relay_kafka.h),
 * NULL-terminated; relay_event_topic() is a type's index, or -1. */
extern const char *const relay_event_types[];
int relay_event_topic(const char *event_type);
int relay_envelope(const struct relay_row *r, char **out, char *why, size_t whylen);
int relay_classify(const struct relay_row *r, int max_retries, size_t max_bytes, const char *now,
    char **value, char *error, size_t errlen);
int relay_topic(const char *prefix, const char *event_type, char *out, size_t outlen);
char *relay_dlq_record(const struct relay_row *r, const char *envelope, int retry_count,
    const char *failed_at, const char *error);
int64_t relay_backoff_ms(int attempt, double base_s, double max_s, uint32_t rnd);
size_t relay_utf8_cut(const char *s, size_t max);
/* RFC 3339 date-time as JSON Schema's "date-time" format accepts it. */
int relay_is_datetime(const char *s);

#endif
