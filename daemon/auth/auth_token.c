/* SPDX-License-Identifier: MIT */
/*
 * auth_token.c — API bearer tokens (see auth_token.h): generation from
 * getrandom(2), the shape check, the stored SHA-256 and the hint.
 */
#include "auth_token.h"
#include "common/util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Fetched once: EVP_sha256() would re-fetch from the provider on every
 * digest, and the first fetch may read openssl.cnf, which a sandboxed
 * worker cannot open. */
static EVP_MD *token_md;

void
auth_token_init(void)
{
	if (token_md == NULL && (token_md = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL)
		abort();
}

/* Unpadded base64url of n bytes into out (NUL-terminated). */
static void
b64url_encode(const uint8_t *in, size_t n, char *out)
{
	size_t i;
	uint32_t v;

	for (i = 0; i + 3 <= n; i += 3) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		*out++ = b64url[v >> 18];
		*out++ = b64url[(v >> 12) & 63];
		*out++ = b64url[(v >> 6) & 63];
		*out++ = b64url[v & 63];
	}
	if (n - i == 1) {
		v = (uint32_t)in[i] << 16;
		*out++ = b64url[v >> 18];
		*out++ = b64url[(v >> 12) & 63];
	} else if (n - i == 2) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		*out++ = b64url[v >> 18];
		*out++ = b64url[(v >> 12) & 63];
		*out++ = b64url[(v >> 6) & 63];
	}
	*out = '\0';
}

/* The 6-bit value of a base64url character, or -1. */
static int
b64url_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

int
auth_token_new(char out[AUTH_TOKEN_LEN + 1])
{
	uint8_t raw[AUTH_TOKEN_RAW_BYTES];
	int rc = -1;

	out[0] = '\0';
	if (util_random(raw, sizeof(raw)) < 0)
		goto out;
	memcpy(out, AUTH_TOKEN_PREFIX, AUTH_TOKEN_PREFIX_LEN);
	b64url_encode(raw, sizeof(raw), out + AUTH_TOKEN_PREFIX_LEN);
	rc = 0;
out:
	/* The secret must not outlive its encoding on the stack. */
	explicit_bzero(raw, sizeof(raw));
	return rc;
}

int
auth_token_wellformed(const char *s, size_t len)
{
	size_t i;
	int v = 0;

	if (s == NULL || len != AUTH_TOKEN_LEN ||
	    memcmp(s, AUTH_TOKEN_PREFIX, AUTH_TOKEN_PREFIX_LEN) != 0)
		return 0;
	for (i = AUTH_TOKEN_PREFIX_LEN; i < len; i++) {
		v = b64url_value((unsigned char)s[i]);
		if (v < 0)
			return 0;
	}
	/* 43 characters carry 258 bits for 256: the last one encodes 4 data
	 * bits and two zero bits. Another last character cannot come from
	 * auth_token_new() and would be a second spelling of the same bytes. */
	return (v & 3) == 0;
}

void
auth_token_hash(const char *s, size_t len, char out[AUTH_TOKEN_HASH_HEX])
{
	unsigned char md[32];
	unsigned int ml = sizeof(md);

	auth_token_init();
	if (EVP_Digest(s, len, md, &ml, token_md, NULL) != 1 || ml != sizeof(md))
		abort();
	util_hex(md, sizeof(md), out);
}

void
auth_token_hint(const char *token, char out[AUTH_TOKEN_HINT_LEN + 1])
{
	memcpy(out, token + AUTH_TOKEN_PREFIX_LEN, AUTH_TOKEN_HINT_LEN);
	out[AUTH_TOKEN_HINT_LEN] = '\0';
}
