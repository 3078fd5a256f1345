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

/*
 * Data-modifying CTEs on disjoint rows: one round trip, one transaction.
 * l locks the lease row of the settling epoch (FOR SHARE: a takeover waits
 * for this statement, or this statement sees the takeover and does nothing);
 * every change is conditional on it, so a relay that lost the lease settles
 * nothing. The cursors are raised to the highest delivered offset per
 * partition, and the window closes in the same transaction.
 */
static const char *SETTLE_SQL =
    "WITH l AS (SELECT epoch FROM relay_lease WHERE outbox = 'outbox' AND epoch = $6 FOR SHARE), "
    "     pub AS (UPDATE outbox SET published_at = now() "
    "              WHERE seq = ANY($1::bigint[]) AND published_at IS NULL "
    "                AND EXISTS (SELECT FROM l) RETURNING 1), "
    "     dlq AS (UPDATE outbox o SET published_at = now(), last_error = u.err "
    "               FROM unnest($2::bigint[], $3::text[]) AS u(seq, err) "
    "              WHERE o.seq = u.seq AND o.published_at IS NULL "
    "                AND EXISTS (SELECT FROM l) RETURNING 1), "
    "     bad AS (UPDATE outbox o SET retry_count = o.retry_count + 1, last_error = u.err "
    "               FROM unnest($4::bigint[], $5::text[]) AS u(seq, err) "
    "              WHERE o.seq = u.seq AND o.published_at IS NULL "
    "                AND EXISTS (SELECT FROM l) RETURNING 1), "
    "     cur AS (INSERT INTO relay_cursors AS c (topic, partition, next_offset) "
    "             SELECT t, p, max(o) FROM unnest($7::text[], $8::int[], $9::bigint[]) AS u(t, p, o) "
    "              WHERE EXISTS (SELECT FROM l) GROUP BY t, p "
    "             ON CONFLICT (topic, partition) DO UPDATE "
    "                SET next_offset = greatest(c.next_offset, excluded.next_offset), "
    "                    updated_at = now() RETURNING 1), "
    "     win AS (DELETE FROM relay_windows WHERE outbox = 'outbox' AND $10::boolean "
    "                AND EXISTS (SELECT FROM l) RETURNING 1) "
    "SELECT (SELECT count(*) FROM l), (SELECT count(*) FROM pub), (SELECT count(*) FROM dlq), "
    "       (SELECT count(*) FROM bad), (SELECT count(*) FROM cur), (SELECT count(*) FROM win)";

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
	PGconn *c;
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
	*out = c;
	c = NULL;
	rc = 0;
out:
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
	int64_t *part = xcalloc(s->nnext + 1, sizeof(*part)),
	        *off = xcalloc(s->nnext + 1, sizeof(*off));
	const char **top = xcalloc(s->nnext + 1, sizeof(*top));
	char *a[8], epoch[24];
	const char *p[10];
	PGresult *r = NULL;
	size_t k;
	int i, rc = 0;

	for (k = 0; k < s->nnext; k++) {
		top[k] = s->next[k].topic;
		part[k] = s->next[k].partition;
		off[k] = s->next[k].offset;
	}
	snprintf(epoch, sizeof(epoch), "%lld", (long long)s->epoch);
	a[0] = relay_pg_int_array(s->published, s->npublished);
	a[1] = relay_pg_int_array(s->dlq, s->ndlq);
	a[2] = relay_pg_text_array(s->dlq_error, s->ndlq);
	a[3] = relay_pg_int_array(s->failed, s->nfailed);
	a[4] = relay_pg_text_array(s->fail_error, s->nfailed);
	a[5] = relay_pg_text_array(top, s->nnext);
	a[6] = relay_pg_int_array(part, s->nnext);
	a[7] = relay_pg_int_array(off, s->nnext);
	for (i = 0; i < 5; i++)
		p[i] = a[i];
	p[5] = epoch;
	p[6] = a[5];
	p[7] = a[6];
	p[8] = a[7];
	p[9] = s->close_window ? "true" : "false";
	r = PQexecParams(c, SETTLE_SQL, 10, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		rc = classify(c, r, "outbox settle", err, errlen);
	else if (strcmp(PQgetvalue(r, 0, 0), "1") != 0) {
		int64_t now = -1;
		PGresult *e = PQexecParams(c,
		    "SELECT epoch FROM relay_lease WHERE outbox = 'outbox'", 0, NULL, NULL, NULL,
		    NULL, 0);

		if (PQresultStatus(e) == PGRES_TUPLES_OK && PQntuples(e) == 1)
			now = strtoll(PQgetvalue(e, 0, 0), NULL, 10);
		PQclear(e);
		snprintf(err, errlen, "lease lost (epoch %lld < %lld): not settling",
		    (long long)s->epoch, (long long)now);
		rc = RELAY_PG_LOST;
	}
	PQclear(r);
	for (i = 0; i < 8; i++)
		free(a[i]);
	free(part);
	free(off);
	free(top);
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
