/* SPDX-License-Identifier: MIT */
/*
 * fuzz_getreq.c — libFuzzer harness for the small requests a worker
 * decodes from untrusted bytes: GetPaymentRequest and
 * GetAccountBalanceRequest (then pay_validate_id(), as daemon/wrk_rpc.c
 * does) and grpc.health.v1 HealthCheckRequest (Check and Watch).
 *
 * Contract: never crashes, leaks or trips ASan/UBSan; aborts (a finding)
 * if an id that pay_validate_id() accepts is empty, longer than its limit
 * or has a character outside [A-Za-z0-9._:-] (such ids go into SQL
 * parameters and log lines), if a rejection comes without a message, or
 * if a decoded message does not survive re-encoding unchanged (except the
 * known protobuf-c field-0 case, F1).
 */
#include "ledger/pay_validate.h"
#include "fuzz_check.h"
#include "payment/v1/payment.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* pack(m) must decode to a message that packs to the same bytes — unless
 * m holds an unknown field number 0: protobuf-c 1.4.1 accepts one written
 * with an overlong tag varint and re-emits it as a tag its own decoder
 * rejects (finding F1, see load-tests/README.md). */
static void
check_roundtrip(const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_get_packed_size(m), n2, i;
	uint8_t *a, *b;
	ProtobufCMessage *again;

	for (i = 0; i < m->n_unknown_fields; i++)
		if (m->unknown_fields[i].tag == 0)
			return;
	a = malloc(n ? n : 1);
	if (a == NULL)
		abort();
	if (protobuf_c_message_pack(m, a) != n)
		abort();
	again = protobuf_c_message_unpack(m->descriptor, NULL, n, a);
	if (again == NULL)
		abort();
	n2 = protobuf_c_message_get_packed_size(again);
	b = malloc(n2 ? n2 : 1);
	if (b == NULL)
		abort();
	protobuf_c_message_pack(again, b);
	if (n2 != n || memcmp(a, b, n) != 0)
		abort();
	protobuf_c_message_free_unpacked(again, NULL);
	free(a);
	free(b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Payment__V1__GetPaymentRequest *gp;
	Payment__V1__GetAccountBalanceRequest *gb;
	Grpc__Health__V1__HealthCheckRequest *hc;

	gp = payment__v1__get_payment_request__unpack(NULL, size, data);
	if (gp) {
		fuzz_check_id("payment_id", gp->payment_id, PAY_ID_MAX);
		check_roundtrip(&gp->base);
		payment__v1__get_payment_request__free_unpacked(gp, NULL);
	}
	gb = payment__v1__get_account_balance_request__unpack(NULL, size, data);
	if (gb) {
		fuzz_check_id("account_id", gb->account_id, PAY_ACCOUNT_MAX);
		check_roundtrip(&gb->base);
		payment__v1__get_account_balance_request__free_unpacked(gb, NULL);
	}
	hc = grpc__health__v1__health_check_request__unpack(NULL, size, data);
	if (hc) {
		if (hc->service == NULL)
			abort(); /* wrk_health.c dereferences it */
		check_roundtrip(&hc->base);
		grpc__health__v1__health_check_request__free_unpacked(hc, NULL);
	}
	return 0;
}
