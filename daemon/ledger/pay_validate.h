/* SPDX-License-Identifier: MIT */
/*
 * pay_validate.h — pure request logic of AuthorizePayment, kept free of
 * grpc and libpq so it is unit-tested directly and fuzzed.
 *
 * Contract:
 *  - pay_validate_authorize() decides INVALID_ARGUMENT: missing or malformed
 *    fields. Amount <= 0 is NOT rejected here: it is a business decline
 *    (INVALID_AMOUNT) recorded by the ledger.
 *  - pay_fingerprint() is SHA-256 over a length-prefixed encoding of the
 *    parameters that define "the same request" (never the key itself), so
 *    no two different parameter tuples share an encoding.
 *  - pay_ulid() makes a 26-char ULID (48-bit ms time + 80 random bits).
 *  - pay_error_code_from_name()/pay_status_from_name() map the ledger's
 *    text codes to the proto enums; unknown text maps to UNSPECIFIED.
 */
#ifndef PAYMENTD_PAY_VALIDATE_H
#define PAYMENTD_PAY_VALIDATE_H

#include <stddef.h>
#include <stdint.h>

#define PAY_KEY_MAX     128
#define PAY_ACCOUNT_MAX 64
#define PAY_DESC_MAX    1024
#define PAY_ID_MAX      64
#define PAY_CORR_MAX    128
#define PAY_ULID_LEN    26

struct pay_request {
	const char *idempotency_key;
	const char *payer;
	const char *payee;
	int64_t amount_cents;
	const char *currency;
	const char *description;
};

int pay_validate_authorize(const struct pay_request *r, char *msg, size_t msglen);
/* Validates an id argument of GetPayment/GetAccountBalance. */
int pay_validate_id(const char *field, const char *id, size_t max, char *msg, size_t msglen);
void pay_fingerprint(const struct pay_request *r, uint8_t out[32]);
int pay_ulid(char out[PAY_ULID_LEN + 1]);
int pay_ulid_at(int64_t ms, const uint8_t rnd[10], char out[PAY_ULID_LEN + 1]);
/* Optional: prepares pay_fingerprint()'s digest (call before a sandbox). */
void pay_init(void);
/* Accepts a client-supplied correlation id if it is 1..128 printable ASCII
 * characters from [A-Za-z0-9._:-]; otherwise generates a fresh one. */
void pay_correlation_id(const char *in, char out[PAY_CORR_MAX + 1]);
/* utf8_valid() (common/utf8.h) under the name the unit tests use. */
int pay_utf8_valid(const char *s);
int pay_error_code_from_name(const char *name);
int pay_status_from_name(const char *name);

#endif
