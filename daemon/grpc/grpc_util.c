/* SPDX-License-Identifier: MIT */
/*
 * grpc_util.c — byte-buffer, metadata and deadline helpers (grpc_util.h).
 */
#include "grpc_util.h"
#include "common/util.h"

#include <stdlib.h>
#include <string.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>

int
gu_bb_read(grpc_byte_buffer *bb, uint8_t **out, size_t *len)
{
	grpc_byte_buffer_reader r;
	grpc_slice s;
	int rc = -1;

	*out = NULL;
	*len = 0;
	if (bb == NULL)
		goto out;
	if (!grpc_byte_buffer_reader_init(&r, bb))
		goto out;
	s = grpc_byte_buffer_reader_readall(&r);
	*len = GRPC_SLICE_LENGTH(s);
	*out = xmalloc(*len + 1);
	memcpy(*out, GRPC_SLICE_START_PTR(s), *len);
	grpc_slice_unref(s);
	grpc_byte_buffer_reader_destroy(&r);
	rc = 0;
out:
	return rc;
}

grpc_byte_buffer *
gu_bb_new(const uint8_t *data, size_t len)
{
	grpc_slice s = grpc_slice_from_copied_buffer((const char *)data, len);
	grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);

	grpc_slice_unref(s);
	return bb;
}

int
gu_md_get(const grpc_metadata_array *md, const char *key, char *buf, size_t buflen)
{
	size_t i, kl = strlen(key);

	for (i = 0; i < md->count; i++) {
		const grpc_slice *k = &md->metadata[i].key;
		const grpc_slice *v = &md->metadata[i].value;
		if (GRPC_SLICE_LENGTH(*k) == kl && memcmp(GRPC_SLICE_START_PTR(*k), key, kl) == 0) {
			size_t vl = GRPC_SLICE_LENGTH(*v);
			if (vl >= buflen)
				return 0;
			memcpy(buf, GRPC_SLICE_START_PTR(*v), vl);
			buf[vl] = '\0';
			return 1;
		}
	}
	return 0;
}

gpr_timespec
gu_deadline_ms(int64_t ms)
{
	if (ms < 0)
		return gpr_inf_future(GPR_CLOCK_MONOTONIC);
	return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(ms, GPR_TIMESPAN));
}

int64_t
gu_ms_left(gpr_timespec deadline)
{
	gpr_timespec now, d;

	if (gpr_time_cmp(deadline, gpr_inf_future(deadline.clock_type)) == 0)
		return INT64_MAX;
	d = gpr_convert_clock_type(deadline, GPR_CLOCK_MONOTONIC);
	now = gpr_now(GPR_CLOCK_MONOTONIC);
	return gpr_time_to_millis(gpr_time_sub(d, now));
}

const char *
gu_status_name(grpc_status_code code)
{
	return util_grpc_code_name((int)code);
}
