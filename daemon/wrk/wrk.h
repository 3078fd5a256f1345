/* SPDX-License-Identifier: MIT */
/*
 * wrk.h — internals shared by the worker's files (wrk_worker.c runs the
 * grpc server loop; wrk_rpc.c and wrk_health.c are the method handlers).
 *
 * Contract for handlers: run synchronously on the worker's only dispatch
 * thread, never block past ctx->deadline_ms (+ the ledger's network slack),
 * and fill *rep; body is malloc'd and owned by the caller afterwards.
 */
#ifndef PAYMENTD_WRK_H
#define PAYMENTD_WRK_H

#include <stddef.h>
#include <stdint.h>
#include <grpc/grpc.h>

#include "common/config.h"
#include "ledger/ledger.h"

struct wrk;
struct metrics;

struct wrk_ctx {
	struct wrk *w;
	const char *correlation_id;
	const char *peer;
	const char *client_id;
	int64_t deadline_ms; /* monotonic ms, -1 for none */
};

struct wrk_reply {
	grpc_status_code status;
	char details[512];
	uint8_t *body;
	size_t len;
	char retry_after[16];
};

typedef void (*wrk_handler)(
    struct wrk_ctx *ctx, const uint8_t *req, size_t len, struct wrk_reply *rep);

enum wrk_kind {
	WRK_UNARY,   /* one request, one response: handler runs inline */
	WRK_WATCH,   /* health Watch: server streaming status changes */
	WRK_REFLECT, /* server reflection: bidirectional stream */
};

struct wrk_method {
	const char *path;
	const char *name; /* short name for logs and metrics */
	enum wrk_kind kind;
	wrk_handler handler; /* WRK_UNARY only */
	int exempt;          /* health/reflection: no rate limit */
};

extern const struct wrk_method wrk_methods[];
extern const size_t wrk_nmethods;

/* Accessors the handlers use. */
struct ledger *wrk_ledger(struct wrk *w);
const struct config *wrk_config(struct wrk *w);
struct metrics *wrk_metrics(struct wrk *w);
/* Called by handlers after a ledger call reports the connection gone. */
void wrk_db_lost(struct wrk *w);

void wrk_reply_status(struct wrk_reply *rep, grpc_status_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Maps a failed ledger call to a gRPC status and notes DB loss. */
void wrk_reply_ledger_error(
    struct wrk_ctx *ctx, struct wrk_reply *rep, enum ledger_rc rc, const char *err);

void wrk_rpc_authorize(struct wrk_ctx *, const uint8_t *, size_t, struct wrk_reply *);
void wrk_rpc_get_payment(struct wrk_ctx *, const uint8_t *, size_t, struct wrk_reply *);
void wrk_rpc_get_balance(struct wrk_ctx *, const uint8_t *, size_t, struct wrk_reply *);
void wrk_health_check(struct wrk_ctx *, const uint8_t *, size_t, struct wrk_reply *);
/* Health: is service known (""/payment.v1.PaymentService)? And the status
 * of this worker right now (SERVING needs a Postgres ping within 1 s). */
int wrk_health_known(const char *service);
int wrk_health_status(struct wrk *w, int64_t deadline_ms);

#ifdef PAYMENTD_TEST_HOOKS
void wrk_test_syscall(struct wrk_ctx *, const uint8_t *, size_t, struct wrk_reply *);
/* After the connection is open: PAYMENTD_TEST_KH_PROBE=N asks the
 * key-holder for N more signatures, as a compromised worker would. */
void wrk_test_after_handshake(int kh_fd);
#endif

/* wrk_worker.c: serves one connection, never returns. ctl_fd is the
 * supervisor channel (sup_proto.h). */
struct sup_status;
void wrk_worker_run(const struct config *cfg, int ctl_fd, struct metrics *metrics,
    struct sup_status *status) __attribute__((noreturn));

#endif
