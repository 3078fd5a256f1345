/* SPDX-License-Identifier: MIT */
/*
 * fuzz_lifecycle.c — libFuzzer harness for what a worker does with the
 * untrusted bytes of the lifecycle and account requests before touching
 * Postgres: CapturePayment, VoidPayment, RefundPayment, ListPayments,
 * ListAccountEntries, GetAccountBalance with as_of (PaymentService) and
 * CreateAccount, GetAccount, UpdateAccountStatus (AccountService). For each request type the input
 * goes through pay_wire_check() (daemon/ledger/pay_wire.c), then protobuf-c
 * decodes it, then the validators the handlers call: pay_validate_op() and
 * pay_op_fingerprint() on Capture/Void/Refund, pay_validate_id() on the
 * other ids, and the account and statement validators of
 * daemon/ledger/acct_validate.c (metadata, currency, overdraft, status,
 * reason, RFC 3339 times).
 *
 * Contract: never crashes, leaks or trips ASan/UBSan; aborts (a finding)
 * when:
 *  - pay_wire_check() returns other than 0/-1/-2 or refuses without a
 *    NUL-ended message;
 *  - bytes the wire check passed decode to a string holding a C0/C1
 *    control or DEL (what the check exists to stop);
 *  - a decoded request does not survive re-encoding unchanged (except the
 *    known protobuf-c field-0 case, F1 in load-tests/README.md);
 *  - a validator refuses without a message, or accepts what its contract
 *    excludes: an id that is empty, too long or outside [A-Za-z0-9._:-];
 *    metadata with more than ACCT_META_MAX entries, a key of 0 or more than
 *    ACCT_META_KEY_MAX bytes, a value over ACCT_META_VALUE_MAX, or invalid
 *    UTF-8; a currency not of 3 upper-case letters; an overdraft outside
 *    0..10^17; a status other than ACTIVE/FROZEN/CLOSED; a reason over
 *    ACCT_REASON_MAX bytes or invalid UTF-8;
 *  - pay_validate_op() accepts a key outside 1..128 bytes, a bad payment
 *    id, a negative amount or a reason over PAY_REASON_MAX bytes or not
 *    UTF-8; or an operation's fingerprint is not deterministic, or is the
 *    same for another operation or another amount or reason (it is what
 *    tells a replay from a conflict);
 *  - ListPayments' status filter gets a ledger name (pay_status_name) that
 *    does not map back to the same status;
 *  - an accepted time does not format to YYYY-MM-DDTHH:MM:SS.ffffffZ and
 *    parse back to the same microsecond.
 */
#include "ledger/acct_validate.h"
#include "ledger/pay_validate.h"
#include "fuzz_check.h"
#include "ledger/pay_wire.h"
#include "common/utf8.h"
#include "payment/v1/payment.pb-c.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* protobuf-c map entries all look like this. */
struct map_entry {
	ProtobufCMessage base;
	char *key;
	char *value;
};

static const ProtobufCMessageDescriptor *const descs[] = {
	&payment__v1__capture_payment_request__descriptor,
	&payment__v1__void_payment_request__descriptor,
	&payment__v1__refund_payment_request__descriptor,
	&payment__v1__list_payments_request__descriptor,
	&payment__v1__list_account_entries_request__descriptor,
	&payment__v1__create_account_request__descriptor,
	&payment__v1__get_account_request__descriptor,
	&payment__v1__update_account_status_request__descriptor,
	&payment__v1__get_account_balance_request__descriptor,
};

/* A validator's verdict: 1 accepted, 0 refused (with a message). */
static int
verdict(int rc, const char *msg)
{
	if (rc < 0) {
		if (msg[0] == '\0')
			abort();
		return 0;
	}
	if (rc != 0)
		abort();
	return 1;
}

static void
check_text(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	for (; *p; p++) {
		/* No field of these requests is a "description": no TAB/LF/CR. */
		if (*p < 0x20 || *p == 0x7f)
			abort();
		if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
			abort();
	}
}

/* Every string of m and its map entries (the only nesting here). */
static void
check_strings(const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	unsigned i;
	size_t j;

	for (i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *fd = &d->fields[i];
		const char *v = (const char *)m + fd->offset;

		if (fd->type == PROTOBUF_C_TYPE_STRING && fd->label != PROTOBUF_C_LABEL_REPEATED) {
			if (*(char *const *)(const void *)v)
				check_text(*(char *const *)(const void *)v);
		} else if (fd->type == PROTOBUF_C_TYPE_MESSAGE &&
		    fd->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(
			    const size_t *)(const void *)((const char *)m + fd->quantifier_offset);
			struct map_entry *const *e = *(
			    struct map_entry *const *const *)(const void *)v;
			for (j = 0; j < n; j++) {
				check_text(e[j]->key);
				check_text(e[j]->value);
			}
		}
	}
}

static void
check_roundtrip(const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_get_packed_size(m), n2, i;
	uint8_t *a, *b;
	ProtobufCMessage *again;

	for (i = 0; i < m->n_unknown_fields; i++)
		if (m->unknown_fields[i].tag == 0)
			return; /* F1 */
	a = malloc(n ? n : 1);
	if (a == NULL || protobuf_c_message_pack(m, a) != n)
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

static void
check_time(const char *field, const char *s)
{
	char msg[256], out[ACCT_TIME_LEN + 1], msg2[256];
	int64_t us, us2;

	msg[0] = '\0';
	if (s[0] == '\0' || !verdict(acct_parse_time(field, s, &us, msg, sizeof(msg)), msg))
		return;
	memset(out, 'x', sizeof(out));
	acct_format_time(us, out);
	if (memchr(out, '\0', sizeof(out)) == NULL || strlen(out) != ACCT_TIME_LEN ||
	    out[4] != '-' || out[10] != 'T' || out[19] != '.' || out[26] != 'Z')
		abort();
	msg2[0] = '\0';
	if (acct_parse_time(field, out, &us2, msg2, sizeof(msg2)) != 0 || us2 != us)
		abort();
}

static void
check_reason(const char *reason)
{
	char msg[256];

	msg[0] = '\0';
	if (verdict(acct_validate_reason(reason, msg, sizeof(msg)), msg) &&
	    (strlen(reason) > ACCT_REASON_MAX || !utf8_valid(reason)))
		abort();
}

static void
check_metadata(size_t n, struct map_entry *const *e)
{
	const char **keys = calloc(n + 1, sizeof(*keys)), **values = calloc(n + 1, sizeof(*values));
	char msg[256];
	size_t i;

	if (keys == NULL || values == NULL)
		abort();
	for (i = 0; i < n; i++) {
		keys[i] = e[i]->key;
		values[i] = e[i]->value;
	}
	msg[0] = '\0';
	if (verdict(acct_validate_metadata("metadata", n, keys, values, msg, sizeof(msg)), msg)) {
		if (n > ACCT_META_MAX)
			abort();
		for (i = 0; i < n; i++) {
			size_t kl = strlen(keys[i]);
			if (kl == 0 || kl > ACCT_META_KEY_MAX ||
			    strlen(values[i]) > ACCT_META_VALUE_MAX || !utf8_valid(keys[i]) ||
			    !utf8_valid(values[i]))
				abort();
		}
	}
	free(keys);
	free(values);
}

/* Capture/Void/Refund: the validator, then the fingerprint. */
static void
check_op(
    enum pay_op op, const char *key, const char *payment_id, int64_t amount, const char *reason)
{
	static const char other_reason[] = "\x01other";
	uint8_t fp[32], fp2[32];
	char msg[256];
	size_t kl = strlen(key);
	int o;

	msg[0] = '\0';
	if (!verdict(pay_validate_op(key, payment_id, amount, reason, msg, sizeof(msg)), msg))
		return;
	fuzz_check_id("payment_id", payment_id, PAY_ID_MAX);
	if (kl == 0 || kl > PAY_KEY_MAX || amount < 0 ||
	    (reason && (strlen(reason) > PAY_REASON_MAX || !utf8_valid(reason))))
		abort();
	pay_op_fingerprint(op, payment_id, amount, reason, fp);
	pay_op_fingerprint(op, payment_id, amount, reason, fp2);
	if (memcmp(fp, fp2, 32) != 0)
		abort();
	for (o = PAY_OP_CAPTURE; o <= PAY_OP_REFUND; o++) {
		if (o == (int)op)
			continue;
		pay_op_fingerprint((enum pay_op)o, payment_id, amount, reason, fp2);
		if (memcmp(fp, fp2, 32) == 0)
			abort();
	}
	pay_op_fingerprint(op, payment_id, amount == INT64_MAX ? 0 : amount + 1, reason, fp2);
	if (memcmp(fp, fp2, 32) == 0)
		abort();
	if (reason != NULL) {
		pay_op_fingerprint(op, payment_id, amount, other_reason, fp2);
		if (memcmp(fp, fp2, 32) == 0)
			abort();
	}
}

/* The validators of one decoded request of type i. */
static void
check_request(size_t i, const ProtobufCMessage *m)
{
	char msg[256];

	msg[0] = '\0';
	switch (i) {
	case 0: {
		const Payment__V1__CapturePaymentRequest *r = (const void *)m;
		fuzz_check_id("payment_id", r->payment_id, PAY_ID_MAX);
		check_op(PAY_OP_CAPTURE, r->idempotency_key, r->payment_id, r->amount_cents, NULL);
		break;
	}
	case 1: {
		const Payment__V1__VoidPaymentRequest *r = (const void *)m;
		fuzz_check_id("payment_id", r->payment_id, PAY_ID_MAX);
		check_reason(r->reason);
		check_op(PAY_OP_VOID, r->idempotency_key, r->payment_id, 0, r->reason);
		break;
	}
	case 2: {
		const Payment__V1__RefundPaymentRequest *r = (const void *)m;
		fuzz_check_id("payment_id", r->payment_id, PAY_ID_MAX);
		check_reason(r->reason);
		check_op(
		    PAY_OP_REFUND, r->idempotency_key, r->payment_id, r->amount_cents, r->reason);
		break;
	}
	case 3: {
		const Payment__V1__ListPaymentsRequest *r = (const void *)m;
		const char *name = pay_status_name((int)r->status);
		fuzz_check_id("account_id", r->account_id, PAY_ACCOUNT_MAX);
		/* The status filter goes to SQL by name: a name must be the
		 * ledger's for that very status. */
		if (name != NULL && pay_status_from_name(name) != (int)r->status)
			abort();
		break;
	}
	case 4: {
		const Payment__V1__ListAccountEntriesRequest *r = (const void *)m;
		fuzz_check_id("account_id", r->account_id, PAY_ACCOUNT_MAX);
		check_time("start_time", r->start_time);
		check_time("end_time", r->end_time);
		break;
	}
	case 5: {
		const Payment__V1__CreateAccountRequest *r = (const void *)m;
		if (r->account_id[0] != '\0')
			fuzz_check_id("account_id", r->account_id, PAY_ACCOUNT_MAX);
		if (verdict(acct_validate_currency(r->currency, msg, sizeof(msg)), msg) &&
		    !(strlen(r->currency) == 3 && r->currency[0] >= 'A' && r->currency[0] <= 'Z' &&
		        r->currency[1] >= 'A' && r->currency[1] <= 'Z' && r->currency[2] >= 'A' &&
		        r->currency[2] <= 'Z'))
			abort();
		msg[0] = '\0';
		if (verdict(
		        acct_validate_overdraft(r->overdraft_limit_cents, msg, sizeof(msg)), msg) &&
		    (r->overdraft_limit_cents < 0 || r->overdraft_limit_cents > ACCT_BALANCE_BOUND))
			abort();
		check_metadata(r->n_metadata, (struct map_entry *const *)r->metadata);
		break;
	}
	case 6: {
		const Payment__V1__GetAccountRequest *r = (const void *)m;
		fuzz_check_id("account_id", r->account_id, PAY_ACCOUNT_MAX);
		break;
	}
	case 7: {
		const Payment__V1__UpdateAccountStatusRequest *r = (const void *)m;
		fuzz_check_id("account_id", r->account_id, PAY_ACCOUNT_MAX);
		if (verdict(acct_validate_status(r->status, msg, sizeof(msg)), msg) &&
		    strcmp(r->status, "ACTIVE") != 0 && strcmp(r->status, "FROZEN") != 0 &&
		    strcmp(r->status, "CLOSED") != 0)
			abort();
		check_reason(r->reason);
		break;
	}
	case 8: {
		const Payment__V1__GetAccountBalanceRequest *r = (const void *)m;
		fuzz_check_id("account_id", r->account_id, PAY_ACCOUNT_MAX);
		check_time("as_of", r->as_of);
		break;
	}
	default: abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t i;

	for (i = 0; i < sizeof(descs) / sizeof(descs[0]); i++) {
		ProtobufCMessage *m;
		char msg[200];
		int rc;

		memset(msg, 'x', sizeof(msg));
		rc = pay_wire_check(descs[i], data, size, msg, sizeof(msg));
		if (memchr(msg, '\0', sizeof(msg)) == NULL)
			abort();
		if (rc != PAY_WIRE_OK && rc != PAY_WIRE_REJECTED && rc != PAY_WIRE_MALFORMED)
			abort();
		if (rc != PAY_WIRE_OK) {
			if (msg[0] == '\0')
				abort();
			continue;
		}
		m = protobuf_c_message_unpack(descs[i], NULL, size, data);
		if (m == NULL)
			continue;
		check_strings(m);
		check_roundtrip(m);
		check_request(i, m);
		protobuf_c_message_free_unpacked(m, NULL);
	}
	return 0;
}
