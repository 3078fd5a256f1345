/* SPDX-License-Identifier: MIT */
/*
 * utf8.c — UTF-8 validation, counting and cutting (see utf8.h).
 */
#include "utf8.h"

#include <string.h>

/* 10xxxxxx: the second to fourth byte of a sequence. */
static int
is_cont(unsigned char c)
{
	return (c & 0xC0) == 0x80;
}

size_t
utf8_seq_len(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t len, i;
	unsigned int cp;

	if (p[0] < 0x80)
		return 1;
	if ((p[0] & 0xE0) == 0xC0) {
		len = 2;
		cp = p[0] & 0x1F;
	} else if ((p[0] & 0xF0) == 0xE0) {
		len = 3;
		cp = p[0] & 0x0F;
	} else if ((p[0] & 0xF8) == 0xF0) {
		len = 4;
		cp = p[0] & 0x07;
	} else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if (!is_cont(p[i]))
			return 0;
		cp = (cp << 6) | (p[i] & 0x3F);
	}
	/* Overlong forms, surrogates and code points past Unicode are what
	 * lets one text pass a check and mean something else behind it. */
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}

int
utf8_valid(const char *s)
{
	size_t n = strlen(s), i = 0, l;

	while (i < n) {
		if ((l = utf8_seq_len(s + i, n - i)) == 0)
			return 0;
		i += l;
	}
	return 1;
}

size_t
utf8_chars(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += !is_cont((unsigned char)*s);
	return n;
}

size_t
utf8_cut(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n <= max)
		return n;
	/* s[max] is the first byte left out: step back while it is in the
	 * middle of a sequence. */
	while (max > 0 && is_cont((unsigned char)s[max]))
		max--;
	return max;
}
