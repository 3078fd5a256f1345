/* SPDX-License-Identifier: MIT */
/*
 * ledger.c — libpq access for workers (see ledger.h for the contract).
 *
 * Each call is a pipeline: [set statement_timeout] + the prepared statement
 * + Sync, so the deadline costs no extra round trip and the pair runs in
 * one implicit transaction. The timeout is a session setting that is only
 * sent when the one in force does not fit the call (see fit_timeout()), so
 * a client that always sends the same deadline costs Postgres no extra
 * statement per call. Serialization and deadlock failures are
 * retried here with jittered backoff; callers see them only as
 * LEDGER_BUSY, once the retries are used up.
 */
#include "ledger.h"
#include "ledger_life.h"
#include "common/backoff.h"
#include "common/log.h"
#include "common/sqlstate.h"
#include "common/util.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <libpq-fe.h>

/* Grace after the deadline for the server's own timeout to come back. */
#define NET_SLACK_MS 3000

struct ledger {
	PGconn *conn;
	int broken;
	int retry_max;
	int64_t sess_tmo_ms; /* statement_timeout in force; -1 unknown */
	int64_t tx_tmo_ms;   /* set inside the open transaction: in force if it commits */
	int64_t legacy_id;   /* clients.client_id of `legacy` */
};

/* authorize_payment's parameters (see the "auth" statement). */
#define AUTH_NPARAMS 16

/* Without a client deadline statements get this much. */
#define DEFAULT_TMO_MS 30000

static const struct {
	const char *name, *sql;
	int nparams;
} stmts[] = {
	{ "tmo", "SELECT set_config('statement_timeout', $1, false)", 1 },
	{ "ping", "SELECT 1", 0 },
	{ "auth",
	    "SELECT o_payment_id, o_status, o_error_code, o_error_message, "
	    "o_processed_at, o_replayed, o_conflict, o_denied_code, o_denied "
	    "FROM authorize_payment($11::bigint, "
	    "$1, $2, $3, $4::bigint, $5, $6, $7::bytea, $8, $9::integer, $10, "
	    "$12, $13::bigint, $14::bigint, jsonb_object($15::text[], $16::text[]))",
	    AUTH_NPARAMS },
	/* The permission is evaluated in the same statement (snapshot) as
	 * the read, so there is no check-then-read window. */
	{ "getpay",
	    "SELECT po.*, client_may($2::bigint, p.payer_account_id, 'read') "
	    "OR client_may($2::bigint, p.payee_account_id, 'read') "
	    "FROM payments p, LATERAL payment_out(p) po WHERE p.payment_id = $1",
	    2 },
	/* For ledger_run()'s explicit transactions. */
	{ "begin", "BEGIN", 0 },
	{ "commit", "COMMIT", 0 },
	{ "rollback", "ROLLBACK", 0 },
	/* The lifecycle (ledger_life.c): one statement each (0010). */
	{ "capture",
	    "SELECT " LEDGER_OP_COLS " FROM capture_payment($1::bigint, $2, $3, $4::bigint, "
	    "$5::bytea, $6::integer, $7)",
	    7 },
	{ "void",
	    "SELECT " LEDGER_OP_COLS " FROM void_payment($1::bigint, $2, $3, $4, $5::bytea, "
	    "$6::integer, $7)",
	    7 },
	{ "refund",
	    "SELECT " LEDGER_OP_COLS " FROM refund_payment($1::bigint, $2, $3, $4::bigint, $5, "
	    "$6::bytea, $7, $8::integer, $9)",
	    9 },
	/* Newest first by the keyset (created_at, payment_id); payments of
	 * the account as payer, then as payee (not again when it is both, a
	 * SAME_ACCOUNT decline). $3 status or ''; $4/$5 the position after
	 * which to continue (NULL: the first page); $6 the limit. */
	{ "listpay",
	    "SELECT client_may($2::bigint, $1, 'read'), x.* FROM (VALUES (1)) v "
	    "LEFT JOIN LATERAL (SELECT (extract(epoch FROM p.created_at) * 1000000)::bigint, "
	    "po.* FROM (SELECT * FROM ("
	    "(SELECT * FROM payments WHERE payer_account_id = $1 AND ($3 = '' OR status = $3) "
	    "AND ($4::bigint IS NULL OR (created_at, payment_id) < "
	    "('epoch'::timestamptz + ($4 || ' microseconds')::interval, $5)) "
	    "ORDER BY created_at DESC, payment_id DESC LIMIT $6::integer) UNION ALL "
	    "(SELECT * FROM payments WHERE payee_account_id = $1 AND payer_account_id <> $1 "
	    "AND ($3 = '' OR status = $3) AND ($4::bigint IS NULL OR (created_at, payment_id) < "
	    "('epoch'::timestamptz + ($4 || ' microseconds')::interval, $5)) "
	    "ORDER BY created_at DESC, payment_id DESC LIMIT $6::integer)) u "
	    "ORDER BY created_at DESC, payment_id DESC LIMIT $6::integer) p, "
	    "LATERAL payment_out(p) po) x ON true",
	    6 },
	/* The permission first: a client without can_read learns nothing,
	 * not even whether the account exists. */
	{ "getbal",
	    "SELECT client_may($2::bigint, $1, 'read'), x.* FROM (VALUES (1)) v "
	    "LEFT JOIN LATERAL (SELECT b.account_id, b.available_cents, b.pending_cents, "
	    "a.currency FROM account_balances b JOIN accounts a USING (account_id) "
	    "WHERE b.account_id = $1) x ON true",
	    2 },
	{ "client",
	    "SELECT c.client_id, c.name, c.is_admin, coalesce((SELECT string_agg("
	    "l.method || '=' || l.limit_per_window, ',' ORDER BY l.method) "
	    "FROM client_limits l WHERE l.client_id = c.client_id), '') "
	    "FROM clients c WHERE c.status = 'ACTIVE' AND c.client_id IN ("
	    "SELECT k.client_id FROM client_credentials k "
	    "JOIN unnest($1::text[], $2::text[]) AS q(kind, value) "
	    "ON k.kind = q.kind AND k.value = q.value WHERE k.revoked_at IS NULL) "
	    "ORDER BY c.client_id LIMIT 2",
	    2 },
};

const char *
ledger_rc_name(enum ledger_rc rc)
{
	static const char *n[] = { "ok", "not_found", "invalid", "timeout", "unavailable", "busy",
		"internal", "denied" };
	return (unsigned)rc < ARRAY_LEN(n) ? n[rc] : "?";
}

/* Reads one pipeline segment up to its PIPELINE_SYNC (blocking: only used
 * before the worker serves anyone). Returns 0 if every command succeeded,
 * else -1 with the first error in err. */
static int
drain_segment(struct ledger *l, const char *what, char *err, size_t errlen)
{
	PGresult *r;
	int rc = 0;

	for (;;) {
		r = PQgetResult(l->conn);
		if (r == NULL) {
			if (PQstatus(l->conn) != CONNECTION_OK) {
				snprintf(err, errlen, "%s: %s", what, PQerrorMessage(l->conn));
				return -1;
			}
			continue; /* end of one command's results */
		}
		switch (PQresultStatus(r)) {
		case PGRES_PIPELINE_SYNC: PQclear(r); return rc;
		case PGRES_COMMAND_OK:
		case PGRES_TUPLES_OK: break;
		default:
			if (rc == 0) {
				snprintf(err, errlen, "%s: %s", what, PQresultErrorMessage(r));
				err[strcspn(err, "\n")] = '\0';
			}
			rc = -1;
		}
		PQclear(r);
	}
}

/*
 * The first authorize_payment of a Postgres session costs 8-12 ms instead
 * of ~1.5 ms: PL/pgSQL compiles the function and plans each statement, and
 * the catalog caches fill. A pooled worker pays that here, before it says
 * READY, instead of on its client's first RPC. It runs the AUTHORIZED path
 * between two accounts created inside a transaction that is rolled back:
 * other sessions never see them, and no shared row is locked. (The outbox
 * sequence advances; the relay tolerates such gaps, as it does for any
 * rolled-back payment.) Failure is not fatal: the worker is merely cold.
 */
static int
warm_up(struct ledger *l, char *err, size_t errlen)
{
	unsigned char rnd[12];
	char tag[2 * sizeof(rnd) + 1], payer[48], payee[48], key[48], pid[48];
	uint8_t fp[32] = { 0 };
	const char *acc[2], *v[AUTH_NPARAMS];
	int lens[AUTH_NPARAMS] = { 0 }, fmts[AUTH_NPARAMS] = { 0 };
	char legacy[24];
	int rc;

	if (util_random(rnd, sizeof(rnd)) < 0) {
		snprintf(err, errlen, "warm-up: getrandom failed");
		return -1;
	}
	util_hex(rnd, sizeof(rnd), tag);
	snprintf(payer, sizeof(payer), "~warm-up-%s-a", tag);
	snprintf(payee, sizeof(payee), "~warm-up-%s-b", tag);
	snprintf(key, sizeof(key), "~warm-up-%s", tag);
	snprintf(pid, sizeof(pid), "~warm-up-%s", tag);
	acc[0] = payer;
	acc[1] = payee;
	v[0] = key;
	v[1] = payer;
	v[2] = payee;
	v[3] = "1";
	v[4] = "USD";
	v[5] = "";
	v[6] = (const char *)fp;
	lens[6] = 32;
	fmts[6] = 1;
	v[7] = pid;
	v[8] = "60";
	v[9] = "warm-up";
	snprintf(legacy, sizeof(legacy), "%lld", (long long)l->legacy_id);
	v[10] = legacy;
	v[11] = "AUTOMATIC";
	v[12] = "0";
	v[13] = "0";
	v[14] = "{}";
	v[15] = "{}";

	if (!PQenterPipelineMode(l->conn) ||
	    !PQsendQueryParams(l->conn, "BEGIN", 0, NULL, NULL, NULL, NULL, 0) ||
	    !PQsendQueryParams(l->conn,
	        "INSERT INTO accounts (account_id, currency) "
	        "VALUES ($1, 'USD'), ($2, 'USD')",
	        2, NULL, acc, NULL, NULL, 0) ||
	    !PQsendQueryParams(l->conn,
	        "INSERT INTO account_balances (account_id, "
	        "available_cents) VALUES ($1, 100), ($2, 0)",
	        2, NULL, acc, NULL, NULL, 0) ||
	    !PQsendQueryPrepared(l->conn, "auth", AUTH_NPARAMS, v, lens, fmts, 0) ||
	    !PQsendQueryPrepared(
	        l->conn, "getbal", 2, (const char *[]){ payer, legacy }, NULL, NULL, 0) ||
	    !PQsendQueryParams(l->conn, "ROLLBACK", 0, NULL, NULL, NULL, NULL, 0) ||
	    !PQpipelineSync(l->conn)) {
		snprintf(err, errlen, "warm-up: %s", PQerrorMessage(l->conn));
		return -1;
	}
	rc = drain_segment(l, "warm-up", err, errlen);
	if (!PQexitPipelineMode(l->conn)) {
		snprintf(err, errlen, "warm-up: %s", PQerrorMessage(l->conn));
		return -1;
	}
	/* After an error the explicit transaction is still open (aborted). */
	if (PQtransactionStatus(l->conn) != PQTRANS_IDLE) {
		PGresult *r = PQexec(l->conn, "ROLLBACK");
		PQclear(r);
	}
	return PQtransactionStatus(l->conn) == PQTRANS_IDLE ? rc : -2;
}

int
ledger_open(const char *url, int retry_max, struct ledger **out, char *err, size_t errlen)
{
	/* gssencmode: libpq's default "prefer" probes for Kerberos
	 * credentials on every connect (~5% of a worker's start); disable it
	 * unless the URL or PGGSSENCMODE asks. Keywords before dbname are
	 * overridden by the expanded URL. */
	const char *const kw[] = { "gssencmode", "fallback_application_name", "dbname", NULL };
	const char *val[] = { getenv("PGGSSENCMODE") ? NULL : "disable", "paymentd-worker", url,
		NULL };
	struct ledger *l = xcalloc(1, sizeof(*l));
	char werr[256];
	size_t i;
	int rc = -1, w;

	*out = NULL;
	l->retry_max = retry_max;
	l->sess_tmo_ms = DEFAULT_TMO_MS; /* set below with the prepares */
	l->conn = PQconnectdbParams(kw, val, 1);
	if (PQstatus(l->conn) != CONNECTION_OK) {
		snprintf(err, errlen, "connect: %s", PQerrorMessage(l->conn));
		goto out;
	}
	/* Session defaults (per-call deadlines override statement_timeout
	 * locally) and the prepared statements: one round trip. */
	if (!PQenterPipelineMode(l->conn) ||
	    !PQsendQueryParams(l->conn,
	        "SELECT set_config('statement_timeout', '30s', false), "
	        "set_config('idle_in_transaction_session_timeout', '60s', false), "
	        "set_config('TimeZone', 'UTC', false)",
	        0, NULL, NULL, NULL, NULL, 0)) {
		snprintf(err, errlen, "session setup: %s", PQerrorMessage(l->conn));
		goto out;
	}
	for (i = 0; i < ARRAY_LEN(stmts); i++) {
		if (!PQsendPrepare(l->conn, stmts[i].name, stmts[i].sql, stmts[i].nparams, NULL)) {
			snprintf(
			    err, errlen, "prepare %s: %s", stmts[i].name, PQerrorMessage(l->conn));
			goto out;
		}
	}
	if (!PQpipelineSync(l->conn)) {
		snprintf(err, errlen, "session setup: %s", PQerrorMessage(l->conn));
		goto out;
	}
	if (drain_segment(l, "session setup (are migrations applied?)", err, errlen) < 0)
		goto out;
	if (!PQexitPipelineMode(l->conn)) {
		snprintf(err, errlen, "session setup: %s", PQerrorMessage(l->conn));
		goto out;
	}
	{
		PGresult *r = PQexec(l->conn, "SELECT legacy_client_id()");

		if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1 ||
		    PQgetisnull(r, 0, 0)) {
			snprintf(err, errlen, "no legacy client (is migration 0004 applied?): %s",
			    PQresultErrorMessage(r));
			err[strcspn(err, "\n")] = '\0';
			PQclear(r);
			goto out;
		}
		l->legacy_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
		PQclear(r);
	}
	if ((w = warm_up(l, werr, sizeof(werr))) == -2) {
		snprintf(err, errlen, "%s (session left in a transaction)", werr);
		goto out;
	} else if (w < 0) {
		log_warn("database session warm-up failed; first payment will be slower",
		    LF_S("error", werr));
	}
	if (PQsetnonblocking(l->conn, 1) != 0) {
		snprintf(err, errlen, "nonblocking: %s", PQerrorMessage(l->conn));
		goto out;
	}
	*out = l;
	l = NULL;
	rc = 0;
out:
	if (l != NULL)
		ledger_close(l);
	return rc;
}

void
ledger_close(struct ledger *l)
{
	if (l == NULL)
		return;
	PQfinish(l->conn);
	free(l);
}

int
ledger_broken(const struct ledger *l)
{
	return l == NULL || l->broken || PQstatus(l->conn) != CONNECTION_OK;
}

int
ledger_socket(const struct ledger *l)
{
	return l ? PQsocket(l->conn) : -1;
}

/* Waits for the socket until `until` (monotonic ms); 0 ready, -1 timeout/error. */
static int
wait_sock(struct ledger *l, short events, int64_t until)
{
	for (;;) {
		struct pollfd p = { PQsocket(l->conn), events, 0 };
		int64_t left = until - util_now_ms();
		int n;

		if (left <= 0)
			return -1;
		n = poll(&p, 1, left > 60000 ? 60000 : (int)left);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -1;
	}
}

/* Next pipeline result, or NULL at a query boundary. *fail set when the
 * connection broke or the network deadline passed. */
static PGresult *
next_result(struct ledger *l, int64_t until, int *fail)
{
	while (PQisBusy(l->conn)) {
		if (wait_sock(l, POLLIN, until) < 0 || !PQconsumeInput(l->conn)) {
			*fail = 1;
			return NULL;
		}
	}
	return PQgetResult(l->conn);
}

static enum ledger_rc
classify(PGresult *r)
{
	switch (sqlstate_classify(PQresultErrorField(r, PG_DIAG_SQLSTATE))) {
	case SQLSTATE_RETRY: return LEDGER_BUSY;
	case SQLSTATE_TIMEOUT: return LEDGER_TIMEOUT;
	case SQLSTATE_INVALID: return LEDGER_INVALID;
	case SQLSTATE_CONNECTION: return LEDGER_UNAVAILABLE;
	case SQLSTATE_ROLLBACK:
	case SQLSTATE_OTHER: break;
	}
	return LEDGER_INTERNAL;
}

/*
 * The statement_timeout a call needs, or 0 if the one in force will do.
 * With r ms left it must not exceed r (the database must give up before
 * the client does, so nothing commits after a DEADLINE_EXCEEDED), and
 * should not be much shorter: anything in [0.9 r, r] is kept. A new value
 * is 0.95 r, so the next call with the same deadline fits it too.
 */
static int64_t
fit_timeout(const struct ledger *l, int64_t r)
{
	int64_t want;

	if (r < 0)
		return l->sess_tmo_ms == DEFAULT_TMO_MS ? 0 : DEFAULT_TMO_MS;
	if (l->sess_tmo_ms > 0 && l->sess_tmo_ms <= r && l->sess_tmo_ms >= r - r / 10)
		return 0;
	want = r - r / 20;
	return want > 0 ? want : 1;
}

/* Rolls back the explicit transaction a failed or abandoned call left
 * open, so the session is idle again. Blocking (PQexec), and only on that
 * path. The timeout in force is unknown afterwards. */
static void
rollback_open(struct ledger *l)
{
	PGresult *r;

	if (PQtransactionStatus(l->conn) == PQTRANS_IDLE)
		return;
	r = PQexec(l->conn, "ROLLBACK");
	PQclear(r);
	l->sess_tmo_ms = -1;
	l->tx_tmo_ms = 0;
	if (PQstatus(l->conn) != CONNECTION_OK)
		l->broken = 1;
}

/*
 * Runs calls[0..n-1] in one pipeline segment (one round trip) under the
 * deadline. The segment is one implicit transaction unless a call opens an
 * explicit one (BEGIN), which then stays open for the next segment; the
 * deadline is only (re)sent outside a transaction, so the one set where
 * the transaction began holds until it ends. LEDGER_OK when every call
 * succeeded; *out is then the result of calls[want] (want < 0: none),
 * owned by the caller. On any failure, or a deadline already past, an
 * explicit transaction left open is rolled back: nothing half-done stays.
 */
static enum ledger_rc
run_calls(struct ledger *l, const struct ledger_call *c, int ncalls, int want, int64_t deadline,
    PGresult **out, char *err, size_t errlen)
{
	enum ledger_rc rc = LEDGER_OK;
	PGresult *r, *mine = NULL;
	int64_t until, now = util_now_ms();
	char tmo[32];
	int fail = 0, timed = deadline >= 0, f, idx, i, sent;
	int64_t new_tmo = 0;
	const char *tv[1];
	ExecStatusType st;
	PGTransactionStatusType txs;

	*out = NULL;
	if (ledger_broken(l)) {
		snprintf(err, errlen, "database connection lost");
		return LEDGER_UNAVAILABLE;
	}
	if (timed && deadline - now <= 0) {
		rollback_open(l);
		snprintf(err, errlen, "deadline exceeded before the database call");
		return LEDGER_TIMEOUT;
	}
	until = timed ? deadline + NET_SLACK_MS : now + 30000 + NET_SLACK_MS;
	if (PQtransactionStatus(l->conn) == PQTRANS_IDLE)
		new_tmo = fit_timeout(l, timed ? deadline - now : -1);
	if (!PQenterPipelineMode(l->conn))
		goto broken;
	if (new_tmo > 0) {
		snprintf(tmo, sizeof(tmo), "%lld", (long long)new_tmo);
		tv[0] = tmo;
		if (!PQsendQueryPrepared(l->conn, "tmo", 1, tv, NULL, NULL, 0))
			goto broken;
	}
	for (i = 0; i < ncalls; i++) {
		/* sql: an unnamed statement (ledger_exec()), parsed on each call. */
		sent = c[i].sql ? PQsendQueryParams(l->conn, c[i].sql, c[i].n, NULL, c[i].vals,
		                      c[i].lens, c[i].fmts, 0)
		                : PQsendQueryPrepared(l->conn, c[i].stmt, c[i].n, c[i].vals,
		                      c[i].lens, c[i].fmts, 0);
		if (!sent)
			goto broken;
	}
	if (!PQpipelineSync(l->conn))
		goto broken;
	while ((f = PQflush(l->conn)) == 1)
		if (wait_sock(l, POLLOUT, until) < 0)
			goto broken;
	if (f < 0)
		goto broken;

	/* Results: [tmo, NULL,] one per call each followed by NULL, then
	 * PIPELINE_SYNC. idx counts the calls' results. */
	for (idx = new_tmo > 0 ? -1 : 0;;) {
		r = next_result(l, until, &fail);
		if (fail)
			goto broken;
		if (r == NULL)
			continue;
		st = PQresultStatus(r);
		if (st == PGRES_PIPELINE_SYNC) {
			PQclear(r);
			break;
		}
		if (st == PGRES_FATAL_ERROR) {
			if (rc == LEDGER_OK) {
				rc = classify(r);
				snprintf(err, errlen, "%s", PQresultErrorMessage(r));
				err[strcspn(err, "\n")] = '\0';
			}
		} else if (st == PGRES_PIPELINE_ABORTED) {
			if (rc == LEDGER_OK) { /* cannot happen without an error first */
				rc = LEDGER_INTERNAL;
				snprintf(err, errlen, "pipeline aborted");
			}
		} else if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
			if (rc == LEDGER_OK) {
				rc = LEDGER_INTERNAL;
				snprintf(err, errlen, "unexpected result %s", PQresStatus(st));
			}
		} else if (idx == want && mine == NULL) {
			mine = r;
			idx++;
			continue;
		}
		idx++;
		PQclear(r);
	}
	if (!PQexitPipelineMode(l->conn))
		goto broken;
	/* A failed call aborted its transaction, and with it the new setting;
	 * one made inside an explicit transaction lasts only if it commits
	 * (the segment that ends it with "commit"). Do not guess otherwise. */
	txs = PQtransactionStatus(l->conn);
	if (new_tmo > 0 && rc == LEDGER_OK && txs == PQTRANS_INTRANS) {
		l->sess_tmo_ms = -1;
		l->tx_tmo_ms = new_tmo;
	} else if (new_tmo > 0) {
		l->sess_tmo_ms = rc == LEDGER_OK && txs == PQTRANS_IDLE ? new_tmo : -1;
	} else if (l->tx_tmo_ms > 0 && txs == PQTRANS_IDLE) {
		if (rc == LEDGER_OK && ncalls > 0 && c[ncalls - 1].stmt &&
		    strcmp(c[ncalls - 1].stmt, "commit") == 0)
			l->sess_tmo_ms = l->tx_tmo_ms;
		l->tx_tmo_ms = 0;
	}
	if (rc != LEDGER_OK) {
		PQclear(mine);
		mine = NULL;
		if (PQstatus(l->conn) != CONNECTION_OK) {
			l->broken = 1;
			rc = LEDGER_UNAVAILABLE;
		} else {
			rollback_open(l);
		}
	}
	*out = mine;
	return rc;
broken:
	PQclear(mine);
	l->broken = 1;
	snprintf(err, errlen, "database connection lost: %s", PQerrorMessage(l->conn));
	err[strcspn(err, "\n")] = '\0';
	return LEDGER_UNAVAILABLE;
}

/* One statement, prepared (stmt) or not (sql), as its own transaction. */
static enum ledger_rc
run_sql(struct ledger *l, const char *stmt, const char *sql, int n, const char *const *vals,
    const int *lens, const int *fmts, int64_t deadline, PGresult **out, char *err, size_t errlen)
{
	const struct ledger_call c = { stmt, sql, n, vals, lens, fmts };

	return run_calls(l, &c, 1, 0, deadline, out, err, errlen);
}

/* One of the prepared statements above. */
static enum ledger_rc
run(struct ledger *l, const char *stmt, int n, const char *const *vals, const int *lens,
    const int *fmts, int64_t deadline, PGresult **out, char *err, size_t errlen)
{
	return run_sql(l, stmt, NULL, n, vals, lens, fmts, deadline, out, err, errlen);
}

enum ledger_rc
ledger_ping(struct ledger *l, int64_t deadline)
{
	PGresult *r = NULL;
	char err[256];
	enum ledger_rc rc = run(l, "ping", 0, NULL, NULL, NULL, deadline, &r, err, sizeof(err));

	PQclear(r);
	return rc;
}

static void
copy_col(char *dst, size_t len, PGresult *r, int col)
{
	snprintf(dst, len, "%s", PQgetisnull(r, 0, col) ? "" : PQgetvalue(r, 0, col));
}

/* Before serialization retry number attempt: 2 ms doubling to 64 ms,
 * jittered (common/backoff.h) so that the transactions that collided do
 * not collide again. */
static void
backoff(int attempt)
{
	uint32_t j = 0;
	struct timespec ts;
	long us;

	util_random(&j, sizeof(j));
	us = (long)backoff_delay(attempt, 2000, 64000, j);
	ts.tv_sec = 0;
	ts.tv_nsec = us * 1000;
	nanosleep(&ts, NULL);
}

static int array_add(char *buf, size_t len, size_t *pos, const char *v);

enum ledger_rc
ledger_authorize(struct ledger *l, const struct ledger_auth_req *q, int64_t deadline,
    struct ledger_auth_res *res, char *err, size_t errlen)
{
	char amount[32], ttl[16], client[24], hreq[24], hold[24];
	const char *v[AUTH_NPARAMS];
	int lens[AUTH_NPARAMS] = { 0 }, fmts[AUTH_NPARAMS] = { 0 };
	PGresult *r = NULL;
	enum ledger_rc rc;
	int attempt;
	/* Metadata as two text[] literals: every element quoted, so at most
	 * 2 * len + 3 bytes each. */
	size_t klen = 8, vlen = 8, kp = 1, vp = 1;
	char *keys = NULL, *vals = NULL;
	int i;

	memset(res, 0, sizeof(*res));
	for (i = 0; i < q->n_metadata; i++) {
		klen += 2 * strlen(q->meta_keys[i]) + 3;
		vlen += 2 * strlen(q->meta_values[i]) + 3;
	}
	keys = xmalloc(klen);
	vals = xmalloc(vlen);
	keys[0] = vals[0] = '{';
	for (i = 0; i < q->n_metadata; i++) {
		if (array_add(keys, klen - 1, &kp, q->meta_keys[i]) < 0 ||
		    array_add(vals, vlen - 1, &vp, q->meta_values[i]) < 0)
			abort(); /* sized above */
	}
	keys[kp++] = '}';
	keys[kp] = '\0';
	vals[vp++] = '}';
	vals[vp] = '\0';
	snprintf(hreq, sizeof(hreq), "%lld", (long long)q->hold_ttl_requested);
	snprintf(hold, sizeof(hold), "%lld", (long long)q->hold_ttl_s);
	v[11] = q->capture_method ? q->capture_method : "AUTOMATIC";
	v[12] = hreq;
	v[13] = hold;
	v[14] = keys;
	v[15] = vals;
	snprintf(amount, sizeof(amount), "%lld", (long long)q->amount_cents);
	snprintf(ttl, sizeof(ttl), "%d", q->key_ttl_s);
	v[0] = q->key;
	v[1] = q->payer;
	v[2] = q->payee;
	v[3] = amount;
	v[4] = q->currency;
	v[5] = q->description ? q->description : "";
	v[6] = (const char *)q->fingerprint;
	lens[6] = 32;
	fmts[6] = 1;
	v[7] = q->payment_id;
	v[8] = ttl;
	v[9] = q->correlation_id;
	snprintf(client, sizeof(client), "%lld", (long long)q->client_id);
	v[10] = client;

	for (attempt = 0;; attempt++) {
		rc = run(l, "auth", AUTH_NPARAMS, v, lens, fmts, deadline, &r, err, errlen);
		res->attempts = attempt + 1;
		if (rc != LEDGER_BUSY || attempt >= l->retry_max)
			break;
		backoff(attempt);
	}
	free(keys);
	free(vals);
	if (rc != LEDGER_OK)
		return rc;
	if (PQntuples(r) != 1 || PQnfields(r) != 9) {
		snprintf(err, errlen, "authorize_payment returned %d rows", PQntuples(r));
		PQclear(r);
		return LEDGER_INTERNAL;
	}
	copy_col(res->payment_id, sizeof(res->payment_id), r, 0);
	copy_col(res->status, sizeof(res->status), r, 1);
	copy_col(res->error_code, sizeof(res->error_code), r, 2);
	copy_col(res->error_message, sizeof(res->error_message), r, 3);
	copy_col(res->processed_at, sizeof(res->processed_at), r, 4);
	res->replayed = !PQgetisnull(r, 0, 5) && PQgetvalue(r, 0, 5)[0] == 't';
	copy_col(res->conflict, sizeof(res->conflict), r, 6);
	copy_col(res->denied_code, sizeof(res->denied_code), r, 7);
	copy_col(res->denied, sizeof(res->denied), r, 8);
	PQclear(r);
	return LEDGER_OK;
}

enum ledger_rc
ledger_get_payment(struct ledger *l, int64_t client_id, const char *id, int64_t deadline,
    struct ledger_payment *p, char *err, size_t errlen)
{
	PGresult *r = NULL;
	enum ledger_rc rc;
	char cid[24];
	const char *v[2] = { id, cid };

	memset(p, 0, sizeof(*p));
	snprintf(cid, sizeof(cid), "%lld", (long long)client_id);
	rc = run(l, "getpay", 2, v, NULL, NULL, deadline, &r, err, errlen);
	if (rc != LEDGER_OK)
		return rc;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return LEDGER_NOT_FOUND;
	}
	if (PQgetvalue(r, 0, LEDGER_PAYMENT_COLS)[0] != 't') {
		snprintf(
		    err, errlen, "can_read on the payer or the payee account of payment %s", id);
		PQclear(r);
		return LEDGER_DENIED;
	}
	ledger_payment_from_row(r, 0, 0, p);
	PQclear(r);
	return LEDGER_OK;
}

static void
copy_cell(char *dst, size_t len, const PGresult *r, int row, int col)
{
	snprintf(dst, len, "%s", PQgetisnull(r, row, col) ? "" : PQgetvalue(r, row, col));
}

void
ledger_payment_from_row(const struct pg_result *r, int row, int c, struct ledger_payment *p)
{
	memset(p, 0, sizeof(*p));
	copy_cell(p->payment_id, sizeof(p->payment_id), r, row, c + 0);
	copy_cell(p->payer, sizeof(p->payer), r, row, c + 1);
	copy_cell(p->payee, sizeof(p->payee), r, row, c + 2);
	p->amount_cents = strtoll(PQgetvalue(r, row, c + 3), NULL, 10);
	copy_cell(p->currency, sizeof(p->currency), r, row, c + 4);
	copy_cell(p->status, sizeof(p->status), r, row, c + 5);
	copy_cell(p->description, sizeof(p->description), r, row, c + 6);
	copy_cell(p->created_at, sizeof(p->created_at), r, row, c + 7);
	copy_cell(p->updated_at, sizeof(p->updated_at), r, row, c + 8);
	copy_cell(p->capture_method, sizeof(p->capture_method), r, row, c + 9);
	p->captured_amount_cents = strtoll(PQgetvalue(r, row, c + 10), NULL, 10);
	p->refunded_amount_cents = strtoll(PQgetvalue(r, row, c + 11), NULL, 10);
	copy_cell(p->hold_expires_at, sizeof(p->hold_expires_at), r, row, c + 12);
	if (!PQgetisnull(r, row, c + 13) && PQgetlength(r, row, c + 13) > 0)
		p->metadata = xstrdup(PQgetvalue(r, row, c + 13));
}

void
ledger_payment_clear(struct ledger_payment *p)
{
	free(p->metadata);
	p->metadata = NULL;
}

enum ledger_rc
ledger_get_balance(struct ledger *l, int64_t client_id, const char *id, int64_t deadline,
    struct ledger_balance *b, char *err, size_t errlen)
{
	PGresult *r = NULL;
	enum ledger_rc rc;
	char cid[24];
	const char *v[2] = { id, cid };

	memset(b, 0, sizeof(*b));
	snprintf(cid, sizeof(cid), "%lld", (long long)client_id);
	rc = run(l, "getbal", 2, v, NULL, NULL, deadline, &r, err, errlen);
	if (rc != LEDGER_OK)
		return rc;
	if (PQntuples(r) != 1 || PQnfields(r) != 5) {
		snprintf(err, errlen, "balance query returned %d rows", PQntuples(r));
		PQclear(r);
		return LEDGER_INTERNAL;
	}
	if (PQgetvalue(r, 0, 0)[0] != 't') {
		snprintf(err, errlen, "can_read on account %s", id);
		PQclear(r);
		return LEDGER_DENIED;
	}
	if (PQgetisnull(r, 0, 1)) {
		PQclear(r);
		return LEDGER_NOT_FOUND;
	}
	copy_col(b->account_id, sizeof(b->account_id), r, 1);
	b->available_cents = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
	b->pending_cents = strtoll(PQgetvalue(r, 0, 3), NULL, 10);
	copy_col(b->currency, sizeof(b->currency), r, 4);
	PQclear(r);
	return LEDGER_OK;
}

int64_t
ledger_legacy_client(const struct ledger *l)
{
	return l ? l->legacy_id : -1;
}

/* Appends v to a Postgres array literal being built in buf: every element
 * double-quoted, with '"' and '\\' escaped. -1 when it does not fit. */
static int
array_add(char *buf, size_t len, size_t *pos, const char *v)
{
	size_t p = *pos;

	if (p + 3 >= len)
		return -1;
	if (p > 1)
		buf[p++] = ',';
	buf[p++] = '"';
	for (; *v; v++) {
		if (p + 3 >= len)
			return -1;
		if (*v == '"' || *v == '\\')
			buf[p++] = '\\';
		buf[p++] = *v;
	}
	buf[p++] = '"';
	buf[p] = '\0';
	*pos = p;
	return 0;
}

enum ledger_rc
ledger_client_lookup(struct ledger *l, const char *const *kind, const char *const *value, int n,
    int64_t deadline, struct ledger_client *c, char *err, size_t errlen)
{
	char kinds[256], values[8192];
	size_t kp = 1, vp = 1;
	const char *v[2] = { kinds, values };
	PGresult *r = NULL;
	enum ledger_rc rc;
	int i;

	memset(c, 0, sizeof(*c));
	if (n <= 0 || n > LEDGER_CRED_MAX) {
		snprintf(err, errlen, "no credential to look up");
		return LEDGER_NOT_FOUND;
	}
	kinds[0] = values[0] = '{';
	for (i = 0; i < n; i++) {
		if (array_add(kinds, sizeof(kinds) - 1, &kp, kind[i]) < 0 ||
		    array_add(values, sizeof(values) - 1, &vp, value[i]) < 0) {
			snprintf(err, errlen, "credentials too long");
			return LEDGER_NOT_FOUND;
		}
	}
	kinds[kp++] = '}';
	kinds[kp] = '\0';
	values[vp++] = '}';
	values[vp] = '\0';
	rc = run(l, "client", 2, v, NULL, NULL, deadline, &r, err, errlen);
	if (rc != LEDGER_OK)
		return rc;
	if (PQntuples(r) == 0) {
		PQclear(r);
		snprintf(err, errlen, "unknown or revoked credential");
		return LEDGER_NOT_FOUND;
	}
	if (PQntuples(r) > 1) {
		PQclear(r);
		snprintf(err, errlen, "the certificate names more than one client");
		return LEDGER_DENIED;
	}
	c->client_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	copy_col(c->name, sizeof(c->name), r, 1);
	c->is_admin = PQgetvalue(r, 0, 2)[0] == 't';
	copy_col(c->limits, sizeof(c->limits), r, 3);
	PQclear(r);
	return LEDGER_OK;
}

enum ledger_rc
ledger_exec(struct ledger *l, const char *sql, int n, const char *const *vals, int64_t deadline,
    struct pg_result **out, char *err, size_t errlen)
{
	enum ledger_rc rc;
	int attempt;

	for (attempt = 0;; attempt++) {
		rc = run_sql(l, "", sql, n, vals, NULL, NULL, deadline, out, err, errlen);
		if (rc != LEDGER_BUSY || attempt >= l->retry_max)
			return rc;
		backoff(attempt);
	}
}

enum ledger_rc
ledger_run(struct ledger *l, const struct ledger_call *calls, int ncalls, int want,
    int64_t deadline, struct pg_result **out, char *err, size_t errlen)
{
	return run_calls(l, calls, ncalls, want, deadline, out, err, errlen);
}

int
ledger_retry(const struct ledger *l, int attempt)
{
	if (attempt >= l->retry_max)
		return 0;
	backoff(attempt);
	return 1;
}
