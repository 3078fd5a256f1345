/* SPDX-License-Identifier: MIT */
/*
 * it_payments.c — integration tests against a running paymentd (real
 * supervisor, real forked workers, real Postgres) through its gRPC port.
 *
 * Every test uses keys and accounts prefixed with a per-run id, so the
 * suite can run against a database that already holds data.
 */
#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include "it_util.h"
#include "grpc/grpc_util.h"
#include "common/util.h"
#include "payment/v1/payment.pb-c.h"

#define ST_AUTH PAYMENT__V1__PAYMENT_STATUS__PAYMENT_STATUS_AUTHORIZED
#define ST_DECL PAYMENT__V1__PAYMENT_STATUS__PAYMENT_STATUS_DECLINED
#define ST_DUP  PAYMENT__V1__PAYMENT_STATUS__PAYMENT_STATUS_DUPLICATE
#define E(x)    PAYMENT__V1__PAYMENT_ERROR_CODE__PAYMENT_ERROR_CODE_##x

/* Declares a char array holding "<run id>-<what>". */
#define NAME(var, what) \
	char var[128]; \
	snprintf(var, sizeof(var), "%s-%s", it_run_id(), what)

/* ---- declines ---------------------------------------------------------- */

static void
expect_decline(grpc_channel *ch, PGconn *db, const char *tag, const char *payer, const char *payee,
    int64_t amount, const char *cur, int code, const char *msg_part)
{
	struct it_auth a;
	const char *p[1];
	int st;
	int64_t amt;

	NAME(key, tag);

	it_authorize(ch, key, payer, payee, amount, cur, "decline test", NULL, 10000, &a);
	ck_assert_msg(a.code == GRPC_STATUS_OK, "%s: %s", tag, a.details);
	ck_assert_int_eq(a.status, ST_DECL);
	ck_assert_int_eq(a.error_code, code);
	ck_assert_msg(strstr(a.error_message, msg_part) != NULL, "%s: message '%s' lacks '%s'", tag,
	    a.error_message, msg_part);
	ck_assert_int_eq((int)strlen(a.payment_id), 26);
	/* Recorded: a DECLINED payment row and a PaymentDeclined event. */
	ck_assert_int_eq(it_get_payment(ch, a.payment_id, &st, &amt), GRPC_STATUS_OK);
	ck_assert_int_eq(st, ST_DECL);
	p[0] = a.payment_id;
	ck_assert_int_eq(tl_db_int(db,
	                     "SELECT count(*) FROM outbox WHERE aggregate_id = $1 "
	                     "AND event_type = 'PaymentDeclined'",
	                     1, p),
	    1);
	ck_assert_int_eq(
	    tl_db_int(db, "SELECT count(*) FROM ledger_entries WHERE payment_id = $1", 1, p), 0);
}

START_TEST(every_decline_code)
{
	grpc_channel *ch = it_channel(0);
	PGconn *db = tl_db();
	NAME(payer, "d-payer");
	NAME(eur, "d-eur");
	int64_t before, after;

	it_make_account(db, payer, "USD", 1000);
	it_make_account(db, eur, "EUR", 0);
	ck_assert_int_eq(it_balance(ch, payer, &before), GRPC_STATUS_OK);
	expect_decline(ch, db, "d1", payer, "acc-payee-002", 1001, "USD", E(INSUFFICIENT_FUNDS),
	    "insufficient");
	expect_decline(ch, db, "d2", "no-such-payer", "acc-payee-002", 10, "USD",
	    E(ACCOUNT_NOT_FOUND), "no-such-payer");
	expect_decline(
	    ch, db, "d3", payer, "no-such-payee", 10, "USD", E(ACCOUNT_NOT_FOUND), "no-such-payee");
	expect_decline(
	    ch, db, "d4", payer, "acc-payee-002", 0, "USD", E(INVALID_AMOUNT), "positive");
	expect_decline(
	    ch, db, "d5", payer, "acc-payee-002", -100, "USD", E(INVALID_AMOUNT), "positive");
	expect_decline(ch, db, "d6", payer, payer, 10, "USD", E(SAME_ACCOUNT), "same account");
	expect_decline(ch, db, "d7", payer, eur, 10, "USD", E(CURRENCY_MISMATCH), "EUR");
	expect_decline(
	    ch, db, "d8", payer, "acc-payee-002", 10, "EUR", E(CURRENCY_MISMATCH), "USD");
	expect_decline(
	    ch, db, "d9", payer, "acc-frozen-004", 10, "USD", E(ACCOUNT_INACTIVE), "FROZEN");
	expect_decline(
	    ch, db, "d10", "acc-closed-005", payer, 10, "USD", E(ACCOUNT_INACTIVE), "CLOSED");
	expect_decline(ch, db, "d11", payer, "acc-payee-002", 2000000000000000LL, "USD",
	    E(INVALID_AMOUNT), "at most");
	ck_assert_int_eq(it_balance(ch, payer, &after), GRPC_STATUS_OK);
	ck_assert_int_eq(before, after);
	PQfinish(db);
	grpc_channel_destroy(ch);
}
END_TEST

START_TEST(invalid_arguments)
{
	NAME(k_ia, "ia");
	grpc_channel *ch = it_channel(0);
	struct it_auth a;
	int st;
	int64_t v;

	it_authorize(ch, "", "acc-payer-001", "acc-payee-002", 1, "USD", "", NULL, 5000, &a);
	ck_assert_int_eq(a.code, GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_str_eq(a.details, "idempotency_key is required");
	it_authorize(ch, k_ia, "", "acc-payee-002", 1, "USD", "", NULL, 5000, &a);
	ck_assert_int_eq(a.code, GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_str_eq(a.details, "payer_account_id is required");
	it_authorize(ch, k_ia, "acc-payer-001", "", 1, "USD", "", NULL, 5000, &a);
	ck_assert_int_eq(a.code, GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_str_eq(a.details, "payee_account_id is required");
	it_authorize(ch, k_ia, "acc-payer-001", "acc-payee-002", 1, "", "", NULL, 5000, &a);
	ck_assert_int_eq(a.code, GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_str_eq(a.details, "currency is required");
	it_authorize(ch, k_ia, "acc-payer-001", "acc-payee-002", 1, "dollars", "", NULL, 5000, &a);
	ck_assert_int_eq(a.code, GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_int_eq(it_get_payment(ch, "", &st, &v), GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_int_eq(
	    it_get_payment(ch, "01NOSUCHPAYMENT0000000000", &st, &v), GRPC_STATUS_NOT_FOUND);
	ck_assert_int_eq(it_balance(ch, "", &v), GRPC_STATUS_INVALID_ARGUMENT);
	ck_assert_int_eq(it_balance(ch, "no-such-account", &v), GRPC_STATUS_NOT_FOUND);
	grpc_channel_destroy(ch);
}
END_TEST

START_TEST(malformed_message_is_invalid_argument)
{
	grpc_channel *ch = it_channel(0);
	struct gcli_result res;
	static const uint8_t junk[] = { 0x0a, 0x7f, 'x' }; /* length past the end */

	ck_assert_int_eq(gcli_unary(ch, "/payment.v1.PaymentService/AuthorizePayment", junk,
	                     sizeof(junk), 5000, NULL, 0, &res),
	    0);
	ck_assert_int_eq(res.status, GRPC_STATUS_INVALID_ARGUMENT);
	gcli_result_free(&res);
	grpc_channel_destroy(ch);
}
END_TEST

/* ---- idempotency ------------------------------------------------------- */

START_TEST(duplicate_replays_original_outcome)
{
	grpc_channel *ch = it_channel(0);
	PGconn *db = tl_db();
	NAME(payer, "dup-payer");
	NAME(key, "dup-key");
	NAME(dkey, "dup-decl");
	struct it_auth a, b;
	int64_t bal;
	const char *p[1] = { key };

	it_make_account(db, payer, "USD", 10000);
	it_authorize(ch, key, payer, "acc-payee-002", 2500, "USD", "Coffee", NULL, 10000, &a);
	ck_assert_int_eq(a.code, GRPC_STATUS_OK);
	ck_assert_int_eq(a.status, ST_AUTH);
	it_authorize(ch, key, payer, "acc-payee-002", 2500, "USD", "Coffee", NULL, 10000, &b);
	ck_assert_int_eq(b.code, GRPC_STATUS_OK);
	ck_assert_int_eq(b.status, ST_DUP);
	ck_assert_str_eq(a.payment_id, b.payment_id);
	ck_assert_str_eq(a.processed_at, b.processed_at);
	ck_assert_int_eq(it_balance(ch, payer, &bal), GRPC_STATUS_OK);
	ck_assert_int_eq(bal, 7500); /* charged once */
	ck_assert_int_eq(
	    tl_db_int(db, "SELECT count(*) FROM payments WHERE idempotency_key = $1", 1, p), 1);

	/* A declined outcome is replayed too, with its error. */
	it_authorize(ch, dkey, payer, "acc-payee-002", 999999, "USD", "", NULL, 10000, &a);
	ck_assert_int_eq(a.status, ST_DECL);
	it_authorize(ch, dkey, payer, "acc-payee-002", 999999, "USD", "", NULL, 10000, &b);
	ck_assert_int_eq(b.status, ST_DUP);
	ck_assert_int_eq(b.error_code, E(INSUFFICIENT_FUNDS));
	ck_assert_str_eq(a.payment_id, b.payment_id);
	PQfinish(db);
	grpc_channel_destroy(ch);
}
END_TEST

START_TEST(key_reuse_with_other_parameters_is_refused)
{
	grpc_channel *ch = it_channel(0);
	PGconn *db = tl_db();
	NAME(payer, "kr-payer");
	NAME(key, "kr-key");
	struct it_auth a, b;
	int64_t pay_before, out_before, bal;

	it_make_account(db, payer, "USD", 10000);
	it_authorize(ch, key, payer, "acc-payee-002", 100, "USD", "one", NULL, 10000, &a);
	ck_assert_int_eq(a.status, ST_AUTH);
	pay_before = tl_db_int(db, "SELECT count(*) FROM payments", 0, NULL);
	out_before = tl_db_int(db, "SELECT count(*) FROM outbox", 0, NULL);
	it_authorize(ch, key, payer, "acc-payee-002", 200, "USD", "one", NULL, 10000, &b);
	ck_assert_int_eq(b.code, GRPC_STATUS_FAILED_PRECONDITION);
	ck_assert_msg(strstr(b.details, "amount_cents") != NULL, "%s", b.details);
	it_authorize(ch, key, payer, "acc-payer-001", 100, "USD", "two", NULL, 10000, &b);
	ck_assert_int_eq(b.code, GRPC_STATUS_FAILED_PRECONDITION);
	ck_assert_msg(strstr(b.details, "payee_account_id") && strstr(b.details, "description"),
	    "%s", b.details);
	ck_assert_int_eq(tl_db_int(db, "SELECT count(*) FROM payments", 0, NULL), pay_before);
	ck_assert_int_eq(tl_db_int(db, "SELECT count(*) FROM outbox", 0, NULL), out_before);
	ck_assert_int_eq(it_balance(ch, payer, &bal), GRPC_STATUS_OK);
	ck_assert_int_eq(bal, 9900);
	PQfinish(db);
	grpc_channel_destroy(ch);
}
END_TEST

START_TEST(expired_key_can_be_used_again)
{
	grpc_channel *ch = it_channel(0);
	PGconn *db = tl_db();
	NAME(payer, "ex-payer");
	NAME(key, "ex-key");
	struct it_auth a, b;
	const char *p[1] = { key };

	it_make_account(db, payer, "USD", 1000);
	it_authorize(ch, key, payer, "acc-payee-002", 100, "USD", "", NULL, 10000, &a);
	ck_assert_int_eq(a.status, ST_AUTH);
	tl_db_exec(db,
	    "UPDATE idempotency_keys SET expires_at = now() - interval '1 second' "
	    "WHERE idempotency_key = $1",
	    1, p);
	it_authorize(ch, key, payer, "acc-payee-002", 300, "USD", "", NULL, 10000, &b);
	ck_assert_int_eq(b.code, GRPC_STATUS_OK);
	ck_assert_int_eq(b.status, ST_AUTH);
	ck_assert_str_ne(a.payment_id, b.payment_id);
	ck_assert_int_eq(
	    tl_db_int(db, "SELECT count(*) FROM payments WHERE idempotency_key = $1", 1, p), 2);
	ck_assert_int_eq(tl_db_int(db,
	                     "SELECT expires_at > now() + interval '23 hours' "
	                     "FROM idempotency_keys WHERE idempotency_key = $1",
	                     1, p) == -1,
	    0);
	PQfinish(db);
	grpc_channel_destroy(ch);
}
END_TEST

/* ---- concurrency -------------------------------------------------------- */

struct load {
	const char *payer, *payee, *key_prefix, *same_key;
	int64_t amount;
	int n, thread, fresh;
	int authorized, declined, duplicate, errors;
	char first_id[64];
	int ids_differ;
	grpc_channel *shared;
};

static void *
load_thread(void *arg)
{
	struct load *l = arg;
	grpc_channel *ch = l->shared ? l->shared : it_channel(l->fresh);
	struct it_auth a;
	char key[160];
	int i;

	for (i = 0; i < l->n; i++) {
		if (l->same_key)
			snprintf(key, sizeof(key), "%s", l->same_key);
		else
			snprintf(key, sizeof(key), "%s-%d-%d", l->key_prefix, l->thread, i);
		it_authorize(ch, key, l->payer, l->payee, l->amount, "USD", "", NULL, 30000, &a);
		if (a.code != GRPC_STATUS_OK) {
			fprintf(stderr, "load error: %s %s\n", gu_status_name(a.code), a.details);
			l->errors++;
			continue;
		}
		if (a.status == ST_AUTH)
			l->authorized++;
		else if (a.status == ST_DECL)
			l->declined++;
		else if (a.status == ST_DUP)
			l->duplicate++;
		if (!l->first_id[0])
			snprintf(l->first_id, sizeof(l->first_id), "%s", a.payment_id);
		else if (strcmp(l->first_id, a.payment_id) != 0)
			l->ids_differ = 1;
	}
	if (!l->shared)
		grpc_channel_destroy(ch);
	return NULL;
}

static void
run_load(struct load *ls, int nthreads)
{
	pthread_t t[256];
	int i;

	for (i = 0; i < nthreads; i++) {
		ls[i].thread = i;
		ck_assert_int_eq(pthread_create(&t[i], NULL, load_thread, &ls[i]), 0);
	}
	for (i = 0; i < nthreads; i++)
		pthread_join(t[i], NULL);
}

START_TEST(concurrent_same_key_makes_one_payment)
{
	PGconn *db = tl_db();
	NAME(payer, "sk-payer");
	NAME(key, "sk-key");
	struct load ls[50];
	int i, auth = 0, dup = 0, err = 0;
	char first[64] = "";
	int64_t bal;
	grpc_channel *ch = it_channel(0);
	const char *p[1] = { key };

	it_make_account(db, payer, "USD", 100000);
	memset(ls, 0, sizeof(ls));
	for (i = 0; i < 50; i++) {
		ls[i].payer = payer;
		ls[i].payee = "acc-payee-002";
		ls[i].same_key = key;
		ls[i].amount = 700;
		ls[i].n = 1;
		ls[i].fresh = 1;
	}
	run_load(ls, 50);
	for (i = 0; i < 50; i++) {
		auth += ls[i].authorized;
		dup += ls[i].duplicate;
		err += ls[i].errors;
		if (!first[0])
			snprintf(first, sizeof(first), "%s", ls[i].first_id);
		ck_assert_str_eq(first, ls[i].first_id);
	}
	ck_assert_int_eq(err, 0);
	ck_assert_int_eq(auth, 1);
	ck_assert_int_eq(dup, 49);
	ck_assert_int_eq(
	    tl_db_int(db, "SELECT count(*) FROM payments WHERE idempotency_key = $1", 1, p), 1);
	ck_assert_int_eq(it_balance(ch, payer, &bal), GRPC_STATUS_OK);
	ck_assert_int_eq(bal, 100000 - 700);
	PQfinish(db);
	grpc_channel_destroy(ch);
}
END_TEST

START_TEST(no_overdraft_under_concurrency)
{
	NAME(k_od, "od");
	PGconn *db = tl_db();
	NAME(payer, "od-payer");
	NAME(payee, "od-payee");
	struct load ls[20];
	int i, auth = 0, decl = 0, err = 0;
	int64_t bal_payer, bal_payee;
	grpc_channel *ch = it_channel(0);
	int64_t t0 = util_now_ms(), dt;

	/* 200 payments of 700 against 50000: only 71 can succeed. */
	it_make_account(db, payer, "USD", 50000);
	it_make_account(db, payee, "USD", 0);
	memset(ls, 0, sizeof(ls));
	for (i = 0; i < 20; i++) {
		ls[i].payer = payer;
		ls[i].payee = payee;
		ls[i].key_prefix = k_od;
		ls[i].amount = 700;
		ls[i].n = 10;
		ls[i].fresh = 1;
	}
	run_load(ls, 20);
	dt = util_now_ms() - t0;
	for (i = 0; i < 20; i++) {
		auth += ls[i].authorized;
		decl += ls[i].declined;
		err += ls[i].errors;
	}
	printf("no_overdraft: 200 payments over 20 connections in %lld ms (%.0f payments/s), "
	       "%d authorized, %d declined\n",
	    (long long)dt, 200000.0 / (double)(dt ? dt : 1), auth, decl);
	ck_assert_int_eq(err, 0);
	ck_assert_int_eq(auth + decl, 200);
	ck_assert_int_eq(auth, 50000 / 700);
	ck_assert_int_eq(it_balance(ch, payer, &bal_payer), GRPC_STATUS_OK);
	ck_assert_int_eq(it_balance(ch, payee, &bal_payee), GRPC_STATUS_OK);
	ck_assert_int_eq(bal_payer, 50000 - auth * 700);
	ck_assert_int_ge(bal_payer, 0);
	ck_assert_int_eq(bal_payee, (int64_t)auth * 700);
	PQfinish(db);
	grpc_channel_destroy(ch);
}
END_TEST

START_TEST(opposite_directions_never_deadlock)
{
	NAME(k_bd, "bd");
	PGconn *db = tl_db();
	NAME(a, "bd-a");
	NAME(b, "bd-b");
	struct load ls[20];
	int i, auth = 0, err = 0;
	int64_t ba, bb;
	grpc_channel *ch = it_channel(0);
	int64_t t0 = util_now_ms(), dt;

	/* 500 payments each way, 10 connections per direction. */
	it_make_account(db, a, "USD", 1000000);
	it_make_account(db, b, "USD", 1000000);
	memset(ls, 0, sizeof(ls));
	for (i = 0; i < 20; i++) {
		ls[i].payer = i % 2 ? a : b;
		ls[i].payee = i % 2 ? b : a;
		ls[i].key_prefix = k_bd;
		ls[i].amount = 100;
		ls[i].n = 50;
		ls[i].fresh = 1;
	}
	run_load(ls, 20);
	dt = util_now_ms() - t0;
	for (i = 0; i < 20; i++) {
		auth += ls[i].authorized;
		err += ls[i].errors;
	}
	printf("opposite_directions: 1000 payments in %lld ms (%.0f payments/s)\n", (long long)dt,
	    1000000.0 / (double)(dt ? dt : 1));
	ck_assert_int_eq(err, 0);
	ck_assert_int_eq(auth, 1000);
	ck_assert_int_eq(it_balance(ch, a, &ba), GRPC_STATUS_OK);
	ck_assert_int_eq(it_balance(ch, b, &bb), GRPC_STATUS_OK);
	ck_assert_int_eq(ba, 1000000);
	ck_assert_int_eq(bb, 1000000);
	PQfinish(db);
	grpc_channel_destroy(ch);
}
END_TEST

START_TEST(many_streams_on_one_connection)
{
	NAME(k_ms, "ms");
	PGconn *db = tl_db();
	NAME(payer, "ms-payer");
	struct load ls[16];
	grpc_channel *shared = it_channel(1);
	int i, auth = 0, err = 0;

	it_make_account(db, payer, "USD", 1000000);
	memset(ls, 0, sizeof(ls));
	for (i = 0; i < 16; i++) {
		ls[i].payer = payer;
		ls[i].payee = "acc-payee-002";
		ls[i].key_prefix = k_ms;
		ls[i].amount = 1;
		ls[i].n = 10;
		ls[i].shared = shared;
	}
	run_load(ls, 16);
	for (i = 0; i < 16; i++) {
		auth += ls[i].authorized;
		err += ls[i].errors;
	}
	ck_assert_int_eq(err, 0);
	ck_assert_int_eq(auth, 160);
	PQfinish(db);
	grpc_channel_destroy(shared);
}
END_TEST

/* ---- ledger invariants ----------------------------------------------- */

START_TEST(ledger_invariants_hold)
{
	PGconn *db = tl_db();

	ck_assert_int_eq(tl_db_int(db,
	                     "SELECT coalesce(sum(CASE direction WHEN 'DEBIT' "
	                     "THEN -amount_cents ELSE amount_cents END), 0) FROM ledger_entries",
	                     0, NULL),
	    0);
	/* Every balance equals the signed sum of its entries... */
	ck_assert_int_eq(
	    tl_db_int(db,
	        "SELECT count(*) FROM account_balances b WHERE "
	        "b.available_cents <> coalesce((SELECT sum(CASE direction WHEN 'DEBIT' THEN "
	        "-amount_cents ELSE amount_cents END) FROM ledger_entries e WHERE "
	        "e.account_id = b.account_id), 0)",
	        0, NULL),
	    0);
	/* ...and its last entry's balance_after. */
	ck_assert_int_eq(
	    tl_db_int(db,
	        "SELECT count(*) FROM account_balances b JOIN LATERAL "
	        "(SELECT balance_after_cents FROM ledger_entries e WHERE e.account_id = b.account_id "
	        "ORDER BY entry_id DESC LIMIT 1) last ON true "
	        "WHERE last.balance_after_cents <> b.available_cents",
	        0, NULL),
	    0);
	/* Each authorized payment has exactly one DEBIT and one CREDIT. */
	ck_assert_int_eq(
	    tl_db_int(db,
	        "SELECT count(*) FROM payments p WHERE p.status = "
	        "'AUTHORIZED' AND (SELECT count(*) FROM ledger_entries e WHERE e.payment_id = "
	        "p.payment_id) <> 2",
	        0, NULL),
	    0);
	ck_assert_int_eq(tl_db_int(db,
	                     "SELECT count(*) FROM account_balances WHERE "
	                     "available_cents < -overdraft_limit_cents",
	                     0, NULL),
	    0);
	PQfinish(db);
}
END_TEST

/* ---- protocol --------------------------------------------------------- */

START_TEST(unknown_method_is_unimplemented)
{
	grpc_channel *ch = it_channel(0);
	struct gcli_result res;
	uint8_t empty = 0;

	ck_assert_int_eq(
	    gcli_unary(ch, "/payment.v1.PaymentService/Refund", &empty, 0, 5000, NULL, 0, &res), 0);
	ck_assert_int_eq(res.status, GRPC_STATUS_UNIMPLEMENTED);
	gcli_result_free(&res);
	ck_assert_int_eq(gcli_unary(ch, "/no.Such/Thing", &empty, 0, 5000, NULL, 0, &res), 0);
	ck_assert_int_eq(res.status, GRPC_STATUS_UNIMPLEMENTED);
	gcli_result_free(&res);
	/* The connection still serves after that. */
	ck_assert_int_eq(
	    gcli_unary(ch, "/grpc.health.v1.Health/Check", &empty, 0, 5000, NULL, 0, &res), 0);
	ck_assert_int_eq(res.status, GRPC_STATUS_OK);
	gcli_result_free(&res);
	grpc_channel_destroy(ch);
}
END_TEST

START_TEST(health_check_services)
{
	grpc_channel *ch = it_channel(0);
	struct gcli_result res;
	/* HealthCheckRequest{service:"payment.v1.PaymentService"} and {service:"nope"} */
	static const uint8_t svc[] = "\x0a\x19payment.v1.PaymentService";
	static const uint8_t nope[] = "\x0a\x04nope";

	ck_assert_int_eq(gcli_unary(ch, "/grpc.health.v1.Health/Check", svc, sizeof(svc) - 1, 5000,
	                     NULL, 0, &res),
	    0);
	ck_assert_int_eq(res.status, GRPC_STATUS_OK);
	ck_assert_uint_eq(res.len, 2);
	ck_assert_int_eq(res.body[0], 0x08);
	ck_assert_int_eq(res.body[1], 1); /* SERVING */
	gcli_result_free(&res);
	ck_assert_int_eq(gcli_unary(ch, "/grpc.health.v1.Health/Check", nope, sizeof(nope) - 1,
	                     5000, NULL, 0, &res),
	    0);
	ck_assert_int_eq(res.status, GRPC_STATUS_NOT_FOUND);
	gcli_result_free(&res);
	grpc_channel_destroy(ch);
}
END_TEST

START_TEST(correlation_id_echoed_and_stored)
{
	NAME(k_corr, "corr");
	NAME(k_corr2, "corr2");
	grpc_channel *ch = it_channel(0);
	PGconn *db = tl_db();
	struct it_auth a;
	const char *p[1];

	it_authorize(
	    ch, k_corr, "acc-payer-001", "acc-payee-002", 1, "USD", "", "trace-abc-123", 10000, &a);
	ck_assert_int_eq(a.code, GRPC_STATUS_OK);
	ck_assert_str_eq(a.correlation_id, "trace-abc-123");
	p[0] = a.payment_id;
	ck_assert_int_eq(tl_db_int(db,
	                     "SELECT count(*) FROM outbox WHERE aggregate_id = $1 "
	                     "AND correlation_id = 'trace-abc-123'",
	                     1, p),
	    1);
	it_authorize(ch, k_corr2, "acc-payer-001", "acc-payee-002", 1, "USD", "", NULL, 10000, &a);
	ck_assert_int_eq((int)strlen(a.correlation_id), 32); /* generated */
	PQfinish(db);
	grpc_channel_destroy(ch);
}
END_TEST

START_TEST(deadline_rolls_back)
{
	grpc_channel *ch = it_channel(0);
	PGconn *db = tl_db(), *locker = tl_db();
	NAME(payer, "dl-payer");
	NAME(key, "dl-key");
	struct it_auth a;
	const char *p[1] = { payer }, *k[1] = { key };
	int64_t t0;

	it_make_account(db, payer, "USD", 1000);
	/* First a call with a long deadline on the same connection: the
	 * worker's session then holds a long statement_timeout, which the
	 * short call below must not inherit. */
	{
		NAME(key0, "dl-key0");
		it_authorize(ch, key0, payer, "acc-payee-002", 1, "USD", "", NULL, 20000, &a);
		ck_assert_int_eq(a.code, GRPC_STATUS_OK);
	}
	/* Hold the payer's balance row so the payment must wait. */
	tl_db_exec(locker, "BEGIN", 0, NULL);
	tl_db_exec(locker, "SELECT 1 FROM account_balances WHERE account_id = $1 FOR UPDATE", 1, p);
	t0 = util_now_ms();
	it_authorize(ch, key, payer, "acc-payee-002", 10, "USD", "", NULL, 700, &a);
	ck_assert_int_eq(a.code, GRPC_STATUS_DEADLINE_EXCEEDED);
	ck_assert_int_lt(util_now_ms() - t0, 5000);
	/* Let the worker's statement run into its timeout before the lock
	 * goes away; one still waiting would now commit the payment. */
	usleep(500000);
	tl_db_exec(locker, "ROLLBACK", 0, NULL);
	usleep(300000);
	/* Nothing half-written: no key, no payment. A retry succeeds. */
	ck_assert_int_eq(
	    tl_db_int(db, "SELECT count(*) FROM idempotency_keys WHERE idempotency_key = $1", 1, k),
	    0);
	ck_assert_int_eq(
	    tl_db_int(db, "SELECT count(*) FROM payments WHERE idempotency_key = $1", 1, k), 0);
	it_authorize(ch, key, payer, "acc-payee-002", 10, "USD", "", NULL, 10000, &a);
	ck_assert_int_eq(a.code, GRPC_STATUS_OK);
	ck_assert_int_eq(a.status, ST_AUTH);
	PQfinish(locker);
	PQfinish(db);
	grpc_channel_destroy(ch);
}
END_TEST

/* ---- fault tolerance ---------------------------------------------------- */

START_TEST(killed_worker_does_not_take_down_supervisor)
{
	NAME(k_kw, "kw");
	NAME(k_after, "kw-after");
	const char *sp = getenv("PAYMENTD_PID");
	PGconn *db = tl_db();
	NAME(payer, "kw-payer");
	struct load ls[8];
	pthread_t t[8];
	pid_t pids[256];
	int i, n, killed = 0, ok = 0, errors = 0;
	pid_t sup;
	int64_t v;

	ck_assert_msg(sp != NULL, "PAYMENTD_PID not set");
	ck_assert_msg(
	    util_parse_i64(sp, 1, INT32_MAX, &v) == 0, "PAYMENTD_PID=%s is not a pid", sp);
	sup = (pid_t)v;
	it_make_account(db, payer, "USD", 10000000);
	memset(ls, 0, sizeof(ls));
	for (i = 0; i < 8; i++) {
		ls[i].payer = payer;
		ls[i].payee = "acc-payee-002";
		ls[i].key_prefix = k_kw;
		ls[i].amount = 1;
		ls[i].n = 40;
		ls[i].fresh = 1;
		ls[i].thread = i;
		ck_assert_int_eq(pthread_create(&t[i], NULL, load_thread, &ls[i]), 0);
	}
	usleep(300000);
	/* The supervisor's workers (not its log forwarder) are the targets. */
	n = tl_children(sup, "paymentd-log|paymentd-jan", pids, 256);
	ck_assert_int_gt(n, 0);
	for (i = 0; i < n && killed < 3; i++)
		if (kill(pids[i], SIGKILL) == 0)
			killed++;
	for (i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		ok += ls[i].authorized;
		errors += ls[i].errors;
	}
	printf("kill test: killed %d workers mid-load; %d payments ok, %d failed (UNAVAILABLE to "
	       "clients of killed workers)\n",
	    killed, ok, errors);
	ck_assert_int_ge(killed, 1);
	ck_assert_int_eq(kill(sup, 0), 0); /* supervisor alive */
	ck_assert_int_gt(ok, 0);
	/* New connections are served. */
	{
		grpc_channel *ch = it_channel(1);
		struct it_auth a;
		it_authorize(ch, k_after, payer, "acc-payee-002", 1, "USD", "", NULL, 10000, &a);
		ck_assert_int_eq(a.code, GRPC_STATUS_OK);
		ck_assert_int_eq(a.status, ST_AUTH);
		grpc_channel_destroy(ch);
	}
	PQfinish(db);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("integration");
	TCase *tc = tcase_create("payments");

	gcli_global_init();
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, every_decline_code);
	tcase_add_test(tc, invalid_arguments);
	tcase_add_test(tc, malformed_message_is_invalid_argument);
	tcase_add_test(tc, duplicate_replays_original_outcome);
	tcase_add_test(tc, key_reuse_with_other_parameters_is_refused);
	tcase_add_test(tc, expired_key_can_be_used_again);
	tcase_add_test(tc, concurrent_same_key_makes_one_payment);
	tcase_add_test(tc, no_overdraft_under_concurrency);
	tcase_add_test(tc, opposite_directions_never_deadlock);
	tcase_add_test(tc, many_streams_on_one_connection);
	tcase_add_test(tc, unknown_method_is_unimplemented);
	tcase_add_test(tc, health_check_services);
	tcase_add_test(tc, correlation_id_echoed_and_stored);
	tcase_add_test(tc, deadline_rolls_back);
	tcase_add_test(tc, killed_worker_does_not_take_down_supervisor);
	tcase_add_test(tc, ledger_invariants_hold);
	suite_add_tcase(s, tc);
	/* grpc must not be forked after init: run tests in this process. */
	return tl_run(s, CK_VERBOSE, 1);
}
