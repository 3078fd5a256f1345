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
 *  - Metadata (AuthorizePayment): pay_metadata_canon() puts the entries in
 *    canonical order (bytewise by key, a repeated key's last value wins,
 *    as protobuf maps do) before validation and fingerprinting, so the
 *    same map sent in any order is the same request.
 *  - Capture/Void/Refund: pay_validate_op() and pay_op_fingerprint(), over
 *    the operation's name and its parameters.
 */
#ifndef PAYMENTD_PAY_VALIDATE_H
#define PAYMENTD_PAY_VALIDATE_H

#include <stddef.h>
#include <stdint.h>

#define PAY_KEY_MAX      128
#define PAY_ACCOUNT_MAX  64
#define PAY_DESC_MAX     1024
#define PAY_ID_MAX       64
#define PAY_CORR_MAX     128
#define PAY_ULID_LEN     26
#define PAY_META_ENTRIES 20
#define PAY_META_KEY_MAX 40
#define PAY_META_VAL_MAX 500
#define PAY_REASON_MAX   500
#define PAY_HOLD_TTL_MAX 2592000 /* 30 days */

struct pay_meta {
	const char *key, *value;
};

struct pay_request {
	const char *idempotency_key;
	const char *payer;
	const char *payee;
	int64_t amount_cents;
	const char *currency;
	const char *description;
	int capture_method;        /* Payment__V1__CaptureMethod; 0 = AUTOMATIC */
	int64_t hold_ttl_seconds;  /* MANUAL only: 0 = HOLD_TTL_SECONDS, 1..30 days */
	struct pay_meta *metadata; /* canonical after pay_metadata_canon() */
	size_t n_metadata;
};

/* Sorts m[0..*n) by key and drops all but the last value of a repeated key. */
void pay_metadata_canon(struct pay_meta *m, size_t *n);
/* Decodes SQL metadata_text() ("<len>:<key><len>:<value>"...) into at
 * most max entries pointing into buf, which needs strlen(enc) + 1 bytes.
 * The count, or -1 when enc is malformed or has more than max entries. */
int
pay_metadata_decode(const char *enc, char *buf, size_t buflen, struct pay_meta *out, size_t max);

enum pay_op { PAY_OP_CAPTURE, PAY_OP_VOID, PAY_OP_REFUND };
/* INVALID_ARGUMENT checks of CapturePayment (reason NULL), VoidPayment
 * (amount 0) and RefundPayment requests. */
int pay_validate_op(const char *key, const char *payment_id, int64_t amount_cents,
    const char *reason, char *msg, size_t msglen);
void pay_op_fingerprint(enum pay_op op, const char *payment_id, int64_t amount_cents,
    const char *reason, uint8_t out[32]);
/* "AUTOMATIC" / "MANUAL" (UNSPECIFIED is AUTOMATIC), and back (NULL or
 * unknown: UNSPECIFIED). */
const char *pay_capture_method_name(int m);
int pay_capture_method_from_name(const char *name);
/* The ledger's name of a PaymentStatus a payment can have, else NULL. */
const char *pay_status_name(int status);

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
