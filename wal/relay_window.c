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
 * Contract, in this order (the order is what makes it exactly once), all
 * of it by the holder of the lease (relay_lease.h) under its epoch:
 *   1. read the next rows in seq order, stopping before a row whose writer
 *      may still be in flight (relay_pg.h);
 *   2. classify them (valid -> its topic; poison or out of retries -> DLQ),
 *      choose each partition, and record the window — events plus every
 *      involved partition's cursor — in Postgres (relay_windows, only while
 *      the epoch holds the lease) and in the SQLite journal, before anything
 *      is produced;
 *   3. produce, in one Kafka transaction (transactional.id shared by the
 *      deployment, acks=all), and wait for every delivery report, then
 *      commit the transaction: nothing is settled before the broker
 *      committed it;
 *   4. settle: Postgres first (one statement, conditional on the epoch:
 *      delivered rows published, DLQ'd rows with their error, cursors
 *      raised, the window deleted), then the journal, so that a crash
 *      between the two only makes the journal's copy stale (discarded);
 *   5. if any message failed, the transaction is aborted; if the outcome is
 *      unknown (crash, fatal producer error, a failed commit), the window is
 *      resolved by a read_committed scan of its partitions from the recorded
 *      cursors (relay_window_recover), after the abort or after a new
 *      producer's init_transactions ended the old transaction: what is
 *      found is settled, the rest is produced again in a later window.
 * A relay that finds it lost the lease (a settle or a window record
 * refused, its producer fenced) exits without settling (relay_window_fenced).
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
#include "relay_lease.h"
#include "relay_metrics.h"
#include "relay_pg.h"
#include "relay_recover.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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
		r->failures, r->backlog, r->last_window_unix_ms, r->broker_waiting, r->epoch > 0,
		r->epoch, r->takeovers, r->fenced_exits };

	relay_metrics_update(&m);
}

/* ---- Postgres (relay_pg.c): a refusal stops the relay ---------------- */

/* Connected: 0, or -1 when stopping. */
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

void
relay_window_fenced(struct relay *r, const char *why)
{
	log_error("fenced: another relay leads the outbox now; exiting without settling",
	    LF_S("error", why), LF_I("epoch", r->epoch));
	relay_lease_count_fenced(r->pg.conn);
	fflush(NULL);
	/* No destructors: the producer must not flush anything more. */
	_exit(RELAY_EXIT_FENCED);
}

/* Applies a window's outcome once Postgres takes it: 0, or -1 when stopping.
 * A refused settle (the lease moved on) makes this relay a zombie: it exits. */
static int
pg_settle(struct relay *r, const struct relay_settle *s)
{
	char err[512];
	struct relay_settle c = *s;
	int rc;

	c.epoch = r->epoch;
	rc = relay_pg_settle_retry(&r->pg, &c, err, sizeof(err));
	if (rc == RELAY_PG_LOST)
		relay_window_fenced(r, err);
	if (rc == RELAY_PG_FATAL)
		fatal("%s", err);
	return rc == 0 ? 0 : -1;
}

/*
 * The producer failed fatally (fenced, or unusable): if the lease moved on
 * this relay is a zombie and exits; else the producer is replaced (its
 * init_transactions ends the old transaction). 0, or -1 when stopping.
 */
static int
kafka_broken(struct relay *r, const char *why)
{
	int64_t now = -1;
	char err[512];
	int attempt = 0, rc;

	for (;;) {
		if (relay_window_connect(r) < 0)
			return -1;
		rc = relay_lease_read(r->pg.conn, &now, NULL, NULL, err, sizeof(err));
		if (rc == 0)
			break;
		pg_lost(r, "lease read", err, rc);
		r->retry->sleep(attempt++);
	}
	if (now != r->epoch) {
		snprintf(err, sizeof(err), "lease lost (epoch %lld < %lld): %s",
		    (long long)r->epoch, (long long)now, why);
		relay_window_fenced(r, err);
	}
	log_warn("producer unusable; replacing it", LF_S("error", why));
	if (r->k != NULL) {
		relay_kafka_destroy(r->k);
		r->k = NULL;
	}
	return 0;
}

/* ---- Kafka (relay_kafka.c) ------------------------------------------ */

static void on_delivery(void *opaque, rd_kafka_resp_err_t err, rd_kafka_msg_status_t persisted,
    int32_t partition, int64_t offset);

/* Adds Postgres's confirmed cursors to known[] (raising takes the higher of
 * the two: both lie at or before where the next message goes). */
static void
pg_cursors(struct relay *r, struct journal_offset **known, size_t *nknown)
{
	struct journal_offset *pg = NULL;
	size_t npg = 0;
	char err[512];
	int attempt = 0, rc;

	for (;;) {
		if (relay_window_connect(r) < 0)
			return;
		rc = relay_lease_cursors(r->pg.conn, &pg, &npg, err, sizeof(err));
		if (rc == 0)
			break;
		pg_lost(r, "relay cursors", err, rc);
		r->retry->sleep(attempt++);
	}
	*known = realloc(*known, (*nknown + npg + 1) * sizeof(**known));
	if (*known == NULL)
		fatal("out of memory");
	memcpy(*known + *nknown, pg, npg * sizeof(*pg));
	*nknown += npg;
	free(pg);
}

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
	pg_cursors(r, &known, &nknown);
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
	kc.transactional_id = r->txn_id;
	kc.transaction_timeout_ms = r->cfg.relay_txn_timeout_s * 1000;
	if (relay_kafka_new(&kc, &r->k, err, sizeof(err)) < 0)
		fatal("kafka producer: %s", err);
	return 0;
}

int
relay_window_txn_init(struct relay *r)
{
	char err[512];
	int attempt = 0, rc;

	while ((rc = relay_kafka_txn_init(r->k, 10000, err, sizeof(err))) != RELAY_K_OK) {
		if (rc == RELAY_K_FATAL)
			fatal("kafka: %s", err);
		if (*r->retry->stop)
			return -1;
		log_warn("waiting for the broker to fence the previous producer",
		    LF_S("error", err), LF_I("attempt", attempt));
		r->retry->sleep(attempt++);
	}
	log_info("kafka transactions initialised; older producers of this id are fenced",
	    LF_S("transactional_id", r->txn_id), LF_I("epoch", r->epoch));
	return 0;
}

static int
kafka_start(struct relay *r)
{
	if (relay_window_producer(r) < 0 || relay_window_txn_init(r) < 0)
		return -1;
	return relay_window_metadata(r);
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
	struct relay_settle s = { 0, NULL, 0, NULL, NULL, 0, o->fseq, o->ferr, o->nfail, NULL, 0,
		0 };

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

	s.next = next;
	s.nnext = nnext;
	s.close_window = 1;
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

/* Postgres's copy of the open window (with retries): 0, or -1 when stopping. */
static int
pg_window(struct relay *r, int64_t *epoch, struct journal_event **ev, size_t *n,
    struct journal_offset **start, size_t *nstart)
{
	char err[512];
	int attempt = 0, rc;

	for (;;) {
		if (relay_window_connect(r) < 0)
			return -1;
		rc = relay_lease_window_load(
		    r->pg.conn, epoch, ev, n, start, nstart, err, sizeof(err));
		if (rc == 0)
			return 0;
		pg_lost(r, "window load", err, rc);
		r->retry->sleep(attempt++);
	}
}

/* The journal's window is Postgres's (same epoch, same events)? */
static int
same_window(int64_t je, const struct journal_event *a, size_t na, int64_t pe,
    const struct journal_event *b, size_t nb)
{
	size_t i;

	if (je != pe || na != nb)
		return 0;
	for (i = 0; i < na; i++)
		if (a[i].seq != b[i].seq || strcmp(a[i].event_id, b[i].event_id) != 0)
			return 0;
	return 1;
}

/*
 * Resolves the open window (after a crash, a takeover, or when the producer
 * lost track of it). Postgres holds the truth: its relay_windows row, which
 * any relay can read whatever became of the journal that wrote it. A
 * journal window that is not that one (an older epoch's, already settled in
 * Postgres, or another host's) is discarded with a log line. Events found
 * on the broker (relay_recover_window, read_committed) are settled, the
 * others stay unpublished and go out again in a later window. Called only
 * after this relay's init_transactions, which ended any transaction of the
 * window still open. 0, or -1 when stopping.
 */
int
relay_window_recover(struct relay *r, const char *why)
{
	struct journal_event *jev = NULL, *ev = NULL;
	struct journal_offset *jstart = NULL, *start = NULL, *next = NULL;
	struct relay_found *f = NULL;
	struct outcome o;
	size_t jn, jnstart, n = 0, nstart = 0, i, found;
	int64_t jepoch = 0, pepoch = 0;
	char err[512];
	int rc = -1;

	memset(&o, 0, sizeof(o));
	if (journal_window_load(r->j, &jev, &jn, &jstart, &jnstart, err, sizeof(err)) < 0 ||
	    journal_window_epoch(r->j, &jepoch, err, sizeof(err)) < 0)
		jfatal(err);
	if (pg_window(r, &pepoch, &ev, &n, &start, &nstart) < 0)
		goto out;
	if (jn > 0 && jepoch == 0 && n == 0) {
		/* A journal from before leases (migration 0005): its window
		 * was never in Postgres, so it is resolved from the journal, as
		 * before. */
		free(ev);
		free(start);
		ev = jev;
		n = jn;
		start = jstart;
		nstart = jnstart;
		jev = NULL;
		jstart = NULL;
	} else if (jn > 0 && !same_window(jepoch, jev, jn, pepoch, ev, n)) {
		log_warn("journal window discarded: Postgres holds the truth and disagrees",
		    LF_S("reason", n == 0 ? "settled in postgres" : "another window in postgres"),
		    LF_I("journal_epoch", jepoch), LF_I("journal_events", (int64_t)jn),
		    LF_I("postgres_epoch", pepoch), LF_I("postgres_events", (int64_t)n));
		if (journal_window_discard(r->j, err, sizeof(err)) < 0)
			jfatal(err);
	}
	if (n == 0) {
		rc = 0;
		goto out;
	}
	log_info("recovering an unsettled window", LF_S("reason", why), LF_I("events", (int64_t)n),
	    LF_I("partitions", (int64_t)nstart), LF_I("first_seq", ev[0].seq),
	    LF_I("last_seq", ev[n - 1].seq), LF_I("window_epoch", pepoch), LF_I("epoch", r->epoch),
	    LF_B("in_journal", jn > 0 && (jev == NULL || jepoch == pepoch)));
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
	    LF_I("to_republish", (int64_t)(n - found)), LF_I("window_epoch", pepoch));
	rc = 0;
out:
	free(jev);
	free(jstart);
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
	int dead;     /* the producer is unusable (fatal error, fenced) */
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
	case RD_KAFKA_RESP_ERR_POLICY_VIOLATION: return 1;
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
	/* relay_classify() dead-letters any type without a topic. */
	if (e->dlq)
		e->tid = RELAY_T_DLQ;
	else {
		int t = relay_event_topic(e->row.event_type);

		if (t < 0 || t >= RELAY_T_DLQ)
			abort();
		e->tid = (enum relay_topic_id)t;
	}
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
 * message can reach the broker — in Postgres, where any relay finds it, and
 * in the journal. Whatever happens after this — a crash, a fatal producer,
 * a takeover — a scan from these offsets tells which events made it. A
 * refused record means the lease moved on (the relay exits); a journal
 * that cannot write stops the relay here (jfatal). 0, or -1 when stopping.
 */
static int
window_journal(struct relay *r, struct window *w)
{
	char err[512];
	int64_t now = -1;
	int attempt = 0, rc;

	w->t[2] = util_now_ns();
	for (;;) {
		if (relay_window_connect(r) < 0)
			return -1;
		rc = relay_lease_window_open(
		    r->pg.conn, r->epoch, w->je, w->n, w->start, w->nstart, &now, err, sizeof(err));
		if (rc == 0)
			break;
		if (rc == RELAY_PG_LOST)
			relay_window_fenced(r, err);
		pg_lost(r, "window record", err, rc);
		r->retry->sleep(attempt++);
	}
	if (journal_window_begin_epoch(
	        r->j, r->epoch, w->je, w->n, w->start, w->nstart, err, sizeof(err)) < 0)
		jfatal(err);
	return 0;
}

/*
 * Contract step 3, first half: every message to the producer, on the
 * partition the plan chose. A message librdkafka refuses before queueing
 * it is certainly not on the broker: it fails at once (window_tally).
 */
static void
window_produce(struct relay *r, struct window *w)
{
	char err[512];
	size_t i;

	w->t[3] = util_now_ns();
	if (relay_kafka_txn_begin(r->k, err, sizeof(err)) != RELAY_K_OK) {
		/* Only a fenced or broken producer refuses to begin. */
		log_warn("could not begin the window's transaction", LF_S("error", err));
		for (i = 0; i < w->n; i++) {
			w->evs[i].state = EV_FAILED;
			w->evs[i].err = RD_KAFKA_RESP_ERR__PURGE_QUEUE;
			w->evs[i].persisted = RD_KAFKA_MSG_STATUS_NOT_PERSISTED;
		}
		w->dead = 1;
		return;
	}
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
		if (w->dead || relay_kafka_fatal(r->k, fatal_err, sizeof(fatal_err))) {
			if (!w->dead)
				log_error("producer failed; resolving the window by a scan",
				    LF_S("error", fatal_err));
			w->dead = 1;
			for (i = 0; i < w->n; i++)
				if (w->evs[i].state == EV_PENDING) {
					w->evs[i].state = EV_FAILED;
					w->evs[i].err = RD_KAFKA_RESP_ERR__FATAL;
					w->evs[i].persisted =
					    RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED;
				}
			return 0;
		}
		/* One failed message dooms the transaction: stop waiting, the
		 * abort (window_settle) ends the rest, and a scan decides. */
		for (i = 0; i < w->n && w->evs[i].state != EV_FAILED; i++)
			;
		if (i < w->n) {
			for (i = 0; i < w->n; i++)
				if (w->evs[i].state == EV_PENDING) {
					w->evs[i].state = EV_FAILED;
					w->evs[i].err = RD_KAFKA_RESP_ERR__PURGE_INFLIGHT;
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
			/* Ended by the abort, or by the transaction's timeout during
			 * a long outage: not refused, no failure of its own (an
			 * outage never dead-letters anything). */
			if (e->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE ||
			    e->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT ||
			    e->err == RD_KAFKA_RESP_ERR__MSG_TIMED_OUT)
				w->unknown = 1;
			else
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

/* commit_transaction until the broker answers for good: RELAY_K_OK,
 * RELAY_K_ABORT, RELAY_K_FATAL, or RELAY_K_RETRY when SIGTERM's grace ran
 * out first (the window stays open for the next leader). */
static int
txn_commit(struct relay *r, char *err, size_t errlen)
{
	int64_t started = util_now_ms(), next_log = started, stop_at = 0;
	int attempt = 0, rc;

	/* Short attempts, so that a broker that stops answering mid-commit
	 * (paused, partitioned) shows in the log and in
	 * payment_relay_waiting_for_broker within seconds, as a wait for
	 * delivery reports does; commit_transaction resumes where the last
	 * attempt left off. */
	while ((rc = relay_kafka_txn_commit(r->k, 2000, err, errlen)) == RELAY_K_RETRY) {
		attempt++;
		if (*r->retry->stop && stop_at == 0)
			stop_at = util_now_ms() + (int64_t)r->cfg.shutdown_grace_s * 1000;
		if (stop_at && util_now_ms() > stop_at)
			break;
		if (util_now_ms() >= next_log) {
			log_warn("waiting for the broker to commit the window", LF_S("error", err),
			    LF_I("attempt", attempt), LF_I("waited_ms", util_now_ms() - started));
			next_log = util_now_ms() + (util_now_ms() - started);
		}
		if (!r->broker_waiting) {
			r->broker_waiting = 1;
			relay_window_metrics(r);
		}
	}
	if (r->broker_waiting) {
		r->broker_waiting = 0;
		relay_window_metrics(r);
	}
	return rc;
}

/* abort_transaction until done: 0, RELAY_K_FATAL, or -1 when stopping. */
static int
txn_abort(struct relay *r, char *err, size_t errlen)
{
	int attempt = 0, rc;

	while ((rc = relay_kafka_txn_abort(r->k, 10000, err, errlen)) == RELAY_K_RETRY) {
		if (*r->retry->stop)
			return -1;
		log_warn("waiting for the broker to abort the window", LF_S("error", err),
		    LF_I("attempt", attempt));
		r->retry->sleep(attempt++);
	}
	return rc == RELAY_K_OK ? 0 : RELAY_K_FATAL;
}

/*
 * Contract steps 4 and 5: the outcome made permanent (outcome_settle)
 * once the transaction committed. Otherwise the transaction ends unseen —
 * aborted, or ended by a new producer's init_transactions when this one is
 * unusable (a fenced one means the lease moved on: kafka_broken exits) —
 * the failures are settled from the reports, and a read_committed scan of
 * the window's partitions decides the rest. 0, or -1 when stopping.
 */
static int
window_settle(struct relay *r, struct window *w)
{
	struct relay_settle failed;
	char err[512] = "";
	int rc;

	if (!w->unknown && w->out.nfail == 0 && !w->dead) {
		rc = txn_commit(r, err, sizeof(err));
		if (rc == RELAY_K_OK)
			return outcome_settle(r, &w->out, w->next, w->nnext);
		if (rc == RELAY_K_RETRY)
			return -1;
		log_warn("window not committed; resolving it by a scan", LF_S("error", err));
		w->dead = rc == RELAY_K_FATAL;
	}
	if (!w->dead && r->k != NULL && (rc = txn_abort(r, err, sizeof(err))) != 0) {
		if (rc == -1)
			return -1;
		w->dead = 1;
	}
	if (w->dead || r->k == NULL) {
		if (kafka_broken(r, err[0] ? err : "fatal producer error") < 0)
			return -1;
	} else {
		/* A fresh producer after a failed transaction: librdkafka's
		 * sequence state after one is not to be trusted (on the mock the
		 * next transaction fails with "skipped sequence numbers"). */
		relay_kafka_destroy(r->k);
		r->k = NULL;
	}
	failed = outcome_rows(&w->out, 0);
	if (pg_settle(r, &failed) < 0)
		return -1;
	if (kafka_start(r) < 0)
		return -1;
	return relay_window_recover(r, "unknown delivery outcome");
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
		if (window_journal(r, &w) < 0) {
			rc = -1;
		} else {
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
	}
	window_close(r, &w, rc);
	return rc;
}
