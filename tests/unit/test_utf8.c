/* SPDX-License-Identifier: MIT */
/*
 * test_utf8.c — daemon/common/utf8.c: sequence lengths at the edges of
 * each encoding length, the forms RFC 3629 forbids (overlong, surrogates,
 * past U+10FFFF, truncated), code point counts and cuts that never split
 * a sequence.
 */
#include <check.h>
#include <string.h>

#include "common/utf8.h"
#include "unit_suites_extra.h"
#include "tests/lib/testlib.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

struct seq_case {
	const char *s;
	size_t len; /* utf8_seq_len(s, strlen(s)) */
};

START_TEST(seq_len_at_the_edges)
{
	static const struct seq_case c[] = {
		{ "a", 1 },                 /* ASCII */
		{ "\x7f", 1 },              /* U+007F */
		{ "\xc2\x80", 2 },          /* U+0080 */
		{ "\xdf\xbf", 2 },          /* U+07FF */
		{ "\xe0\xa0\x80", 3 },      /* U+0800 */
		{ "\xed\x9f\xbf", 3 },      /* U+D7FF */
		{ "\xee\x80\x80", 3 },      /* U+E000 */
		{ "\xef\xbf\xbf", 3 },      /* U+FFFF */
		{ "\xf0\x90\x80\x80", 4 },  /* U+10000 */
		{ "\xf4\x8f\xbf\xbf", 4 },  /* U+10FFFF */
		{ "\xf0\x9f\x92\xb3z", 4 }, /* only the first sequence counts */
		/* What RFC 3629 forbids: */
		{ "\x80", 0 }, { "\xbf", 0 },                 /* continuation first */
		{ "\xff", 0 }, { "\xf8\x88\x80\x80\x80", 0 }, /* no such lead; 5-byte form */
		{ "\xc0\xaf", 0 }, { "\xc1\xbf", 0 },         /* overlong, 2 bytes */
		{ "\xe0\x80\xaf", 0 }, { "\xe0\x9f\xbf", 0 }, /* overlong, 3 bytes */
		{ "\xf0\x80\x80\xaf", 0 }, { "\xf0\x8f\xbf\xbf", 0 }, /* overlong, 4 */
		{ "\xed\xa0\x80", 0 },                                /* U+D800 */
		{ "\xed\xbf\xbf", 0 },                                /* U+DFFF */
		{ "\xf4\x90\x80\x80", 0 },                            /* U+110000 */
		{ "\xc3\x28", 0 },                                    /* not a continuation */
		{ "\xe2\x82", 0 },                                    /* truncated */
	};
	size_t i;

	for (i = 0; i < N(c); i++)
		ck_assert_msg(utf8_seq_len(c[i].s, strlen(c[i].s)) == c[i].len, "case %zu", i);
	/* n bounds the read as the terminator does. */
	ck_assert_uint_eq(utf8_seq_len("\xe2\x82\xac", 2), 0);
	ck_assert_uint_eq(utf8_seq_len("\xe2\x82\xac", 3), 3);
}
END_TEST

START_TEST(valid_strings)
{
	static const struct seq_case c[] = {
		/* len: 1 valid, 0 not */
		{ "", 1 },
		{ "plain", 1 },
		{ "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x92\xb3", 1 },
		{ "bad \xff utf8", 0 },
		{ "\xc0\xaf", 0 },
		{ "\xed\xa0\x80", 0 },
		{ "\xf4\x90\x80\x80", 0 },
		{ "ends in \xe2\x82", 0 },
		{ "\xe2\x82"
		  "abc",
		    0 },
	};
	size_t i;

	for (i = 0; i < N(c); i++)
		ck_assert_msg(utf8_valid(c[i].s) == (int)c[i].len, "case %zu", i);
}
END_TEST

START_TEST(chars_count_code_points)
{
	static const struct seq_case c[] = {
		/* len: code points */
		{ "", 0 },
		{ "abc", 3 },
		{ "a\xc3\xa9z", 3 },
		{ "\xe2\x82\xac\xf0\x9f\x92\xb3", 2 },
	};
	size_t i;

	for (i = 0; i < N(c); i++)
		ck_assert_msg(utf8_chars(c[i].s) == c[i].len, "case %zu", i);
}
END_TEST

START_TEST(cut_keeps_sequences_whole)
{
	/* a é € 💳: sequences of 1, 2, 3 and 4 bytes, ending at these lengths. */
	const char *s = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x92\xb3";
	const size_t whole[] = { 0, 1, 3, 6, 10 };
	size_t max, k;

	ck_assert_uint_eq(utf8_cut("abc", 10), 3);
	ck_assert_uint_eq(utf8_cut("abc", 2), 2);
	ck_assert_uint_eq(utf8_cut("", 5), 0);
	/* Every cut is the longest prefix of whole sequences that fits. */
	for (max = 0; max <= strlen(s) + 1; max++) {
		for (k = 0; k + 1 < N(whole) && whole[k + 1] <= max; k++)
			;
		ck_assert_msg(utf8_cut(s, max) == whole[k], "max %zu", max);
	}
}
END_TEST

Suite *
utf8_suite(void)
{
	const TTest *const tests[] = { seq_len_at_the_edges, valid_strings, chars_count_code_points,
		cut_keeps_sequences_whole, NULL };

	return tl_suite("utf8", 0, tests);
}
