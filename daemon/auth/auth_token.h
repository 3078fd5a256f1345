/* SPDX-License-Identifier: MIT */
/*
 * auth_token.h — API bearer tokens: making one, checking its shape,
 * hashing it for storage and lookup.
 *
 * Contract: a token is "pd_" followed by the unpadded base64url encoding
 * (RFC 4648 §5) of 32 bytes from getrandom(2): AUTH_TOKEN_LEN (46)
 * characters. The database keeps only auth_token_hash(): the lowercase-hex
 * SHA-256 of the whole token string, "pd_" included, and the hint (the 8
 * characters after "pd_") so operators can tell tokens apart.
 * auth_token_wellformed() accepts exactly the strings auth_token_new() can
 * produce (prefix, length, alphabet, and the canonical last character whose
 * two unused bits are zero), so a malformed header is refused before any
 * lookup.
 *
 * Free of libpq and safe under the worker's seccomp filter: no syscall but
 * getrandom(2) (in auth_token_new) and memory allocation. Call
 * auth_token_init() before the filter is installed: OpenSSL's first fetch
 * of SHA-256 may read its configuration file. Everything else is
 * thread-safe once it has run.
 */
#ifndef PAYMENTD_AUTH_TOKEN_H
#define PAYMENTD_AUTH_TOKEN_H

#include <stddef.h>

#define AUTH_TOKEN_PREFIX     "pd_"
#define AUTH_TOKEN_PREFIX_LEN 3
#define AUTH_TOKEN_RAW_BYTES  32
/* 32 bytes in unpadded base64: ceil(32 * 4 / 3) characters. */
#define AUTH_TOKEN_B64_LEN 43
#define AUTH_TOKEN_LEN     (AUTH_TOKEN_PREFIX_LEN + AUTH_TOKEN_B64_LEN)
/* Lowercase hex of a SHA-256, plus the NUL. */
#define AUTH_TOKEN_HASH_HEX 65
#define AUTH_TOKEN_HINT_LEN 8

/* Fetches SHA-256 from OpenSSL once; idempotent. Aborts if OpenSSL has no
 * SHA-256 (a broken installation, not a runtime condition). */
void auth_token_init(void);

/* A fresh token into out (AUTH_TOKEN_LEN characters and a NUL). 0, or -1
 * with errno when getrandom(2) fails (out is then an empty string). */
int auth_token_new(char out[AUTH_TOKEN_LEN + 1]);

/* 1 if s[0..len) has the exact shape of a token, else 0. s need not be
 * NUL-terminated; embedded NULs make it malformed. */
int auth_token_wellformed(const char *s, size_t len);

/* Lowercase-hex SHA-256 of s[0..len) into out (64 characters and a NUL):
 * the value stored in client_credentials for kind 'token'. */
void auth_token_hash(const char *s, size_t len, char out[AUTH_TOKEN_HASH_HEX]);

/* The hint of a well-formed token: its AUTH_TOKEN_HINT_LEN characters after
 * the prefix, NUL-terminated. */
void auth_token_hint(const char *token, char out[AUTH_TOKEN_HINT_LEN + 1]);

#endif
