/* SPDX-License-Identifier: MIT */
/*
 * utf8.h — the one UTF-8 validator (libc only, no allocation).
 *
 * Contract: "valid" is RFC 3629 UTF-8: no overlong forms, no surrogates
 * (U+D800..U+DFFF), nothing above U+10FFFF, no truncated sequence. NUL
 * ends a string for the functions that take one.
 *  - utf8_seq_len() is the length (1..4) of the valid sequence at p, of
 *    which at most n bytes may be read (n >= 1), or 0 if none starts there.
 *  - utf8_valid() says whether all of s is valid.
 *  - utf8_chars() counts the code points of s (its bytes that are not
 *    continuation bytes; meant for strings already known to be valid).
 *  - utf8_cut() is the longest prefix length <= max of s that does not
 *    split a sequence (strlen(s) when that fits).
 */
#ifndef PAYMENTD_UTF8_H
#define PAYMENTD_UTF8_H

#include <stddef.h>

size_t utf8_seq_len(const char *p, size_t n);
int utf8_valid(const char *s);
size_t utf8_chars(const char *s);
size_t utf8_cut(const char *s, size_t max);

#endif
