/*
 * relay_main.c — payment-relay: publishes the Postgres outbox to
 * Kafka/Redpanda exactly once, through broker outages and its own crashes.
 *
 * Contract (process code: unrecoverable conditions call fatal()):
 *   1. read up to OUTBOX_BATCH_SIZE unpublished rows in seq order, stopping
 *      before a row whose writer may still be in flight (relay_pg.h);
 *   2. classify them (valid -> its topic; poison or out of retries -> DLQ),
 *      choose each partition, and journal the window — events plus every
 *      involved partition's cursor — durably in SQLite;
 *   3. produce (idempotent, acks=all, no local timeout: an outage only
 *      delays) and wait for every delivery report, reading nothing more
 *      from Postgres meanwhile (memory stays bounded by one window);
 *   4. settle: mark the delivered rows published and the DLQ'd rows with
 *      their error in Postgres (one statement), then clear the window and
 *      advance the cursors in the journal;
 *   5. if the outcome of any message is unknown (crash, fatal producer
 *      error), resolve the window by scanning its partitions from the
 *      journaled cursors: what is found is marked, the rest is produced
 *      again in a later window.
 * docs/relay.md has the argument and the operational side.
 */
#include "common/config.h"
#include "journal/journal.h"
#include "common/log.h"
#include "relay_envelope.h"
#include "relay_kafka.h"
#include "relay_metrics.h"
#include "relay_pg.h"
#include "relay_recover.h"
#include "sandbox/sandbox.h"
#include "common/util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>

enum ev_state { EV_PENDING, EV_DELIVERED, EV_FAILED };

struct ev {
	struct relay_row     row;
	enum relay_topic_id  tid;
	int32_t              partition;
	char                *value;
	int                  dlq;		/* value is a DLQ record */
	char                 error[512];	/* why it goes to the DLQ */
	char                 seqstr[24];
	enum ev_state        state;
	rd_kafka_resp_err_t  err;
	rd_kafka_msg_status_t persisted;
	int64_t              offset;
};

static struct {
	struct config       cfg;
	PGconn             *pg;
	struct journal     *j;
	struct relay_kafka *k;
	char                topic[RELAY_NTOPICS][128];
	char                ident[64];		/* application_name: host + journal */
	int64_t            *cursor[RELAY_NTOPICS];	/* next offset; -1 unknown */
	int32_t             ncursor[RELAY_NTOPICS];
	uint64_t            published, dlqd, windows, recovered, failures;
	int64_t             next_stats_ms, next_metadata_ms, held_since_ms;
	int64_t             backlog, last_window_unix_ms;	/* for /metrics */
	int                 broker_waiting;
} R;

static volatile sig_atomic_t stop;

static void publish_metrics(void);

static void
on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static void
sleep_ms(int64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

	while (!stop && nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static uint32_t
rnd32(void)
{
	uint32_t v;

	if (util_random(&v, sizeof(v)) < 0)
		v = (uint32_t)util_now_ns();
	return v;
}

static void
backoff(int attempt)
{
	sleep_ms(relay_backoff_ms(attempt, R.cfg.outbox_base_delay_s, R.cfg.outbox_max_delay_s, rnd32()));
}

static void __attribute__((noreturn))
jfatal(const char *err)
{
	/* No acknowledgement without durability: stop before anything else
	 * is produced or marked. The next start resolves the window. */
	fatal("journal failure: %s", err);
}

static void
iso_now(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", (tm.tm_year + 1900) % 10000,
	    (tm.tm_mon + 1) % 100, tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100,
	    tm.tm_sec % 100, (int)(ts.tv_nsec / 1000000) % 1000);
}

static enum relay_topic_id
topic_id(const char *topic)
{
	int t;

	for (t = 0; t < RELAY_NTOPICS; t++)
		if (strcmp(R.topic[t], topic) == 0)
			return (enum relay_topic_id)t;
	return RELAY_NTOPICS;
}

/* ---- Postgres ------------------------------------------------------- */

/* Connects (with the advisory lock), retrying with backoff. 0, or -1 on stop. */
static int
pg_ready(void)
{
	char err[512];
	int attempt = 0, rc;

	if (R.pg != NULL && PQstatus(R.pg) == CONNECTION_OK)
		return 0;
	if (R.pg != NULL) {
		PQfinish(R.pg);
		R.pg = NULL;
	}
	while (!stop) {
		rc = relay_pg_connect(R.cfg.database_url, R.ident, &R.pg, err, sizeof(err));
		if (rc == 0) {
			if (attempt > 0)
				log_info("postgres reachable again", LF_I("attempts", attempt));
			return 0;
		}
		if (rc == RELAY_PG_FATAL)
			fatal("%s", err);
		log_warn("postgres unavailable; backing off", LF_S("error", err), LF_I("attempt", attempt));
		backoff(attempt++);
	}
	return -1;
}

static void
pg_lost(const char *what, const char *err, int rc)
{
	if (rc == RELAY_PG_FATAL)
		fatal("%s: %s", what, err);
	log_warn("postgres statement failed; reconnecting", LF_S("what", what), LF_S("error", err));
	PQfinish(R.pg);
	R.pg = NULL;
}

/* Applies a window's outcome; retries until Postgres takes it. 0, or -1 on stop. */
static int
pg_settle(const struct relay_settle *s)
{
	char err[512];
	int attempt = 0, rc;

	for (;;) {
		if (pg_ready() < 0)
			return -1;
		rc = relay_pg_settle(R.pg, s, err, sizeof(err));
		if (rc == 0)
			return 0;
		pg_lost("outbox settle", err, rc);
		backoff(attempt++);
	}
}

/* ---- Kafka ---------------------------------------------------------- */

static void
on_delivery(void *opaque, rd_kafka_resp_err_t err, rd_kafka_msg_status_t persisted,
    int32_t partition, int64_t offset)
{
	struct ev *e = opaque;

	e->err = err;
	e->persisted = persisted;
	if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
		e->state = EV_DELIVERED;
		e->partition = partition;
		e->offset = offset;
	} else {
		e->state = EV_FAILED;
	}
}

static void
cursor_raise(enum relay_topic_id t, int32_t p, int64_t next)
{
	if (t < RELAY_NTOPICS && p >= 0 && p < R.ncursor[t] && next > R.cursor[t][p])
		R.cursor[t][p] = next;
}

/*
 * Reads partition counts and makes sure every partition has a cursor: a
 * partition never written by this journal starts at its high watermark,
 * taken before the relay produces anything to it.
 */
static int
kafka_metadata(void)
{
	struct journal_offset *cur = NULL, *add = NULL;
	size_t ncur = 0, nadd = 0, i;
	char err[512];
	int attempt = 0, t, p;

	while (relay_kafka_metadata(R.k, 5000, err, sizeof(err)) < 0) {
		if (stop)
			return -1;
		log_warn("broker metadata unavailable; backing off", LF_S("error", err), LF_I("attempt", attempt));
		backoff(attempt++);
	}
	if (journal_cursors(R.j, &cur, &ncur, err, sizeof(err)) < 0)
		jfatal(err);
	for (t = 0; t < RELAY_NTOPICS; t++) {
		int32_t np = relay_kafka_partitions(R.k, (enum relay_topic_id)t);

		if (np > R.ncursor[t]) {
			R.cursor[t] = realloc(R.cursor[t], (size_t)np * sizeof(int64_t));
			if (R.cursor[t] == NULL)
				fatal("out of memory");
			for (p = R.ncursor[t]; p < np; p++)
				R.cursor[t][p] = -1;
			if (R.ncursor[t] > 0)
				log_warn("partition count grew; keys may move to other partitions",
				    LF_S("topic", R.topic[t]), LF_I("from", R.ncursor[t]), LF_I("to", np));
			R.ncursor[t] = np;
		}
	}
	for (i = 0; i < ncur; i++)
		cursor_raise(topic_id(cur[i].topic), cur[i].partition, cur[i].offset);
	add = xcalloc((size_t)(R.ncursor[0] + R.ncursor[1] + R.ncursor[2]) + 1, sizeof(*add));
	for (t = 0; t < RELAY_NTOPICS; t++)
		for (p = 0; p < R.ncursor[t]; p++) {
			int64_t hi;

			if (R.cursor[t][p] >= 0)
				continue;
			attempt = 0;
			while (relay_kafka_high_watermark(R.k, R.topic[t], p, &hi, 5000, err, sizeof(err)) < 0) {
				if (stop)
					goto stopped;
				log_warn("broker watermark unavailable; backing off", LF_S("error", err));
				backoff(attempt++);
			}
			snprintf(add[nadd].topic, sizeof(add[nadd].topic), "%s", R.topic[t]);
			add[nadd].partition = p;
			add[nadd].offset = hi;
			nadd++;
			R.cursor[t][p] = hi;
		}
	if (nadd > 0 && journal_cursors_raise(R.j, add, nadd, err, sizeof(err)) < 0)
		jfatal(err);
	free(cur);
	free(add);
	R.next_metadata_ms = util_now_ms() + 60000;
	return 0;
stopped:
	free(cur);
	free(add);
	return -1;
}

static int
kafka_new(void)
{
	struct relay_kafka_conf kc;
	char err[512];
	int t;

	memset(&kc, 0, sizeof(kc));
	kc.brokers = R.cfg.brokers;
	for (t = 0; t < RELAY_NTOPICS; t++)
		kc.topics[t] = R.topic[t];
	kc.base_delay_s = R.cfg.outbox_base_delay_s;
	kc.max_delay_s = R.cfg.outbox_max_delay_s;
	kc.queue_messages = R.cfg.outbox_batch_size * 2 + 100;
	kc.on_delivery = on_delivery;
	if (relay_kafka_new(&kc, &R.k, err, sizeof(err)) < 0)
		fatal("kafka producer: %s", err);
	return 0;
}

static int
kafka_start(void)
{
	return kafka_new() < 0 ? -1 : kafka_metadata();
}

/* ---- recovery ------------------------------------------------------- */

struct found {
	struct journal_event ev;	/* sorted by event_id */
	int      hit;
	char     error[512];		/* DLQ records: the recorded error */
	int      retry_count;
};

struct scan_ctx {
	struct found *f;
	size_t        n;
};

static int
cmp_found(const void *a, const void *b)
{
	return strcmp(((const struct found *)a)->ev.event_id, ((const struct found *)b)->ev.event_id);
}

static void
on_scanned(void *arg, const char *topic, int32_t partition, int64_t offset, const char *event_id,
    const char *value, size_t len)
{
	struct scan_ctx *c = arg;
	struct found key, *f;
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
	if (topic_id(topic) == RELAY_T_DLQ) {
		o = json_loadb(value, len, 0, NULL);
		snprintf(f->error, sizeof(f->error), "%s",
		    json_string_value(json_object_get(o, "error")) ?: "dead-lettered");
		f->retry_count = (int)json_integer_value(json_object_get(o, "retry_count"));
		json_decref(o);
	}
}

/*
 * Resolves the journaled window (after a crash, or when the producer lost
 * track of it): events found on the broker are marked, the others stay
 * unpublished and go out again in a later window. 0, or -1 on stop.
 */
static int
recover_window(const char *why)
{
	struct journal_event *ev = NULL;
	struct journal_offset *start = NULL, *next = NULL;
	struct relay_scan_part *parts = NULL;
	struct journal_dlq *dlq = NULL;
	struct scan_ctx ctx = { NULL, 0 };
	int64_t *pub = NULL, *dseq = NULL, max_seq = 0;
	const char **derr = NULL;
	size_t n, nstart, i, npub = 0, ndlq = 0;
	char err[512];
	int attempt = 0, rc = -1;
	struct relay_settle s;

	if (journal_window_load(R.j, &ev, &n, &start, &nstart, err, sizeof(err)) < 0)
		jfatal(err);
	if (n == 0) {
		rc = 0;
		goto out;
	}
	log_info("recovering an unsettled window", LF_S("reason", why), LF_I("events", (int64_t)n),
	    LF_I("partitions", (int64_t)nstart), LF_I("first_seq", ev[0].seq),
	    LF_I("last_seq", ev[n - 1].seq));
	ctx.f = xcalloc(n, sizeof(*ctx.f));
	ctx.n = n;
	for (i = 0; i < n; i++)
		ctx.f[i].ev = ev[i];
	qsort(ctx.f, n, sizeof(*ctx.f), cmp_found);
	parts = xcalloc(nstart + 1, sizeof(*parts));
	for (i = 0; i < nstart; i++) {
		snprintf(parts[i].topic, sizeof(parts[i].topic), "%s", start[i].topic);
		parts[i].partition = start[i].partition;
		parts[i].start = start[i].offset;
	}
	while (relay_recover_scan(R.cfg.brokers, parts, nstart, on_scanned, &ctx, 10000,
	    err, sizeof(err)) < 0) {
		if (stop)
			goto out;
		log_warn("recovery scan failed; backing off", LF_S("error", err), LF_I("attempt", attempt));
		backoff(attempt++);
	}
	pub = xcalloc(n, sizeof(*pub));
	dseq = xcalloc(n, sizeof(*dseq));
	derr = xcalloc(n, sizeof(*derr));
	dlq = xcalloc(n, sizeof(*dlq));
	for (i = 0; i < n; i++) {
		struct found *f = &ctx.f[i];

		if (!f->hit)
			continue;
		if (f->ev.seq > max_seq)
			max_seq = f->ev.seq;
		if (topic_id(f->ev.topic) == RELAY_T_DLQ) {
			dseq[ndlq] = f->ev.seq;
			derr[ndlq] = f->error;
			dlq[ndlq].seq = f->ev.seq;
			dlq[ndlq].event_id = f->ev.event_id;
			dlq[ndlq].error = f->error;
			dlq[ndlq].retry_count = f->retry_count;
			ndlq++;
		} else {
			pub[npub++] = f->ev.seq;
		}
	}
	memset(&s, 0, sizeof(s));
	s.published = pub;
	s.npublished = npub;
	s.dlq = dseq;
	s.dlq_error = derr;
	s.ndlq = ndlq;
	if (pg_settle(&s) < 0)
		goto out;
	next = xcalloc(nstart + 1, sizeof(*next));
	for (i = 0; i < nstart; i++) {
		next[i] = start[i];
		if (parts[i].end > next[i].offset)
			next[i].offset = parts[i].end;
		cursor_raise(topic_id(next[i].topic), next[i].partition, next[i].offset);
	}
	if (journal_window_end(R.j, max_seq, next, nstart, dlq, ndlq, err, sizeof(err)) < 0)
		jfatal(err);
	R.recovered += npub + ndlq;
	R.published += npub;
	R.dlqd += ndlq;
	publish_metrics();
	log_info("window recovered", LF_S("reason", why), LF_I("events", (int64_t)n),
	    LF_I("already_on_broker", (int64_t)(npub + ndlq)), LF_I("dead_lettered", (int64_t)ndlq),
	    LF_I("to_republish", (int64_t)(n - npub - ndlq)));
	rc = 0;
out:
	free(ev);
	free(start);
	free(next);
	free(parts);
	free(ctx.f);
	free(pub);
	free(dseq);
	free(derr);
	free(dlq);
	return rc;
}

/* ---- one window ----------------------------------------------------- */

/* Errors about the message itself: retrying cannot help. */
static int
permanent(rd_kafka_resp_err_t e)
{
	switch (e) {
	case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
	case RD_KAFKA_RESP_ERR_INVALID_MSG:
	case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
	case RD_KAFKA_RESP_ERR_INVALID_RECORD:
	case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
	case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
	case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
		return 1;
	default:
		return 0;
	}
}

static void
classify_row(struct ev *e, const char *now)
{
	char why[400] = "";
	char *envelope = NULL;
	int max = R.cfg.outbox_max_retries;

	if (relay_envelope(&e->row, &envelope, why, sizeof(why)) < 0)
		snprintf(e->error, sizeof(e->error), "invalid event: %s", why);
	else if (e->row.retry_count > 0 && e->row.retry_count >= max)
		snprintf(e->error, sizeof(e->error), "retries exhausted (%d): %s", e->row.retry_count,
		    e->row.last_error[0] ? e->row.last_error : "unknown error");
	else if (strncmp(e->row.last_error, "permanent: ", 11) == 0)
		snprintf(e->error, sizeof(e->error), "%s", e->row.last_error);
	else if (strlen(envelope) > RELAY_MESSAGE_MAX_BYTES - 4096)
		snprintf(e->error, sizeof(e->error), "message too large: %zu bytes (limit %d)",
		    strlen(envelope), RELAY_MESSAGE_MAX_BYTES - 4096);
	if (e->error[0] == '\0') {
		e->tid = strcmp(e->row.event_type, "PaymentAuthorized") == 0 ? RELAY_T_AUTHORIZED
		    : RELAY_T_DECLINED;
		e->value = envelope;
	} else {
		/* The DLQ record repeats a valid envelope when it fits, else
		 * only the event's identity and the start of its payload. */
		e->dlq = 1;
		e->tid = RELAY_T_DLQ;
		e->value = relay_dlq_record(&e->row,
		    envelope && strlen(envelope) < RELAY_MESSAGE_MAX_BYTES / 2 ? envelope : NULL,
		    e->row.retry_count, now, e->error);
		free(envelope);
		if (e->value == NULL)
			fatal("out of memory building a DLQ record");
	}
	e->partition = relay_kafka_partition_for(R.k, e->tid, e->row.partition_key);
}

/* Hands the counters to the /metrics thread (a struct copy under a lock). */
static void
publish_metrics(void)
{
	struct relay_metrics_snapshot m = { R.published, R.dlqd, R.windows, R.recovered,
	    R.failures, R.backlog, R.last_window_unix_ms, R.broker_waiting };

	relay_metrics_update(&m);
}

static void
stats(int force)
{
	int64_t now = util_now_ms(), backlog = -1;
	char err[256];

	if (!force && now < R.next_stats_ms)
		return;
	R.next_stats_ms = now + 10000;
	if (R.pg != NULL && relay_pg_backlog(R.pg, &backlog, err, sizeof(err)) < 0)
		backlog = -1;
	R.backlog = backlog;
	publish_metrics();
	log_info("relay stats", LF_I("published", (int64_t)R.published), LF_I("dlq", (int64_t)R.dlqd),
	    LF_I("windows", (int64_t)R.windows), LF_I("recovered", (int64_t)R.recovered),
	    LF_I("failures", (int64_t)R.failures), LF_I("backlog", backlog));
}

/* Waits for every report of the window. 0, or -1 when stopping gave up. */
static int
wait_window(struct ev *evs, size_t n)
{
	int64_t started = util_now_ms(), next_log = started + 5000, stop_at = 0;
	char fatal_err[512];
	size_t i, left;

	for (;;) {
		for (i = 0, left = 0; i < n; i++)
			left += evs[i].state == EV_PENDING;
		if (left == 0) {
			if (R.broker_waiting) {
				R.broker_waiting = 0;
				publish_metrics();
			}
			return 0;
		}
		if (relay_kafka_fatal(R.k, fatal_err, sizeof(fatal_err))) {
			log_error("idempotent producer failed; resolving the window by a scan",
			    LF_S("error", fatal_err));
			/* Purging serves the remaining reports as failures whose
			 * outcome the recovery scan decides. */
			relay_kafka_destroy(R.k);
			R.k = NULL;
			for (i = 0; i < n; i++)
				if (evs[i].state == EV_PENDING) {
					evs[i].state = EV_FAILED;
					evs[i].err = RD_KAFKA_RESP_ERR__FATAL;
					evs[i].persisted = RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED;
				}
			return 0;
		}
		if (stop && stop_at == 0)
			stop_at = util_now_ms() + (int64_t)R.cfg.shutdown_grace_s * 1000;
		if (stop_at && util_now_ms() > stop_at) {
			log_warn("stopping with undelivered events; the journal keeps the window",
			    LF_I("undelivered", (int64_t)left));
			return -1;
		}
		relay_kafka_poll(R.k, 100);
		if (util_now_ms() >= next_log) {
			/* During an outage the relay sits here: librdkafka
			 * reconnects with exponential backoff and jitter, and
			 * Postgres is not read until the window is settled. */
			log_warn("waiting for the broker", LF_I("undelivered", (int64_t)left),
			    LF_I("window", (int64_t)n), LF_I("waited_ms", util_now_ms() - started));
			next_log = util_now_ms() + (util_now_ms() - started);
			if (!R.broker_waiting) {
				R.broker_waiting = 1;
				publish_metrics();
			}
		}
	}
}

/* Returns rows handled (0: nothing to do; -2: rows held back by a writer
 * in flight), or -1 when stopping. */
static int
run_window(void)
{
	PGresult *res = NULL;
	struct ev *evs = NULL;
	struct journal_event *je = NULL;
	struct journal_offset *start = NULL, *next = NULL;
	struct journal_dlq *dlq = NULL;
	int64_t *pub = NULL, *dseq = NULL, *fseq = NULL, max_seq = 0;
	const char **derr = NULL, **ferr = NULL;
	char (*ferrbuf)[300] = NULL;
	char err[512], now[40];
	int64_t t[6] = { 0 };
	size_t n, i, k, nstart = 0, nnext = 0, npub = 0, ndlq = 0, nfail = 0;
	int usable = 0, held = 0, rc, unknown = 0, worst = 0;
	struct relay_settle s;

	if (pg_ready() < 0)
		return -1;
	t[0] = util_now_ns();
	rc = relay_pg_fetch(R.pg, R.cfg.outbox_batch_size, &res, &usable, &held, err, sizeof(err));
	if (rc < 0) {
		pg_lost("outbox read", err, rc);
		return 0;
	}
	if (held && usable == 0) {
		if (R.held_since_ms == 0)
			R.held_since_ms = util_now_ms();
		else if (util_now_ms() - R.held_since_ms > 10000) {
			log_warn("outbox held back by a transaction still in flight",
			    LF_S("next_seq", PQgetvalue(res, 0, RF_SEQ)),
			    LF_I("held_ms", util_now_ms() - R.held_since_ms));
			R.held_since_ms = util_now_ms();
		}
	} else {
		R.held_since_ms = 0;
	}
	n = (size_t)usable;
	if (n == 0) {
		PQclear(res);
		return held ? -2 : 0;
	}
	t[1] = util_now_ns();
	evs = xcalloc(n, sizeof(*evs));
	je = xcalloc(n, sizeof(*je));
	start = xcalloc(n, sizeof(*start));
	iso_now(now, sizeof(now));
	for (i = 0; i < n; i++) {
		struct ev *e = &evs[i];
		int r = (int)i;

		e->row.seq = strtoll(PQgetvalue(res, r, RF_SEQ), NULL, 10);
		e->row.event_id = PQgetvalue(res, r, RF_EVENT_ID);
		e->row.aggregate_type = PQgetvalue(res, r, RF_AGG_TYPE);
		e->row.aggregate_id = PQgetvalue(res, r, RF_AGG_ID);
		e->row.partition_key = PQgetvalue(res, r, RF_KEY);
		e->row.event_type = PQgetvalue(res, r, RF_TYPE);
		e->row.payload = PQgetvalue(res, r, RF_PAYLOAD);
		e->row.correlation_id = PQgetvalue(res, r, RF_CORR);
		e->row.created_at = PQgetvalue(res, r, RF_CREATED);
		e->row.retry_count = atoi(PQgetvalue(res, r, RF_RETRIES));
		e->row.last_error = PQgetvalue(res, r, RF_LAST_ERROR);
		snprintf(e->seqstr, sizeof(e->seqstr), "%lld", (long long)e->row.seq);
		classify_row(e, now);
		je[i].seq = e->row.seq;
		snprintf(je[i].event_id, sizeof(je[i].event_id), "%s", e->row.event_id);
		snprintf(je[i].topic, sizeof(je[i].topic), "%s", R.topic[e->tid]);
		je[i].partition = e->partition;
		/* Where a recovery scan of this partition would start. */
		for (k = 0; k < nstart; k++)
			if (start[k].partition == e->partition && strcmp(start[k].topic, je[i].topic) == 0)
				break;
		if (k == nstart) {
			start[nstart] = (struct journal_offset){ .partition = e->partition,
			    .offset = R.cursor[e->tid][e->partition] };
			snprintf(start[nstart].topic, sizeof(start[nstart].topic), "%s", je[i].topic);
			nstart++;
		}
	}
	t[2] = util_now_ns();
	if (journal_window_begin(R.j, je, n, start, nstart, err, sizeof(err)) < 0)
		jfatal(err);

	t[3] = util_now_ns();
	for (i = 0; i < n; i++) {
		struct ev *e = &evs[i];
		struct relay_headers h = { e->row.event_id, e->row.event_type, e->seqstr,
		    e->row.correlation_id };
		rd_kafka_resp_err_t r;

		while ((r = relay_kafka_produce(R.k, e->tid, e->partition, e->row.partition_key, e->value,
		    strlen(e->value), &h, e)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
			relay_kafka_poll(R.k, 50);
		if (r != RD_KAFKA_RESP_ERR_NO_ERROR) {
			/* Refused before it was queued: certainly not on the broker. */
			e->state = EV_FAILED;
			e->err = r;
			e->persisted = RD_KAFKA_MSG_STATUS_NOT_PERSISTED;
		}
	}
	if (wait_window(evs, n) < 0) {
		rc = -1;
		goto out;
	}
	t[4] = util_now_ns();

	pub = xcalloc(n, sizeof(*pub));
	dseq = xcalloc(n, sizeof(*dseq));
	fseq = xcalloc(n, sizeof(*fseq));
	derr = xcalloc(n, sizeof(*derr));
	ferr = xcalloc(n, sizeof(*ferr));
	ferrbuf = xcalloc(n, sizeof(*ferrbuf));
	dlq = xcalloc(n, sizeof(*dlq));
	next = xcalloc(n, sizeof(*next));
	for (i = 0; i < n; i++) {
		struct ev *e = &evs[i];

		if (e->state == EV_DELIVERED) {
			if (e->row.seq > max_seq)
				max_seq = e->row.seq;
			snprintf(next[nnext].topic, sizeof(next[nnext].topic), "%s", R.topic[e->tid]);
			next[nnext].partition = e->partition;
			next[nnext].offset = e->offset + 1;
			nnext++;
			if (e->dlq) {
				dseq[ndlq] = e->row.seq;
				derr[ndlq] = e->error;
				dlq[ndlq] = (struct journal_dlq){ e->row.seq, e->row.event_id, e->error,
				    e->row.retry_count };
				ndlq++;
				log_warn("event dead-lettered", LF_I("outbox_seq", e->row.seq),
				    LF_S("event_id", e->row.event_id), LF_S("error", e->error),
				    LF_I("retry_count", e->row.retry_count));
			} else {
				pub[npub++] = e->row.seq;
			}
			continue;
		}
		/* Failed: counted, retried in a later window, or DLQ'd at once
		 * when the broker refused the message itself. */
		snprintf(ferrbuf[nfail], sizeof(ferrbuf[nfail]), "%s%s",
		    permanent(e->err) && !e->dlq ? "permanent: " : "", rd_kafka_err2str(e->err));
		fseq[nfail] = e->row.seq;
		ferr[nfail] = ferrbuf[nfail];
		{
			int count = 0;
			if (journal_failure(R.j, e->row.seq, e->row.event_id, ferrbuf[nfail], &count,
			    err, sizeof(err)) < 0)
				jfatal(err);
			if (count > worst)
				worst = count;
			log_warn("publish failed; will retry or dead-letter", LF_I("outbox_seq", e->row.seq),
			    LF_S("event_id", e->row.event_id), LF_S("error", ferrbuf[nfail]),
			    LF_I("failures", count), LF_I("retry_count", e->row.retry_count), LF_B("maybe_on_broker",
			    e->persisted != RD_KAFKA_MSG_STATUS_NOT_PERSISTED));
		}
		nfail++;
		R.failures++;
		if (e->persisted != RD_KAFKA_MSG_STATUS_NOT_PERSISTED)
			unknown = 1;
	}

	memset(&s, 0, sizeof(s));
	s.failed = fseq;
	s.fail_error = ferr;
	s.nfailed = nfail;
	if (unknown) {
		/* Some message may or may not be on the broker: settle nothing
		 * from the reports, let the scan decide for the whole window. */
		if (pg_settle(&s) < 0) {
			rc = -1;
			goto out;
		}
		if (R.k != NULL) {
			relay_kafka_destroy(R.k);
			R.k = NULL;
		}
		if (recover_window("unknown delivery outcome") < 0 || kafka_start() < 0) {
			rc = -1;
			goto out;
		}
	} else {
		s.published = pub;
		s.npublished = npub;
		s.dlq = dseq;
		s.dlq_error = derr;
		s.ndlq = ndlq;
		if (pg_settle(&s) < 0) {
			rc = -1;
			goto out;
		}
		if (journal_window_end(R.j, max_seq, next, nnext, dlq, ndlq, err, sizeof(err)) < 0)
			jfatal(err);
		for (i = 0; i < nnext; i++)
			cursor_raise(topic_id(next[i].topic), next[i].partition, next[i].offset);
		R.published += npub;
		R.dlqd += ndlq;
	}
	R.windows++;
	R.last_window_unix_ms = util_realtime_ms();
	publish_metrics();
	t[5] = util_now_ns();
	log_debug("window settled", LF_I("events", (int64_t)n), LF_I("fetch_us", (t[1] - t[0]) / 1000),
	    LF_I("build_us", (t[2] - t[1]) / 1000), LF_I("journal_us", (t[3] - t[2]) / 1000),
	    LF_I("produce_us", (t[4] - t[3]) / 1000), LF_I("settle_us", (t[5] - t[4]) / 1000));
	if (nfail > 0)
		backoff(worst > 0 ? worst - 1 : 0);
	rc = (int)n;
out:
	if (rc == -1 && R.k != NULL) {
		/* Stopping mid-window: purge while the reports' targets still
		 * exist; the journal keeps the window for the next start. */
		relay_kafka_destroy(R.k);
		R.k = NULL;
	}
	for (i = 0; i < n; i++)
		free(evs[i].value);
	free(evs);
	free(je);
	free(start);
	free(next);
	free(pub);
	free(dseq);
	free(fseq);
	free(derr);
	free(ferr);
	free(ferrbuf);
	free(dlq);
	PQclear(res);
	return rc;
}

/* ---- process -------------------------------------------------------- */

/*
 * The relay's name in Postgres: host and journal path (hashed to fit
 * application_name). A session holding the lock under the same name can
 * only be this journal's previous process.
 */
static void
make_ident(void)
{
	char host[256] = "", lock[4096], abs[4096];
	uint64_t h = 1469598103934665603ULL;
	const char *p;

	gethostname(host, sizeof(host) - 1);
	/* The lock file exists by now, so the absolute path is stable. */
	snprintf(lock, sizeof(lock), "%.4000s.lock", R.cfg.journal_path);
	if (realpath(lock, abs) == NULL)
		snprintf(abs, sizeof(abs), "%s", lock);
	for (p = host; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	h = (h ^ '|') * 1099511628211ULL;
	for (p = abs; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	snprintf(R.ident, sizeof(R.ident), "payment-relay/%016llx", (unsigned long long)h);
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/*
 * glibc's qsort asks sysconf(_SC_PHYS_PAGES) — sysinfo(2), which the
 * relay's seccomp profile does not allow — the first time it sorts more
 * than 1 KiB, and caches the answer. Sort once while that is still
 * allowed, so that recovery scans (and librdkafka) never ask.
 */
static void
warm_libc(void)
{
	int64_t warm[512];
	size_t i;

	for (i = 0; i < ARRAY_LEN(warm); i++)
		warm[i] = (int64_t)(ARRAY_LEN(warm) - i);
	qsort(warm, ARRAY_LEN(warm), sizeof(warm[0]), cmp_i64);
}

static struct sandbox_opts
sandbox_options(void)
{
	struct sandbox_opts o;

	memset(&o, 0, sizeof(o));
	o.profile = SANDBOX_RELAY;
	o.chroot_dir = NULL;	/* the journal lives on the real file system */
	o.debug = R.cfg.sandbox_debug;
	o.max_fds = 256;
	return o;
}

/*
 * Identity and limits, before any thread exists: glibc changes the ids of
 * every thread with a signal, and librdkafka's broker threads lose a poll
 * to it (a second of stall at every start). The lock file is handed to the
 * relay's user so that a later run as that user can open it.
 */
static void
drop_privileges(int lock_fd)
{
	struct sandbox_opts o = sandbox_options();
	struct sandbox_ids ids;
	char err[512];

	warm_libc();
	if (geteuid() == 0) {
		if (sandbox_resolve(R.cfg.user, &ids, err, sizeof(err)) < 0)
			fatal("sandbox: %s", err);
		if (fchown(lock_fd, ids.uid, ids.gid) < 0)
			fatal("sandbox: chown of the journal lock: %s", strerror(errno));
	} else {
		/* Already unprivileged: keep the identity, apply the rest. */
		memset(&ids, 0, sizeof(ids));
		ids.uid = geteuid();
		ids.gid = getegid();
	}
	if (sandbox_drop(&ids, &o, err, sizeof(err)) < 0)
		fatal("sandbox: %s", err);
}

/* The seccomp filter, on every thread (TSYNC). */
static void
lock_down(void)
{
	char err[512];

	if (sandbox_seccomp(SANDBOX_RELAY, R.cfg.sandbox_debug, err, sizeof(err)) < 0)
		fatal("sandbox: %s", err);
}

int
main(int argc, char **argv)
{
	struct journal_stats st;
	struct sigaction sa;
	char err[512];
	int64_t poll_ms;
	int n, t, lock_fd = -1, metrics_fd = -1;

	(void)argv;
	if (argc > 1) {
		fprintf(stderr, "usage: payment-relay (configured by the environment; see docs/relay.md)\n");
		return 2;
	}
	if (cfg_load(&R.cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "payment-relay: configuration error: %s\n", err);
		return 2;
	}
	log_init("relay", R.cfg.log_level, R.cfg.log_format);
	poll_ms = (int64_t)(R.cfg.outbox_poll_interval_s * 1000);
	if (poll_ms < 1)
		poll_ms = 1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	setenv("PGCONNECT_TIMEOUT", "5", 0);
	snprintf(R.topic[RELAY_T_AUTHORIZED], sizeof(R.topic[0]), "%s.paymentauthorized", R.cfg.topic_prefix);
	snprintf(R.topic[RELAY_T_DECLINED], sizeof(R.topic[0]), "%s.paymentdeclined", R.cfg.topic_prefix);
	snprintf(R.topic[RELAY_T_DLQ], sizeof(R.topic[0]), "%s.dlq", R.cfg.topic_prefix);

	/*
	 * Order matters for the sandbox: the journal lock (flock is not in
	 * the seccomp profile) as the invoking user; then the identity drop,
	 * before any thread exists; then the first Postgres connection and
	 * the producer (library initialisation, the first threads), which
	 * need calls the running relay does not; then the seccomp filter;
	 * then the journal, opened as the relay's user, who owns its files.
	 */
	if (journal_lock(R.cfg.journal_path, &lock_fd, err, sizeof(err)) < 0)
		fatal("%s", err);
	make_ident();
	R.backlog = -1;
	/* The metrics port is bound before the drop (any port number), its
	 * thread started after it (identity changes before any thread) and
	 * before the seccomp filter, which TSYNC applies to it as well. */
	metrics_fd = relay_metrics_listen(R.cfg.metrics_host[0] ? R.cfg.metrics_host : R.cfg.grpc_host,
	    R.cfg.relay_metrics_port, err, sizeof(err));
	if (metrics_fd < 0 && R.cfg.relay_metrics_port > 0)
		fatal("%s", err);
	if (R.cfg.sandbox)
		drop_privileges(lock_fd);
	if (metrics_fd >= 0) {
		if (relay_metrics_start(metrics_fd, err, sizeof(err)) < 0)
			fatal("%s", err);
		publish_metrics();
	}
	if (pg_ready() < 0 || kafka_new() < 0)
		goto done;
	if (R.cfg.sandbox)
		lock_down();
	if (journal_open(R.cfg.journal_path, lock_fd, &R.j, err, sizeof(err)) < 0)
		fatal("%s", err);
	if (journal_stats(R.j, &st, err, sizeof(err)) < 0)
		jfatal(err);
	log_info("payment-relay starting", LF_S("brokers", R.cfg.brokers),
	    LF_S("journal", R.cfg.journal_path), LF_I("journal_max_published_seq", st.max_published_seq),
	    LF_I("journal_windows", st.windows), LF_I("journal_dlq", st.dlq),
	    LF_I("journal_open_window", st.open_window), LF_I("batch", R.cfg.outbox_batch_size), LF_I("max_retries", R.cfg.outbox_max_retries),
	    LF_B("sandbox", R.cfg.sandbox), LF_I("metrics_port", metrics_fd >= 0 ? R.cfg.relay_metrics_port : 0));
	if (kafka_metadata() < 0 || recover_window("restart") < 0)
		goto done;
	log_info("payment-relay running", LF_I("partitions_authorized", R.ncursor[RELAY_T_AUTHORIZED]),
	    LF_I("partitions_declined", R.ncursor[RELAY_T_DECLINED]));

	while (!stop) {
		n = run_window();
		if (n == -1)
			break;
		stats(0);
		if (util_now_ms() >= R.next_metadata_ms && kafka_metadata() < 0)
			break;
		/* Rows handled: look again at once (backlog drains at full
		 * speed). Held back by a writer in flight: look again soon.
		 * Idle: OUTBOX_POLL_INTERVAL_SECONDS. */
		if (n == -2)
			sleep_ms(poll_ms < 50 ? poll_ms : 50);
		else if (n == 0)
			sleep_ms(poll_ms);
	}
done:
	stats(1);
	relay_kafka_destroy(R.k);
	for (t = 0; t < RELAY_NTOPICS; t++)
		free(R.cursor[t]);
	journal_close(R.j);
	if (R.pg)
		PQfinish(R.pg);
	log_info("payment-relay stopped", LF_I("published", (int64_t)R.published),
	    LF_I("dlq", (int64_t)R.dlqd));
	return 0;
}
