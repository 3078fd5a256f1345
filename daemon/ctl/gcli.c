/* SPDX-License-Identifier: MIT */
/*
 * gcli.c — blocking unary client calls (gcli.h).
 */
#include "gcli.h"
#include "grpc/grpc_util.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

void
gcli_global_init(void)
{
	grpc_init();
}

grpc_channel *
gcli_channel(const char *target, int fresh_connection)
{
	grpc_channel_credentials *creds = grpc_insecure_credentials_create();
	grpc_arg args[2];
	grpc_channel_args ca = { 0, args };
	grpc_channel *ch;

	args[ca.num_args].type = GRPC_ARG_INTEGER;
	args[ca.num_args].key = (char *)GRPC_ARG_ENABLE_RETRIES;
	args[ca.num_args++].value.integer = 0;
	if (fresh_connection) {
		args[ca.num_args].type = GRPC_ARG_INTEGER;
		args[ca.num_args].key = (char *)GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL;
		args[ca.num_args++].value.integer = 1;
	}
	ch = grpc_channel_create(target, creds, &ca);
	grpc_channel_credentials_release(creds);
	return ch;
}

int
gcli_unary(grpc_channel *ch, const char *method, const uint8_t *req, size_t len, int timeout_ms,
    const struct gcli_md *md, size_t nmd, struct gcli_result *res)
{
	grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
	grpc_metadata_array init_md, trail_md;
	grpc_byte_buffer *send = gu_bb_new(req, len), *recv = NULL;
	grpc_metadata send_md[8];
	grpc_slice method_s = grpc_slice_from_static_string(method);
	grpc_slice details = grpc_empty_slice();
	grpc_op ops[6];
	grpc_call *call;
	grpc_event ev;
	size_t i;
	int rc = -1;

	memset(res, 0, sizeof(*res));
	memset(ops, 0, sizeof(ops));
	grpc_metadata_array_init(&init_md);
	grpc_metadata_array_init(&trail_md);
	if (nmd > ARRAY_LEN(send_md))
		nmd = ARRAY_LEN(send_md);
	for (i = 0; i < nmd; i++) {
		memset(&send_md[i], 0, sizeof(send_md[i]));
		send_md[i].key = grpc_slice_from_copied_string(md[i].key);
		send_md[i].value = grpc_slice_from_copied_string(md[i].value);
	}
	call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, method_s, NULL,
	    gu_deadline_ms(timeout_ms), NULL);
	if (call == NULL)
		goto out;

	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[0].data.send_initial_metadata.count = nmd;
	ops[0].data.send_initial_metadata.metadata = send_md;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = send;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &init_md;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &recv;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata = &trail_md;
	ops[5].data.recv_status_on_client.status = &res->status;
	ops[5].data.recv_status_on_client.status_details = &details;
	if (grpc_call_start_batch(call, ops, 6, (void *)1, NULL) != GRPC_CALL_OK) {
		grpc_call_unref(call);
		goto out;
	}
	ev = grpc_completion_queue_pluck(cq, (void *)1, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	if (ev.type != GRPC_OP_COMPLETE)
		abort(); /* pluck with an infinite deadline cannot time out */
	snprintf(res->details, sizeof(res->details), "%.*s", (int)GRPC_SLICE_LENGTH(details),
	    (const char *)GRPC_SLICE_START_PTR(details));
	if (recv != NULL) {
		if (gu_bb_read(recv, &res->body, &res->len) == 0)
			res->has_body = 1;
		grpc_byte_buffer_destroy(recv);
	}
	gu_md_get(&init_md, "x-correlation-id", res->correlation_id, sizeof(res->correlation_id));
	gu_md_get(&trail_md, "retry-after", res->retry_after, sizeof(res->retry_after));
	grpc_call_unref(call);
	rc = 0;
out:
	for (i = 0; i < nmd; i++) {
		grpc_slice_unref(send_md[i].key);
		grpc_slice_unref(send_md[i].value);
	}
	grpc_slice_unref(details);
	grpc_byte_buffer_destroy(send);
	grpc_metadata_array_destroy(&init_md);
	grpc_metadata_array_destroy(&trail_md);
	grpc_completion_queue_shutdown(cq);
	while (
	    grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
	    GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(cq);
	return rc;
}

void
gcli_result_free(struct gcli_result *res)
{
	free(res->body);
	res->body = NULL;
	res->len = 0;
}
