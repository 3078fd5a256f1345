/* SPDX-License-Identifier: MIT */
/*
 * page_token.h — opaque keyset page tokens for the listing RPCs
 * (ListAccountEntries, ListPayments).
 *
 * Contract: a token carries a position (created_at in µs since the epoch
 * plus the row id that breaks ties) and is bound by HMAC-SHA256 under a
 * 32-byte server key to a scope string, which the caller builds from the
 * listing and every filter that shapes it (e.g. "entries|<account>|<start>|
 * <end>"). The token is base64url without padding, versioned (first byte).
 * page_token_decode() accepts only the exact bytes page_token_encode()
 * made for the same key and scope: any altered character, a foreign
 * scope (another account, other filters), another key, a non-canonical
 * base64 form or a malformed layout is -1, which callers answer with
 * INVALID_ARGUMENT. No libpq, no grpc: unit-tested and fuzzed directly.
 */
#ifndef PAYMENTD_PAGE_TOKEN_H
#define PAYMENTD_PAGE_TOKEN_H

#include <stddef.h>
#include <stdint.h>

/* keyset: created_at in µs since epoch + tie-breaker id */
struct page_pos {
	int64_t ts_us;
	char id[80];
};

/* Longest token page_token_encode() makes, with its NUL. */
#define PAGE_TOKEN_MAX 176

/* Opaque, URL-safe token binding pos to scope; HMAC-SHA256 with key.
 * 0, or -1 when p->id is empty, too long or holds a control character, or
 * out is too small (PAGE_TOKEN_MAX always suffices). */
int page_token_encode(
    const uint8_t key[32], const char *scope, const struct page_pos *p, char *out, size_t outlen);
/* 0, or -1 when the token is malformed, tampered with or minted for
 * another scope (→ INVALID_ARGUMENT). *p is written only on success. */
int
page_token_decode(const uint8_t key[32], const char *scope, const char *tok, struct page_pos *p);

#endif
