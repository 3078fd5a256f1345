/* SPDX-License-Identifier: MIT */
/*
 * it_util.h — helpers for integration tests that talk to a running
 * paymentd over its real gRPC port (PAYMENTD_TARGET) and inspect its
 * Postgres (DATABASE_URL) directly, with the Postgres helpers of
 * tests/lib/testlib.h (tl_db, tl_db_int, tl_db_exec).
 */
#ifndef IT_UTIL_H
#define IT_UTIL_H

#include <stdint.h>
#include <grpc/grpc.h>
#include <libpq-fe.h>
#include "ctl/gcli.h"
#include "tests/lib/testlib.h"

struct it_auth {
	grpc_status_code code;
	char details[512];
	char payment_id[64];
	int status;     /* PaymentStatus */
	int error_code; /* PaymentErrorCode, 0 if none */
	char error_message[512];
	char processed_at[40];
	char correlation_id[129];
};

/* PAYMENTD_TARGET (set by tests/run-all), else paymentctl's default. */
const char *it_target(void);
grpc_channel *it_channel(int fresh);
void it_authorize(grpc_channel *ch, const char *key, const char *payer, const char *payee,
    int64_t amount, const char *currency, const char *desc, const char *corr, int timeout_ms,
    struct it_auth *out);
grpc_status_code it_balance(grpc_channel *ch, const char *account, int64_t *available);
grpc_status_code it_get_payment(grpc_channel *ch, const char *id, int *status, int64_t *amount);

/* Creates an ACTIVE account funded from the equity account. */
void it_make_account(PGconn *c, const char *id, const char *currency, int64_t funding);
/* A unique prefix per test run, so reruns never collide on keys. */
const char *it_run_id(void);

#endif
