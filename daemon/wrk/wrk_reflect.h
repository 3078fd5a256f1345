/* SPDX-License-Identifier: MIT */
/*
 * wrk_reflect.h — gRPC server reflection (grpc.reflection.v1 and v1alpha)
 * over the descriptor set embedded at build time.
 *
 * Contract: refl_init() parses the embedded FileDescriptorSet (it only
 * allocates); each worker calls it once before its lock-down (the
 * supervisor links no protobuf), and any later call is a no-op. refl_answer() turns one serialized
 * ServerReflectionRequest into one serialized ServerReflectionResponse
 * (malloc'd, caller frees); protocol errors become error_response messages,
 * never stream failures. Both service versions share the wire format.
 */
#ifndef PAYMENTD_WRK_REFLECT_H
#define PAYMENTD_WRK_REFLECT_H

#include <stddef.h>
#include <stdint.h>

int refl_init(char *err, size_t errlen);
int refl_answer(const uint8_t *req, size_t len, uint8_t **out, size_t *outlen);
/* Services the server offers, for list_services (NULL-terminated). */
extern const char *const refl_services[];

#endif
