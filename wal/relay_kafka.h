/* SPDX-License-Identifier: MIT */
/*
 * relay_kafka.h — the relay's producer: librdkafka with
 * enable.idempotence=true, acks=all, transactional (a message lives as long
 * as its transaction may: transaction.timeout.ms), plus
 * the metadata it needs to know in advance where each message will land.
 *
 * Contract: the relay chooses every message's partition itself, with
 * librdkafka's Java-compatible murmur2 hash of the key (the payer account
 * id) over the partition count it last read, so the journal can name the
 * partitions of a window before anything is produced. Delivery reports
 * reach on_delivery(msg_opaque, err, status, partition, offset) from
 * relay_kafka_poll(), on the caller's thread. Functions return 0, or -1
 * with err (broker unreachable, unknown topic: the caller backs off and
 * retries). relay_kafka_destroy() purges whatever is still queued: the
 * caller's journal decides what happened to it.
 *
 * Transactions: with a transactional_id the producer is transactional
 * (one Kafka transaction per window). relay_kafka_txn_init() must be called
 * once before the first produce, and only by the relay that holds the
 * lease: it fences every earlier producer of that id (their late produce
 * and commit fail with PRODUCER_FENCED) and completes or aborts their open
 * transaction, so a read_committed scan afterwards is decisive. The txn
 * calls return RELAY_K_OK, RELAY_K_RETRY (the broker is away: call again),
 * RELAY_K_ABORT (the transaction must be aborted; only commit) or
 * RELAY_K_FATAL (fenced, or otherwise unusable: destroy the producer).
 */
#ifndef PAYMENTD_RELAY_KAFKA_H
#define PAYMENTD_RELAY_KAFKA_H

#include <stddef.h>
#include <stdint.h>
#include <librdkafka/rdkafka.h>

#include "journal/journal.h"
#include "relay_retry.h"

/* One topic per event type, in the order of relay_event_types[]
 * (relay_envelope.h), then the DLQ. */
enum relay_topic_id {
	RELAY_T_AUTHORIZED,
	RELAY_T_DECLINED,
	RELAY_T_CAPTURED,
	RELAY_T_VOIDED,
	RELAY_T_EXPIRED,
	RELAY_T_REFUNDED,
	RELAY_T_ACCOUNT_CREATED,
	RELAY_T_ACCOUNT_STATUS_CHANGED,
	RELAY_T_DLQ,
	RELAY_NTOPICS
};

#define RELAY_MESSAGE_MAX_BYTES 1000000

/* persisted: librdkafka's rd_kafka_msg_status_t — NOT_PERSISTED means the
 * broker certainly does not have the message, POSSIBLY_PERSISTED that
 * nobody knows (only a recovery scan can tell). */
typedef void (*relay_delivery_fn)(void *msg_opaque, rd_kafka_resp_err_t err,
    rd_kafka_msg_status_t persisted, int32_t partition, int64_t offset);

struct relay_kafka;

struct relay_kafka_conf {
	const char *brokers;
	const char *topics[RELAY_NTOPICS];
	double base_delay_s;          /* reconnect/retry backoff start */
	double max_delay_s;           /* reconnect backoff cap */
	int queue_messages;           /* local queue bound (>= a window) */
	const char *transactional_id; /* NULL: idempotent only */
	int transaction_timeout_ms;
	relay_delivery_fn on_delivery;
};

struct relay_headers {
	const char *event_id;
	const char *event_type;
	const char *outbox_seq;
	const char *correlation_id;
	const char *client; /* header `client`; NULL: no such header */
};

int relay_kafka_new(
    const struct relay_kafka_conf *c, struct relay_kafka **out, char *err, size_t errlen);
void relay_kafka_destroy(struct relay_kafka *k);
const char *relay_kafka_topic(const struct relay_kafka *k, enum relay_topic_id t);
/* Reads the partition counts of all topics. */
int relay_kafka_metadata(struct relay_kafka *k, int timeout_ms, char *err, size_t errlen);
int32_t relay_kafka_partitions(const struct relay_kafka *k, enum relay_topic_id t);
int32_t
relay_kafka_partition_for(const struct relay_kafka *k, enum relay_topic_id t, const char *key);
int relay_kafka_high_watermark(struct relay_kafka *k, const char *topic, int32_t partition,
    int64_t *hi, int timeout_ms, char *err, size_t errlen);
/* Enqueues one message; RD_KAFKA_RESP_ERR__QUEUE_FULL means poll and retry. */
rd_kafka_resp_err_t relay_kafka_produce(struct relay_kafka *k, enum relay_topic_id t,
    int32_t partition, const char *key, const char *value, size_t len,
    const struct relay_headers *h, void *msg_opaque);
void relay_kafka_poll(struct relay_kafka *k, int timeout_ms);
/* Non-zero once the producer hit a fatal error, e.g. fenced (the handle is
 * then useless: destroy it and resolve the window by a recovery scan). */
int relay_kafka_fatal(struct relay_kafka *k, char *buf, size_t len);

#define RELAY_K_OK    0
#define RELAY_K_RETRY (-1)
#define RELAY_K_ABORT (-2)
#define RELAY_K_FATAL (-3)
int relay_kafka_transactional(const struct relay_kafka *k);
int relay_kafka_txn_init(struct relay_kafka *k, int timeout_ms, char *err, size_t errlen);
int relay_kafka_txn_begin(struct relay_kafka *k, char *err, size_t errlen);
int relay_kafka_txn_commit(struct relay_kafka *k, int timeout_ms, char *err, size_t errlen);
int relay_kafka_txn_abort(struct relay_kafka *k, int timeout_ms, char *err, size_t errlen);

/*
 * Per topic and partition the offset the relay's next message there will
 * get (-1: not known yet). The journal keeps them (journal_cursors), so
 * that the recovery scan of a window starts where its first message went.
 */
struct relay_cursors {
	int64_t *next[RELAY_NTOPICS];
	int32_t n[RELAY_NTOPICS];
};

/* Raises one cursor (an unknown topic or partition is ignored). */
void relay_cursors_raise(
    struct relay_cursors *c, enum relay_topic_id t, int32_t partition, int64_t next);
void relay_cursors_free(struct relay_cursors *c);

/*
 * Brings c up to date with the broker: reads the partition counts
 * (waiting by retry while the broker is away), makes room for new
 * partitions, raises c to the known cursors known[] (the journal's and
 * Postgres's), and starts every
 * partition still unknown at its high watermark, read before the relay
 * produces anything there. Those new cursors go to *add (malloc'd, *nadd
 * of them; the caller journals them). 0, or -1 when stopping.
 */
int relay_kafka_refresh(struct relay_kafka *k, struct relay_cursors *c,
    const struct journal_offset *known, size_t nknown, const struct relay_retry *retry,
    struct journal_offset **add, size_t *nadd);

#endif
