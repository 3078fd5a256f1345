/* SPDX-License-Identifier: MIT */
/*
 * relay_pg.c — Postgres access of payment-relay (see relay_pg.h).
 */
#include "relay_pg.h"
#include "common/log.h"
#include "common/sqlstate.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *FETCH_SQL =
    "SELECT seq, event_id::text, aggregate_type, aggregate_id, partition_key, event_type, "
    "       payload::text, coalesce(correlation_id, ''), rfc3339(created_at), retry_count, "
    "       coalesce(last_error, ''), txid >= pg_snapshot_xmin(pg_current_snapshot()), "
    "       client_name "
    "  FROM outbox WHERE published_at IS NULL ORDER BY seq LIMIT $1";

/* Data-modifying CTEs on disjoint rows: one round trip, one transaction. */
static const char *SETTLE_SQL =
    "WITH pub AS (UPDATE outbox SET published_at = now() "
    "              WHERE seq = ANY($1::bigint[]) AND published_at IS NULL RETURNING 1), "
    "     dlq AS (UPDATE outbox o SET published_at = now(), last_error = u.err "
    "               FROM unnest($2::bigint[], $3::text[]) AS u(seq, err) "
    "              WHERE o.seq = u.seq AND o.published_at IS NULL RETURNING 1), "
    "     bad AS (UPDATE outbox o SET retry_count = o.retry_count + 1, last_error = u.err "
    "               FROM unnest($4::bigint[], $5::text[]) AS u(seq, err) "
    "              WHERE o.seq = u.seq AND o.published_at IS NULL RETURNING 1) "
    "SELECT (SELECT count(*) FROM pub), (SELECT count(*) FROM dlq), (SELECT count(*) FROM bad)";

static int
classify(PGconn *c, PGresult *r, const char *what, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s: %s", what, r ? PQresultErrorMessage(r) : PQerrorMessage(c));
	/* Trim libpq's trailing newline for the log line. */
	err[strcspn(err, "\n")] = '\0';
	if (PQstatus(c) != CONNECTION_OK)
		return RELAY_PG_RETRY;
	/* A rolled-back transaction (serialization failure and the like) is
	 * worth another try: every relay statement may run twice. */
	switch (r ? sqlstate_classify(PQresultErrorField(r, PG_DIAG_SQLSTATE)) : SQLSTATE_OTHER) {
	case SQLSTATE_RETRY:
	case SQLSTATE_ROLLBACK: return RELAY_PG_RETRY;
	default: return RELAY_PG_FATAL;
	}
}

/* Who holds the relay's advisory lock (its application_name), or "". */
static void
lock_holder(PGconn *c, char *out, size_t outlen)
{
	char hi[16], lo[16];
	const char *p[2] = { hi, lo };
	PGresult *r;

	/* A bigint advisory key shows in pg_locks as classid (high half) and
	 * objid (low half) with objsubid 1. */
	snprintf(hi, sizeof(hi), "%u", (unsigned)((unsigned long long)RELAY_PG_LOCK_KEY >> 32));
	snprintf(
	    lo, sizeof(lo), "%u", (unsigned)((unsigned long long)RELAY_PG_LOCK_KEY & 0xffffffffu));
	r = PQexecParams(c,
	    "SELECT coalesce(a.application_name, '') FROM pg_locks l "
	    "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' "
	    "AND l.classid = $1::oid AND l.objid = $2::oid AND l.objsubid = 1 AND l.granted",
	    2, NULL, p, NULL, NULL, 0);
	snprintf(out, outlen, "%s",
	    PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "");
	PQclear(r);
}

int
relay_pg_connect(const char *url, const char *ident, PGconn **out, char *err, size_t errlen)
{
	/* GSS encryption off unless asked for (PGGSSENCMODE or the URL, which
	 * override this default): probing for it makes libpq's GSSAPI scan
	 * its plugin directory on every connect, which the relay's seccomp
	 * profile does not allow once it runs (a reconnect would kill it). */
	const char *kw[] = { "gssencmode", "dbname", "application_name", NULL };
	const char *val[] = { "disable", url, ident, NULL };
	int first = getenv("PGGSSENCMODE") != NULL ? 1 : 0;
	char key[24], holder[128];
	const char *p[1] = { key };
	PGconn *c;
	PGresult *r = NULL;
	int rc;

	*out = NULL;
	/* expand_dbname: url may be a URI or a conninfo string; the later
	 * application_name overrides one given there. */
	c = PQconnectdbParams(kw + first, val + first, 1);
	if (PQstatus(c) != CONNECTION_OK) {
		snprintf(err, errlen, "postgres: %s", PQerrorMessage(c));
		err[strcspn(err, "\n")] = '\0';
		rc = RELAY_PG_RETRY;
		goto out;
	}
	/* Session lock: released by Postgres when this connection dies, so a
	 * crashed relay never blocks its successor for long. */
	snprintf(key, sizeof(key), "%lld", (long long)RELAY_PG_LOCK_KEY);
	r = PQexecParams(c, "SELECT pg_try_advisory_lock($1::bigint)", 1, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		rc = classify(c, r, "advisory lock", err, errlen);
		goto out;
	}
	if (PQgetvalue(r, 0, 0)[0] != 't') {
		lock_holder(c, holder, sizeof(holder));
		if (strcmp(holder, ident) == 0) {
			snprintf(err, errlen,
			    "the outbox lock is still held by this relay's previous "
			    "session (%s); waiting for Postgres to end it",
			    holder);
			rc = RELAY_PG_RETRY;
		} else {
			snprintf(err, errlen,
			    "another payment-relay (%s) holds the outbox lock on this "
			    "database",
			    holder[0] ? holder : "unknown");
			rc = RELAY_PG_FATAL;
		}
		goto out;
	}
	*out = c;
	c = NULL;
	rc = 0;
out:
	PQclear(r);
	if (c)
		PQfinish(c);
	return rc;
}

int
relay_pg_fetch(
    PGconn *c, int limit, PGresult **res, int *usable, int *held, char *err, size_t errlen)
{
	char lim[16];
	const char *p[1] = { lim };
	PGresult *r;
	int i, n;

	*res = NULL;
	*usable = 0;
	*held = 0;
	snprintf(lim, sizeof(lim), "%d", limit);
	r = PQexecParams(c, FETCH_SQL, 1, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		int rc = classify(c, r, "outbox read", err, errlen);
		PQclear(r);
		return rc;
	}
	n = PQntuples(r);
	for (i = 0; i < n && PQgetvalue(r, i, RF_HELD)[0] != 't'; i++)
		;
	*usable = i;
	*held = i < n;
	*res = r;
	return 0;
}

void
relay_pg_row(PGresult *res, int r, struct relay_row *row)
{
	row->seq = strtoll(PQgetvalue(res, r, RF_SEQ), NULL, 10);
	row->event_id = PQgetvalue(res, r, RF_EVENT_ID);
	row->aggregate_type = PQgetvalue(res, r, RF_AGG_TYPE);
	row->aggregate_id = PQgetvalue(res, r, RF_AGG_ID);
	row->partition_key = PQgetvalue(res, r, RF_KEY);
	row->event_type = PQgetvalue(res, r, RF_TYPE);
	row->payload = PQgetvalue(res, r, RF_PAYLOAD);
	row->correlation_id = PQgetvalue(res, r, RF_CORR);
	row->created_at = PQgetvalue(res, r, RF_CREATED);
	row->retry_count = (int)strtol(PQgetvalue(res, r, RF_RETRIES), NULL, 10);
	row->last_error = PQgetvalue(res, r, RF_LAST_ERROR);
	/* NULL stays NULL: "no client known" is not a client named "". */
	row->client_name = PQgetisnull(res, r, RF_CLIENT) ? NULL : PQgetvalue(res, r, RF_CLIENT);
}

int
relay_pg_settle(PGconn *c, const struct relay_settle *s, char *err, size_t errlen)
{
	char *a[5];
	const char *p[5];
	PGresult *r = NULL;
	int i, rc = 0;

	a[0] = relay_pg_int_array(s->published, s->npublished);
	a[1] = relay_pg_int_array(s->dlq, s->ndlq);
	a[2] = relay_pg_text_array(s->dlq_error, s->ndlq);
	a[3] = relay_pg_int_array(s->failed, s->nfailed);
	a[4] = relay_pg_text_array(s->fail_error, s->nfailed);
	for (i = 0; i < 5; i++)
		p[i] = a[i];
	r = PQexecParams(c, SETTLE_SQL, 5, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		rc = classify(c, r, "outbox settle", err, errlen);
	PQclear(r);
	for (i = 0; i < 5; i++)
		free(a[i]);
	return rc;
}

int
relay_pg_ready(struct relay_pg_link *l, char *err, size_t errlen)
{
	int attempt = 0, rc;

	if (l->conn != NULL && PQstatus(l->conn) == CONNECTION_OK)
		return 0;
	relay_pg_close(l);
	while (!*l->retry->stop) {
		rc = relay_pg_connect(l->url, l->ident, &l->conn, err, errlen);
		if (rc == 0) {
			if (attempt > 0)
				log_info("postgres reachable again", LF_I("attempts", attempt));
			return 0;
		}
		if (rc == RELAY_PG_FATAL)
			return rc;
		log_warn("postgres unavailable; backing off", LF_S("error", err),
		    LF_I("attempt", attempt));
		l->retry->sleep(attempt++);
	}
	return RELAY_PG_STOP;
}

void
relay_pg_lost(struct relay_pg_link *l, const char *what, const char *err)
{
	log_warn("postgres statement failed; reconnecting", LF_S("what", what), LF_S("error", err));
	relay_pg_close(l);
}

int
relay_pg_settle_retry(
    struct relay_pg_link *l, const struct relay_settle *s, char *err, size_t errlen)
{
	int attempt = 0, rc;

	for (;;) {
		if ((rc = relay_pg_ready(l, err, errlen)) != 0)
			return rc;
		if ((rc = relay_pg_settle(l->conn, s, err, errlen)) != RELAY_PG_RETRY)
			return rc;
		relay_pg_lost(l, "outbox settle", err);
		l->retry->sleep(attempt++);
	}
}

void
relay_pg_close(struct relay_pg_link *l)
{
	if (l->conn != NULL)
		PQfinish(l->conn);
	l->conn = NULL;
}

int
relay_pg_backlog(PGconn *c, int64_t *n, char *err, size_t errlen)
{
	PGresult *r = PQexecParams(c, "SELECT count(*) FROM outbox WHERE published_at IS NULL", 0,
	    NULL, NULL, NULL, NULL, 0);
	int rc = 0;

	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		rc = classify(c, r, "backlog", err, errlen);
	else
		*n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return rc;
}

char *
relay_pg_int_array(const int64_t *v, size_t n)
{
	char *s = xmalloc(n * 21 + 3);
	size_t len = 0, i;

	s[len++] = '{';
	for (i = 0; i < n; i++)
		len += (size_t)sprintf(s + len, "%s%lld", i ? "," : "", (long long)v[i]);
	s[len++] = '}';
	s[len] = '\0';
	return s;
}

char *
relay_pg_text_array(const char *const *v, size_t n)
{
	size_t len = 3, i, k = 0;
	const char *q;
	char *s;

	for (i = 0; i < n; i++)
		len += 2 * strlen(v[i]) + 3;
	s = xmalloc(len);
	s[k++] = '{';
	for (i = 0; i < n; i++) {
		if (i)
			s[k++] = ',';
		/* Every element quoted; backslash escapes " and \ (array syntax). */
		s[k++] = '"';
		for (q = v[i]; *q; q++) {
			if (*q == '"' || *q == '\\')
				s[k++] = '\\';
			s[k++] = *q;
		}
		s[k++] = '"';
	}
	s[k++] = '}';
	s[k] = '\0';
	return s;
}
