/* SPDX-License-Identifier: MIT */
/*
 * test_auth_token.c — daemon/auth/auth_token.c: a new token has the
 * documented shape and is the base64url of 32 bytes (decoded back with
 * OpenSSL's base64, not our encoder); tokens do not repeat; the shape check
 * accepts exactly that shape (prefix, length, alphabet, canonical last
 * character, no NUL) and rejects its near misses; the hash is SHA-256 in
 * lowercase hex (checked against the FIPS 180-2 vector and OpenSSL) and the
 * hint is the 8 characters after the prefix.
 */
#include <check.h>
#include <string.h>
#include <openssl/evp.h>

#include "auth/auth_token.h"
#include "unit_suites_extra.h"
#include "tests/lib/testlib.h"

/* The 32 bytes a token encodes, decoded by OpenSSL after turning base64url
 * back into padded standard base64; -1 if OpenSSL rejects it. */
static int
decode_token(const char *tok, unsigned char out[33])
{
	char b64[48];
	unsigned char buf[36];
	size_t i;
	int n;

	for (i = 0; i < AUTH_TOKEN_B64_LEN; i++) {
		char c = tok[AUTH_TOKEN_PREFIX_LEN + i];
		b64[i] = c == '-' ? '+' : c == '_' ? '/' : c;
	}
	b64[AUTH_TOKEN_B64_LEN] = '=';
	b64[AUTH_TOKEN_B64_LEN + 1] = '\0';
	n = EVP_DecodeBlock(buf, (const unsigned char *)b64, AUTH_TOKEN_B64_LEN + 1);
	/* EVP_DecodeBlock counts the padding byte as data: 33 for 32. */
	if (n != 33)
		return -1;
	memcpy(out, buf, 33);
	return 0;
}

START_TEST(new_token_shape)
{
	char tok[AUTH_TOKEN_LEN + 1];
	unsigned char raw[33];
	char again[48];
	size_t i;

	ck_assert_int_eq(auth_token_new(tok), 0);
	ck_assert_uint_eq(strlen(tok), 46);
	ck_assert_int_eq(AUTH_TOKEN_LEN, 46);
	ck_assert(strncmp(tok, "pd_", 3) == 0);
	for (i = 3; i < strlen(tok); i++)
		ck_assert_msg(
		    strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
		        tok[i]) != NULL,
		    "%s: byte %zu is not base64url", tok, i);
	ck_assert_msg(auth_token_wellformed(tok, strlen(tok)), "%s is not well-formed", tok);
	/* Decoding and re-encoding with OpenSSL gives the same characters: the
	 * token is the canonical encoding of 32 bytes. */
	ck_assert_msg(decode_token(tok, raw) == 0, "OpenSSL cannot decode %s", tok);
	ck_assert_int_eq(EVP_EncodeBlock((unsigned char *)again, raw, 32), 44);
	for (i = 0; i < 43; i++) {
		char c = again[i] == '+' ? '-' : again[i] == '/' ? '_' : again[i];
		ck_assert_msg(c == tok[3 + i], "%s re-encodes as %s", tok, again);
	}
	ck_assert_int_eq(again[43], '=');
}
END_TEST

START_TEST(new_tokens_differ)
{
	enum { N = 2000 };
	static char toks[N][AUTH_TOKEN_LEN + 1];
	int i, j;
	size_t first_seen[64] = { 0 };
	const char *alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

	for (i = 0; i < N; i++) {
		ck_assert_int_eq(auth_token_new(toks[i]), 0);
		first_seen[strchr(alpha, toks[i][3]) - alpha]++;
	}
	for (i = 0; i < N; i++)
		for (j = i + 1; j < N; j++)
			ck_assert_msg(
			    strcmp(toks[i], toks[j]) != 0, "token %d repeats token %d", j, i);
	/* 2000 uniform draws over 64 first characters: each is expected ~31
	 * times; a missing one (p < 2e-12) means the bytes are not random. */
	for (i = 0; i < 64; i++)
		ck_assert_msg(first_seen[i] > 0, "first character %c never drawn", alpha[i]);
}
END_TEST

START_TEST(wellformed_accepts)
{
	/* 32 zero bytes, 32 0xff bytes, and the last character's four data
	 * bits set with its two padding bits clear ('w' = 48 = 0b110000). */
	const char *good[] = {
		"pd_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"pd___________________________________________8",
		"pd_0123456789abcdefghijklmnopqrstuvwxyzABCD-_w",
	};
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ck_assert_msg(
		    auth_token_wellformed(good[i], strlen(good[i])), "%s rejected", good[i]);
}
END_TEST

START_TEST(wellformed_rejects)
{
	const char *bad[] = {
		"",
		"pd_",
		"pd_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",   /* 42 characters */
		"pd_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", /* 44 */
		"PD_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"pd-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"xx_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"pd_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+", /* standard base64 */
		"pd_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/AA",
		"pd_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", /* padding */
		"pd_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA AAAAAAAAAAA", /* a blank */
		"pd_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB", /* padding bits set */
		"pd_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA_",
		"pd_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\xc3",
	};
	const char nul[] = "pd_AAAAAAAAAAAAAAAAAAAA\0AAAAAAAAAAAAAAAAAAAAAA";
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(
		    !auth_token_wellformed(bad[i], strlen(bad[i])), "\"%s\" accepted", bad[i]);
	ck_assert_uint_eq(sizeof(nul) - 1, AUTH_TOKEN_LEN);
	ck_assert(!auth_token_wellformed(nul, sizeof(nul) - 1));
	ck_assert(!auth_token_wellformed(NULL, 0));
	/* The length is the caller's: a longer buffer with a good prefix is
	 * not a token, nor is a good token cut short. */
	ck_assert(!auth_token_wellformed("pd_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAxyz", 49));
	ck_assert(!auth_token_wellformed("pd_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 45));
}
END_TEST

START_TEST(hash_is_sha256_hex)
{
	char h[AUTH_TOKEN_HASH_HEX], tok[AUTH_TOKEN_LEN + 1], want[65];
	unsigned char md[32];
	unsigned int ml = 32;
	size_t i;

	auth_token_init();
	auth_token_hash("abc", 3, h);
	ck_assert_str_eq(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	auth_token_hash("", 0, h);
	ck_assert_str_eq(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	/* A token's hash covers the whole string, prefix included. */
	ck_assert_int_eq(auth_token_new(tok), 0);
	auth_token_hash(tok, strlen(tok), h);
	ck_assert_int_eq(EVP_Digest(tok, strlen(tok), md, &ml, EVP_sha256(), NULL), 1);
	for (i = 0; i < 32; i++)
		snprintf(want + 2 * i, 3, "%02x", md[i]);
	ck_assert_str_eq(h, want);
	ck_assert_uint_eq(strlen(h), 64);
	ck_assert_uint_eq(strspn(h, "0123456789abcdef"), 64);
}
END_TEST

START_TEST(hint_follows_prefix)
{
	char hint[AUTH_TOKEN_HINT_LEN + 1];

	auth_token_hint("pd_0123456789abcdefghijklmnopqrstuvwxyzABCD-_w", hint);
	ck_assert_str_eq(hint, "01234567");
}
END_TEST

Suite *
auth_token_suite(void)
{
	const TTest *const tests[] = { new_token_shape, new_tokens_differ, wellformed_accepts,
		wellformed_rejects, hash_is_sha256_hex, hint_follows_prefix, NULL };

	return tl_suite("auth_token", 0, tests);
}
