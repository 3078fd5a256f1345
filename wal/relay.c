/*
 * relay.c — payment-relay: publishes the Postgres outbox to Kafka/Redpanda
 * exactly once, surviving broker outages and its own crashes.
 *
 * The protocol (docs/relay.md has the argument):
 *   1. read up to OUTBOX_BATCH_SIZE unpublished rows in seq order;
 *   2. note each involved partition's end offset, and journal the window
 *      (events + those offsets) durably in SQLite;
 *   3. produce (idempotent producer, acks=all, no local message timeout,
 *      so an outage only delays) and wait for every delivery report;
 *   4. mark the delivered rows published in Postgres (one UPDATE);
 *   5. clear the window and advance the cursor in the journal.
 * After a crash, a non-empty window is resolved first: each journaled
 * partition is read from its noted offset to its end, and every window
 * event found there (by its event_id header) is marked published; the rest
 * stay unpublished and go out in the next window. So nothing is lost (rows
 * stay pending until seen on the broker) and nothing is produced twice
 * (what reached the broker is found before anything is produced again).
 * Poison rows (and rows failing OUTBOX_MAX_RETRIES times) go to the DLQ
 * topic as part of a window, so they never block later events.
 */
#include "config.h"
#include "journal.h"
#include "log.h"
#include "relay_envelope.h"
#include "sandbox.h"
#include "util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>

#define RELAY_LOCK_KEY "7301002"	/* pg advisory lock: one relay per database */
#define MAX_MESSAGE_BYTES 1000000

enum ev_state { EV_PENDING, EV_DELIVERED, EV_FAILED };

struct ev {
	struct relay_row row;
	char    *value;			/* envelope or DLQ record */
	char     topic[128];
	char     seqstr[24];
	int      dlq;			/* this message is a DLQ record */
	char     dlq_error[512];
	enum ev_state state;
	rd_kafka_resp_err_t err;
	int32_t  partition;
	int64_t  offset;
};

static struct {
	struct config   cfg;
	PGconn         *pg;
	struct journal *j;
	rd_kafka_t     *rk;
	char            dlq_topic[128];
	uint64_t        published, dlqd, windows, recovered;
	int64_t         next_stats_ms;
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

static void
jfatal(const char *err)
{
	/* No acknowledgement without durability. */
	fatal("journal failure: %s", err);
}

/* ---- Postgres --------------------------------------------------------- */

static int
pg_ensure(void)
{
	PGresult *r;
	int attempt = 0;

	while (!stop) {
		if (R.pg != NULL && PQstatus(R.pg) == CONNECTION_OK)
			return 0;
		if (R.pg != NULL)
			PQfinish(R.pg);
		R.pg = PQconnectdb(R.cfg.database_url);
		if (PQstatus(R.pg) == CONNECTION_OK) {
			r = PQexec(R.pg, "SELECT pg_try_advisory_lock(" RELAY_LOCK_KEY ")");
			if (PQresultStatus(r) == PGRES_TUPLES_OK && PQgetvalue(r, 0, 0)[0] == 't') {
				PQclear(r);
				if (attempt > 0)
					log_info("postgres reachable again");
				return 0;
			}
			PQclear(r);
			fatal("another payment-relay holds the outbox lock on this database");
		}
		log_warn("postgres unavailable; retrying", LF_S("error", PQerrorMessage(R.pg)),
		    LF_I("attempt", attempt));
		sleep_ms(relay_backoff_ms(attempt++, R.cfg.outbox_base_delay_s,
		    R.cfg.outbox_max_delay_s, (uint32_t)rand()));
	}
	return -1;
}

static const char *FETCH_SQL =
	"SELECT seq, event_id::text, aggregate_type, aggregate_id, partition_key, event_type, "
	"payload::text, coalesce(correlation_id, ''), rfc3339(created_at), retry_count, "
	"coalesce(last_error, '') "
	"FROM outbox WHERE published_at IS NULL ORDER BY seq LIMIT $1";

static PGresult *
pg_fetch(int limit)
{
	char lim[16];
	const char *p[1] = { lim };
	PGresult *r;

	snprintf(lim, sizeof(lim), "%d", limit);
	for (;;) {
		if (pg_ensure() < 0)
			return NULL;
		r = PQexecParams(R.pg, FETCH_SQL, 1, NULL, p, NULL, NULL, 0);
		if (PQresultStatus(r) == PGRES_TUPLES_OK)
			return r;
		log_warn("outbox read failed", LF_S("error", PQerrorMessage(R.pg)));
		PQclear(r);
		if (PQstatus(R.pg) == CONNECTION_OK)
			fatal("outbox read failed on a live connection (schema?)");
	}
}

/* Runs a parameterized statement, reconnecting until it succeeds. */
static void
pg_must(const char *sql, int n, const char *const *params)
{
	PGresult *r;
	int attempt = 0;

	while (!stop) {
		if (pg_ensure() < 0)
			return;
		r = PQexecParams(R.pg, sql, n, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK) {
			PQclear(r);
			return;
		}
		log_warn("postgres update failed; retrying", LF_S("error", PQerrorMessage(R.pg)));
		PQclear(r);
		if (PQstatus(R.pg) == CONNECTION_OK)
			fatal("outbox update failed on a live connection: %s", sql);
		sleep_ms(relay_backoff_ms(attempt++, R.cfg.outbox_base_delay_s,
		    R.cfg.outbox_max_delay_s, (uint32_t)rand()));
	}
}

/* Marks seqs (a Postgres array literal "{1,2,3}") published. */
static void
pg_mark_published(const char *arr)
{
	const char *p[1] = { arr };

	pg_must("UPDATE outbox SET published_at = now() WHERE seq = ANY($1::bigint[]) "
	    "AND published_at IS NULL", 1, p);
}

static void
pg_mark_dlq(int64_t seq, const char *error, int retries)
{
	char s[24], rc[16];
	const char *p[3] = { s, error, rc };

	snprintf(s, sizeof(s), "%lld", (long long)seq);
	snprintf(rc, sizeof(rc), "%d", retries);
	pg_must("UPDATE outbox SET published_at = now(), last_error = $2, retry_count = $3 "
	    "WHERE seq = $1", 3, p);
}

static void
pg_mark_failed(int64_t seq, const char *error)
{
	char s[24];
	const char *p[2] = { s, error };

	snprintf(s, sizeof(s), "%lld", (long long)seq);
	pg_must("UPDATE outbox SET retry_count = retry_count + 1, last_error = $2 WHERE seq = $1", 2, p);
}

/* ---- Kafka ------------------------------------------------------------ */

static void
on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	struct ev *e = m->_private;

	(void)rk;
	(void)opaque;
	if (e == NULL)
		return;
	e->err = m->err;
	if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
		e->state = EV_DELIVERED;
		e->partition = m->partition;
		e->offset = m->offset;
	} else {
		e->state = EV_FAILED;
	}
}

static void
on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	(void)rk;
	log_kv(level <= 3 ? LOG_ERROR : level <= 5 ? LOG_WARNING : LOG_DEBUG, buf,
	    (const struct log_field[]){ LF_S("facility", fac), { 0 } });
}

static void
kafka_setup(void)
{
	rd_kafka_conf_t *c = rd_kafka_conf_new();
	char err[512], v[32];

#define SET(k, val) do { if (rd_kafka_conf_set(c, k, val, err, sizeof(err)) != RD_KAFKA_CONF_OK) \
	fatal("kafka config %s: %s", k, err); } while (0)
	SET("bootstrap.servers", R.cfg.brokers);
	SET("enable.idempotence", "true");
	SET("acks", "all");
	/* Never give up locally: an outage only delays; giving up could
	 * turn an unknown outcome into a duplicate on retry. */
	SET("message.timeout.ms", "0");
	SET("linger.ms", "5");
	SET("message.max.bytes", "1000000");
	snprintf(v, sizeof(v), "%d", (int)(R.cfg.outbox_base_delay_s * 1000));
	SET("reconnect.backoff.ms", v);
	SET("retry.backoff.ms", v);
	snprintf(v, sizeof(v), "%d", (int)(R.cfg.outbox_max_delay_s * 1000));
	SET("reconnect.backoff.max.ms", v);
	SET("log_level", "4");
#undef SET
	rd_kafka_conf_set_dr_msg_cb(c, on_delivery);
	rd_kafka_conf_set_log_cb(c, on_log);
	R.rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
	if (R.rk == NULL)
		fatal("kafka producer: %s", err);
}

/*
 * Where each partition ends. This relay is the only producer, so after the
 * first look the end is known locally: the offset after our last delivered
 * message. A stale (lower) value only makes a recovery scan longer, never
 * wrong, so the cache is safe; it is dropped after a recovery.
 */
struct pend {
	char    topic[128];
	int32_t partition;
	int64_t next;
};
static struct pend *pends;
static size_t npends, cappends;
static struct { char topic[128]; int n; } ptopics[8];
static size_t nptopics;

static struct pend *
pend_find(const char *topic, int32_t p)
{
	size_t i;

	for (i = 0; i < npends; i++)
		if (pends[i].partition == p && strcmp(pends[i].topic, topic) == 0)
			return &pends[i];
	return NULL;
}

static void
pend_set(const char *topic, int32_t p, int64_t next)
{
	struct pend *e = pend_find(topic, p);

	if (e == NULL) {
		if (npends == cappends) {
			cappends = cappends ? cappends * 2 : 16;
			pends = realloc(pends, cappends * sizeof(*pends));
			if (pends == NULL)
				abort();
		}
		e = &pends[npends++];
		snprintf(e->topic, sizeof(e->topic), "%s", topic);
		e->partition = p;
		e->next = next;
	} else if (next > e->next) {
		e->next = next;
	}
}

static void
pend_reset(void)
{
	npends = 0;
}

/* Partition count of a topic (cached), waiting for the broker if needed. */
static int
partitions_of(const char *topic)
{
	int attempt = 0;
	size_t i;

	for (i = 0; i < nptopics; i++)
		if (strcmp(ptopics[i].topic, topic) == 0)
			return ptopics[i].n;
	while (!stop) {
		const struct rd_kafka_metadata *md = NULL;
		rd_kafka_topic_t *t = rd_kafka_topic_new(R.rk, topic, NULL);
		rd_kafka_resp_err_t e = rd_kafka_metadata(R.rk, 0, t, &md, 5000);
		int n = -1;

		if (e == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1 && md->topics[0].err == 0)
			n = md->topics[0].partition_cnt;
		if (md)
			rd_kafka_metadata_destroy(md);
		rd_kafka_topic_destroy(t);
		if (n > 0) {
			if (nptopics < 8) {
				snprintf(ptopics[nptopics].topic, sizeof(ptopics[0].topic), "%s", topic);
				ptopics[nptopics++].n = n;
			}
			return n;
		}
		log_warn("broker metadata unavailable; backing off", LF_S("topic", topic),
		    LF_S("error", rd_kafka_err2str(e)), LF_I("attempt", attempt));
		sleep_ms(relay_backoff_ms(attempt++, R.cfg.outbox_base_delay_s,
		    R.cfg.outbox_max_delay_s, (uint32_t)rand()));
	}
	return -1;
}

/* End offsets of every partition of the given topics; -1 on stop. */
static int
end_offsets(char topics[][128], size_t nt, struct journal_offset **out, size_t *nout)
{
	size_t i, n = 0, cap = 0;
	int p, attempt = 0;

	*out = NULL;
	*nout = 0;
	for (i = 0; i < nt; i++) {
		int np = partitions_of(topics[i]);
		if (np < 0)
			goto stopped;
		for (p = 0; p < np; p++) {
			struct pend *known = pend_find(topics[i], p);
			int64_t lo, hi;
			rd_kafka_resp_err_t e;

			if (known != NULL) {
				hi = known->next;
			} else {
				while ((e = rd_kafka_query_watermark_offsets(R.rk, topics[i], p, &lo, &hi, 5000))) {
					log_warn("broker watermark unavailable; backing off", LF_S("topic", topics[i]),
					    LF_S("error", rd_kafka_err2str(e)));
					sleep_ms(relay_backoff_ms(attempt++, R.cfg.outbox_base_delay_s,
					    R.cfg.outbox_max_delay_s, (uint32_t)rand()));
					if (stop)
						goto stopped;
				}
				pend_set(topics[i], p, hi);
			}
			if (n == cap) {
				cap = cap ? cap * 2 : 8;
				*out = realloc(*out, cap * sizeof(**out));
				if (*out == NULL)
					abort();
			}
			snprintf((*out)[n].topic, sizeof((*out)[n].topic), "%s", topics[i]);
			(*out)[n].partition = p;
			(*out)[n].offset = hi;
			n++;
		}
	}
	*nout = n;
	return 0;
stopped:
	free(*out);
	*out = NULL;
	return -1;
}

/* ---- recovery -------------------------------------------------------- */

static int
cmp_event_id(const void *a, const void *b)
{
	return strcmp(((const struct journal_event *)a)->event_id,
	    ((const struct journal_event *)b)->event_id);
}

/*
 * Resolves a window left by a crash: reads each noted partition from its
 * noted offset to its end and marks the window events found there.
 */
static void
recover(void)
{
	struct journal_event *ev = NULL, *hit;
	struct journal_offset *off = NULL;
	size_t n, noff, i, found = 0;
	char err[512], *arr = NULL;
	size_t arrlen = 0, arrcap = 0;
	int64_t max_seq = 0;
	rd_kafka_conf_t *c;
	rd_kafka_t *cons;
	rd_kafka_topic_partition_list_t *tl;
	int *done, pending;

	if (journal_window_load(R.j, &ev, &n, &off, &noff, err, sizeof(err)) < 0)
		jfatal(err);
	if (n == 0) {
		free(ev);
		free(off);
		return;
	}
	log_info("recovering an unfinished window", LF_I("events", (int64_t)n),
	    LF_I("partitions", (int64_t)noff));
	qsort(ev, n, sizeof(*ev), cmp_event_id);

	c = rd_kafka_conf_new();
	rd_kafka_conf_set(c, "bootstrap.servers", R.cfg.brokers, err, sizeof(err));
	rd_kafka_conf_set(c, "group.id", "payment-relay-recovery", err, sizeof(err));
	rd_kafka_conf_set(c, "enable.auto.commit", "false", err, sizeof(err));
	rd_kafka_conf_set(c, "enable.partition.eof", "true", err, sizeof(err));
	rd_kafka_conf_set(c, "isolation.level", "read_uncommitted", err, sizeof(err));
	rd_kafka_conf_set(c, "log_level", "3", err, sizeof(err));
	cons = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof(err));
	if (cons == NULL)
		fatal("recovery consumer: %s", err);
	tl = rd_kafka_topic_partition_list_new((int)noff);
	done = xcalloc(noff ? noff : 1, sizeof(int));
	pending = 0;
	for (i = 0; i < noff; i++) {
		int64_t lo = 0, hi = 0;
		int attempt = 0;

		while (rd_kafka_query_watermark_offsets(cons, off[i].topic, off[i].partition, &lo, &hi, 5000)) {
			if (stop)
				exit(0);
			sleep_ms(relay_backoff_ms(attempt++, R.cfg.outbox_base_delay_s,
			    R.cfg.outbox_max_delay_s, (uint32_t)rand()));
		}
		if (hi <= off[i].offset) {
			done[i] = 1;	/* nothing was written there */
			continue;
		}
		rd_kafka_topic_partition_list_add(tl, off[i].topic, off[i].partition)->offset = off[i].offset;
		pending++;
	}
	if (pending > 0 && rd_kafka_assign(cons, tl))
		fatal("recovery consumer: assign failed");
	while (pending > 0 && !stop) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(cons, 1000);
		const void *val;
		size_t vlen;
		rd_kafka_headers_t *h;
		struct journal_event key;

		if (m == NULL)
			continue;
		if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			for (i = 0; i < noff; i++)
				if (!done[i] && m->partition == off[i].partition &&
				    strcmp(rd_kafka_topic_name(m->rkt), off[i].topic) == 0) {
					done[i] = 1;
					pending--;
				}
		} else if (m->err == 0 && rd_kafka_message_headers(m, &h) == 0 &&
		    rd_kafka_header_get_last(h, "event_id", &val, &vlen) == 0 && vlen < sizeof(key.event_id)) {
			memcpy(key.event_id, val, vlen);
			key.event_id[vlen] = '\0';
			hit = bsearch(&key, ev, n, sizeof(*ev), cmp_event_id);
			if (hit != NULL && hit->seq > 0) {
				char num[32];
				size_t l = (size_t)snprintf(num, sizeof(num), "%s%lld",
				    arrlen ? "," : "", (long long)hit->seq);
				if (arrlen + l + 3 > arrcap) {
					arrcap = arrcap ? arrcap * 2 : 1024;
					arr = realloc(arr, arrcap);
					if (arr == NULL)
						abort();
				}
				memcpy(arr + arrlen, num, l + 1);
				arrlen += l;
				if (hit->seq > max_seq)
					max_seq = hit->seq;
				if (strcmp(hit->topic, R.dlq_topic) == 0) {
					if (journal_dlq(R.j, hit->seq, hit->event_id, "dead-lettered (recovered)",
					    0, err, sizeof(err)) < 0)
						jfatal(err);
				}
				hit->seq = -hit->seq;	/* count once */
				found++;
			}
		}
		rd_kafka_message_destroy(m);
	}
	if (stop)
		exit(0);
	rd_kafka_consumer_close(cons);
	rd_kafka_destroy(cons);
	rd_kafka_topic_partition_list_destroy(tl);
	if (found > 0) {
		char *lit = xmalloc(arrlen + 3);
		snprintf(lit, arrlen + 3, "{%s}", arr);
		pg_mark_published(lit);
		free(lit);
	}
	if (journal_window_end(R.j, max_seq, NULL, 0, err, sizeof(err)) < 0)
		jfatal(err);
	R.recovered += found;
	pend_reset();	/* re-read the partition ends after a crash */
	log_info("window recovered", LF_I("already_on_broker", (int64_t)found),
	    LF_I("to_republish", (int64_t)(n - found)));
	free(arr);
	free(done);
	free(ev);
	free(off);
}

/* ---- one window ----------------------------------------------------- */

static void
stats(void)
{
	int64_t now = util_now_ms();

	if (now < R.next_stats_ms)
		return;
	R.next_stats_ms = now + 10000;
	log_info("relay stats", LF_I("published", (int64_t)R.published), LF_I("dlq", (int64_t)R.dlqd),
	    LF_I("windows", (int64_t)R.windows), LF_I("recovered", (int64_t)R.recovered));
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

static int
permanent(rd_kafka_resp_err_t e)
{
	return e == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE || e == RD_KAFKA_RESP_ERR_INVALID_MSG ||
	    e == RD_KAFKA_RESP_ERR_INVALID_RECORD || e == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ||
	    e == RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE || e == RD_KAFKA_RESP_ERR__MSG_TIMED_OUT ||
	    e == RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION;
}

/* Returns the number of rows handled (0: outbox empty). */
static int
run_window(void)
{
	PGresult *res = pg_fetch(R.cfg.outbox_batch_size);
	struct ev *evs;
	struct journal_event *je;
	struct journal_offset *off = NULL;
	char topics[8][128], err[512], now[40];
	size_t nt = 0, n, i, k, noff = 0;
	int outstanding = 0;
	int64_t max_seq = 0, waited_ms = 0;
	char *arr;
	size_t arrlen = 0;

	if (res == NULL)
		return 0;
	n = (size_t)PQntuples(res);
	if (n == 0) {
		PQclear(res);
		return 0;
	}
	evs = xcalloc(n, sizeof(*evs));
	je = xcalloc(n, sizeof(*je));
	iso_now(now, sizeof(now));
	for (i = 0; i < n; i++) {
		struct ev *e = &evs[i];
		char why[256] = "";
		const char *last_error = PQgetvalue(res, (int)i, 10);

		e->row.seq = strtoll(PQgetvalue(res, (int)i, 0), NULL, 10);
		e->row.event_id = PQgetvalue(res, (int)i, 1);
		e->row.aggregate_type = PQgetvalue(res, (int)i, 2);
		e->row.aggregate_id = PQgetvalue(res, (int)i, 3);
		e->row.partition_key = PQgetvalue(res, (int)i, 4);
		e->row.event_type = PQgetvalue(res, (int)i, 5);
		e->row.payload = PQgetvalue(res, (int)i, 6);
		e->row.correlation_id = PQgetvalue(res, (int)i, 7);
		e->row.created_at = PQgetvalue(res, (int)i, 8);
		e->row.retry_count = atoi(PQgetvalue(res, (int)i, 9));
		snprintf(e->seqstr, sizeof(e->seqstr), "%lld", (long long)e->row.seq);
		if (e->row.retry_count >= R.cfg.outbox_max_retries ||
		    strncmp(last_error, "permanent:", 10) == 0) {
			snprintf(e->dlq_error, sizeof(e->dlq_error), "%s", last_error[0] ? last_error :
			    "retries exhausted");
		} else if (relay_envelope(&e->row, &e->value, why, sizeof(why)) == 0) {
			if (relay_topic(R.cfg.topic_prefix, e->row.event_type, e->topic, sizeof(e->topic)) < 0)
				snprintf(e->dlq_error, sizeof(e->dlq_error), "invalid topic for event type");
			else if (strlen(e->value) > MAX_MESSAGE_BYTES)
				snprintf(e->dlq_error, sizeof(e->dlq_error), "message too large (%zu bytes)",
				    strlen(e->value));
		} else {
			snprintf(e->dlq_error, sizeof(e->dlq_error), "poison: %s", why);
		}
		if (e->dlq_error[0]) {
			free(e->value);
			e->dlq = 1;
			e->value = relay_dlq_record(&e->row, NULL, e->row.retry_count, now, e->dlq_error);
			snprintf(e->topic, sizeof(e->topic), "%s", R.dlq_topic);
		}
		je[i].seq = e->row.seq;
		snprintf(je[i].event_id, sizeof(je[i].event_id), "%s", e->row.event_id);
		snprintf(je[i].topic, sizeof(je[i].topic), "%s", e->topic);
		for (k = 0; k < nt && strcmp(topics[k], e->topic); k++)
			;
		if (k == nt && nt < 8)
			snprintf(topics[nt++], sizeof(topics[0]), "%s", e->topic);
	}

	/* Where a recovery scan would start, then the durable window. */
	if (end_offsets(topics, nt, &off, &noff) < 0)
		goto out;
	if (journal_window_begin(R.j, je, n, off, noff, err, sizeof(err)) < 0)
		jfatal(err);

	for (i = 0; i < n; i++) {
		struct ev *e = &evs[i];
		rd_kafka_resp_err_t r;

		for (;;) {
			r = rd_kafka_producev(R.rk,
			    RD_KAFKA_V_TOPIC(e->topic),
			    RD_KAFKA_V_KEY(e->row.partition_key, strlen(e->row.partition_key)),
			    RD_KAFKA_V_VALUE(e->value, strlen(e->value)),
			    RD_KAFKA_V_HEADER("event_id", e->row.event_id, -1),
			    RD_KAFKA_V_HEADER("event_type", e->row.event_type, -1),
			    RD_KAFKA_V_HEADER("outbox_seq", e->seqstr, -1),
			    RD_KAFKA_V_HEADER("correlation_id", e->row.correlation_id, -1),
			    RD_KAFKA_V_OPAQUE(e),
			    RD_KAFKA_V_END);
			if (r != RD_KAFKA_RESP_ERR__QUEUE_FULL)
				break;
			rd_kafka_poll(R.rk, 100);	/* bounded memory: wait */
		}
		if (r) {
			e->state = EV_FAILED;
			e->err = r;
		} else {
			outstanding++;
		}
	}
	/* Wait for every delivery report; during an outage this is where the
	 * relay sits, with librdkafka reconnecting under exponential backoff. */
	for (;;) {
		int left = 0;

		for (i = 0; i < n; i++)
			left += evs[i].state == EV_PENDING;
		if (left == 0)
			break;
		if (stop && waited_ms > (int64_t)R.cfg.shutdown_grace_s * 1000) {
			log_warn("stopping with undelivered events; they stay pending", LF_I("undelivered", left));
			goto out;
		}
		rd_kafka_poll(R.rk, 200);
		waited_ms += 200;
		if (waited_ms % 5000 == 0)
			log_warn("waiting for the broker", LF_I("undelivered", left),
			    LF_I("waited_s", waited_ms / 1000));
	}
	(void)outstanding;

	/* Record outcomes: published rows in one UPDATE; DLQ rows one by one;
	 * failures are counted and retried in a later window. */
	arr = xmalloc(n * 24 + 3);
	arr[arrlen++] = '{';
	for (i = 0; i < n; i++) {
		struct ev *e = &evs[i];

		if (e->state == EV_DELIVERED) {
			if (e->row.seq > max_seq)
				max_seq = e->row.seq;
			if (e->dlq) {
				pg_mark_dlq(e->row.seq, e->dlq_error, e->row.retry_count);
				if (journal_dlq(R.j, e->row.seq, e->row.event_id, e->dlq_error,
				    e->row.retry_count, err, sizeof(err)) < 0)
					jfatal(err);
				log_warn("event dead-lettered", LF_I("outbox_seq", e->row.seq),
				    LF_S("event_id", e->row.event_id), LF_S("error", e->dlq_error));
				R.dlqd++;
			} else {
				arrlen += (size_t)snprintf(arr + arrlen, 24, "%s%lld", arrlen > 1 ? "," : "",
				    (long long)e->row.seq);
				R.published++;
			}
		} else {
			char why[300];
			int count = 0;

			snprintf(why, sizeof(why), "%s%s", permanent(e->err) ? "permanent: " : "",
			    rd_kafka_err2str(e->err));
			if (journal_failure(R.j, e->row.seq, e->row.event_id, why, &count, err, sizeof(err)) < 0)
				jfatal(err);
			pg_mark_failed(e->row.seq, why);
			log_warn("publish failed; will retry or dead-letter", LF_I("outbox_seq", e->row.seq),
			    LF_S("error", why), LF_I("failures", count));
		}
	}
	arr[arrlen++] = '}';
	arr[arrlen] = '\0';
	if (arrlen > 2)
		pg_mark_published(arr);
	free(arr);
	{
		struct journal_offset *next = xcalloc(n, sizeof(*next));
		size_t nn = 0;
		for (i = 0; i < n; i++)
			if (evs[i].state == EV_DELIVERED) {
				snprintf(next[nn].topic, sizeof(next[nn].topic), "%s", evs[i].topic);
				next[nn].partition = evs[i].partition;
				next[nn].offset = evs[i].offset + 1;
				pend_set(evs[i].topic, evs[i].partition, evs[i].offset + 1);
				nn++;
			}
		if (journal_window_end(R.j, max_seq, next, nn, err, sizeof(err)) < 0)
			jfatal(err);
		free(next);
	}
	R.windows++;
	for (i = 0; i < n; i++)
		if (evs[i].state == EV_FAILED && !permanent(evs[i].err)) {
			sleep_ms(relay_backoff_ms(evs[i].row.retry_count, R.cfg.outbox_base_delay_s,
			    R.cfg.outbox_max_delay_s, (uint32_t)rand()));
			break;
		}
out:
	for (i = 0; i < n; i++)
		free(evs[i].value);
	free(evs);
	free(je);
	free(off);
	PQclear(res);
	return (int)n;
}

int
main(void)
{
	char err[512];
	struct sigaction sa;
	int64_t max_seq = 0, windows = 0;

	if (cfg_load(&R.cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "payment-relay: configuration error: %s\n", err);
		return 2;
	}
	log_init("relay", R.cfg.log_level, R.cfg.log_format);
	setenv("PGCONNECT_TIMEOUT", "5", 0);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	srand((unsigned)getpid() ^ (unsigned)util_realtime_ms());
	snprintf(R.dlq_topic, sizeof(R.dlq_topic), "%s.dlq", R.cfg.topic_prefix);

	if (journal_open(R.cfg.journal_path, &R.j, err, sizeof(err)) < 0)
		fatal("%s", err);
	if (journal_cursor(R.j, &max_seq, &windows, err, sizeof(err)) < 0)
		jfatal(err);
	if (pg_ensure() < 0)
		return 0;
	kafka_setup();

	if (R.cfg.sandbox && geteuid() == 0) {
		struct sandbox_ids ids;
		struct sandbox_opts o = { SANDBOX_RELAY, NULL, R.cfg.sandbox_debug, 256 };
		if (sandbox_resolve(R.cfg.user, &ids, err, sizeof(err)) < 0 ||
		    sandbox_enter(&ids, &o, err, sizeof(err)) < 0)
			fatal("sandbox: %s", err);
	} else if (R.cfg.sandbox) {
		struct sandbox_opts o = { SANDBOX_RELAY, NULL, R.cfg.sandbox_debug, 256 };
		struct sandbox_ids ids = { geteuid(), getegid(), "" };
		if (sandbox_enter(&ids, &o, err, sizeof(err)) < 0)
			fatal("sandbox: %s", err);
	}
	log_info("payment-relay started", LF_S("brokers", R.cfg.brokers),
	    LF_S("journal", R.cfg.journal_path), LF_I("journal_max_published_seq", max_seq),
	    LF_I("journal_windows", windows), LF_I("batch", R.cfg.outbox_batch_size));

	recover();
	while (!stop) {
		int n = run_window();
		stats();
		if (n < R.cfg.outbox_batch_size)
			sleep_ms((int64_t)(R.cfg.outbox_poll_interval_s * 1000));
	}
	rd_kafka_flush(R.rk, 5000);
	rd_kafka_destroy(R.rk);
	journal_close(R.j);
	PQfinish(R.pg);
	log_info("payment-relay stopped", LF_I("published", (int64_t)R.published),
	    LF_I("dlq", (int64_t)R.dlqd));
	return 0;
}
