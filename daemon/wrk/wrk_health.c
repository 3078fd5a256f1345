/* SPDX-License-Identifier: MIT */
/*
 * wrk_health.c — grpc.health.v1.Health/Check.
 *
 * "" (the whole server) and "payment.v1.PaymentService" are SERVING only
 * when this worker's Postgres connection answered a ping within a second;
 * anything else is NOT_FOUND, as the health protocol specifies for Check.
 *
 * The answer is this worker's status at most STATUS_MAX_AGE_MS old: a
 * client (or a load balancer) that polls Check in a loop costs no more than
 * one Postgres round trip a second, and a database loss is still seen within
 * that second (the ledger also notices it on the next payment).
 */
#include "wrk.h"
#include "common/util.h"
#include "grpc/health/v1/health.pb-c.h"

#include <string.h>

#define PING_BUDGET_MS    1000
#define STATUS_MAX_AGE_MS 1000

static struct {
	int status;
	int64_t at_ms; /* 0: never measured */
} cached;

int
wrk_health_known(const char *s)
{
	return s[0] == '\0' || strcmp(s, "payment.v1.PaymentService") == 0 ||
	    strcmp(s, "payment.v1.AccountService") == 0 || strcmp(s, "grpc.health.v1.Health") == 0;
}

int
wrk_health_status(struct wrk *w, int64_t dl)
{
	struct ledger *l = wrk_ledger(w);
	enum ledger_rc rc = LEDGER_UNAVAILABLE;
	int64_t now = util_now_ms();

	if (cached.at_ms != 0 && now - cached.at_ms < STATUS_MAX_AGE_MS &&
	    (l == NULL || !ledger_broken(l)))
		return cached.status;
	if (l != NULL && !ledger_broken(l))
		rc = ledger_ping(l, dl);
	if (rc == LEDGER_UNAVAILABLE && l != NULL)
		wrk_db_lost(w);
	cached.status = rc == LEDGER_OK
	    ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
	    : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
	cached.at_ms = now;
	return cached.status;
}

void
wrk_health_check(struct wrk_ctx *ctx, const uint8_t *buf, size_t len, struct wrk_reply *rep)
{
	Grpc__Health__V1__HealthCheckRequest *rq;
	Grpc__Health__V1__HealthCheckResponse rs = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
	int64_t dl = util_now_ms() + PING_BUDGET_MS;

	rq = grpc__health__v1__health_check_request__unpack(NULL, len, buf);
	if (rq == NULL) {
		wrk_reply_status(rep, GRPC_STATUS_INVALID_ARGUMENT, "malformed HealthCheckRequest");
		return;
	}
	if (!wrk_health_known(rq->service)) {
		wrk_reply_status(rep, GRPC_STATUS_NOT_FOUND, "unknown service %s", rq->service);
		goto out;
	}
	if (ctx->deadline_ms >= 0 && ctx->deadline_ms < dl)
		dl = ctx->deadline_ms;
	rs.status = wrk_health_status(ctx->w, dl);
	rep->len = protobuf_c_message_get_packed_size(&rs.base);
	rep->body = xmalloc(rep->len);
	protobuf_c_message_pack(&rs.base, rep->body);
	rep->status = GRPC_STATUS_OK;
out:
	grpc__health__v1__health_check_request__free_unpacked(rq, NULL);
}
