/* SPDX-License-Identifier: MIT */
/*
 * wrk_account.c — AccountService (CreateAccount, GetAccount,
 * UpdateAccountStatus) and ListAccountEntries.
 *
 * SCAFFOLD (issue 15, being built): answers UNIMPLEMENTED until filled in.
 */
#include "wrk.h"

void
wrk_acct_list_entries(struct wrk_ctx *ctx, const uint8_t *req, size_t len, struct wrk_reply *rep)
{
	(void)ctx, (void)req, (void)len;
	wrk_reply_status(rep, GRPC_STATUS_UNIMPLEMENTED, "ListAccountEntries is not built yet");
}

void
wrk_acct_create(struct wrk_ctx *ctx, const uint8_t *req, size_t len, struct wrk_reply *rep)
{
	(void)ctx, (void)req, (void)len;
	wrk_reply_status(rep, GRPC_STATUS_UNIMPLEMENTED, "CreateAccount is not built yet");
}

void
wrk_acct_get(struct wrk_ctx *ctx, const uint8_t *req, size_t len, struct wrk_reply *rep)
{
	(void)ctx, (void)req, (void)len;
	wrk_reply_status(rep, GRPC_STATUS_UNIMPLEMENTED, "GetAccount is not built yet");
}

void
wrk_acct_update_status(struct wrk_ctx *ctx, const uint8_t *req, size_t len, struct wrk_reply *rep)
{
	(void)ctx, (void)req, (void)len;
	wrk_reply_status(rep, GRPC_STATUS_UNIMPLEMENTED, "UpdateAccountStatus is not built yet");
}
