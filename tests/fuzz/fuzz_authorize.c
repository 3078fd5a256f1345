/* SPDX-License-Identifier: MIT */
/*
 * fuzz_authorize.c — libFuzzer harness for what a worker does with the
 * untrusted bytes of an AuthorizePayment call before touching Postgres
 * (daemon/wrk_rpc.c): protobuf-c decode of AuthorizePaymentRequest,
 * pay_metadata_canon() on the metadata map, pay_validate_authorize(),
 * pay_fingerprint(), and pay_correlation_id() on the key (the same routine
 * cleans client-sent correlation ids); and pay_metadata_decode(), which
 * reads the metadata back from SQL's metadata_text(), on the description
 * as raw text and on an encoding of the request's own map.
 *
 * Contract: never crashes, leaks or trips ASan/UBSan; on top of that it
 * aborts (a finding) when an invariant the daemon relies on breaks:
 *  - an accepted request has a 1..128-byte key, ids of 1..64 allowed
 *    characters, a 3-letter upper-case currency, a description of at
 *    most 1024 bytes, a capture method 0..2, a hold TTL of 0..30 days (and
 *    0 unless MANUAL), at most 20 metadata entries with keys of 1..40 and
 *    values of at most 500 bytes, all valid UTF-8;
 *  - the capture method's ledger name maps back to it (UNSPECIFIED to
 *    AUTOMATIC);
 *  - canonical metadata is sorted by key with every key once, each entry
 *    the last value the request gave that key;
 *  - the fingerprint is deterministic, survives a re-encode/decode of
 *    the request's fields (it must not depend on wire-format accidents)
 *    and does not depend on the order of the metadata entries (when each
 *    key comes once);
 *  - pay_metadata_decode() returns -1 or a count within its limit, with
 *    entries inside its buffer, and decodes "<len>:<key><len>:<value>"...
 *    of the canonical map back to the same entries;
 *  - a correlation id is always 1..128 characters of [A-Za-z0-9._:-].
 */
#include "ledger/pay_validate.h"
#include "common/utf8.h"
#include "payment/v1/payment.pb-c.h"

#include <stdio.h>

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

/* The request as the worker builds it; the metadata in m (n_metadata + 1
 * slots), canonical; reverse: take the map's entries last to first. */
static void
to_req(const Payment__V1__AuthorizePaymentRequest *rq, struct pay_request *pr, struct pay_meta *m,
    int reverse)
{
	size_t i, n = rq->n_metadata;

	pr->idempotency_key = rq->idempotency_key;
	pr->payer = rq->payer_account_id;
	pr->payee = rq->payee_account_id;
	pr->amount_cents = rq->amount_cents;
	pr->currency = rq->currency;
	pr->description = rq->description;
	pr->capture_method = (int)rq->capture_method;
	pr->hold_ttl_seconds = rq->hold_ttl_seconds;
	for (i = 0; i < n; i++) {
		const Payment__V1__AuthorizePaymentRequest__MetadataEntry *e =
		    rq->metadata[reverse ? n - 1 - i : i];
		m[i].key = e->key;
		m[i].value = e->value;
	}
	pay_metadata_canon(m, &n);
	pr->metadata = m;
	pr->n_metadata = n;
}

/* What canonical order promises: keys strictly increasing (bytewise), and
 * each the last value rq gave it. */
static void
check_canon(const Payment__V1__AuthorizePaymentRequest *rq, const struct pay_request *pr)
{
	size_t i, j;

	for (i = 0; i < pr->n_metadata; i++) {
		const char *last = NULL;

		if (i > 0 && strcmp(pr->metadata[i - 1].key, pr->metadata[i].key) >= 0)
			abort();
		for (j = 0; j < rq->n_metadata; j++)
			if (strcmp(rq->metadata[j]->key, pr->metadata[i].key) == 0)
				last = rq->metadata[j]->value;
		if (last == NULL || strcmp(last, pr->metadata[i].value) != 0)
			abort();
	}
	for (j = 0; j < rq->n_metadata; j++) {
		for (i = 0; i < pr->n_metadata; i++)
			if (strcmp(rq->metadata[j]->key, pr->metadata[i].key) == 0)
				break;
		if (i == pr->n_metadata)
			abort(); /* a key lost */
	}
}

/* pay_metadata_decode() on text: -1, or entries inside buf. */
static void
check_decode_text(const char *enc, size_t max)
{
	size_t len = strlen(enc), i;
	char *buf = malloc(len + 1);
	struct pay_meta out[PAY_META_ENTRIES];
	int n;

	if (buf == NULL)
		abort();
	n = pay_metadata_decode(enc, buf, len + 1, out, max);
	if (n < -1 || n > (int)max)
		abort();
	for (i = 0; n > 0 && i < (size_t)n; i++)
		if (out[i].key < buf || out[i].key > buf + len || out[i].value < buf ||
		    out[i].value > buf + len || strlen(out[i].key) > len ||
		    strlen(out[i].value) > len)
			abort();
	free(buf);
}

/* SQL's metadata_text() of the canonical map, decoded: the same map. */
static void
check_decode_roundtrip(const struct pay_request *pr)
{
	size_t cap = 32, i, off = 0;
	char *enc, *buf;
	struct pay_meta out[PAY_META_ENTRIES];
	int n;

	for (i = 0; i < pr->n_metadata; i++)
		cap += strlen(pr->metadata[i].key) + strlen(pr->metadata[i].value) + 48;
	enc = malloc(cap);
	buf = malloc(cap);
	if (enc == NULL || buf == NULL)
		abort();
	enc[0] = '\0';
	for (i = 0; i < pr->n_metadata; i++)
		off += (size_t)snprintf(enc + off, cap - off, "%zu:%s%zu:%s",
		    strlen(pr->metadata[i].key), pr->metadata[i].key, strlen(pr->metadata[i].value),
		    pr->metadata[i].value);
	n = pay_metadata_decode(enc, buf, cap, out, PAY_META_ENTRIES);
	if (n != (int)pr->n_metadata)
		abort();
	for (i = 0; i < pr->n_metadata; i++)
		if (strcmp(out[i].key, pr->metadata[i].key) != 0 ||
		    strcmp(out[i].value, pr->metadata[i].value) != 0)
			abort();
	free(enc);
	free(buf);
}

static int
meta_ok(const struct pay_request *pr)
{
	size_t i;

	if (pr->n_metadata > PAY_META_ENTRIES)
		return 0;
	for (i = 0; i < pr->n_metadata; i++) {
		size_t k = strlen(pr->metadata[i].key);
		if (k == 0 || k > PAY_META_KEY_MAX ||
		    strlen(pr->metadata[i].value) > PAY_META_VAL_MAX ||
		    !utf8_valid(pr->metadata[i].key) || !utf8_valid(pr->metadata[i].value))
			return 0;
	}
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Payment__V1__AuthorizePaymentRequest *rq, *again = NULL;
	struct pay_request pr, pr2, pr3;
	struct pay_meta *m = NULL, *m2 = NULL, *m3 = NULL;
	char msg[256], corr[PAY_CORR_MAX + 1];
	uint8_t fp[32], fp2[32], *buf = NULL;
	size_t n;
	unsigned nunk;

	rq = payment__v1__authorize_payment_request__unpack(NULL, size, data);
	if (rq == NULL)
		return 0;
	m = calloc(rq->n_metadata + 1, sizeof(*m));
	m3 = calloc(rq->n_metadata + 1, sizeof(*m3));
	if (m == NULL || m3 == NULL)
		abort();
	to_req(rq, &pr, m, 0);
	check_canon(rq, &pr);
	check_decode_text(rq->description, PAY_META_ENTRIES);
	pay_correlation_id(rq->idempotency_key, corr);
	if (!id_ok(corr, PAY_CORR_MAX))
		abort();
	/* The ledger's text codes come back from SQL; any text must map to a
	 * value the proto enums define. */
	if ((unsigned)pay_error_code_from_name(rq->description) >
	        PAYMENT__V1__PAYMENT_ERROR_CODE__PAYMENT_ERROR_CODE_BALANCE_LIMIT ||
	    (unsigned)pay_status_from_name(rq->description) >
	        PAYMENT__V1__PAYMENT_STATUS__PAYMENT_STATUS_EXPIRED)
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
	if (pr.capture_method < 0 || pr.capture_method > 2 || pr.hold_ttl_seconds < 0 ||
	    pr.hold_ttl_seconds > PAY_HOLD_TTL_MAX ||
	    (pr.hold_ttl_seconds != 0 &&
	        pr.capture_method != PAYMENT__V1__CAPTURE_METHOD__CAPTURE_METHOD_MANUAL) ||
	    !meta_ok(&pr))
		abort();
	check_decode_roundtrip(&pr);
	/* The capture method goes to SQL by name and comes back by name. */
	if (pay_capture_method_from_name(pay_capture_method_name(pr.capture_method)) !=
	    (pr.capture_method == PAYMENT__V1__CAPTURE_METHOD__CAPTURE_METHOD_MANUAL
	            ? PAYMENT__V1__CAPTURE_METHOD__CAPTURE_METHOD_MANUAL
	            : PAYMENT__V1__CAPTURE_METHOD__CAPTURE_METHOD_AUTOMATIC))
		abort();
	pay_fingerprint(&pr, fp);
	pay_fingerprint(&pr, fp2);
	if (memcmp(fp, fp2, 32) != 0)
		abort();
	/* The same map in the other order is the same request (with a key
	 * sent twice the order decides which value wins: not the same map). */
	if (pr.n_metadata == rq->n_metadata) {
		to_req(rq, &pr3, m3, 1);
		pay_fingerprint(&pr3, fp2);
		if (memcmp(fp, fp2, 32) != 0)
			abort();
	}
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
	m2 = calloc(again->n_metadata + 1, sizeof(*m2));
	if (m2 == NULL)
		abort();
	to_req(again, &pr2, m2, 0);
	pay_fingerprint(&pr2, fp2);
	if (memcmp(fp, fp2, 32) != 0)
		abort();
out:
	if (again)
		payment__v1__authorize_payment_request__free_unpacked(again, NULL);
	free(buf);
	free(m);
	free(m2);
	free(m3);
	payment__v1__authorize_payment_request__free_unpacked(rq, NULL);
	return 0;
}
