/* SPDX-License-Identifier: MIT */
/*
 * relay_lease.c — the relay's lease, its renewal thread and the Postgres
 * copy of the open window (see relay_lease.h).
 *
 * Why a lock on the lease row in every leader write: under READ COMMITTED
 * a plain "WHERE epoch = mine" could read the row before a concurrent
 * takeover commits and still record a window the new leader never sees.
 * FOR SHARE makes the takeover's UPDATE wait for the write (the new leader
 * then sees it), or the write re-read the row after the takeover (and find
 * nothing).
 */
#include "relay_lease.h"
#include "common/log.h"
#include "common/util.h"
#include "relay_pg.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *TRY_SQL =
    "WITH old AS (SELECT outbox, holder, epoch, expires_at, expires_at < now() AS expired, "
    "                    CASE WHEN expires_at > now() "
    "                         THEN (extract(epoch FROM expires_at - now()) * 1000)::bigint "
    "                         ELSE 0 END AS left_ms "
    "               FROM relay_lease WHERE outbox = 'outbox' FOR UPDATE), "
    "     upd AS (UPDATE relay_lease l SET holder = $1, holder_pid = pg_backend_pid(), "
    "                    epoch = l.epoch + 1, acquired_at = now(), renewed_at = now(), "
    "                    expires_at = now() + make_interval(secs => $2::int), "
    "                    takeovers = l.takeovers + "
    "                        CASE WHEN old.holder IS NOT NULL AND old.holder <> $1 "
    "                             THEN 1 ELSE 0 END "
    "               FROM old WHERE l.outbox = old.outbox "
    "                AND (old.holder IS NULL OR old.expired OR old.holder = $1) "
    "             RETURNING l.epoch) "
    "SELECT (SELECT epoch FROM upd), old.epoch, coalesce(old.holder, ''), old.left_ms FROM old";

static const char *WINDOW_SQL =
    "WITH l AS (SELECT epoch FROM relay_lease WHERE outbox = 'outbox' AND epoch = $1 FOR SHARE) "
    "INSERT INTO relay_windows (outbox, epoch, seqs, event_ids, topics, partitions, "
    "                           start_topics, start_partitions, start_offsets) "
    "SELECT 'outbox', l.epoch, $2::bigint[], $3::text[], $4::text[], $5::int[], $6::text[], "
    "       $7::int[], $8::bigint[] FROM l RETURNING 1";

static int
fail(PGconn *c, PGresult *r, const char *what, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s: %s", what, r ? PQresultErrorMessage(r) : PQerrorMessage(c));
	err[strcspn(err, "\n")] = '\0';
	return PQstatus(c) != CONNECTION_OK ? RELAY_PG_RETRY : RELAY_PG_FATAL;
}

int
relay_lease_try(
    PGconn *c, const char *ident, int lease_s, struct relay_lease_take *t, char *err, size_t errlen)
{
	char secs[16];
	const char *p[2] = { ident, secs };
	PGresult *r;
	int rc = 0;

	memset(t, 0, sizeof(*t));
	snprintf(secs, sizeof(secs), "%d", lease_s);
	r = PQexecParams(c, TRY_SQL, 2, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		rc = fail(c, r, "relay lease", err, errlen);
		goto out;
	}
	if (PQntuples(r) != 1) {
		snprintf(err, errlen, "relay lease: no relay_lease row (apply migration 0005)");
		rc = RELAY_PG_FATAL;
		goto out;
	}
	snprintf(t->prev_holder, sizeof(t->prev_holder), "%s", PQgetvalue(r, 0, 2));
	t->taken = !PQgetisnull(r, 0, 0);
	t->epoch = strtoll(PQgetvalue(r, 0, t->taken ? 0 : 1), NULL, 10);
	t->takeover = t->taken && t->prev_holder[0] && strcmp(t->prev_holder, ident) != 0;
	t->expires_in_ms = strtoll(PQgetvalue(r, 0, 3), NULL, 10);
out:
	PQclear(r);
	return rc;
}

int
relay_lease_terminate(PGconn *c, const char *holder, int *n, char *err, size_t errlen)
{
	const char *p[1] = { holder };
	PGresult *r;
	int rc = 0;

	*n = 0;
	r = PQexecParams(c,
	    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
	    "WHERE application_name = $1 AND pid <> pg_backend_pid()",
	    1, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		rc = fail(c, r, "terminating the expired holder's sessions", err, errlen);
	else
		*n = (int)strtol(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return rc;
}

int
relay_lease_release(PGconn *c, int64_t epoch, char *err, size_t errlen)
{
	char e[24];
	const char *p[1] = { e };
	PGresult *r;
	int rc = 0;

	snprintf(e, sizeof(e), "%lld", (long long)epoch);
	r = PQexecParams(c,
	    "UPDATE relay_lease SET expires_at = now() WHERE outbox = 'outbox' AND epoch = $1", 1,
	    NULL, p, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		rc = fail(c, r, "lease release", err, errlen);
	PQclear(r);
	return rc;
}

int
relay_lease_read(
    PGconn *c, int64_t *epoch, int64_t *fenced, int64_t *takeovers, char *err, size_t errlen)
{
	PGresult *r = PQexecParams(c,
	    "SELECT epoch, fenced_exits, takeovers FROM relay_lease WHERE outbox = 'outbox'", 0,
	    NULL, NULL, NULL, NULL, 0);
	int rc = 0;

	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
		rc = fail(c, r, "lease read", err, errlen);
	} else {
		*epoch = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
		if (fenced)
			*fenced = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
		if (takeovers)
			*takeovers = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
	}
	PQclear(r);
	return rc;
}

void
relay_lease_count_fenced(PGconn *c)
{
	PGresult *r;

	if (c == NULL || PQstatus(c) != CONNECTION_OK)
		return;
	r = PQexecParams(c,
	    "UPDATE relay_lease SET fenced_exits = fenced_exits + 1 WHERE outbox = 'outbox'", 0,
	    NULL, NULL, NULL, NULL, 0);
	PQclear(r);
}

int
relay_lease_window_open(PGconn *c, int64_t epoch, const struct journal_event *ev, size_t n,
    const struct journal_offset *start, size_t nstart, int64_t *now_epoch, char *err, size_t errlen)
{
	int64_t *seq = xcalloc(n + 1, sizeof(*seq)), *part = xcalloc(n + 1, sizeof(*part));
	int64_t *spart = xcalloc(nstart + 1, sizeof(*spart)),
	        *soff = xcalloc(nstart + 1, sizeof(*soff));
	const char **ids = xcalloc(n + 1, sizeof(*ids)), **top = xcalloc(n + 1, sizeof(*top));
	const char **stop = xcalloc(nstart + 1, sizeof(*stop));
	char e[24], *a[7];
	const char *p[8];
	PGresult *r;
	size_t i;
	int rc = 0;

	for (i = 0; i < n; i++) {
		seq[i] = ev[i].seq;
		part[i] = ev[i].partition;
		ids[i] = ev[i].event_id;
		top[i] = ev[i].topic;
	}
	for (i = 0; i < nstart; i++) {
		stop[i] = start[i].topic;
		spart[i] = start[i].partition;
		soff[i] = start[i].offset;
	}
	snprintf(e, sizeof(e), "%lld", (long long)epoch);
	a[0] = relay_pg_int_array(seq, n);
	a[1] = relay_pg_text_array(ids, n);
	a[2] = relay_pg_text_array(top, n);
	a[3] = relay_pg_int_array(part, n);
	a[4] = relay_pg_text_array(stop, nstart);
	a[5] = relay_pg_int_array(spart, nstart);
	a[6] = relay_pg_int_array(soff, nstart);
	p[0] = e;
	for (i = 0; i < 7; i++)
		p[i + 1] = a[i];
	r = PQexecParams(c, WINDOW_SQL, 8, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		rc = fail(c, r, "window record", err, errlen);
	else if (PQntuples(r) == 0) {
		rc = RELAY_PG_LOST;
		*now_epoch = -1;
		if (relay_lease_read(c, now_epoch, NULL, NULL, err, errlen) < 0)
			*now_epoch = -1;
		snprintf(err, errlen, "lease lost (epoch %lld < %lld)", (long long)epoch,
		    (long long)*now_epoch);
	}
	PQclear(r);
	for (i = 0; i < 7; i++)
		free(a[i]);
	free(seq);
	free(part);
	free(spart);
	free(soff);
	free(ids);
	free(top);
	free(stop);
	return rc;
}

static int
load_offsets(
    PGconn *c, const char *sql, struct journal_offset **out, size_t *n, char *err, size_t errlen)
{
	PGresult *r = PQexecParams(c, sql, 0, NULL, NULL, NULL, NULL, 0);
	int i, rc = 0;

	*out = NULL;
	*n = 0;
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		rc = fail(c, r, "relay cursors", err, errlen);
		goto out;
	}
	*out = xcalloc((size_t)PQntuples(r) + 1, sizeof(**out));
	for (i = 0; i < PQntuples(r); i++) {
		snprintf((*out)[i].topic, sizeof((*out)[i].topic), "%s", PQgetvalue(r, i, 0));
		(*out)[i].partition = (int32_t)strtol(PQgetvalue(r, i, 1), NULL, 10);
		(*out)[i].offset = strtoll(PQgetvalue(r, i, 2), NULL, 10);
	}
	*n = (size_t)PQntuples(r);
out:
	PQclear(r);
	return rc;
}

int
relay_lease_cursors(PGconn *c, struct journal_offset **out, size_t *n, char *err, size_t errlen)
{
	return load_offsets(c,
	    "SELECT topic, partition, next_offset FROM relay_cursors ORDER BY topic, partition",
	    out, n, err, errlen);
}

int
relay_lease_window_load(PGconn *c, int64_t *epoch, struct journal_event **ev, size_t *n,
    struct journal_offset **start, size_t *nstart, char *err, size_t errlen)
{
	PGresult *r;
	int i, rc = 0;

	*ev = NULL;
	*n = 0;
	*start = NULL;
	*nstart = 0;
	*epoch = 0;
	r = PQexecParams(c,
	    "SELECT w.epoch, u.seq, u.event_id, u.topic, u.partition FROM relay_windows w, "
	    "       unnest(w.seqs, w.event_ids, w.topics, w.partitions) AS u(seq, event_id, topic, "
	    "partition) WHERE w.outbox = 'outbox' ORDER BY u.seq",
	    0, NULL, NULL, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		rc = fail(c, r, "window load", err, errlen);
		PQclear(r);
		return rc;
	}
	*ev = xcalloc((size_t)PQntuples(r) + 1, sizeof(**ev));
	for (i = 0; i < PQntuples(r); i++) {
		*epoch = strtoll(PQgetvalue(r, i, 0), NULL, 10);
		(*ev)[i].seq = strtoll(PQgetvalue(r, i, 1), NULL, 10);
		snprintf((*ev)[i].event_id, sizeof((*ev)[i].event_id), "%s", PQgetvalue(r, i, 2));
		snprintf((*ev)[i].topic, sizeof((*ev)[i].topic), "%s", PQgetvalue(r, i, 3));
		(*ev)[i].partition = (int32_t)strtol(PQgetvalue(r, i, 4), NULL, 10);
	}
	*n = (size_t)PQntuples(r);
	PQclear(r);
	rc = load_offsets(c,
	    "SELECT u.t, u.p, u.o FROM relay_windows w, "
	    "       unnest(w.start_topics, w.start_partitions, w.start_offsets) AS u(t, p, o) "
	    "WHERE w.outbox = 'outbox' ORDER BY 1, 2",
	    start, nstart, err, errlen);
	if (rc < 0) {
		free(*ev);
		*ev = NULL;
		*n = 0;
	}
	return rc;
}

/* ---- the renewal thread --------------------------------------------- */

static struct {
	pthread_t th;
	int running;
	atomic_int stop;
	atomic_llong renewed_ms; /* util_now_ms() of the last renewal */
	char url[1024];
	char ident[64];
	int64_t epoch;
	int lease_s;
	void (*on_lost)(int64_t, int64_t);
} RN;

static void
nap_ms(int64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* One renewal: 1 renewed, 0 lost (*now = the epoch found), -1 no answer. */
static int
renew_once(PGconn *c, int64_t *now)
{
	char e[24], s[16];
	const char *p[2] = { e, s };
	PGresult *r;
	char err[256];
	int rc;

	snprintf(e, sizeof(e), "%lld", (long long)RN.epoch);
	snprintf(s, sizeof(s), "%d", RN.lease_s);
	r = PQexecParams(c,
	    "UPDATE relay_lease SET renewed_at = now(), "
	    "       expires_at = now() + make_interval(secs => $2::int) "
	    " WHERE outbox = 'outbox' AND epoch = $1 RETURNING epoch",
	    2, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		rc = -1;
	else if (PQntuples(r) == 1)
		rc = 1;
	else
		rc = relay_lease_read(c, now, NULL, NULL, err, sizeof(err)) == 0 ? 0 : -1;
	PQclear(r);
	return rc;
}

static void *
renewer(void *arg)
{
	int64_t every = (int64_t)RN.lease_s * 1000 / 5, now = 0, last_warn = 0;
	PGconn *c = NULL;
	char err[512];
	int rc;

	(void)arg;
	if (every < 200)
		every = 200;
	while (!atomic_load(&RN.stop)) {
		if (c == NULL || PQstatus(c) != CONNECTION_OK) {
			if (c)
				PQfinish(c);
			c = NULL;
			if (relay_pg_connect(RN.url, RN.ident, &c, err, sizeof(err)) != 0) {
				c = NULL;
				if (util_now_ms() - last_warn > 5000) {
					log_warn("lease renewal: postgres unavailable",
					    LF_S("error", err));
					last_warn = util_now_ms();
				}
				nap_ms(every / 2);
				continue;
			}
		}
		rc = renew_once(c, &now);
		if (rc == 1)
			atomic_store(&RN.renewed_ms, (long long)util_now_ms());
		else if (rc == 0 && now != RN.epoch) {
			relay_lease_count_fenced(c);
			PQfinish(c);
			RN.on_lost(RN.epoch, now); /* does not return */
		}
		nap_ms(every);
	}
	if (c)
		PQfinish(c);
	return NULL;
}

int
relay_lease_renewer_start(const char *url, const char *ident, int64_t epoch, int lease_s,
    void (*on_lost)(int64_t mine, int64_t now), char *err, size_t errlen)
{
	sigset_t block, old;
	int e;

	if (RN.running)
		relay_lease_renewer_stop();
	snprintf(RN.url, sizeof(RN.url), "%s", url);
	snprintf(RN.ident, sizeof(RN.ident), "%s", ident);
	RN.epoch = epoch;
	RN.lease_s = lease_s;
	RN.on_lost = on_lost;
	atomic_store(&RN.stop, 0);
	atomic_store(&RN.renewed_ms, (long long)util_now_ms());
	/* SIGTERM and SIGINT stay with the main thread (its stop flag). */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	e = pthread_create(&RN.th, NULL, renewer, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e != 0) {
		snprintf(err, errlen, "lease renewal thread: %s", strerror(e));
		return -1;
	}
	RN.running = 1;
	return 0;
}

void
relay_lease_renewer_stop(void)
{
	if (!RN.running)
		return;
	atomic_store(&RN.stop, 1);
	pthread_join(RN.th, NULL);
	RN.running = 0;
}

int64_t
relay_lease_renewed_ago_ms(void)
{
	return util_now_ms() - (int64_t)atomic_load(&RN.renewed_ms);
}
