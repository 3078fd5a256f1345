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
struct rl;
struct wrk_identity;

struct wrk_ctx {
	struct wrk *w;
	const char *correlation_id;
	const struct wrk_identity *who; /* the authenticated caller (wrk_auth.h) */
	int64_t deadline_ms;            /* monotonic ms, -1 for none */
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
	int exempt;          /* health/reflection: no authentication, no rate limit */
	/* The request message, whose wire bytes are checked (pay_wire.h)
	 * before the handler decodes them; NULL: not checked (test hooks). */
	const struct ProtobufCMessageDescriptor *req;
};

extern const struct wrk_method wrk_methods[];
extern const size_t wrk_nmethods;

/* Accessors the handlers use. */
struct ledger *wrk_ledger(struct wrk *w);
const struct config *wrk_config(struct wrk *w);
struct metrics *wrk_metrics(struct wrk *w);
struct rl *wrk_rl(struct wrk *w);
struct wrk_auth *wrk_auth(struct wrk *w);
/* Called by handlers after a ledger call reports the connection gone. */
void wrk_db_lost(struct wrk *w);

void wrk_reply_status(struct wrk_reply *rep, grpc_status_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Maps a failed ledger call to a gRPC status and notes DB loss;
 * LEDGER_DENIED is PERMISSION_DENIED naming err (the permission), counted
 * for ctx->who with reason why. */
void wrk_reply_ledger_error(
    struct wrk_ctx *ctx, struct wrk_reply *rep, enum ledger_rc rc, const char *err);
/* PERMISSION_DENIED for the caller: "client NAME lacks PERMISSION". */
void wrk_reply_denied(struct wrk_ctx *ctx, struct wrk_reply *rep, int why, const char *what);

/*
 * The one way a payment becomes a Payment message (GetPayment, the
 * lifecycle replies, ListPayments; wrk_rpc.c). pb->msg points into lp
 * (which must outlive it) and into storage of its own that
 * wrk_payment_pb_free() releases.
 */
struct ProtobufCMessage;
struct Payment__V1__Payment;
struct Payment__V1__Payment__MetadataEntry;
struct wrk_payment_pb {
	struct Payment__V1__Payment *msg;
	struct Payment__V1__Payment__MetadataEntry *ents, **ptrs;
	char *strs;
};
void wrk_payment_pb(const struct ledger_payment *lp, struct wrk_payment_pb *pb);
void wrk_payment_pb_free(struct wrk_payment_pb *pb);
/* Packs m into rep->body with status OK. */
void wrk_pack_reply(struct wrk_reply *rep, const struct ProtobufCMessage *m);

void wrk_rpc_authorize(struct wrk_ctx *, const uint8_t *, size_t, struct wrk_reply *);
void wrk_rpc_get_payment(struct wrk_ctx *, const uint8_t *, size_t, struct wrk_reply *);
void wrk_rpc_get_balance(struct wrk_ctx *, const uint8_t *, size_t, struct wrk_reply *);
/* wrk_life.c: the payment lifecycle after authorization. */
void wrk_life_capture(struct wrk_ctx *, const uint8_t *, size_t, struct wrk_reply *);
void wrk_life_void(struct wrk_ctx *, const uint8_t *, size_t, struct wrk_reply *);
void wrk_life_refund(struct wrk_ctx *, const uint8_t *, size_t, struct wrk_reply *);
void wrk_life_list_payments(struct wrk_ctx *, const uint8_t *, size_t, struct wrk_reply *);
/* wrk_account.c: AccountService and account statements. */
void wrk_acct_list_entries(struct wrk_ctx *, const uint8_t *, size_t, struct wrk_reply *);
void wrk_acct_create(struct wrk_ctx *, const uint8_t *, size_t, struct wrk_reply *);
void wrk_acct_get(struct wrk_ctx *, const uint8_t *, size_t, struct wrk_reply *);
void wrk_acct_update_status(struct wrk_ctx *, const uint8_t *, size_t, struct wrk_reply *);
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
