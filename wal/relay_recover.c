/* SPDX-License-Identifier: MIT */
/*
 * relay_recover.c — the recovery scan (see relay_recover.h).
 *
 * The scan is what makes a crash neither lose nor duplicate: the window's
 * events whose event_id is found between the journaled start offsets and
 * the end are on the broker (and are only marked), the rest were not
 * written (and are produced again). It relies on the relays being the
 * only writers of their events, and on the caller having ended every
 * transaction of the window first (init_transactions or abort), so that
 * the read_committed scan sees all it will ever see of the window.
 */
#include "relay_recover.h"
#include "common/log.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>

/* Partitions whose consumer position reached their end since the last
 * look: marked done in pos[] and counted. */
static size_t
scan_positions(rd_kafka_t *rk, struct relay_scan_part *parts, size_t n, int64_t *pos)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)(n ? n : 1));
	size_t i, done = 0;
	int k;

	for (i = 0; i < n; i++)
		if (pos[i] < parts[i].end)
			rd_kafka_topic_partition_list_add(l, parts[i].topic, parts[i].partition);
	if (l->cnt > 0 && rd_kafka_position(rk, l) == RD_KAFKA_RESP_ERR_NO_ERROR)
		for (k = 0; k < l->cnt; k++)
			for (i = 0; i < n; i++)
				if (pos[i] < parts[i].end &&
				    parts[i].partition == l->elems[k].partition &&
				    strcmp(parts[i].topic, l->elems[k].topic) == 0 &&
				    l->elems[k].offset >= parts[i].end) {
					pos[i] = parts[i].end;
					done++;
				}
	rd_kafka_topic_partition_list_destroy(l);
	return done;
}

int
relay_recover_scan(const char *brokers, struct relay_scan_part *parts, size_t n, relay_scan_fn fn,
    void *arg, int timeout_ms, char *err, size_t errlen)
{
	rd_kafka_conf_t *c = rd_kafka_conf_new();
	rd_kafka_t *rk = NULL;
	rd_kafka_topic_partition_list_t *tl = NULL;
	int64_t *pos = xcalloc(n ? n : 1, sizeof(int64_t));
	int64_t last_progress;
	size_t i, pending = 0;
	int rc = -1;
	struct {
		const char *k, *v;
	} set[] = {
		{ "bootstrap.servers", brokers },
		{ "group.id", "payment-relay-recovery" },
		{ "enable.auto.commit", "false" },
		{ "enable.auto.offset.store", "false" },
		{ "auto.offset.reset", "earliest" },
		{ "enable.partition.eof", "true" },
		/* Committed messages only: an aborted (or fenced, still open)
		 * window is not on the broker for any consumer. The mock broker
		 * ignores this (docs/relay.md). */
		{ "isolation.level", "read_committed" },
		{ "fetch.wait.max.ms", "50" },
		{ "log_level", "3" },
		{ NULL, NULL },
	};

	for (i = 0; set[i].k; i++)
		if (rd_kafka_conf_set(c, set[i].k, set[i].v, err, errlen) != RD_KAFKA_CONF_OK)
			goto out;
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, errlen);
	if (rk == NULL)
		goto out;
	c = NULL;
	tl = rd_kafka_topic_partition_list_new((int)(n ? n : 1));
	for (i = 0; i < n; i++) {
		int64_t lo = 0, hi = 0;
		rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(
		    rk, parts[i].topic, parts[i].partition, &lo, &hi, timeout_ms);

		if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
			snprintf(err, errlen, "recovery watermarks of %s[%d]: %s", parts[i].topic,
			    (int)parts[i].partition, rd_kafka_err2str(e));
			goto out;
		}
		parts[i].end = hi;
		pos[i] = parts[i].start;
		if (hi <= parts[i].start)
			continue; /* nothing was written there */
		rd_kafka_topic_partition_list_add(tl, parts[i].topic, parts[i].partition)->offset =
		    parts[i].start > lo ? parts[i].start : lo;
		pending++;
	}
	if (pending > 0 && rd_kafka_assign(rk, tl) != RD_KAFKA_RESP_ERR_NO_ERROR) {
		snprintf(err, errlen, "recovery assign failed");
		goto out;
	}
	last_progress = util_now_ms();
	while (pending > 0) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
		const char *topic;
		size_t k;

		if (m == NULL) {
			/* A partition that ends in transaction markers (or aborted
			 * messages) delivers no message at its end: its position,
			 * which moves past them, says the scan got there. */
			pending -= scan_positions(rk, parts, n, pos);
			if (pending == 0)
				break;
			if (util_now_ms() - last_progress > timeout_ms) {
				snprintf(err, errlen, "recovery scan made no progress for %d ms",
				    timeout_ms);
				goto out;
			}
			continue;
		}
		if (m->err && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			rd_kafka_message_destroy(m);
			continue; /* transient: the consumer retries itself */
		}
		topic = rd_kafka_topic_name(m->rkt);
		for (k = 0; k < n; k++)
			if (parts[k].partition == m->partition &&
			    strcmp(parts[k].topic, topic) == 0)
				break;
		if (k < n && m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
			rd_kafka_headers_t *h;
			const void *val;
			size_t vlen;
			char id[64];

			if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR &&
			    rd_kafka_header_get_last(h, "event_id", &val, &vlen) ==
			        RD_KAFKA_RESP_ERR_NO_ERROR &&
			    val != NULL && vlen < sizeof(id)) {
				memcpy(id, val, vlen);
				id[vlen] = '\0';
				fn(arg, topic, m->partition, m->offset, id, m->payload, m->len);
			}
			last_progress = util_now_ms();
		}
		if (k < n && pos[k] < parts[k].end &&
		    (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF || m->offset + 1 >= parts[k].end)) {
			pos[k] = parts[k].end;
			pending--;
		}
		rd_kafka_message_destroy(m);
	}
	rc = 0;
out:
	if (c)
		rd_kafka_conf_destroy(c);
	if (tl)
		rd_kafka_topic_partition_list_destroy(tl);
	if (rk) {
		rd_kafka_consumer_close(rk);
		rd_kafka_destroy(rk);
	}
	free(pos);
	return rc;
}

struct scan_ctx {
	struct relay_found *f; /* sorted by event_id */
	size_t n;
	const char *dlq_topic;
};

static int
cmp_found(const void *a, const void *b)
{
	return strcmp(((const struct relay_found *)a)->ev.event_id,
	    ((const struct relay_found *)b)->ev.event_id);
}

static void
on_scanned(void *arg, const char *topic, int32_t partition, int64_t offset, const char *event_id,
    const char *value, size_t len)
{
	struct scan_ctx *c = arg;
	struct relay_found key, *f;
	json_t *o;

	(void)partition;
	(void)offset;
	snprintf(key.ev.event_id, sizeof(key.ev.event_id), "%s", event_id);
	f = bsearch(&key, c->f, c->n, sizeof(*c->f), cmp_found);
	/* Only the window's own topic counts: a DLQ copy of an event is not
	 * the event, and vice versa. */
	if (f == NULL || f->hit || strcmp(f->ev.topic, topic) != 0)
		return;
	f->hit = 1;
	if (strcmp(topic, c->dlq_topic) == 0) {
		o = json_loadb(value, len, 0, NULL);
		f->dlq = 1;
		snprintf(f->error, sizeof(f->error), "%s",
		    json_string_value(json_object_get(o, "error")) ?: "dead-lettered");
		f->retry_count = (int)json_integer_value(json_object_get(o, "retry_count"));
		json_decref(o);
	}
}

int
relay_recover_window(const char *brokers, const char *dlq_topic, const struct journal_event *ev,
    size_t n, const struct journal_offset *start, size_t nstart, const struct relay_retry *retry,
    struct relay_found **found, struct journal_offset *next)
{
	struct scan_ctx ctx = { xcalloc(n + 1, sizeof(*ctx.f)), n, dlq_topic };
	struct relay_scan_part *parts = xcalloc(nstart + 1, sizeof(*parts));
	char err[512];
	int attempt = 0;
	size_t i;

	*found = NULL;
	for (i = 0; i < n; i++)
		ctx.f[i].ev = ev[i];
	qsort(ctx.f, n, sizeof(*ctx.f), cmp_found);
	for (i = 0; i < nstart; i++) {
		snprintf(parts[i].topic, sizeof(parts[i].topic), "%s", start[i].topic);
		parts[i].partition = start[i].partition;
		parts[i].start = start[i].offset;
	}
	while (relay_recover_scan(
	           brokers, parts, nstart, on_scanned, &ctx, 10000, err, sizeof(err)) < 0) {
		if (*retry->stop) {
			free(parts);
			free(ctx.f);
			return -1;
		}
		log_warn("recovery scan failed; backing off", LF_S("error", err),
		    LF_I("attempt", attempt));
		retry->sleep(attempt++);
	}
	/* Nothing of the window lies past what the scan read. */
	for (i = 0; i < nstart; i++) {
		next[i] = start[i];
		if (parts[i].end > next[i].offset)
			next[i].offset = parts[i].end;
	}
	free(parts);
	*found = ctx.f;
	return 0;
}
