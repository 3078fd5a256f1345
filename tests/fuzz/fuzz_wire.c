/* SPDX-License-Identifier: MIT */
/*
 * fuzz_wire.c — libFuzzer harness for pay_wire_check()
 * (daemon/ledger/pay_wire.c), the check a worker runs on a request's wire
 * bytes before protobuf-c decodes them, over every request type a worker
 * decodes: the PaymentService requests (the lifecycle and statement ones
 * too), the AccountService requests, HealthCheckRequest and
 * ServerReflectionRequest.
 *
 * Contract: never crashes, leaks or trips ASan/UBSan; aborts (a finding)
 * when, for some descriptor:
 *  - the return code is not 0/-1/-2, or a refusal comes without a
 *    NUL-ended message (-2's starting "malformed protobuf: ");
 *  - the bytes passed (0) and protobuf-c decodes them, yet a decoded
 *    string field (at any depth, repeated and oneof members too) holds a
 *    C0 control, DEL or a C1 control (TAB/LF/CR allowed in "description");
 *  - the bytes passed and decoded, yet a top-level string field decodes
 *    shorter than its last occurrence on the wire (the NUL cut the check
 *    exists to stop), measured by an independent walk in this file;
 *  - the bytes passed and decoded, yet protobuf-c's re-encoding of the
 *    message does not pass.
 */
#include "ledger/pay_wire.h"
#include "payment/v1/payment.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_FIELDS 64

static const ProtobufCMessageDescriptor *const descs[] = {
	&payment__v1__authorize_payment_request__descriptor,
	&payment__v1__get_payment_request__descriptor,
	&payment__v1__get_account_balance_request__descriptor,
	&payment__v1__capture_payment_request__descriptor,
	&payment__v1__void_payment_request__descriptor,
	&payment__v1__refund_payment_request__descriptor,
	&payment__v1__list_account_entries_request__descriptor,
	&payment__v1__list_payments_request__descriptor,
	&payment__v1__create_account_request__descriptor,
	&payment__v1__get_account_request__descriptor,
	&payment__v1__update_account_status_request__descriptor,
	&grpc__health__v1__health_check_request__descriptor,
	&grpc__reflection__v1__server_reflection_request__descriptor,
};

static void
check_text(const ProtobufCFieldDescriptor *fd, const char *s)
{
	int ws_ok = strcmp(fd->name, "description") == 0;
	const unsigned char *p = (const unsigned char *)s;

	for (; *p; p++) {
		if ((*p < 0x20 && !(ws_ok && (*p == '\t' || *p == '\n' || *p == '\r'))) ||
		    *p == 0x7f)
			abort();
		if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
			abort();
	}
}

/* Every string of a decoded message, walked through its descriptor. */
static void
check_decoded(const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	const char *base = (const char *)m;
	unsigned i;
	size_t j, n;

	for (i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *fd = &d->fields[i];
		const void *v = base + fd->offset;

		if (fd->type != PROTOBUF_C_TYPE_STRING && fd->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		if ((fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
		    *(const uint32_t *)(const void *)(base + fd->quantifier_offset) != fd->id)
			continue;
		if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
			n = *(const size_t *)(const void *)(base + fd->quantifier_offset);
			for (j = 0; j < n; j++) {
				const void *e = (*(void *const *)v);
				if (fd->type == PROTOBUF_C_TYPE_STRING)
					check_text(fd, ((char *const *)e)[j]);
				else
					check_decoded(((ProtobufCMessage *const *)e)[j]);
			}
		} else if (fd->type == PROTOBUF_C_TYPE_STRING) {
			if (*(char *const *)v)
				check_text(fd, *(char *const *)v);
		} else if (*(ProtobufCMessage *const *)v) {
			check_decoded(*(ProtobufCMessage *const *)v);
		}
	}
}

static int
varint(const uint8_t *p, size_t n, size_t *pos, uint64_t *v)
{
	unsigned shift = 0;

	*v = 0;
	while (*pos < n && shift < 64) {
		uint8_t b = p[(*pos)++];
		*v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return 0;
		shift += 7;
	}
	return -1;
}

/* The wire length of the last occurrence of each top-level singular
 * string field (index into d->fields), -1 if absent; a second walker,
 * written apart from pay_wire.c so a bug in one does not hide in both.
 * Returns -1 if it cannot follow the bytes. */
static int
wire_lengths(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t n, long long *len)
{
	size_t pos = 0;
	uint64_t tag, l;
	unsigned i;

	for (i = 0; i < d->n_fields; i++)
		len[i] = -1;
	while (pos < n) {
		if (varint(p, n, &pos, &tag) < 0)
			return -1;
		switch (tag & 7) {
		case 0:
			if (varint(p, n, &pos, &l) < 0)
				return -1;
			break;
		case 1:
		case 5:
			l = (tag & 7) == 1 ? 8 : 4;
			if (n - pos < l)
				return -1;
			pos += l;
			break;
		case 2:
			if (varint(p, n, &pos, &l) < 0 || l > n - pos)
				return -1;
			for (i = 0; i < d->n_fields; i++)
				if (d->fields[i].id == (tag >> 3) &&
				    d->fields[i].type == PROTOBUF_C_TYPE_STRING &&
				    d->fields[i].label != PROTOBUF_C_LABEL_REPEATED &&
				    !(d->fields[i].flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
					len[i] = (long long)l;
			pos += l;
			break;
		default: return -1;
		}
	}
	return 0;
}

static void
check_lengths(const ProtobufCMessage *m, const uint8_t *data, size_t size)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	long long len[MAX_FIELDS];
	unsigned i;

	if (d->n_fields > MAX_FIELDS)
		abort();
	if (wire_lengths(d, data, size, len) < 0)
		return;
	for (i = 0; i < d->n_fields; i++) {
		const char *s;

		if (len[i] < 0)
			continue;
		s = *(char *const *)(const void *)((const char *)m + d->fields[i].offset);
		if (s == NULL || (long long)strlen(s) != len[i])
			abort();
	}
}

static void
check_one(const ProtobufCMessageDescriptor *d, const uint8_t *data, size_t size)
{
	ProtobufCMessage *m;
	char msg[200];
	uint8_t *again;
	size_t n;
	int rc;

	memset(msg, 'x', sizeof(msg));
	rc = pay_wire_check(d, data, size, msg, sizeof(msg));
	if (memchr(msg, '\0', sizeof(msg)) == NULL)
		abort();
	if (rc == PAY_WIRE_REJECTED && msg[0] == '\0')
		abort();
	if (rc == PAY_WIRE_MALFORMED && strncmp(msg, "malformed protobuf: ", 20) != 0)
		abort();
	if (rc != PAY_WIRE_OK && rc != PAY_WIRE_REJECTED && rc != PAY_WIRE_MALFORMED)
		abort();
	if (rc != PAY_WIRE_OK)
		return;
	m = protobuf_c_message_unpack(d, NULL, size, data);
	if (m == NULL)
		return; /* protobuf-c refuses more (e.g. a scalar sent length-delimited) */
	check_decoded(m);
	check_lengths(m, data, size);
	n = protobuf_c_message_get_packed_size(m);
	again = malloc(n ? n : 1);
	if (again == NULL)
		abort();
	if (protobuf_c_message_pack(m, again) != n)
		abort();
	if (pay_wire_check(d, again, n, msg, sizeof(msg)) != PAY_WIRE_OK)
		abort();
	free(again);
	protobuf_c_message_free_unpacked(m, NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t i;

	for (i = 0; i < sizeof(descs) / sizeof(descs[0]); i++)
		check_one(descs[i], data, size);
	return 0;
}
