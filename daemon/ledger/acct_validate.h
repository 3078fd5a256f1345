/* SPDX-License-Identifier: MIT */
/*
 * acct_validate.h — pure request logic of AccountService and of the
 * statement RPCs (ListAccountEntries, GetAccountBalance.as_of), free of
 * grpc and libpq so it is unit-tested and fuzzed directly.
 *
 * Contract: each validator returns 0, or -1 with a message for the
 * client (INVALID_ARGUMENT) in msg naming the field.
 *  - acct_validate_metadata(): at most ACCT_META_MAX entries, keys 1..40
 *    bytes, values at most 500 bytes, both valid UTF-8 (control
 *    characters are refused on the wire before this runs).
 *  - acct_parse_time(): an RFC 3339 date-time (YYYY-MM-DDTHH:MM:SS, an
 *    optional fraction of up to 9 digits, Z or ±HH:MM; 't', 'z' and a
 *    space for 'T' accepted as RFC 3339 allows), years 0001..9999, no
 *    leap second; *us is microseconds since 1970-01-01T00:00:00Z (digits
 *    past the microsecond are dropped).
 *  - acct_format_time() renders such a value as Postgres and the API
 *    write it: YYYY-MM-DDTHH:MM:SS.ffffffZ.
 */
#ifndef PAYMENTD_ACCT_VALIDATE_H
#define PAYMENTD_ACCT_VALIDATE_H

#include <stddef.h>
#include <stdint.h>

#define ACCT_META_MAX       20
#define ACCT_META_KEY_MAX   40
#define ACCT_META_VALUE_MAX 500
#define ACCT_REASON_MAX     500
/* The balance bound (migrations/0006_lifecycle.sql): 10^17 cents. */
#define ACCT_BALANCE_BOUND 100000000000000000LL
#define ACCT_TIME_LEN      27 /* YYYY-MM-DDTHH:MM:SS.ffffffZ */

int acct_validate_metadata(const char *field, size_t n, const char *const *keys,
    const char *const *values, char *msg, size_t msglen);
int acct_validate_currency(const char *currency, char *msg, size_t msglen);
/* 0..ACCT_BALANCE_BOUND. */
int acct_validate_overdraft(int64_t cents, char *msg, size_t msglen);
/* "ACTIVE", "FROZEN" or "CLOSED". */
int acct_validate_status(const char *status, char *msg, size_t msglen);
/* At most ACCT_REASON_MAX bytes of UTF-8. */
int acct_validate_reason(const char *reason, char *msg, size_t msglen);
int acct_parse_time(const char *field, const char *s, int64_t *us, char *msg, size_t msglen);
void acct_format_time(int64_t us, char out[ACCT_TIME_LEN + 1]);

#endif
