/* SPDX-License-Identifier: MIT */
/*
 * test_log.c — daemon/common/log.c: JSON escaping and truncation.
 */
#include <check.h>
#include <string.h>

#include "unit.h"
#include "tests/lib/testlib.h"
#include "common/log.h"

START_TEST(log_escape_and_truncate)
{
	char out[64];

	log_json_escape(out, sizeof(out), "a\"b\\c\nd\x01", 100);
	ck_assert_str_eq(out, "a\\\"b\\\\c\\nd\\u0001");
	log_json_escape(out, sizeof(out), "abcdefghij", 4);
	ck_assert_str_eq(out, "abcd...");
	log_json_escape(out, sizeof(out), "x\xffy", 100);
	ck_assert_str_eq(out, "x\\ufffdy");
	log_json_escape(out, sizeof(out), "caf\xc3\xa9", 100);
	ck_assert_str_eq(out, "caf\xc3\xa9");
	log_json_escape(out, 8, "0123456789", 100); /* bounded by dst */
	ck_assert(strlen(out) < 8);
}
END_TEST

Suite *
log_suite(void)
{
	const TTest *const tests[] = {
		log_escape_and_truncate,
		NULL,
	};

	return tl_suite("log", 0, tests);
}
