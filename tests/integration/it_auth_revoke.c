/* SPDX-License-Identifier: MIT */
/*
 * it_auth_revoke.c — a revoked API token stops working on an open
 * connection within the stated bound (AUTH_CACHE_SECONDS + 1 s), measured
 * the way a payments team would: one long-lived HTTP/2 connection calls
 * every 100 ms with token T, and `paymentd client rotate-token NAME`
 * revokes T meanwhile.
 *
 * Contract: run by tests/suites/49-auth-load against a paymentd it started
 * with AUTH_MODE=token, configured through the environment:
 *   IT_AUTH_TARGET   host:port of that paymentd (cleartext)
 *   IT_AUTH_TOKEN    T, a token of client IT_AUTH_CLIENT
 *   IT_AUTH_CLIENT   the client whose token is rotated
 *   IT_AUTH_CACHE_S  the daemon's AUTH_CACHE_SECONDS (1..5)
 *   IT_AUTH_METHOD   balance (GetAccountBalance of IT_AUTH_PAYER, default)
 *                    or authorize (1-cent AuthorizePayment IT_AUTH_PAYER ->
 *                    IT_AUTH_PAYEE, a fresh idempotency key per call)
 *   IT_AUTH_PAYMENTD the paymentd binary (default $BUILD_DIR/paymentd)
 * It asserts: every call before the rotation succeeds; rotate-token exits
 * 0; the first failure after it is UNAUTHENTICATED naming a revoked
 * credential and completes within the bound of rotate-token's return (t0,
 * when the revocation had committed); every later call with T fails so;
 * no call with T started after t0 + bound succeeds; the connection never
 * left READY (so the failures are the open connection's, not a new
 * worker's). A second test: the new token is then served on that
 * connection. Each prints a "measured" line with its numbers. Check's summary line is what tests/run-all counts.
 *
 * Why the rotation waits cache + 250 ms after the first call: the worker's
 * cache entry for T was refreshed by the call at (cache .. cache + 100 ms),
 * so revoking just after it is close to the worst case (delay ~ cache),
 * which makes the bound a real test instead of a lucky early refresh.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>
#include <grpc/grpc.h>

#include "ctl/gcli.h"
#include "payment/v1/payment.pb-c.h"
#include "tests/lib/testlib.h"

#define TICK_MS  100
#define DEADLINE 2000
#define MAX_CALL 512
/* Calls kept going after t0 + bound: "every call after it fails". */
#define TAIL_MS 1500

struct call {
	long start, end; /* tl_now_ms() */
	grpc_status_code code;
	char details[512];
};

static struct call calls[MAX_CALL];
/* Shared by the two tests (run in order, in one process). */
static grpc_channel *conn;
static char out[64];
static long t0;
static int n_failed;

static const char *
env_or(const char *name, const char *dflt)
{
	const char *v = getenv(name);

	return v != NULL && v[0] != '\0' ? v : dflt;
}

/* One call of the configured method with bearer; fills *c. */
static void
one_call(grpc_channel *ch, const char *bearer, int authorize, const char *payer, const char *payee,
    int n, struct call *c)
{
	struct gcli_md md = { "authorization", bearer };
	struct gcli_result res;
	uint8_t buf[512];
	char key[96];
	size_t len;

	if (authorize) {
		Payment__V1__AuthorizePaymentRequest r =
		    PAYMENT__V1__AUTHORIZE_PAYMENT_REQUEST__INIT;

		snprintf(key, sizeof(key), "it-auth-revoke-%ld-%d-%d", (long)getpid(), n,
		    (int)(tl_now_ms() % 100000));
		r.idempotency_key = key;
		r.payer_account_id = (char *)payer;
		r.payee_account_id = (char *)payee;
		r.amount_cents = 1;
		r.currency = "USD";
		r.description = "it_auth_revoke";
		ck_assert_uint_le(protobuf_c_message_get_packed_size(&r.base), sizeof(buf));
		len = protobuf_c_message_pack(&r.base, buf);
	} else {
		Payment__V1__GetAccountBalanceRequest r =
		    PAYMENT__V1__GET_ACCOUNT_BALANCE_REQUEST__INIT;

		r.account_id = (char *)payer;
		len = protobuf_c_message_pack(&r.base, buf);
	}
	c->start = tl_now_ms();
	ck_assert_int_eq(gcli_unary(ch,
	                     authorize ? "/payment.v1.PaymentService/AuthorizePayment"
	                               : "/payment.v1.PaymentService/GetAccountBalance",
	                     buf, len, DEADLINE, &md, 1, &res),
	    0);
	c->end = tl_now_ms();
	c->code = res.status;
	snprintf(c->details, sizeof(c->details), "%s", res.details);
	gcli_result_free(&res);
}

/* The token line of rotate-token's output file, into tok. */
static void
read_new_token(const char *path, char *tok, size_t len)
{
	char line[256];
	FILE *f = fopen(path, "r");

	tok[0] = '\0';
	ck_assert_msg(f != NULL, "cannot read %s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "token: ", 7) == 0) {
			line[strcspn(line, "\r\n")] = '\0';
			snprintf(tok, len, "%s", line + 7);
		}
	fclose(f);
}

START_TEST(revoked_token_fails_within_bound)
{
	const char *target = getenv("IT_AUTH_TARGET"), *token = getenv("IT_AUTH_TOKEN");
	const char *client = getenv("IT_AUTH_CLIENT"), *cache = getenv("IT_AUTH_CACHE_S");
	const char *method = env_or("IT_AUTH_METHOD", "balance");
	const char *payer = env_or("IT_AUTH_PAYER", "acc-payer-001");
	const char *payee = env_or("IT_AUTH_PAYEE", "acc-payee-002");
	char bin[512], bearer[128];
	long cache_ms, bound_ms, first, t_rot = 0, t0_spawn = 0, next, last_ok_after = -1;
	int authorize, n = 0, i, fd, st = 0, first_fail = -1, not_ready = 0;
	pid_t pid = -1;

	ck_assert_msg(target && token && client && cache,
	    "IT_AUTH_TARGET, IT_AUTH_TOKEN, IT_AUTH_CLIENT and IT_AUTH_CACHE_S are required");
	cache_ms = strtol(cache, NULL, 10) * 1000;
	ck_assert_msg(
	    cache_ms >= 1000 && cache_ms <= 5000, "IT_AUTH_CACHE_S %s not in 1..5", cache);
	bound_ms = cache_ms + 1000;
	ck_assert_msg(strcmp(method, "balance") == 0 || strcmp(method, "authorize") == 0,
	    "IT_AUTH_METHOD %s: balance or authorize", method);
	authorize = strcmp(method, "authorize") == 0;
	snprintf(bin, sizeof(bin), "%s/paymentd", env_or("BUILD_DIR", "build"));
	if (getenv("IT_AUTH_PAYMENTD") != NULL)
		snprintf(bin, sizeof(bin), "%s", env_or("IT_AUTH_PAYMENTD", "paymentd"));
	snprintf(bearer, sizeof(bearer), "Bearer %s", token);
	snprintf(out, sizeof(out), "/tmp/it_auth_revoke.XXXXXX");
	fd = mkstemp(out);
	ck_assert_int_ge(fd, 0);
	close(fd);

	conn = gcli_channel(target, 1);
	first = tl_now_ms();
	t_rot = first + cache_ms + 250;
	for (next = first;; next += TICK_MS) {
		/* Sleep to the tick in short slices, reaping rotate-token as
		 * soon as it exits: its return is t0. */
		while (tl_now_ms() < next) {
			if (pid > 0 && t0 == 0 && tl_wait(pid, 0, &st) == 0)
				t0 = tl_now_ms();
			usleep(2000);
		}
		if (pid > 0 && t0 == 0 && tl_wait(pid, 0, &st) == 0)
			t0 = tl_now_ms();
		if (pid < 0 && tl_now_ms() >= t_rot) {
			char *argv[] = { bin, "client", "rotate-token", (char *)client, NULL };

			t0_spawn = tl_now_ms();
			pid = tl_spawn(argv, NULL, out, out);
			ck_assert_msg(pid > 0, "cannot start %s", bin);
		}
		if (t0 > 0 && tl_now_ms() > t0 + bound_ms + TAIL_MS)
			break;
		ck_assert_msg(n < MAX_CALL, "rotate-token did not return in time");
		one_call(conn, bearer, authorize, payer, payee, n, &calls[n]);
		if (grpc_channel_check_connectivity_state(conn, 0) != GRPC_CHANNEL_READY)
			not_ready++;
		n++;
	}
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "rotate-token %s failed (status %d)",
	    client, st);

	for (i = 0; i < n; i++) {
		/* Before the command even started, T was valid. */
		if (calls[i].end < t0_spawn)
			ck_assert_msg(calls[i].code == GRPC_STATUS_OK,
			    "call %d before the rotation failed: %d %s", i, calls[i].code,
			    calls[i].details);
		if (first_fail < 0 && calls[i].start >= t0_spawn && calls[i].code != GRPC_STATUS_OK)
			first_fail = i;
		if (calls[i].code != GRPC_STATUS_OK)
			n_failed++;
		if (calls[i].code == GRPC_STATUS_OK && calls[i].start >= t0)
			last_ok_after = calls[i].start - t0;
	}
	ck_assert_msg(first_fail >= 0, "no call with the revoked token failed in %ld ms after t0",
	    bound_ms + TAIL_MS);
	printf("measured: %s, AUTH_CACHE_SECONDS=%ld: rotate-token took %ld ms; first "
	       "UNAUTHENTICATED %ld ms after it returned (t0), %ld ms after it started; last OK "
	       "call started %ld ms after t0; %d calls (%d before the first failure), bound %ld "
	       "ms\n",
	    method, cache_ms / 1000, t0 - t0_spawn, calls[first_fail].end - t0,
	    calls[first_fail].end - t0_spawn, last_ok_after, n, first_fail, bound_ms);
	fflush(stdout);
	ck_assert_msg(calls[first_fail].code == GRPC_STATUS_UNAUTHENTICATED &&
	        strstr(calls[first_fail].details, "revoked") != NULL,
	    "first failure is %d \"%s\", not UNAUTHENTICATED ... revoked", calls[first_fail].code,
	    calls[first_fail].details);
	ck_assert_msg(calls[first_fail].end - t0 <= bound_ms,
	    "first UNAUTHENTICATED %ld ms after t0: over the bound of %ld ms",
	    calls[first_fail].end - t0, bound_ms);
	for (i = first_fail; i < n; i++)
		ck_assert_msg(calls[i].code == GRPC_STATUS_UNAUTHENTICATED,
		    "call %d (%ld ms after t0), after the first failure, answered %d \"%s\"", i,
		    calls[i].start - t0, calls[i].code, calls[i].details);
	ck_assert_msg(last_ok_after < bound_ms, "a call with T started %ld ms after t0 succeeded",
	    last_ok_after);
	ck_assert_msg(
	    not_ready == 0, "the connection left READY %d times (a reconnect?)", not_ready);

	ck_assert_int_eq(grpc_channel_check_connectivity_state(conn, 0), GRPC_CHANNEL_READY);
}
END_TEST

/* After the rotation the client switches to its new token on the same
 * connection: it is served, although the old token's failures came from
 * the same address (they are not guesses). Runs after the test above, in
 * the same process (nofork), on its connection. */
START_TEST(new_token_served_on_the_open_connection)
{
	const char *method = env_or("IT_AUTH_METHOD", "balance");
	char newtok[256], bearer2[272];
	struct call c2;

	ck_assert_msg(conn != NULL && out[0] != '\0', "the revocation test did not get that far");
	read_new_token(out, newtok, sizeof(newtok));
	ck_assert_msg(strncmp(newtok, "pd_", 3) == 0, "rotate-token printed no token");
	snprintf(bearer2, sizeof(bearer2), "Bearer %s", newtok);
	one_call(conn, bearer2, strcmp(method, "authorize") == 0,
	    env_or("IT_AUTH_PAYER", "acc-payer-001"), env_or("IT_AUTH_PAYEE", "acc-payee-002"),
	    MAX_CALL + 1, &c2);
	printf("measured: the new token on the open connection, %ld ms after t0 (%d calls with "
	       "the revoked token failed before it): %d \"%s\"\n",
	    c2.end - t0, n_failed, c2.code, c2.details);
	fflush(stdout);
	ck_assert_msg(c2.code == GRPC_STATUS_OK,
	    "the new token on the open connection, after %d failed calls with the revoked one: "
	    "%d \"%s\"",
	    n_failed, c2.code, c2.details);
	grpc_channel_destroy(conn);
	conn = NULL;
	unlink(out);
}
END_TEST

int
main(void)
{
	const TTest *const tests[] = { revoked_token_fails_within_bound,
		new_token_served_on_the_open_connection, NULL };

	gcli_global_init();
	/* grpc must not be forked after init: run the test in this process. */
	return tl_run(tl_suite("auth_revoke", 60, tests), CK_NORMAL, 1);
}
