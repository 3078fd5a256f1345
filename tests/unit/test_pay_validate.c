/* SPDX-License-Identifier: MIT */
/*
 * test_pay_validate.c — daemon/ledger/pay_validate.c: request validation,
 * UTF-8 checks, request fingerprints, ULIDs, correlation ids and the
 * error-code / status names; the lifecycle fields (capture method, hold
 * TTL, metadata: validation, canonical order, fingerprint, the ledger's
 * metadata encoding) and the Capture/Void/Refund checks.
 */
#include <check.h>
#include <string.h>

#include "unit.h"
#include "tests/lib/testlib.h"
#include "ledger/pay_validate.h"
#include "payment/v1/payment.pb-c.h"

static struct pay_request
good_req(void)
{
	struct pay_request r = { .idempotency_key = "key-1",
		.payer = "acc-payer-001",
		.payee = "acc-payee-002",
		.amount_cents = 5000,
		.currency = "USD",
		.description = "Coffee" };
	return r;
}

START_TEST(validate_accepts_good_request)
{
	struct pay_request r = good_req();
	char msg[256];

	ck_assert_int_eq(pay_validate_authorize(&r, msg, sizeof(msg)), 0);
	r.amount_cents = 0; /* a decline, not a bad request */
	ck_assert_int_eq(pay_validate_authorize(&r, msg, sizeof(msg)), 0);
	r.amount_cents = -5;
	ck_assert_int_eq(pay_validate_authorize(&r, msg, sizeof(msg)), 0);
}
END_TEST

START_TEST(validate_rejects_missing_fields)
{
	struct pay_request r;
	char msg[256];

	r = good_req();
	r.idempotency_key = "";
	ck_assert_int_eq(pay_validate_authorize(&r, msg, sizeof(msg)), -1);
	ck_assert_str_eq(msg, "idempotency_key is required");
	r = good_req();
	r.payer = "";
	ck_assert_int_eq(pay_validate_authorize(&r, msg, sizeof(msg)), -1);
	ck_assert_str_eq(msg, "payer_account_id is required");
	r = good_req();
	r.payee = NULL;
	ck_assert_int_eq(pay_validate_authorize(&r, msg, sizeof(msg)), -1);
	ck_assert_str_eq(msg, "payee_account_id is required");
	r = good_req();
	r.currency = "";
	ck_assert_int_eq(pay_validate_authorize(&r, msg, sizeof(msg)), -1);
	ck_assert_str_eq(msg, "currency is required");
}
END_TEST

START_TEST(validate_rejects_malformed_fields)
{
	struct pay_request r;
	char msg[256], big[2048];

	r = good_req();
	r.currency = "usd";
	ck_assert_int_eq(pay_validate_authorize(&r, msg, sizeof(msg)), -1);
	ck_assert_ptr_nonnull(strstr(msg, "ISO 4217"));
	r = good_req();
	r.currency = "USDX";
	ck_assert_int_eq(pay_validate_authorize(&r, msg, sizeof(msg)), -1);
	r = good_req();
	r.payer = "acc payer";
	ck_assert_int_eq(pay_validate_authorize(&r, msg, sizeof(msg)), -1);
	ck_assert_ptr_nonnull(strstr(msg, "payer_account_id"));
	memset(big, 'a', 200);
	big[200] = '\0';
	r = good_req();
	r.idempotency_key = big;
	ck_assert_int_eq(pay_validate_authorize(&r, msg, sizeof(msg)), -1);
	ck_assert_ptr_nonnull(strstr(msg, "too long"));
	r = good_req();
	r.idempotency_key = "k\x01";
	ck_assert_int_eq(pay_validate_authorize(&r, msg, sizeof(msg)), -1);
	r = good_req();
	r.description = "bad \xff utf8";
	ck_assert_int_eq(pay_validate_authorize(&r, msg, sizeof(msg)), -1);
	ck_assert_str_eq(msg, "description must be valid UTF-8");
	memset(big, 'd', 2000);
	big[2000] = '\0';
	r = good_req();
	r.description = big;
	ck_assert_int_eq(pay_validate_authorize(&r, msg, sizeof(msg)), -1);
	r = good_req();
	r.description = "caf\xc3\xa9 \xe2\x98\x95"; /* café ☕ */
	ck_assert_int_eq(pay_validate_authorize(&r, msg, sizeof(msg)), 0);
}
END_TEST

START_TEST(utf8_rejects_overlong_and_surrogates)
{
	ck_assert_int_eq(pay_utf8_valid("plain"), 1);
	ck_assert_int_eq(pay_utf8_valid("\xc0\xaf"), 0);         /* overlong '/' */
	ck_assert_int_eq(pay_utf8_valid("\xed\xa0\x80"), 0);     /* U+D800 */
	ck_assert_int_eq(pay_utf8_valid("\xf4\x90\x80\x80"), 0); /* > U+10FFFF */
	ck_assert_int_eq(pay_utf8_valid("\xf0\x9f\x92\xb3"), 1); /* 💳 */
	ck_assert_int_eq(pay_utf8_valid("\xe2\x82"), 0);         /* truncated */
}
END_TEST

START_TEST(fingerprint_is_stable_and_field_sensitive)
{
	struct pay_request a = good_req(), b = good_req();
	uint8_t fa[32], fb[32];

	pay_fingerprint(&a, fa);
	pay_fingerprint(&b, fb);
	ck_assert_mem_eq(fa, fb, 32);
	b.idempotency_key = "other-key"; /* the key is not part of it */
	pay_fingerprint(&b, fb);
	ck_assert_mem_eq(fa, fb, 32);
	b = good_req();
	b.amount_cents = 5001;
	pay_fingerprint(&b, fb);
	ck_assert(memcmp(fa, fb, 32) != 0);
	b = good_req();
	b.description = "Coffee ";
	pay_fingerprint(&b, fb);
	ck_assert(memcmp(fa, fb, 32) != 0);
	/* Length prefixes: moving a character across a field boundary
	 * must change the fingerprint. */
	a.payer = "ab";
	a.payee = "c";
	b = good_req();
	b.payer = "a";
	b.payee = "bc";
	pay_fingerprint(&a, fa);
	pay_fingerprint(&b, fb);
	ck_assert(memcmp(fa, fb, 32) != 0);
}
END_TEST

START_TEST(ulid_encoding)
{
	uint8_t zero[10] = { 0 }, ones[10];
	char u[PAY_ULID_LEN + 1], v[PAY_ULID_LEN + 1];

	memset(ones, 0xff, sizeof(ones));
	ck_assert_int_eq(pay_ulid_at(0, zero, u), 0);
	ck_assert_str_eq(u, "00000000000000000000000000");
	ck_assert_int_eq(pay_ulid_at(0xFFFFFFFFFFFFLL, ones, u), 0);
	ck_assert_str_eq(u, "7ZZZZZZZZZZZZZZZZZZZZZZZZZ");
	/* Known vector: 1469918176385 ms is 01ARYZ6S41 in the time part. */
	ck_assert_int_eq(pay_ulid_at(1469918176385LL, zero, u), 0);
	ck_assert_int_eq(strncmp(u, "01ARYZ6S41", 10), 0);
	ck_assert_int_eq(pay_ulid_at(-1, zero, u), -1);
	ck_assert_int_eq(pay_ulid(u), 0);
	ck_assert_int_eq(pay_ulid(v), 0);
	ck_assert_int_eq((int)strlen(u), 26);
	ck_assert_str_ne(u, v);
}
END_TEST

START_TEST(correlation_id_sanitized)
{
	char out[PAY_CORR_MAX + 1];

	pay_correlation_id("req-42.abc", out);
	ck_assert_str_eq(out, "req-42.abc");
	pay_correlation_id("evil\"\nline", out);
	ck_assert_int_eq((int)strlen(out), 32);
	ck_assert_ptr_null(strchr(out, '"'));
	pay_correlation_id(NULL, out);
	ck_assert_int_eq((int)strlen(out), 32);
	ck_assert_int_eq((int)strspn(out, "0123456789abcdef"), 32);
}
END_TEST

START_TEST(error_code_mapping)
{
	ck_assert_int_eq(pay_error_code_from_name("INSUFFICIENT_FUNDS"),
	    PAYMENT__V1__PAYMENT_ERROR_CODE__PAYMENT_ERROR_CODE_INSUFFICIENT_FUNDS);
	ck_assert_int_eq(pay_error_code_from_name("ACCOUNT_INACTIVE"), 7);
	ck_assert_int_eq(pay_error_code_from_name("nope"), 0);
	ck_assert_int_eq(pay_status_from_name("DECLINED"), 2);
	ck_assert_int_eq(pay_status_from_name(""), 0);
}
END_TEST

START_TEST(lifecycle_fields_validated)
{
	struct pay_request r = good_req();
	struct pay_meta m[22];
	char key41[42], val501[502], msg[256];
	size_t i;

	r.capture_method = PAYMENT__V1__CAPTURE_METHOD__CAPTURE_METHOD_MANUAL;
	r.hold_ttl_seconds = 2592000;
	ck_assert_int_eq(pay_validate_authorize(&r, msg, sizeof(msg)), 0);
	r.hold_ttl_seconds = 2592001;
	ck_assert_int_eq(pay_validate_authorize(&r, msg, sizeof(msg)), -1);
	ck_assert_ptr_nonnull(strstr(msg, "hold_ttl_seconds must be 0"));
	r.hold_ttl_seconds = -1;
	ck_assert_int_eq(pay_validate_authorize(&r, msg, sizeof(msg)), -1);
	r.hold_ttl_seconds = 0;
	ck_assert_int_eq(pay_validate_authorize(&r, msg, sizeof(msg)), 0);
	/* A TTL on an automatic payment is a mistake, not a no-op. */
	r.capture_method = PAYMENT__V1__CAPTURE_METHOD__CAPTURE_METHOD_AUTOMATIC;
	r.hold_ttl_seconds = 60;
	ck_assert_int_eq(pay_validate_authorize(&r, msg, sizeof(msg)), -1);
	ck_assert_str_eq(msg, "hold_ttl_seconds applies only to capture_method MANUAL");
	r = good_req();
	r.capture_method = 3;
	ck_assert_int_eq(pay_validate_authorize(&r, msg, sizeof(msg)), -1);
	ck_assert_str_eq(msg, "capture_method 3 is not a CaptureMethod");
	r.capture_method = -1;
	ck_assert_int_eq(pay_validate_authorize(&r, msg, sizeof(msg)), -1);

	/* Metadata: 20 entries, keys 1..40 bytes, values <= 500, UTF-8. */
	memset(key41, 'k', 41);
	key41[41] = '\0';
	memset(val501, 'v', 501);
	val501[501] = '\0';
	r = good_req();
	for (i = 0; i < 21; i++) {
		m[i].key = key41 + 41 - 1 - i; /* distinct keys "k", "kk", ... */
		m[i].value = "x";
	}
	r.metadata = m;
	r.n_metadata = 20;
	ck_assert_int_eq(pay_validate_authorize(&r, msg, sizeof(msg)), 0);
	r.n_metadata = 21;
	ck_assert_int_eq(pay_validate_authorize(&r, msg, sizeof(msg)), -1);
	ck_assert_str_eq(msg, "metadata has 21 entries, at most 20");
	r.n_metadata = 1;
	m[0].key = key41 + 1; /* 40 bytes */
	ck_assert_int_eq(pay_validate_authorize(&r, msg, sizeof(msg)), 0);
	m[0].key = key41;
	ck_assert_int_eq(pay_validate_authorize(&r, msg, sizeof(msg)), -1);
	ck_assert_ptr_nonnull(strstr(msg, "metadata keys must be 1 to 40 bytes"));
	m[0].key = "";
	ck_assert_int_eq(pay_validate_authorize(&r, msg, sizeof(msg)), -1);
	m[0].key = "k";
	m[0].value = val501 + 1;
	ck_assert_int_eq(pay_validate_authorize(&r, msg, sizeof(msg)), 0);
	m[0].value = val501;
	ck_assert_int_eq(pay_validate_authorize(&r, msg, sizeof(msg)), -1);
	ck_assert_ptr_nonnull(strstr(msg, "metadata value of key \"k\" is too long"));
	m[0].value = "\xc3\x28"; /* invalid UTF-8 */
	ck_assert_int_eq(pay_validate_authorize(&r, msg, sizeof(msg)), -1);
	ck_assert_str_eq(msg, "metadata keys and values must be valid UTF-8");
	m[0].key = "\xed\xa0\x80"; /* a surrogate */
	m[0].value = "";
	ck_assert_int_eq(pay_validate_authorize(&r, msg, sizeof(msg)), -1);
}
END_TEST

START_TEST(metadata_canonical_and_fingerprinted)
{
	struct pay_meta a[3] = { { "zeta", "1" }, { "alpha", "2" }, { "mid", "3" } };
	struct pay_meta b[3] = { { "mid", "3" }, { "zeta", "1" }, { "alpha", "2" } };
	struct pay_meta d[4] = { { "k", "old" }, { "a", "1" }, { "k", "new" }, { "a", "2" } };
	struct pay_request ra = good_req(), rb = good_req(), plain = good_req();
	uint8_t fa[32], fb[32], fp[32];
	size_t na = 3, nb = 3, nd = 4;

	pay_metadata_canon(a, &na);
	pay_metadata_canon(b, &nb);
	ck_assert_uint_eq(na, 3);
	ck_assert_str_eq(a[0].key, "alpha");
	ck_assert_str_eq(a[1].key, "mid");
	ck_assert_str_eq(a[2].key, "zeta");
	/* A repeated key: the last value sent wins, as in protobuf maps. */
	pay_metadata_canon(d, &nd);
	ck_assert_uint_eq(nd, 2);
	ck_assert_str_eq(d[0].key, "a");
	ck_assert_str_eq(d[0].value, "2");
	ck_assert_str_eq(d[1].key, "k");
	ck_assert_str_eq(d[1].value, "new");

	/* Same map in another order: the same request. */
	ra.metadata = a;
	ra.n_metadata = na;
	rb.metadata = b;
	rb.n_metadata = nb;
	pay_fingerprint(&ra, fa);
	pay_fingerprint(&rb, fb);
	ck_assert_mem_eq(fa, fb, 32);
	b[1].value = "other";
	pay_fingerprint(&rb, fb);
	ck_assert(memcmp(fa, fb, 32) != 0);
	/* Without the new fields the fingerprint is what it always was:
	 * UNSPECIFIED and AUTOMATIC are the same request. */
	pay_fingerprint(&plain, fp);
	plain.capture_method = PAYMENT__V1__CAPTURE_METHOD__CAPTURE_METHOD_AUTOMATIC;
	pay_fingerprint(&plain, fb);
	ck_assert_mem_eq(fp, fb, 32);
	ck_assert(memcmp(fa, fp, 32) != 0);
	plain.capture_method = PAYMENT__V1__CAPTURE_METHOD__CAPTURE_METHOD_MANUAL;
	pay_fingerprint(&plain, fb);
	ck_assert(memcmp(fp, fb, 32) != 0);
	plain.hold_ttl_seconds = 60;
	pay_fingerprint(&plain, fa);
	ck_assert(memcmp(fa, fb, 32) != 0);
}
END_TEST

START_TEST(metadata_decode)
{
	struct pay_meta m[3];
	char buf[64];
	const char *enc = "1:a1:b5:order3:o-12:0:0:";

	ck_assert_int_eq(pay_metadata_decode(enc, buf, sizeof(buf), m, 3), 3);
	ck_assert_str_eq(m[0].key, "a");
	ck_assert_str_eq(m[0].value, "b");
	ck_assert_str_eq(m[1].key, "order");
	ck_assert_str_eq(m[1].value, "o-1");
	ck_assert_str_eq(m[2].key, "0:"); /* ':' inside a key is data */
	ck_assert_int_eq(pay_metadata_decode("", buf, sizeof(buf), m, 3), 0);
	ck_assert_int_eq(pay_metadata_decode(enc, buf, sizeof(buf), m, 2), -1); /* too many */
	ck_assert_int_eq(pay_metadata_decode("9:ab1:c", buf, sizeof(buf), m, 3), -1);
	ck_assert_int_eq(pay_metadata_decode("1:a", buf, sizeof(buf), m, 3), -1);
	ck_assert_int_eq(pay_metadata_decode("x:a1:b", buf, sizeof(buf), m, 3), -1);
	ck_assert_int_eq(pay_metadata_decode("1a1:b", buf, sizeof(buf), m, 3), -1);
	ck_assert_int_eq(pay_metadata_decode(enc, buf, 4, m, 3), -1); /* buffer */
	/* Multi-byte UTF-8: lengths are bytes. */
	ck_assert_int_eq(pay_metadata_decode("2:\xc3\xa9"
	                                     "4:\xf0\x9f\x92\xb3",
	                     buf, sizeof(buf), m, 3),
	    1);
	ck_assert_str_eq(m[0].key, "\xc3\xa9");
	ck_assert_str_eq(m[0].value, "\xf0\x9f\x92\xb3");
}
END_TEST

START_TEST(operations_validated_and_fingerprinted)
{
	char msg[256], r501[502];
	uint8_t a[32], b[32];

	ck_assert_int_eq(pay_validate_op("k", "01ABC", 0, NULL, msg, sizeof(msg)), 0);
	ck_assert_int_eq(pay_validate_op("k", "01ABC", 5, "customer asked", msg, sizeof(msg)), 0);
	ck_assert_int_eq(pay_validate_op("", "01ABC", 0, NULL, msg, sizeof(msg)), -1);
	ck_assert_str_eq(msg, "idempotency_key is required");
	ck_assert_int_eq(pay_validate_op("k", "", 0, NULL, msg, sizeof(msg)), -1);
	ck_assert_str_eq(msg, "payment_id is required");
	ck_assert_int_eq(pay_validate_op("k", "a b", 0, NULL, msg, sizeof(msg)), -1);
	ck_assert_int_eq(pay_validate_op("k", "01ABC", -1, NULL, msg, sizeof(msg)), -1);
	ck_assert_str_eq(msg, "amount_cents must not be negative (0 means all), got -1");
	memset(r501, 'r', 501);
	r501[501] = '\0';
	ck_assert_int_eq(pay_validate_op("k", "01ABC", 0, r501 + 1, msg, sizeof(msg)), 0);
	ck_assert_int_eq(pay_validate_op("k", "01ABC", 0, r501, msg, sizeof(msg)), -1);
	ck_assert_str_eq(msg, "reason is too long (501 bytes, at most 500)");
	ck_assert_int_eq(pay_validate_op("k", "01ABC", 0, "\xff", msg, sizeof(msg)), -1);
	ck_assert_str_eq(msg, "reason must be valid UTF-8");

	pay_op_fingerprint(PAY_OP_CAPTURE, "p1", 5, NULL, a);
	pay_op_fingerprint(PAY_OP_CAPTURE, "p1", 5, "", b);
	ck_assert_mem_eq(a, b, 32); /* no reason = empty reason */
	pay_op_fingerprint(PAY_OP_REFUND, "p1", 5, NULL, b);
	ck_assert(memcmp(a, b, 32) != 0); /* the operation counts */
	pay_op_fingerprint(PAY_OP_CAPTURE, "p1", 6, NULL, b);
	ck_assert(memcmp(a, b, 32) != 0);
	pay_op_fingerprint(PAY_OP_CAPTURE, "p2", 5, NULL, b);
	ck_assert(memcmp(a, b, 32) != 0);
	pay_op_fingerprint(PAY_OP_VOID, "p1", 0, "a", a);
	pay_op_fingerprint(PAY_OP_VOID, "p1", 0, "b", b);
	ck_assert(memcmp(a, b, 32) != 0);
}
END_TEST

START_TEST(lifecycle_names)
{
	ck_assert_int_eq(pay_error_code_from_name("INVALID_STATE"),
	    PAYMENT__V1__PAYMENT_ERROR_CODE__PAYMENT_ERROR_CODE_INVALID_STATE);
	ck_assert_int_eq(pay_error_code_from_name("AMOUNT_EXCEEDS_REMAINING"), 9);
	ck_assert_int_eq(pay_error_code_from_name("BALANCE_LIMIT"), 10);
	ck_assert_int_eq(pay_status_from_name("CAPTURED"), 4);
	ck_assert_int_eq(pay_status_from_name("VOIDED"), 5);
	ck_assert_int_eq(pay_status_from_name("EXPIRED"), 6);
	ck_assert_str_eq(pay_status_name(4), "CAPTURED");
	ck_assert_ptr_null(pay_status_name(PAYMENT__V1__PAYMENT_STATUS__PAYMENT_STATUS_DUPLICATE));
	ck_assert_ptr_null(pay_status_name(0));
	ck_assert_str_eq(pay_capture_method_name(0), "AUTOMATIC");
	ck_assert_str_eq(pay_capture_method_name(2), "MANUAL");
	ck_assert_int_eq(pay_capture_method_from_name("MANUAL"), 2);
	ck_assert_int_eq(pay_capture_method_from_name("AUTOMATIC"), 1);
	ck_assert_int_eq(pay_capture_method_from_name(NULL), 0);
}
END_TEST

Suite *
pay_validate_suite(void)
{
	const TTest *const tests[] = {
		validate_accepts_good_request,
		validate_rejects_missing_fields,
		validate_rejects_malformed_fields,
		utf8_rejects_overlong_and_surrogates,
		fingerprint_is_stable_and_field_sensitive,
		ulid_encoding,
		correlation_id_sanitized,
		error_code_mapping,
		lifecycle_fields_validated,
		metadata_canonical_and_fingerprinted,
		metadata_decode,
		operations_validated_and_fingerprinted,
		lifecycle_names,
		NULL,
	};

	return tl_suite("pay_validate", 0, tests);
}
