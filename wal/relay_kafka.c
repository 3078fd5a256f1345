/* SPDX-License-Identifier: MIT */
/*
 * relay_kafka.c — payment-relay's producer (see relay_kafka.h).
 */
#include "relay_kafka.h"
#include "common/log.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct relay_kafka {
	rd_kafka_t *rk;
	rd_kafka_topic_t *rkt[RELAY_NTOPICS];
	char topic[RELAY_NTOPICS][128];
	int32_t partitions[RELAY_NTOPICS];
	relay_delivery_fn on_delivery;
	int transactional;
};

static void
on_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	struct relay_kafka *k = opaque;

	(void)rk;
	if (m->_private != NULL)
		k->on_delivery(
		    m->_private, m->err, rd_kafka_message_status(m), m->partition, m->offset);
}

static void
on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	(void)rk;
	log_kv(level <= 3    ? LOG_ERROR
	        : level <= 5 ? LOG_WARNING
	                     : LOG_DEBUG,
	    buf,
	    (const struct log_field[]){
	        LF_S("source", "librdkafka"), LF_S("facility", fac), { 0 } });
}

static void
on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	(void)rk;
	(void)opaque;
	/* Informational: librdkafka keeps reconnecting (with backoff) and
	 * retrying; only a fatal error needs the relay to act, and the relay
	 * asks for that itself (relay_kafka_fatal). */
	log_warn("kafka error", LF_S("error", rd_kafka_err2str((rd_kafka_resp_err_t)err)),
	    LF_S("reason", reason));
}

int
relay_kafka_new(
    const struct relay_kafka_conf *c, struct relay_kafka **out, char *err, size_t errlen)
{
	struct relay_kafka *k = xcalloc(1, sizeof(*k));
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char v[32];
	int i, rc = -1;
	struct {
		const char *key;
		const char *val;
	} set[] = {
		{ "bootstrap.servers", c->brokers },
		/* Per-partition order and no duplicates from internal retries. */
		{ "enable.idempotence", "true" },
		{ "acks", "all" },
		/* Never give up on a message locally: an outage only delays it.
		 * A local timeout would turn "unknown outcome" into a choice
		 * between losing and duplicating the event. */
		{ "message.timeout.ms", "0" },
		{ "linger.ms", "5" },
		{ "message.max.bytes", "1000000" },
		{ "log.queue", "true" },
		{ "log_level", "4" },
		{ "socket.keepalive.enable", "true" },
		{ NULL, NULL },
	};

	*out = NULL;
	for (i = 0; set[i].key; i++)
		if (rd_kafka_conf_set(conf, set[i].key, set[i].val, err, errlen) !=
		    RD_KAFKA_CONF_OK)
			goto out;
	/* librdkafka's reconnect backoff doubles up to the max and applies
	 * its own jitter (-25%..+50%). */
	snprintf(v, sizeof(v), "%d",
	    (int)(c->base_delay_s * 1000) < 1 ? 1 : (int)(c->base_delay_s * 1000));
	if (rd_kafka_conf_set(conf, "reconnect.backoff.ms", v, err, errlen) != RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_set(conf, "retry.backoff.ms", v, err, errlen) != RD_KAFKA_CONF_OK)
		goto out;
	snprintf(v, sizeof(v), "%d",
	    (int)(c->max_delay_s * 1000) < 10 ? 10 : (int)(c->max_delay_s * 1000));
	if (rd_kafka_conf_set(conf, "reconnect.backoff.max.ms", v, err, errlen) != RD_KAFKA_CONF_OK)
		goto out;
	if (c->transactional_id != NULL && c->transactional_id[0]) {
		/* librdkafka bounds a transactional message's life by the
		 * transaction's: an outage longer than that fails the window's
		 * messages (their transaction is aborted, nothing of it is
		 * visible, and the window is produced again). */
		snprintf(v, sizeof(v), "%d", c->transaction_timeout_ms);
		if (rd_kafka_conf_set(conf, "transactional.id", c->transactional_id, err, errlen) !=
		        RD_KAFKA_CONF_OK ||
		    rd_kafka_conf_set(conf, "transaction.timeout.ms", v, err, errlen) !=
		        RD_KAFKA_CONF_OK ||
		    rd_kafka_conf_set(conf, "message.timeout.ms", v, err, errlen) !=
		        RD_KAFKA_CONF_OK)
			goto out;
		k->transactional = 1;
	}
	snprintf(v, sizeof(v), "%d", c->queue_messages);
	if (rd_kafka_conf_set(conf, "queue.buffering.max.messages", v, err, errlen) !=
	    RD_KAFKA_CONF_OK)
		goto out;
	rd_kafka_conf_set_dr_msg_cb(conf, on_dr);
	rd_kafka_conf_set_log_cb(conf, on_log);
	rd_kafka_conf_set_error_cb(conf, on_error);
	rd_kafka_conf_set_opaque(conf, k);
	k->on_delivery = c->on_delivery;
	k->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, errlen);
	if (k->rk == NULL)
		goto out;
	conf = NULL; /* owned by rk now */
	/* Logs are served by rd_kafka_poll() on our thread, like reports. */
	rd_kafka_set_log_queue(k->rk, NULL);
	for (i = 0; i < RELAY_NTOPICS; i++) {
		snprintf(k->topic[i], sizeof(k->topic[i]), "%s", c->topics[i]);
		k->rkt[i] = rd_kafka_topic_new(k->rk, k->topic[i], NULL);
		if (k->rkt[i] == NULL) {
			snprintf(err, errlen, "topic %s: %s", k->topic[i],
			    rd_kafka_err2str(rd_kafka_last_error()));
			goto out;
		}
	}
	*out = k;
	k = NULL;
	rc = 0;
out:
	if (conf)
		rd_kafka_conf_destroy(conf);
	relay_kafka_destroy(k);
	return rc;
}

void
relay_kafka_destroy(struct relay_kafka *k)
{
	int i;

	if (k == NULL)
		return;
	if (k->rk) {
		rd_kafka_purge(k->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
		/* Serve the purge reports while the opaques are still valid
		 * (the caller's window), then never again. */
		rd_kafka_poll(k->rk, 0);
	}
	for (i = 0; i < RELAY_NTOPICS; i++)
		if (k->rkt[i])
			rd_kafka_topic_destroy(k->rkt[i]);
	if (k->rk)
		rd_kafka_destroy(k->rk);
	free(k);
}

const char *
relay_kafka_topic(const struct relay_kafka *k, enum relay_topic_id t)
{
	return k->topic[t];
}

int
relay_kafka_metadata(struct relay_kafka *k, int timeout_ms, char *err, size_t errlen)
{
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_resp_err_t e;
	int32_t found[RELAY_NTOPICS] = { 0 };
	int i, t, rc = -1;

	/* One request for the whole cluster: cheaper than one per topic when
	 * every round trip counts (startup after a crash). */
	e = rd_kafka_metadata(k->rk, 1, NULL, &md, timeout_ms);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		snprintf(err, errlen, "metadata: %s", rd_kafka_err2str(e));
		return -1;
	}
	for (i = 0; i < md->topic_cnt; i++)
		for (t = 0; t < RELAY_NTOPICS; t++)
			if (strcmp(md->topics[i].topic, k->topic[t]) == 0 && md->topics[i].err == 0)
				found[t] = md->topics[i].partition_cnt;
	for (t = 0; t < RELAY_NTOPICS; t++)
		if (found[t] <= 0) {
			snprintf(err, errlen,
			    "metadata: topic %s does not exist (create it: make kafka-create-topics)",
			    k->topic[t]);
			goto out;
		}
	memcpy(k->partitions, found, sizeof(found));
	rc = 0;
out:
	rd_kafka_metadata_destroy(md);
	return rc;
}

int32_t
relay_kafka_partitions(const struct relay_kafka *k, enum relay_topic_id t)
{
	return k->partitions[t];
}

int32_t
relay_kafka_partition_for(const struct relay_kafka *k, enum relay_topic_id t, const char *key)
{
	/* The same hash Java clients use, so any producer or consumer tool
	 * agrees with us on where a payer's events live. */
	return rd_kafka_msg_partitioner_murmur2(
	    k->rkt[t], key, strlen(key), k->partitions[t], NULL, NULL);
}

int
relay_kafka_high_watermark(struct relay_kafka *k, const char *topic, int32_t partition, int64_t *hi,
    int timeout_ms, char *err, size_t errlen)
{
	int64_t lo = 0;
	rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(
	    k->rk, topic, partition, &lo, hi, timeout_ms);

	if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		snprintf(err, errlen, "watermarks of %s[%d]: %s", topic, (int)partition,
		    rd_kafka_err2str(e));
		return -1;
	}
	return 0;
}

rd_kafka_resp_err_t
relay_kafka_produce(struct relay_kafka *k, enum relay_topic_id t, int32_t partition,
    const char *key, const char *value, size_t len, const struct relay_headers *h, void *msg_opaque)
{
	/* A headers object rather than RD_KAFKA_V_HEADER: `client` is left out
	 * for rows written before clients existed (an absent header says "not
	 * known", an empty one would name a client ""). */
	rd_kafka_headers_t *hs = rd_kafka_headers_new(5);
	rd_kafka_resp_err_t e;

	rd_kafka_header_add(hs, "event_id", -1, h->event_id, -1);
	rd_kafka_header_add(hs, "event_type", -1, h->event_type, -1);
	rd_kafka_header_add(hs, "outbox_seq", -1, h->outbox_seq, -1);
	rd_kafka_header_add(hs, "correlation_id", -1, h->correlation_id, -1);
	if (h->client != NULL)
		rd_kafka_header_add(hs, "client", -1, h->client, -1);
	e = rd_kafka_producev(k->rk, RD_KAFKA_V_RKT(k->rkt[t]), RD_KAFKA_V_PARTITION(partition),
	    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, strlen(key)),
	    RD_KAFKA_V_VALUE((void *)value, len), RD_KAFKA_V_HEADERS(hs),
	    RD_KAFKA_V_OPAQUE(msg_opaque), RD_KAFKA_V_END);
	/* The message owns the headers only once producev() succeeded. */
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
		rd_kafka_headers_destroy(hs);
	return e;
}

void
relay_kafka_poll(struct relay_kafka *k, int timeout_ms)
{
	rd_kafka_poll(k->rk, timeout_ms);
}

int
relay_kafka_fatal(struct relay_kafka *k, char *buf, size_t len)
{
	return rd_kafka_fatal_error(k->rk, buf, len) != RD_KAFKA_RESP_ERR_NO_ERROR;
}

int
relay_kafka_transactional(const struct relay_kafka *k)
{
	return k->transactional;
}

/* An rd_kafka_error_t into one of the RELAY_K_* answers (and err). */
static int
txn_result(rd_kafka_error_t *e, const char *what, int may_abort, char *err, size_t errlen)
{
	int rc;

	if (e == NULL)
		return RELAY_K_OK;
	snprintf(err, errlen, "%s: %s", what, rd_kafka_error_string(e));
	/* Retriable (the broker is away) unless fatal or dooming the
	 * transaction; anything else ends it: abort what may be aborted. */
	if (!rd_kafka_error_is_fatal(e) && !rd_kafka_error_txn_requires_abort(e) &&
	    (rd_kafka_error_is_retriable(e) ||
	        rd_kafka_error_code(e) == RD_KAFKA_RESP_ERR__TIMED_OUT))
		rc = RELAY_K_RETRY;
	else if (!rd_kafka_error_is_fatal(e) && may_abort)
		rc = RELAY_K_ABORT;
	else
		rc = RELAY_K_FATAL;
	rd_kafka_error_destroy(e);
	return rc;
}

int
relay_kafka_txn_init(struct relay_kafka *k, int timeout_ms, char *err, size_t errlen)
{
	return txn_result(
	    rd_kafka_init_transactions(k->rk, timeout_ms), "init_transactions", 0, err, errlen);
}

int
relay_kafka_txn_begin(struct relay_kafka *k, char *err, size_t errlen)
{
	return txn_result(rd_kafka_begin_transaction(k->rk), "begin_transaction", 0, err, errlen);
}

int
relay_kafka_txn_commit(struct relay_kafka *k, int timeout_ms, char *err, size_t errlen)
{
	return txn_result(
	    rd_kafka_commit_transaction(k->rk, timeout_ms), "commit_transaction", 1, err, errlen);
}

int
relay_kafka_txn_abort(struct relay_kafka *k, int timeout_ms, char *err, size_t errlen)
{
	return txn_result(
	    rd_kafka_abort_transaction(k->rk, timeout_ms), "abort_transaction", 0, err, errlen);
}

void
relay_cursors_raise(struct relay_cursors *c, enum relay_topic_id t, int32_t partition, int64_t next)
{
	if (t < RELAY_NTOPICS && partition >= 0 && partition < c->n[t] &&
	    next > c->next[t][partition])
		c->next[t][partition] = next;
}

void
relay_cursors_free(struct relay_cursors *c)
{
	int t;

	for (t = 0; t < RELAY_NTOPICS; t++) {
		free(c->next[t]);
		c->next[t] = NULL;
		c->n[t] = 0;
	}
}

/* Room for every partition the metadata names; the new ones unknown. */
static void
cursors_fit(const struct relay_kafka *k, struct relay_cursors *c)
{
	int32_t np, p;
	int t;

	for (t = 0; t < RELAY_NTOPICS; t++) {
		np = k->partitions[t];
		if (np <= c->n[t])
			continue;
		c->next[t] = realloc(c->next[t], (size_t)np * sizeof(int64_t));
		if (c->next[t] == NULL)
			fatal("out of memory");
		for (p = c->n[t]; p < np; p++)
			c->next[t][p] = -1;
		if (c->n[t] > 0)
			log_warn("partition count grew; keys may move to other partitions",
			    LF_S("topic", k->topic[t]), LF_I("from", c->n[t]), LF_I("to", np));
		c->n[t] = np;
	}
}

static enum relay_topic_id
topic_id(const struct relay_kafka *k, const char *topic)
{
	int t;

	for (t = 0; t < RELAY_NTOPICS; t++)
		if (strcmp(k->topic[t], topic) == 0)
			return (enum relay_topic_id)t;
	return RELAY_NTOPICS;
}

/*
 * The end offsets of every partition whose cursor is not known yet, in one
 * ListOffsets round per leader (offsets_for_times with OFFSET_END) rather
 * than a watermark query each: with nine topics a starting relay would
 * otherwise spend 27 round trips before its first window. What the batch
 * does not answer is left for the per-partition query.
 */
static void
ends_batch(struct relay_kafka *k, struct relay_cursors *c, struct journal_offset *a, size_t *n)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(16);
	int t, i;
	int32_t p;

	for (t = 0; t < RELAY_NTOPICS; t++)
		for (p = 0; p < c->n[t]; p++)
			if (c->next[t][p] < 0)
				rd_kafka_topic_partition_list_add(l, k->topic[t], p)->offset =
				    RD_KAFKA_OFFSET_END;
	if (l->cnt > 1 && rd_kafka_offsets_for_times(k->rk, l, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR)
		for (i = 0; i < l->cnt; i++) {
			rd_kafka_topic_partition_t *e = &l->elems[i];

			t = topic_id(k, e->topic);
			if (e->err != RD_KAFKA_RESP_ERR_NO_ERROR || e->offset < 0 ||
			    t >= RELAY_NTOPICS || e->partition < 0 || e->partition >= c->n[t])
				continue;
			snprintf(a[*n].topic, sizeof(a[*n].topic), "%s", e->topic);
			a[*n].partition = e->partition;
			a[*n].offset = e->offset;
			(*n)++;
			c->next[t][e->partition] = e->offset;
		}
	rd_kafka_topic_partition_list_destroy(l);
}

int
relay_kafka_refresh(struct relay_kafka *k, struct relay_cursors *c,
    const struct journal_offset *known, size_t nknown, const struct relay_retry *retry,
    struct journal_offset **add, size_t *nadd)
{
	struct journal_offset *a;
	char err[512];
	int attempt = 0, t;
	int32_t p;
	size_t i, n = 0, total = 0;

	*add = NULL;
	*nadd = 0;
	while (relay_kafka_metadata(k, 5000, err, sizeof(err)) < 0) {
		if (*retry->stop)
			return -1;
		log_warn("broker metadata unavailable; backing off", LF_S("error", err),
		    LF_I("attempt", attempt));
		retry->sleep(attempt++);
	}
	cursors_fit(k, c);
	for (i = 0; i < nknown; i++)
		relay_cursors_raise(
		    c, topic_id(k, known[i].topic), known[i].partition, known[i].offset);
	for (t = 0; t < RELAY_NTOPICS; t++)
		total += (size_t)c->n[t];
	a = xcalloc(total + 1, sizeof(*a));
	ends_batch(k, c, a, &n);
	for (t = 0; t < RELAY_NTOPICS; t++)
		for (p = 0; p < c->n[t]; p++) {
			int64_t hi;

			if (c->next[t][p] >= 0)
				continue;
			attempt = 0;
			while (relay_kafka_high_watermark(
			           k, k->topic[t], p, &hi, 5000, err, sizeof(err)) < 0) {
				if (*retry->stop) {
					free(a);
					return -1;
				}
				log_warn("broker watermark unavailable; backing off",
				    LF_S("error", err));
				retry->sleep(attempt++);
			}
			snprintf(a[n].topic, sizeof(a[n].topic), "%s", k->topic[t]);
			a[n].partition = p;
			a[n].offset = hi;
			n++;
			c->next[t][p] = hi;
		}
	*add = a;
	*nadd = n;
	return 0;
}
