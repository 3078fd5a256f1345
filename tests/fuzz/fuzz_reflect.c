/* SPDX-License-Identifier: MIT */
/*
 * fuzz_reflect.c — libFuzzer harness for server reflection: refl_answer()
 * (daemon/wrk_reflect.c) turns any client bytes into a response over the
 * descriptor set embedded at build time (refl_init() once, as a worker
 * does before its sandbox).
 *
 * Contract: never crashes, leaks or trips ASan/UBSan; aborts (a finding)
 * if refl_answer() accepts a request and returns bytes that are not a
 * valid ServerReflectionResponse, or one without a response case, or if it
 * rejects bytes that do decode as a ServerReflectionRequest (protocol
 * errors must become error_response messages, never stream failures).
 * One known exception is tolerated so the search can go on: finding F1.
 */
#include "wrk/wrk_reflect.h"
#include "grpc/reflection/v1/reflection.pb-c.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Does m, or any message nested in it, hold an unknown field number 0
 * (finding F1)? Walks the descriptors, so every nesting level counts. */
static int
has_field0(const ProtobufCMessage *m)
{
	unsigned i;
	size_t j;

	if (m == NULL)
		return 0;
	for (i = 0; i < m->n_unknown_fields; i++)
		if (m->unknown_fields[i].tag == 0)
			return 1;
	for (i = 0; i < m->descriptor->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &m->descriptor->fields[i];
		const char *member = (const char *)m + f->offset;

		if (f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
			ProtobufCMessage *const *arr = *(ProtobufCMessage *const *const *)member;
			for (j = 0; j < n; j++)
				if (has_field0(arr[j]))
					return 1;
			continue;
		}
		if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
		    *(const uint32_t *)((const char *)m + f->quantifier_offset) != f->id)
			continue; /* another member of the oneof is set */
		if (has_field0(*(ProtobufCMessage *const *)member))
			return 1;
	}
	return 0;
}
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[256];

	(void)argc;
	(void)argv;
	if (refl_init(err, sizeof(err)) < 0) {
		fprintf(stderr, "refl_init: %s\n", err);
		abort();
	}
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Grpc__Reflection__V1__ServerReflectionRequest *rq;
	Grpc__Reflection__V1__ServerReflectionResponse *rs;
	uint8_t *out = NULL;
	size_t olen = 0;
	int rc, decodes, field0 = 0;

	rq = grpc__reflection__v1__server_reflection_request__unpack(NULL, size, data);
	decodes = rq != NULL;
	if (rq) {
		field0 = has_field0(&rq->base);
		grpc__reflection__v1__server_reflection_request__free_unpacked(rq, NULL);
	}
	rc = refl_answer(data, size, &out, &olen);
	if (rc < 0) {
		if (decodes)
			abort();
		return 0;
	}
	if (!decodes)
		abort();
	rs = grpc__reflection__v1__server_reflection_response__unpack(NULL, olen, out);
	if (rs == NULL && field0) {
		/* Finding F1 (load-tests/README.md): refl_answer() echoes the
		 * request as original_request, unknown fields included, and a
		 * field number 0 comes back in a form no decoder accepts. Known
		 * and reported; keep fuzzing for anything else. */
		free(out);
		return 0;
	}
	if (rs == NULL ||
	    rs->message_response_case ==
	        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE__NOT_SET)
		abort();
	grpc__reflection__v1__server_reflection_response__free_unpacked(rs, NULL);
	free(out);
	return 0;
}
