/* SPDX-License-Identifier: MIT */
/*
 * relay_unit.c — libcheck unit tests of the relay's pure parts and its
 * journal: journal open/lock/window/cursor/failure/DLQ records and their
 * survival across reopen, a journal write failing loudly, envelope
 * building and validation, topic names, DLQ records, backoff bounds and
 * Postgres array literals. No servers; the journal lives in a temp dir.
 */
#include "wal/journal/journal.h"
#include "wal/relay_envelope.h"
#include "wal/relay_kafka.h"
#include "wal/relay_pg.h"
#include "tests/lib/testlib.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>
#include <sqlite3.h>

static char dir[256];
static char path[300];

static void
setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/relay-unit-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/journal.db", dir);
}

static void
teardown(void)
{
	ck_assert_int_eq(tl_rmtree(dir), 0);
}

static struct journal *
jopen(void)
{
	struct journal *j = NULL;
	char err[256] = "";

	ck_assert_msg(journal_open(path, -1, &j, err, sizeof(err)) == 0, "open: %s", err);
	return j;
}

static struct journal_event
jev(int64_t seq, const char *id, const char *topic, int32_t p)
{
	struct journal_event e;

	memset(&e, 0, sizeof(e));
	e.seq = seq;
	snprintf(e.event_id, sizeof(e.event_id), "%s", id);
	snprintf(e.topic, sizeof(e.topic), "%s", topic);
	e.partition = p;
	return e;
}

static struct journal_offset
joff(const char *topic, int32_t p, int64_t off)
{
	struct journal_offset o;

	memset(&o, 0, sizeof(o));
	snprintf(o.topic, sizeof(o.topic), "%s", topic);
	o.partition = p;
	o.offset = off;
	return o;
}

START_TEST(journal_wal_mode_and_lock)
{
	struct journal *j = jopen(), *j2 = NULL;
	char err[256] = "";
	sqlite3 *db;
	sqlite3_stmt *s;
	int fd;

	/* WAL is a property of the file: another connection sees it. */
	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
	ck_assert_str_eq((const char *)sqlite3_column_text(s, 0), "wal");
	sqlite3_finalize(s);
	sqlite3_close(db);
	/* A second owner is refused, by path and by explicit lock. */
	ck_assert_int_eq(journal_open(path, -1, &j2, err, sizeof(err)), -1);
	ck_assert_ptr_null(j2);
	ck_assert_msg(strstr(err, "locked by another relay") != NULL, "%s", err);
	ck_assert_int_eq(journal_lock(path, &fd, err, sizeof(err)), -1);
	ck_assert_int_eq(fd, -1);
	journal_close(j);
	/* Released on close. */
	ck_assert_int_eq(journal_lock(path, &fd, err, sizeof(err)), 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(journal_open(path, fd, &j2, err, sizeof(err)), 0);
	journal_close(j2);
}
END_TEST

START_TEST(journal_window_roundtrip_and_reload)
{
	struct journal *j = jopen();
	struct journal_event ev[3] = {
		jev(7, "11111111-1111-1111-1111-111111111111", "payments.paymentauthorized", 2),
		jev(8, "22222222-2222-2222-2222-222222222222", "payments.paymentdeclined", 0),
		jev(9, "33333333-3333-3333-3333-333333333333", "payments.dlq", 0),
	}, *got = NULL;
	struct journal_offset start[2] = {
		joff("payments.paymentauthorized", 2, 40), joff("payments.paymentdeclined", 0, 5),
	}, *gs = NULL, *cur = NULL;
	struct journal_dlq dlq[1] = { { 9, "33333333-3333-3333-3333-333333333333",
	    "invalid event: x", 0 } };
	struct journal_offset next[2] = {
		joff("payments.paymentauthorized", 2, 41),
		joff("payments.dlq", 0, 1),
	};
	struct journal_stats st;
	size_t n, ns, nc;
	char err[256] = "";

	ck_assert_int_eq(journal_window_begin(j, ev, 3, start, 2, err, sizeof(err)), 0);
	journal_close(j);
	/* A crash between begin and end: the window is there after reopen. */
	j = jopen();
	ck_assert_int_eq(journal_stats(j, &st, err, sizeof(err)), 0);
	ck_assert_int_eq(st.open_window, 3);
	ck_assert_int_eq(st.synchronous, 2); /* FULL: commits wait for fsync */
	ck_assert_int_eq(journal_window_load(j, &got, &n, &gs, &ns, err, sizeof(err)), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_uint_eq(ns, 2);
	ck_assert_int_eq(got[0].seq, 7);
	ck_assert_str_eq(got[1].event_id, "22222222-2222-2222-2222-222222222222");
	ck_assert_str_eq(got[2].topic, "payments.dlq");
	ck_assert_int_eq(got[0].partition, 2);
	ck_assert_str_eq(gs[0].topic, "payments.paymentauthorized");
	ck_assert_int_eq(gs[0].offset, 40);
	ck_assert_int_eq(gs[1].offset, 5);
	free(got);
	free(gs);

	ck_assert_int_eq(journal_window_end(j, 9, next, 2, dlq, 1, err, sizeof(err)), 0);
	journal_close(j);
	j = jopen();
	ck_assert_int_eq(journal_stats(j, &st, err, sizeof(err)), 0);
	ck_assert_int_eq(st.open_window, 0);
	ck_assert_int_eq(st.max_published_seq, 9);
	ck_assert_int_eq(st.windows, 1);
	ck_assert_int_eq(st.dlq, 1);
	ck_assert_int_eq(journal_window_load(j, &got, &n, &gs, &ns, err, sizeof(err)), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_uint_eq(ns, 0);
	free(got);
	free(gs);
	ck_assert_int_eq(journal_cursors(j, &cur, &nc, err, sizeof(err)), 0);
	ck_assert_uint_eq(nc, 2);
	ck_assert_str_eq(cur[0].topic, "payments.dlq");
	ck_assert_int_eq(cur[0].offset, 1);
	ck_assert_int_eq(cur[1].offset, 41);
	free(cur);
	/* Cursors and the published seq never go back. */
	next[0].offset = 3;
	ck_assert_int_eq(journal_window_end(j, 4, next, 1, NULL, 0, err, sizeof(err)), 0);
	ck_assert_int_eq(journal_cursors_raise(j, next, 1, err, sizeof(err)), 0);
	ck_assert_int_eq(journal_cursors(j, &cur, &nc, err, sizeof(err)), 0);
	ck_assert_int_eq(cur[1].offset, 41);
	free(cur);
	ck_assert_int_eq(journal_stats(j, &st, err, sizeof(err)), 0);
	ck_assert_int_eq(st.max_published_seq, 9);
	ck_assert_int_eq(st.windows, 2);
	journal_close(j);
}
END_TEST

START_TEST(journal_failure_counts)
{
	struct journal *j = jopen();
	char err[256] = "";
	int c = -1;

	ck_assert_int_eq(journal_failures_of(j, 5, &c, err, sizeof(err)), 0);
	ck_assert_int_eq(c, 0);
	ck_assert_int_eq(
	    journal_failure(j, 5, "e5", "Broker: Message size too large", &c, err, sizeof(err)), 0);
	ck_assert_int_eq(c, 1);
	ck_assert_int_eq(journal_failure(j, 5, "e5", "again", &c, err, sizeof(err)), 0);
	ck_assert_int_eq(c, 2);
	ck_assert_int_eq(journal_failure(j, 6, "e6", "other", &c, err, sizeof(err)), 0);
	ck_assert_int_eq(c, 1);
	journal_close(j);
	j = jopen();
	ck_assert_int_eq(journal_failures_of(j, 5, &c, err, sizeof(err)), 0);
	ck_assert_int_eq(c, 2);
	journal_close(j);
}
END_TEST

START_TEST(journal_write_failure_is_reported)
{
	struct journal *j = jopen();
	struct journal_event ev[1] = { jev(1, "e1", "payments.paymentauthorized", 0) };
	struct journal_stats st;
	char err[256] = "";
	sqlite3 *db;

	/* Another writer holds the database: the write cannot be made
	 * durable, and the journal must say so instead of pretending. */
	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_int_eq(
	    sqlite3_exec(db, "BEGIN IMMEDIATE; DELETE FROM meta WHERE 0", NULL, NULL, NULL),
	    SQLITE_OK);
	ck_assert_int_eq(journal_window_begin(j, ev, 1, NULL, 0, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "locked") != NULL, "error: %s", err);
	ck_assert_int_eq(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	/* Nothing half-written, and the journal works again. */
	ck_assert_int_eq(journal_stats(j, &st, err, sizeof(err)), 0);
	ck_assert_int_eq(st.open_window, 0);
	ck_assert_int_eq(journal_window_begin(j, ev, 1, NULL, 0, err, sizeof(err)), 0);
	ck_assert_int_eq(journal_stats(j, &st, err, sizeof(err)), 0);
	ck_assert_int_eq(st.open_window, 1);
	journal_close(j);
}
END_TEST

/* ---- envelope -------------------------------------------------------- */

static const char *AUTH_PAYLOAD =
    "{\"payment_id\": \"pay-1\", \"payer_account_id\": \"acc-payer-001\", "
    "\"payee_account_id\": \"acc-payee-002\", \"amount_cents\": 250, \"currency\": \"USD\", "
    "\"description\": \"coffee\", \"status\": \"AUTHORIZED\", \"error_code\": null, "
    "\"error_message\": null, \"processed_at\": \"2026-11-26T22:00:00.123456Z\"}";

static const char *DECL_PAYLOAD =
    "{\"payment_id\": \"pay-2\", \"payer_account_id\": \"acc-payer-001\", "
    "\"payee_account_id\": \"acc-payee-002\", \"amount_cents\": 0, \"currency\": \"USD\", "
    "\"description\": \"\", \"status\": \"DECLINED\", \"error_code\": \"INVALID_AMOUNT\", "
    "\"error_message\": \"amount_cents must be positive, got 0\", "
    "\"processed_at\": \"2026-11-26T22:00:00Z\"}";

static struct relay_row
row(const char *type, const char *payload)
{
	struct relay_row r;

	memset(&r, 0, sizeof(r));
	r.seq = 42;
	r.event_id = "0b7a4a4e-7a3c-4a53-9f3e-2f1d1a0c9e11";
	r.aggregate_type = "payment";
	r.aggregate_id = "pay-1";
	r.partition_key = "acc-payer-001";
	r.event_type = type;
	r.payload = payload;
	r.correlation_id = "corr-1";
	r.created_at = "2026-11-26T22:00:00.123456Z";
	r.last_error = "";
	return r;
}

START_TEST(envelope_valid_events)
{
	struct relay_row r = row("PaymentAuthorized", AUTH_PAYLOAD);
	char *out = NULL, why[256] = "";
	json_t *o, *p;

	ck_assert_msg(relay_envelope(&r, &out, why, sizeof(why)) == 0, "%s", why);
	o = json_loads(out, 0, NULL);
	ck_assert_ptr_nonnull(o);
	ck_assert_uint_eq(json_object_size(o), 6);
	ck_assert_str_eq(json_string_value(json_object_get(o, "event_id")), r.event_id);
	ck_assert_str_eq(json_string_value(json_object_get(o, "aggregate_type")), "payment");
	ck_assert_str_eq(json_string_value(json_object_get(o, "aggregate_id")), "pay-1");
	ck_assert_str_eq(json_string_value(json_object_get(o, "event_type")), "PaymentAuthorized");
	ck_assert_str_eq(json_string_value(json_object_get(o, "timestamp")), r.created_at);
	p = json_object_get(o, "payload");
	ck_assert_int_eq(json_integer_value(json_object_get(p, "amount_cents")), 250);
	ck_assert(json_is_null(json_object_get(p, "error_code")));
	json_decref(o);
	free(out);

	r = row("PaymentDeclined", DECL_PAYLOAD);
	ck_assert_msg(relay_envelope(&r, &out, why, sizeof(why)) == 0, "%s", why);
	o = json_loads(out, JSON_REJECT_DUPLICATES, NULL);
	ck_assert_ptr_nonnull(o);
	p = json_object_get(o, "payload");
	ck_assert_str_eq(json_string_value(json_object_get(p, "error_code")), "INVALID_AMOUNT");
	ck_assert_str_eq(json_string_value(json_object_get(o, "event_type")), "PaymentDeclined");
	json_decref(o);
	free(out);

	/* Fields are escaped: quotes, backslashes, control characters, and
	 * non-ASCII text survive the round trip. */
	r = row("PaymentAuthorized", AUTH_PAYLOAD);
	r.aggregate_id = "p\"1\\\n\x01\xc3\xa9";
	ck_assert_msg(relay_envelope(&r, &out, why, sizeof(why)) == 0, "%s", why);
	o = json_loads(out, JSON_REJECT_DUPLICATES, NULL);
	ck_assert_msg(o != NULL, "not JSON: %s", out);
	ck_assert_str_eq(json_string_value(json_object_get(o, "aggregate_id")), r.aggregate_id);
	json_decref(o);
	free(out);
}
END_TEST

static void
expect_poison(const char *type, const char *payload, const char *reason)
{
	struct relay_row r = row(type, payload);
	char *out = (char *)"unchanged", why[256] = "";

	ck_assert_int_eq(relay_envelope(&r, &out, why, sizeof(why)), -1);
	ck_assert_ptr_null(out);
	ck_assert_msg(strstr(why, reason) != NULL, "want '%s', got '%s'", reason, why);
}

/* Overwrites the first occurrence of from in buf with to (same length). */
static void
replace_in(char *buf, const char *from, const char *to)
{
	char *at = strstr(buf, from);
	size_t i;

	ck_assert_ptr_nonnull(at);
	ck_assert_uint_eq(strlen(from), strlen(to));
	for (i = 0; to[i] != '\0'; i++) /* in place: buf stays terminated */
		at[i] = to[i];
}

START_TEST(envelope_poison)
{
	char buf[1024];

	expect_poison("PaymentAuthorized", "\"just a string\"", "not a JSON object");
	expect_poison("PaymentAuthorized", "[1,2]", "not a JSON object");
	expect_poison("PaymentAuthorized", "{broken", "not JSON");
	expect_poison("PaymentAuthorized", "{\"payment_id\": \"p\"}", "lacks payer_account_id");
	expect_poison("PaymentMisplaced", AUTH_PAYLOAD, "unknown event type");
	expect_poison("paymentAuthorized", AUTH_PAYLOAD, "unknown event type");
	/* A known type checks its own schema: a refund needs refund_id. */
	expect_poison("PaymentRefunded", AUTH_PAYLOAD, "payload lacks");
	/* The payload must agree with the event type. */
	expect_poison("PaymentDeclined", AUTH_PAYLOAD, "payload.status must be \"DECLINED\"");
	/* (a declined payload breaks several of its rules; which one is named first
	 * follows the payload's member order) */
	expect_poison("PaymentAuthorized", DECL_PAYLOAD, "payload.");
	snprintf(
	    buf, sizeof(buf), "%.*s, \"extra\": 1}", (int)strlen(AUTH_PAYLOAD) - 1, AUTH_PAYLOAD);
	expect_poison("PaymentAuthorized", buf, "unknown field extra");
	snprintf(buf, sizeof(buf), "%s", AUTH_PAYLOAD);
	replace_in(buf, "USD", "usd");
	expect_poison("PaymentAuthorized", buf, "payload.currency does not match ^[A-Z]{3}$");
	snprintf(buf, sizeof(buf), "%s", AUTH_PAYLOAD);
	replace_in(buf, "2026-11-26T22", "2026-11-26 22");
	expect_poison("PaymentAuthorized", buf, "payload.processed_at must be an RFC 3339 date-time");
	snprintf(buf, sizeof(buf), "%s", AUTH_PAYLOAD);
	replace_in(buf, "250", "\"2\"");
	expect_poison("PaymentAuthorized", buf, "payload.amount_cents must be an integer");
	snprintf(buf, sizeof(buf), "%s", DECL_PAYLOAD);
	replace_in(buf, "INVALID_AMOUNT", "NOT_A_REAL_COD");
	expect_poison("PaymentDeclined", buf, "payload.error_code: \"NOT_A_REAL_COD\" is not one of the allowed values");
}
END_TEST

/* The lifecycle's and the accounts' events, by their own schemas. */
START_TEST(envelope_lifecycle_events)
{
	static const char *captured =
	    "{\"payment_id\": \"p1\", \"payer_account_id\": \"acc-payer-001\", "
	    "\"payee_account_id\": \"acc-payee-002\", \"currency\": \"USD\", \"metadata\": "
	    "{\"order\": \"o-1\"}, \"processed_at\": \"2026-12-02T05:00:00.000001Z\", "
	    "\"amount_cents\": 900, \"status\": \"CAPTURED\", \"captured_amount_cents\": 600, "
	    "\"released_amount_cents\": 300}";
	static const char *created =
	    "{\"account_id\": \"acc-new-1\", \"currency\": \"EUR\", \"kind\": \"CUSTOMER\", "
	    "\"status\": \"ACTIVE\", \"overdraft_limit_cents\": 0, \"metadata\": {}, "
	    "\"created_at\": \"2026-12-02T05:00:00Z\"}";
	struct relay_row r = row("PaymentCaptured", captured);
	char *out = NULL, why[256] = "", buf[1400], meta[1000];
	size_t i, n;

	ck_assert_msg(relay_envelope(&r, &out, why, sizeof(why)) == 0, "%s", why);
	free(out);
	r = row("AccountCreated", created);
	r.aggregate_type = "account";
	r.aggregate_id = "acc-new-1";
	ck_assert_msg(relay_envelope(&r, &out, why, sizeof(why)) == 0, "%s", why);
	free(out);
	ck_assert_int_eq(relay_event_topic("AccountStatusChanged"), RELAY_T_ACCOUNT_STATUS_CHANGED);
	ck_assert_int_eq(relay_event_topic("PaymentRefunded"), RELAY_T_REFUNDED);
	ck_assert_int_eq(relay_event_topic("dlq"), -1);
	/* metadata: at most 20 members, keys 1..40 characters. */
	for (i = 0, n = 0; i < 21; i++)
		n += (size_t)snprintf(meta + n, sizeof(meta) - n, "%s\"k%zu\": \"v\"", i ? ", " : "", i);
	snprintf(buf, sizeof(buf), "%.*s{%s}%s", (int)(strstr(captured, "{\"order") - captured),
	    captured, meta, strstr(captured, ", \"processed_at\""));
	expect_poison("PaymentCaptured", buf, "payload.metadata has more than 20 members");
	snprintf(buf, sizeof(buf), "%s", captured);
	replace_in(buf, "\"order\": \"o-1\"", "\"\": \"o-1\"     ");
	expect_poison("PaymentCaptured", buf, "payload.metadata");
	snprintf(buf, sizeof(buf), "%s", captured);
	replace_in(buf, "CAPTURED", "VOIDED  ");
	expect_poison("PaymentCaptured", buf, "payload.status must be \"CAPTURED\"");
	snprintf(buf, sizeof(buf), "%s", created);
	replace_in(buf, "acc-new-1", "acc new 1");
	r = row("AccountCreated", buf);
	r.aggregate_type = "account";
	ck_assert_int_eq(relay_envelope(&r, &out, why, sizeof(why)), -1);
	ck_assert_msg(strstr(why, "payload.account_id does not match") != NULL, "%s", why);
}
END_TEST

START_TEST(topic_names)
{
	char t[64];

	ck_assert_int_eq(relay_topic("payments", "PaymentAuthorized", t, sizeof(t)), 0);
	ck_assert_str_eq(t, "payments.paymentauthorized");
	ck_assert_int_eq(relay_topic("staging.payments", "PaymentDeclined", t, sizeof(t)), 0);
	ck_assert_str_eq(t, "staging.payments.paymentdeclined");
	ck_assert_int_eq(relay_topic("payments", "Bad Type", t, sizeof(t)), -1);
	ck_assert_int_eq(relay_topic("payments", "", t, sizeof(t)), -1);
	ck_assert_int_eq(relay_topic("payments", "PaymentAuthorized", t, 20), -1);
}
END_TEST

START_TEST(dlq_records)
{
	struct relay_row r = row("PaymentAuthorized", AUTH_PAYLOAD);
	char *env = NULL, *rec, why[128], big[2000];
	json_t *o, *e;
	size_t i;

	ck_assert_int_eq(relay_envelope(&r, &env, why, sizeof(why)), 0);
	r.retry_count = 5;
	rec = relay_dlq_record(&r, env, 5, "2026-11-26T23:00:00.000Z", "retries exhausted (5): x");
	o = json_loads(rec, 0, NULL);
	ck_assert_ptr_nonnull(o);
	ck_assert_int_eq(json_integer_value(json_object_get(o, "outbox_seq")), 42);
	ck_assert_int_eq(json_integer_value(json_object_get(o, "retry_count")), 5);
	ck_assert_str_eq(
	    json_string_value(json_object_get(o, "failed_at")), "2026-11-26T23:00:00.000Z");
	ck_assert_str_eq(
	    json_string_value(json_object_get(o, "error")), "retries exhausted (5): x");
	e = json_object_get(o, "envelope");
	ck_assert_str_eq(json_string_value(json_object_get(e, "event_id")), r.event_id);
	ck_assert(json_is_object(json_object_get(e, "payload")));
	json_decref(o);
	free(rec);
	free(env);

	/* Poison with a long multibyte payload: identity plus a cut that
	 * stays valid UTF-8 (jansson refuses anything else). */
	big[0] = '"';
	for (i = 1; i + 2 < 1500; i += 2)
		memcpy(big + i, "\xc3\xa9", 2); /* é */
	big[i] = '"';
	big[i + 1] = '\0';
	r = row("PaymentAuthorized", big);
	rec = relay_dlq_record(
	    &r, NULL, 0, "2026-11-26T23:00:00.000Z", "invalid event: payload is not a JSON object");
	ck_assert_ptr_nonnull(rec);
	o = json_loads(rec, 0, NULL);
	e = json_object_get(o, "envelope");
	ck_assert_ptr_null(json_object_get(e, "payload"));
	ck_assert_uint_le(
	    strlen(json_string_value(json_object_get(e, "raw_payload"))), RELAY_RAW_PAYLOAD_MAX);
	ck_assert_uint_ge(strlen(json_string_value(json_object_get(e, "raw_payload"))),
	    RELAY_RAW_PAYLOAD_MAX - 3);
	ck_assert_str_eq(json_string_value(json_object_get(e, "aggregate_id")), "pay-1");
	json_decref(o);
	free(rec);
}
END_TEST

START_TEST(utf8_and_datetime)
{
	ck_assert_uint_eq(relay_utf8_cut("abc", 10), 3);
	ck_assert_uint_eq(relay_utf8_cut("abc", 2), 2);
	ck_assert_uint_eq(relay_utf8_cut("a\xc3\xa9z", 2), 1); /* not inside é */
	ck_assert_uint_eq(relay_utf8_cut("a\xc3\xa9z", 3), 3);
	ck_assert(relay_is_datetime("2026-11-26T22:00:00Z"));
	ck_assert(relay_is_datetime("2026-11-26T22:00:00.123456Z"));
	ck_assert(relay_is_datetime("2026-11-26T22:00:00+01:00"));
	ck_assert(!relay_is_datetime("2026-11-26 22:00:00Z"));
	ck_assert(!relay_is_datetime("2026-13-26T22:00:00Z"));
	ck_assert(!relay_is_datetime("2026-11-26T22:00:00"));
	ck_assert(!relay_is_datetime("2026-11-26T22:00:00.Z"));
}
END_TEST

START_TEST(backoff_bounds)
{
	int a;

	/* Equal jitter: within [d/2, d] of d = min(base * 2^n, max). */
	ck_assert_int_eq(relay_backoff_ms(0, 0.5, 30, 0), 250);
	ck_assert_int_eq(relay_backoff_ms(0, 0.5, 30, 10000), 500);
	ck_assert_int_eq(relay_backoff_ms(1, 0.5, 30, 10000), 1000);
	ck_assert_int_eq(relay_backoff_ms(3, 0.5, 30, 10000), 4000);
	ck_assert_int_eq(relay_backoff_ms(20, 0.5, 30, 10000), 30000);
	ck_assert_int_eq(relay_backoff_ms(1000, 0.5, 30, 0), 15000);
	for (a = 0; a < 40; a++) {
		int64_t lo = relay_backoff_ms(a, 0.1, 2, 0),
		        hi = relay_backoff_ms(a, 0.1, 2, 10000);
		int64_t mid = relay_backoff_ms(a, 0.1, 2, 5000);

		ck_assert_int_le(hi, 2000);
		ck_assert_int_ge(lo, 50);
		ck_assert_int_le(lo, mid);
		ck_assert_int_le(mid, hi);
		if (a > 0)
			ck_assert_int_ge(hi, relay_backoff_ms(a - 1, 0.1, 2, 10000));
	}
	ck_assert_int_ge(relay_backoff_ms(0, 0.000001, 1, 0), 1);
}
END_TEST

START_TEST(pg_array_literals)
{
	int64_t v[3] = { 1, -2, 9223372036854775807LL };
	const char *t[3] = { "plain", "quo\"te", "back\\slash" };
	char *s;

	s = relay_pg_int_array(v, 3);
	ck_assert_str_eq(s, "{1,-2,9223372036854775807}");
	free(s);
	s = relay_pg_int_array(v, 0);
	ck_assert_str_eq(s, "{}");
	free(s);
	s = relay_pg_text_array(t, 3);
	ck_assert_str_eq(s, "{\"plain\",\"quo\\\"te\",\"back\\\\slash\"}");
	free(s);
	s = relay_pg_text_array(t, 0);
	ck_assert_str_eq(s, "{}");
	free(s);
}
END_TEST

/* The window remembers the lease epoch it was begun under (the relay
 * compares it with Postgres's copy), and a discarded window is gone. */
START_TEST(journal_window_epoch_and_discard)
{
	struct journal *j = jopen();
	struct journal_event ev[1] = {
		jev(5, "44444444-4444-4444-4444-444444444444", "payments.paymentauthorized", 1),
	}, *got = NULL;
	struct journal_offset start[1] = { joff("payments.paymentauthorized", 1, 12) }, *gs = NULL;
	struct journal_stats st;
	int64_t epoch = -1;
	size_t n, ns;
	char err[256] = "";

	ck_assert_int_eq(journal_window_epoch(j, &epoch, err, sizeof(err)), 0);
	ck_assert_int_eq(epoch, 0);
	ck_assert_int_eq(journal_window_begin_epoch(j, 17, ev, 1, start, 1, err, sizeof(err)), 0);
	journal_close(j);
	j = jopen();
	ck_assert_int_eq(journal_window_epoch(j, &epoch, err, sizeof(err)), 0);
	ck_assert_int_eq(epoch, 17);
	ck_assert_int_eq(journal_window_discard(j, err, sizeof(err)), 0);
	ck_assert_int_eq(journal_stats(j, &st, err, sizeof(err)), 0);
	ck_assert_int_eq(st.open_window, 0);
	ck_assert_int_eq(st.windows, 0); /* discarded, not settled */
	ck_assert_int_eq(journal_window_load(j, &got, &n, &gs, &ns, err, sizeof(err)), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_uint_eq(ns, 0);
	free(got);
	free(gs);
	journal_close(j);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("relay");
	TCase *j = tcase_create("journal"), *e = tcase_create("envelope");

	tcase_add_checked_fixture(j, setup, teardown);
	tcase_set_timeout(j, 20);
	tcase_add_test(j, journal_wal_mode_and_lock);
	tcase_add_test(j, journal_window_roundtrip_and_reload);
	tcase_add_test(j, journal_window_epoch_and_discard);
	tcase_add_test(j, journal_failure_counts);
	tcase_add_test(j, journal_write_failure_is_reported);
	tcase_add_test(e, envelope_valid_events);
	tcase_add_test(e, envelope_poison);
	tcase_add_test(e, envelope_lifecycle_events);
	tcase_add_test(e, topic_names);
	tcase_add_test(e, dlq_records);
	tcase_add_test(e, utf8_and_datetime);
	tcase_add_test(e, backoff_bounds);
	tcase_add_test(e, pg_array_literals);
	suite_add_tcase(s, j);
	suite_add_tcase(s, e);
	return tl_run(s, CK_NORMAL, 0);
}
