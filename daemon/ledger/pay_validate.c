/* SPDX-License-Identifier: MIT */
/*
 * pay_validate.c — validation, fingerprinting and id generation for
 * payments (see pay_validate.h).
 */
#include "pay_validate.h"
#include "common/utf8.h"
#include "common/util.h"
#include "payment/v1/payment.pb-c.h"

#include <stdio.h>
#include <string.h>
#include <openssl/evp.h>

/* The name the unit tests know; the check itself is utf8_valid(). */
int
pay_utf8_valid(const char *s)
{
	return utf8_valid(s);
}

static int
has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

static int
id_chars_ok(const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		        c == '-' || c == '_' || c == '.' || c == ':'))
			return 0;
	}
	return 1;
}

int
pay_validate_id(const char *field, const char *id, size_t max, char *msg, size_t msglen)
{
	size_t n = id ? strlen(id) : 0;

	if (n == 0) {
		snprintf(msg, msglen, "%s is required", field);
		return -1;
	}
	if (n > max) {
		snprintf(msg, msglen, "%s is too long (%zu bytes, at most %zu)", field, n, max);
		return -1;
	}
	if (!id_chars_ok(id)) {
		snprintf(msg, msglen, "%s may contain only letters, digits and . _ : -", field);
		return -1;
	}
	return 0;
}

int
pay_validate_authorize(const struct pay_request *r, char *msg, size_t msglen)
{
	size_t n;

	n = r->idempotency_key ? strlen(r->idempotency_key) : 0;
	if (n == 0) {
		snprintf(msg, msglen, "idempotency_key is required");
		return -1;
	}
	if (n > PAY_KEY_MAX) {
		snprintf(msg, msglen, "idempotency_key is too long (%zu bytes, at most %d)", n,
		    PAY_KEY_MAX);
		return -1;
	}
	if (!utf8_valid(r->idempotency_key) || has_control(r->idempotency_key)) {
		snprintf(msg, msglen, "idempotency_key must be printable UTF-8");
		return -1;
	}
	if (pay_validate_id("payer_account_id", r->payer, PAY_ACCOUNT_MAX, msg, msglen) < 0)
		return -1;
	if (pay_validate_id("payee_account_id", r->payee, PAY_ACCOUNT_MAX, msg, msglen) < 0)
		return -1;
	n = r->currency ? strlen(r->currency) : 0;
	if (n == 0) {
		snprintf(msg, msglen, "currency is required");
		return -1;
	}
	if (n != 3 || r->currency[0] < 'A' || r->currency[0] > 'Z' || r->currency[1] < 'A' ||
	    r->currency[1] > 'Z' || r->currency[2] < 'A' || r->currency[2] > 'Z') {
		snprintf(
		    msg, msglen, "currency must be a 3-letter upper-case ISO 4217 code, e.g. USD");
		return -1;
	}
	n = r->description ? strlen(r->description) : 0;
	if (n > PAY_DESC_MAX) {
		snprintf(msg, msglen, "description is too long (%zu bytes, at most %d)", n,
		    PAY_DESC_MAX);
		return -1;
	}
	if (n && !utf8_valid(r->description)) {
		snprintf(msg, msglen, "description must be valid UTF-8");
		return -1;
	}
	return 0;
}

static void
put_field(EVP_MD_CTX *ctx, const char *s)
{
	uint8_t len[4];
	size_t n = s ? strlen(s) : 0;

	len[0] = (uint8_t)(n >> 24);
	len[1] = (uint8_t)(n >> 16);
	len[2] = (uint8_t)(n >> 8);
	len[3] = (uint8_t)n;
	EVP_DigestUpdate(ctx, len, sizeof(len));
	if (n)
		EVP_DigestUpdate(ctx, s, n);
}

/* One fetched SHA-256 and one context per process: EVP_sha256() in
 * EVP_DigestInit_ex() re-fetches the algorithm from the provider on every
 * call, which showed up in the worker's profile. Workers are single-threaded
 * where this runs. */
static EVP_MD *fp_md;
static EVP_MD_CTX *fp_ctx;

void
pay_init(void)
{
	/* Loads OpenSSL's configuration and provider now, while the worker can
	 * still read /usr/lib/ssl/openssl.cnf, not on its first payment. */
	if (fp_md == NULL && (fp_md = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL)
		abort();
	if (fp_ctx == NULL && (fp_ctx = EVP_MD_CTX_new()) == NULL)
		abort();
}

void
pay_fingerprint(const struct pay_request *r, uint8_t out[32])
{
	EVP_MD_CTX *ctx;
	uint8_t amt[8];
	unsigned int olen = 32;
	uint64_t a = (uint64_t)r->amount_cents;
	int i;

	pay_init();
	ctx = fp_ctx;
	for (i = 0; i < 8; i++)
		amt[i] = (uint8_t)(a >> (56 - 8 * i));
	if (EVP_DigestInit_ex(ctx, fp_md, NULL) != 1)
		abort();
	EVP_DigestUpdate(ctx, "paymentd.v1", 11); /* domain separation */
	put_field(ctx, r->payer);
	put_field(ctx, r->payee);
	EVP_DigestUpdate(ctx, amt, sizeof(amt));
	put_field(ctx, r->currency);
	put_field(ctx, r->description);
	if (EVP_DigestFinal_ex(ctx, out, &olen) != 1 || olen != 32)
		abort();
}

static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

int
pay_ulid_at(int64_t ms, const uint8_t rnd[10], char out[PAY_ULID_LEN + 1])
{
	uint8_t b[16];
	int i, bit;

	if (ms < 0 || ms > 0xFFFFFFFFFFFFLL)
		return -1;
	for (i = 0; i < 6; i++)
		b[i] = (uint8_t)(ms >> (40 - 8 * i));
	memcpy(b + 6, rnd, 10);
	/* 128 bits -> 26 base32 digits; the first digit carries 3 bits. */
	for (i = 0; i < PAY_ULID_LEN; i++) {
		int start = i == 0 ? 0 : 3 + (i - 1) * 5;
		int width = i == 0 ? 3 : 5;
		unsigned v = 0;
		for (bit = start; bit < start + width; bit++)
			v = (v << 1) | ((b[bit / 8] >> (7 - bit % 8)) & 1);
		out[i] = crockford[v];
	}
	out[PAY_ULID_LEN] = '\0';
	return 0;
}

int
pay_ulid(char out[PAY_ULID_LEN + 1])
{
	uint8_t rnd[10];

	if (util_random(rnd, sizeof(rnd)) < 0)
		return -1;
	return pay_ulid_at(util_realtime_ms(), rnd, out);
}

void
pay_correlation_id(const char *in, char out[PAY_CORR_MAX + 1])
{
	uint8_t r[16];

	if (in != NULL && *in && strlen(in) <= PAY_CORR_MAX && id_chars_ok(in)) {
		memcpy(out, in, strlen(in) + 1);
		return;
	}
	if (util_random(r, sizeof(r)) < 0)
		memset(r, 0, sizeof(r));
	util_hex(r, sizeof(r), out);
}

int
pay_error_code_from_name(const char *name)
{
	static const struct {
		const char *n;
		int v;
	} map[] = {
		{ "INSUFFICIENT_FUNDS",
		    PAYMENT__V1__PAYMENT_ERROR_CODE__PAYMENT_ERROR_CODE_INSUFFICIENT_FUNDS },
		{ "ACCOUNT_NOT_FOUND",
		    PAYMENT__V1__PAYMENT_ERROR_CODE__PAYMENT_ERROR_CODE_ACCOUNT_NOT_FOUND },
		{ "INVALID_AMOUNT",
		    PAYMENT__V1__PAYMENT_ERROR_CODE__PAYMENT_ERROR_CODE_INVALID_AMOUNT },
		{ "SAME_ACCOUNT",
		    PAYMENT__V1__PAYMENT_ERROR_CODE__PAYMENT_ERROR_CODE_SAME_ACCOUNT },
		{ "CURRENCY_MISMATCH",
		    PAYMENT__V1__PAYMENT_ERROR_CODE__PAYMENT_ERROR_CODE_CURRENCY_MISMATCH },
		{ "RATE_LIMITED",
		    PAYMENT__V1__PAYMENT_ERROR_CODE__PAYMENT_ERROR_CODE_RATE_LIMITED },
		{ "ACCOUNT_INACTIVE",
		    PAYMENT__V1__PAYMENT_ERROR_CODE__PAYMENT_ERROR_CODE_ACCOUNT_INACTIVE },
	};
	size_t i;

	if (name == NULL)
		return PAYMENT__V1__PAYMENT_ERROR_CODE__PAYMENT_ERROR_CODE_UNSPECIFIED;
	for (i = 0; i < ARRAY_LEN(map); i++)
		if (strcmp(map[i].n, name) == 0)
			return map[i].v;
	return PAYMENT__V1__PAYMENT_ERROR_CODE__PAYMENT_ERROR_CODE_UNSPECIFIED;
}

int
pay_status_from_name(const char *name)
{
	if (name && strcmp(name, "AUTHORIZED") == 0)
		return PAYMENT__V1__PAYMENT_STATUS__PAYMENT_STATUS_AUTHORIZED;
	if (name && strcmp(name, "DECLINED") == 0)
		return PAYMENT__V1__PAYMENT_STATUS__PAYMENT_STATUS_DECLINED;
	return PAYMENT__V1__PAYMENT_STATUS__PAYMENT_STATUS_UNSPECIFIED;
}
