/* SPDX-License-Identifier: MIT */
/*
 * test_pay_validate.c — daemon/ledger/pay_validate.c: request validation,
 * UTF-8 checks, request fingerprints, ULIDs, correlation ids and the
 * error-code / status names.
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
	struct pay_request r = { "key-1", "acc-payer-001", "acc-payee-002", 5000, "USD", "Coffee" };
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
		NULL,
	};

	return tl_suite("pay_validate", 0, tests);
}
