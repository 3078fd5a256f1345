/* SPDX-License-Identifier: MIT */
/*
 * relay_window.c — the relay's windows: the outbox published to the
 * broker one bounded batch at a time, exactly once.
 *
 * A window is up to OUTBOX_BATCH_SIZE outbox rows and what each becomes on
 * the broker. It lives for one relay_window_next(), the steps
 * window_open() .. window_close() below, and nothing more is read from
 * Postgres while it is out (memory stays bounded by one window).
 *
 * Contract, in this order (the order is what makes it exactly once):
 *   1. read the next rows in seq order, stopping before a row whose writer
 *      may still be in flight (relay_pg.h);
 *   2. classify them (valid -> its topic; poison or out of retries -> DLQ),
 *      choose each partition, and journal the window — events plus every
 *      involved partition's cursor — durably in SQLite before anything is
 *      produced;
 *   3. produce (idempotent, acks=all, no local timeout: an outage only
 *      delays) and wait for every delivery report: nothing is settled
 *      before the broker acked it;
 *   4. settle: Postgres first (one statement: delivered rows published,
 *      DLQ'd rows with their error), then the journal (window cleared,
 *      cursors advanced), so that a crash between the two only makes the
 *      recovery mark rows again;
 *   5. if the outcome of any message is unknown (crash, fatal producer
 *      error), resolve the window by scanning its partitions from the
 *      journaled cursors (relay_window_recover): what is found is settled,
 *      the rest is produced again in a later window.
 * Every journal failure stops the relay (jfatal: no acknowledgement without
 * durability; the next start resolves the window), and so does Postgres
 * refusing a statement. The process state is the caller's (relay_window.h).
 */
#include "relay_window.h"

#include "common/log.h"
#include "common/util.h"
#include "journal/journal.h"
#include "relay_envelope.h"
#include "relay_kafka.h"
#include "relay_metrics.h"
#include "relay_pg.h"
#include "relay_recover.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum ev_state { EV_PENDING, EV_DELIVERED, EV_FAILED };

/* One outbox row of a window and what became of its message. */
struct ev {
	struct relay_row row;
	enum relay_topic_id tid;
	int32_t partition;
	char *value;
	int dlq;         /* value is a DLQ record */
	char error[512]; /* why it goes to the DLQ */
	char seqstr[24];
	enum ev_state state;
	rd_kafka_resp_err_t err;
	rd_kafka_msg_status_t persisted;
	int64_t offset;
};

static void __attribute__((noreturn)) jfatal(const char *err)
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
topic_id(const struct relay *r, const char *topic)
{
	int t;

	for (t = 0; t < RELAY_NTOPICS; t++)
		if (strcmp(r->topic[t], topic) == 0)
			return (enum relay_topic_id)t;
	return RELAY_NTOPICS;
}

static void
cursor_raise(struct relay *r, const char *topic, int32_t partition, int64_t next)
{
	relay_cursors_raise(&r->cur, topic_id(r, topic), partition, next);
}

/* ---- counters ------------------------------------------------------- */

/* Hands the counters to the /metrics thread (a struct copy under a lock). */
void
relay_window_metrics(const struct relay *r)
{
	struct relay_metrics_snapshot m = { r->published, r->dlqd, r->windows, r->recovered,
		r->failures, r->backlog, r->last_window_unix_ms, r->broker_waiting };

	relay_metrics_update(&m);
}

/* ---- Postgres (relay_pg.c): a refusal stops the relay ---------------- */

/* Connected (with the advisory lock): 0, or -1 when stopping. */
int
relay_window_connect(struct relay *r)
{
	char err[512];
	int rc = relay_pg_ready(&r->pg, err, sizeof(err));

	if (rc == RELAY_PG_FATAL)
		fatal("%s", err);
	return rc == 0 ? 0 : -1;
}

static void
pg_lost(struct relay *r, const char *what, const char *err, int rc)
{
	if (rc == RELAY_PG_FATAL)
		fatal("%s: %s", what, err);
	relay_pg_lost(&r->pg, what, err);
}

/* Applies a window's outcome once Postgres takes it: 0, or -1 when stopping. */
static int
pg_settle(struct relay *r, const struct relay_settle *s)
{
	char err[512];
	int rc = relay_pg_settle_retry(&r->pg, s, err, sizeof(err));

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
int
relay_window_metadata(struct relay *r)
{
	struct journal_offset *known = NULL, *add = NULL;
	size_t nknown = 0, nadd = 0;
	char err[512];
	int rc;

	if (journal_cursors(r->j, &known, &nknown, err, sizeof(err)) < 0)
		jfatal(err);
	rc = relay_kafka_refresh(r->k, &r->cur, known, nknown, r->retry, &add, &nadd);
	if (rc == 0 && nadd > 0 && journal_cursors_raise(r->j, add, nadd, err, sizeof(err)) < 0)
		jfatal(err);
	free(known);
	free(add);
	if (rc == 0)
		r->next_metadata_ms = util_now_ms() + 60000;
	return rc;
}

/* The producer belongs to the windows: its delivery reports (on_delivery)
 * land in the events of the window being waited for. */
int
relay_window_producer(struct relay *r)
{
	struct relay_kafka_conf kc;
	char err[512];
	int t;

	memset(&kc, 0, sizeof(kc));
	kc.brokers = r->cfg.brokers;
	for (t = 0; t < RELAY_NTOPICS; t++)
		kc.topics[t] = r->topic[t];
	kc.base_delay_s = r->cfg.outbox_base_delay_s;
	kc.max_delay_s = r->cfg.outbox_max_delay_s;
	kc.queue_messages = r->cfg.outbox_batch_size * 2 + 100;
	kc.on_delivery = on_delivery;
	if (relay_kafka_new(&kc, &r->k, err, sizeof(err)) < 0)
		fatal("kafka producer: %s", err);
	return 0;
}

static int
kafka_start(struct relay *r)
{
	return relay_window_producer(r) < 0 ? -1 : relay_window_metadata(r);
}

/* ---- settling ------------------------------------------------------- */

/*
 * What a window (or its recovery) settles, in the shapes relay_pg_settle()
 * and journal_window_end() take: the events that reached their topic, the
 * ones that reached the DLQ (with why), and those that failed.
 */
struct outcome {
	int64_t *pub, *dseq, *fseq, max_seq;
	const char **derr, **ferr;
	struct journal_dlq *dlq;
	size_t npub, ndlq, nfail;
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
outcome_delivered(
    struct outcome *o, int64_t seq, const char *event_id, const char *dlq_error, int retry_count)
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
outcome_settle(
    struct relay *r, const struct outcome *o, const struct journal_offset *next, size_t nnext)
{
	struct relay_settle s = outcome_rows(o, 1);
	char err[512];
	size_t i;

	if (pg_settle(r, &s) < 0)
		return -1;
	if (journal_window_end(r->j, o->max_seq, next, nnext, o->dlq, o->ndlq, err, sizeof(err)) <
	    0)
		jfatal(err);
	for (i = 0; i < nnext; i++)
		cursor_raise(r, next[i].topic, next[i].partition, next[i].offset);
	r->published += o->npub;
	r->dlqd += o->ndlq;
	return 0;
}

/* ---- recovery ------------------------------------------------------- */

/*
 * Resolves the journaled window (after a crash, or when the producer lost
 * track of it): events found on the broker (relay_recover_window) are
 * settled, the others stay unpublished and go out again in a later
 * window. 0, or -1 when stopping.
 */
int
relay_window_recover(struct relay *r, const char *why)
{
	struct journal_event *ev = NULL;
	struct journal_offset *start = NULL, *next = NULL;
	struct relay_found *f = NULL;
	struct outcome o;
	size_t n, nstart, i, found;
	char err[512];
	int rc = -1;

	memset(&o, 0, sizeof(o));
	if (journal_window_load(r->j, &ev, &n, &start, &nstart, err, sizeof(err)) < 0)
		jfatal(err);
	if (n == 0) {
		rc = 0;
		goto out;
	}
	log_info("recovering an unsettled window", LF_S("reason", why), LF_I("events", (int64_t)n),
	    LF_I("partitions", (int64_t)nstart), LF_I("first_seq", ev[0].seq),
	    LF_I("last_seq", ev[n - 1].seq));
	next = xcalloc(nstart + 1, sizeof(*next));
	if (relay_recover_window(r->cfg.brokers, r->topic[RELAY_T_DLQ], ev, n, start, nstart,
	        r->retry, &f, next) < 0)
		goto out;
	outcome_init(&o, n);
	for (i = 0; i < n; i++)
		if (f[i].hit)
			outcome_delivered(&o, f[i].ev.seq, f[i].ev.event_id,
			    f[i].dlq ? f[i].error : NULL, f[i].retry_count);
	if (outcome_settle(r, &o, next, nstart) < 0)
		goto out;
	found = o.npub + o.ndlq;
	r->recovered += found;
	relay_window_metrics(r);
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
	PGresult *res; /* the rows; evs[].row points into it */
	struct ev *evs;
	size_t n;
	struct journal_event *je;     /* the window as journaled */
	struct journal_offset *start; /* where a scan of each partition starts */
	size_t nstart;
	struct outcome out;          /* from the reports (window_tally) */
	char (*ferrbuf)[300];        /* out.ferr[] points here */
	struct journal_offset *next; /* cursors after the delivered messages */
	size_t nnext;
	int unknown;  /* a failed message may be on the broker */
	int worst;    /* highest failure count among the failed */
	int64_t t[6]; /* when each step began (ns), for the debug line */
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
	case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT: return 1;
	default: return 0;
	}
}

/* Topic, message and partition of one event: its envelope on its type's
 * topic, or a DLQ record saying why not (relay_classify). */
static void
classify_row(const struct relay *r, struct ev *e, const char *now)
{
	int rc = relay_classify(&e->row, r->cfg.outbox_max_retries, RELAY_MESSAGE_MAX_BYTES, now,
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
	e->partition = relay_kafka_partition_for(r->k, e->tid, e->row.partition_key);
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
window_open(struct relay *r, struct window *w)
{
	char err[512];
	int usable = 0, held = 0, rc;

	memset(w, 0, sizeof(*w));
	if (relay_window_connect(r) < 0)
		return -1;
	w->t[0] = util_now_ns();
	rc = relay_pg_fetch(
	    r->pg.conn, r->cfg.outbox_batch_size, &w->res, &usable, &held, err, sizeof(err));
	if (rc < 0) {
		pg_lost(r, "outbox read", err, rc);
		return 0;
	}
	if (held && usable == 0) {
		if (r->held_since_ms == 0)
			r->held_since_ms = util_now_ms();
		else if (util_now_ms() - r->held_since_ms > 10000) {
			log_warn("outbox held back by a transaction still in flight",
			    LF_S("next_seq", PQgetvalue(w->res, 0, RF_SEQ)),
			    LF_I("held_ms", util_now_ms() - r->held_since_ms));
			r->held_since_ms = util_now_ms();
		}
	} else {
		r->held_since_ms = 0;
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
window_plan(struct relay *r, struct window *w)
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
		classify_row(r, e, now);
		je->seq = e->row.seq;
		snprintf(je->event_id, sizeof(je->event_id), "%s", e->row.event_id);
		snprintf(je->topic, sizeof(je->topic), "%s", r->topic[e->tid]);
		je->partition = e->partition;
		for (k = 0; k < w->nstart; k++)
			if (w->start[k].partition == e->partition &&
			    strcmp(w->start[k].topic, je->topic) == 0)
				break;
		if (k == w->nstart) {
			w->start[k] = (struct journal_offset){ .partition = e->partition,
				.offset = r->cur.next[e->tid][e->partition] };
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
window_journal(struct relay *r, struct window *w)
{
	char err[512];

	w->t[2] = util_now_ns();
	if (journal_window_begin(r->j, w->je, w->n, w->start, w->nstart, err, sizeof(err)) < 0)
		jfatal(err);
}

/*
 * Contract step 3, first half: every message to the producer, on the
 * partition the plan chose. A message librdkafka refuses before queueing
 * it is certainly not on the broker: it fails at once (window_tally).
 */
static void
window_produce(struct relay *r, struct window *w)
{
	size_t i;

	w->t[3] = util_now_ns();
	for (i = 0; i < w->n; i++) {
		struct ev *e = &w->evs[i];
		struct relay_headers h = { e->row.event_id, e->row.event_type, e->seqstr,
			e->row.correlation_id, e->row.client_name };
		rd_kafka_resp_err_t perr;

		while ((perr = relay_kafka_produce(r->k, e->tid, e->partition, e->row.partition_key,
		            e->value, strlen(e->value), &h, e)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
			relay_kafka_poll(r->k, 50);
		if (perr != RD_KAFKA_RESP_ERR_NO_ERROR) {
			e->state = EV_FAILED;
			e->err = perr;
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
window_wait(struct relay *r, struct window *w)
{
	int64_t started = util_now_ms(), next_log = started + 5000, stop_at = 0;
	char fatal_err[512];
	size_t i, left;

	for (;;) {
		for (i = 0, left = 0; i < w->n; i++)
			left += w->evs[i].state == EV_PENDING;
		if (left == 0) {
			if (r->broker_waiting) {
				r->broker_waiting = 0;
				relay_window_metrics(r);
			}
			return 0;
		}
		if (relay_kafka_fatal(r->k, fatal_err, sizeof(fatal_err))) {
			log_error("idempotent producer failed; resolving the window by a scan",
			    LF_S("error", fatal_err));
			/* Purging serves the remaining reports as failures whose
			 * outcome the recovery scan decides. */
			relay_kafka_destroy(r->k);
			r->k = NULL;
			for (i = 0; i < w->n; i++)
				if (w->evs[i].state == EV_PENDING) {
					w->evs[i].state = EV_FAILED;
					w->evs[i].err = RD_KAFKA_RESP_ERR__FATAL;
					w->evs[i].persisted =
					    RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED;
				}
			return 0;
		}
		if (*r->retry->stop && stop_at == 0)
			stop_at = util_now_ms() + (int64_t)r->cfg.shutdown_grace_s * 1000;
		if (stop_at && util_now_ms() > stop_at) {
			log_warn("stopping with undelivered events; the journal keeps the window",
			    LF_I("undelivered", (int64_t)left));
			return -1;
		}
		relay_kafka_poll(r->k, 100);
		if (util_now_ms() >= next_log) {
			/* During an outage the relay sits here: librdkafka
			 * reconnects with exponential backoff and jitter, and
			 * Postgres is not read until the window is settled. */
			log_warn("waiting for the broker", LF_I("undelivered", (int64_t)left),
			    LF_I("window", (int64_t)w->n),
			    LF_I("waited_ms", util_now_ms() - started));
			next_log = util_now_ms() + (util_now_ms() - started);
			if (!r->broker_waiting) {
				r->broker_waiting = 1;
				relay_window_metrics(r);
			}
		}
	}
}

/* A failed event: its error, and one more failure in the journal, whose
 * count decides between retrying it and dead-lettering it. */
static void
tally_failure(struct relay *r, struct window *w, const struct ev *e)
{
	char err[512];
	char *msg = w->ferrbuf[w->out.nfail];
	int count = 0;

	snprintf(msg, sizeof(w->ferrbuf[0]), "%s%s",
	    permanent(e->err) && !e->dlq ? "permanent: " : "", rd_kafka_err2str(e->err));
	w->out.fseq[w->out.nfail] = e->row.seq;
	w->out.ferr[w->out.nfail] = msg;
	if (journal_failure(r->j, e->row.seq, e->row.event_id, msg, &count, err, sizeof(err)) < 0)
		jfatal(err);
	if (count > w->worst)
		w->worst = count;
	log_warn("publish failed; will retry or dead-letter", LF_I("outbox_seq", e->row.seq),
	    LF_S("event_id", e->row.event_id), LF_S("error", msg), LF_I("failures", count),
	    LF_I("retry_count", e->row.retry_count),
	    LF_B("maybe_on_broker", e->persisted != RD_KAFKA_MSG_STATUS_NOT_PERSISTED));
	w->out.nfail++;
	r->failures++;
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
window_tally(struct relay *r, struct window *w)
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
			tally_failure(r, w, e);
			continue;
		}
		snprintf(nx->topic, sizeof(nx->topic), "%s", r->topic[e->tid]);
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
window_settle(struct relay *r, struct window *w)
{
	struct relay_settle failed;

	if (!w->unknown)
		return outcome_settle(r, &w->out, w->next, w->nnext);
	failed = outcome_rows(&w->out, 0);
	if (pg_settle(r, &failed) < 0)
		return -1;
	if (r->k != NULL) {
		relay_kafka_destroy(r->k);
		r->k = NULL;
	}
	return relay_window_recover(r, "unknown delivery outcome") < 0 || kafka_start(r) < 0 ? -1
	                                                                                     : 0;
}

/*
 * After a settled window: the counters and /metrics, the time each step
 * took (debug), and a pause after failures, longer the more often the
 * worst of them failed, so that a broker refusing messages is not hammered.
 */
static void
window_done(struct relay *r, struct window *w)
{
	r->windows++;
	r->last_window_unix_ms = util_realtime_ms();
	relay_window_metrics(r);
	w->t[5] = util_now_ns();
	log_debug("window settled", LF_I("events", (int64_t)w->n),
	    LF_I("fetch_us", (w->t[1] - w->t[0]) / 1000),
	    LF_I("build_us", (w->t[2] - w->t[1]) / 1000),
	    LF_I("journal_us", (w->t[3] - w->t[2]) / 1000),
	    LF_I("produce_us", (w->t[4] - w->t[3]) / 1000),
	    LF_I("settle_us", (w->t[5] - w->t[4]) / 1000));
	if (w->out.nfail > 0)
		r->retry->sleep(w->worst > 0 ? w->worst - 1 : 0);
}

/*
 * Frees the window. Stopping mid-window (rc -1 once rows were read), the
 * producer goes first: destroying it purges what is still queued while
 * the reports' targets (evs) exist. The journal keeps the window for the
 * next start.
 */
static void
window_close(struct relay *r, struct window *w, int rc)
{
	size_t i;

	if (rc == -1 && w->n > 0 && r->k != NULL) {
		relay_kafka_destroy(r->k);
		r->k = NULL;
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
int
relay_window_next(struct relay *r)
{
	struct window w;
	int rc = window_open(r, &w);

	if (rc > 0) {
		window_plan(r, &w);
		window_journal(r, &w);
		window_produce(r, &w);
		if (window_wait(r, &w) < 0)
			rc = -1;
		else {
			window_tally(r, &w);
			if (window_settle(r, &w) < 0)
				rc = -1;
			else
				window_done(r, &w);
		}
	}
	window_close(r, &w, rc);
	return rc;
}
