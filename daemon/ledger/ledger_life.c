/* SPDX-License-Identifier: MIT */
/*
 * ledger_life.c — the lifecycle operations and ListPayments in the ledger
 * (see ledger_life.h for the contract).
 *
 * An operation is one statement, its own implicit transaction, in one
 * round trip, as authorize_payment is: the SQL function (0010) stores its
 * result row with the claimed key before it returns, so a duplicate that
 * waited on the key reads the final result, never a half-made one, and
 * the worker packs the reply from that row, first time or replay.
 */
#include "ledger_life.h"
#include "page_token.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>

enum {
	C_OUTCOME,
	C_RESPONSE,
	C_DETAIL,
	C_DENIED_CODE,
	C_OP,
	C_ERROR_CODE,
	C_ERROR_MESSAGE,
	C_REFUND_ID,
	C_REFUND_AMOUNT,
	C_REFUND_REASON,
	C_REFUND_CREATED_AT,
	C_PAYMENT,
	C_NCOLS = C_PAYMENT + LEDGER_PAYMENT_COLS,
};

static void
cell(char *dst, size_t len, const PGresult *r, int col)
{
	snprintf(dst, len, "%s", PQgetisnull(r, 0, col) ? "" : PQgetvalue(r, 0, col));
}

/* The function's one row into res; LEDGER_INTERNAL if it is not one. */
static enum ledger_rc
parse(const PGresult *r, struct ledger_op_res *res, char *err, size_t errlen)
{
	static const struct {
		const char *name;
		enum ledger_op_outcome o;
	} outcomes[] = {
		{ "new", LEDGER_OP_NEW },
		{ "replay", LEDGER_OP_REPLAY },
		{ "conflict", LEDGER_OP_CONFLICT },
		{ "denied", LEDGER_OP_DENIED },
		{ "not_found", LEDGER_OP_NOT_FOUND },
	};
	const char *o;
	size_t i;

	if (PQntuples(r) != 1 || PQnfields(r) != C_NCOLS || PQgetisnull(r, 0, C_OUTCOME)) {
		snprintf(err, errlen, "lifecycle function returned %d rows of %d columns",
		    PQntuples(r), PQnfields(r));
		return LEDGER_INTERNAL;
	}
	o = PQgetvalue(r, 0, C_OUTCOME);
	for (i = 0; i < ARRAY_LEN(outcomes); i++)
		if (strcmp(o, outcomes[i].name) == 0)
			break;
	if (i == ARRAY_LEN(outcomes)) {
		snprintf(err, errlen, "lifecycle function returned outcome %s", o);
		return LEDGER_INTERNAL;
	}
	res->outcome = outcomes[i].o;
	cell(res->detail, sizeof(res->detail), r, C_DETAIL);
	cell(res->denied_code, sizeof(res->denied_code), r, C_DENIED_CODE);
	cell(res->op, sizeof(res->op), r, C_OP);
	if (res->outcome == LEDGER_OP_REPLAY && !PQgetisnull(r, 0, C_RESPONSE)) {
		/* A key claimed before 0010: its reply's packed bytes. */
		size_t n = 0;
		unsigned char *b = PQunescapeBytea(
		    (const unsigned char *)PQgetvalue(r, 0, C_RESPONSE), &n);

		if (b == NULL || n == 0) {
			if (b)
				PQfreemem(b);
			snprintf(err, errlen, "operation key without a stored reply");
			return LEDGER_INTERNAL;
		}
		res->response = xmalloc(n);
		memcpy(res->response, b, n);
		res->response_len = n;
		PQfreemem(b);
		return LEDGER_OK;
	}
	if (res->outcome != LEDGER_OP_NEW && res->outcome != LEDGER_OP_REPLAY)
		return LEDGER_OK;
	cell(res->error_code, sizeof(res->error_code), r, C_ERROR_CODE);
	cell(res->error_message, sizeof(res->error_message), r, C_ERROR_MESSAGE);
	res->has_refund = !PQgetisnull(r, 0, C_REFUND_ID);
	if (res->has_refund) {
		cell(res->refund_id, sizeof(res->refund_id), r, C_REFUND_ID);
		res->refund_amount = strtoll(PQgetvalue(r, 0, C_REFUND_AMOUNT), NULL, 10);
		cell(res->refund_reason, sizeof(res->refund_reason), r, C_REFUND_REASON);
		cell(
		    res->refund_created_at, sizeof(res->refund_created_at), r, C_REFUND_CREATED_AT);
	}
	if (PQgetisnull(r, 0, C_PAYMENT)) {
		snprintf(err, errlen, "lifecycle function returned no payment");
		return LEDGER_INTERNAL;
	}
	ledger_payment_from_row(r, 0, C_PAYMENT, &res->payment);
	return LEDGER_OK;
}

void
ledger_op_res_clear(struct ledger_op_res *res)
{
	free(res->response);
	ledger_payment_clear(&res->payment);
	memset(res, 0, sizeof(*res));
}

enum ledger_rc
ledger_op(struct ledger *l, enum ledger_op op, const struct ledger_op_req *q, int64_t deadline,
    struct ledger_op_res *res, char *err, size_t errlen)
{
	static const char *const stmt[] = { "capture", "void", "refund" };
	char client[24], amount[24], ttl[16];
	const char *v[9];
	int lens[9] = { 0 }, fmts[9] = { 0 }, n = 0, attempt;
	PGresult *r = NULL;
	enum ledger_rc rc;

	memset(res, 0, sizeof(*res));
	snprintf(client, sizeof(client), "%lld", (long long)q->client_id);
	snprintf(amount, sizeof(amount), "%lld", (long long)q->amount_cents);
	snprintf(ttl, sizeof(ttl), "%d", q->key_ttl_s);
	v[n++] = client;
	v[n++] = q->key;
	v[n++] = q->payment_id;
	switch (op) {
	case LEDGER_OP_CAPTURE: v[n++] = amount; break;
	case LEDGER_OP_VOID: v[n++] = q->reason ? q->reason : ""; break;
	case LEDGER_OP_REFUND:
		v[n++] = amount;
		v[n++] = q->reason ? q->reason : "";
		break;
	}
	lens[n] = 32;
	fmts[n] = 1;
	v[n++] = (const char *)q->fingerprint;
	if (op == LEDGER_OP_REFUND)
		v[n++] = q->refund_id;
	v[n++] = ttl;
	v[n++] = q->correlation_id;

	for (attempt = 0;; attempt++) {
		const struct ledger_call c = { stmt[op], NULL, n, v, lens, fmts };

		ledger_op_res_clear(res);
		res->attempts = attempt + 1;
		rc = ledger_run(l, &c, 1, 0, deadline, &r, err, errlen);
		if (rc == LEDGER_OK) {
			/* Committed: a row that does not parse is a bug between
			 * this file and the schema, answered INTERNAL. */
			rc = parse(r, res, err, errlen);
			PQclear(r);
			r = NULL;
		}
		if (rc != LEDGER_BUSY || !ledger_retry(l, attempt))
			break;
	}
	return rc;
}

enum ledger_rc
ledger_list_payments(struct ledger *l, int64_t client_id, const char *account, const char *status,
    const struct page_pos *after, int limit, int64_t deadline, struct ledger_payment **out,
    struct page_pos **pos, int *n, char *err, size_t errlen)
{
	char cid[24], ts[24], lim[16];
	const char *v[6];
	const struct ledger_call c = { "listpay", NULL, 6, v, NULL, NULL };
	PGresult *r = NULL;
	enum ledger_rc rc;
	int i, rows, attempt;

	*out = NULL;
	*pos = NULL;
	*n = 0;
	snprintf(cid, sizeof(cid), "%lld", (long long)client_id);
	snprintf(lim, sizeof(lim), "%d", limit);
	if (after)
		snprintf(ts, sizeof(ts), "%lld", (long long)after->ts_us);
	v[0] = account;
	v[1] = cid;
	v[2] = status ? status : "";
	v[3] = after ? ts : NULL;
	v[4] = after ? after->id : NULL;
	v[5] = lim;
	for (attempt = 0;; attempt++) {
		rc = ledger_run(l, &c, 1, 0, deadline, &r, err, errlen);
		if (rc != LEDGER_BUSY || !ledger_retry(l, attempt))
			break;
	}
	if (rc != LEDGER_OK)
		return rc;
	rows = PQntuples(r);
	if (rows < 1 || PQnfields(r) != 2 + LEDGER_PAYMENT_COLS) {
		snprintf(err, errlen, "payment list returned %d rows", rows);
		PQclear(r);
		return LEDGER_INTERNAL;
	}
	if (PQgetvalue(r, 0, 0)[0] != 't') {
		snprintf(err, errlen, "can_read on account %s", account);
		PQclear(r);
		return LEDGER_DENIED;
	}
	if (PQgetisnull(r, 0, 1))
		rows = 0; /* the LEFT JOIN's row of an empty page */
	if (rows > 0) {
		*out = xcalloc((size_t)rows, sizeof(**out));
		*pos = xcalloc((size_t)rows, sizeof(**pos));
	}
	for (i = 0; i < rows; i++) {
		ledger_payment_from_row(r, i, 2, &(*out)[i]);
		(*pos)[i].ts_us = strtoll(PQgetvalue(r, i, 1), NULL, 10);
		snprintf((*pos)[i].id, sizeof((*pos)[i].id), "%s", (*out)[i].payment_id);
	}
	*n = rows;
	PQclear(r);
	return LEDGER_OK;
}

void
ledger_payments_free(struct ledger_payment *p, struct page_pos *pos, int n)
{
	int i;

	for (i = 0; p && i < n; i++)
		ledger_payment_clear(&p[i]);
	free(p);
	free(pos);
}
