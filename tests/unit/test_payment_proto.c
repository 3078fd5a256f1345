/* SPDX-License-Identifier: MIT */
/*
 * test_payment_proto.c — the protobuf-c code generated from
 * proto/payment/v1/payment.proto: the wire format the seed's clients
 * produce, and truncated input.
 */
#include <check.h>
#include <stdint.h>

#include "unit.h"
#include "tests/lib/testlib.h"
#include "payment/v1/payment.pb-c.h"

START_TEST(proto_round_trip_matches_seed_wire_format)
{
	Payment__V1__AuthorizePaymentRequest r = PAYMENT__V1__AUTHORIZE_PAYMENT_REQUEST__INIT, *d;
	uint8_t buf[256];
	size_t n;
	/* Bytes a protoc-generated client produces for
	 * {idempotency_key:"k", payer:"a", payee:"b", amount_cents:5000,
	 *  currency:"USD", description:"c"}: field numbers 1..6. */
	static const uint8_t expect[] = {
		0x0a,
		0x01,
		'k',
		0x12,
		0x01,
		'a',
		0x1a,
		0x01,
		'b',
		0x20,
		0x88,
		0x27,
		0x2a,
		0x03,
		'U',
		'S',
		'D',
		0x32,
		0x01,
		'c',
	};

	r.idempotency_key = "k";
	r.payer_account_id = "a";
	r.payee_account_id = "b";
	r.amount_cents = 5000;
	r.currency = "USD";
	r.description = "c";
	n = protobuf_c_message_pack(&r.base, buf);
	ck_assert_uint_eq(n, sizeof(expect));
	ck_assert_mem_eq(buf, expect, sizeof(expect));
	d = payment__v1__authorize_payment_request__unpack(NULL, n, buf);
	ck_assert_ptr_nonnull(d);
	ck_assert_str_eq(d->currency, "USD");
	ck_assert_int_eq(d->amount_cents, 5000);
	payment__v1__authorize_payment_request__free_unpacked(d, NULL);
	/* Truncated input must fail cleanly. */
	ck_assert_ptr_null(payment__v1__authorize_payment_request__unpack(NULL, n - 1, buf));
}
END_TEST

Suite *
payment_proto_suite(void)
{
	const TTest *const tests[] = {
		proto_round_trip_matches_seed_wire_format,
		NULL,
	};

	return tl_suite("payment_proto", 0, tests);
}
