/* SPDX-License-Identifier: MIT */
/*
 * wrk_account.c — AccountService (CreateAccount, GetAccount,
 * UpdateAccountStatus) and ListAccountEntries: decode, validate, call the
 * ledger (ledger_acct.h), encode.
 *
 * Contract: CreateAccount and UpdateAccountStatus need an admin client
 * (checked in their transaction; PERMISSION_DENIED "... lacks admin: ...",
 * nothing written); GetAccount and ListAccountEntries need can_read on the
 * account. Request errors are INVALID_ARGUMENT naming the field; a
 * business refusal has its own code (ALREADY_EXISTS, NOT_FOUND,
 * FAILED_PRECONDITION) and a message from the ledger meant for clients;
 * database text never reaches a client. Page tokens are bound to the
 * account and the time bounds (scope "entries|<account>|<start>|<end>"),
 * so a token of another listing is INVALID_ARGUMENT.
 */
#include "wrk.h"
#include "wrk_auth.h"
#include "common/log.h"
#include "common/util.h"
#include "ledger/acct_validate.h"
#include "ledger/ledger_acct.h"
#include "ledger/pay_validate.h"
#include "metrics/metrics.h"
#include "payment/v1/payment.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The element of the response's array of entry pointers. */
typedef Payment__V1__LedgerEntry *entry_ptr;

#define PAGE_SIZE_DEFAULT 100
#define PAGE_SIZE_MAX     1000

static void
pack_reply(struct wrk_reply *rep, const ProtobufCMessage *m)
{
	rep->len = protobuf_c_message_get_packed_size(m);
	rep->body = xmalloc(rep->len);
	protobuf_c_message_pack(m, rep->body);
	rep->status = GRPC_STATUS_OK;
}

/* Replies with the Account message of a. */
static void
reply_account(struct wrk_reply *rep, struct ledger_account *a)
{
	Payment__V1__Account m = PAYMENT__V1__ACCOUNT__INIT;
	Payment__V1__Account__MetadataEntry ent[ACCT_META_MAX], *ptr[ACCT_META_MAX];
	size_t i;

	m.account_id = a->account_id;
	m.currency = a->currency;
	m.status = a->status;
	m.overdraft_limit_cents = a->overdraft_limit_cents;
	m.available_balance_cents = a->available_cents;
	m.pending_balance_cents = a->pending_cents;
	m.created_at = a->created_at;
	for (i = 0; i < a->nmeta; i++) {
		payment__v1__account__metadata_entry__init(&ent[i]);
		ent[i].key = a->meta_key[i];
		ent[i].value = a->meta_value[i];
		ptr[i] = &ent[i];
	}
	m.n_metadata = a->nmeta;
	m.metadata = a->nmeta ? ptr : NULL;
	pack_reply(rep, &m.base);
}

/* An admin write was refused before anything was written. */
static void
reply_refused(struct wrk_ctx *ctx, struct wrk_reply *rep, const struct ledger_acct_res *res)
{
	if (strcmp(res->denied_code, "revoked") == 0) {
		wrk_auth_forget(wrk_auth(ctx->w), ctx->who->client_id);
		metrics_auth_failure(wrk_metrics(ctx->w), METRICS_AUTHFAIL_REVOKED);
		wrk_reply_status(
		    rep, GRPC_STATUS_UNAUTHENTICATED, "client %s is revoked", ctx->who->name);
		return;
	}
	wrk_reply_denied(ctx, rep, METRICS_DENIED_ADMIN, res->denied);
}

static grpc_status_code
status_of(const char *error_code)
{
	if (strcmp(error_code, "ALREADY_EXISTS") == 0)
		return GRPC_STATUS_ALREADY_EXISTS;
	if (strcmp(error_code, "NOT_FOUND") == 0)
		return GRPC_STATUS_NOT_FOUND;
	if (strcmp(error_code, "FAILED_PRECONDITION") == 0)
		return GRPC_STATUS_FAILED_PRECONDITION;
	if (strcmp(error_code, "INVALID_ARGUMENT") == 0)
		return GRPC_STATUS_INVALID_ARGUMENT;
	return GRPC_STATUS_INTERNAL;
}

void
wrk_acct_create(struct wrk_ctx *ctx, const uint8_t *buf, size_t len, struct wrk_reply *rep)
{
	Payment__V1__CreateAccountRequest *rq;
	struct ledger_acct_create_req q;
	struct ledger_acct_res *res = NULL;
	const char *keys[ACCT_META_MAX], *vals[ACCT_META_MAX];
	char msg[256], err[512], id[PAY_ACCOUNT_MAX + 1], ulid[PAY_ULID_LEN + 1];
	enum ledger_rc rc;
	size_t i;

	rq = payment__v1__create_account_request__unpack(NULL, len, buf);
	if (rq == NULL) {
		wrk_reply_status(
		    rep, GRPC_STATUS_INVALID_ARGUMENT, "malformed CreateAccountRequest");
		return;
	}
	if (rq->account_id[0] != '\0' &&
	    pay_validate_id("account_id", rq->account_id, PAY_ACCOUNT_MAX, msg, sizeof(msg)) < 0)
		goto invalid;
	if (acct_validate_currency(rq->currency, msg, sizeof(msg)) < 0 ||
	    acct_validate_overdraft(rq->overdraft_limit_cents, msg, sizeof(msg)) < 0)
		goto invalid;
	if (rq->n_metadata > ACCT_META_MAX) {
		snprintf(msg, sizeof(msg), "metadata has too many entries (%zu, at most %d)",
		    rq->n_metadata, ACCT_META_MAX);
		goto invalid;
	}
	for (i = 0; i < rq->n_metadata; i++) {
		keys[i] = rq->metadata[i]->key;
		vals[i] = rq->metadata[i]->value;
	}
	if (acct_validate_metadata("metadata", rq->n_metadata, keys, vals, msg, sizeof(msg)) < 0)
		goto invalid;
	if (wrk_ledger(ctx->w) == NULL) {
		wrk_reply_status(rep, GRPC_STATUS_UNAVAILABLE, "database unavailable");
		goto out;
	}
	if (rq->account_id[0] == '\0') {
		/* A ULID: unique without a round trip, and sorts by creation. */
		if (pay_ulid(ulid) < 0) {
			wrk_reply_status(
			    rep, GRPC_STATUS_INTERNAL, "no randomness for an account id");
			goto out;
		}
		snprintf(id, sizeof(id), "acc-%s", ulid);
	} else {
		snprintf(id, sizeof(id), "%s", rq->account_id);
	}
	memset(&q, 0, sizeof(q));
	q.client_id = ctx->who->client_id;
	q.account_id = id;
	q.currency = rq->currency;
	q.overdraft_limit_cents = rq->overdraft_limit_cents;
	q.nmeta = rq->n_metadata;
	q.meta_key = keys;
	q.meta_value = vals;
	q.correlation_id = ctx->correlation_id;
	res = xmalloc(sizeof(*res));
	rc = ledger_acct_create(wrk_ledger(ctx->w), &q, ctx->deadline_ms, res, err, sizeof(err));
	if (rc != LEDGER_OK) {
		wrk_reply_ledger_error(ctx, rep, rc, err);
		goto out;
	}
	if (res->denied_code[0]) {
		reply_refused(ctx, rep, res);
		goto out;
	}
	if (res->error_code[0]) {
		wrk_reply_status(rep, status_of(res->error_code), "%s", res->error);
		goto out;
	}
	log_info(res->changed ? "account created" : "account already exists, same parameters",
	    LF_S("account_id", id), LF_S("currency", rq->currency), LF_S("client", ctx->who->name));
	reply_account(rep, &res->account);
	goto out;
invalid:
	wrk_reply_status(rep, GRPC_STATUS_INVALID_ARGUMENT, "%s", msg);
out:
	free(res);
	payment__v1__create_account_request__free_unpacked(rq, NULL);
}

void
wrk_acct_get(struct wrk_ctx *ctx, const uint8_t *buf, size_t len, struct wrk_reply *rep)
{
	Payment__V1__GetAccountRequest *rq;
	struct ledger_account *a = NULL;
	char msg[256], err[512];
	enum ledger_rc rc;

	rq = payment__v1__get_account_request__unpack(NULL, len, buf);
	if (rq == NULL) {
		wrk_reply_status(rep, GRPC_STATUS_INVALID_ARGUMENT, "malformed GetAccountRequest");
		return;
	}
	if (pay_validate_id("account_id", rq->account_id, PAY_ACCOUNT_MAX, msg, sizeof(msg)) < 0) {
		wrk_reply_status(rep, GRPC_STATUS_INVALID_ARGUMENT, "%s", msg);
		goto out;
	}
	if (wrk_ledger(ctx->w) == NULL) {
		wrk_reply_status(rep, GRPC_STATUS_UNAVAILABLE, "database unavailable");
		goto out;
	}
	a = xmalloc(sizeof(*a));
	rc = ledger_acct_get(wrk_ledger(ctx->w), ctx->who->client_id, rq->account_id,
	    ctx->deadline_ms, a, err, sizeof(err));
	if (rc == LEDGER_NOT_FOUND)
		wrk_reply_status(
		    rep, GRPC_STATUS_NOT_FOUND, "account %s not found", rq->account_id);
	else if (rc != LEDGER_OK)
		wrk_reply_ledger_error(ctx, rep, rc, err);
	else
		reply_account(rep, a);
out:
	free(a);
	payment__v1__get_account_request__free_unpacked(rq, NULL);
}

void
wrk_acct_update_status(struct wrk_ctx *ctx, const uint8_t *buf, size_t len, struct wrk_reply *rep)
{
	Payment__V1__UpdateAccountStatusRequest *rq;
	struct ledger_acct_status_req q;
	struct ledger_acct_res *res = NULL;
	char msg[256], err[512];
	enum ledger_rc rc;

	rq = payment__v1__update_account_status_request__unpack(NULL, len, buf);
	if (rq == NULL) {
		wrk_reply_status(
		    rep, GRPC_STATUS_INVALID_ARGUMENT, "malformed UpdateAccountStatusRequest");
		return;
	}
	if (pay_validate_id("account_id", rq->account_id, PAY_ACCOUNT_MAX, msg, sizeof(msg)) < 0 ||
	    acct_validate_status(rq->status, msg, sizeof(msg)) < 0 ||
	    acct_validate_reason(rq->reason, msg, sizeof(msg)) < 0) {
		wrk_reply_status(rep, GRPC_STATUS_INVALID_ARGUMENT, "%s", msg);
		goto out;
	}
	if (wrk_ledger(ctx->w) == NULL) {
		wrk_reply_status(rep, GRPC_STATUS_UNAVAILABLE, "database unavailable");
		goto out;
	}
	q.client_id = ctx->who->client_id;
	q.account_id = rq->account_id;
	q.status = rq->status;
	q.reason = rq->reason;
	q.correlation_id = ctx->correlation_id;
	res = xmalloc(sizeof(*res));
	rc = ledger_acct_update_status(
	    wrk_ledger(ctx->w), &q, ctx->deadline_ms, res, err, sizeof(err));
	if (rc != LEDGER_OK) {
		wrk_reply_ledger_error(ctx, rep, rc, err);
		goto out;
	}
	if (res->denied_code[0]) {
		reply_refused(ctx, rep, res);
		goto out;
	}
	if (res->error_code[0]) {
		wrk_reply_status(rep, status_of(res->error_code), "%s", res->error);
		goto out;
	}
	if (res->changed)
		log_info("account status changed", LF_S("account_id", rq->account_id),
		    LF_S("status", rq->status), LF_S("client", ctx->who->name));
	reply_account(rep, &res->account);
out:
	free(res);
	payment__v1__update_account_status_request__free_unpacked(rq, NULL);
}

/* The token scope: the listing, its account and its bounds, so a token
 * only continues the listing it came from. */
static void
entries_scope(char *out, size_t len, const char *account, const int64_t *start, const int64_t *end)
{
	char s[24] = "", e[24] = "";

	if (start)
		snprintf(s, sizeof(s), "%lld", (long long)*start);
	if (end)
		snprintf(e, sizeof(e), "%lld", (long long)*end);
	snprintf(out, len, "entries|%s|%s|%s", account, s, e);
}

/* A cursor id is an entry id: 1..18 digits (never past bigint). */
static int
entry_id_ok(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > 18)
		return 0;
	for (i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

void
wrk_acct_list_entries(struct wrk_ctx *ctx, const uint8_t *buf, size_t len, struct wrk_reply *rep)
{
	Payment__V1__ListAccountEntriesRequest *rq;
	Payment__V1__ListAccountEntriesResponse rs =
	    PAYMENT__V1__LIST_ACCOUNT_ENTRIES_RESPONSE__INIT;
	Payment__V1__LedgerEntry *msgs = NULL;
	entry_ptr *ptrs = NULL;
	struct ledger_entries_req q;
	struct ledger_entry *ents = NULL;
	struct page_pos after;
	const uint8_t *key;
	char msg[256], err[512], scope[160], tok[PAGE_TOKEN_MAX];
	int64_t start, end;
	enum ledger_rc rc;
	int n = 0, more = 0, i, limit;

	rq = payment__v1__list_account_entries_request__unpack(NULL, len, buf);
	if (rq == NULL) {
		wrk_reply_status(
		    rep, GRPC_STATUS_INVALID_ARGUMENT, "malformed ListAccountEntriesRequest");
		return;
	}
	memset(&q, 0, sizeof(q));
	if (pay_validate_id("account_id", rq->account_id, PAY_ACCOUNT_MAX, msg, sizeof(msg)) < 0)
		goto invalid;
	if (rq->page_size < 0) {
		snprintf(msg, sizeof(msg), "page_size must not be negative, got %d", rq->page_size);
		goto invalid;
	}
	/* 0 is the default; above the maximum is the maximum (AIP-158). */
	limit = rq->page_size == 0
	    ? PAGE_SIZE_DEFAULT
	    : (rq->page_size > PAGE_SIZE_MAX ? PAGE_SIZE_MAX : rq->page_size);
	if (rq->start_time[0]) {
		if (acct_parse_time("start_time", rq->start_time, &start, msg, sizeof(msg)) < 0)
			goto invalid;
		q.start_us = &start;
	}
	if (rq->end_time[0]) {
		if (acct_parse_time("end_time", rq->end_time, &end, msg, sizeof(msg)) < 0)
			goto invalid;
		q.end_us = &end;
	}
	if (q.start_us && q.end_us && start >= end) {
		snprintf(msg, sizeof(msg), "start_time must be before end_time");
		goto invalid;
	}
	if (wrk_ledger(ctx->w) == NULL) {
		wrk_reply_status(rep, GRPC_STATUS_UNAVAILABLE, "database unavailable");
		goto out;
	}
	key = ledger_page_key(wrk_ledger(ctx->w));
	if (key == NULL) {
		wrk_reply_status(rep, GRPC_STATUS_UNAVAILABLE, "page-token key unavailable; retry");
		goto out;
	}
	entries_scope(scope, sizeof(scope), rq->account_id, q.start_us, q.end_us);
	if (rq->page_token[0]) {
		if (page_token_decode(key, scope, rq->page_token, &after) < 0 ||
		    !entry_id_ok(after.id)) {
			snprintf(msg, sizeof(msg),
			    "page_token is not a token of this listing (account %s and these "
			    "start_time/end_time)",
			    rq->account_id);
			goto invalid;
		}
		q.after = &after;
	}
	q.client_id = ctx->who->client_id;
	q.account_id = rq->account_id;
	q.limit = limit;
	ents = xcalloc((size_t)limit, sizeof(*ents));
	rc = ledger_acct_entries(
	    wrk_ledger(ctx->w), &q, ctx->deadline_ms, ents, &n, &more, err, sizeof(err));
	if (rc == LEDGER_NOT_FOUND) {
		wrk_reply_status(
		    rep, GRPC_STATUS_NOT_FOUND, "account %s not found", rq->account_id);
		goto out;
	}
	if (rc != LEDGER_OK) {
		wrk_reply_ledger_error(ctx, rep, rc, err);
		goto out;
	}
	if (n > 0) {
		msgs = xcalloc((size_t)n, sizeof(*msgs));
		ptrs = xcalloc((size_t)n, sizeof(entry_ptr));
	}
	for (i = 0; i < n; i++) {
		payment__v1__ledger_entry__init(&msgs[i]);
		msgs[i].entry_id = ents[i].entry_id;
		msgs[i].payment_id = ents[i].payment_id;
		msgs[i].direction = ents[i].direction;
		msgs[i].amount_cents = ents[i].amount_cents;
		msgs[i].currency = ents[i].currency;
		msgs[i].balance_after_cents = ents[i].balance_after_cents;
		msgs[i].created_at = ents[i].created_at;
		msgs[i].kind = ents[i].kind;
		msgs[i].refund_id = ents[i].refund_id;
		ptrs[i] = &msgs[i];
	}
	rs.n_entries = (size_t)n;
	rs.entries = ptrs;
	if (more && n > 0) {
		if (page_token_encode(key, scope, &ents[n - 1].pos, tok, sizeof(tok)) < 0) {
			wrk_reply_status(rep, GRPC_STATUS_INTERNAL, "internal error");
			goto out;
		}
		rs.next_page_token = tok;
	}
	pack_reply(rep, &rs.base);
	goto out;
invalid:
	wrk_reply_status(rep, GRPC_STATUS_INVALID_ARGUMENT, "%s", msg);
out:
	free(ptrs);
	free(msgs);
	free(ents);
	payment__v1__list_account_entries_request__free_unpacked(rq, NULL);
}
