/* SPDX-License-Identifier: MIT */
/*
 * test_pay_wire.c — daemon/ledger/pay_wire.c: the string check on a
 * request's wire bytes. Valid requests are packed by protobuf-c; the ones
 * with an embedded NUL are written byte by byte, since protobuf-c packs a
 * C string only up to its NUL (which is the very bug the check closes).
 */
#include <check.h>
#include <string.h>

#include "unit_suites_extra.h"
#include "tests/lib/testlib.h"
#include "ledger/pay_wire.h"
#include "payment/v1/payment.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "google/protobuf/descriptor.pb-c.h"

#define AUTH_D (&payment__v1__authorize_payment_request__descriptor)

struct wbuf {
	uint8_t b[4096];
	size_t n;
};

static void
put_varint(struct wbuf *w, uint64_t v)
{
	do {
		ck_assert_uint_lt(w->n, sizeof(w->b));
		w->b[w->n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v);
}

/* Field `field`, wire type 2, the n bytes of s (NULs included). */
static void
put_bytes(struct wbuf *w, unsigned field, const void *s, size_t n)
{
	put_varint(w, (uint64_t)field << 3 | 2);
	put_varint(w, n);
	ck_assert_uint_le(w->n + n, sizeof(w->b));
	memcpy(w->b + w->n, s, n);
	w->n += n;
}

/* An AuthorizePaymentRequest with the usual good values except field
 * `which`, which carries the n bytes of val. */
static void
auth_with(struct wbuf *w, unsigned which, const char *val, size_t n)
{
	static const char *const good[] = { NULL, "key-1", "acc-payer-001", "acc-payee-002", NULL,
		"USD", "Coffee" };
	unsigned f;

	w->n = 0;
	for (f = 1; f <= 6; f++) {
		if (f == 4) {
			put_varint(w, 4 << 3 | 0);
			put_varint(w, 5000);
		} else if (f == which) {
			put_bytes(w, f, val, n);
		} else {
			put_bytes(w, f, good[f], strlen(good[f]));
		}
	}
}

static int
check(const ProtobufCMessageDescriptor *d, const struct wbuf *w, char *msg, size_t msglen)
{
	return pay_wire_check(d, w->b, w->n, msg, msglen);
}

static void
pack(const ProtobufCMessage *m, struct wbuf *w)
{
	w->n = protobuf_c_message_get_packed_size(m);
	ck_assert_uint_le(w->n, sizeof(w->b));
	ck_assert_uint_eq(protobuf_c_message_pack(m, w->b), w->n);
}

START_TEST(packed_request_ok)
{
	Payment__V1__AuthorizePaymentRequest rq = PAYMENT__V1__AUTHORIZE_PAYMENT_REQUEST__INIT;
	struct wbuf w;
	char msg[256];

	rq.idempotency_key = "550e8400-e29b-41d4-a716-446655440000";
	rq.payer_account_id = "acc-payer-001";
	rq.payee_account_id = "acc-payee-002";
	rq.amount_cents = 5000;
	rq.currency = "USD";
	rq.description = "Coffee payment";
	pack(&rq.base, &w);
	strcpy(msg, "stale");
	ck_assert_int_eq(check(AUTH_D, &w, msg, sizeof(msg)), PAY_WIRE_OK);
	ck_assert_str_eq(msg, "");
	auth_with(&w, 0, NULL, 0);
	ck_assert_int_eq(check(AUTH_D, &w, msg, sizeof(msg)), PAY_WIRE_OK);
}
END_TEST

/* The finding of issue 13: protobuf-c decodes the payer to its prefix. */
START_TEST(nul_in_payer_rejected)
{
	static const char payer[] = "acc-payer-001\0evil";
	Payment__V1__AuthorizePaymentRequest *rq;
	struct wbuf w;
	char msg[256];

	auth_with(&w, 2, payer, sizeof(payer) - 1);
	rq = payment__v1__authorize_payment_request__unpack(NULL, w.n, w.b);
	ck_assert_ptr_nonnull(rq);
	ck_assert_str_eq(rq->payer_account_id, "acc-payer-001");
	payment__v1__authorize_payment_request__free_unpacked(rq, NULL);

	ck_assert_int_eq(check(AUTH_D, &w, msg, sizeof(msg)), PAY_WIRE_REJECTED);
	ck_assert_str_eq(msg, "payer_account_id contains a control character (0x00 at byte 13)");
}
END_TEST

/* "k\0AAA" and "k\0BBB" decode to one key "k"; both are refused. */
START_TEST(nul_keys_rejected)
{
	static const char *const keys[] = { "k\0AAA", "k\0BBB" };
	Payment__V1__AuthorizePaymentRequest *rq;
	struct wbuf w;
	char msg[256];
	int i;

	for (i = 0; i < 2; i++) {
		auth_with(&w, 1, keys[i], 5);
		rq = payment__v1__authorize_payment_request__unpack(NULL, w.n, w.b);
		ck_assert_ptr_nonnull(rq);
		ck_assert_str_eq(rq->idempotency_key, "k");
		payment__v1__authorize_payment_request__free_unpacked(rq, NULL);
		ck_assert_int_eq(check(AUTH_D, &w, msg, sizeof(msg)), PAY_WIRE_REJECTED);
		ck_assert_str_eq(
		    msg, "idempotency_key contains a control character (0x00 at byte 1)");
	}
}
END_TEST

START_TEST(nul_in_every_field_rejected)
{
	static const struct {
		unsigned field;
		const char *val;
		size_t n;
		const char *want;
	} cases[] = {
		{ 3, "acc-payee-002\0", 14,
		    "payee_account_id contains a control character (0x00 at byte 13)" },
		{ 5, "US\0", 3, "currency contains a control character (0x00 at byte 2)" },
		{ 5, "\0USD", 4, "currency contains a control character (0x00 at byte 0)" },
		{ 6, "Coffee\0 and more", 16,
		    "description contains a control character (0x00 at byte 6)" },
		{ 1, "\0", 1, "idempotency_key contains a control character (0x00 at byte 0)" },
	};
	struct wbuf w;
	char msg[256];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		auth_with(&w, cases[i].field, cases[i].val, cases[i].n);
		ck_assert_int_eq(check(AUTH_D, &w, msg, sizeof(msg)), PAY_WIRE_REJECTED);
		ck_assert_str_eq(msg, cases[i].want);
	}
}
END_TEST

START_TEST(c0_del_and_c1_rejected)
{
	struct wbuf w;
	char msg[256];

	auth_with(&w, 2, "a\x1b[31m", 6);
	ck_assert_int_eq(check(AUTH_D, &w, msg, sizeof(msg)), PAY_WIRE_REJECTED);
	ck_assert_str_eq(msg, "payer_account_id contains a control character (0x1b at byte 1)");
	auth_with(&w, 1, "key\x7f", 4);
	ck_assert_int_eq(check(AUTH_D, &w, msg, sizeof(msg)), PAY_WIRE_REJECTED);
	ck_assert_str_eq(msg, "idempotency_key contains a control character (0x7f at byte 3)");
	/* U+0085 NEL, a line break to some log readers. */
	auth_with(&w, 2,
	    "a\xc2\x85"
	    "b",
	    4);
	ck_assert_int_eq(check(AUTH_D, &w, msg, sizeof(msg)), PAY_WIRE_REJECTED);
	ck_assert_str_eq(msg, "payer_account_id contains a control character (U+0085 at byte 1)");
	auth_with(&w, 6, "x\xc2\x9f", 3);
	ck_assert_int_eq(check(AUTH_D, &w, msg, sizeof(msg)), PAY_WIRE_REJECTED);
	ck_assert_str_eq(msg, "description contains a control character (U+009F at byte 1)");
	auth_with(&w, 6, "x\xc2\x80", 3);
	ck_assert_int_eq(check(AUTH_D, &w, msg, sizeof(msg)), PAY_WIRE_REJECTED);
	ck_assert_str_eq(msg, "description contains a control character (U+0080 at byte 1)");
	/* U+00A0 (C2 A0) is the first code point after C1: text. */
	auth_with(&w, 6, "x\xc2\xa0y", 4);
	ck_assert_int_eq(check(AUTH_D, &w, msg, sizeof(msg)), PAY_WIRE_OK);
}
END_TEST

START_TEST(whitespace_only_in_description)
{
	Payment__V1__AuthorizePaymentRequest rq = PAYMENT__V1__AUTHORIZE_PAYMENT_REQUEST__INIT;
	static const char *const ws[] = { "\t", "\n", "\r" };
	struct wbuf w;
	char msg[256], want[128];
	int i;

	rq.idempotency_key = "k1";
	rq.payer_account_id = "a";
	rq.payee_account_id = "b";
	rq.amount_cents = 1;
	rq.currency = "USD";
	rq.description = "line one\r\nline two\tend";
	pack(&rq.base, &w);
	ck_assert_int_eq(check(AUTH_D, &w, msg, sizeof(msg)), PAY_WIRE_OK);
	for (i = 0; i < 3; i++) {
		char v[3] = { 'a', ws[i][0], 'b' };
		unsigned f;

		for (f = 1; f <= 5; f++) {
			if (f == 4)
				continue;
			auth_with(&w, f, v, 3);
			ck_assert_int_eq(check(AUTH_D, &w, msg, sizeof(msg)), PAY_WIRE_REJECTED);
			snprintf(want, sizeof(want), "(0x%02x at byte 1)", (unsigned)ws[i][0]);
			ck_assert_ptr_nonnull(strstr(msg, want));
		}
		auth_with(&w, 6, v, 3);
		ck_assert_int_eq(check(AUTH_D, &w, msg, sizeof(msg)), PAY_WIRE_OK);
	}
	auth_with(&w, 2, "a\tb", 3);
	ck_assert_int_eq(check(AUTH_D, &w, msg, sizeof(msg)), PAY_WIRE_REJECTED);
	ck_assert_str_eq(msg, "payer_account_id contains a control character (0x09 at byte 1)");
}
END_TEST

START_TEST(multibyte_text_ok)
{
	Payment__V1__AuthorizePaymentRequest rq = PAYMENT__V1__AUTHORIZE_PAYMENT_REQUEST__INIT;
	struct wbuf w;
	char msg[256];

	rq.idempotency_key = "k\xc3\xa9y-\xf0\x9f\x98\x80"; /* "kéy-😀" */
	rq.payer_account_id = "a";
	rq.payee_account_id = "b";
	rq.amount_cents = 1;
	rq.currency = "EUR";
	rq.description = "caf\xc3\xa9 \xf0\x9f\x98\x80 \xe2\x82\xac \xe6\x97\xa5"; /* café 😀 € 日 */
	pack(&rq.base, &w);
	ck_assert_int_eq(check(AUTH_D, &w, msg, sizeof(msg)), PAY_WIRE_OK);
}
END_TEST

START_TEST(nested_field_path)
{
	struct wbuf in, w;
	char msg[256];

	/* GetPaymentResponse.payment (1) -> Payment.description (7). */
	in.n = 0;
	put_bytes(&in, 1, "01JGHX0000000000000000000A", 26);
	put_bytes(&in, 7, "a\0b", 3);
	w.n = 0;
	put_bytes(&w, 1, in.b, in.n);
	ck_assert_int_eq(
	    check(&payment__v1__get_payment_response__descriptor, &w, msg, sizeof(msg)),
	    PAY_WIRE_REJECTED);
	ck_assert_str_eq(msg, "payment.description contains a control character (0x00 at byte 1)");

	in.n = 0;
	put_bytes(&in, 7, "a\tb", 3);
	w.n = 0;
	put_bytes(&w, 1, in.b, in.n);
	ck_assert_int_eq(
	    check(&payment__v1__get_payment_response__descriptor, &w, msg, sizeof(msg)),
	    PAY_WIRE_OK);

	in.n = 0;
	put_bytes(&in, 2, "a\tb", 3);
	w.n = 0;
	put_bytes(&w, 1, in.b, in.n);
	ck_assert_int_eq(
	    check(&payment__v1__get_payment_response__descriptor, &w, msg, sizeof(msg)),
	    PAY_WIRE_REJECTED);
	ck_assert_str_eq(
	    msg, "payment.payer_account_id contains a control character (0x09 at byte 1)");

	/* ServerReflectionRequest: oneof member file_containing_extension (5)
	 * -> ExtensionRequest.containing_type (1); a oneof string (7). */
	in.n = 0;
	put_bytes(&in, 1, "payment.v1.Payment\x01", 19);
	w.n = 0;
	put_bytes(&w, 1, "localhost", 9);
	put_bytes(&w, 5, in.b, in.n);
	ck_assert_int_eq(check(&grpc__reflection__v1__server_reflection_request__descriptor, &w,
	                     msg, sizeof(msg)),
	    PAY_WIRE_REJECTED);
	ck_assert_str_eq(msg,
	    "file_containing_extension.containing_type contains a control "
	    "character (0x01 at byte 18)");
	w.n = 0;
	put_bytes(&w, 7, "*\0", 2);
	ck_assert_int_eq(check(&grpc__reflection__v1__server_reflection_request__descriptor, &w,
	                     msg, sizeof(msg)),
	    PAY_WIRE_REJECTED);
	ck_assert_str_eq(msg, "list_services contains a control character (0x00 at byte 1)");
}
END_TEST

START_TEST(repeated_string_checked)
{
	struct wbuf w;
	char msg[256];

	/* DescriptorProto.reserved_name (10) is a repeated string. */
	w.n = 0;
	put_bytes(&w, 1, "Msg", 3);
	put_bytes(&w, 10, "ok", 2);
	ck_assert_int_eq(
	    check(&google__protobuf__descriptor_proto__descriptor, &w, msg, sizeof(msg)),
	    PAY_WIRE_OK);
	put_bytes(&w, 10, "no\x7f", 3);
	ck_assert_int_eq(
	    check(&google__protobuf__descriptor_proto__descriptor, &w, msg, sizeof(msg)),
	    PAY_WIRE_REJECTED);
	ck_assert_str_eq(msg, "reserved_name contains a control character (0x7f at byte 2)");
}
END_TEST

START_TEST(unknown_fields_skipped)
{
	static const uint8_t fixed64[] = { 0xa1, 0x06, 1, 2, 3, 4, 5, 6, 7, 8 }; /* 100, wt 1 */
	static const uint8_t fixed32[] = { 0xad, 0x06, 0, 0, 0, 0 };             /* 101, wt 5 */
	struct wbuf w;
	char msg[256];

	auth_with(&w, 0, NULL, 0);
	put_varint(&w, 99 << 3 | 0);
	put_varint(&w, UINT64_MAX);
	memcpy(w.b + w.n, fixed64, sizeof(fixed64));
	w.n += sizeof(fixed64);
	memcpy(w.b + w.n, fixed32, sizeof(fixed32));
	w.n += sizeof(fixed32);
	/* An unknown field's bytes are nobody's string: NULs allowed. */
	put_bytes(&w, 102, "\0\x01\x7f\xc2\x85", 5);
	/* Field number 2^29-1, the largest there is. */
	put_bytes(&w, 0x1fffffff, "\0", 1);
	ck_assert_int_eq(check(AUTH_D, &w, msg, sizeof(msg)), PAY_WIRE_OK);
	/* ...and what follows them is still checked. */
	put_bytes(&w, 2, "x\0", 2);
	ck_assert_int_eq(check(AUTH_D, &w, msg, sizeof(msg)), PAY_WIRE_REJECTED);
	ck_assert_str_eq(msg, "payer_account_id contains a control character (0x00 at byte 1)");
}
END_TEST

START_TEST(malformed_wire)
{
	static const struct {
		const char *b;
		size_t n;
	} bad[] = {
		{ "\x80", 1 },     /* tag varint truncated */
		{ "\x20\x80", 2 }, /* amount_cents varint truncated */
		{ "\x20\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 12 }, /* 11-byte varint */
		{ "\x20\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02", 11 },     /* > 64 bits */
		{ "\x12\x05"
		  "abc",
		    5 },                           /* length past the end */
		{ "\x12\xff\xff\xff\xff\x0f", 6 }, /* a 4 GiB length */
		{ "\x12", 1 },                     /* no length */
		{ "\x02\x00", 2 },                 /* field number 0 */
		{ "\x0b\x0c", 2 },                 /* group (wire type 3) */
		{ "\x0c", 1 },                     /* end group */
		{ "\x0e", 1 },                     /* wire type 6 */
		{ "\x0f", 1 },                     /* wire type 7 */
		{ "\x10\x01", 2 },                 /* payer_account_id as a varint */
		{ "\x15\x00\x00\x00\x00", 5 },     /* payer_account_id as fixed32 */
		{ "\xa1\x06\x01\x02\x03", 5 },     /* fixed64 truncated */
		{ "\xad\x06\x01", 3 },             /* fixed32 truncated */
		{ "\xf8\xff\xff\xff\x7f\x00", 6 }, /* field number 2^31-1 */
	};
	char msg[256];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		msg[0] = '\0';
		ck_assert_msg(pay_wire_check(AUTH_D, (const uint8_t *)bad[i].b, bad[i].n, msg,
		                  sizeof(msg)) == PAY_WIRE_MALFORMED,
		    "case %zu", i);
		ck_assert_msg(
		    strncmp(msg, "malformed protobuf: ", 20) == 0, "case %zu: %s", i, msg);
	}
	/* A malformed tail after a good field is still malformed. */
	ck_assert_int_eq(
	    pay_wire_check(AUTH_D, (const uint8_t *)"\x0a\x01k\x12\x09", 5, msg, sizeof(msg)),
	    PAY_WIRE_MALFORMED);
	ck_assert_str_eq(msg, "malformed protobuf: length of field 2 runs past the end at byte 3");
	/* An inner message's length must fit the inner message. */
	ck_assert_int_eq(pay_wire_check(&payment__v1__get_payment_response__descriptor,
	                     (const uint8_t *)"\x0a\x02\x0a\x05", 4, msg, sizeof(msg)),
	    PAY_WIRE_MALFORMED);
	ck_assert_str_eq(msg, "malformed protobuf: length of field 1 runs past the end at byte 2");
}
END_TEST

START_TEST(empty_message_ok)
{
	char msg[16];

	strcpy(msg, "x");
	ck_assert_int_eq(pay_wire_check(AUTH_D, NULL, 0, msg, sizeof(msg)), PAY_WIRE_OK);
	ck_assert_str_eq(msg, "");
	ck_assert_int_eq(pay_wire_check(&payment__v1__get_payment_response__descriptor,
	                     (const uint8_t *)"\x0a\x00", 2, msg, sizeof(msg)),
	    PAY_WIRE_OK);
}
END_TEST

START_TEST(small_msg_buffer)
{
	struct wbuf w;
	char msg[8];

	auth_with(&w, 2, "a\0", 2);
	ck_assert_int_eq(check(AUTH_D, &w, msg, sizeof(msg)), PAY_WIRE_REJECTED);
	ck_assert_str_eq(msg, "payer_a");
	ck_assert_int_eq(check(AUTH_D, &w, NULL, 0), PAY_WIRE_REJECTED);
}
END_TEST

/* DescriptorProto.nested_type (3) is recursive: PAY_WIRE_MAX_DEPTH
 * messages are walked, one more is refused. */
START_TEST(depth_cap)
{
	static struct wbuf a, b;
	char msg[256];
	int i;

	a.n = 0;
	put_bytes(&a, 1, "M", 1);
	for (i = 1; i < PAY_WIRE_MAX_DEPTH; i++) {
		b.n = 0;
		put_bytes(&b, 3, a.b, a.n);
		a = b;
	}
	ck_assert_int_eq(
	    check(&google__protobuf__descriptor_proto__descriptor, &a, msg, sizeof(msg)),
	    PAY_WIRE_OK);
	b.n = 0;
	put_bytes(&b, 3, a.b, a.n);
	ck_assert_int_eq(
	    check(&google__protobuf__descriptor_proto__descriptor, &b, msg, sizeof(msg)),
	    PAY_WIRE_MALFORMED);
	ck_assert_ptr_nonnull(strstr(msg, "deeper than 16"));
}
END_TEST

Suite *
pay_wire_suite(void)
{
	const TTest *const tests[] = {
		packed_request_ok,
		nul_in_payer_rejected,
		nul_keys_rejected,
		nul_in_every_field_rejected,
		c0_del_and_c1_rejected,
		whitespace_only_in_description,
		multibyte_text_ok,
		nested_field_path,
		repeated_string_checked,
		unknown_fields_skipped,
		malformed_wire,
		empty_message_ok,
		small_msg_buffer,
		depth_cap,
		NULL,
	};

	return tl_suite("pay_wire", 0, tests);
}
