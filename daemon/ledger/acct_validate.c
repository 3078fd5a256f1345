/* SPDX-License-Identifier: MIT */
/*
 * acct_validate.c — AccountService / statement request validation and
 * RFC 3339 times (see acct_validate.h).
 */
#include "acct_validate.h"
#include "common/utf8.h"

#include <stdio.h>
#include <string.h>

int
acct_validate_metadata(const char *field, size_t n, const char *const *keys,
    const char *const *values, char *msg, size_t msglen)
{
	size_t i, kl, vl;

	if (n > ACCT_META_MAX) {
		snprintf(msg, msglen, "%s has too many entries (%zu, at most %d)", field, n,
		    ACCT_META_MAX);
		return -1;
	}
	for (i = 0; i < n; i++) {
		kl = keys[i] ? strlen(keys[i]) : 0;
		vl = values[i] ? strlen(values[i]) : 0;
		if (kl == 0) {
			snprintf(msg, msglen, "%s: keys must not be empty", field);
			return -1;
		}
		if (!utf8_valid(keys[i])) {
			snprintf(
			    msg, msglen, "%s: key number %zu is not valid UTF-8", field, i + 1);
			return -1;
		}
		if (kl > ACCT_META_KEY_MAX) {
			snprintf(msg, msglen,
			    "%s: key '%.*s...' is too long (%zu bytes, at most %d)", field,
			    (int)utf8_cut(keys[i], 20), keys[i], kl, ACCT_META_KEY_MAX);
			return -1;
		}
		if (vl > 0 && !utf8_valid(values[i])) {
			snprintf(msg, msglen, "%s: the value of '%s' is not valid UTF-8", field,
			    keys[i]);
			return -1;
		}
		if (vl > ACCT_META_VALUE_MAX) {
			snprintf(msg, msglen,
			    "%s: the value of '%s' is too long (%zu bytes, at most %d)", field,
			    keys[i], vl, ACCT_META_VALUE_MAX);
			return -1;
		}
	}
	return 0;
}

int
acct_validate_currency(const char *c, char *msg, size_t msglen)
{
	size_t n = c ? strlen(c) : 0;

	if (n == 0) {
		snprintf(msg, msglen, "currency is required");
		return -1;
	}
	if (n != 3 || c[0] < 'A' || c[0] > 'Z' || c[1] < 'A' || c[1] > 'Z' || c[2] < 'A' ||
	    c[2] > 'Z') {
		snprintf(
		    msg, msglen, "currency must be a 3-letter upper-case ISO 4217 code, e.g. USD");
		return -1;
	}
	return 0;
}

int
acct_validate_overdraft(int64_t cents, char *msg, size_t msglen)
{
	if (cents < 0 || cents > ACCT_BALANCE_BOUND) {
		snprintf(msg, msglen, "overdraft_limit_cents must be between 0 and %lld, got %lld",
		    (long long)ACCT_BALANCE_BOUND, (long long)cents);
		return -1;
	}
	return 0;
}

int
acct_validate_status(const char *s, char *msg, size_t msglen)
{
	if (s == NULL || s[0] == '\0') {
		snprintf(msg, msglen, "status is required (ACTIVE, FROZEN or CLOSED)");
		return -1;
	}
	if (strcmp(s, "ACTIVE") != 0 && strcmp(s, "FROZEN") != 0 && strcmp(s, "CLOSED") != 0) {
		snprintf(msg, msglen, "status must be ACTIVE, FROZEN or CLOSED, got '%.*s'",
		    (int)utf8_cut(s, 20), s);
		return -1;
	}
	return 0;
}

int
acct_validate_reason(const char *r, char *msg, size_t msglen)
{
	size_t n = r ? strlen(r) : 0;

	if (n > ACCT_REASON_MAX) {
		snprintf(
		    msg, msglen, "reason is too long (%zu bytes, at most %d)", n, ACCT_REASON_MAX);
		return -1;
	}
	if (n && !utf8_valid(r)) {
		snprintf(msg, msglen, "reason must be valid UTF-8");
		return -1;
	}
	return 0;
}

/* n decimal digits at s, or -1. */
static int
digits(const char *s, int n)
{
	int v = 0, i;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; H. Hinnant's). */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int
leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int
acct_parse_time(const char *field, const char *s, int64_t *us, char *msg, size_t msglen)
{
	static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int y, mo, d, h, mi, sec, frac = 0, fd = 0, oh = 0, om = 0, sign = 0;
	const char *p;
	int64_t t;

	if (s == NULL || s[0] == '\0') {
		snprintf(msg, msglen, "%s is empty", field);
		return -1;
	}
	if (strlen(s) < 20 || (y = digits(s, 4)) < 0 || s[4] != '-' ||
	    (mo = digits(s + 5, 2)) < 0 || s[7] != '-' || (d = digits(s + 8, 2)) < 0 ||
	    (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || (h = digits(s + 11, 2)) < 0 ||
	    s[13] != ':' || (mi = digits(s + 14, 2)) < 0 || s[16] != ':' ||
	    (sec = digits(s + 17, 2)) < 0)
		goto syntax;
	p = s + 19;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			goto syntax;
		for (; *p >= '0' && *p <= '9'; p++, fd++) {
			if (fd >= 9)
				goto syntax;
			if (fd < 6)
				frac = frac * 10 + (*p - '0');
		}
		for (int k = fd; k < 6; k++)
			frac *= 10;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p == '-' ? -1 : 1;
		if ((oh = digits(p + 1, 2)) < 0 || p[3] != ':' || (om = digits(p + 4, 2)) < 0)
			goto syntax;
		p += 6;
	} else {
		goto syntax;
	}
	if (*p != '\0')
		goto syntax;
	if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] + (mo == 2 && leap(y)) ||
	    h > 23 || mi > 59 || oh > 23 || om > 59) {
		snprintf(msg, msglen, "%s: %s is not a valid date and time", field, s);
		return -1;
	}
	if (sec > 59) {
		snprintf(msg, msglen, "%s: %s: leap seconds are not supported", field, s);
		return -1;
	}
	t = days_from_civil(y, mo, d) * 86400 + (int64_t)h * 3600 + (int64_t)mi * 60 + sec;
	t -= (int64_t)sign * ((int64_t)oh * 3600 + (int64_t)om * 60);
	*us = t * 1000000 + frac;
	return 0;
syntax:
	snprintf(msg, msglen,
	    "%s: expected an RFC 3339 timestamp such as 2026-01-02T15:04:05Z or "
	    "2026-01-02T15:04:05.123456+01:00, got '%.*s'",
	    field, (int)utf8_cut(s, 40), s);
	return -1;
}

void
acct_format_time(int64_t us, char out[ACCT_TIME_LEN + 1])
{
	int64_t secs = us / 1000000, frac = us % 1000000, days, rem, z, era, doe, yoe, doy, mp;
	int64_t y, m, d;
	char tmp[160];

	if (frac < 0) {
		frac += 1000000;
		secs--;
	}
	days = secs / 86400;
	rem = secs % 86400;
	if (rem < 0) {
		rem += 86400;
		days--;
	}
	/* civil_from_days (H. Hinnant) */
	z = days + 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	y = yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	d = doy - (153 * mp + 2) / 5 + 1;
	m = mp + (mp < 10 ? 3 : -9);
	y += m <= 2;
	/* Wide enough for any int64 fields; valid times fill exactly
	 * ACCT_TIME_LEN (years 0001..9999, what acct_parse_time() accepts). */
	snprintf(tmp, sizeof(tmp), "%04lld-%02lld-%02lldT%02lld:%02lld:%02lld.%06lldZ",
	    (long long)y, (long long)m, (long long)d, (long long)(rem / 3600),
	    (long long)(rem / 60 % 60), (long long)(rem % 60), (long long)frac);
	memcpy(out, tmp, ACCT_TIME_LEN);
	out[ACCT_TIME_LEN] = '\0';
}
