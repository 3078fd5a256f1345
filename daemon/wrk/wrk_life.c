/* SPDX-License-Identifier: MIT */
/*
 * wrk_life.c — the payment lifecycle after authorization: CapturePayment,
 * VoidPayment, RefundPayment, ListPayments.
 *
 * Contract: like wrk_rpc.c — business declines (INVALID_STATE,
 * AMOUNT_EXCEEDS_REMAINING, INSUFFICIENT_FUNDS, BALANCE_LIMIT, ...) are OK
 * replies with error set; gRPC errors are bad requests (INVALID_ARGUMENT),
 * an unknown payment (NOT_FOUND), a key reused with other parameters
 * (FAILED_PRECONDITION naming them), refusals (PERMISSION_DENIED,
 * UNAUTHENTICATED for a revoked client) and faults. The ledger stores
 * each operation's result row with its key (ledger_life.h); the reply is
 * packed here from that row, the first time and, with replayed = true, on
 * every replay.
 */
#include "wrk.h"
#include "wrk_auth.h"
#include "common/log.h"
#include "common/util.h"
#include "ledger/ledger_acct.h"
#include "ledger/ledger_life.h"
#include "ledger/page_token.h"
#include "ledger/pay_validate.h"
#include "metrics/metrics.h"
#include "payment/v1/payment.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIST_DEFAULT 100
#define LIST_MAX     1000

static const char *const op_name[] = { "CapturePayment", "VoidPayment", "RefundPayment" };

/* Packs the reply of an operation's result row. protobuf-c writes fields
 * in number order and replayed is the last one, so a replay's bytes are
 * the first answer's with that field appended. */
static void
pack_op(
    const struct ledger_op_res *res, enum ledger_op op, int replayed, uint8_t **out, size_t *len)
{
	Payment__V1__CapturePaymentResponse cap = PAYMENT__V1__CAPTURE_PAYMENT_RESPONSE__INIT;
	Payment__V1__VoidPaymentResponse vo = PAYMENT__V1__VOID_PAYMENT_RESPONSE__INIT;
	Payment__V1__RefundPaymentResponse ref = PAYMENT__V1__REFUND_PAYMENT_RESPONSE__INIT;
	Payment__V1__Refund rf = PAYMENT__V1__REFUND__INIT;
	Payment__V1__PaymentError pe = PAYMENT__V1__PAYMENT_ERROR__INIT;
	Payment__V1__PaymentError *e = NULL;
	const ProtobufCMessage *m;
	struct wrk_payment_pb pb;

	wrk_payment_pb(&res->payment, &pb);
	if (res->error_code[0]) {
		pe.code = pay_error_code_from_name(res->error_code);
		pe.message = (char *)res->error_message;
		e = &pe;
	}
	switch (op) {
	case LEDGER_OP_CAPTURE:
		cap.payment = pb.msg;
		cap.error = e;
		cap.replayed = replayed;
		m = &cap.base;
		break;
	case LEDGER_OP_VOID:
		vo.payment = pb.msg;
		vo.error = e;
		vo.replayed = replayed;
		m = &vo.base;
		break;
	default:
		ref.payment = pb.msg;
		ref.error = e;
		ref.replayed = replayed;
		if (res->has_refund) {
			rf.refund_id = (char *)res->refund_id;
			rf.payment_id = (char *)res->payment.payment_id;
			rf.amount_cents = res->refund_amount;
			rf.reason = (char *)res->refund_reason;
			rf.created_at = (char *)res->refund_created_at;
			ref.refund = &rf;
		}
		m = &ref.base;
		break;
	}
	*len = protobuf_c_message_get_packed_size(m);
	*out = xmalloc(*len ? *len : 1);
	protobuf_c_message_pack(m, *out);
	wrk_payment_pb_free(&pb);
}

/* A key claimed before migration 0010 stored its reply's bytes: those
 * plus replayed = true, appended (a later occurrence of a scalar field
 * wins in protobuf), so everything else is byte for byte what the first
 * call answered. */
static void
reply_replay_bytes(struct wrk_reply *rep, enum ledger_op op, const struct ledger_op_res *res)
{
	/* replayed is field 3 of Capture/VoidPaymentResponse, 4 of Refund's;
	 * varint wire type: tag = field << 3. */
	uint8_t tag = op == LEDGER_OP_REFUND ? 4 << 3 : 3 << 3;

	rep->len = res->response_len + 2;
	rep->body = xmalloc(rep->len);
	memcpy(rep->body, res->response, res->response_len);
	rep->body[res->response_len] = tag;
	rep->body[res->response_len + 1] = 1;
	rep->status = GRPC_STATUS_OK;
}

/* Runs one operation and answers it; the request was validated. */
static void
run_op(struct wrk_ctx *ctx, struct wrk_reply *rep, enum ledger_op op, struct ledger_op_req *q)
{
	struct ledger_op_res res;
	char err[512], refund_id[PAY_ULID_LEN + 1];
	enum ledger_rc rc;

	if (wrk_ledger(ctx->w) == NULL) {
		wrk_reply_status(rep, GRPC_STATUS_UNAVAILABLE,
		    "database unavailable; retry with the same idempotency key");
		return;
	}
	if (op == LEDGER_OP_REFUND) {
		if (pay_ulid(refund_id) < 0) {
			wrk_reply_status(
			    rep, GRPC_STATUS_INTERNAL, "no randomness for a refund id");
			return;
		}
		q->refund_id = refund_id;
	}
	q->client_id = ctx->who->client_id;
	q->correlation_id = ctx->correlation_id;
	q->key_ttl_s = wrk_config(ctx->w)->idempotency_ttl_s;
	rc = ledger_op(wrk_ledger(ctx->w), op, q, ctx->deadline_ms, &res, err, sizeof(err));
	if (rc != LEDGER_OK) {
		wrk_reply_ledger_error(ctx, rep, rc, err);
		goto out;
	}
	switch (res.outcome) {
	case LEDGER_OP_NEW:
		pack_op(&res, op, 0, &rep->body, &rep->len);
		rep->status = GRPC_STATUS_OK;
		log_info(
		    res.error_code[0] ? "payment operation declined" : "payment operation done",
		    LF_S("op", op_name[op]), LF_S("payment_id", q->payment_id),
		    LF_S("status", res.payment.status), LF_S("error_code", res.error_code),
		    LF_I("attempts", res.attempts));
		break;
	case LEDGER_OP_REPLAY:
		if (res.response) {
			reply_replay_bytes(rep, op, &res);
		} else {
			pack_op(&res, op, 1, &rep->body, &rep->len);
			rep->status = GRPC_STATUS_OK;
		}
		log_info("payment operation replayed", LF_S("op", op_name[op]),
		    LF_S("payment_id", q->payment_id));
		break;
	case LEDGER_OP_CONFLICT:
		if (strcmp(res.detail, "operation") == 0)
			wrk_reply_status(rep, GRPC_STATUS_FAILED_PRECONDITION,
			    "idempotency_key already used for a different operation (a %s)",
			    res.op);
		else
			wrk_reply_status(rep, GRPC_STATUS_FAILED_PRECONDITION,
			    "idempotency_key already used with different %s (a %s)", res.detail,
			    res.op);
		log_info("idempotency conflict", LF_S("op", op_name[op]),
		    LF_S("payment_id", q->payment_id), LF_S("differs", res.detail));
		break;
	case LEDGER_OP_DENIED:
		if (strcmp(res.denied_code, "revoked") == 0) {
			wrk_auth_forget(wrk_auth(ctx->w), ctx->who->client_id);
			metrics_auth_failure(wrk_metrics(ctx->w), METRICS_AUTHFAIL_REVOKED);
			wrk_reply_status(rep, GRPC_STATUS_UNAUTHENTICATED, "client %s is revoked",
			    ctx->who->name);
		} else {
			wrk_reply_denied(ctx, rep,
			    strcmp(res.denied_code, "funding_account") == 0 ? METRICS_DENIED_FUNDING
			                                                    : METRICS_DENIED_DEBIT,
			    res.detail);
		}
		break;
	case LEDGER_OP_NOT_FOUND:
		wrk_reply_status(rep, GRPC_STATUS_NOT_FOUND, "payment %s not found", q->payment_id);
		break;
	}
out:
	q->refund_id = NULL; /* refund_id is this frame's */
	ledger_op_res_clear(&res);
}

void
wrk_life_capture(struct wrk_ctx *ctx, const uint8_t *buf, size_t len, struct wrk_reply *rep)
{
	Payment__V1__CapturePaymentRequest *rq;
	struct ledger_op_req q;
	char msg[256];

	rq = payment__v1__capture_payment_request__unpack(NULL, len, buf);
	if (rq == NULL) {
		wrk_reply_status(
		    rep, GRPC_STATUS_INVALID_ARGUMENT, "malformed CapturePaymentRequest");
		return;
	}
	if (pay_validate_op(rq->idempotency_key, rq->payment_id, rq->amount_cents, NULL, msg,
	        sizeof(msg)) < 0) {
		wrk_reply_status(rep, GRPC_STATUS_INVALID_ARGUMENT, "%s", msg);
		goto out;
	}
	memset(&q, 0, sizeof(q));
	q.key = rq->idempotency_key;
	q.payment_id = rq->payment_id;
	q.amount_cents = rq->amount_cents;
	pay_op_fingerprint(PAY_OP_CAPTURE, q.payment_id, q.amount_cents, NULL, q.fingerprint);
	run_op(ctx, rep, LEDGER_OP_CAPTURE, &q);
out:
	payment__v1__capture_payment_request__free_unpacked(rq, NULL);
}

void
wrk_life_void(struct wrk_ctx *ctx, const uint8_t *buf, size_t len, struct wrk_reply *rep)
{
	Payment__V1__VoidPaymentRequest *rq;
	struct ledger_op_req q;
	char msg[256];

	rq = payment__v1__void_payment_request__unpack(NULL, len, buf);
	if (rq == NULL) {
		wrk_reply_status(rep, GRPC_STATUS_INVALID_ARGUMENT, "malformed VoidPaymentRequest");
		return;
	}
	if (pay_validate_op(rq->idempotency_key, rq->payment_id, 0, rq->reason, msg, sizeof(msg)) <
	    0) {
		wrk_reply_status(rep, GRPC_STATUS_INVALID_ARGUMENT, "%s", msg);
		goto out;
	}
	memset(&q, 0, sizeof(q));
	q.key = rq->idempotency_key;
	q.payment_id = rq->payment_id;
	q.reason = rq->reason;
	pay_op_fingerprint(PAY_OP_VOID, q.payment_id, 0, q.reason, q.fingerprint);
	run_op(ctx, rep, LEDGER_OP_VOID, &q);
out:
	payment__v1__void_payment_request__free_unpacked(rq, NULL);
}

void
wrk_life_refund(struct wrk_ctx *ctx, const uint8_t *buf, size_t len, struct wrk_reply *rep)
{
	Payment__V1__RefundPaymentRequest *rq;
	struct ledger_op_req q;
	char msg[256];

	rq = payment__v1__refund_payment_request__unpack(NULL, len, buf);
	if (rq == NULL) {
		wrk_reply_status(
		    rep, GRPC_STATUS_INVALID_ARGUMENT, "malformed RefundPaymentRequest");
		return;
	}
	if (pay_validate_op(rq->idempotency_key, rq->payment_id, rq->amount_cents, rq->reason, msg,
	        sizeof(msg)) < 0) {
		wrk_reply_status(rep, GRPC_STATUS_INVALID_ARGUMENT, "%s", msg);
		goto out;
	}
	memset(&q, 0, sizeof(q));
	q.key = rq->idempotency_key;
	q.payment_id = rq->payment_id;
	q.amount_cents = rq->amount_cents;
	q.reason = rq->reason;
	pay_op_fingerprint(PAY_OP_REFUND, q.payment_id, q.amount_cents, q.reason, q.fingerprint);
	run_op(ctx, rep, LEDGER_OP_REFUND, &q);
out:
	payment__v1__refund_payment_request__free_unpacked(rq, NULL);
}

void
wrk_life_list_payments(struct wrk_ctx *ctx, const uint8_t *buf, size_t len, struct wrk_reply *rep)
{
	Payment__V1__ListPaymentsRequest *rq;
	Payment__V1__ListPaymentsResponse rs = PAYMENT__V1__LIST_PAYMENTS_RESPONSE__INIT;
	struct ledger_payment *lp = NULL;
	struct page_pos *pos = NULL, after;
	struct wrk_payment_pb *pbs = NULL;
	Payment__V1__Payment **msgs = NULL;
	const uint8_t *key;
	const char *status = "";
	char msg[256], err[512], scope[128], token[PAGE_TOKEN_MAX];
	enum ledger_rc rc;
	int n = 0, i, size, shown;

	rq = payment__v1__list_payments_request__unpack(NULL, len, buf);
	if (rq == NULL) {
		wrk_reply_status(
		    rep, GRPC_STATUS_INVALID_ARGUMENT, "malformed ListPaymentsRequest");
		return;
	}
	if (pay_validate_id("account_id", rq->account_id, PAY_ACCOUNT_MAX, msg, sizeof(msg)) < 0) {
		wrk_reply_status(rep, GRPC_STATUS_INVALID_ARGUMENT, "%s", msg);
		goto out;
	}
	if (rq->page_size < 0) {
		wrk_reply_status(rep, GRPC_STATUS_INVALID_ARGUMENT,
		    "page_size must not be negative, got %d", rq->page_size);
		goto out;
	}
	size = rq->page_size == 0      ? LIST_DEFAULT
	    : rq->page_size > LIST_MAX ? LIST_MAX
	                               : rq->page_size;
	if (rq->status != PAYMENT__V1__PAYMENT_STATUS__PAYMENT_STATUS_UNSPECIFIED &&
	    (status = pay_status_name((int)rq->status)) == NULL) {
		wrk_reply_status(rep, GRPC_STATUS_INVALID_ARGUMENT,
		    "status %d is not a status a payment can have", (int)rq->status);
		goto out;
	}
	if (wrk_ledger(ctx->w) == NULL) {
		wrk_reply_status(rep, GRPC_STATUS_UNAVAILABLE, "database unavailable");
		goto out;
	}
	if ((key = ledger_page_key(wrk_ledger(ctx->w))) == NULL) {
		wrk_reply_status(rep, GRPC_STATUS_UNAVAILABLE, "page tokens are unavailable");
		goto out;
	}
	/* The token is only good for the listing it came from. */
	snprintf(scope, sizeof(scope), "payments|%s|%s", rq->account_id, status);
	if (rq->page_token[0] && page_token_decode(key, scope, rq->page_token, &after) < 0) {
		wrk_reply_status(rep, GRPC_STATUS_INVALID_ARGUMENT,
		    "page_token is not valid for this listing (altered, or made for another "
		    "account or status)");
		goto out;
	}
	/* One row more than the page tells whether another page follows. */
	rc = ledger_list_payments(wrk_ledger(ctx->w), ctx->who->client_id, rq->account_id, status,
	    rq->page_token[0] ? &after : NULL, size + 1, ctx->deadline_ms, &lp, &pos, &n, err,
	    sizeof(err));
	if (rc != LEDGER_OK) {
		wrk_reply_ledger_error(ctx, rep, rc, err);
		goto out;
	}
	shown = n > size ? size : n;
	if (shown > 0) {
		pbs = xcalloc((size_t)shown, sizeof(*pbs));
		/* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers */
		msgs = xcalloc((size_t)shown, sizeof(msgs[0]));
	}
	for (i = 0; i < shown; i++) {
		wrk_payment_pb(&lp[i], &pbs[i]);
		msgs[i] = pbs[i].msg;
	}
	rs.n_payments = (size_t)shown;
	rs.payments = msgs;
	if (n > size) {
		if (page_token_encode(key, scope, &pos[shown - 1], token, sizeof(token)) < 0) {
			wrk_reply_status(rep, GRPC_STATUS_INTERNAL, "internal error");
			log_error(
			    "page token encode failed", LF_S("payment_id", pos[shown - 1].id));
			goto free;
		}
		rs.next_page_token = token;
	}
	wrk_pack_reply(rep, &rs.base);
free:
	for (i = 0; i < shown; i++)
		wrk_payment_pb_free(&pbs[i]);
	free(pbs);
	free(msgs);
	ledger_payments_free(lp, pos, n);
out:
	payment__v1__list_payments_request__free_unpacked(rq, NULL);
}
