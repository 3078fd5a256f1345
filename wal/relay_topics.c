/* SPDX-License-Identifier: MIT */
/*
 * relay_topics.c — `payment-relay create-topics`: makes the relay's topics
 * (one per event type, then the DLQ) on the broker in one admin request.
 *
 * Contract: relay_topics_create() asks the cluster at brokers to create
 * each of the n topics (partitions events for the event topics, 1 for the
 * last, the DLQ: one partition keeps the dead letters in order), with the
 * cluster's default replication; a topic that exists already is fine (its
 * partition count is reported, never changed). Prints one line per topic
 * on out. 0 when every topic exists afterwards, -1 with err otherwise.
 * Operators run it once per deployment (docs/relay.md); the test scripts
 * run it for every broker they start, in place of one JVM per topic.
 */
#include "relay_topics.h"

#include <stdio.h>
#include <string.h>
#include <librdkafka/rdkafka.h>

int
relay_topics_create(const char *brokers, char topics[][128], int n, int partitions,
    int timeout_ms, FILE *out, char *err, size_t errlen)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_t *rk = NULL;
	rd_kafka_queue_t *q = NULL;
	rd_kafka_event_t *ev = NULL;
	rd_kafka_NewTopic_t *nt[32];
	rd_kafka_AdminOptions_t *opt = NULL;
	const rd_kafka_CreateTopics_result_t *res;
	const rd_kafka_topic_result_t **tr;
	size_t ntr, i;
	int k, rc = -1, made = 0;

	memset(nt, 0, sizeof(nt));
	if (n < 1 || n > (int)(sizeof(nt) / sizeof(nt[0]))) {
		snprintf(err, errlen, "bad topic count %d", n);
		goto out;
	}
	if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, errlen) != RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_set(conf, "log_level", "3", err, errlen) != RD_KAFKA_CONF_OK)
		goto out;
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, errlen);
	if (rk == NULL)
		goto out;
	conf = NULL; /* rk owns it */
	for (k = 0; k < n; k++) {
		nt[k] = rd_kafka_NewTopic_new(
		    topics[k], k == n - 1 ? 1 : partitions, -1, err, errlen);
		if (nt[k] == NULL)
			goto out;
	}
	opt = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
	if (rd_kafka_AdminOptions_set_operation_timeout(opt, timeout_ms, err, errlen) != 0 ||
	    rd_kafka_AdminOptions_set_request_timeout(opt, timeout_ms, err, errlen) != 0)
		goto out;
	q = rd_kafka_queue_new(rk);
	rd_kafka_CreateTopics(rk, nt, (size_t)n, opt, q);
	ev = rd_kafka_queue_poll(q, timeout_ms + 2000);
	if (ev == NULL) {
		snprintf(err, errlen, "no answer from %s within %d ms", brokers, timeout_ms + 2000);
		goto out;
	}
	if (rd_kafka_event_error(ev)) {
		snprintf(err, errlen, "%s", rd_kafka_event_error_string(ev));
		goto out;
	}
	res = rd_kafka_event_CreateTopics_result(ev);
	tr = rd_kafka_CreateTopics_result_topics(res, &ntr);
	for (i = 0; i < ntr; i++) {
		rd_kafka_resp_err_t e = rd_kafka_topic_result_error(tr[i]);

		if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
			fprintf(out, "created %s\n", rd_kafka_topic_result_name(tr[i]));
			made++;
		} else if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
			fprintf(out, "exists  %s\n", rd_kafka_topic_result_name(tr[i]));
			made++;
		} else {
			snprintf(err, errlen, "%s: %s", rd_kafka_topic_result_name(tr[i]),
			    rd_kafka_topic_result_error_string(tr[i]) ? rd_kafka_topic_result_error_string(tr[i])
			                                              : rd_kafka_err2str(e));
			goto out;
		}
	}
	if (made != n) {
		snprintf(err, errlen, "the broker answered for %d of %d topics", made, n);
		goto out;
	}
	rc = 0;
out:
	if (ev != NULL)
		rd_kafka_event_destroy(ev);
	if (q != NULL)
		rd_kafka_queue_destroy(q);
	if (opt != NULL)
		rd_kafka_AdminOptions_destroy(opt);
	for (k = 0; k < n && k < (int)(sizeof(nt) / sizeof(nt[0])); k++)
		if (nt[k] != NULL)
			rd_kafka_NewTopic_destroy(nt[k]);
	if (rk != NULL)
		rd_kafka_destroy(rk);
	if (conf != NULL)
		rd_kafka_conf_destroy(conf);
	return rc;
}
