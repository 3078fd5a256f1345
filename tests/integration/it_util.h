/*
 * it_util.h — helpers for integration tests that talk to a running
 * paymentd over its real gRPC port (PAYMENTD_TARGET) and inspect its
 * Postgres (DATABASE_URL) directly.
 */
#ifndef IT_UTIL_H
#define IT_UTIL_H

#include <stdint.h>
#include <grpc/grpc.h>
#include <libpq-fe.h>
#include "ctl/gcli.h"

struct it_auth {
	grpc_status_code code;
	char details[512];
	char payment_id[64];
	int  status;		/* PaymentStatus */
	int  error_code;	/* PaymentErrorCode, 0 if none */
	char error_message[512];
	char processed_at[40];
	char correlation_id[129];
};

const char *it_target(void);
grpc_channel *it_channel(int fresh);
void it_authorize(grpc_channel *ch, const char *key, const char *payer, const char *payee,
    int64_t amount, const char *currency, const char *desc, const char *corr, int timeout_ms,
    struct it_auth *out);
grpc_status_code it_balance(grpc_channel *ch, const char *account, int64_t *available);
grpc_status_code it_get_payment(grpc_channel *ch, const char *id, int *status, int64_t *amount);

PGconn *it_db(void);
/* Runs a parameterized query expected to return one value; returns it as
 * int64 (or -1 on any failure, after failing the current test). */
int64_t it_db_int(PGconn *c, const char *sql, int n, const char *const *params);
void it_db_exec(PGconn *c, const char *sql, int n, const char *const *params);
/* Creates an ACTIVE account funded from the equity account. */
void it_make_account(PGconn *c, const char *id, const char *currency, int64_t funding);
/* A unique prefix per test run, so reruns never collide on keys. */
const char *it_run_id(void);

#endif
