/* SPDX-License-Identifier: MIT */
/*
 * test_page_token.c — daemon/ledger/page_token.c: tokens round-trip
 * (negative and extreme times, ids up to the limit), every single-byte
 * change of a token is refused, as are a token of another scope or key,
 * truncations, extensions and non-canonical base64, and bad positions
 * cannot be encoded.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "ledger/page_token.h"
#include "unit_suites_extra.h"
#include "tests/lib/testlib.h"

static const uint8_t key[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19,
	20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32 };
static const char *const scope = "entries|acc-payer-001||";

static void
mint(const char *scp, int64_t ts, const char *id, char *tok)
{
	struct page_pos p;

	memset(&p, 0, sizeof(p));
	p.ts_us = ts;
	snprintf(p.id, sizeof(p.id), "%s", id);
	ck_assert_int_eq(page_token_encode(key, scp, &p, tok, PAGE_TOKEN_MAX), 0);
}

START_TEST(round_trip)
{
	static const int64_t ts[] = { 0, 1, -1, 1764650000123456, INT64_MAX, INT64_MIN };
	char id79[80], tok[PAGE_TOKEN_MAX];
	struct page_pos out;
	size_t i, j;

	memset(id79, 'x', 79);
	id79[79] = '\0';
	for (i = 0; i < sizeof(ts) / sizeof(ts[0]); i++) {
		const char *ids[] = { "1", "123456789", "01JDXYZ0000000000000000000", id79 };

		for (j = 0; j < 4; j++) {
			mint(scope, ts[i], ids[j], tok);
			for (const char *c = tok; *c; c++) /* URL-safe, no padding */
				ck_assert(
				    strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				           "0123456789-_",
				        *c) != NULL);
			memset(&out, 0, sizeof(out));
			ck_assert_int_eq(page_token_decode(key, scope, tok, &out), 0);
			ck_assert(out.ts_us == ts[i]);
			ck_assert_str_eq(out.id, ids[j]);
		}
	}
}
END_TEST

START_TEST(every_single_byte_change_is_refused)
{
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/. ";
	char tok[PAGE_TOKEN_MAX], bad[PAGE_TOKEN_MAX];
	struct page_pos out;
	size_t i, k, n, tried = 0;

	mint(scope, 1764650000123456, "4711", tok);
	n = strlen(tok);
	for (i = 0; i < n; i++) {
		for (k = 0; k < sizeof(alphabet) - 1; k++) {
			if (alphabet[k] == tok[i])
				continue;
			memcpy(bad, tok, n + 1);
			bad[i] = alphabet[k];
			ck_assert_msg(page_token_decode(key, scope, bad, &out) < 0,
			    "token with byte %zu changed to '%c' was accepted", i, alphabet[k]);
			tried++;
		}
		/* and every other byte value, control characters included */
		for (k = 1; k < 256; k++) {
			if ((char)k == tok[i])
				continue;
			memcpy(bad, tok, n + 1);
			bad[i] = (char)k;
			ck_assert(page_token_decode(key, scope, bad, &out) < 0);
			tried++;
		}
	}
	ck_assert_uint_gt(tried, n * 250);
	/* Truncated by one character at either end, extended by one. */
	memcpy(bad, tok, n + 1);
	bad[n - 1] = '\0';
	ck_assert_int_lt(page_token_decode(key, scope, bad, &out), 0);
	ck_assert_int_lt(page_token_decode(key, scope, tok + 1, &out), 0);
	for (k = 0; k < 64; k++) {
		memcpy(bad, tok, n + 1);
		bad[n] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[k];
		bad[n + 1] = '\0';
		ck_assert_int_lt(page_token_decode(key, scope, bad, &out), 0);
	}
	ck_assert_int_lt(page_token_decode(key, scope, "", &out), 0);
	ck_assert_int_lt(page_token_decode(key, scope, NULL, &out), 0);
	ck_assert_int_eq(page_token_decode(key, scope, tok, &out), 0);
}
END_TEST

START_TEST(other_scope_or_key_is_refused)
{
	char tok[PAGE_TOKEN_MAX];
	struct page_pos out;
	uint8_t key2[32];

	mint(scope, 42, "7", tok);
	ck_assert_int_lt(page_token_decode(key, "entries|acc-payee-002||", tok, &out), 0);
	ck_assert_int_lt(
	    page_token_decode(key, "entries|acc-payer-001|2026-01-01T00:00:00Z|", tok, &out), 0);
	ck_assert_int_lt(page_token_decode(key, "payments|acc-payer-001|0", tok, &out), 0);
	ck_assert_int_lt(page_token_decode(key, "", tok, &out), 0);
	memcpy(key2, key, sizeof(key2));
	key2[31] ^= 1;
	ck_assert_int_lt(page_token_decode(key2, scope, tok, &out), 0);
	ck_assert_int_eq(page_token_decode(key, scope, tok, &out), 0);
}
END_TEST

START_TEST(bad_positions_are_not_encoded)
{
	struct page_pos p;
	char tok[PAGE_TOKEN_MAX];

	memset(&p, 0, sizeof(p));
	ck_assert_int_lt(page_token_encode(key, scope, &p, tok, sizeof(tok)), 0); /* empty id */
	memset(p.id, 'a', sizeof(p.id));                                          /* no NUL */
	ck_assert_int_lt(page_token_encode(key, scope, &p, tok, sizeof(tok)), 0);
	snprintf(p.id, sizeof(p.id), "a\nb");
	ck_assert_int_lt(page_token_encode(key, scope, &p, tok, sizeof(tok)), 0);
	snprintf(p.id, sizeof(p.id), "12");
	ck_assert_int_lt(page_token_encode(key, scope, &p, tok, 10), 0); /* too small */
	ck_assert_int_eq(page_token_encode(key, scope, &p, tok, sizeof(tok)), 0);
}
END_TEST

Suite *
page_token_suite(void)
{
	const TTest *const tests[] = { round_trip, every_single_byte_change_is_refused,
		other_scope_or_key_is_refused, bad_positions_are_not_encoded, NULL };

	return tl_suite("page_token", 0, tests);
}
