/* SPDX-License-Identifier: MIT */
/*
 * grpc_util.h — small helpers over the grpc C core API shared by the worker
 * (server side) and the clients (paymentctl, tests, load generator).
 *
 * Contract: byte-buffer conversions allocate with malloc and hand ownership
 * to the caller; metadata lookups copy into caller buffers and never keep
 * pointers into grpc-owned memory.
 */
#ifndef PAYMENTD_GRPC_UTIL_H
#define PAYMENTD_GRPC_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <grpc/grpc.h>
#include <grpc/byte_buffer.h>

/* Switches off abseil's mutex deadlock detection (grpc_tune.cc); call
 * before grpc_init() in processes that carry gRPC traffic. */
void gu_tune_runtime(void);
/* Flattens bb into a new malloc'd buffer (*out, *len). 0 on success. */
int gu_bb_read(grpc_byte_buffer *bb, uint8_t **out, size_t *len);
/* New byte buffer holding a copy of data; caller destroys it. */
grpc_byte_buffer *gu_bb_new(const uint8_t *data, size_t len);
/* Copies the value of the first metadata entry named key (lowercase) into
 * buf; returns 1 if found (and it fit), 0 otherwise. */
int gu_md_get(const grpc_metadata_array *md, const char *key, char *buf, size_t buflen);
/* Absolute deadline ms from now on the monotonic clock as a gpr_timespec. */
gpr_timespec gu_deadline_ms(int64_t ms);
/* Milliseconds left until the given deadline (negative if passed; INT64_MAX
 * for an infinite one). */
int64_t gu_ms_left(gpr_timespec deadline);
/* Canonical name of a status code ("OK", "INVALID_ARGUMENT", ...). */
const char *gu_status_name(grpc_status_code code);

#endif
