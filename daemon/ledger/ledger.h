/* SPDX-License-Identifier: MIT */
/*
 * ledger.h — the worker's view of the PostgreSQL ledger: one libpq
 * connection with prepared statements, used by one thread.
 *
 * Contract: every call takes an absolute deadline (util_now_ms() scale, or
 * -1 for none). The server enforces it with statement_timeout, between
 * 90% and 100% of the time left, sent in the same pipeline as the statement
 * when the value in force does not fit (one round trip, and no PQcancel,
 * which would need a new socket the sandbox forbids). A call
 * returns one of enum ledger_rc; LEDGER_UNAVAILABLE means the connection
 * is gone and cannot be reused (ledger_broken() is then true): the worker
 * must drain and exit so a fresh worker reconnects.
 * All statements are prepared and parameterized.
 */
#ifndef PAYMENTD_LEDGER_H
#define PAYMENTD_LEDGER_H

#include <stddef.h>
#include <stdint.h>

enum ledger_rc {
	LEDGER_OK = 0,
	LEDGER_NOT_FOUND,   /* no such payment / account */
	LEDGER_INVALID,     /* the database rejected a value (SQLSTATE 22xxx) */
	LEDGER_TIMEOUT,     /* deadline reached; the transaction rolled back */
	LEDGER_UNAVAILABLE, /* connection lost or database shutting down */
	LEDGER_BUSY,        /* retries on serialization failure exhausted */
	LEDGER_INTERNAL,    /* anything else: a bug or a broken invariant */
	LEDGER_DENIED,      /* the client may not (err names the permission) */
};

struct ledger;

struct ledger_auth_req {
	int64_t client_id; /* the acting client (clients.client_id) */
	const char *key, *payer, *payee, *currency, *description, *correlation_id;
	int64_t amount_cents;
	uint8_t fingerprint[32];
	const char *payment_id; /* fresh ULID used if this is a new payment */
	int key_ttl_s;
	const char *capture_method; /* "AUTOMATIC" (NULL too) or "MANUAL" */
	/* MANUAL: the request's hold_ttl_seconds (0 = default), and the
	 * hold's TTL in force (the default resolved). */
	int64_t hold_ttl_requested, hold_ttl_s;
	/* Metadata, sorted by key (bytewise), keys unique. */
	int n_metadata;
	const char *const *meta_keys, *const *meta_values;
};

struct ledger_auth_res {
	char payment_id[64];
	char status[16];     /* AUTHORIZED | DECLINED */
	char error_code[32]; /* empty when authorized */
	char error_message[512];
	char processed_at[40];
	int replayed;       /* same key, same parameters: a duplicate */
	char conflict[256]; /* non-empty: same key, other parameters */
	/* non-empty: refused before anything was written. denied_code is
	 * revoked, can_debit or funding_account; denied names the missing
	 * permission. */
	char denied_code[24];
	char denied[256];
	int attempts; /* executions incl. serialization retries */
};

/* A payment as the RPCs return it (SQL payment_out(), 0007). */
struct ledger_payment {
	char payment_id[64], payer[80], payee[80], currency[8], status[16];
	char description[1100], created_at[40], updated_at[40];
	int64_t amount_cents;
	char capture_method[12]; /* AUTOMATIC | MANUAL */
	int64_t captured_amount_cents, refunded_amount_cents;
	char hold_expires_at[40]; /* "" unless an open hold */
	/* metadata_text() encoding ("<len>:<key><len>:<value>"..., see
	 * pay_metadata_decode()), malloc'd or NULL: ledger_payment_clear(). */
	char *metadata;
};
#define LEDGER_PAYMENT_COLS 14
struct pg_result;
/* Fills p from the LEDGER_PAYMENT_COLS columns of row starting at col. */
void ledger_payment_from_row(const struct pg_result *r, int row, int col, struct ledger_payment *p);
void ledger_payment_clear(struct ledger_payment *p);

struct ledger_balance {
	char account_id[80], currency[8];
	int64_t available_cents, pending_cents;
};

int ledger_open(const char *url, int retry_max, struct ledger **out, char *err, size_t errlen);
void ledger_close(struct ledger *l);
int ledger_broken(const struct ledger *l);
int ledger_socket(const struct ledger *l);
enum ledger_rc ledger_ping(struct ledger *l, int64_t deadline_ms);
enum ledger_rc ledger_authorize(struct ledger *l, const struct ledger_auth_req *req,
    int64_t deadline_ms, struct ledger_auth_res *res, char *err, size_t errlen);
/* The read RPCs check can_read for client_id in the same statement:
 * LEDGER_DENIED (err says which permission) when it lacks it. GetPayment
 * needs it on the payer or the payee. */
enum ledger_rc ledger_get_payment(struct ledger *l, int64_t client_id, const char *id,
    int64_t deadline_ms, struct ledger_payment *p, char *err, size_t errlen);
enum ledger_rc ledger_get_balance(struct ledger *l, int64_t client_id, const char *id,
    int64_t deadline_ms, struct ledger_balance *b, char *err, size_t errlen);

/* A client resolved from its credentials. */
#define LEDGER_CRED_MAX 8
struct ledger_client {
	int64_t client_id;
	char name[64];
	int is_admin;
	char limits[512]; /* "Method=N,Method=N" from client_limits, or "" */
};
/*
 * Finds the ACTIVE client that owns one of the n live credentials
 * (kind[i], value[i]) — a certificate offers several (URI and DNS SANs,
 * its fingerprint). LEDGER_NOT_FOUND when none does; LEDGER_DENIED (err
 * says so) when they belong to more than one client.
 */
enum ledger_rc
ledger_client_lookup(struct ledger *l, const char *const *kind, const char *const *value, int n,
    int64_t deadline_ms, struct ledger_client *c, char *err, size_t errlen);
/*
 * For the ledger's other files (ledger_acct.c): runs one parameterized
 * statement (text parameters and results) as its own implicit
 * transaction under the deadline, retrying serialization failures and
 * deadlocks like ledger_authorize(). On LEDGER_OK *out is a PGresult with
 * the rows, which the caller PQclear()s; otherwise *out is NULL and err
 * holds the database's text (for logs only, never for a client).
 */
enum ledger_rc ledger_exec(struct ledger *l, const char *sql, int n, const char *const *vals,
    int64_t deadline_ms, struct pg_result **out, char *err, size_t errlen);
/*
 * For the ledger's other files (ledger_life.c): a sequence of statements
 * in one pipeline segment, one round trip. A call names a prepared
 * statement (stmt) or carries its SQL (sql, unnamed). LEDGER_OK when all
 * succeeded, *out = the result of calls[want] (want < 0: none). A "begin"
 * call opens a transaction that stays open for the next ledger_run() (end
 * it with "commit" or "rollback"); on any failure, a deadline passed
 * included, an open transaction is rolled back here. No retries:
 * ledger_retry() says whether attempt number attempt may be retried, after
 * its backoff.
 */
struct ledger_call {
	const char *stmt, *sql;
	int n;
	const char *const *vals;
	const int *lens, *fmts;
};
enum ledger_rc ledger_run(struct ledger *l, const struct ledger_call *calls, int ncalls, int want,
    int64_t deadline_ms, struct pg_result **out, char *err, size_t errlen);
int ledger_retry(const struct ledger *l, int attempt);
/* The id of the client `legacy` (AUTH_MODE=none), or -1. */
int64_t ledger_legacy_client(const struct ledger *l);
const char *ledger_rc_name(enum ledger_rc rc);

#endif
