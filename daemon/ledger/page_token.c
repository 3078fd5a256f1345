/* SPDX-License-Identifier: MIT */
/*
 * page_token.c — keyset page tokens (see page_token.h).
 *
 * Layout before base64url (v1):
 *   version (1) = 1 | ts_us (8, big-endian two's complement) |
 *   id length (1, 1..79) | id | HMAC-SHA256 (32)
 * The MAC covers a domain tag, the scope (length-prefixed, so no scope is
 * a prefix trick of another) and every byte before it. The decoder checks
 * the MAC in constant time before it trusts any field, and rejects base64
 * whose unused low bits are set: otherwise two spellings of one token
 * would both be accepted and a one-character change could pass.
 */
#include "page_token.h"

#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define TOKEN_VERSION 1
#define MAC_LEN       32
#define ID_MAX        (sizeof(((struct page_pos *)0)->id) - 1)
#define RAW_MAX       (1 + 8 + 1 + ID_MAX + MAC_LEN)

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int
b64_val(char c)
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

/* base64url without padding; out must hold 4*ceil(n/3)+1. */
static void
b64_encode(const uint8_t *in, size_t n, char *out)
{
	size_t i, o = 0;

	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = b64[v >> 18 & 63];
		out[o++] = b64[v >> 12 & 63];
		out[o++] = b64[v >> 6 & 63];
		out[o++] = b64[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;
		out[o++] = b64[v >> 18 & 63];
		out[o++] = b64[v >> 12 & 63];
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		out[o++] = b64[v >> 18 & 63];
		out[o++] = b64[v >> 12 & 63];
		out[o++] = b64[v >> 6 & 63];
	}
	out[o] = '\0';
}

/* Strict, canonical decoding: the decoded length, or -1. */
static int
b64_decode(const char *s, uint8_t *out, size_t cap)
{
	size_t n = strlen(s), i, o = 0, rem = n % 4;
	uint32_t v;
	int d[4], k;

	if (n == 0 || rem == 1)
		return -1;
	if ((n / 4) * 3 + (rem ? rem - 1 : 0) > cap)
		return -1;
	for (i = 0; i < n; i += 4) {
		size_t take = n - i < 4 ? n - i : 4;

		for (k = 0; k < 4; k++) {
			d[k] = 0;
			if ((size_t)k < take && (d[k] = b64_val(s[i + (size_t)k])) < 0)
				return -1;
		}
		v = (uint32_t)d[0] << 18 | (uint32_t)d[1] << 12 | (uint32_t)d[2] << 6 |
		    (uint32_t)d[3];
		out[o++] = (uint8_t)(v >> 16);
		if (take == 2) {
			if (v & 0xffff) /* non-canonical: unused bits set */
				return -1;
			break;
		}
		out[o++] = (uint8_t)(v >> 8);
		if (take == 3) {
			if (v & 0xff)
				return -1;
			break;
		}
		out[o++] = (uint8_t)v;
	}
	return (int)o;
}

static int
mac(const uint8_t key[32], const char *scope, const uint8_t *body, size_t n, uint8_t out[MAC_LEN])
{
	static const char tag[] = "paymentd-page-token";
	size_t sl = strlen(scope);
	uint8_t buf[sizeof(tag) + 4 + 512 + RAW_MAX];
	unsigned int ml = MAC_LEN;
	size_t p = 0;

	if (sl > 512)
		return -1;
	p = strlen(tag);
	memcpy(buf, tag, p);
	buf[p++] = 0; /* the tag, a NUL, then the length-prefixed scope */
	buf[p++] = (uint8_t)(sl >> 24);
	buf[p++] = (uint8_t)(sl >> 16);
	buf[p++] = (uint8_t)(sl >> 8);
	buf[p++] = (uint8_t)sl;
	memcpy(buf + p, scope, sl);
	p += sl;
	memcpy(buf + p, body, n);
	p += n;
	if (HMAC(EVP_sha256(), key, 32, buf, p, out, &ml) == NULL || ml != MAC_LEN)
		return -1;
	return 0;
}

static int
id_ok(const char *id, size_t n)
{
	size_t i;

	if (n == 0 || n > ID_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)id[i] < 0x20 || id[i] == 0x7f)
			return 0;
	return 1;
}

int
page_token_encode(
    const uint8_t key[32], const char *scope, const struct page_pos *p, char *out, size_t outlen)
{
	uint8_t raw[RAW_MAX];
	size_t n, idl = strnlen(p->id, sizeof(p->id));
	uint64_t ts = (uint64_t)p->ts_us;
	int i;

	if (!id_ok(p->id, idl))
		return -1;
	n = 0;
	raw[n++] = TOKEN_VERSION;
	for (i = 7; i >= 0; i--)
		raw[n++] = (uint8_t)(ts >> (8 * i));
	raw[n++] = (uint8_t)idl;
	memcpy(raw + n, p->id, idl);
	n += idl;
	if (mac(key, scope, raw, n, raw + n) < 0)
		return -1;
	n += MAC_LEN;
	if (outlen < (n + 2) / 3 * 4 + 1)
		return -1;
	b64_encode(raw, n, out);
	return 0;
}

int
page_token_decode(const uint8_t key[32], const char *scope, const char *tok, struct page_pos *p)
{
	uint8_t raw[RAW_MAX], want[MAC_LEN];
	uint64_t ts = 0;
	size_t idl;
	int n, i;

	if (tok == NULL || strlen(tok) >= PAGE_TOKEN_MAX)
		return -1;
	n = b64_decode(tok, raw, sizeof(raw));
	if (n < 1 + 8 + 1 + 1 + MAC_LEN || raw[0] != TOKEN_VERSION)
		return -1;
	idl = raw[9];
	if ((size_t)n != 1 + 8 + 1 + idl + MAC_LEN)
		return -1;
	if (mac(key, scope, raw, (size_t)n - MAC_LEN, want) < 0 ||
	    CRYPTO_memcmp(want, raw + n - MAC_LEN, MAC_LEN) != 0)
		return -1;
	if (!id_ok((const char *)raw + 10, idl))
		return -1;
	for (i = 1; i <= 8; i++)
		ts = ts << 8 | raw[i];
	p->ts_us = (int64_t)ts;
	memcpy(p->id, raw + 10, idl);
	p->id[idl] = '\0';
	return 0;
}
