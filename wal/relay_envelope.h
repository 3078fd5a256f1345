/*
 * relay_envelope.h — turning an outbox row into a Kafka message, as pure
 * functions (unit-tested and fuzzable).
 *
 * Contract: relay_envelope() validates the row and returns 0 with a
 * malloc'd compact JSON envelope
 *   {event_id, aggregate_type, aggregate_id, event_type, payload, timestamp}
 * or -1 with a reason when the row is poison (payload not a JSON object,
 * missing payment_id/status, unknown event type): such rows go to the DLQ
 * instead of blocking the stream. relay_topic() maps an event type to
 * "<prefix>.<lowercased type>". relay_dlq_record() builds the DLQ value:
 * the envelope (or the raw row when there is none) plus retry_count,
 * failed_at and error. relay_backoff_ms() is the retry delay for attempt n
 * (exponential, capped, with +-25% jitter from the caller's random value).
 */
#ifndef PAYMENTD_RELAY_ENVELOPE_H
#define PAYMENTD_RELAY_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

struct relay_row {
	int64_t     seq;
	const char *event_id;
	const char *aggregate_type;
	const char *aggregate_id;
	const char *partition_key;
	const char *event_type;
	const char *payload;		/* JSON text */
	const char *correlation_id;
	const char *created_at;		/* RFC 3339 */
	int         retry_count;
};

int   relay_envelope(const struct relay_row *r, char **out, char *why, size_t whylen);
int   relay_topic(const char *prefix, const char *event_type, char *out, size_t outlen);
char *relay_dlq_record(const struct relay_row *r, const char *envelope, int retry_count,
          const char *failed_at, const char *error);
int64_t relay_backoff_ms(int attempt, double base_s, double max_s, uint32_t rnd);

#endif
