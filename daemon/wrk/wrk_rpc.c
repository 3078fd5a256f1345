/* SPDX-License-Identifier: MIT */
/*
 * wrk_rpc.c — PaymentService handlers: decode, validate, call the ledger,
 * encode. Business declines are OK responses with status DECLINED; gRPC
 * errors are reserved for bad requests, idempotency conflicts and faults.
 */
#include "wrk.h"
#include "wrk_auth.h"
#include "common/log.h"
#include "ledger/acct_validate.h"
#include "ledger/ledger_acct.h"
#include "ledger/pay_validate.h"
#include "common/util.h"
#include "metrics/metrics.h"
#include "payment/v1/payment.pb-c.h"

#include <stdlib.h>
#include <string.h>

void
wrk_pack_reply(struct wrk_reply *rep, const ProtobufCMessage *m)
{
	rep->len = protobuf_c_message_get_packed_size(m);
	rep->body = xmalloc(rep->len);
	protobuf_c_message_pack(m, rep->body);
	rep->status = GRPC_STATUS_OK;
}

static void
pack_reply(struct wrk_reply *rep, const ProtobufCMessage *m)
{
	wrk_pack_reply(rep, m);
}

void
wrk_payment_pb(const struct ledger_payment *lp, struct wrk_payment_pb *pb)
{
	static const Payment__V1__Payment init = PAYMENT__V1__PAYMENT__INIT;
	static const Payment__V1__Payment__MetadataEntry einit =
	    PAYMENT__V1__PAYMENT__METADATA_ENTRY__INIT;
	Payment__V1__Payment *p = xmalloc(sizeof(*p));
	struct pay_meta m[PAY_META_ENTRIES];
	size_t enc = lp->metadata ? strlen(lp->metadata) : 0;
	int n = 0, i;

	memset(pb, 0, sizeof(*pb));
	*p = init;
	p->payment_id = (char *)lp->payment_id;
	p->payer_account_id = (char *)lp->payer;
	p->payee_account_id = (char *)lp->payee;
	p->amount_cents = lp->amount_cents;
	p->currency = (char *)lp->currency;
	p->status = pay_status_from_name(lp->status);
	p->description = (char *)lp->description;
	p->created_at = (char *)lp->created_at;
	p->updated_at = (char *)lp->updated_at;
	p->capture_method = pay_capture_method_from_name(lp->capture_method);
	p->captured_amount_cents = lp->captured_amount_cents;
	p->refunded_amount_cents = lp->refunded_amount_cents;
	p->hold_expires_at = (char *)lp->hold_expires_at;
	if (enc > 0) {
		pb->strs = xmalloc(enc + 1);
		n = pay_metadata_decode(lp->metadata, pb->strs, enc + 1, m, PAY_META_ENTRIES);
		/* The ledger stores only what validation let through. */
		if (n < 0)
			abort();
		pb->ents = xcalloc((size_t)n, sizeof(*pb->ents));
		/* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers */
		pb->ptrs = xcalloc((size_t)n, sizeof(pb->ptrs[0]));
		for (i = 0; i < n; i++) {
			pb->ents[i] = einit;
			pb->ents[i].key = (char *)m[i].key;
			pb->ents[i].value = (char *)m[i].value;
			pb->ptrs[i] = &pb->ents[i];
		}
		p->n_metadata = (size_t)n;
		p->metadata = pb->ptrs;
	}
	pb->msg = p;
}

void
wrk_payment_pb_free(struct wrk_payment_pb *pb)
{
	free(pb->msg);
	free(pb->ents);
	free(pb->ptrs);
	free(pb->strs);
	memset(pb, 0, sizeof(*pb));
}

/* The request's map as pay_meta entries (malloc'd), canonical order. */
static struct pay_meta *
request_metadata(const Payment__V1__AuthorizePaymentRequest *rq, size_t *n)
{
	struct pay_meta *m = NULL;
	size_t i;

	*n = rq->n_metadata;
	if (*n == 0)
		return NULL;
	m = xcalloc(*n, sizeof(*m));
	for (i = 0; i < *n; i++) {
		m[i].key = rq->metadata[i]->key;
		m[i].value = rq->metadata[i]->value;
	}
	pay_metadata_canon(m, n);
	return m;
}

void
wrk_rpc_authorize(struct wrk_ctx *ctx, const uint8_t *buf, size_t len, struct wrk_reply *rep)
{
	Payment__V1__AuthorizePaymentRequest *rq;
	Payment__V1__AuthorizePaymentResponse rs = PAYMENT__V1__AUTHORIZE_PAYMENT_RESPONSE__INIT;
	Payment__V1__PaymentError pe = PAYMENT__V1__PAYMENT_ERROR__INIT;
	struct ledger_auth_req q;
	struct ledger_auth_res r;
	struct pay_request pr;
	char msg[256], err[512], ulid[PAY_ULID_LEN + 1];
	enum ledger_rc rc;
	int64_t t0 = util_now_ns();
	const char *keys[PAY_META_ENTRIES], *vals[PAY_META_ENTRIES];
	size_t i;

	memset(&pr, 0, sizeof(pr));

	rq = payment__v1__authorize_payment_request__unpack(NULL, len, buf);
	if (rq == NULL) {
		wrk_reply_status(
		    rep, GRPC_STATUS_INVALID_ARGUMENT, "malformed AuthorizePaymentRequest");
		return;
	}
	pr.idempotency_key = rq->idempotency_key;
	pr.payer = rq->payer_account_id;
	pr.payee = rq->payee_account_id;
	pr.amount_cents = rq->amount_cents;
	pr.currency = rq->currency;
	pr.description = rq->description;
	pr.capture_method = (int)rq->capture_method;
	pr.hold_ttl_seconds = rq->hold_ttl_seconds;
	pr.metadata = request_metadata(rq, &pr.n_metadata);
	if (pay_validate_authorize(&pr, msg, sizeof(msg)) < 0) {
		wrk_reply_status(rep, GRPC_STATUS_INVALID_ARGUMENT, "%s", msg);
		goto out;
	}
	if (wrk_ledger(ctx->w) == NULL) {
		wrk_reply_status(rep, GRPC_STATUS_UNAVAILABLE,
		    "database unavailable; retry with the same idempotency key");
		goto out;
	}
	if (pay_ulid(ulid) < 0) {
		wrk_reply_status(rep, GRPC_STATUS_INTERNAL, "no randomness for a payment id");
		goto out;
	}
	memset(&q, 0, sizeof(q));
	q.client_id = ctx->who->client_id;
	q.key = pr.idempotency_key;
	q.payer = pr.payer;
	q.payee = pr.payee;
	q.amount_cents = pr.amount_cents;
	q.currency = pr.currency;
	q.description = pr.description;
	q.correlation_id = ctx->correlation_id;
	q.payment_id = ulid;
	q.key_ttl_s = wrk_config(ctx->w)->idempotency_ttl_s;
	q.capture_method = pay_capture_method_name(pr.capture_method);
	q.hold_ttl_requested = pr.hold_ttl_seconds;
	q.hold_ttl_s = pr.hold_ttl_seconds ? pr.hold_ttl_seconds : wrk_config(ctx->w)->hold_ttl_s;
	for (i = 0; i < pr.n_metadata; i++) {
		keys[i] = pr.metadata[i].key;
		vals[i] = pr.metadata[i].value;
	}
	q.n_metadata = (int)pr.n_metadata;
	q.meta_keys = keys;
	q.meta_values = vals;
	pay_fingerprint(&pr, q.fingerprint);

	rc = ledger_authorize(wrk_ledger(ctx->w), &q, ctx->deadline_ms, &r, err, sizeof(err));
	if (rc != LEDGER_OK) {
		wrk_reply_ledger_error(ctx, rep, rc, err);
		goto out;
	}
	if (r.denied_code[0]) {
		/* Refused before anything was written: no payment, no event. */
		if (strcmp(r.denied_code, "revoked") == 0) {
			wrk_auth_forget(wrk_auth(ctx->w), ctx->who->client_id);
			metrics_auth_failure(wrk_metrics(ctx->w), METRICS_AUTHFAIL_REVOKED);
			wrk_reply_status(rep, GRPC_STATUS_UNAUTHENTICATED, "client %s is revoked",
			    ctx->who->name);
		} else {
			wrk_reply_denied(ctx, rep,
			    strcmp(r.denied_code, "funding_account") == 0 ? METRICS_DENIED_FUNDING
			                                                  : METRICS_DENIED_DEBIT,
			    r.denied);
		}
		goto out;
	}
	if (r.conflict[0]) {
		/* Same key, other parameters: refuse and name what differs.
		 * Keys are scoped to the client, so the payment named is the
		 * caller's own. */
		wrk_reply_status(rep, GRPC_STATUS_FAILED_PRECONDITION,
		    "idempotency_key already used with different %s (payment %s)", r.conflict,
		    r.payment_id);
		log_info("idempotency conflict", LF_S("payment_id", r.payment_id),
		    LF_S("differs", r.conflict));
		goto out;
	}
	rs.payment_id = r.payment_id;
	rs.processed_at = r.processed_at;
	rs.status = r.replayed ? PAYMENT__V1__PAYMENT_STATUS__PAYMENT_STATUS_DUPLICATE
	                       : pay_status_from_name(r.status);
	if (r.error_code[0]) {
		pe.code = pay_error_code_from_name(r.error_code);
		pe.message = r.error_message;
		rs.error = &pe;
	}
	metrics_payment(wrk_metrics(ctx->w), rs.status, rs.error ? (int)pe.code : 0,
	    (double)(util_now_ns() - t0) / 1e9);
	log_info(r.replayed ? "payment replayed" : "payment processed",
	    LF_S("payment_id", r.payment_id), LF_S("status", r.status),
	    LF_S("error_code", r.error_code), LF_I("amount_cents", pr.amount_cents),
	    LF_I("attempts", r.attempts));
	pack_reply(rep, &rs.base);
out:
	free(pr.metadata);
	payment__v1__authorize_payment_request__free_unpacked(rq, NULL);
}

void
wrk_rpc_get_payment(struct wrk_ctx *ctx, const uint8_t *buf, size_t len, struct wrk_reply *rep)
{
	Payment__V1__GetPaymentRequest *rq;
	Payment__V1__GetPaymentResponse rs = PAYMENT__V1__GET_PAYMENT_RESPONSE__INIT;
	struct wrk_payment_pb pb;
	struct ledger_payment lp;
	char msg[256], err[512];
	enum ledger_rc rc;

	rq = payment__v1__get_payment_request__unpack(NULL, len, buf);
	if (rq == NULL) {
		wrk_reply_status(rep, GRPC_STATUS_INVALID_ARGUMENT, "malformed GetPaymentRequest");
		return;
	}
	if (pay_validate_id("payment_id", rq->payment_id, PAY_ID_MAX, msg, sizeof(msg)) < 0) {
		wrk_reply_status(rep, GRPC_STATUS_INVALID_ARGUMENT, "%s", msg);
		goto out;
	}
	if (wrk_ledger(ctx->w) == NULL) {
		wrk_reply_status(rep, GRPC_STATUS_UNAVAILABLE, "database unavailable");
		goto out;
	}
	rc = ledger_get_payment(wrk_ledger(ctx->w), ctx->who->client_id, rq->payment_id,
	    ctx->deadline_ms, &lp, err, sizeof(err));
	if (rc == LEDGER_NOT_FOUND) {
		wrk_reply_status(
		    rep, GRPC_STATUS_NOT_FOUND, "payment %s not found", rq->payment_id);
		goto out;
	}
	if (rc != LEDGER_OK) {
		wrk_reply_ledger_error(ctx, rep, rc, err);
		goto out;
	}
	wrk_payment_pb(&lp, &pb);
	rs.payment = pb.msg;
	pack_reply(rep, &rs.base);
	wrk_payment_pb_free(&pb);
	ledger_payment_clear(&lp);
out:
	payment__v1__get_payment_request__free_unpacked(rq, NULL);
}

void
wrk_rpc_get_balance(struct wrk_ctx *ctx, const uint8_t *buf, size_t len, struct wrk_reply *rep)
{
	Payment__V1__GetAccountBalanceRequest *rq;
	Payment__V1__GetAccountBalanceResponse rs = PAYMENT__V1__GET_ACCOUNT_BALANCE_RESPONSE__INIT;
	struct ledger_balance b;
	char msg[256], err[512];
	enum ledger_rc rc;
	int64_t as_of;

	rq = payment__v1__get_account_balance_request__unpack(NULL, len, buf);
	if (rq == NULL) {
		wrk_reply_status(
		    rep, GRPC_STATUS_INVALID_ARGUMENT, "malformed GetAccountBalanceRequest");
		return;
	}
	if (pay_validate_id("account_id", rq->account_id, PAY_ACCOUNT_MAX, msg, sizeof(msg)) < 0) {
		wrk_reply_status(rep, GRPC_STATUS_INVALID_ARGUMENT, "%s", msg);
		goto out;
	}
	if (rq->as_of[0] && acct_parse_time("as_of", rq->as_of, &as_of, msg, sizeof(msg)) < 0) {
		wrk_reply_status(rep, GRPC_STATUS_INVALID_ARGUMENT, "%s", msg);
		goto out;
	}
	if (wrk_ledger(ctx->w) == NULL) {
		wrk_reply_status(rep, GRPC_STATUS_UNAVAILABLE, "database unavailable");
		goto out;
	}
	/* Now: the balance row itself. At an instant: recomputed from the
	 * entries and holds of the history (ledger_acct.h); a future
	 * instant is now. */
	if (rq->as_of[0])
		rc = ledger_acct_balance_at(wrk_ledger(ctx->w), ctx->who->client_id, rq->account_id,
		    as_of, ctx->deadline_ms, &b, err, sizeof(err));
	else
		rc = ledger_get_balance(wrk_ledger(ctx->w), ctx->who->client_id, rq->account_id,
		    ctx->deadline_ms, &b, err, sizeof(err));
	if (rc == LEDGER_NOT_FOUND) {
		wrk_reply_status(
		    rep, GRPC_STATUS_NOT_FOUND, "account %s not found", rq->account_id);
		goto out;
	}
	if (rc != LEDGER_OK) {
		wrk_reply_ledger_error(ctx, rep, rc, err);
		goto out;
	}
	rs.account_id = b.account_id;
	rs.available_balance_cents = b.available_cents;
	rs.pending_balance_cents = b.pending_cents;
	rs.currency = b.currency;
	pack_reply(rep, &rs.base);
out:
	payment__v1__get_account_balance_request__free_unpacked(rq, NULL);
}
