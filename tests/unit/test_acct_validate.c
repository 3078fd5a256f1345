/* SPDX-License-Identifier: MIT */
/*
 * test_acct_validate.c — daemon/ledger/acct_validate.c: RFC 3339 times
 * (forms accepted and refused, offsets, fractions, calendar edges) round
 * trip through acct_format_time(); metadata, currency, overdraft, status
 * and reason limits at their edges.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "ledger/acct_validate.h"
#include "unit_suites_extra.h"
#include "tests/lib/testlib.h"

static int64_t
parse_ok(const char *s)
{
	char msg[256];
	int64_t us = 0;

	ck_assert_msg(acct_parse_time("t", s, &us, msg, sizeof(msg)) == 0, "%s: %s", s, msg);
	return us;
}

START_TEST(times_parse_to_microseconds)
{
	ck_assert(parse_ok("1970-01-01T00:00:00Z") == 0);
	ck_assert(parse_ok("1970-01-01T00:00:00.000001Z") == 1);
	ck_assert(parse_ok("1969-12-31T23:59:59.999999Z") == -1);
	ck_assert(parse_ok("2026-12-02T04:44:40.301894Z") == 1796186680301894LL);
	/* Offsets: the same instant three ways; t, z and a space allowed. */
	ck_assert(parse_ok("2026-12-02T05:44:40.301894+01:00") == 1796186680301894LL);
	ck_assert(parse_ok("2026-12-01T23:14:40.301894-05:30") == 1796186680301894LL);
	ck_assert(parse_ok("2026-12-02t04:44:40.301894z") == 1796186680301894LL);
	ck_assert(parse_ok("2026-12-02 04:44:40.301894Z") == 1796186680301894LL);
	/* Fractions: 1..9 digits, past the microsecond dropped. */
	ck_assert(parse_ok("2000-01-01T00:00:00.5Z") == 946684800500000LL);
	ck_assert(parse_ok("2000-01-01T00:00:00.123456789Z") == 946684800123456LL);
	/* Calendar edges. */
	ck_assert(parse_ok("2024-02-29T00:00:00Z") == 1709164800000000LL);
	ck_assert(parse_ok("2000-02-29T12:00:00Z") == 951825600000000LL);
	ck_assert(parse_ok("0001-01-01T00:00:00Z") == -62135596800000000LL);
	ck_assert(parse_ok("9999-12-31T23:59:59.999999Z") == 253402300799999999LL);
}
END_TEST

START_TEST(bad_times_are_refused_naming_the_field)
{
	static const char *const bad[] = { "", "yesterday", "1764650000", "2026-12-02",
		"2026-12-02T04:44:40", "2026-12-02T04:44Z", "2026-12-02T04:44:40+0100",
		"2026-12-02T04:44:40.Z", "2026-12-02T04:44:40.1234567890Z", "2026-12-02X04:44:40Z",
		"2026-12-02T04:44:40Z ", " 2026-12-02T04:44:40Z", "2026-13-01T00:00:00Z",
		"2026-00-01T00:00:00Z", "2026-02-29T00:00:00Z", "1900-02-29T00:00:00Z",
		"2026-04-31T00:00:00Z", "2026-01-00T00:00:00Z", "2026-01-01T24:00:00Z",
		"2026-01-01T00:60:00Z", "2026-12-31T23:59:60Z", "0000-01-01T00:00:00Z",
		"2026-01-01T00:00:00+24:00", "2026-01-01T00:00:00+01:60", "+2026-01-01T00:00:00Z",
		"2026-01-01T00:00:00-01", NULL };
	char msg[256];
	int64_t us = 42;
	int i;

	for (i = 0; bad[i]; i++) {
		msg[0] = '\0';
		ck_assert_msg(acct_parse_time("as_of", bad[i], &us, msg, sizeof(msg)) < 0,
		    "accepted '%s'", bad[i]);
		ck_assert_msg(strncmp(msg, "as_of", 5) == 0, "message '%s'", msg);
	}
	ck_assert(us == 42);
	ck_assert_int_lt(acct_parse_time("as_of", NULL, &us, msg, sizeof(msg)), 0);
	acct_parse_time("as_of", "2026-12-31T23:59:60Z", &us, msg, sizeof(msg));
	ck_assert(strstr(msg, "leap seconds") != NULL);
}
END_TEST

START_TEST(format_round_trips)
{
	static const int64_t v[] = { 0, 1, -1, 1796186680301894LL, 951825600000000LL,
		-62135596800000000LL, 253402300799999999LL, 1709164799999999LL };
	char out[ACCT_TIME_LEN + 1];
	size_t i;

	acct_format_time(1796186680301894LL, out);
	ck_assert_str_eq(out, "2026-12-02T04:44:40.301894Z");
	acct_format_time(-1, out);
	ck_assert_str_eq(out, "1969-12-31T23:59:59.999999Z");
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		acct_format_time(v[i], out);
		ck_assert_uint_eq(strlen(out), ACCT_TIME_LEN);
		ck_assert_msg(parse_ok(out) == v[i], "%s", out);
	}
	/* Every day of a leap and a common year, at a fixed time of day. */
	for (i = 0; i < (size_t)2 * 366; i++) {
		int64_t t = 1704067200000000LL + (int64_t)i * 86400000000LL + 3723000456LL;

		acct_format_time(t, out);
		ck_assert_msg(parse_ok(out) == t, "%s", out);
	}
}
END_TEST

START_TEST(metadata_limits)
{
	const char *k[21], *v[21];
	char key40[41], key41[42], val500[501], val501[502], msg[256];
	size_t i;

	memset(key40, 'k', 40);
	key40[40] = '\0';
	memset(key41, 'k', 41);
	key41[41] = '\0';
	memset(val500, 'v', 500);
	val500[500] = '\0';
	memset(val501, 'v', 501);
	val501[501] = '\0';
	for (i = 0; i < 21; i++) {
		k[i] = key40;
		v[i] = val500;
	}
	ck_assert_int_eq(acct_validate_metadata("metadata", 0, k, v, msg, sizeof(msg)), 0);
	ck_assert_int_eq(acct_validate_metadata("metadata", 20, k, v, msg, sizeof(msg)), 0);
	ck_assert_int_lt(acct_validate_metadata("metadata", 21, k, v, msg, sizeof(msg)), 0);
	ck_assert(strstr(msg, "too many entries (21, at most 20)") != NULL);
	k[3] = key41;
	ck_assert_int_lt(acct_validate_metadata("metadata", 5, k, v, msg, sizeof(msg)), 0);
	ck_assert(strstr(msg, "41 bytes, at most 40") != NULL);
	k[3] = "";
	ck_assert_int_lt(acct_validate_metadata("metadata", 5, k, v, msg, sizeof(msg)), 0);
	k[3] = "\xc3\x28"; /* invalid UTF-8 */
	ck_assert_int_lt(acct_validate_metadata("metadata", 5, k, v, msg, sizeof(msg)), 0);
	ck_assert(strstr(msg, "UTF-8") != NULL);
	k[3] = "caf\xc3\xa9";
	ck_assert_int_eq(acct_validate_metadata("metadata", 5, k, v, msg, sizeof(msg)), 0);
	v[4] = val501;
	ck_assert_int_lt(acct_validate_metadata("metadata", 5, k, v, msg, sizeof(msg)), 0);
	ck_assert(strstr(msg, "501 bytes, at most 500") != NULL);
	v[4] = "\xed\xa0\x80"; /* a surrogate */
	ck_assert_int_lt(acct_validate_metadata("metadata", 5, k, v, msg, sizeof(msg)), 0);
	v[4] = "";
	ck_assert_int_eq(acct_validate_metadata("metadata", 5, k, v, msg, sizeof(msg)), 0);
}
END_TEST

START_TEST(account_fields)
{
	char msg[256], long_reason[ACCT_REASON_MAX + 2];

	ck_assert_int_eq(acct_validate_currency("USD", msg, sizeof(msg)), 0);
	ck_assert_int_lt(acct_validate_currency("usd", msg, sizeof(msg)), 0);
	ck_assert_int_lt(acct_validate_currency("USDX", msg, sizeof(msg)), 0);
	ck_assert_int_lt(acct_validate_currency("", msg, sizeof(msg)), 0);
	ck_assert_int_eq(acct_validate_overdraft(0, msg, sizeof(msg)), 0);
	ck_assert_int_eq(acct_validate_overdraft(ACCT_BALANCE_BOUND, msg, sizeof(msg)), 0);
	ck_assert_int_lt(acct_validate_overdraft(ACCT_BALANCE_BOUND + 1, msg, sizeof(msg)), 0);
	ck_assert_int_lt(acct_validate_overdraft(-1, msg, sizeof(msg)), 0);
	ck_assert_int_lt(acct_validate_overdraft(INT64_MIN, msg, sizeof(msg)), 0);
	ck_assert_int_eq(acct_validate_status("ACTIVE", msg, sizeof(msg)), 0);
	ck_assert_int_eq(acct_validate_status("FROZEN", msg, sizeof(msg)), 0);
	ck_assert_int_eq(acct_validate_status("CLOSED", msg, sizeof(msg)), 0);
	ck_assert_int_lt(acct_validate_status("closed", msg, sizeof(msg)), 0);
	ck_assert_int_lt(acct_validate_status("", msg, sizeof(msg)), 0);
	memset(long_reason, 'r', sizeof(long_reason) - 1);
	long_reason[sizeof(long_reason) - 1] = '\0';
	ck_assert_int_lt(acct_validate_reason(long_reason, msg, sizeof(msg)), 0);
	long_reason[ACCT_REASON_MAX] = '\0';
	ck_assert_int_eq(acct_validate_reason(long_reason, msg, sizeof(msg)), 0);
	ck_assert_int_eq(acct_validate_reason("", msg, sizeof(msg)), 0);
	ck_assert_int_lt(acct_validate_reason("\xff", msg, sizeof(msg)), 0);
}
END_TEST

Suite *
acct_validate_suite(void)
{
	const TTest *const tests[] = { times_parse_to_microseconds,
		bad_times_are_refused_naming_the_field, format_round_trips, metadata_limits,
		account_fields, NULL };

	return tl_suite("acct_validate", 0, tests);
}
