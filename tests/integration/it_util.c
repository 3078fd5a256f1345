/* SPDX-License-Identifier: MIT */
/*
 * it_util.c — see it_util.h.
 */
#include "it_util.h"
#include "common/util.h"
#include "payment/v1/payment.pb-c.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *
it_target(void)
{
	const char *t = getenv("PAYMENTD_TARGET");
	return t ? t : "localhost:50051";
}

grpc_channel *
it_channel(int fresh)
{
	return gcli_channel(it_target(), fresh);
}

const char *
it_run_id(void)
{
	static char id[32];

	if (!id[0])
		snprintf(id, sizeof(id), "it%lld", (long long)util_realtime_ms());
	return id;
}

void
it_authorize(grpc_channel *ch, const char *key, const char *payer, const char *payee,
    int64_t amount, const char *currency, const char *desc, const char *corr, int timeout_ms,
    struct it_auth *out)
{
	Payment__V1__AuthorizePaymentRequest r = PAYMENT__V1__AUTHORIZE_PAYMENT_REQUEST__INIT;
	Payment__V1__AuthorizePaymentResponse *rs;
	struct gcli_result res;
	struct gcli_md md = { "x-correlation-id", corr };
	uint8_t buf[4096];
	size_t n;

	memset(out, 0, sizeof(*out));
	r.idempotency_key = (char *)key;
	r.payer_account_id = (char *)payer;
	r.payee_account_id = (char *)payee;
	r.amount_cents = amount;
	r.currency = (char *)currency;
	r.description = (char *)(desc ? desc : "");
	n = protobuf_c_message_pack(&r.base, buf);
	if (gcli_unary(ch, "/payment.v1.PaymentService/AuthorizePayment", buf, n, timeout_ms, &md,
	        corr ? 1 : 0, &res) < 0) {
		out->code = GRPC_STATUS_INTERNAL;
		return;
	}
	out->code = res.status;
	snprintf(out->details, sizeof(out->details), "%s", res.details);
	snprintf(out->correlation_id, sizeof(out->correlation_id), "%s", res.correlation_id);
	if (res.status == GRPC_STATUS_OK) {
		rs = payment__v1__authorize_payment_response__unpack(NULL, res.len, res.body);
		ck_assert_ptr_nonnull(rs);
		snprintf(out->payment_id, sizeof(out->payment_id), "%s", rs->payment_id);
		snprintf(out->processed_at, sizeof(out->processed_at), "%s", rs->processed_at);
		out->status = rs->status;
		if (rs->error) {
			out->error_code = rs->error->code;
			snprintf(out->error_message, sizeof(out->error_message), "%s",
			    rs->error->message);
		}
		payment__v1__authorize_payment_response__free_unpacked(rs, NULL);
	}
	gcli_result_free(&res);
}

/* Packs req, calls method (10 s deadline) and fails the test unless the
 * call completed; the caller frees res. */
static grpc_status_code
unary(grpc_channel *ch, const char *method, const ProtobufCMessage *req, struct gcli_result *res)
{
	uint8_t buf[512];
	size_t n;

	ck_assert_uint_le(protobuf_c_message_get_packed_size(req), sizeof(buf));
	n = protobuf_c_message_pack(req, buf);
	ck_assert_int_eq(gcli_unary(ch, method, buf, n, 10000, NULL, 0, res), 0);
	return res->status;
}

grpc_status_code
it_balance(grpc_channel *ch, const char *account, int64_t *available)
{
	Payment__V1__GetAccountBalanceRequest r = PAYMENT__V1__GET_ACCOUNT_BALANCE_REQUEST__INIT;
	Payment__V1__GetAccountBalanceResponse *rs;
	struct gcli_result res;
	grpc_status_code code;

	r.account_id = (char *)account;
	code = unary(ch, "/payment.v1.PaymentService/GetAccountBalance", &r.base, &res);
	if (code == GRPC_STATUS_OK) {
		rs = payment__v1__get_account_balance_response__unpack(NULL, res.len, res.body);
		ck_assert_ptr_nonnull(rs);
		*available = rs->available_balance_cents;
		payment__v1__get_account_balance_response__free_unpacked(rs, NULL);
	}
	gcli_result_free(&res);
	return code;
}

grpc_status_code
it_get_payment(grpc_channel *ch, const char *id, int *status, int64_t *amount)
{
	Payment__V1__GetPaymentRequest r = PAYMENT__V1__GET_PAYMENT_REQUEST__INIT;
	Payment__V1__GetPaymentResponse *rs;
	struct gcli_result res;
	grpc_status_code code;

	r.payment_id = (char *)id;
	code = unary(ch, "/payment.v1.PaymentService/GetPayment", &r.base, &res);
	if (code == GRPC_STATUS_OK) {
		rs = payment__v1__get_payment_response__unpack(NULL, res.len, res.body);
		ck_assert_ptr_nonnull(rs);
		ck_assert_ptr_nonnull(rs->payment);
		*status = rs->payment->status;
		*amount = rs->payment->amount_cents;
		payment__v1__get_payment_response__free_unpacked(rs, NULL);
	}
	gcli_result_free(&res);
	return code;
}

void
it_make_account(PGconn *c, const char *id, const char *currency, int64_t funding)
{
	char amount[32], key[128], pid[128];
	const char *p[2] = { id, currency };
	const char *f[6];

	tl_db_exec(c, "INSERT INTO accounts (account_id, currency) VALUES ($1, $2)", 2, p);
	tl_db_exec(c, "INSERT INTO account_balances (account_id) VALUES ($1)", 1, p);
	if (funding > 0) {
		snprintf(amount, sizeof(amount), "%lld", (long long)funding);
		snprintf(key, sizeof(key), "fund-%s", id);
		snprintf(pid, sizeof(pid), "fund-%s", id);
		f[0] = key;
		f[1] = strcmp(currency, "EUR") == 0 ? "acc-equity-eur" : "acc-equity-usd";
		f[2] = id;
		f[3] = amount;
		f[4] = currency;
		f[5] = pid;
		tl_db_exec(c,
		    "SELECT authorize_payment(legacy_client_id(), $1, $2, $3, $4::bigint, $5, 'funding', "
		    "sha256(convert_to($1, 'UTF8')), $6, 86400, 'it-funding')",
		    6, f);
	}
}
