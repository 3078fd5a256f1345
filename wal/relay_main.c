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
 * One window is the steps window_open() .. window_close() below; the
 * Postgres and Kafka sides are relay_pg.c and relay_kafka.c.
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
#include "relay_retry.h"
#include "sandbox/sandbox.h"
#include "common/util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum ev_state { EV_PENDING, EV_DELIVERED, EV_FAILED };

/* One outbox row of a window and what became of its message. */
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
	struct config        cfg;
	struct relay_pg_link pg;
	struct journal      *j;
	struct relay_kafka  *k;
	char                 topic[RELAY_NTOPICS][128];
	char                 ident[64];		/* application_name: host + journal */
	struct relay_cursors cur;
	uint64_t             published, dlqd, windows, recovered, failures;
	int64_t              next_stats_ms, next_metadata_ms, held_since_ms;
	int64_t              backlog, last_window_unix_ms;	/* for /metrics */
	int                  broker_waiting;
} R;

static volatile sig_atomic_t stop;

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

/* The wait before retry number attempt, from OUTBOX_*_DELAY_SECONDS;
 * cut short by SIGTERM. */
static void
backoff(int attempt)
{
	sleep_ms(relay_backoff_ms(attempt, R.cfg.outbox_base_delay_s, R.cfg.outbox_max_delay_s, rnd32()));
}

/* What relay_pg.c and relay_kafka.c wait with through an outage. */
static const struct relay_retry retry = { &stop, backoff };

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

static void
cursor_raise(const char *topic, int32_t partition, int64_t next)
{
	relay_cursors_raise(&R.cur, topic_id(topic), partition, next);
}

/* ---- counters ------------------------------------------------------- */

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
	if (R.pg.conn != NULL && relay_pg_backlog(R.pg.conn, &backlog, err, sizeof(err)) < 0)
		backlog = -1;
	R.backlog = backlog;
	publish_metrics();
	log_info("relay stats", LF_I("published", (int64_t)R.published), LF_I("dlq", (int64_t)R.dlqd),
	    LF_I("windows", (int64_t)R.windows), LF_I("recovered", (int64_t)R.recovered),
	    LF_I("failures", (int64_t)R.failures), LF_I("backlog", backlog));
}

/* ---- Postgres (relay_pg.c): a refusal stops the relay ---------------- */

/* Connected (with the advisory lock): 0, or -1 when stopping. */
static int
pg_ready(void)
{
	char err[512];
	int rc = relay_pg_ready(&R.pg, err, sizeof(err));

	if (rc == RELAY_PG_FATAL)
		fatal("%s", err);
	return rc == 0 ? 0 : -1;
}

static void
pg_lost(const char *what, const char *err, int rc)
{
	if (rc == RELAY_PG_FATAL)
		fatal("%s: %s", what, err);
	relay_pg_lost(&R.pg, what, err);
}

/* Applies a window's outcome once Postgres takes it: 0, or -1 when stopping. */
static int
pg_settle(const struct relay_settle *s)
{
	char err[512];
	int rc = relay_pg_settle_retry(&R.pg, s, err, sizeof(err));

	if (rc == RELAY_PG_FATAL)
		fatal("%s", err);
	return rc == 0 ? 0 : -1;
}

/* ---- Kafka (relay_kafka.c) ------------------------------------------ */

static void on_delivery(void *opaque, rd_kafka_resp_err_t err, rd_kafka_msg_status_t persisted,
    int32_t partition, int64_t offset);

/*
 * Partition counts and a cursor for every partition; the cursors new to
 * the journal are journaled before anything is produced there. 0, or -1
 * when stopping.
 */
static int
kafka_metadata(void)
{
	struct journal_offset *known = NULL, *add = NULL;
	size_t nknown = 0, nadd = 0;
	char err[512];
	int rc;

	if (journal_cursors(R.j, &known, &nknown, err, sizeof(err)) < 0)
		jfatal(err);
	rc = relay_kafka_refresh(R.k, &R.cur, known, nknown, &retry, &add, &nadd);
	if (rc == 0 && nadd > 0 && journal_cursors_raise(R.j, add, nadd, err, sizeof(err)) < 0)
		jfatal(err);
	free(known);
	free(add);
	if (rc == 0)
		R.next_metadata_ms = util_now_ms() + 60000;
	return rc;
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

/* ---- settling ------------------------------------------------------- */

/*
 * What a window (or its recovery) settles, in the shapes relay_pg_settle()
 * and journal_window_end() take: the events that reached their topic, the
 * ones that reached the DLQ (with why), and those that failed.
 */
struct outcome {
	int64_t            *pub, *dseq, *fseq, max_seq;
	const char        **derr, **ferr;
	struct journal_dlq *dlq;
	size_t              npub, ndlq, nfail;
};

/* Room for n events of each kind. */
static void
outcome_init(struct outcome *o, size_t n)
{
	memset(o, 0, sizeof(*o));
	o->pub = xcalloc(n + 1, sizeof(*o->pub));
	o->dseq = xcalloc(n + 1, sizeof(*o->dseq));
	o->fseq = xcalloc(n + 1, sizeof(*o->fseq));
	o->derr = xcalloc(n + 1, sizeof(*o->derr));
	o->ferr = xcalloc(n + 1, sizeof(*o->ferr));
	o->dlq = xcalloc(n + 1, sizeof(*o->dlq));
}

static void
outcome_free(struct outcome *o)
{
	free(o->pub);
	free(o->dseq);
	free(o->fseq);
	free(o->derr);
	free(o->ferr);
	free(o->dlq);
}

/* An event on the broker: on its topic, or (dlq_error set) on the DLQ.
 * The strings must outlive the settlement. */
static void
outcome_delivered(struct outcome *o, int64_t seq, const char *event_id, const char *dlq_error,
    int retry_count)
{
	if (seq > o->max_seq)
		o->max_seq = seq;
	if (dlq_error == NULL) {
		o->pub[o->npub++] = seq;
		return;
	}
	o->dseq[o->ndlq] = seq;
	o->derr[o->ndlq] = dlq_error;
	o->dlq[o->ndlq] = (struct journal_dlq){ seq, event_id, dlq_error, retry_count };
	o->ndlq++;
}

/* The failures alone (delivered is 0) or everything, for Postgres. */
static struct relay_settle
outcome_rows(const struct outcome *o, int delivered)
{
	struct relay_settle s = { NULL, 0, NULL, NULL, 0, o->fseq, o->ferr, o->nfail };

	if (delivered) {
		s.published = o->pub;
		s.npublished = o->npub;
		s.dlq = o->dseq;
		s.dlq_error = o->derr;
		s.ndlq = o->ndlq;
	}
	return s;
}

/*
 * Settles the whole outcome: Postgres first (one statement), then the
 * journal (window cleared, cursors raised to next[]). In this order a
 * crash between the two leaves a journaled window whose rows are already
 * marked: the recovery at the next start marks them again, harmlessly.
 * 0, or -1 when stopping.
 */
static int
outcome_settle(const struct outcome *o, const struct journal_offset *next, size_t nnext)
{
	struct relay_settle s = outcome_rows(o, 1);
	char err[512];
	size_t i;

	if (pg_settle(&s) < 0)
		return -1;
	if (journal_window_end(R.j, o->max_seq, next, nnext, o->dlq, o->ndlq, err, sizeof(err)) < 0)
		jfatal(err);
	for (i = 0; i < nnext; i++)
		cursor_raise(next[i].topic, next[i].partition, next[i].offset);
	R.published += o->npub;
	R.dlqd += o->ndlq;
	return 0;
}

/* ---- recovery ------------------------------------------------------- */

/*
 * Resolves the journaled window (after a crash, or when the producer lost
 * track of it): events found on the broker (relay_recover_window) are
 * settled, the others stay unpublished and go out again in a later
 * window. 0, or -1 when stopping.
 */
static int
recover_window(const char *why)
{
	struct journal_event *ev = NULL;
	struct journal_offset *start = NULL, *next = NULL;
	struct relay_found *f = NULL;
	struct outcome o;
	size_t n, nstart, i, found;
	char err[512];
	int rc = -1;

	memset(&o, 0, sizeof(o));
	if (journal_window_load(R.j, &ev, &n, &start, &nstart, err, sizeof(err)) < 0)
		jfatal(err);
	if (n == 0) {
		rc = 0;
		goto out;
	}
	log_info("recovering an unsettled window", LF_S("reason", why), LF_I("events", (int64_t)n),
	    LF_I("partitions", (int64_t)nstart), LF_I("first_seq", ev[0].seq),
	    LF_I("last_seq", ev[n - 1].seq));
	next = xcalloc(nstart + 1, sizeof(*next));
	if (relay_recover_window(R.cfg.brokers, R.topic[RELAY_T_DLQ], ev, n, start, nstart, &retry,
	    &f, next) < 0)
		goto out;
	outcome_init(&o, n);
	for (i = 0; i < n; i++)
		if (f[i].hit)
			outcome_delivered(&o, f[i].ev.seq, f[i].ev.event_id, f[i].dlq ? f[i].error : NULL,
			    f[i].retry_count);
	if (outcome_settle(&o, next, nstart) < 0)
		goto out;
	found = o.npub + o.ndlq;
	R.recovered += found;
	publish_metrics();
	log_info("window recovered", LF_S("reason", why), LF_I("events", (int64_t)n),
	    LF_I("already_on_broker", (int64_t)found), LF_I("dead_lettered", (int64_t)o.ndlq),
	    LF_I("to_republish", (int64_t)(n - found)));
	rc = 0;
out:
	free(ev);
	free(start);
	free(next);
	free(f);
	outcome_free(&o);
	return rc;
}

/* ---- one window ----------------------------------------------------- */

/*
 * A window: the rows read, what each becomes on the broker and, once the
 * reports are in, the outcome to settle. It lives for one pass of the
 * main loop, from window_open() to window_close().
 */
struct window {
	PGresult              *res;		/* the rows; evs[].row points into it */
	struct ev             *evs;
	size_t                 n;
	struct journal_event  *je;		/* the window as journaled */
	struct journal_offset *start;		/* where a scan of each partition starts */
	size_t                 nstart;
	struct outcome         out;		/* from the reports (window_tally) */
	char                 (*ferrbuf)[300];	/* out.ferr[] points here */
	struct journal_offset *next;		/* cursors after the delivered messages */
	size_t                 nnext;
	int                    unknown;		/* a failed message may be on the broker */
	int                    worst;		/* highest failure count among the failed */
	int64_t                t[6];		/* when each step began (ns), for the debug line */
};

/* Delivery report of one message (from relay_kafka_poll, on this thread). */
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

/* Topic, message and partition of one event: its envelope on its type's
 * topic, or a DLQ record saying why not (relay_classify). */
static void
classify_row(struct ev *e, const char *now)
{
	int rc = relay_classify(&e->row, R.cfg.outbox_max_retries, RELAY_MESSAGE_MAX_BYTES, now,
	    &e->value, e->error, sizeof(e->error));

	if (rc < 0)
		fatal("out of memory building a DLQ record");
	e->dlq = rc;
	if (e->dlq)
		e->tid = RELAY_T_DLQ;
	else if (strcmp(e->row.event_type, "PaymentAuthorized") == 0)
		e->tid = RELAY_T_AUTHORIZED;
	else
		e->tid = RELAY_T_DECLINED;
	e->partition = relay_kafka_partition_for(R.k, e->tid, e->row.partition_key);
}

/*
 * Contract step 1: the next rows, up to a batch, in seq order and never
 * past a row whose writer may still be in flight. Returns the rows to
 * publish, 0 when there are none (or Postgres went away: the next pass
 * reconnects), -2 when rows are held back by a writer in flight, -1 when
 * stopping. An outbox held back for long is logged every 10 s: a writer
 * that neither commits nor aborts stops the relay, and someone should know.
 */
static int
window_open(struct window *w)
{
	char err[512];
	int usable = 0, held = 0, rc;

	memset(w, 0, sizeof(*w));
	if (pg_ready() < 0)
		return -1;
	w->t[0] = util_now_ns();
	rc = relay_pg_fetch(R.pg.conn, R.cfg.outbox_batch_size, &w->res, &usable, &held, err, sizeof(err));
	if (rc < 0) {
		pg_lost("outbox read", err, rc);
		return 0;
	}
	if (held && usable == 0) {
		if (R.held_since_ms == 0)
			R.held_since_ms = util_now_ms();
		else if (util_now_ms() - R.held_since_ms > 10000) {
			log_warn("outbox held back by a transaction still in flight",
			    LF_S("next_seq", PQgetvalue(w->res, 0, RF_SEQ)),
			    LF_I("held_ms", util_now_ms() - R.held_since_ms));
			R.held_since_ms = util_now_ms();
		}
	} else {
		R.held_since_ms = 0;
	}
	w->n = (size_t)usable;
	if (w->n == 0)
		return held ? -2 : 0;
	return (int)w->n;
}

/*
 * Contract step 2, first half: what each row becomes (classify_row) and,
 * per partition involved, where a recovery scan would start — the cursor,
 * the offset the window's first message there will get. All of it is
 * decided before anything is produced, so the journal can hold it.
 */
static void
window_plan(struct window *w)
{
	char now[40];
	size_t i, k;

	w->t[1] = util_now_ns();
	w->evs = xcalloc(w->n, sizeof(*w->evs));
	w->je = xcalloc(w->n, sizeof(*w->je));
	w->start = xcalloc(w->n, sizeof(*w->start));
	iso_now(now, sizeof(now));
	for (i = 0; i < w->n; i++) {
		struct ev *e = &w->evs[i];
		struct journal_event *je = &w->je[i];

		relay_pg_row(w->res, (int)i, &e->row);
		snprintf(e->seqstr, sizeof(e->seqstr), "%lld", (long long)e->row.seq);
		classify_row(e, now);
		je->seq = e->row.seq;
		snprintf(je->event_id, sizeof(je->event_id), "%s", e->row.event_id);
		snprintf(je->topic, sizeof(je->topic), "%s", R.topic[e->tid]);
		je->partition = e->partition;
		for (k = 0; k < w->nstart; k++)
			if (w->start[k].partition == e->partition && strcmp(w->start[k].topic, je->topic) == 0)
				break;
		if (k == w->nstart) {
			w->start[k] = (struct journal_offset){ .partition = e->partition,
			    .offset = R.cur.next[e->tid][e->partition] };
			snprintf(w->start[k].topic, sizeof(w->start[k].topic), "%s", je->topic);
			w->nstart++;
		}
	}
}

/*
 * Contract step 2, second half: the window is durable before its first
 * message can reach the broker. Whatever happens after this — a crash, a
 * fatal producer — a scan from these offsets tells which events made it.
 * A journal that cannot write stops the relay here (jfatal).
 */
static void
window_journal(struct window *w)
{
	char err[512];

	w->t[2] = util_now_ns();
	if (journal_window_begin(R.j, w->je, w->n, w->start, w->nstart, err, sizeof(err)) < 0)
		jfatal(err);
}

/*
 * Contract step 3, first half: every message to the producer, on the
 * partition the plan chose. A message librdkafka refuses before queueing
 * it is certainly not on the broker: it fails at once (window_tally).
 */
static void
window_produce(struct window *w)
{
	size_t i;

	w->t[3] = util_now_ns();
	for (i = 0; i < w->n; i++) {
		struct ev *e = &w->evs[i];
		struct relay_headers h = { e->row.event_id, e->row.event_type, e->seqstr,
		    e->row.correlation_id };
		rd_kafka_resp_err_t r;

		while ((r = relay_kafka_produce(R.k, e->tid, e->partition, e->row.partition_key, e->value,
		    strlen(e->value), &h, e)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
			relay_kafka_poll(R.k, 50);
		if (r != RD_KAFKA_RESP_ERR_NO_ERROR) {
			e->state = EV_FAILED;
			e->err = r;
			e->persisted = RD_KAFKA_MSG_STATUS_NOT_PERSISTED;
		}
	}
}

/*
 * Contract step 3, second half: every delivery report, however long the
 * broker is away (nothing is settled before the broker acked it). A fatal
 * producer error ends the wait with the rest unknown, for a scan to
 * decide. 0, or -1 when SIGTERM's grace ran out first.
 */
static int
window_wait(struct window *w)
{
	int64_t started = util_now_ms(), next_log = started + 5000, stop_at = 0;
	char fatal_err[512];
	size_t i, left;

	for (;;) {
		for (i = 0, left = 0; i < w->n; i++)
			left += w->evs[i].state == EV_PENDING;
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
			for (i = 0; i < w->n; i++)
				if (w->evs[i].state == EV_PENDING) {
					w->evs[i].state = EV_FAILED;
					w->evs[i].err = RD_KAFKA_RESP_ERR__FATAL;
					w->evs[i].persisted = RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED;
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
			    LF_I("window", (int64_t)w->n), LF_I("waited_ms", util_now_ms() - started));
			next_log = util_now_ms() + (util_now_ms() - started);
			if (!R.broker_waiting) {
				R.broker_waiting = 1;
				publish_metrics();
			}
		}
	}
}

/* A failed event: its error, and one more failure in the journal, whose
 * count decides between retrying it and dead-lettering it. */
static void
tally_failure(struct window *w, const struct ev *e)
{
	char err[512];
	char *msg = w->ferrbuf[w->out.nfail];
	int count = 0;

	snprintf(msg, sizeof(w->ferrbuf[0]), "%s%s", permanent(e->err) && !e->dlq ? "permanent: " : "",
	    rd_kafka_err2str(e->err));
	w->out.fseq[w->out.nfail] = e->row.seq;
	w->out.ferr[w->out.nfail] = msg;
	if (journal_failure(R.j, e->row.seq, e->row.event_id, msg, &count, err, sizeof(err)) < 0)
		jfatal(err);
	if (count > w->worst)
		w->worst = count;
	log_warn("publish failed; will retry or dead-letter", LF_I("outbox_seq", e->row.seq),
	    LF_S("event_id", e->row.event_id), LF_S("error", msg),
	    LF_I("failures", count), LF_I("retry_count", e->row.retry_count), LF_B("maybe_on_broker",
	    e->persisted != RD_KAFKA_MSG_STATUS_NOT_PERSISTED));
	w->out.nfail++;
	R.failures++;
	if (e->persisted != RD_KAFKA_MSG_STATUS_NOT_PERSISTED)
		w->unknown = 1;
}

/*
 * Contract step 4, first half: the reports sorted into what to settle —
 * delivered events (published, or dead-lettered) with the cursor after
 * each; failed ones (tally_failure), to be retried in a later window or,
 * when the broker refused the message itself, dead-lettered there.
 */
static void
window_tally(struct window *w)
{
	size_t i, n = w->n;

	w->t[4] = util_now_ns();
	outcome_init(&w->out, n);
	w->ferrbuf = xcalloc(n, sizeof(*w->ferrbuf));
	w->next = xcalloc(n, sizeof(*w->next));
	for (i = 0; i < n; i++) {
		struct ev *e = &w->evs[i];
		struct journal_offset *nx = &w->next[w->nnext];

		if (e->state != EV_DELIVERED) {
			tally_failure(w, e);
			continue;
		}
		snprintf(nx->topic, sizeof(nx->topic), "%s", R.topic[e->tid]);
		nx->partition = e->partition;
		nx->offset = e->offset + 1;
		w->nnext++;
		outcome_delivered(&w->out, e->row.seq, e->row.event_id, e->dlq ? e->error : NULL,
		    e->row.retry_count);
		if (e->dlq)
			log_warn("event dead-lettered", LF_I("outbox_seq", e->row.seq),
			    LF_S("event_id", e->row.event_id), LF_S("error", e->error),
			    LF_I("retry_count", e->row.retry_count));
	}
}

/*
 * Contract steps 4 and 5: the outcome made permanent (outcome_settle).
 * When some outcome is unknown only the failures are settled from the
 * reports: a scan of the window's partitions decides the rest, and a new
 * producer takes over. 0, or -1 when stopping.
 */
static int
window_settle(struct window *w)
{
	struct relay_settle failed;

	if (!w->unknown)
		return outcome_settle(&w->out, w->next, w->nnext);
	failed = outcome_rows(&w->out, 0);
	if (pg_settle(&failed) < 0)
		return -1;
	if (R.k != NULL) {
		relay_kafka_destroy(R.k);
		R.k = NULL;
	}
	return recover_window("unknown delivery outcome") < 0 || kafka_start() < 0 ? -1 : 0;
}

/*
 * After a settled window: the counters and /metrics, the time each step
 * took (debug), and a pause after failures, longer the more often the
 * worst of them failed, so that a broker refusing messages is not hammered.
 */
static void
window_done(struct window *w)
{
	R.windows++;
	R.last_window_unix_ms = util_realtime_ms();
	publish_metrics();
	w->t[5] = util_now_ns();
	log_debug("window settled", LF_I("events", (int64_t)w->n),
	    LF_I("fetch_us", (w->t[1] - w->t[0]) / 1000), LF_I("build_us", (w->t[2] - w->t[1]) / 1000),
	    LF_I("journal_us", (w->t[3] - w->t[2]) / 1000), LF_I("produce_us", (w->t[4] - w->t[3]) / 1000),
	    LF_I("settle_us", (w->t[5] - w->t[4]) / 1000));
	if (w->out.nfail > 0)
		backoff(w->worst > 0 ? w->worst - 1 : 0);
}

/*
 * Frees the window. Stopping mid-window (rc -1 once rows were read), the
 * producer goes first: destroying it purges what is still queued while
 * the reports' targets (evs) exist. The journal keeps the window for the
 * next start.
 */
static void
window_close(struct window *w, int rc)
{
	size_t i;

	if (rc == -1 && w->n > 0 && R.k != NULL) {
		relay_kafka_destroy(R.k);
		R.k = NULL;
	}
	for (i = 0; w->evs != NULL && i < w->n; i++)
		free(w->evs[i].value);
	free(w->evs);
	free(w->je);
	free(w->start);
	free(w->next);
	free(w->ferrbuf);
	outcome_free(&w->out);
	PQclear(w->res);
}

/* One pass of the contract: the rows handled, 0 when there was nothing to
 * do, -2 when rows are held back by a writer in flight, -1 when stopping. */
static int
window_next(void)
{
	struct window w;
	int rc = window_open(&w);

	if (rc > 0) {
		window_plan(&w);
		window_journal(&w);
		window_produce(&w);
		if (window_wait(&w) < 0)
			rc = -1;
		else {
			window_tally(&w);
			if (window_settle(&w) < 0)
				rc = -1;
			else
				window_done(&w);
		}
	}
	window_close(&w, rc);
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

/* Settings, logging, signals and topic names. 0, or -1 (said on stderr). */
static int
configure(void)
{
	struct sigaction sa;
	char err[512];

	if (cfg_load(&R.cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "payment-relay: configuration error: %s\n", err);
		return -1;
	}
	log_init("relay", R.cfg.log_level, R.cfg.log_format);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	setenv("PGCONNECT_TIMEOUT", "5", 0);
	snprintf(R.topic[RELAY_T_AUTHORIZED], sizeof(R.topic[0]), "%s.paymentauthorized", R.cfg.topic_prefix);
	snprintf(R.topic[RELAY_T_DECLINED], sizeof(R.topic[0]), "%s.paymentdeclined", R.cfg.topic_prefix);
	snprintf(R.topic[RELAY_T_DLQ], sizeof(R.topic[0]), "%s.dlq", R.cfg.topic_prefix);
	return 0;
}

/*
 * Everything up to the first window, in the order the sandbox needs: the
 * journal lock (flock is not in the seccomp profile) as the invoking
 * user; then the identity drop, before any thread exists; then the first
 * Postgres connection and the producer (library initialisation, the first
 * threads), which need calls the running relay does not; then the seccomp
 * filter; then the journal, opened as the relay's user, who owns its
 * files; last the cursors and the recovery of an unsettled window.
 * 0, or -1 when stopping.
 */
static int
start(void)
{
	struct journal_stats st;
	char err[512];
	int lock_fd = -1, metrics_fd;

	if (journal_lock(R.cfg.journal_path, &lock_fd, err, sizeof(err)) < 0)
		fatal("%s", err);
	make_ident();
	R.pg = (struct relay_pg_link){ R.cfg.database_url, R.ident, &retry, NULL };
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
		return -1;
	if (R.cfg.sandbox)
		lock_down();
	if (journal_open(R.cfg.journal_path, lock_fd, &R.j, err, sizeof(err)) < 0)
		fatal("%s", err);
	if (journal_stats(R.j, &st, err, sizeof(err)) < 0)
		jfatal(err);
	log_info("payment-relay starting", LF_S("brokers", R.cfg.brokers),
	    LF_S("journal", R.cfg.journal_path), LF_I("journal_max_published_seq", st.max_published_seq),
	    LF_I("journal_windows", st.windows), LF_I("journal_dlq", st.dlq),
	    LF_I("journal_open_window", st.open_window), LF_I("batch", R.cfg.outbox_batch_size),
	    LF_I("max_retries", R.cfg.outbox_max_retries), LF_B("sandbox", R.cfg.sandbox),
	    LF_I("metrics_port", metrics_fd >= 0 ? R.cfg.relay_metrics_port : 0));
	if (kafka_metadata() < 0 || recover_window("restart") < 0)
		return -1;
	log_info("payment-relay running", LF_I("partitions_authorized", R.cur.n[RELAY_T_AUTHORIZED]),
	    LF_I("partitions_declined", R.cur.n[RELAY_T_DECLINED]));
	return 0;
}

/* Windows until SIGTERM, with the stats line and the metadata refresh. */
static void
serve(void)
{
	int64_t poll_ms = (int64_t)(R.cfg.outbox_poll_interval_s * 1000);
	int n;

	if (poll_ms < 1)
		poll_ms = 1;
	while (!stop) {
		n = window_next();
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
}

int
main(int argc, char **argv)
{
	(void)argv;
	if (argc > 1) {
		fprintf(stderr, "usage: payment-relay (configured by the environment; see docs/relay.md)\n");
		return 2;
	}
	if (configure() < 0)
		return 2;
	if (start() == 0)
		serve();
	stats(1);
	relay_kafka_destroy(R.k);
	relay_cursors_free(&R.cur);
	journal_close(R.j);
	relay_pg_close(&R.pg);
	log_info("payment-relay stopped", LF_I("published", (int64_t)R.published),
	    LF_I("dlq", (int64_t)R.dlqd));
	return 0;
}
