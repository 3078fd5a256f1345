/* SPDX-License-Identifier: MIT */
/*
 * sample_consumer.c — an example consumer of paymentd's events: reads the
 * payment topics (and the DLQ), drops redeliveries by event_id, prints one
 * line per event.
 *
 *   sample-consumer [--group G] [--from-beginning] [--idle-exit SECONDS]
 *
 * Consumers must dedupe by event_id: the relay publishes each event once,
 * but a consumer's own restarts replay from its last committed offset.
 *
 * Consumers must also read with isolation.level=read_committed, and this
 * one sets it explicitly (it is librdkafka's default, not every client's:
 * the Java consumer defaults to read_uncommitted). A read_committed
 * consumer never sees a message of an aborted or still open transaction,
 * which a read_uncommitted one does on a real broker (Apache Kafka,
 * Redpanda). The relay writes every window as one Kafka transaction, and a
 * window that was interrupted (a relay killed or fenced mid-window) is
 * aborted and produced again: a read_uncommitted consumer would see those
 * aborted copies as duplicates (docs/relay.md, "Real broker vs. the mock").
 * librdkafka's mock broker ignores the setting.
 */
#include "common/config.h"
#include "common/log.h"
#include "common/util.h"
#include "relay_envelope.h"
#include "relay_kafka.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>

#define SEEN_SLOTS (1 << 20)

static volatile sig_atomic_t stop;
static char *seen[SEEN_SLOTS];

static void
on_term(int s)
{
	(void)s;
	stop = 1;
}

/* Open-addressing set of event ids; returns 1 if id was new. */
static int
remember(const char *id)
{
	uint32_t h = 2166136261u;
	const char *p;
	size_t i;

	for (p = id; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	for (i = 0; i < SEEN_SLOTS; i++) {
		size_t slot = (h + i) & (SEEN_SLOTS - 1);
		if (seen[slot] == NULL) {
			seen[slot] = xstrdup(id);
			return 1;
		}
		if (strcmp(seen[slot], id) == 0)
			return 0;
	}
	return 1; /* full: let it through rather than lose it */
}

int
main(int argc, char **argv)
{
	struct config cfg;
	char err[512], topics[RELAY_NTOPICS][128];
	const char *group = "paymentd-sample-consumer";
	int i, from_beginning = 0, idle_exit = 0;
	int64_t last = util_now_ms();
	unsigned long printed = 0, dups = 0;
	rd_kafka_conf_t *c;
	rd_kafka_t *rk;
	rd_kafka_topic_partition_list_t *tl;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--group") && i + 1 < argc)
			group = argv[++i];
		else if (!strcmp(argv[i], "--from-beginning"))
			from_beginning = 1;
		else if (!strcmp(argv[i], "--idle-exit") && i + 1 < argc) {
			int64_t v;

			if (util_parse_i64(argv[++i], 0, 86400, &v) < 0) {
				fprintf(stderr,
				    "sample-consumer: --idle-exit: expected 0..86400 seconds\n");
				return 2;
			}
			idle_exit = (int)v;
		} else {
			fprintf(stderr,
			    "usage: sample-consumer [--group G] [--from-beginning] [--idle-exit S]\n");
			return 2;
		}
	}
	if (cfg_load(&cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "sample-consumer: %s\n", err);
		return 2;
	}
	log_init("consumer", cfg.log_level, cfg.log_format);
	signal(SIGINT, on_term);
	signal(SIGTERM, on_term);
	c = rd_kafka_conf_new();
	if (rd_kafka_conf_set(c, "bootstrap.servers", cfg.brokers, err, sizeof(err)) ||
	    rd_kafka_conf_set(c, "group.id", group, err, sizeof(err)) ||
	    rd_kafka_conf_set(c, "isolation.level", "read_committed", err, sizeof(err)) ||
	    rd_kafka_conf_set(
	        c, "auto.offset.reset", from_beginning ? "earliest" : "latest", err, sizeof(err)))
		fatal("kafka config: %s", err);
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof(err));
	if (rk == NULL)
		fatal("kafka consumer: %s", err);
	rd_kafka_poll_set_consumer(rk);
	/* Every event topic (the relay's list: relay_envelope.h), and the DLQ. */
	tl = rd_kafka_topic_partition_list_new(RELAY_NTOPICS);
	for (i = 0; relay_event_types[i] != NULL; i++) {
		if (relay_topic(cfg.topic_prefix, relay_event_types[i], topics[i], sizeof(topics[i])) <
		    0)
			fatal("KAFKA_TOPIC_PREFIX is too long");
		rd_kafka_topic_partition_list_add(tl, topics[i], RD_KAFKA_PARTITION_UA);
	}
	snprintf(topics[i], sizeof(topics[i]), "%s.dlq", cfg.topic_prefix);
	rd_kafka_topic_partition_list_add(tl, topics[i], RD_KAFKA_PARTITION_UA);
	if (rd_kafka_subscribe(rk, tl))
		fatal("subscribe failed");
	rd_kafka_topic_partition_list_destroy(tl);
	fprintf(stderr, "consuming %s.* (%d topics: the event types and the DLQ) from %s "
	                "(isolation.level=read_committed)\n",
	    cfg.topic_prefix, RELAY_NTOPICS, cfg.brokers);
	while (!stop) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
		json_t *env, *pl;
		const char *eid;

		if (m == NULL) {
			if (idle_exit && util_now_ms() - last > idle_exit * 1000LL)
				break;
			continue;
		}
		if (m->err) {
			rd_kafka_message_destroy(m);
			continue;
		}
		last = util_now_ms();
		env = json_loadb(m->payload, m->len, 0, NULL);
		eid = env ? json_string_value(json_object_get(env, "event_id")) : NULL;
		if (eid == NULL && env) { /* DLQ record: envelope inside */
			json_t *inner = json_object_get(env, "envelope");
			eid = json_string_value(json_object_get(inner, "event_id"));
		}
		if (eid == NULL) {
			fprintf(stderr, "skipping a message without event_id at %s[%d]@%lld\n",
			    rd_kafka_topic_name(m->rkt), m->partition, (long long)m->offset);
		} else if (!remember(eid)) {
			dups++;
		} else {
			pl = json_object_get(env, "payload");
			printf("%s [%d] @%lld %s %s payment=%s status=%s amount=%lld %s\n",
			    rd_kafka_topic_name(m->rkt), m->partition, (long long)m->offset, eid,
			    json_string_value(json_object_get(env, "event_type")) ?: "DLQ",
			    json_string_value(json_object_get(pl, "payment_id")) ?: "-",
			    json_string_value(json_object_get(pl, "status")) ?: "-",
			    (long long)json_integer_value(json_object_get(pl, "amount_cents")),
			    json_string_value(json_object_get(env, "error")) ?: "");
			fflush(stdout);
			printed++;
		}
		json_decref(env);
		rd_kafka_message_destroy(m);
	}
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	fprintf(stderr, "%lu events, %lu duplicates dropped\n", printed, dups);
	return 0;
}
