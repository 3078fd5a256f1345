/* SPDX-License-Identifier: MIT */
/*
 * ledger_acct.c — accounts, statements and as-of balances in Postgres
 * (see ledger_acct.h). The writes are the functions of
 * migrations/0008_accounts.sql; the reads are single statements. All go
 * through ledger_exec(), unnamed and parameterized: these RPCs are rare
 * next to payments, so they do not take slots in ledger.c's prepared set,
 * and an unnamed statement is planned with its actual parameters (the
 * optional bounds fold away).
 */
#include "ledger_acct.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>

static void
copy_col(char *dst, size_t len, PGresult *r, int row, int col)
{
	snprintf(dst, len, "%s", PQgetisnull(r, row, col) ? "" : PQgetvalue(r, row, col));
}

static int64_t
i64_col(PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

/* The account columns start at col (id, currency, status, kind, overdraft,
 * available, pending, created_at), followed by one metadata key/value pair
 * per row (NULL when there is none). */
static void
read_account(PGresult *r, int col, struct ledger_account *a)
{
	int i, n = PQntuples(r);

	memset(a, 0, sizeof(*a));
	copy_col(a->account_id, sizeof(a->account_id), r, 0, col);
	copy_col(a->currency, sizeof(a->currency), r, 0, col + 1);
	copy_col(a->status, sizeof(a->status), r, 0, col + 2);
	copy_col(a->kind, sizeof(a->kind), r, 0, col + 3);
	a->overdraft_limit_cents = i64_col(r, 0, col + 4);
	a->available_cents = i64_col(r, 0, col + 5);
	a->pending_cents = i64_col(r, 0, col + 6);
	copy_col(a->created_at, sizeof(a->created_at), r, 0, col + 7);
	for (i = 0; i < n && a->nmeta < ACCT_META_MAX; i++) {
		if (PQgetisnull(r, i, col + 8))
			continue;
		copy_col(a->meta_key[a->nmeta], sizeof(a->meta_key[0]), r, i, col + 8);
		copy_col(a->meta_value[a->nmeta], sizeof(a->meta_value[0]), r, i, col + 9);
		a->nmeta++;
	}
}

static int
hex_val(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

const uint8_t *
ledger_page_key(struct ledger *l)
{
	/* One ledger (connection) per worker process; a worker never
	 * reconnects, but the owner check keeps a new connection honest. */
	static const struct ledger *owner;
	static uint8_t key[32];
	PGresult *r = NULL;
	char err[256];
	const char *hex;
	int i;

	if (l == NULL)
		return NULL;
	if (owner == l)
		return key;
	if (ledger_exec(l, "SELECT encode(secret, 'hex') FROM page_token_keys WHERE key_id = 1", 0,
	        NULL, util_now_ms() + 2000, &r, err, sizeof(err)) != LEDGER_OK)
		return NULL;
	if (PQntuples(r) != 1 || strlen(hex = PQgetvalue(r, 0, 0)) != 64) {
		PQclear(r);
		return NULL;
	}
	for (i = 0; i < 32; i++) {
		int hi = hex_val(hex[2 * (size_t)i]), lo = hex_val(hex[2 * (size_t)i + 1]);

		if (hi < 0 || lo < 0) {
			PQclear(r);
			return NULL;
		}
		key[i] = (uint8_t)(hi << 4 | lo);
	}
	PQclear(r);
	owner = l;
	return key;
}

/* Appends s to buf as a JSON string. -1 when it does not fit. */
static int
json_str(char *buf, size_t len, size_t *pos, const char *s)
{
	size_t p = *pos;

	if (p + 2 >= len)
		return -1;
	buf[p++] = '"';
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (p + 7 >= len)
			return -1;
		if (c == '"' || c == '\\') {
			buf[p++] = '\\';
			buf[p++] = (char)c;
		} else if (c < 0x20) {
			p += (size_t)snprintf(buf + p, len - p, "\\u%04x", c);
		} else {
			buf[p++] = (char)c;
		}
	}
	buf[p++] = '"';
	buf[p] = '\0';
	*pos = p;
	return 0;
}

/* The metadata as a JSON object (jsonb keeps the last of duplicate keys,
 * as a protobuf map does). */
static char *
meta_json(size_t n, const char *const *k, const char *const *v)
{
	/* Every byte of a key or value may take 6 ("\u00XX"). */
	size_t len = 3 + n * 2 * ((size_t)6 * (ACCT_META_VALUE_MAX + 2)) + 8, p = 0, i;
	char *buf = xmalloc(len);

	buf[p++] = '{';
	for (i = 0; i < n; i++) {
		if (i)
			buf[p++] = ',';
		if (json_str(buf, len, &p, k[i]) < 0)
			abort(); /* sized for validated metadata: a bug */
		buf[p++] = ':';
		if (json_str(buf, len, &p, v[i] ? v[i] : "") < 0)
			abort();
	}
	buf[p++] = '}';
	buf[p] = '\0';
	return buf;
}

/* Rows of create_account / update_account_status joined with the
 * account's metadata, one row per key. */
#define WRITE_COLS \
	"r.o_denied_code, r.o_denied, r.o_error_code, r.o_error, r.o_changed, r.o_account_id, " \
	"r.o_currency, r.o_status, r.o_kind, r.o_overdraft, r.o_available, r.o_pending, " \
	"r.o_created_at, m.key, m.value"
#define WRITE_META "LEFT JOIN LATERAL jsonb_each_text(r.o_metadata) m ON true ORDER BY m.key"

static enum ledger_rc
read_write_res(PGresult *r, struct ledger_acct_res *res, char *err, size_t errlen)
{
	if (PQntuples(r) < 1 || PQnfields(r) != 15) {
		snprintf(err, errlen, "account function returned %d rows", PQntuples(r));
		return LEDGER_INTERNAL;
	}
	copy_col(res->denied_code, sizeof(res->denied_code), r, 0, 0);
	copy_col(res->denied, sizeof(res->denied), r, 0, 1);
	copy_col(res->error_code, sizeof(res->error_code), r, 0, 2);
	copy_col(res->error, sizeof(res->error), r, 0, 3);
	res->changed = !PQgetisnull(r, 0, 4) && PQgetvalue(r, 0, 4)[0] == 't';
	read_account(r, 5, &res->account);
	return LEDGER_OK;
}

enum ledger_rc
ledger_acct_create(struct ledger *l, const struct ledger_acct_create_req *q, int64_t deadline,
    struct ledger_acct_res *res, char *err, size_t errlen)
{
	char client[24], overdraft[24], *meta = meta_json(q->nmeta, q->meta_key, q->meta_value);
	const char *v[6] = { client, q->account_id, q->currency, overdraft, meta,
		q->correlation_id };
	PGresult *r = NULL;
	enum ledger_rc rc;

	memset(res, 0, sizeof(*res));
	snprintf(client, sizeof(client), "%lld", (long long)q->client_id);
	snprintf(overdraft, sizeof(overdraft), "%lld", (long long)q->overdraft_limit_cents);
	rc = ledger_exec(l,
	    "SELECT " WRITE_COLS " FROM create_account($1::bigint, $2, $3, $4::bigint, "
	    "$5::jsonb, $6) r " WRITE_META,
	    6, v, deadline, &r, err, errlen);
	free(meta);
	if (rc == LEDGER_OK)
		rc = read_write_res(r, res, err, errlen);
	PQclear(r);
	return rc;
}

enum ledger_rc
ledger_acct_update_status(struct ledger *l, const struct ledger_acct_status_req *q,
    int64_t deadline, struct ledger_acct_res *res, char *err, size_t errlen)
{
	char client[24];
	const char *v[5] = { client, q->account_id, q->status, q->reason ? q->reason : "",
		q->correlation_id };
	PGresult *r = NULL;
	enum ledger_rc rc;

	memset(res, 0, sizeof(*res));
	snprintf(client, sizeof(client), "%lld", (long long)q->client_id);
	rc = ledger_exec(l,
	    "SELECT " WRITE_COLS
	    " FROM update_account_status($1::bigint, $2, $3, $4, $5) r " WRITE_META,
	    5, v, deadline, &r, err, errlen);
	if (rc == LEDGER_OK)
		rc = read_write_res(r, res, err, errlen);
	PQclear(r);
	return rc;
}

enum ledger_rc
ledger_acct_get(struct ledger *l, int64_t client_id, const char *id, int64_t deadline,
    struct ledger_account *a, char *err, size_t errlen)
{
	char client[24];
	const char *v[2] = { id, client };
	PGresult *r = NULL;
	enum ledger_rc rc;

	memset(a, 0, sizeof(*a));
	snprintf(client, sizeof(client), "%lld", (long long)client_id);
	/* The permission first: without can_read nothing else is told. */
	rc = ledger_exec(l,
	    "SELECT client_may($2::bigint, $1, 'read'), v.o_account_id, v.o_currency, "
	    "v.o_status, v.o_kind, v.o_overdraft, v.o_available, v.o_pending, v.o_created_at, "
	    "m.key, m.value FROM account_view($1) v "
	    "LEFT JOIN LATERAL jsonb_each_text(v.o_metadata) m ON true ORDER BY m.key",
	    2, v, deadline, &r, err, errlen);
	if (rc != LEDGER_OK)
		return rc;
	if (PQntuples(r) < 1 || PQnfields(r) != 11) {
		snprintf(err, errlen, "account query returned %d rows", PQntuples(r));
		rc = LEDGER_INTERNAL;
	} else if (PQgetvalue(r, 0, 0)[0] != 't') {
		snprintf(err, errlen, "can_read on account %s", id);
		rc = LEDGER_DENIED;
	} else if (PQgetisnull(r, 0, 1)) {
		rc = LEDGER_NOT_FOUND;
	} else {
		read_account(r, 1, a);
	}
	PQclear(r);
	return rc;
}

enum ledger_rc
ledger_acct_entries(struct ledger *l, const struct ledger_entries_req *q, int64_t deadline,
    struct ledger_entry *out, int *n, int *more, char *err, size_t errlen)
{
	char client[24], start[ACCT_TIME_LEN + 1], end[ACCT_TIME_LEN + 1];
	char after[ACCT_TIME_LEN + 1], limit[16];
	const char *v[7];
	PGresult *r = NULL;
	enum ledger_rc rc;
	int i, rows;

	*n = 0;
	*more = 0;
	snprintf(client, sizeof(client), "%lld", (long long)q->client_id);
	snprintf(limit, sizeof(limit), "%d", q->limit + 1); /* one more: is there a next page? */
	if (q->start_us)
		acct_format_time(*q->start_us, start);
	if (q->end_us)
		acct_format_time(*q->end_us, end);
	if (q->after)
		acct_format_time(q->after->ts_us, after);
	v[0] = q->account_id;
	v[1] = client;
	v[2] = q->start_us ? start : NULL;
	v[3] = q->end_us ? end : NULL;
	v[4] = q->after ? after : NULL;
	v[5] = q->after ? q->after->id : NULL;
	v[6] = limit;
	/* Keyset on (created_at, entry_id) descending: the row comparison
	 * is an index condition of ledger_entries_account_time (0008), so
	 * a deep page costs what the first one does. client_may() has no
	 * column arguments: a one-time filter, evaluated before the scan. */
	rc = ledger_exec(l,
	    "SELECT client_may($2::bigint, $1, 'read'), "
	    "EXISTS (SELECT 1 FROM accounts WHERE account_id = $1), "
	    "e.entry_id, e.payment_id, e.direction, e.amount_cents, e.currency, "
	    "e.balance_after_cents, rfc3339(e.created_at), e.kind, e.refund_id, "
	    "(extract(epoch FROM e.created_at) * 1000000)::bigint "
	    "FROM (VALUES (1)) one LEFT JOIN LATERAL ("
	    " SELECT * FROM ledger_entries e WHERE e.account_id = $1"
	    " AND client_may($2::bigint, $1, 'read')"
	    " AND ($3::timestamptz IS NULL OR e.created_at >= $3::timestamptz)"
	    " AND ($4::timestamptz IS NULL OR e.created_at < $4::timestamptz)"
	    " AND ($5::timestamptz IS NULL"
	    "      OR (e.created_at, e.entry_id) < ($5::timestamptz, $6::bigint))"
	    " ORDER BY e.created_at DESC, e.entry_id DESC LIMIT $7::integer) e ON true",
	    7, v, deadline, &r, err, errlen);
	if (rc != LEDGER_OK)
		return rc;
	rows = PQntuples(r);
	if (rows < 1 || PQnfields(r) != 12) {
		snprintf(err, errlen, "entries query returned %d rows", rows);
		rc = LEDGER_INTERNAL;
		goto out;
	}
	if (PQgetvalue(r, 0, 0)[0] != 't') {
		snprintf(err, errlen, "can_read on account %s", q->account_id);
		rc = LEDGER_DENIED;
		goto out;
	}
	if (PQgetvalue(r, 0, 1)[0] != 't') {
		rc = LEDGER_NOT_FOUND;
		goto out;
	}
	for (i = 0; i < rows; i++) {
		struct ledger_entry *e;

		if (PQgetisnull(r, i, 2))
			continue; /* no entries: the one row of the outer join */
		if (*n >= q->limit) {
			*more = 1;
			break;
		}
		e = &out[(*n)++];
		memset(e, 0, sizeof(*e));
		e->entry_id = i64_col(r, i, 2);
		copy_col(e->payment_id, sizeof(e->payment_id), r, i, 3);
		copy_col(e->direction, sizeof(e->direction), r, i, 4);
		e->amount_cents = i64_col(r, i, 5);
		copy_col(e->currency, sizeof(e->currency), r, i, 6);
		e->balance_after_cents = i64_col(r, i, 7);
		copy_col(e->created_at, sizeof(e->created_at), r, i, 8);
		copy_col(e->kind, sizeof(e->kind), r, i, 9);
		copy_col(e->refund_id, sizeof(e->refund_id), r, i, 10);
		e->pos.ts_us = i64_col(r, i, 11);
		snprintf(e->pos.id, sizeof(e->pos.id), "%lld", (long long)e->entry_id);
	}
out:
	PQclear(r);
	return rc;
}

enum ledger_rc
ledger_acct_balance_at(struct ledger *l, int64_t client_id, const char *id, int64_t as_of_us,
    int64_t deadline, struct ledger_balance *b, char *err, size_t errlen)
{
	char client[24], at[ACCT_TIME_LEN + 1];
	const char *v[3] = { id, client, at };
	PGresult *r = NULL;
	enum ledger_rc rc;
	int64_t posted, pending;

	memset(b, 0, sizeof(*b));
	snprintf(client, sizeof(client), "%lld", (long long)client_id);
	acct_format_time(as_of_us, at);
	/* One snapshot for both sums. A MANUAL payment that was not
	 * declined was a hold from created_at until hold_closed_at. */
	rc = ledger_exec(l,
	    "SELECT client_may($2::bigint, $1, 'read'), a.account_id, a.currency, "
	    "coalesce((SELECT e.balance_after_cents FROM ledger_entries e "
	    "  WHERE e.account_id = $1 AND e.created_at <= x.t "
	    "  ORDER BY e.created_at DESC, e.entry_id DESC LIMIT 1), 0), "
	    "coalesce((SELECT sum(p.amount_cents) FROM payments p "
	    "  WHERE p.payer_account_id = $1 AND p.capture_method = 'MANUAL' "
	    "  AND p.status <> 'DECLINED' AND p.created_at <= x.t "
	    "  AND (p.hold_closed_at IS NULL OR p.hold_closed_at > x.t)), 0)::bigint "
	    "FROM (SELECT least($3::timestamptz, now()) AS t) x "
	    "LEFT JOIN accounts a ON a.account_id = $1",
	    3, v, deadline, &r, err, errlen);
	if (rc != LEDGER_OK)
		return rc;
	if (PQntuples(r) != 1 || PQnfields(r) != 5) {
		snprintf(err, errlen, "balance query returned %d rows", PQntuples(r));
		rc = LEDGER_INTERNAL;
	} else if (PQgetvalue(r, 0, 0)[0] != 't') {
		snprintf(err, errlen, "can_read on account %s", id);
		rc = LEDGER_DENIED;
	} else if (PQgetisnull(r, 0, 1)) {
		rc = LEDGER_NOT_FOUND;
	} else {
		copy_col(b->account_id, sizeof(b->account_id), r, 0, 1);
		copy_col(b->currency, sizeof(b->currency), r, 0, 2);
		posted = i64_col(r, 0, 3);
		pending = i64_col(r, 0, 4);
		b->pending_cents = pending;
		b->available_cents = posted - pending;
	}
	PQclear(r);
	return rc;
}
