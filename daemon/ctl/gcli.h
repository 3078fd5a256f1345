/* SPDX-License-Identifier: MIT */
/*
 * gcli.h — a minimal blocking unary gRPC client over the grpc C core.
 *
 * Contract: gcli_unary() performs one unary call on an existing channel and
 * fills *res; it returns 0 whenever the call completed with any gRPC status
 * (inspect res->status) and -1 only if grpc refused to start the call.
 * res->body is malloc'd and owned by the caller (gcli_result_free). Thread
 * safe: each call uses its own completion queue, so many threads may share
 * one channel (that is how tests make concurrent streams on one HTTP/2
 * connection).
 */
#ifndef PAYMENTD_GCLI_H
#define PAYMENTD_GCLI_H

#include <stddef.h>
#include <stdint.h>
#include <grpc/grpc.h>

struct gcli_md {
	const char *key;
	const char *value;
};

struct gcli_result {
	grpc_status_code status;
	char details[512];
	uint8_t *body;
	size_t len;
	int has_body;
	char correlation_id[129]; /* from initial metadata, if echoed */
	char retry_after[32];     /* from trailing metadata, if any */
};

void gcli_global_init(void);
/* Channel to host:port; fresh_connection=1 disables subchannel sharing so
 * each channel gets its own TCP connection. */
grpc_channel *gcli_channel(const char *target, int fresh_connection);
int gcli_unary(grpc_channel *ch, const char *method, const uint8_t *req, size_t len, int timeout_ms,
    const struct gcli_md *md, size_t nmd, struct gcli_result *res);
void gcli_result_free(struct gcli_result *res);

#endif
