/* SPDX-License-Identifier: MIT */
/*
 * fuzz_authorize.c — libFuzzer harness for what a worker does with the
 * untrusted bytes of an AuthorizePayment call before touching Postgres
 * (daemon/wrk_rpc.c): protobuf-c decode of AuthorizePaymentRequest,
 * pay_validate_authorize(), pay_fingerprint(), and pay_correlation_id() on
 * the key (the same routine cleans client-sent correlation ids).
 *
 * Contract: never crashes, leaks or trips ASan/UBSan; on top of that it
 * aborts (a finding) when an invariant the daemon relies on breaks:
 *  - an accepted request has a 1..128-byte key, ids of 1..64 allowed
 *    characters, a 3-letter upper-case currency and a description of at
 *    most 1024 bytes;
 *  - the fingerprint is deterministic and survives a re-encode/decode of
 *    the request's fields (it must not depend on wire-format accidents);
 *  - a correlation id is always 1..128 characters of [A-Za-z0-9._:-].
 */
#include "ledger/pay_validate.h"
#include "payment/v1/payment.pb-c.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int
id_ok(const char *s, size_t max)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > max)
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		        c == '-' || c == '_' || c == '.' || c == ':'))
			return 0;
	}
	return 1;
}

static void
to_req(const Payment__V1__AuthorizePaymentRequest *rq, struct pay_request *pr)
{
	pr->idempotency_key = rq->idempotency_key;
	pr->payer = rq->payer_account_id;
	pr->payee = rq->payee_account_id;
	pr->amount_cents = rq->amount_cents;
	pr->currency = rq->currency;
	pr->description = rq->description;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Payment__V1__AuthorizePaymentRequest *rq, *again = NULL;
	struct pay_request pr, pr2;
	char msg[256], corr[PAY_CORR_MAX + 1];
	uint8_t fp[32], fp2[32], *buf = NULL;
	size_t n;
	unsigned nunk;

	rq = payment__v1__authorize_payment_request__unpack(NULL, size, data);
	if (rq == NULL)
		return 0;
	to_req(rq, &pr);
	pay_correlation_id(rq->idempotency_key, corr);
	if (!id_ok(corr, PAY_CORR_MAX))
		abort();
	/* The ledger's text codes come back from SQL; any text must map to a
	 * value the proto enums define. */
	if ((unsigned)pay_error_code_from_name(rq->description) >
	        PAYMENT__V1__PAYMENT_ERROR_CODE__PAYMENT_ERROR_CODE_ACCOUNT_INACTIVE ||
	    (unsigned)pay_status_from_name(rq->description) >
	        PAYMENT__V1__PAYMENT_STATUS__PAYMENT_STATUS_DECLINED)
		abort();
	if (pay_validate_authorize(&pr, msg, sizeof(msg)) < 0) {
		if (memchr(msg, '\0', sizeof(msg)) == NULL || msg[0] == '\0')
			abort(); /* the reason goes to the client verbatim */
		goto out;
	}
	if (strlen(pr.idempotency_key) < 1 || strlen(pr.idempotency_key) > PAY_KEY_MAX ||
	    !id_ok(pr.payer, PAY_ACCOUNT_MAX) || !id_ok(pr.payee, PAY_ACCOUNT_MAX) ||
	    strlen(pr.currency) != 3 || strlen(pr.description) > PAY_DESC_MAX)
		abort();
	pay_fingerprint(&pr, fp);
	pay_fingerprint(&pr, fp2);
	if (memcmp(fp, fp2, 32) != 0)
		abort();
	/* Re-encode the known fields only: protobuf-c 1.4.1 keeps a field
	 * number 0 sent with an overlong tag varint as an unknown field and
	 * re-emits it in a form its own decoder rejects (finding F1, see
	 * load-tests/README.md); the fingerprint never covers unknown fields. */
	nunk = rq->base.n_unknown_fields;
	rq->base.n_unknown_fields = 0;
	n = payment__v1__authorize_payment_request__get_packed_size(rq);
	buf = malloc(n ? n : 1);
	if (buf == NULL)
		abort();
	payment__v1__authorize_payment_request__pack(rq, buf);
	rq->base.n_unknown_fields = nunk;
	again = payment__v1__authorize_payment_request__unpack(NULL, n, buf);
	if (again == NULL)
		abort();
	to_req(again, &pr2);
	pay_fingerprint(&pr2, fp2);
	if (memcmp(fp, fp2, 32) != 0)
		abort();
out:
	if (again)
		payment__v1__authorize_payment_request__free_unpacked(again, NULL);
	free(buf);
	payment__v1__authorize_payment_request__free_unpacked(rq, NULL);
	return 0;
}
