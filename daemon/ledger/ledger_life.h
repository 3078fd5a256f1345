/* SPDX-License-Identifier: MIT */
/*
 * ledger_life.h — the payment lifecycle in the ledger: CapturePayment,
 * VoidPayment, RefundPayment (SQL capture_payment/void_payment/
 * refund_payment of 0007) and ListPayments.
 *
 * Contract: ledger_op() runs one operation as ONE statement (its own
 * transaction, one round trip): the SQL function claims the operation key,
 * does the work and stores its result row with the key, so a replay (same
 * key, same parameters, even one that waited on the first) returns that
 * row, from which the caller packs the same reply. Serialization and
 * deadlock failures are retried (the whole transaction); a deadline or a
 * failure rolls everything back. Refusals (denied, not found, conflict)
 * write nothing.
 */
#ifndef PAYMENTD_LEDGER_LIFE_H
#define PAYMENTD_LEDGER_LIFE_H

#include <stddef.h>
#include <stdint.h>

#include "ledger.h"

/* The columns of the operation statements ("capture", "void", "refund"). */
#define LEDGER_OP_COLS \
	"o_outcome, o_response, o_detail, o_denied_code, o_op, o_error_code, " \
	"o_error_message, o_refund_id, o_refund_amount, o_refund_reason, " \
	"o_refund_created_at, (o_payment).*"

enum ledger_op {
	LEDGER_OP_CAPTURE,
	LEDGER_OP_VOID,
	LEDGER_OP_REFUND,
};

enum ledger_op_outcome {
	LEDGER_OP_NEW,       /* done now: error_* says whether it declined */
	LEDGER_OP_REPLAY,    /* the key's stored result, as NEW's fields; or, for
	                      * a key claimed before 0010, its packed reply in
	                      * response */
	LEDGER_OP_CONFLICT,  /* key used with other parameters: detail names them */
	LEDGER_OP_DENIED,    /* refused: denied_code, detail the permission */
	LEDGER_OP_NOT_FOUND, /* no such payment */
};

struct ledger_op_req {
	int64_t client_id;
	const char *key, *payment_id, *reason, *correlation_id;
	int64_t amount_cents; /* capture, refund: 0 = all */
	uint8_t fingerprint[32];
	const char *refund_id; /* refund: a fresh ULID */
	int key_ttl_s;
};

struct ledger_op_res {
	enum ledger_op_outcome outcome;
	uint8_t *response; /* REPLAY of a pre-0010 key: malloc'd; else NULL */
	size_t response_len;
	char detail[256], denied_code[24], op[12];
	char error_code[32], error_message[512];
	int has_refund;
	char refund_id[64], refund_reason[600], refund_created_at[40];
	int64_t refund_amount;
	struct ledger_payment payment; /* NEW, REPLAY: the payment after it */
	int attempts;
};

enum ledger_rc ledger_op(struct ledger *l, enum ledger_op op, const struct ledger_op_req *q,
    int64_t deadline_ms, struct ledger_op_res *res, char *err, size_t errlen);
void ledger_op_res_clear(struct ledger_op_res *res);

/* A page of ListPayments: payments where account is payer or payee, newest
 * first, status "" for any; after (NULL: from the newest) the position of
 * the previous page's last row. *n rows in *out (ledger_payments_free()),
 * pos[i] their positions. LEDGER_DENIED without can_read. */
struct page_pos;
enum ledger_rc ledger_list_payments(struct ledger *l, int64_t client_id, const char *account,
    const char *status, const struct page_pos *after, int limit, int64_t deadline_ms,
    struct ledger_payment **out, struct page_pos **pos, int *n, char *err, size_t errlen);
void ledger_payments_free(struct ledger_payment *p, struct page_pos *pos, int n);

#endif
