/* SPDX-License-Identifier: MIT */
/*
 * wrk_life.c — the payment lifecycle after authorization: CapturePayment,
 * VoidPayment, RefundPayment, ListPayments.
 *
 * SCAFFOLD (issue 15, being built): answers UNIMPLEMENTED until filled in.
 */
#include "wrk.h"

void
wrk_life_capture(struct wrk_ctx *ctx, const uint8_t *req, size_t len, struct wrk_reply *rep)
{
	(void)ctx, (void)req, (void)len;
	wrk_reply_status(rep, GRPC_STATUS_UNIMPLEMENTED, "CapturePayment is not built yet");
}

void
wrk_life_void(struct wrk_ctx *ctx, const uint8_t *req, size_t len, struct wrk_reply *rep)
{
	(void)ctx, (void)req, (void)len;
	wrk_reply_status(rep, GRPC_STATUS_UNIMPLEMENTED, "VoidPayment is not built yet");
}

void
wrk_life_refund(struct wrk_ctx *ctx, const uint8_t *req, size_t len, struct wrk_reply *rep)
{
	(void)ctx, (void)req, (void)len;
	wrk_reply_status(rep, GRPC_STATUS_UNIMPLEMENTED, "RefundPayment is not built yet");
}

void
wrk_life_list_payments(struct wrk_ctx *ctx, const uint8_t *req, size_t len, struct wrk_reply *rep)
{
	(void)ctx, (void)req, (void)len;
	wrk_reply_status(rep, GRPC_STATUS_UNIMPLEMENTED, "ListPayments is not built yet");
}
