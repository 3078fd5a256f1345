/* SPDX-License-Identifier: MIT */
/*
 * wrk_worker.c — one worker process: serves exactly one client connection
 * with the grpc C core, then exits with a code from sup/sup_proto.h.
 *
 * Life of a worker (exec'd by the supervisor as an unprivileged process,
 * see sup_proto.h and wrk_main.c):
 *   1. connect to Postgres (a failure is remembered, not fatal: the client
 *      still gets NOT_SERVING / UNAVAILABLE instead of a reset connection);
 *   2. grpc_init, create the server with registered methods, start it;
 *   3. lock down (sandbox/: chroot, last capability dropped, rlimits,
 *      seccomp), then report READY;
 *   4. receive the client's socket over the control channel (SCM_RIGHTS) —
 *      the first client byte is read only after lock-down — and give it to
 *      the front thread (wrk_front.c: TLS, HTTP/2 frame guard, deadlines);
 *      a client that leaves without sending a byte leaves this worker
 *      untouched, so it says SUP_MSG_POOLED and waits for the next one;
 *   5. once the front has a TLS session (or a first cleartext byte),
 *      grpc_server_add_channel_from_fd on the front's plaintext socketpair
 *      and serve until the client closes, the connection is idle, has not
 *      started an RPC in time, is too old or reclaimed, Postgres is lost,
 *      or SIGTERM — each of which ends in grpc_server_shutdown_and_notify
 *      (GOAWAY, then in-flight RPCs finish).
 * RPCs are handled one at a time on this thread (one Postgres connection
 * per worker); HTTP/2 streams are multiplexed by grpc meanwhile. A request
 * for a method nobody registered is caught by a grpc_server_request_call
 * that is always posted and answered UNIMPLEMENTED.
 */
#include "wrk.h"
#include "wrk_front.h"
#include "wrk_auth.h"
#include "tls/tls_server.h"
#include "sup/sup_proto.h"
#include "grpc/grpc_util.h"
#include "common/log.h"
#include "ledger/pay_validate.h"
#include "common/util.h"
#include "sandbox/sandbox.h"
#include "wrk_reflect.h"
#include "sup/sup_lockdown.h"
#include "rl/rl.h"
#include "metrics/metrics.h"
#include "grpc/health/v1/health.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "payment/v1/payment.pb-c.h"
#include "ledger/pay_wire.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <grpc/grpc_posix.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <libpq-fe.h>

#define TICK_MS             250
#define REQUESTS_PER_METHOD 2
#define CLOSE_LINGER_MS     1000
#define WATCH_POLL_MS       1000
/* A worker without its database drains before it shuts down (drain_begin):
 * it stops once no call arrived for DRAIN_QUIET_MS, or after DRAIN_MAX_MS. */
#define DRAIN_QUIET_MS 50
#define DRAIN_MAX_MS   1000
/* close_begin: how long grpc may take to turn the streams the front passed
 * into calls, and how often the main loop looks meanwhile. */
#define CUT_MAX_MS  500
#define CUT_POLL_MS 2

const struct wrk_method wrk_methods[] = {
	{ "/payment.v1.PaymentService/AuthorizePayment", "AuthorizePayment", WRK_UNARY,
	    wrk_rpc_authorize, 0, &payment__v1__authorize_payment_request__descriptor },
	{ "/payment.v1.PaymentService/GetPayment", "GetPayment", WRK_UNARY, wrk_rpc_get_payment, 0,
	    &payment__v1__get_payment_request__descriptor },
	{ "/payment.v1.PaymentService/GetAccountBalance", "GetAccountBalance", WRK_UNARY,
	    wrk_rpc_get_balance, 0, &payment__v1__get_account_balance_request__descriptor },
	{ "/payment.v1.PaymentService/CapturePayment", "CapturePayment", WRK_UNARY,
	    wrk_life_capture, 0, &payment__v1__capture_payment_request__descriptor },
	{ "/payment.v1.PaymentService/VoidPayment", "VoidPayment", WRK_UNARY, wrk_life_void, 0,
	    &payment__v1__void_payment_request__descriptor },
	{ "/payment.v1.PaymentService/RefundPayment", "RefundPayment", WRK_UNARY, wrk_life_refund,
	    0, &payment__v1__refund_payment_request__descriptor },
	{ "/payment.v1.PaymentService/ListPayments", "ListPayments", WRK_UNARY,
	    wrk_life_list_payments, 0, &payment__v1__list_payments_request__descriptor },
	{ "/payment.v1.PaymentService/ListAccountEntries", "ListAccountEntries", WRK_UNARY,
	    wrk_acct_list_entries, 0, &payment__v1__list_account_entries_request__descriptor },
	{ "/payment.v1.AccountService/CreateAccount", "CreateAccount", WRK_UNARY, wrk_acct_create,
	    0, &payment__v1__create_account_request__descriptor },
	{ "/payment.v1.AccountService/GetAccount", "GetAccount", WRK_UNARY, wrk_acct_get, 0,
	    &payment__v1__get_account_request__descriptor },
	{ "/payment.v1.AccountService/UpdateAccountStatus", "UpdateAccountStatus", WRK_UNARY,
	    wrk_acct_update_status, 0, &payment__v1__update_account_status_request__descriptor },
	{ "/grpc.health.v1.Health/Check", "HealthCheck", WRK_UNARY, wrk_health_check, 1,
	    &grpc__health__v1__health_check_request__descriptor },
	{ "/grpc.health.v1.Health/Watch", "HealthWatch", WRK_WATCH, NULL, 1,
	    &grpc__health__v1__health_check_request__descriptor },
	{ "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", "Reflection", WRK_REFLECT,
	    NULL, 1, &grpc__reflection__v1__server_reflection_request__descriptor },
	/* v1alpha's messages have v1's field numbers and types. */
	{ "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", "Reflection",
	    WRK_REFLECT, NULL, 1, &grpc__reflection__v1__server_reflection_request__descriptor },
#ifdef PAYMENTD_TEST_HOOKS
	{ "/paymentd.test.Hooks/Syscall", "TestSyscall", WRK_UNARY, wrk_test_syscall, 1, NULL },
#endif
};
const size_t wrk_nmethods = ARRAY_LEN(wrk_methods);

/*
 * A call moves through these states; each started batch carries a tag
 * that points back at the call. `pending` counts batches in flight, and a
 * call is freed only when it is finished and none is pending.
 */
enum call_state {
	CALL_WAITING,         /* requested, no client call yet */
	CALL_UNARY_SENDING,   /* response + status + recv-close in flight */
	CALL_WATCH_IDLE,      /* health Watch: between status messages */
	CALL_WATCH_SENDING,   /* health Watch: a status message in flight */
	CALL_WATCH_FINISHING, /* health Watch: final message + status */
	CALL_REFL_READING,    /* reflection: waiting for the next request */
	CALL_REFL_WRITING,    /* reflection: a response in flight */
	CALL_REFL_CLOSING,    /* reflection: status + recv-close in flight */
};

struct wrk_call;
struct wrk_tag {
	struct wrk_call *c;
	int close; /* 1: the RECV_CLOSE_ON_SERVER of a Watch */
};

struct wrk_call {
	const struct wrk_method *m; /* NULL: the unknown-method catcher */
	size_t midx;
	enum call_state state;
	struct wrk_tag tag, close_tag;
	int pending;
	int finished; /* no more batches will be started */
	grpc_call *call;
	gpr_timespec deadline;
	grpc_call_details details;
	grpc_metadata_array req_md;
	grpc_byte_buffer *payload;
	grpc_byte_buffer *resp;
	grpc_byte_buffer *recv;
	grpc_metadata init_md[1];
	grpc_metadata trail_md[1];
	size_t ntrail;
	grpc_slice status_details;
	int have_status;
	int have_init;
	int cancelled;
	grpc_status_code code;
	char corr[PAY_CORR_MAX + 1];
	char path[128];
	char service[128];   /* Watch: the watched service */
	int last_status;     /* Watch: last status sent */
	int64_t last_msg_ms; /* streams: last message either way */
	int counted;         /* counted in w->active */
	int64_t start_ns;
	struct wrk_call *next_watch;
};

struct wrk {
	const struct config *cfg;
	struct ledger *ledger;
	int ctl_fd;
	int watch_fd;
	grpc_completion_queue *cq;
	grpc_server *server;
	void *handles[ARRAY_LEN(wrk_methods)];
	int active;
	int64_t last_activity_ms;
	int64_t conn_start_ms;
	int64_t shutdown_deadline_ms;
	int64_t next_watch_poll_ms;
	int64_t next_peer_check_ms;
	int closing;          /* close_begin: the front's cut is being made */
	int shutdown_started; /* shutdown_now: grpc's server shuts down */
	int no_grace;         /* reclaimed: cancel streams at once */
	int64_t cut_deadline_ms;
	int cancelled_all;
	int exit_code;
	int db_lost;
	int db_down;
	int draining; /* drain_begin: calls are answered UNAVAILABLE */
	int64_t drain_until_ms;
	const char *stop_reason;
	struct wrk_call *watches; /* open streams: health Watch and reflection */
	struct wrk_front *front;
	struct sup_status *status;
	int rpcs_started;
	int no_linger;
	struct rl *rl;
	struct wrk_auth *auth;
	struct metrics *metrics;
	char peer[SUP_PEER_MAX];  /* from the supervisor: grpc says "fd:N" */
	char addr[RL_CLIENT_MAX]; /* peer without its port */
};

static volatile sig_atomic_t got_term, got_reclaim;
static int shutdown_tag;

static void
on_term(int sig)
{
	(void)sig;
	got_term = 1;
}

static void
on_reclaim(int sig)
{
	(void)sig;
	got_reclaim = 1;
}

/* The status page the supervisor reads (sup_proto.h): relaxed stores. */
static void
status_set(struct wrk *w, uint32_t phase)
{
	if (w->status != NULL)
		__atomic_store_n(&w->status->phase, phase, __ATOMIC_RELAXED);
}

static void
status_active(struct wrk *w)
{
	if (w->status == NULL)
		return;
	__atomic_store_n(&w->status->inflight, w->active, __ATOMIC_RELAXED);
	__atomic_store_n(&w->status->last_rpc_ms, util_now_ms(), __ATOMIC_RELAXED);
}

struct ledger *
wrk_ledger(struct wrk *w)
{
	return w->ledger;
}
const struct config *
wrk_config(struct wrk *w)
{
	return w->cfg;
}
struct metrics *
wrk_metrics(struct wrk *w)
{
	return w->metrics;
}
struct rl *
wrk_rl(struct wrk *w)
{
	return w->rl;
}
struct wrk_auth *
wrk_auth(struct wrk *w)
{
	return w->auth;
}

void
wrk_db_lost(struct wrk *w)
{
	if (!w->db_lost)
		log_warn("database connection lost; draining this connection");
	w->db_lost = 1;
}

void
wrk_reply_status(struct wrk_reply *rep, grpc_status_code code, const char *fmt, ...)
{
	va_list ap;

	rep->status = code;
	va_start(ap, fmt);
	vsnprintf(rep->details, sizeof(rep->details), fmt, ap);
	va_end(ap);
}

void
wrk_reply_ledger_error(
    struct wrk_ctx *ctx, struct wrk_reply *rep, enum ledger_rc rc, const char *err)
{
	switch (rc) {
	case LEDGER_TIMEOUT:
		wrk_reply_status(rep, GRPC_STATUS_DEADLINE_EXCEEDED,
		    "deadline exceeded; the operation was rolled back");
		break;
	case LEDGER_UNAVAILABLE:
		wrk_db_lost(ctx->w);
		wrk_reply_status(rep, GRPC_STATUS_UNAVAILABLE,
		    "database unavailable; retry with the same idempotency key");
		break;
	case LEDGER_BUSY:
		wrk_reply_status(rep, GRPC_STATUS_ABORTED,
		    "too much contention; retry with the same idempotency key");
		break;
	case LEDGER_INVALID:
		/* A data exception (SQLSTATE class 22) the request validation
		 * did not foresee: the database's own words go to the log, never
		 * to the client. */
		log_warn("ledger refused a value", LF_S("error", err));
		wrk_reply_status(rep, GRPC_STATUS_INVALID_ARGUMENT,
		    "invalid value: a field of the request is outside what the ledger stores; "
		    "nothing was written");
		break;
	case LEDGER_DENIED: wrk_reply_denied(ctx, rep, METRICS_DENIED_READ, err); break;
	default:
		log_error("ledger error", LF_S("rc", ledger_rc_name(rc)), LF_S("error", err));
		wrk_reply_status(rep, GRPC_STATUS_INTERNAL, "internal error");
		break;
	}
}

void
wrk_reply_denied(struct wrk_ctx *ctx, struct wrk_reply *rep, int why, const char *what)
{
	const char *name = ctx->who ? ctx->who->name : "?";

	metrics_permission_denied(ctx->w->metrics, name, (enum metrics_denied)why);
	log_info("permission denied", LF_S("client", name), LF_S("missing", what));
	wrk_reply_status(rep, GRPC_STATUS_PERMISSION_DENIED,
	    "permission denied: client %s lacks %s", name, what);
}

static void
post_request(struct wrk *w, const struct wrk_method *m, size_t midx)
{
	struct wrk_call *c = xcalloc(1, sizeof(*c));
	grpc_call_error e;

	c->m = m;
	c->midx = midx;
	c->state = CALL_WAITING;
	c->tag.c = c;
	c->close_tag.c = c;
	c->close_tag.close = 1;
	c->pending = 1;
	grpc_metadata_array_init(&c->req_md);
	if (m != NULL) {
		e = grpc_server_request_registered_call(w->server, w->handles[midx], &c->call,
		    &c->deadline, &c->req_md, m->kind == WRK_REFLECT ? NULL : &c->payload, w->cq,
		    w->cq, &c->tag);
	} else {
		grpc_call_details_init(&c->details);
		e = grpc_server_request_call(
		    w->server, &c->call, &c->details, &c->req_md, w->cq, w->cq, &c->tag);
	}
	if (e != GRPC_CALL_OK) {
		log_error("grpc_server_request_call failed", LF_I("error", e));
		exit(SUP_EXIT_SOFTWARE);
	}
}

static void
free_call(struct wrk *w, struct wrk_call *c)
{
	struct wrk_call **pp;

	for (pp = &w->watches; *pp != NULL; pp = &(*pp)->next_watch)
		if (*pp == c) {
			*pp = c->next_watch;
			break;
		}
	if (c->counted) {
		w->active--;
		w->last_activity_ms = util_now_ms();
		if (w->status != NULL)
			__atomic_add_fetch(&w->status->rpcs_done, 1, __ATOMIC_RELAXED);
		status_active(w);
	}
	if (c->call)
		grpc_call_unref(c->call);
	if (c->m == NULL)
		grpc_call_details_destroy(&c->details);
	grpc_metadata_array_destroy(&c->req_md);
	if (c->payload)
		grpc_byte_buffer_destroy(c->payload);
	if (c->resp)
		grpc_byte_buffer_destroy(c->resp);
	if (c->recv)
		grpc_byte_buffer_destroy(c->recv);
	if (c->have_init)
		grpc_slice_unref(c->init_md[0].value);
	if (c->have_status) {
		grpc_slice_unref(c->status_details);
		if (c->ntrail)
			grpc_slice_unref(c->trail_md[0].value);
	}
	free(c);
}

/* Starts a batch on the call's main tag; on failure the call is finished. */
static int
start(struct wrk_call *c, grpc_op *ops, size_t n, struct wrk_tag *tag)
{
	grpc_call_error e = grpc_call_start_batch(c->call, ops, n, tag, NULL);

	if (e != GRPC_CALL_OK) {
		log_debug("grpc_call_start_batch refused", LF_I("error", e));
		c->finished = 1;
		return -1;
	}
	c->pending++;
	return 0;
}

static void
op_initial_md(struct wrk_call *c, grpc_op *op)
{
	memset(c->init_md, 0, sizeof(c->init_md));
	c->init_md[0].key = grpc_slice_from_static_string("x-correlation-id");
	c->init_md[0].value = grpc_slice_from_copied_string(c->corr);
	c->have_init = 1;
	op->op = GRPC_OP_SEND_INITIAL_METADATA;
	op->data.send_initial_metadata.count = 1;
	op->data.send_initial_metadata.metadata = c->init_md;
}

static void
op_status(struct wrk_call *c, grpc_op *op, grpc_status_code code, const char *details,
    const char *retry_after)
{
	c->code = code;
	c->status_details = grpc_slice_from_copied_string(details);
	c->have_status = 1;
	memset(c->trail_md, 0, sizeof(c->trail_md));
	if (retry_after && retry_after[0]) {
		c->trail_md[0].key = grpc_slice_from_static_string("retry-after");
		c->trail_md[0].value = grpc_slice_from_copied_string(retry_after);
		c->ntrail = 1;
	}
	op->op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	op->data.send_status_from_server.status = code;
	op->data.send_status_from_server.status_details = &c->status_details;
	op->data.send_status_from_server.trailing_metadata_count = c->ntrail;
	op->data.send_status_from_server.trailing_metadata = c->trail_md;
}

static void
set_message(struct wrk_call *c, grpc_op *op, const uint8_t *body, size_t len)
{
	if (c->resp)
		grpc_byte_buffer_destroy(c->resp);
	c->resp = gu_bb_new(body, len);
	op->op = GRPC_OP_SEND_MESSAGE;
	op->data.send_message.send_message = c->resp;
}

static void close_begin(struct wrk *w, const char *reason, int code);

/* ---- unary calls --------------------------------------------------- */

/* 1 if the call must be refused (rep filled), 0 to serve it. */
static int
rate_limited(
    struct wrk *w, struct wrk_call *c, const struct wrk_identity *who, struct wrk_reply *rep)
{
	int64_t retry_ms = 0;
	int mi = rl_method_index(c->m->name);
	int limit = mi >= 0 ? who->limits[mi] : -1;

	switch (rl_check_limit(w->rl, c->m->name, who->rl_key, limit, &retry_ms)) {
	case RL_ALLOW: return 0;
	case RL_UNAVAILABLE_ALLOW: metrics_rl_unavailable(w->metrics); return 0;
	case RL_UNAVAILABLE_DENY:
		metrics_rl_unavailable(w->metrics);
		wrk_reply_status(
		    rep, GRPC_STATUS_UNAVAILABLE, "rate limiter unavailable; retry later");
		return 1;
	case RL_DENY:
		metrics_rate_limited(w->metrics, metrics_method_from_name(c->m->name));
		wrk_reply_status(rep, GRPC_STATUS_RESOURCE_EXHAUSTED,
		    "rate limit exceeded; retry after %lld ms", (long long)retry_ms);
		/* retry-after is in whole seconds, like HTTP's (retry_ms is at
		 * most one window, <= 3600 s). */
		snprintf(rep->retry_after, sizeof(rep->retry_after), "%d",
		    (int)((retry_ms + 999) / 1000));
		return 1;
	}
	return 0;
}

/*
 * 1 (rep filled) if the request's wire bytes hold a string protobuf-c
 * would cut or a control character: checked before decoding, because the
 * decoded C string no longer shows what was sent (pay_wire.h).
 */
static int
wire_refused(const struct wrk_method *m, const uint8_t *req, size_t len, struct wrk_reply *rep)
{
	char msg[256];

	if (m->req == NULL)
		return 0;
	switch (pay_wire_check(m->req, req, len, msg, sizeof(msg))) {
	case PAY_WIRE_OK: return 0;
	case PAY_WIRE_REJECTED:
		wrk_reply_status(rep, GRPC_STATUS_INVALID_ARGUMENT, "%s", msg);
		return 1;
	default:
		wrk_reply_status(
		    rep, GRPC_STATUS_INVALID_ARGUMENT, "malformed %s: %s", m->req->short_name, msg);
		return 1;
	}
}

/* Who is calling, and within its limits? 1 (rep filled) if not; health
 * and reflection (exempt) are neither authenticated nor limited here. */
static int
refused(struct wrk *w, struct wrk_call *c, int64_t deadline_ms, struct wrk_identity *who,
    struct wrk_reply *rep)
{
	if (c->m->exempt)
		return 0;
	return wrk_auth_call(w->auth, w, &c->req_md, wrk_front_peer(w->front), w->addr, deadline_ms,
	           who, rep) ||
	    rate_limited(w, c, who, rep);
}

static void
unary_dispatch(struct wrk *w, struct wrk_call *c, int64_t deadline_ms, int64_t left)
{
	struct wrk_reply rep;
	struct wrk_ctx ctx;
	struct wrk_identity who;
	grpc_op ops[4];
	uint8_t *req = NULL;
	size_t reqlen = 0, nops = 0;

	memset(&rep, 0, sizeof(rep));
	memset(ops, 0, sizeof(ops));
	memset(&who, 0, sizeof(who));
	ctx.w = w;
	ctx.correlation_id = c->corr;
	ctx.who = &who;
	ctx.deadline_ms = deadline_ms;

	if (c->m == NULL) {
		wrk_reply_status(&rep, GRPC_STATUS_UNIMPLEMENTED, "unknown method %s", c->path);
	} else if (left <= 0) {
		wrk_reply_status(
		    &rep, GRPC_STATUS_DEADLINE_EXCEEDED, "deadline exceeded before processing");
	} else if (w->draining && !c->m->exempt) {
		wrk_reply_status(&rep, GRPC_STATUS_UNAVAILABLE,
		    "database unavailable; retry with the same idempotency key");
	} else if (refused(w, c, deadline_ms, &who, &rep)) {
		/* not authenticated, rate limited, or no valid request: rep says why */
	} else if (c->payload == NULL || gu_bb_read(c->payload, &req, &reqlen) < 0) {
		wrk_reply_status(&rep, GRPC_STATUS_INVALID_ARGUMENT, "missing request message");
	} else if (!wire_refused(c->m, req, reqlen, &rep)) {
		/* wire_refused filled rep if a string is not what protobuf-c
		 * would hand the handler */
		rep.status = GRPC_STATUS_OK;
		c->m->handler(&ctx, req, reqlen, &rep);
	}
	free(req);

	op_initial_md(c, &ops[nops++]);
	if (rep.status == GRPC_STATUS_OK && rep.body != NULL)
		set_message(c, &ops[nops++], rep.body, rep.len);
	free(rep.body);
	op_status(c, &ops[nops++], rep.status, rep.details, rep.retry_after);
	ops[nops].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	ops[nops++].data.recv_close_on_server.cancelled = &c->cancelled;
	c->state = CALL_UNARY_SENDING;
	start(c, ops, nops, &c->tag);
	c->finished = 1;
}

/* ---- health Watch (server streaming) --------------------------------- */

static int
watch_current(struct wrk *w, struct wrk_call *c)
{
	if (!wrk_health_known(c->service))
		return GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN;
	if (w->shutdown_started)
		return GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
	return wrk_health_status(w, util_now_ms() + 1000);
}

/* Sends status st; with final, also ends the call with OK. */
static void
watch_send(struct wrk_call *c, int st, int initial, int final)
{
	Grpc__Health__V1__HealthCheckResponse rs = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
	uint8_t buf[16];
	grpc_op ops[3];
	size_t n = 0, len;

	memset(ops, 0, sizeof(ops));
	rs.status = st;
	len = protobuf_c_message_pack(&rs.base, buf);
	if (initial)
		op_initial_md(c, &ops[n++]);
	set_message(c, &ops[n++], buf, len);
	if (final)
		op_status(c, &ops[n++], GRPC_STATUS_OK, "server shutting down", NULL);
	c->last_status = st;
	c->last_msg_ms = util_now_ms();
	c->state = final ? CALL_WATCH_FINISHING : CALL_WATCH_SENDING;
	if (start(c, ops, n, &c->tag) == 0 && final)
		c->finished = 1;
}

/* A stream (Watch, reflection) refused at its start (rep says why):
 * trailers only, the call is over. */
static void
stream_refuse(struct wrk_call *c, const struct wrk_reply *rep)
{
	grpc_op ops[3];

	memset(ops, 0, sizeof(ops));
	op_initial_md(c, &ops[0]);
	op_status(
	    c, &ops[1], rep->status, rep->details, rep->retry_after[0] ? rep->retry_after : NULL);
	ops[2].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	ops[2].data.recv_close_on_server.cancelled = &c->cancelled;
	c->state = CALL_REFL_CLOSING;
	start(c, ops, 3, &c->tag);
	c->finished = 1;
}

static void
watch_start(struct wrk *w, struct wrk_call *c)
{
	Grpc__Health__V1__HealthCheckRequest *rq = NULL;
	uint8_t *req = NULL;
	size_t len = 0;
	grpc_op op;

	if (c->payload && gu_bb_read(c->payload, &req, &len) == 0) {
		struct wrk_reply rep;

		memset(&rep, 0, sizeof(rep));
		if (wire_refused(c->m, req, len, &rep)) {
			free(req);
			stream_refuse(c, &rep);
			return;
		}
		rq = grpc__health__v1__health_check_request__unpack(NULL, len, req);
	}
	snprintf(c->service, sizeof(c->service), "%s", rq ? rq->service : "");
	if (rq)
		grpc__health__v1__health_check_request__free_unpacked(rq, NULL);
	free(req);
	/* Learn about the client going away independently of our sends. */
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	op.data.recv_close_on_server.cancelled = &c->cancelled;
	if (start(c, &op, 1, &c->close_tag) < 0)
		return;
	c->next_watch = w->watches;
	w->watches = c;
	watch_send(c, watch_current(w, c), 1, w->shutdown_started);
}

static void
watch_event(struct wrk *w, struct wrk_call *c, struct wrk_tag *t, int success)
{
	(void)w;
	if (t->close) {
		c->finished = 1; /* client gone or call over */
		return;
	}
	if (!success)
		c->finished = 1;
	else if (c->state == CALL_WATCH_SENDING)
		c->state = CALL_WATCH_IDLE;
}

/* Each tick: tell watchers about changes; on shutdown, say NOT_SERVING. */
static void
watch_poll(struct wrk *w, int force)
{
	struct wrk_call *c;
	int64_t now = util_now_ms();
	int st = -1;

	if (w->watches == NULL || (!force && now < w->next_watch_poll_ms))
		return;
	w->next_watch_poll_ms = now + WATCH_POLL_MS;
	for (c = w->watches; c != NULL; c = c->next_watch) {
		if (c->finished || c->state != CALL_WATCH_IDLE)
			continue;
		if (w->shutdown_started) {
			watch_send(c,
			    GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING, 0,
			    1);
			continue;
		}
		if (!wrk_health_known(c->service))
			continue;
		if (st < 0)
			st = watch_current(w, c);
		if (st != c->last_status)
			watch_send(c, st, 0, 0);
	}
}

/* ---- reflection (bidirectional stream) ----------------------------- */

static void
refl_read(struct wrk_call *c, int initial)
{
	grpc_op ops[2];
	size_t n = 0;

	memset(ops, 0, sizeof(ops));
	if (initial)
		op_initial_md(c, &ops[n++]);
	ops[n].op = GRPC_OP_RECV_MESSAGE;
	ops[n++].data.recv_message.recv_message = &c->recv;
	c->state = CALL_REFL_READING;
	start(c, ops, n, &c->tag);
}

static void
refl_close(struct wrk_call *c, grpc_status_code code, const char *details)
{
	grpc_op ops[2];

	memset(ops, 0, sizeof(ops));
	op_status(c, &ops[0], code, details, NULL);
	ops[1].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	ops[1].data.recv_close_on_server.cancelled = &c->cancelled;
	c->state = CALL_REFL_CLOSING;
	start(c, ops, 2, &c->tag);
	c->finished = 1;
}

static void
refl_event(struct wrk *w, struct wrk_call *c, int success)
{
	uint8_t *req = NULL, *out = NULL;
	size_t len = 0, olen = 0;
	grpc_op op;

	(void)w;
	switch (c->state) {
	case CALL_REFL_READING:
		if (!success) {
			c->finished = 1;
			return;
		}
		if (c->recv == NULL) { /* client half-closed */
			refl_close(c, GRPC_STATUS_OK, "");
			return;
		}
		if (gu_bb_read(c->recv, &req, &len) < 0) {
			refl_close(
			    c, GRPC_STATUS_INVALID_ARGUMENT, "malformed ServerReflectionRequest");
			return;
		}
		{
			struct wrk_reply rep;

			memset(&rep, 0, sizeof(rep));
			if (wire_refused(c->m, req, len, &rep)) {
				free(req);
				refl_close(c, rep.status, rep.details);
				return;
			}
		}
		if (refl_answer(req, len, &out, &olen) < 0) {
			free(req);
			refl_close(
			    c, GRPC_STATUS_INVALID_ARGUMENT, "malformed ServerReflectionRequest");
			return;
		}
		free(req);
		grpc_byte_buffer_destroy(c->recv);
		c->recv = NULL;
		c->last_msg_ms = util_now_ms();
		memset(&op, 0, sizeof(op));
		set_message(c, &op, out, olen);
		free(out);
		c->state = CALL_REFL_WRITING;
		start(c, &op, 1, &c->tag);
		return;
	case CALL_REFL_WRITING:
		if (!success)
			c->finished = 1;
		else
			refl_read(c, 0);
		return;
	default: c->finished = 1; return;
	}
}

/* ---- dispatch ------------------------------------------------------- */

static void
on_arrival(struct wrk *w, struct wrk_call *c)
{
	char in_corr[PAY_CORR_MAX + 8] = "";
	int64_t left;

	if (!w->shutdown_started)
		post_request(w, c->m, c->midx);
	w->last_activity_ms = util_now_ms();
	c->start_ns = util_now_ns();
	if (!gu_md_get(&c->req_md, "x-correlation-id", in_corr, sizeof(in_corr)))
		gu_md_get(&c->req_md, "x-request-id", in_corr, sizeof(in_corr));
	pay_correlation_id(in_corr, c->corr);
	if (c->m) {
		snprintf(c->path, sizeof(c->path), "%s", c->m->path);
	} else {
		snprintf(c->path, sizeof(c->path), "%.*s",
		    (int)GRPC_SLICE_LENGTH(c->details.method),
		    (const char *)GRPC_SLICE_START_PTR(c->details.method));
		c->deadline = c->details.deadline;
	}
	log_set_context(c->corr, c->m ? c->m->name : c->path);
	left = gu_ms_left(c->deadline);
	w->rpcs_started++;
	c->last_msg_ms = util_now_ms();
	if (c->m != NULL && c->m->kind == WRK_WATCH) {
		/* Streams are long-lived: not counted as activity that keeps
		 * a connection from idling out (STREAM_IDLE_TIMEOUT_SECONDS
		 * bounds them on their own). */
		watch_start(w, c);
	} else if (c->m != NULL && c->m->kind == WRK_REFLECT) {
		struct wrk_identity who;
		struct wrk_reply rep;

		memset(&rep, 0, sizeof(rep));
		/* The schema is no secret, but who may enumerate it is the
		 * operator's call (REFLECTION_PUBLIC). */
		if (!w->cfg->reflection_public &&
		    wrk_auth_call(w->auth, w, &c->req_md, wrk_front_peer(w->front), w->addr,
		        left == INT64_MAX ? -1 : util_now_ms() + left, &who, &rep)) {
			stream_refuse(c, &rep);
		} else {
			c->next_watch = w->watches;
			w->watches = c;
			refl_read(c, 1);
		}
	} else {
		c->counted = 1;
		w->active++;
		status_active(w);
		unary_dispatch(w, c, left == INT64_MAX ? -1 : util_now_ms() + left, left);
	}
	log_set_context(NULL, NULL);
}

static void
on_event(struct wrk *w, struct wrk_tag *t, int success)
{
	struct wrk_call *c = t->c;

	c->pending--;
	if (c->state == CALL_WAITING) {
		if (!success) { /* server shutting down */
			c->finished = 1;
		} else {
			on_arrival(w, c);
		}
	} else if (c->state == CALL_UNARY_SENDING) {
		c->finished = 1;
	} else if (c->state >= CALL_WATCH_IDLE && c->state <= CALL_WATCH_FINISHING) {
		watch_event(w, c, t, success);
	} else {
		refl_event(w, c, success);
	}
	if (c->finished && c->pending == 0) {
		if (c->state != CALL_WAITING) {
			metrics_rpc(w->metrics, metrics_method_from_name(c->m ? c->m->name : NULL),
			    c->have_status ? (int)c->code : GRPC_STATUS_CANCELLED,
			    (double)(util_now_ns() - c->start_ns) / 1e9);
			char msg[512] = "";

			/* What the client was told when it was not OK: operators read
			 * the reason here, and the test harness checks that no
			 * database text ever is one (tests/suites/99-no-database-text). */
			if (c->have_status && c->code != GRPC_STATUS_OK)
				snprintf(msg, sizeof(msg), "%.*s",
				    (int)GRPC_SLICE_LENGTH(c->status_details),
				    (const char *)GRPC_SLICE_START_PTR(c->status_details));
			log_set_context(c->corr, c->m ? c->m->name : c->path);
			if (msg[0] != '\0')
				log_info("rpc", LF_S("code", gu_status_name(c->code)),
				    LF_D(
				        "duration_ms", (double)(util_now_ns() - c->start_ns) / 1e6),
				    LF_B("cancelled", c->cancelled), LF_S("message", msg));
			else
				log_info("rpc",
				    LF_S("code",
				        c->have_status ? gu_status_name(c->code) : "CANCELLED"),
				    LF_D(
				        "duration_ms", (double)(util_now_ns() - c->start_ns) / 1e6),
				    LF_B("cancelled", c->cancelled));
			log_set_context(NULL, NULL);
		}
		free_call(w, c);
	}
}

static void
shutdown_now(struct wrk *w)
{
	w->shutdown_started = 1;
	w->shutdown_deadline_ms = util_now_ms() +
	    (w->no_grace ? 0 : (int64_t)w->cfg->shutdown_grace_s * 1000);
	log_debug("closing connection", LF_S("reason", w->stop_reason), LF_I("active", w->active),
	    LF_I("streams_refused", (int64_t)wrk_front_streams_refused(w->front)));
	/* Watchers hear NOT_SERVING first, then their streams end. */
	watch_poll(w, 1);
	grpc_server_shutdown_and_notify(w->server, w->cq, &shutdown_tag);
}

/*
 * A connection ends in two steps, so that no stream reaches grpc after its
 * shutdown began: grpc core cancels such a stream (CANCELLED, which clients
 * do not retry), and a client multiplexing calls keeps opening streams
 * until it reads the GOAWAY. close_begin has the front make its cut
 * (wrk_front_cut): streams opened from then on never reach grpc. Once every
 * stream the front passed has become a call here (close_continue), or after
 * CUT_MAX_MS (grpc refused a stream itself, or the client reset one before
 * it was whole), shutdown_now starts grpc's shutdown. Its final GOAWAY
 * names the last stream grpc got, and the client retries the later ones
 * on a new connection: HTTP/2 says they were not processed.
 */
static void
close_begin(struct wrk *w, const char *reason, int code)
{
	if (w->closing)
		return;
	w->closing = 1;
	w->stop_reason = reason;
	w->exit_code = code;
	status_set(w, SUP_PHASE_CLOSING);
	if (wrk_front_state(w->front) != WRK_FRONT_OPEN) {
		shutdown_now(w); /* the client is gone: nothing to cut */
		return;
	}
	w->cut_deadline_ms = util_now_ms() + CUT_MAX_MS;
	wrk_front_cut(w->front);
}

static void
close_continue(struct wrk *w, int64_t now)
{
	uint64_t passed = 0;
	int done = wrk_front_cut_done(w->front, &passed);

	if (done && (uint64_t)w->rpcs_started >= passed) {
		shutdown_now(w);
	} else if (wrk_front_state(w->front) != WRK_FRONT_OPEN || now >= w->cut_deadline_ms) {
		log_debug("shutting down before every passed stream became a call",
		    LF_I("cut", done), LF_I("passed", (int64_t)passed),
		    LF_I("calls", w->rpcs_started));
		shutdown_now(w);
	}
}

/*
 * The database is gone: before the server shuts down, every call the
 * client already sent must be answered. grpc core holds calls beyond the
 * requests we posted (REQUESTS_PER_METHOD) unmatched, and shutdown cancels
 * those (CANCELLED, which clients do not retry). So post enough requests
 * for every stream the connection may have open; the queued calls are
 * matched at once and answered UNAVAILABLE (unary_dispatch), which clients
 * retry on a new connection, with the same idempotency key. Streams opened
 * after the GOAWAY are refused by HTTP/2 and retried transparently.
 */
static void
drain_begin(struct wrk *w)
{
	size_t i;
	int k;

	w->draining = 1;
	w->last_activity_ms = util_now_ms();
	w->drain_until_ms = w->last_activity_ms + DRAIN_MAX_MS;
	for (i = 0; i < wrk_nmethods; i++) {
		if (wrk_methods[i].kind != WRK_UNARY || wrk_methods[i].exempt)
			continue;
		for (k = REQUESTS_PER_METHOD; k < w->cfg->max_concurrent_streams; k++)
			post_request(w, &wrk_methods[i], i);
	}
}

/* Streams (Watch, reflection) with no message for STREAM_IDLE_TIMEOUT_SECONDS
 * are ended: an open stream must not hold a worker forever. */
static void
streams_idle(struct wrk *w, int64_t now)
{
	int64_t limit = (int64_t)w->cfg->stream_idle_timeout_s * 1000;
	struct wrk_call *c;

	for (c = w->watches; c != NULL; c = c->next_watch) {
		if (c->finished || c->call == NULL || now - c->last_msg_ms < limit)
			continue;
		log_info("stream idle; closing it", LF_S("method", c->m ? c->m->name : "?"),
		    LF_I("idle_ms", now - c->last_msg_ms));
		metrics_stream_closed_idle(w->metrics);
		c->last_msg_ms = now; /* once */
		grpc_call_cancel_with_status(c->call, GRPC_STATUS_UNAVAILABLE,
		    "stream idle for too long (STREAM_IDLE_TIMEOUT_SECONDS); open a new one", NULL);
	}
}

static void
housekeeping(struct wrk *w)
{
	int64_t now = util_now_ms();

	watch_poll(w, 0);
	streams_idle(w, now);
	if (w->shutdown_started) {
		if (!w->cancelled_all && now >= w->shutdown_deadline_ms) {
			log_warn("shutdown grace expired; cancelling in-flight calls",
			    LF_I("active", w->active));
			grpc_server_cancel_all_calls(w->server);
			w->cancelled_all = 1;
		}
		return;
	}
	if (w->closing) {
		close_continue(w, now);
		return;
	}
	if (got_term)
		close_begin(w, "sigterm", SUP_EXIT_OK);
	else if (got_reclaim && w->active == 0) {
		/* Every worker is taken and a new client waits (sup_proto.h). */
		w->no_linger = 1;
		/* No unary RPC is in flight; open streams (Watch, reflection)
		 * must not hold the worker through the shutdown grace. */
		w->no_grace = 1;
		close_begin(w, "reclaimed", SUP_EXIT_OK);
	} else if (w->active == 0 &&
	    (w->db_lost || (w->db_down && w->last_activity_ms > w->conn_start_ms))) {
		if (!w->draining)
			drain_begin(w);
		else if (now - w->last_activity_ms >= DRAIN_QUIET_MS || now >= w->drain_until_ms)
			close_begin(w, w->db_lost ? "db_lost" : "db_down",
			    w->db_lost ? SUP_EXIT_DB_LOST : SUP_EXIT_DB_DOWN);
	} else if (wrk_front_state(w->front) == WRK_FRONT_CLOSED) {
		if (wrk_front_reason(w->front) == METRICS_CLOSE_GUARD) {
			char a = SUP_MSG_ABUSE; /* the supervisor penalizes the address */

			if (write(w->ctl_fd, &a, 1) != 1)
				log_warn("could not report the abusive client to the supervisor");
		}
		close_begin(w, metrics_close_name(wrk_front_reason(w->front)), SUP_EXIT_OK);
	} else if (w->rpcs_started == 0 &&
	    now - w->conn_start_ms >= (int64_t)w->cfg->first_rpc_timeout_s * 1000)
		close_begin(w, "first_rpc_timeout", SUP_EXIT_OK);
	else if (w->active == 0 &&
	    now - w->last_activity_ms >= (int64_t)w->cfg->worker_idle_timeout_s * 1000)
		close_begin(w, "idle_timeout", SUP_EXIT_OK);
	else if (now - w->conn_start_ms >= (int64_t)w->cfg->worker_max_age_s * 1000)
		close_begin(w, "max_age", SUP_EXIT_OK);
	if (got_reclaim && !w->closing)
		got_reclaim = 0; /* an RPC started meanwhile: the supervisor asks another */
}

/* Waits for the client fd from the supervisor. While idle, watches the
 * Postgres socket so a pooled worker whose connection died exits before a
 * client is ever handed to it. */
static int
receive_client(struct wrk *w)
{
	int64_t nodb_deadline = util_now_ms() + 1000;

	for (;;) {
		struct pollfd p[3];
		int fd, np = 1, rl_slot = -1, handed_on;
		char busy;

		if (got_term)
			exit(SUP_EXIT_OK);
		p[0].fd = w->ctl_fd;
		p[0].events = POLLIN;
		p[0].revents = 0;
		if (w->ledger != NULL) {
			p[1].fd = ledger_socket(w->ledger);
			p[1].events = POLLIN;
			p[1].revents = 0;
			np = 2;
		}
		if (rl_fd(w->rl) >= 0) {
			rl_slot = np;
			p[np].fd = rl_fd(w->rl);
			p[np].events = POLLIN;
			p[np++].revents = 0;
		}
		if (poll(p, (nfds_t)np, w->db_down || rl_down(w->rl) ? 100 : 1000) < 0) {
			if (errno == EINTR)
				continue;
			exit(SUP_EXIT_IPC);
		}
		if (w->db_down && !(p[0].revents & POLLIN) && util_now_ms() >= nodb_deadline)
			exit(SUP_EXIT_DB_DOWN); /* let a fresh worker retry */
		if (rl_down(w->rl) && !(p[0].revents & POLLIN) && util_now_ms() >= nodb_deadline)
			exit(SUP_EXIT_RL_DOWN); /* a fresh worker reconnects to Redis */
		/* A client already handed over wins over exiting: it is served
		 * (fail-open, or UNAVAILABLE + GOAWAY) instead of being reset. */
		if (rl_slot >= 0 && p[rl_slot].revents && !(p[0].revents & POLLIN)) {
			/* Redis never speaks first: it restarted or went away. */
			log_warn(
			    "redis closed the idle connection; exiting before taking a client");
			exit(SUP_EXIT_RL_DOWN);
		}
		if (w->ledger != NULL && p[1].revents && !(p[0].revents & POLLIN)) {
			/* Postgres speaks first only to say goodbye. */
			log_warn(
			    "database closed the idle connection; exiting before taking a client");
			exit(SUP_EXIT_DB_LOST);
		}
		if (!(p[0].revents & (POLLIN | POLLHUP)))
			continue;
		switch (sup_proto_recv_client(w->ctl_fd, &fd, w->peer, &handed_on)) {
		case 1: break;
		case 0: exit(got_term ? SUP_EXIT_OK : SUP_EXIT_IPC);
		case -1:
			if (errno == EINTR)
				continue;
			exit(got_term ? SUP_EXIT_OK : SUP_EXIT_IPC);
		default:
			log_error("malformed hand-off frame on the supervisor channel");
			exit(SUP_EXIT_IPC);
		}
#ifdef PAYMENTD_TEST_HOOKS
		/* Test-only: die like a pool worker leaving at the instant its
		 * client arrives, to prove the supervisor hands it on. */
		if (!handed_on && getenv("PAYMENTD_TEST_HANDOFF_DIE") != NULL)
			_exit(SUP_EXIT_RL_DOWN);
#endif
		if (handed_on)
			log_info(
			    "took a connection handed on from a worker that died before taking it",
			    LF_S("peer", w->peer));
		rl_client_identity("", w->peer, w->addr, sizeof(w->addr));
		/* Acknowledge before touching the connection: until then the
		 * supervisor may still give it to another worker. */
		busy = SUP_MSG_BUSY;
		if (write(w->ctl_fd, &busy, 1) != 1)
			exit(SUP_EXIT_IPC);
#ifdef PAYMENTD_TEST_HOOKS
		/* Test-only: die at once after taking a connection from this
		 * address and reading the start of it, as a worker killed
		 * mid-RPC does, often before the supervisor has read the
		 * SUP_MSG_BUSY: the connection must end, not go to another
		 * worker that would wait for a preface already consumed. */
		{
			const char *ip = getenv("PAYMENTD_TEST_BUSY_DIE_ADDR");
			if (ip != NULL && strcmp(ip, w->addr) == 0) {
				struct pollfd q = { fd, POLLIN, 0 };
				char junk[24];

				log_warn("test hook: dying after taking the connection",
				    LF_S("peer", w->peer));
				if (poll(&q, 1, 2000) > 0 && recv(fd, junk, sizeof(junk), 0) < 0)
					_exit(SUP_EXIT_IPC);
				_exit(SUP_EXIT_SOFTWARE);
			}
		}
#endif
		return fd;
	}
}

static void
setup_signals(void)
{
	struct sigaction sa;

	util_child_signals(on_term);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_reclaim;
	sigaction(SIGUSR1, &sa, NULL);
}

static void
lock_down(const struct config *cfg)
{
	sup_lockdown_enter(cfg, SANDBOX_WORKER, cfg->chroot_dir, 64, "worker");
}

/*
 * Gives the client to the front and waits for it to be a connection
 * (WRK_FRONT_OPEN), handling the cases where it never becomes one. Returns
 * 1 when grpc can have it; 0 when the client left without a byte and this
 * worker is back in the pool (it has said SUP_MSG_POOLED).
 */
static int
front_open(struct wrk *w, int fd)
{
	int aborted = 0;

	wrk_front_start(w->front, fd, w->peer);
	for (;;) {
		struct pollfd p = { wrk_front_event_fd(w->front), POLLIN, 0 };
		enum wrk_front_state st;
		char c, msg;

		if ((got_term || got_reclaim) && !aborted) {
			wrk_front_abort(w->front); /* only before the first byte */
			aborted = 1;
		}
		if (poll(&p, 1, 100) < 0 && errno != EINTR)
			exit(SUP_EXIT_SOFTWARE);
		while (read(p.fd, &c, 1) == 1)
			;
		st = wrk_front_state(w->front);
		if (st == WRK_FRONT_OPEN)
			return 1;
		if (st == WRK_FRONT_CLOSED) {
			/* Client input was seen (TLS failed or timed out). */
			metrics_conn_closed(w->metrics, wrk_front_reason(w->front));
			util_exit_now(SUP_EXIT_OK, !w->cfg->sandbox);
		}
		if (st != WRK_FRONT_EMPTY)
			continue;
		metrics_conn_closed(w->metrics, wrk_front_reason(w->front));
		log_debug("client left without sending a byte; back in the pool",
		    LF_S("peer", w->peer),
		    LF_S("reason", metrics_close_name(wrk_front_reason(w->front))));
		if (got_term)
			exit(SUP_EXIT_OK);
		got_reclaim = 0;
		status_set(w, SUP_PHASE_POOL);
		msg = SUP_MSG_POOLED;
		if (write(w->ctl_fd, &msg, 1) != 1)
			exit(SUP_EXIT_IPC);
		return 0;
	}
}

void
wrk_worker_run(
    const struct config *cfg, int ctl_fd, struct metrics *metrics, struct sup_status *status)
{
	struct wrk w;
	grpc_arg args[4];
	grpc_channel_args ca = { 0, args };
	grpc_server_credentials *creds;
	grpc_event ev;
	char err[512], ready;
	int fd, one = 1;
	size_t i;
	SSL_CTX *tls = NULL;

	memset(&w, 0, sizeof(w));
	w.cfg = cfg;
	w.ctl_fd = ctl_fd;
	w.watch_fd = -1;
	w.metrics = metrics;
	w.status = status;
	setup_signals();
	/* If the supervisor dies, drain rather than linger as orphans. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	log_init("worker", cfg->log_level, cfg->log_format);

	if (ledger_open(cfg->database_url, cfg->db_retry_max, &w.ledger, err, sizeof(err)) < 0) {
		log_warn("database unavailable at worker start; will answer NOT_SERVING",
		    LF_S("error", err));
		w.db_down = 1;
	}

	/* Before lock-down: the only connect(2) the limiter ever makes. */
	if (rl_open(cfg, &w.rl, err, sizeof(err)) < 0) {
		log_error("rate limiter configuration", LF_S("error", err));
		exit(SUP_EXIT_SOFTWARE);
	}
	w.auth = wrk_auth_new(); /* before lock-down: fetches SHA-256 */

	pay_init();
	if (refl_init(err, sizeof(err)) < 0) {
		log_error("reflection setup failed", LF_S("error", err));
		exit(SUP_EXIT_SOFTWARE);
	}
	/* Before lock-down: OpenSSL reads its configuration and seeds. */
	if (cfg->tls) {
		tls = tls_server_ctx(cfg, SUP_FD_TLS, SUP_FD_KEY, err, sizeof(err));
		if (tls == NULL) {
			log_error("TLS setup failed", LF_S("error", err));
			exit(SUP_EXIT_SOFTWARE);
		}
		close(SUP_FD_TLS);
	}
	w.front = wrk_front_new(cfg, tls, metrics, err, sizeof(err));
	if (w.front == NULL) {
		log_error("connection front setup failed", LF_S("error", err));
		exit(SUP_EXIT_SOFTWARE);
	}
	gu_tune_runtime(); /* before grpc_init: see grpc_tune.cc */
	grpc_init();
	w.cq = grpc_completion_queue_create_for_next(NULL);
	args[ca.num_args].type = GRPC_ARG_INTEGER;
	args[ca.num_args].key = (char *)GRPC_ARG_MAX_CONCURRENT_STREAMS;
	args[ca.num_args++].value.integer = cfg->max_concurrent_streams;
	args[ca.num_args].type = GRPC_ARG_INTEGER;
	args[ca.num_args].key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
	args[ca.num_args++].value.integer = 64 * 1024;
	/* The frame guard caps header blocks at MAX_HEADER_BYTES; grpc's own
	 * metadata limit matches, so neither side accepts what the other
	 * would refuse. */
	args[ca.num_args].type = GRPC_ARG_INTEGER;
	args[ca.num_args].key = (char *)GRPC_ARG_MAX_METADATA_SIZE;
	args[ca.num_args++].value.integer = cfg->max_header_bytes;
	w.server = grpc_server_create(&ca, NULL);
	for (i = 0; i < wrk_nmethods; i++)
		w.handles[i] = grpc_server_register_method(w.server, wrk_methods[i].path, NULL,
		    wrk_methods[i].kind == WRK_REFLECT ? GRPC_SRM_PAYLOAD_NONE
		                                       : GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER,
		    0);
	grpc_server_register_completion_queue(w.server, w.cq, NULL);
	grpc_server_start(w.server);

	lock_down(cfg);

	ready = w.db_down ? SUP_MSG_NODB : SUP_MSG_READY;
	if (write(ctl_fd, &ready, 1) != 1)
		exit(SUP_EXIT_IPC);
#ifdef PAYMENTD_TEST_HOOKS
	/* Test-only: a byte sup_proto.h does not define, as a compromised
	 * worker might send; the supervisor must kill us for it. */
	if (getenv("PAYMENTD_TEST_BAD_BYTE") != NULL && write(ctl_fd, "X", 1) != 1)
		exit(SUP_EXIT_IPC);
#endif
	do {
		fd = receive_client(&w);
		/* The supervisor accepted it blocking; the front wants it
		 * non-blocking. */
		if (util_set_nonblock(fd, 1) < 0) {
			log_error("fcntl O_NONBLOCK failed", LF_S("error", strerror(errno)));
			exit(SUP_EXIT_SOFTWARE);
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* not TCP: harmless */
		if (w.status != NULL) {
			__atomic_store_n(&w.status->conn_start_ms, util_now_ms(), __ATOMIC_RELAXED);
			__atomic_store_n(&w.status->rpcs_done, 0, __ATOMIC_RELAXED);
		}
		status_set(&w, SUP_PHASE_FRONT);
	} while (!front_open(&w, fd));

	status_set(&w, SUP_PHASE_SERVING);
	w.conn_start_ms = w.last_activity_ms = util_now_ms();
	creds = grpc_insecure_server_credentials_create();
	grpc_server_add_channel_from_fd(w.server, wrk_front_grpc_fd(w.front), creds);
	grpc_server_credentials_release(creds);
#ifdef PAYMENTD_TEST_HOOKS
	wrk_test_after_handshake(SUP_FD_KEY);
#endif

	for (i = 0; i < wrk_nmethods; i++) {
		int k;
		for (k = 0; k < REQUESTS_PER_METHOD; k++)
			post_request(&w, &wrk_methods[i], i);
	}
	post_request(&w, NULL, 0);

	for (;;) {
		ev = grpc_completion_queue_next(w.cq,
		    gu_deadline_ms(w.closing && !w.shutdown_started ? CUT_POLL_MS : TICK_MS), NULL);
		if (ev.type == GRPC_OP_COMPLETE) {
			if (ev.tag == &shutdown_tag)
				break;
			on_event(&w, ev.tag, ev.success);
		}
		housekeeping(&w);
	}

	/* All calls are done and GOAWAY was sent: the front forwards it, then
	 * gives the client a moment to read it and close its end first. */
	wrk_front_finish(w.front, w.no_linger ? 100 : CLOSE_LINGER_MS);
	metrics_conn_closed(w.metrics, metrics_close_from_name(w.stop_reason));
	log_info("connection closed", LF_S("reason", w.stop_reason ? w.stop_reason : "?"),
	    LF_I("exit_code", w.exit_code), LF_I("rpcs", w.rpcs_started),
	    LF_I("streams_refused", (int64_t)wrk_front_streams_refused(w.front)),
	    LF_I("tls_resumed", wrk_front_resumed(w.front)));
	/* Skip grpc teardown: the process ends here and the kernel reclaims
	 * everything; a slow grpc_shutdown would only delay the next worker. */
	util_exit_now(w.exit_code, !w.cfg->sandbox);
}
