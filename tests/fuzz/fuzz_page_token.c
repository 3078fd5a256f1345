/* SPDX-License-Identifier: MIT */
/*
 * fuzz_page_token.c — libFuzzer harness for the page tokens of the listing
 * RPCs (daemon/ledger/page_token.c): every next_page_token a client sends
 * back reaches page_token_decode() as untrusted text.
 *
 * Contract: never crashes, leaks or trips ASan/UBSan; aborts (a finding)
 * when:
 *  - decode accepts a token (the input, as text, under a fixed key and
 *    scope) and the position it yields is not a NUL-ended id of 1..79
 *    bytes without control characters, or encoding that position again
 *    does not give back the very same token (the contract: only the exact
 *    bytes encode made are accepted), or the same token is also accepted
 *    under another scope or another key;
 *  - a position built from the input (8 bytes of timestamp, then the id)
 *    that encode accepts does not decode to itself, its token is longer
 *    than PAGE_TOKEN_MAX - 1 or not URL-safe base64, a token with one
 *    character changed (which one and to what comes from the input) still
 *    decodes, or it decodes under another scope (a scope that differs by
 *    one trailing byte included);
 *  - encode accepts an id that is empty or holds a control character.
 */
#include "ledger/page_token.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t key_a[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18,
	19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32 };
static const uint8_t key_b[32] = { 32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17,
	16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1 };
static const char *const scope_a = "payments|acc-payer-001|";
static const char *const scope_b = "payments|acc-payer-001|CAPTURED";
static const char *const scope_c = "payments|acc-payer-001|X";

static int
id_ok(const char *id)
{
	size_t n = strnlen(id, sizeof(((struct page_pos *)0)->id));
	size_t i;

	if (n == 0 || n >= sizeof(((struct page_pos *)0)->id))
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)id[i] < 0x20 || id[i] == 0x7f)
			return 0;
	return 1;
}

static int
b64url_ok(const char *t)
{
	for (; *t; t++)
		if (!((*t >= 'A' && *t <= 'Z') || (*t >= 'a' && *t <= 'z') ||
		        (*t >= '0' && *t <= '9') || *t == '-' || *t == '_'))
			return 0;
	return 1;
}

/* The input as a token: decode, and what an accepted one must satisfy. */
static void
check_decode(const uint8_t *data, size_t size)
{
	char *tok = malloc(size + 1), again[PAGE_TOKEN_MAX];
	struct page_pos p, q;

	if (tok == NULL)
		abort();
	memcpy(tok, data, size);
	tok[size] = '\0';
	memset(&p, 0x55, sizeof(p));
	if (page_token_decode(key_a, scope_a, tok, &p) == 0) {
		if (!id_ok(p.id))
			abort();
		if (page_token_encode(key_a, scope_a, &p, again, sizeof(again)) != 0 ||
		    strcmp(again, tok) != 0)
			abort();
		if (page_token_decode(key_a, scope_b, tok, &q) == 0 ||
		    page_token_decode(key_b, scope_a, tok, &q) == 0)
			abort();
	}
	free(tok);
}

/* A position from the input: encode, decode back, tamper. */
static void
check_roundtrip(const uint8_t *data, size_t size)
{
	struct page_pos p, q;
	char tok[PAGE_TOKEN_MAX];
	size_t n, at;
	uint8_t to;

	if (size < 10)
		return;
	memset(&p, 0, sizeof(p));
	memcpy(&p.ts_us, data, 8);
	at = data[8];
	to = data[9];
	data += 10;
	size -= 10;
	n = size < sizeof(p.id) - 1 ? size : sizeof(p.id) - 1;
	memcpy(p.id, data, n);
	p.id[n] = '\0';
	if (page_token_encode(key_a, scope_a, &p, tok, sizeof(tok)) != 0)
		return;
	if (!id_ok(p.id))
		abort();
	if (strlen(tok) > PAGE_TOKEN_MAX - 1 || !b64url_ok(tok))
		abort();
	memset(&q, 0, sizeof(q));
	if (page_token_decode(key_a, scope_a, tok, &q) != 0 || q.ts_us != p.ts_us ||
	    strcmp(q.id, p.id) != 0)
		abort();
	if (page_token_decode(key_a, scope_b, tok, &q) == 0 ||
	    page_token_decode(key_a, scope_c, tok, &q) == 0 ||
	    page_token_decode(key_b, scope_a, tok, &q) == 0)
		abort();
	n = strlen(tok);
	at %= n;
	if ((char)to != tok[at] && to != '\0') {
		tok[at] = (char)to;
		if (page_token_decode(key_a, scope_a, tok, &q) == 0)
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_decode(data, size);
	check_roundtrip(data, size);
	return 0;
}
