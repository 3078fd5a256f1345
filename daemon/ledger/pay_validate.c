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

static int
validate_key(const char *key, char *msg, size_t msglen)
{
	size_t n = key ? strlen(key) : 0;

	if (n == 0) {
		snprintf(msg, msglen, "idempotency_key is required");
		return -1;
	}
	if (n > PAY_KEY_MAX) {
		snprintf(msg, msglen, "idempotency_key is too long (%zu bytes, at most %d)", n,
		    PAY_KEY_MAX);
		return -1;
	}
	if (!utf8_valid(key) || has_control(key)) {
		snprintf(msg, msglen, "idempotency_key must be printable UTF-8");
		return -1;
	}
	return 0;
}

static int
validate_metadata(const struct pay_meta *m, size_t n, char *msg, size_t msglen)
{
	size_t i, kl, vl;

	if (n > PAY_META_ENTRIES) {
		snprintf(msg, msglen, "metadata has %zu entries, at most %d", n, PAY_META_ENTRIES);
		return -1;
	}
	for (i = 0; i < n; i++) {
		kl = m[i].key ? strlen(m[i].key) : 0;
		vl = m[i].value ? strlen(m[i].value) : 0;
		if (kl == 0 || kl > PAY_META_KEY_MAX) {
			snprintf(msg, msglen,
			    "metadata keys must be 1 to %d bytes (entry %zu has %zu)",
			    PAY_META_KEY_MAX, i, kl);
			return -1;
		}
		if (vl > PAY_META_VAL_MAX) {
			snprintf(msg, msglen,
			    "metadata value of key \"%s\" is too long (%zu bytes, at most %d)",
			    utf8_valid(m[i].key) ? m[i].key : "?", vl, PAY_META_VAL_MAX);
			return -1;
		}
		if (!utf8_valid(m[i].key) || (vl && !utf8_valid(m[i].value))) {
			snprintf(msg, msglen, "metadata keys and values must be valid UTF-8");
			return -1;
		}
	}
	return 0;
}

int
pay_validate_authorize(const struct pay_request *r, char *msg, size_t msglen)
{
	size_t n;

	if (validate_key(r->idempotency_key, msg, msglen) < 0)
		return -1;
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
	if (r->capture_method < PAYMENT__V1__CAPTURE_METHOD__CAPTURE_METHOD_UNSPECIFIED ||
	    r->capture_method > PAYMENT__V1__CAPTURE_METHOD__CAPTURE_METHOD_MANUAL) {
		snprintf(
		    msg, msglen, "capture_method %d is not a CaptureMethod", r->capture_method);
		return -1;
	}
	if (r->hold_ttl_seconds < 0 || r->hold_ttl_seconds > PAY_HOLD_TTL_MAX) {
		snprintf(msg, msglen,
		    "hold_ttl_seconds must be 0 (the default) or 1 to %d, got %lld",
		    PAY_HOLD_TTL_MAX, (long long)r->hold_ttl_seconds);
		return -1;
	}
	if (r->hold_ttl_seconds != 0 &&
	    r->capture_method != PAYMENT__V1__CAPTURE_METHOD__CAPTURE_METHOD_MANUAL) {
		snprintf(msg, msglen, "hold_ttl_seconds applies only to capture_method MANUAL");
		return -1;
	}
	return validate_metadata(r->metadata, r->n_metadata, msg, msglen);
}

int
pay_validate_op(const char *key, const char *payment_id, int64_t amount_cents, const char *reason,
    char *msg, size_t msglen)
{
	size_t n = reason ? strlen(reason) : 0;

	if (validate_key(key, msg, msglen) < 0)
		return -1;
	if (pay_validate_id("payment_id", payment_id, PAY_ID_MAX, msg, msglen) < 0)
		return -1;
	if (amount_cents < 0) {
		snprintf(msg, msglen, "amount_cents must not be negative (0 means all), got %lld",
		    (long long)amount_cents);
		return -1;
	}
	if (n > PAY_REASON_MAX) {
		snprintf(
		    msg, msglen, "reason is too long (%zu bytes, at most %d)", n, PAY_REASON_MAX);
		return -1;
	}
	if (n && !utf8_valid(reason)) {
		snprintf(msg, msglen, "reason must be valid UTF-8");
		return -1;
	}
	return 0;
}

static int
meta_cmp(const struct pay_meta *a, const struct pay_meta *b)
{
	return strcmp(a->key ? a->key : "", b->key ? b->key : "");
}

void
pay_metadata_canon(struct pay_meta *m, size_t *n)
{
	size_t i, j, out;
	struct pay_meta t;

	/* Insertion sort: stable, so of equal keys the last sent stays last;
	 * n is at most a few dozen before validation refuses it (and the
	 * wire limit bounds it anyway). */
	for (i = 1; i < *n; i++) {
		t = m[i];
		for (j = i; j > 0 && meta_cmp(&m[j - 1], &t) > 0; j--)
			m[j] = m[j - 1];
		m[j] = t;
	}
	for (i = 0, out = 0; i < *n; i++) {
		if (i + 1 < *n && meta_cmp(&m[i], &m[i + 1]) == 0)
			continue; /* a later value of the same key wins */
		m[out++] = m[i];
	}
	*n = out;
}

/* Reads "<decimal>:" at *s; the length, or -1. */
static long
read_len(const char **s)
{
	long v = 0;
	const char *p = *s;

	if (*p < '0' || *p > '9')
		return -1;
	while (*p >= '0' && *p <= '9') {
		v = v * 10 + (*p++ - '0');
		if (v > 1 << 20)
			return -1;
	}
	if (*p++ != ':')
		return -1;
	*s = p;
	return v;
}

int
pay_metadata_decode(const char *enc, char *buf, size_t buflen, struct pay_meta *out, size_t max)
{
	const char *base = enc ? enc : "", *s = base;
	size_t used = 0, n = 0, end = strlen(s);
	long len;
	int half;

	if (buflen < end + 1)
		return -1;
	while (*s) {
		if (n == max)
			return -1;
		for (half = 0; half < 2; half++) {
			len = read_len(&s);
			if (len < 0 || (size_t)len > end - (size_t)(s - base))
				return -1;
			memcpy(buf + used, s, (size_t)len);
			buf[used + (size_t)len] = '\0';
			if (half == 0)
				out[n].key = buf + used;
			else
				out[n].value = buf + used;
			used += (size_t)len + 1;
			s += len;
		}
		n++;
	}
	return (int)n;
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
	/* The lifecycle fields only when not the defaults, so a plain payment
	 * keeps the fingerprint it had before they existed (its key still
	 * replays across the upgrade). */
	if (r->capture_method == PAYMENT__V1__CAPTURE_METHOD__CAPTURE_METHOD_MANUAL ||
	    r->hold_ttl_seconds != 0 || r->n_metadata > 0) {
		uint8_t b[8];
		uint64_t t = (uint64_t)r->hold_ttl_seconds;
		size_t j;

		EVP_DigestUpdate(ctx, "lifecycle", 9);
		put_field(ctx, pay_capture_method_name(r->capture_method));
		for (i = 0; i < 8; i++)
			b[i] = (uint8_t)(t >> (56 - 8 * i));
		EVP_DigestUpdate(ctx, b, sizeof(b));
		for (i = 0; i < 4; i++)
			b[i] = (uint8_t)(r->n_metadata >> (24 - 8 * i));
		EVP_DigestUpdate(ctx, b, 4);
		for (j = 0; j < r->n_metadata; j++) {
			put_field(ctx, r->metadata[j].key);
			put_field(ctx, r->metadata[j].value);
		}
	}
	if (EVP_DigestFinal_ex(ctx, out, &olen) != 1 || olen != 32)
		abort();
}

void
pay_op_fingerprint(enum pay_op op, const char *payment_id, int64_t amount_cents, const char *reason,
    uint8_t out[32])
{
	static const char *const names[] = { "capture", "void", "refund" };
	EVP_MD_CTX *ctx;
	uint8_t amt[8];
	unsigned int olen = 32;
	uint64_t a = (uint64_t)amount_cents;
	int i;

	pay_init();
	ctx = fp_ctx;
	for (i = 0; i < 8; i++)
		amt[i] = (uint8_t)(a >> (56 - 8 * i));
	if (EVP_DigestInit_ex(ctx, fp_md, NULL) != 1)
		abort();
	EVP_DigestUpdate(ctx, "paymentd.op.v1", 14);
	put_field(ctx, names[op]);
	put_field(ctx, payment_id);
	EVP_DigestUpdate(ctx, amt, sizeof(amt));
	put_field(ctx, reason);
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
		{ "INVALID_STATE",
		    PAYMENT__V1__PAYMENT_ERROR_CODE__PAYMENT_ERROR_CODE_INVALID_STATE },
		{ "AMOUNT_EXCEEDS_REMAINING",
		    PAYMENT__V1__PAYMENT_ERROR_CODE__PAYMENT_ERROR_CODE_AMOUNT_EXCEEDS_REMAINING },
		{ "BALANCE_LIMIT",
		    PAYMENT__V1__PAYMENT_ERROR_CODE__PAYMENT_ERROR_CODE_BALANCE_LIMIT },
	};
	size_t i;

	if (name == NULL)
		return PAYMENT__V1__PAYMENT_ERROR_CODE__PAYMENT_ERROR_CODE_UNSPECIFIED;
	for (i = 0; i < ARRAY_LEN(map); i++)
		if (strcmp(map[i].n, name) == 0)
			return map[i].v;
	return PAYMENT__V1__PAYMENT_ERROR_CODE__PAYMENT_ERROR_CODE_UNSPECIFIED;
}

static const struct {
	const char *n;
	int v;
} statuses[] = {
	{ "AUTHORIZED", PAYMENT__V1__PAYMENT_STATUS__PAYMENT_STATUS_AUTHORIZED },
	{ "DECLINED", PAYMENT__V1__PAYMENT_STATUS__PAYMENT_STATUS_DECLINED },
	{ "CAPTURED", PAYMENT__V1__PAYMENT_STATUS__PAYMENT_STATUS_CAPTURED },
	{ "VOIDED", PAYMENT__V1__PAYMENT_STATUS__PAYMENT_STATUS_VOIDED },
	{ "EXPIRED", PAYMENT__V1__PAYMENT_STATUS__PAYMENT_STATUS_EXPIRED },
};

int
pay_status_from_name(const char *name)
{
	size_t i;

	for (i = 0; name && i < ARRAY_LEN(statuses); i++)
		if (strcmp(statuses[i].n, name) == 0)
			return statuses[i].v;
	return PAYMENT__V1__PAYMENT_STATUS__PAYMENT_STATUS_UNSPECIFIED;
}

const char *
pay_status_name(int status)
{
	size_t i;

	for (i = 0; i < ARRAY_LEN(statuses); i++)
		if (statuses[i].v == status)
			return statuses[i].n;
	return NULL;
}

const char *
pay_capture_method_name(int m)
{
	return m == PAYMENT__V1__CAPTURE_METHOD__CAPTURE_METHOD_MANUAL ? "MANUAL" : "AUTOMATIC";
}

int
pay_capture_method_from_name(const char *name)
{
	if (name && strcmp(name, "MANUAL") == 0)
		return PAYMENT__V1__CAPTURE_METHOD__CAPTURE_METHOD_MANUAL;
	if (name && strcmp(name, "AUTOMATIC") == 0)
		return PAYMENT__V1__CAPTURE_METHOD__CAPTURE_METHOD_AUTOMATIC;
	return PAYMENT__V1__CAPTURE_METHOD__CAPTURE_METHOD_UNSPECIFIED;
}
