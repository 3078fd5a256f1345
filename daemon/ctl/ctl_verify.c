/* SPDX-License-Identifier: MIT */
/*
 * verify.c — payment-verify: checks the ledger invariants of a paymentd
 * database and, optionally, that the outbox and the Kafka topics agree.
 *
 * Contract:
 *   payment-verify [--database-url URL] [--max-report N]
 *                  [--kafka BROKERS [--topic-prefix P] [--kafka-timeout MS]]
 *  - Every database check runs in one REPEATABLE READ READ ONLY transaction,
 *    so the invariants are checked on one consistent snapshot even while
 *    payments are being made. Each check prints "ok" or "FAIL" with the
 *    number of violations and up to N (default 20) precise lines naming the
 *    account / payment / event, the expected and the actual value.
 *  - Checks: entries sum to zero per currency; each account's available +
 *    pending equals the signed sum of its entries (DEBIT negative, CREDIT
 *    positive; a hold moves money from available to pending and posts
 *    nothing) and its last entry's balance_after_cents, and every entry's
 *    balance_after_cents equals the running sum before it (entries of one
 *    account are written under its row lock, so entry_id order is
 *    application order); no balance below -overdraft_limit_cents; pending =
 *    the sum of the account's open holds (MANUAL payments still AUTHORIZED,
 *    as payer); every AUTOMATIC AUTHORIZED payment has exactly one PAYMENT
 *    DEBIT on the payer and one CREDIT on the payee for its amount and
 *    currency; a MANUAL payment has one CAPTURE pair of its captured amount
 *    when CAPTURED and no PAYMENT or CAPTURE entries otherwise; captured <=
 *    amount (all of it for AUTOMATIC, 1..amount when CAPTURED, else 0);
 *    refunded <= captured, refunded = the sum of its refunds rows, refunds
 *    only of captured payments; every refund has one REFUND DEBIT on the
 *    payee and one CREDIT on the payer for its amount; no DECLINED payment
 *    has entries; every payment has one outbox event per step (the
 *    authorization or decline, the end of a hold, each refund) and each
 *    event fits the payment (type, status, amounts, accounts) — except the
 *    opening balances written by `paymentd reset-test-data`
 *    (correlation_id 'reset-test-data'), whose events it deletes on
 *    purpose; no idempotency key is left PENDING. Outbox rows that refer to
 *    no payment (account events) are reported as a note, not a violation.
 *    The hash chain is recomputed for entries of every kind, each in its
 *    own hash_format (v1, or v2 with kind and refund_id: migration 0011).
 *  - --kafka: reads payments.paymentauthorized, payments.paymentdeclined,
 *    payments.dlq and the topic of every other event type in the outbox
 *    (prefix + "." + the type in lower case, the relay's rule; prefix
 *    configurable) from the beginning to their end
 *    offsets *after* taking the database snapshot, and identifies each
 *    message by its event_id header (else the JSON envelope's event_id).
 *    Violations: an event marked published that is not on the broker; an
 *    event present more than once; an event on a topic other than its own
 *    or the DLQ; a message whose event_id is in no outbox row (re-checked
 *    against a fresh snapshot, so rows committed meanwhile are no false
 *    alarm) or that carries no event_id. Events on the broker but not yet
 *    marked published (relay between produce and mark) are a note.
 *  - Exit status: 0 no violation, 1 violations found, 2 usage or an
 *    operational failure (cannot connect, query failed, broker timeout).
 */
#include "common/util.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <openssl/evp.h>

struct check {
	const char *name;
	const char *sql; /* rows: (detail text, total count); $1 = report limit */
};

/* Each query yields one row per violation (first $1 of them, ordered for
 * stable output) with its total count in every row. */
static const struct check checks[] = {
	{ "entries sum to zero per currency",
	    "SELECT format('currency %s: entries sum to %s, expected 0 (debits %s, credits %s)', "
	    "        currency, s, d, c), count(*) OVER () "
	    "  FROM (SELECT currency, "
	    "               sum(CASE direction WHEN 'CREDIT' THEN amount_cents ELSE -amount_cents END) s, "
	    "               coalesce(sum(amount_cents) FILTER (WHERE direction = 'DEBIT'), 0) d, "
	    "               coalesce(sum(amount_cents) FILTER (WHERE direction = 'CREDIT'), 0) c "
	    "          FROM ledger_entries GROUP BY currency) x "
	    " WHERE s <> 0 ORDER BY currency LIMIT $1" },
	/* A hold moves money from available to pending and posts nothing, so
	 * the posted entries are what both hold together. */
	{ "available + pending = signed sum of entries",
	    "SELECT detail, count(*) OVER () FROM ("
	    "  SELECT b.account_id AS k, format('account %s: balance %s (available %s + pending %s), ' || "
	    "         'signed sum of its entries %s (difference %s)', b.account_id, "
	    "         b.available_cents + b.pending_cents, b.available_cents, b.pending_cents, "
	    "         coalesce(e.s, 0), b.available_cents + b.pending_cents - coalesce(e.s, 0)) AS detail "
	    "    FROM account_balances b LEFT JOIN "
	    "         (SELECT account_id, sum(CASE direction WHEN 'CREDIT' THEN amount_cents "
	    "                 ELSE -amount_cents END) s FROM ledger_entries GROUP BY account_id) e "
	    "         USING (account_id) "
	    "   WHERE b.available_cents + b.pending_cents <> coalesce(e.s, 0) "
	    "  UNION ALL "
	    "  SELECT e.account_id, format('account %s: %s ledger entries but no balance row', "
	    "         e.account_id, count(*)) "
	    "    FROM ledger_entries e LEFT JOIN account_balances b USING (account_id) "
	    "   WHERE b.account_id IS NULL GROUP BY e.account_id) v "
	    " ORDER BY k LIMIT $1" },
	{ "available + pending = last entry's balance_after_cents",
	    "SELECT format('account %s: balance %s (available %s + pending %s), but its last entry #%s' || "
	    "        ' (payment %s) has balance_after_cents %s', b.account_id, "
	    "        b.available_cents + b.pending_cents, b.available_cents, b.pending_cents, l.entry_id, "
	    "        l.payment_id, l.balance_after_cents), count(*) OVER () "
	    "  FROM account_balances b "
	    "  JOIN LATERAL (SELECT entry_id, payment_id, balance_after_cents FROM ledger_entries e "
	    "                 WHERE e.account_id = b.account_id ORDER BY entry_id DESC LIMIT 1) l ON true "
	    " WHERE l.balance_after_cents <> b.available_cents + b.pending_cents "
	    " ORDER BY b.account_id LIMIT $1" },
	{ "entry chain (balance_after_cents = running sum)",
	    "SELECT format('account %s: entry #%s (payment %s, %s %s) has balance_after_cents %s,' || "
	    "        ' running sum of the entries up to it is %s (first broken entry of this account)', "
	    "        account_id, entry_id, payment_id, direction, amount_cents, balance_after_cents, "
	    "        running), count(*) OVER () "
	    "  FROM (SELECT DISTINCT ON (account_id) * FROM "
	    "          (SELECT e.*, sum(CASE direction WHEN 'CREDIT' THEN amount_cents "
	    "                  ELSE -amount_cents END) OVER (PARTITION BY account_id ORDER BY entry_id) "
	    "                  AS running FROM ledger_entries e) r "
	    "         WHERE balance_after_cents <> running ORDER BY account_id, entry_id) x "
	    " ORDER BY account_id LIMIT $1" },
	{ "no balance below -overdraft_limit_cents",
	    "SELECT format('account %s: balance %s is below its overdraft floor %s', account_id, "
	    "        available_cents, -overdraft_limit_cents), count(*) OVER () "
	    "  FROM account_balances WHERE available_cents < -overdraft_limit_cents "
	    " ORDER BY account_id LIMIT $1" },
	/* Open holds: MANUAL payments still AUTHORIZED, on the payer's side. */
	{ "pending = sum of open holds",
	    "SELECT format('account %s: pending_cents %s, its open holds (MANUAL, AUTHORIZED, as payer) ' || "
	    "        'sum to %s in %s payments (difference %s)%s', b.account_id, b.pending_cents, "
	    "        coalesce(h.s, 0), coalesce(h.n, 0), b.pending_cents - coalesce(h.s, 0), "
	    "        CASE WHEN h.n > 0 THEN format(', the first %s', h.first) ELSE '' END), "
	    "       count(*) OVER () "
	    "  FROM account_balances b LEFT JOIN "
	    "       (SELECT payer_account_id AS account_id, sum(amount_cents) s, count(*) n, "
	    "               min(payment_id) first FROM payments "
	    "         WHERE capture_method = 'MANUAL' AND status = 'AUTHORIZED' GROUP BY 1) h "
	    "       USING (account_id) "
	    " WHERE b.pending_cents <> coalesce(h.s, 0) ORDER BY b.account_id LIMIT $1" },
	/* AUTOMATIC payments post at authorization: one PAYMENT pair. */
	{ "authorized payment = one DEBIT + one CREDIT",
	    "SELECT format('payment %s (AUTHORIZED %s %s, %s -> %s): expected DEBIT %s on %s and' || "
	    "        ' CREDIT %s on %s, found %s', p.payment_id, p.amount_cents, p.currency, "
	    "        p.payer_account_id, p.payee_account_id, p.amount_cents, p.payer_account_id, "
	    "        p.amount_cents, p.payee_account_id, "
	    "        coalesce(string_agg(format('%s %s %s on %s', e.direction, e.amount_cents, "
	    "                 e.currency, e.account_id), ', ' ORDER BY e.entry_id), 'no entries')), "
	    "       count(*) OVER () "
	    "  FROM payments p LEFT JOIN ledger_entries e "
	    "       ON e.payment_id = p.payment_id AND e.kind = 'PAYMENT' "
	    " WHERE p.status = 'AUTHORIZED' AND p.capture_method = 'AUTOMATIC' GROUP BY p.payment_id "
	    "HAVING count(e.entry_id) <> 2 "
	    "    OR count(*) FILTER (WHERE e.direction = 'DEBIT' AND e.account_id = p.payer_account_id "
	    "        AND e.amount_cents = p.amount_cents AND e.currency = p.currency) <> 1 "
	    "    OR count(*) FILTER (WHERE e.direction = 'CREDIT' AND e.account_id = p.payee_account_id "
	    "        AND e.amount_cents = p.amount_cents AND e.currency = p.currency) <> 1 "
	    " ORDER BY p.payment_id LIMIT $1" },
	/* MANUAL payments post only at capture: one CAPTURE pair of the
	 * captured amount; open, voided and expired holds post nothing. */
	{ "manual payment: one CAPTURE pair when captured, else no entries",
	    "SELECT format('payment %s (MANUAL %s, held %s, captured %s %s, %s -> %s): expected %s, found %s', "
	    "        p.payment_id, p.status, p.amount_cents, p.captured_amount_cents, p.currency, "
	    "        p.payer_account_id, p.payee_account_id, "
	    "        CASE WHEN p.status = 'CAPTURED' THEN format('CAPTURE DEBIT %s on %s and CAPTURE CREDIT' || "
	    "             ' %s on %s', p.captured_amount_cents, p.payer_account_id, "
	    "             p.captured_amount_cents, p.payee_account_id) "
	    "             ELSE 'no PAYMENT or CAPTURE entries' END, "
	    "        coalesce(string_agg(format('%s %s %s %s on %s', e.kind, e.direction, e.amount_cents, "
	    "                 e.currency, e.account_id), ', ' ORDER BY e.entry_id), 'no entries')), "
	    "       count(*) OVER () "
	    "  FROM payments p LEFT JOIN ledger_entries e "
	    "       ON e.payment_id = p.payment_id AND e.kind IN ('PAYMENT', 'CAPTURE') "
	    " WHERE p.capture_method = 'MANUAL' AND p.status <> 'DECLINED' GROUP BY p.payment_id "
	    "HAVING CASE WHEN p.status = 'CAPTURED' THEN "
	    "            count(e.entry_id) <> 2 "
	    "         OR count(*) FILTER (WHERE e.kind = 'CAPTURE' AND e.direction = 'DEBIT' "
	    "              AND e.account_id = p.payer_account_id "
	    "              AND e.amount_cents = p.captured_amount_cents AND e.currency = p.currency) <> 1 "
	    "         OR count(*) FILTER (WHERE e.kind = 'CAPTURE' AND e.direction = 'CREDIT' "
	    "              AND e.account_id = p.payee_account_id "
	    "              AND e.amount_cents = p.captured_amount_cents AND e.currency = p.currency) <> 1 "
	    "       ELSE count(e.entry_id) <> 0 END "
	    " ORDER BY p.payment_id LIMIT $1" },
	/* What was posted to the payee: all of an AUTOMATIC payment, the
	 * captured part of a MANUAL one, nothing otherwise. */
	{ "captured amount fits the payment (captured <= amount)",
	    "SELECT format('payment %s (%s %s, amount %s): captured_amount_cents %s, expected %s', "
	    "        payment_id, capture_method, status, amount_cents, captured_amount_cents, want), "
	    "       count(*) OVER () "
	    "  FROM (SELECT p.*, CASE WHEN p.capture_method = 'AUTOMATIC' AND p.status = 'AUTHORIZED' "
	    "                         THEN p.amount_cents::text "
	    "                         WHEN p.status = 'CAPTURED' THEN format('1..%s', p.amount_cents) "
	    "                         ELSE '0' END AS want, "
	    "               CASE WHEN p.capture_method = 'AUTOMATIC' AND p.status = 'AUTHORIZED' "
	    "                    THEN p.captured_amount_cents = p.amount_cents "
	    "                    WHEN p.status = 'CAPTURED' "
	    "                    THEN p.captured_amount_cents BETWEEN 1 AND p.amount_cents "
	    "                    ELSE p.captured_amount_cents = 0 END AS fits "
	    "          FROM payments p) x "
	    " WHERE NOT fits ORDER BY payment_id LIMIT $1" },
	{ "refunds within captured (refunded <= captured = sum of refunds)",
	    "SELECT format('payment %s (%s %s, captured %s): %s', p.payment_id, p.capture_method, "
	    "        p.status, p.captured_amount_cents, concat_ws('; ', "
	    "          CASE WHEN p.refunded_amount_cents > p.captured_amount_cents "
	    "               THEN format('refunded_amount_cents %s exceeds captured_amount_cents %s', "
	    "                    p.refunded_amount_cents, p.captured_amount_cents) END, "
	    "          CASE WHEN p.refunded_amount_cents <> coalesce(r.s, 0) "
	    "               THEN format('refunded_amount_cents %s, but its %s refunds sum to %s', "
	    "                    p.refunded_amount_cents, coalesce(r.n, 0), coalesce(r.s, 0)) END, "
	    "          CASE WHEN coalesce(r.n, 0) > 0 AND NOT (p.status = 'CAPTURED' OR "
	    "                    (p.status = 'AUTHORIZED' AND p.capture_method = 'AUTOMATIC')) "
	    "               THEN format('%s refunds of a payment that was never captured', r.n) END, "
	    "          CASE WHEN r.bad_currency > 0 "
	    "               THEN format('%s refunds in another currency than %s', r.bad_currency, "
	    "                    p.currency) END)), "
	    "       count(*) OVER () "
	    "  FROM payments p LEFT JOIN "
	    "       (SELECT f.payment_id, sum(f.amount_cents) s, count(*) n, "
	    "               count(*) FILTER (WHERE f.currency <> q.currency) bad_currency "
	    "          FROM refunds f JOIN payments q USING (payment_id) GROUP BY f.payment_id) r "
	    "       USING (payment_id) "
	    " WHERE p.refunded_amount_cents > p.captured_amount_cents "
	    "    OR p.refunded_amount_cents <> coalesce(r.s, 0) "
	    "    OR (coalesce(r.n, 0) > 0 AND NOT (p.status = 'CAPTURED' OR "
	    "        (p.status = 'AUTHORIZED' AND p.capture_method = 'AUTOMATIC'))) "
	    "    OR r.bad_currency > 0 "
	    " ORDER BY p.payment_id LIMIT $1" },
	/* A refund moves money back: DEBIT on the payee, CREDIT on the payer. */
	{ "refund = one REFUND DEBIT on the payee + one CREDIT on the payer",
	    "SELECT format('refund %s of payment %s (%s %s, %s -> %s): expected REFUND DEBIT %s on %s' || "
	    "        ' and REFUND CREDIT %s on %s, found %s', f.refund_id, f.payment_id, "
	    "        f.amount_cents, f.currency, p.payer_account_id, p.payee_account_id, "
	    "        f.amount_cents, p.payee_account_id, f.amount_cents, p.payer_account_id, "
	    "        coalesce(string_agg(format('%s %s %s %s on %s (payment %s)', e.kind, e.direction, "
	    "                 e.amount_cents, e.currency, e.account_id, e.payment_id), ', ' "
	    "                 ORDER BY e.entry_id), 'no entries')), "
	    "       count(*) OVER () "
	    "  FROM refunds f JOIN payments p USING (payment_id) "
	    "  LEFT JOIN ledger_entries e ON e.refund_id = f.refund_id "
	    " GROUP BY f.refund_id, p.payment_id "
	    "HAVING count(e.entry_id) <> 2 "
	    "    OR count(*) FILTER (WHERE e.kind = 'REFUND' AND e.direction = 'DEBIT' "
	    "        AND e.account_id = p.payee_account_id AND e.payment_id = f.payment_id "
	    "        AND e.amount_cents = f.amount_cents AND e.currency = f.currency) <> 1 "
	    "    OR count(*) FILTER (WHERE e.kind = 'REFUND' AND e.direction = 'CREDIT' "
	    "        AND e.account_id = p.payer_account_id AND e.payment_id = f.payment_id "
	    "        AND e.amount_cents = f.amount_cents AND e.currency = f.currency) <> 1 "
	    " ORDER BY f.refund_id LIMIT $1" },
	{ "declined payment has no entries",
	    "SELECT format('payment %s is DECLINED (%s) but has %s ledger entries (%s)', p.payment_id, "
	    "        p.error_code, count(*), string_agg(format('%s %s on %s', e.direction, "
	    "        e.amount_cents, e.account_id), ', ' ORDER BY e.entry_id)), count(*) OVER () "
	    "  FROM payments p JOIN ledger_entries e USING (payment_id) "
	    " WHERE p.status = 'DECLINED' GROUP BY p.payment_id ORDER BY p.payment_id LIMIT $1" },
	/* One event per step: the authorization (or decline), the end of a
	 * hold (capture, void or expiry), each refund. */
	{ "payment has one outbox event per step",
	    "SELECT format('payment %s (%s, correlation_id %s) has %s outbox events, expected %s%s', "
	    "        p.payment_id, p.status, coalesce(p.correlation_id, 'NULL'), count(o.seq), "
	    "        p.want, CASE WHEN count(o.seq) > 1 THEN ' (event ids ' || "
	    "             string_agg(o.event_id::text, ', ' ORDER BY o.seq) || ')' ELSE '' END), "
	    "       count(*) OVER () "
	    "  FROM (SELECT q.*, 1 + CASE WHEN q.status IN ('CAPTURED', 'VOIDED', 'EXPIRED') THEN 1 "
	    "                             ELSE 0 END "
	    "                      + (SELECT count(*) FROM refunds f WHERE f.payment_id = q.payment_id) "
	    "                      AS want "
	    "          FROM payments q) p LEFT JOIN outbox o "
	    "       ON o.aggregate_type = 'payment' AND o.aggregate_id = p.payment_id "
	    " WHERE p.correlation_id IS DISTINCT FROM 'reset-test-data' "
	    " GROUP BY p.payment_id, p.status, p.correlation_id, p.want "
	    "HAVING count(o.seq) <> p.want ORDER BY p.payment_id LIMIT $1" },
	/* The authorization event describes the payment as authorized (or
	 * declined), whatever happened to it since; each later event must
	 * fit the state it led to. */
	{ "outbox event matches its payment",
	    "SELECT format('outbox event %s (seq %s) for payment %s: %s', o.event_id, o.seq, "
	    "        p.payment_id, concat_ws('; ', "
	    "          CASE WHEN o.event_type IN ('PaymentAuthorized', 'PaymentDeclined') AND "
	    "                    o.event_type <> CASE p.status WHEN 'DECLINED' THEN 'PaymentDeclined' "
	    "                                  ELSE 'PaymentAuthorized' END "
	    "               THEN format('event_type %s, payment is %s', o.event_type, p.status) END, "
	    "          CASE WHEN o.event_type IN ('PaymentAuthorized', 'PaymentDeclined') AND "
	    "                    o.payload->>'status' IS DISTINCT FROM "
	    "                    CASE p.status WHEN 'DECLINED' THEN 'DECLINED' ELSE 'AUTHORIZED' END "
	    "               THEN format('payload status %s, payment is %s', "
	    "                    coalesce(o.payload->>'status', 'missing'), p.status) END, "
	    "          CASE WHEN o.event_type <> 'PaymentRefunded' AND "
	    "                    o.payload->'amount_cents' IS DISTINCT FROM to_jsonb(p.amount_cents) "
	    "               THEN format('payload amount_cents %s, payment has %s', "
	    "                    coalesce(o.payload->>'amount_cents', 'missing'), p.amount_cents) END, "
	    "          CASE WHEN o.payload->>'payer_account_id' IS DISTINCT FROM p.payer_account_id "
	    "               OR o.payload->>'payee_account_id' IS DISTINCT FROM p.payee_account_id "
	    "               THEN 'payload accounts differ from the payment' END, "
	    "          CASE WHEN o.event_type IN ('PaymentCaptured', 'PaymentVoided', 'PaymentExpired') "
	    "                AND p.status <> upper(substr(o.event_type, 8)) "
	    "               THEN format('event_type %s, payment is %s', o.event_type, p.status) END, "
	    "          CASE WHEN o.event_type = 'PaymentCaptured' AND "
	    "                    o.payload->'captured_amount_cents' IS DISTINCT FROM "
	    "                    to_jsonb(p.captured_amount_cents) "
	    "               THEN format('payload captured_amount_cents %s, payment has %s', "
	    "                    coalesce(o.payload->>'captured_amount_cents', 'missing'), "
	    "                    p.captured_amount_cents) END, "
	    "          CASE WHEN o.event_type = 'PaymentRefunded' AND f.refund_id IS NULL "
	    "               THEN format('refund %s is not a refund of this payment', "
	    "                    coalesce(o.payload->>'refund_id', 'missing')) END, "
	    "          CASE WHEN o.event_type = 'PaymentRefunded' AND "
	    "                    o.payload->'amount_cents' IS DISTINCT FROM to_jsonb(f.amount_cents) "
	    "               THEN format('payload amount_cents %s, refund %s has %s', "
	    "                    coalesce(o.payload->>'amount_cents', 'missing'), f.refund_id, "
	    "                    f.amount_cents) END, "
	    "          CASE WHEN o.event_type NOT IN ('PaymentAuthorized', 'PaymentDeclined', "
	    "                    'PaymentCaptured', 'PaymentVoided', 'PaymentExpired', 'PaymentRefunded') "
	    "               THEN format('unknown event_type %s', o.event_type) END)), count(*) OVER () "
	    "  FROM outbox o JOIN payments p "
	    "       ON o.aggregate_type = 'payment' AND o.aggregate_id = p.payment_id "
	    "  LEFT JOIN refunds f "
	    "       ON o.event_type = 'PaymentRefunded' AND f.payment_id = p.payment_id "
	    "      AND f.refund_id = o.payload->>'refund_id' "
	    " WHERE (o.event_type IN ('PaymentAuthorized', 'PaymentDeclined') AND "
	    "        (o.event_type <> CASE p.status WHEN 'DECLINED' THEN 'PaymentDeclined' "
	    "                          ELSE 'PaymentAuthorized' END "
	    "         OR o.payload->>'status' IS DISTINCT FROM "
	    "            CASE p.status WHEN 'DECLINED' THEN 'DECLINED' ELSE 'AUTHORIZED' END)) "
	    "    OR (o.event_type <> 'PaymentRefunded' AND "
	    "        o.payload->'amount_cents' IS DISTINCT FROM to_jsonb(p.amount_cents)) "
	    "    OR o.payload->>'payer_account_id' IS DISTINCT FROM p.payer_account_id "
	    "    OR o.payload->>'payee_account_id' IS DISTINCT FROM p.payee_account_id "
	    "    OR (o.event_type IN ('PaymentCaptured', 'PaymentVoided', 'PaymentExpired') "
	    "        AND p.status <> upper(substr(o.event_type, 8))) "
	    "    OR (o.event_type = 'PaymentCaptured' AND o.payload->'captured_amount_cents' "
	    "        IS DISTINCT FROM to_jsonb(p.captured_amount_cents)) "
	    "    OR (o.event_type = 'PaymentRefunded' AND (f.refund_id IS NULL OR "
	    "        o.payload->'amount_cents' IS DISTINCT FROM to_jsonb(f.amount_cents))) "
	    "    OR o.event_type NOT IN ('PaymentAuthorized', 'PaymentDeclined', 'PaymentCaptured', "
	    "        'PaymentVoided', 'PaymentExpired', 'PaymentRefunded') "
	    " ORDER BY o.seq LIMIT $1" },
	{ "no idempotency key left PENDING",
	    "SELECT format('idempotency key %s (payment %s) is still PENDING: its transaction' || "
	    "        ' committed half-way', idempotency_key, payment_id), count(*) OVER () "
	    "  FROM idempotency_keys WHERE status = 'PENDING' ORDER BY idempotency_key LIMIT $1" },
};

static int max_report = 20;

static void
usage(void)
{
	fprintf(stderr,
	    "usage: payment-verify [--database-url URL] [--max-report N]\n"
	    "                      [--kafka BROKERS [--topic-prefix P] [--kafka-timeout MS]]\n"
	    "  DATABASE_URL is used when --database-url is not given.\n"
	    "  exit: 0 invariants hold, 1 violations found, 2 usage or operational error\n");
	exit(2);
}

/* A count option: the whole argument in 1..INT_MAX, else exit 2 naming it. */
static int
count_opt(const char *name, const char *arg)
{
	int64_t v;

	if (util_parse_i64(arg, 1, INT_MAX, &v) < 0) {
		fprintf(stderr, "payment-verify: --%s: invalid value \"%s\" (expected 1..%d)\n",
		    name, arg, INT_MAX);
		exit(2);
	}
	return (int)v;
}

/* Runs one check; returns its violation count, or -1 if the query failed. */
static long
run_check(PGconn *c, const struct check *ck, char *err, size_t errlen)
{
	char lim[16];
	const char *p[1] = { lim };
	PGresult *r;
	long n = 0;
	int i;

	snprintf(lim, sizeof(lim), "%d", max_report);
	r = PQexecParams(c, ck->sql, 1, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "check \"%s\": %s", ck->name, PQerrorMessage(c));
		PQclear(r);
		return -1;
	}
	if (PQntuples(r) > 0)
		n = strtol(PQgetvalue(r, 0, 1), NULL, 10);
	if (n == 0) {
		printf("ok    %s\n", ck->name);
	} else {
		printf("FAIL  %s: %ld violation%s\n", ck->name, n, n == 1 ? "" : "s");
		for (i = 0; i < PQntuples(r); i++)
			printf("        %s\n", PQgetvalue(r, i, 0));
		if (n > PQntuples(r))
			printf("        ... and %ld more\n", n - PQntuples(r));
	}
	PQclear(r);
	return n;
}

/* A one-value query; copies the first column of the first row. */
static int
query_value(PGconn *c, const char *sql, char *out, size_t outlen)
{
	PGresult *r = PQexec(c, sql);
	int rc = -1;

	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
		snprintf(out, outlen, "%s", PQgetvalue(r, 0, 0));
		rc = 0;
	}
	PQclear(r);
	return rc;
}

/* 1 if ledger_entries has column col (a migration's), 0 if not, -1 on a
 * failed query (err set). */
static int
entries_have(PGconn *c, const char *col, char *err, size_t errlen)
{
	const char *params[1] = { col };
	PGresult *r = PQexecParams(c,
	    "SELECT count(*) FROM pg_attribute WHERE attrelid = 'ledger_entries'::regclass "
	    "AND attname = $1 AND NOT attisdropped",
	    1, NULL, params, NULL, NULL, 0);
	int rc = -1;

	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		rc = strcmp(PQgetvalue(r, 0, 0), "0") != 0;
	else
		snprintf(err, errlen, "hash chain: %s", PQerrorMessage(c));
	PQclear(r);
	return rc;
}

/* ---- Hash chain ------------------------------------------------------ */

/* Recomputed here with OpenSSL, never with the database's own functions:
 * whoever can rewrite the ledger can replace those too. The canonical
 * bytes are those of migrations/0003_ledger_chain.sql and
 * 0011_ledger_chain_v2.sql (docs/ledger.md):
 *   SHA-256(previous entry_hash of the account, '' for the first ||
 *           "paymentd-ledger-v1" 1F entry_id 1F account_id 1F payment_id
 *           1F direction 1F amount_cents 1F currency 1F balance_after_cents
 *           1F created_at as microseconds since 1970-01-01 UTC)
 * for an entry of hash_format 1 (every entry before 0011), and for format
 * 2 the tag "paymentd-ledger-v2", the same fields, then 1F kind 1F
 * refund_id ('' when none). A database before 0011 reads as all format 1.
 * Entries stream through a cursor in binary format (int8 and timestamptz
 * as 8 big-endian bytes, text as its UTF-8 bytes), CHAIN_FETCH rows at a
 * time, so a big ledger is never in memory at once. */

#define CHAIN_FETCH   5000
#define CHAIN_STR_(x) #x
#define CHAIN_STR(x)  CHAIN_STR_(x)
#define HASH_LEN      32
/* Binary timestamptz counts microseconds from 2000-01-01 00:00:00 UTC. */
#define PG_EPOCH_UNIX_US INT64_C(946684800000000)

/* Columns of the chain cursor, in order. */
enum {
	CE_ID,
	CE_ACCOUNT,
	CE_PAYMENT,
	CE_DIR,
	CE_AMOUNT,
	CE_CURRENCY,
	CE_BALANCE,
	CE_CREATED,
	CE_HASH,
	CE_LAST_HASH,
	CE_FORMAT,
	CE_KIND,
	CE_REFUND,
	CE_NCOLS
};

struct chain {
	EVP_MD_CTX *md;
	char *account;                /* account of the entries being walked, or NULL */
	unsigned char prev[HASH_LEN]; /* stored hash of its previous entry */
	size_t prevlen;               /* 0 at the genesis */
	int64_t prev_id;              /* that entry's id (0 at the genesis) */
	char *prev_payment;
	int broken;      /* its first altered entry is already reported */
	int has_balance; /* it has a balance row, whose last_hash is tail */
	/* One byte longer than a hash: a longer value is cut there and still
	 * cannot match. */
	unsigned char tail[HASH_LEN + 1];
	size_t taillen;
	long violations, entries, accounts;
	char **lines; /* the first max_report violations */
};

static void
hex(const unsigned char *b, size_t n, char *out)
{
	size_t i;

	if (n == 0) {
		strcpy(out, "(empty)");
		return;
	}
	for (i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static int64_t
be64(const char *p)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = v << 8 | (unsigned char)p[i];
	return (int64_t)v;
}

static void
chain_violation(struct chain *ch, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Counts one violation and keeps its line while under the report limit:
 * the FAIL line, which carries the total, is printed first, at the end. */
static void
chain_violation(struct chain *ch, const char *fmt, ...)
{
	va_list ap;
	char *line = NULL;

	if (ch->violations++ >= max_report)
		return;
	va_start(ap, fmt);
	if (vasprintf(&line, fmt, ap) < 0)
		abort();
	va_end(ap);
	ch->lines = realloc(ch->lines, (size_t)ch->violations * sizeof(*ch->lines));
	if (ch->lines == NULL)
		abort();
	ch->lines[ch->violations - 1] = line;
}

/* The walk reached the end of ch->account's entries: its balance row must
 * hold the hash of its last entry. */
static void
chain_close(struct chain *ch)
{
	char a[2 * (HASH_LEN + 1) + 8], b[2 * HASH_LEN + 8];

	if (ch->account == NULL)
		return;
	/* No balance row is the sum check's violation; a broken chain is
	 * already reported at its first altered entry. */
	if (!ch->broken && ch->has_balance &&
	    (ch->taillen != ch->prevlen || memcmp(ch->tail, ch->prev, ch->prevlen) != 0)) {
		hex(ch->tail, ch->taillen, a);
		hex(ch->prev, ch->prevlen, b);
		chain_violation(ch,
		    "account %s: balance row last_hash %s != entry_hash %s of its last entry "
		    "#%" PRId64 " (payment %s): entries after #%" PRId64
		    " were deleted, or last_hash was changed",
		    ch->account, a, b, ch->prev_id, ch->prev_payment, ch->prev_id);
	}
	free(ch->account);
	free(ch->prev_payment);
	ch->account = ch->prev_payment = NULL;
}

/* Feeds one field and, unless it is the last, the separator. */
static int
md_field(EVP_MD_CTX *md, const void *p, size_t n, int last)
{
	return EVP_DigestUpdate(md, p, n) == 1 && (last || EVP_DigestUpdate(md, "\x1f", 1) == 1)
	    ? 0
	    : -1;
}

static int
md_int(EVP_MD_CTX *md, int64_t v, int last)
{
	char s[24];
	int n = snprintf(s, sizeof(s), "%" PRId64, v);

	return md_field(md, s, (size_t)n, last);
}

/* A text column of row i, as its bytes. */
static int
md_col(EVP_MD_CTX *md, const PGresult *r, int i, int col, int last)
{
	return md_field(md, PQgetvalue(r, i, col), (size_t)PQgetlength(r, i, col), last);
}

/* Checks row i of a FETCH result against the chain. */
static int
chain_row(struct chain *ch, const PGresult *r, int i, char *err, size_t errlen)
{
	static const int int8_cols[] = { CE_ID, CE_AMOUNT, CE_BALANCE, CE_CREATED };
	const char *acct = PQgetvalue(r, i, CE_ACCOUNT);
	const char *format = PQgetvalue(r, i, CE_FORMAT);
	int fmt, v2;
	unsigned char h[EVP_MAX_MD_SIZE];
	unsigned int hl = 0;
	const unsigned char *stored = (const unsigned char *)PQgetvalue(r, i, CE_HASH);
	size_t storedlen = (size_t)PQgetlength(r, i, CE_HASH);
	char a[2 * EVP_MAX_MD_SIZE + 8], b[2 * EVP_MAX_MD_SIZE + 8], prev[64];
	int64_t id;
	size_t k;

	for (k = 0; k < ARRAY_LEN(int8_cols); k++) {
		if (PQgetisnull(r, i, int8_cols[k]) || PQgetlength(r, i, int8_cols[k]) != 8) {
			snprintf(err, errlen, "hash chain: column %d is not an 8-byte value\n",
			    int8_cols[k]);
			return -1;
		}
	}
	id = be64(PQgetvalue(r, i, CE_ID));
	/* int2 in binary: 2 big-endian bytes. */
	if (PQgetisnull(r, i, CE_FORMAT) || PQgetlength(r, i, CE_FORMAT) != 2) {
		snprintf(err, errlen, "hash chain: hash_format is not a 2-byte value\n");
		return -1;
	}
	fmt = (int16_t)((unsigned char)format[0] << 8 | (unsigned char)format[1]);
	v2 = fmt == 2;
	ch->entries++;
	if (ch->account == NULL || strcmp(ch->account, acct) != 0) {
		chain_close(ch);
		ch->account = xstrdup(acct);
		ch->prevlen = 0;
		ch->prev_id = 0;
		ch->broken = 0;
		ch->has_balance = !PQgetisnull(r, i, CE_LAST_HASH);
		ch->taillen = 0;
		if (ch->has_balance) {
			ch->taillen = (size_t)PQgetlength(r, i, CE_LAST_HASH);
			if (ch->taillen > HASH_LEN + 1)
				ch->taillen = HASH_LEN + 1;
			memcpy(ch->tail, PQgetvalue(r, i, CE_LAST_HASH), ch->taillen);
		}
		ch->accounts++;
	}
	if (ch->broken)
		return 0;
	/* The tag is hashed, so 1 <-> 2 breaks the hash; any other value (the
	 * CHECK dropped) is an edit the hash alone would not show. */
	if (fmt != 1 && fmt != 2) {
		chain_violation(ch,
		    "entry %" PRId64 " (payment %s, account %s): hash_format %d is no known format "
		    "(1 or 2): this entry's hash_format was changed",
		    id, PQgetvalue(r, i, CE_PAYMENT), acct, fmt);
		ch->broken = 1;
		return 0;
	}
	if (EVP_DigestInit_ex(ch->md, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(ch->md, ch->prev, ch->prevlen) != 1 ||
	    md_field(ch->md, v2 ? "paymentd-ledger-v2" : "paymentd-ledger-v1", 18, 0) < 0 ||
	    md_int(ch->md, id, 0) < 0 || md_col(ch->md, r, i, CE_ACCOUNT, 0) < 0 ||
	    md_col(ch->md, r, i, CE_PAYMENT, 0) < 0 || md_col(ch->md, r, i, CE_DIR, 0) < 0 ||
	    md_int(ch->md, be64(PQgetvalue(r, i, CE_AMOUNT)), 0) < 0 ||
	    md_col(ch->md, r, i, CE_CURRENCY, 0) < 0 ||
	    md_int(ch->md, be64(PQgetvalue(r, i, CE_BALANCE)), 0) < 0 ||
	    md_int(ch->md, be64(PQgetvalue(r, i, CE_CREATED)) + PG_EPOCH_UNIX_US, !v2) < 0 ||
	    (v2 &&
	        (md_col(ch->md, r, i, CE_KIND, 0) < 0 || md_col(ch->md, r, i, CE_REFUND, 1) < 0)) ||
	    EVP_DigestFinal_ex(ch->md, h, &hl) != 1 || hl != HASH_LEN) {
		snprintf(err, errlen, "hash chain: SHA-256 failed\n");
		return -1;
	}
	if (storedlen != hl || memcmp(stored, h, hl) != 0) {
		hex(stored, storedlen > EVP_MAX_MD_SIZE ? EVP_MAX_MD_SIZE : storedlen, a);
		hex(h, hl, b);
		if (ch->prev_id == 0)
			snprintf(prev, sizeof(prev), "as the account's first entry");
		else
			snprintf(prev, sizeof(prev), "chained on entry #%" PRId64, ch->prev_id);
		chain_violation(ch,
		    "entry %" PRId64 " (payment %s, account %s): stored hash %s != recomputed %s "
		    "(%s): this entry's fields were changed, or an entry before it was deleted "
		    "or changed (first altered entry of this account)",
		    id, PQgetvalue(r, i, CE_PAYMENT), acct, a, b, prev);
		ch->broken = 1;
		return 0;
	}
	memcpy(ch->prev, stored, HASH_LEN);
	ch->prevlen = HASH_LEN;
	ch->prev_id = id;
	free(ch->prev_payment);
	ch->prev_payment = xstrdup(PQgetvalue(r, i, CE_PAYMENT));
	return 0;
}

/* The hash chain check: every account's entries, then the accounts that
 * have no entries but a non-empty last_hash. Returns the violation count,
 * or -1 (err set) on an operational failure. */
static long
check_chain(PGconn *c, char *err, size_t errlen)
{
	struct chain ch = { 0 };
	PGresult *r = NULL;
	char a[2 * HASH_LEN + 8];
	long rc = -1, i;
	int j, n, has_format;

	/* A database before migration 0003 has no chain to check. */
	if ((n = entries_have(c, "entry_hash", err, errlen)) < 0)
		return -1;
	if (n == 0) {
		printf("note  ledger hash chain: this database has no entry_hash "
		       "(migration 0003 not applied), not checked\n");
		return 0;
	}
	/* Before 0011 every entry is format 1, whose bytes need no kind (a
	 * column only from 0006 on). */
	if ((has_format = entries_have(c, "hash_format", err, errlen)) < 0)
		return -1;
	ch.md = EVP_MD_CTX_new();
	if (ch.md == NULL)
		abort();
	/* In chain order; each account's last_hash rides along on its rows.
	 * The server may sort (spilling to disk for a big ledger); this side
	 * holds one FETCH at a time. */
	r = PQexec(c,
	    has_format
	        ? "DECLARE verify_chain NO SCROLL CURSOR FOR "
	          "SELECT e.entry_id, e.account_id, e.payment_id, e.direction, e.amount_cents, "
	          "       e.currency, e.balance_after_cents, e.created_at, e.entry_hash, b.last_hash, "
	          "       e.hash_format, e.kind, coalesce(e.refund_id, '') "
	          "  FROM ledger_entries e LEFT JOIN account_balances b USING (account_id) "
	          " ORDER BY e.account_id, e.entry_id"
	        : "DECLARE verify_chain NO SCROLL CURSOR FOR "
	          "SELECT e.entry_id, e.account_id, e.payment_id, e.direction, e.amount_cents, "
	          "       e.currency, e.balance_after_cents, e.created_at, e.entry_hash, b.last_hash, "
	          "       1::int2, '', '' "
	          "  FROM ledger_entries e LEFT JOIN account_balances b USING (account_id) "
	          " ORDER BY e.account_id, e.entry_id");
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		snprintf(err, errlen, "hash chain: %s", PQerrorMessage(c));
		goto out;
	}
	for (;;) {
		PQclear(r);
		r = PQexecParams(c, "FETCH " CHAIN_STR(CHAIN_FETCH) " FROM verify_chain", 0, NULL,
		    NULL, NULL, NULL, 1);
		if (PQresultStatus(r) != PGRES_TUPLES_OK || PQnfields(r) != CE_NCOLS) {
			snprintf(err, errlen, "hash chain: %s", PQerrorMessage(c));
			goto out;
		}
		n = PQntuples(r);
		for (j = 0; j < n; j++)
			if (chain_row(&ch, r, j, err, errlen) < 0)
				goto out;
		if (n < CHAIN_FETCH)
			break;
	}
	chain_close(&ch);
	PQclear(r);
	r = PQexecParams(c, "CLOSE verify_chain", 0, NULL, NULL, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		snprintf(err, errlen, "hash chain: %s", PQerrorMessage(c));
		goto out;
	}
	PQclear(r);
	r = PQexecParams(c,
	    "SELECT b.account_id, b.last_hash FROM account_balances b "
	    " WHERE b.last_hash <> '\\x'::bytea AND NOT EXISTS "
	    "       (SELECT 1 FROM ledger_entries e WHERE e.account_id = b.account_id) "
	    " ORDER BY b.account_id",
	    0, NULL, NULL, NULL, NULL, 1);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "hash chain: %s", PQerrorMessage(c));
		goto out;
	}
	for (j = 0; j < PQntuples(r); j++) {
		size_t l = (size_t)PQgetlength(r, j, 1);

		hex((const unsigned char *)PQgetvalue(r, j, 1), l > HASH_LEN ? HASH_LEN : l, a);
		chain_violation(&ch,
		    "account %s: no ledger entries, but balance row last_hash is %s (expected "
		    "empty): its entries were deleted, or last_hash was changed",
		    PQgetvalue(r, j, 0), a);
	}
	if (ch.violations == 0) {
		printf("ok    ledger hash chain (entry_hash, last_hash): %ld entries of %ld "
		       "accounts recomputed\n",
		    ch.entries, ch.accounts);
	} else {
		printf("FAIL  ledger hash chain (entry_hash, last_hash): %ld violation%s "
		       "(%ld entries of %ld accounts recomputed)\n",
		    ch.violations, ch.violations == 1 ? "" : "s", ch.entries, ch.accounts);
		for (i = 0; i < ch.violations && i < max_report; i++)
			printf("        %s\n", ch.lines[i]);
		if (ch.violations > max_report)
			printf("        ... and %ld more\n", ch.violations - max_report);
	}
	rc = ch.violations;
out:
	PQclear(r);
	for (i = 0; i < ch.violations && i < max_report; i++)
		free(ch.lines[i]);
	free(ch.lines);
	free(ch.account);
	free(ch.prev_payment);
	EVP_MD_CTX_free(ch.md);
	return rc;
}

/* ---- Kafka comparison ------------------------------------------------- */

#define T_AUTH 0
#define T_DECL 1
#define T_DLQ  2
/* The topics read: the three above, then one per other event type of the
 * outbox (the relay's rule: prefix + "." + the type in lower case). */
#define KT_MAX 16

struct ktopics {
	char name[KT_MAX][128];
	int n;
};

/* The topic of an event type (added when new), or -1 if the type is not a
 * legal topic name or there are too many types. */
static int
ktopic_of_type(struct ktopics *kt, const char *prefix, const char *type)
{
	char name[128];
	size_t n = strlen(prefix), i;
	int k;

	if (type[0] == '\0' || n + 2 + strlen(type) > sizeof(name))
		return -1;
	memcpy(name, prefix, n);
	name[n++] = '.';
	for (i = 0; type[i]; i++) {
		unsigned char ch = (unsigned char)type[i];

		if (!isalnum(ch) && ch != '_' && ch != '-')
			return -1;
		name[n++] = (char)tolower(ch);
	}
	name[n] = '\0';
	for (k = 0; k < kt->n; k++)
		if (strcmp(kt->name[k], name) == 0)
			return k;
	if (kt->n == KT_MAX)
		return -1;
	snprintf(kt->name[kt->n], sizeof(kt->name[0]), "%s", name);
	return kt->n++;
}

struct ev {
	char id[37];
	int used;
	int in_outbox, published;
	int expect_topic; /* its type's topic (struct ktopics), or -1 */
	int64_t seq;
	char aggregate[64];
	int count; /* messages on the broker */
	int wrong_topic;
	int first_topic, second_topic;
	int32_t first_part, second_part;
	int64_t first_off, second_off;
};

struct evtab {
	struct ev *e;
	size_t cap, n;
};

static uint64_t
hash_id(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

static struct ev *ev_find(struct evtab *t, const char *id, int create);

static void
ev_grow(struct evtab *t)
{
	struct evtab nt;
	size_t i;

	nt.cap = t->cap ? t->cap * 2 : 1024;
	nt.n = 0;
	nt.e = xcalloc(nt.cap, sizeof(*nt.e));
	for (i = 0; i < t->cap; i++)
		if (t->e[i].used)
			*ev_find(&nt, t->e[i].id, 1) = t->e[i];
	free(t->e);
	*t = nt;
}

static struct ev *
ev_find(struct evtab *t, const char *id, int create)
{
	size_t i;

	if (create && (t->n + 1) * 2 > t->cap)
		ev_grow(t);
	if (t->cap == 0)
		return NULL;
	for (i = hash_id(id) & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
		struct ev *e = &t->e[i];
		if (!e->used) {
			if (!create)
				return NULL;
			memset(e, 0, sizeof(*e));
			e->used = 1;
			snprintf(e->id, sizeof(e->id), "%s", id);
			e->expect_topic = -1;
			t->n++;
			return e;
		}
		if (strcmp(e->id, id) == 0)
			return e;
	}
}

/* Canonical lower-case UUID text (what Postgres prints), else 0. */
static int
uuid_ok(const char *s, size_t n)
{
	size_t i;

	if (n != 36)
		return 0;
	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i])) {
			return 0;
		}
	}
	return 1;
}

/* event_id of a message: its header, else the JSON value's event_id (the
 * envelope), else the DLQ record's envelope.event_id. */
static int
message_event_id(const rd_kafka_message_t *m, char out[37])
{
	rd_kafka_headers_t *h = NULL;
	const void *val;
	size_t vlen;
	json_t *j = NULL, *id;
	json_error_t je;
	int rc = -1;

	if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR &&
	    rd_kafka_header_get_last(h, "event_id", &val, &vlen) == RD_KAFKA_RESP_ERR_NO_ERROR &&
	    val != NULL && vlen < 37) {
		memcpy(out, val, vlen);
		out[vlen] = '\0';
		rc = 0;
		goto out;
	}
	if (m->payload == NULL)
		goto out;
	j = json_loadb(m->payload, m->len, 0, &je);
	if (j == NULL)
		goto out;
	id = json_object_get(j, "event_id");
	if (!json_is_string(id))
		id = json_object_get(json_object_get(j, "envelope"), "event_id");
	if (json_is_string(id) && strlen(json_string_value(id)) < 37) {
		snprintf(out, 37, "%s", json_string_value(id));
		rc = 0;
	}
out:
	json_decref(j);
	return rc;
}

struct kopts {
	const char *brokers, *prefix;
	int timeout_ms;
};

/* Loads the outbox of the current snapshot into t, adding the topic of
 * every event type to kt. */
static int
load_outbox(PGconn *c, const struct kopts *ko, struct ktopics *kt, struct evtab *t, char *err,
    size_t errlen)
{
	PGresult *r = PQexec(c,
	    "SELECT event_id::text, seq, event_type, published_at IS NOT NULL, "
	    "aggregate_id FROM outbox ORDER BY seq");
	int i, rc = -1;

	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "reading the outbox: %s", PQerrorMessage(c));
		goto out;
	}
	for (i = 0; i < PQntuples(r); i++) {
		struct ev *e = ev_find(t, PQgetvalue(r, i, 0), 1);
		const char *type = PQgetvalue(r, i, 2);

		e->in_outbox = 1;
		e->seq = strtoll(PQgetvalue(r, i, 1), NULL, 10);
		e->published = PQgetvalue(r, i, 3)[0] == 't';
		e->expect_topic = ktopic_of_type(kt, ko->prefix, type);
		snprintf(e->aggregate, sizeof(e->aggregate), "%s", PQgetvalue(r, i, 4));
	}
	rc = 0;
out:
	PQclear(r);
	return rc;
}

struct part {
	int topic;
	int32_t p;
	int64_t lo, hi;
	int done;
};

/* Reads every message of the topics up to the end offsets taken now and
 * tallies them into t. Returns messages read, or -1. */
static long
consume_all(const struct kopts *ko, const struct ktopics *kt, struct evtab *t, long *no_id,
    char *err, size_t errlen)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_t *rk = NULL;
	rd_kafka_topic_partition_list_t *tl = NULL;
	struct part *parts = NULL;
	size_t np = 0, cap = 0, left = 0, i;
	char errstr[512], gid[64];
	long nread = -1, printed = 0;
	int64_t until;
	int k;

	snprintf(gid, sizeof(gid), "payment-verify-%d", (int)getpid());
	if (rd_kafka_conf_set(conf, "bootstrap.servers", ko->brokers, errstr, sizeof(errstr)) ||
	    rd_kafka_conf_set(conf, "group.id", gid, errstr, sizeof(errstr)) ||
	    rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr)) ||
	    rd_kafka_conf_set(conf, "enable.partition.eof", "false", errstr, sizeof(errstr)) ||
	    rd_kafka_conf_set(conf, "allow.auto.create.topics", "false", errstr, sizeof(errstr))) {
		snprintf(err, errlen, "kafka config: %s", errstr);
		rd_kafka_conf_destroy(conf);
		goto out;
	}
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	if (rk == NULL) {
		snprintf(err, errlen, "kafka consumer: %s", errstr);
		rd_kafka_conf_destroy(conf);
		goto out;
	}
	until = util_now_ms() + ko->timeout_ms;
	for (k = 0; k < kt->n; k++) {
		const struct rd_kafka_metadata *md = NULL;
		rd_kafka_topic_t *rt = rd_kafka_topic_new(rk, kt->name[k], NULL);
		rd_kafka_resp_err_t e = rd_kafka_metadata(
		    rk, 0, rt, &md, (int)(until - util_now_ms() > 0 ? until - util_now_ms() : 1));

		if (e != RD_KAFKA_RESP_ERR_NO_ERROR || md->topic_cnt != 1) {
			snprintf(err, errlen, "kafka metadata for %s: %s", kt->name[k],
			    rd_kafka_err2str(e));
			if (md)
				rd_kafka_metadata_destroy(md);
			rd_kafka_topic_destroy(rt);
			goto out;
		}
		if (md->topics[0].err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
			printf("note  topic %s does not exist on the broker (treated as empty)\n",
			    kt->name[k]);
		} else if (md->topics[0].err) {
			snprintf(err, errlen, "kafka metadata for %s: %s", kt->name[k],
			    rd_kafka_err2str(md->topics[0].err));
			rd_kafka_metadata_destroy(md);
			rd_kafka_topic_destroy(rt);
			goto out;
		}
		for (i = 0; md->topics[0].err == 0 && i < (size_t)md->topics[0].partition_cnt;
		     i++) {
			if (np == cap) {
				cap = cap ? cap * 2 : 16;
				parts = realloc(parts, cap * sizeof(*parts));
				if (parts == NULL)
					abort();
			}
			parts[np].topic = k;
			parts[np].p = md->topics[0].partitions[i].id;
			parts[np].done = 0;
			e = rd_kafka_query_watermark_offsets(
			    rk, kt->name[k], parts[np].p, &parts[np].lo, &parts[np].hi, 10000);
			if (e) {
				snprintf(err, errlen, "kafka watermarks of %s[%d]: %s", kt->name[k],
				    (int)parts[np].p, rd_kafka_err2str(e));
				rd_kafka_metadata_destroy(md);
				rd_kafka_topic_destroy(rt);
				goto out;
			}
			np++;
		}
		rd_kafka_metadata_destroy(md);
		rd_kafka_topic_destroy(rt);
	}
	tl = rd_kafka_topic_partition_list_new((int)(np ? np : 1));
	for (i = 0; i < np; i++) {
		if (parts[i].hi <= parts[i].lo) {
			parts[i].done = 1;
			continue;
		}
		rd_kafka_topic_partition_list_add(tl, kt->name[parts[i].topic], parts[i].p)
		    ->offset = parts[i].lo;
		left++;
	}
	for (i = 0; i < np; i++)
		if (parts[i].lo > 0)
			printf("note  %s[%d] starts at offset %" PRId64
			       ": older messages were deleted by "
			       "retention, so their events may be reported missing\n",
			    kt->name[parts[i].topic], (int)parts[i].p, parts[i].lo);
	if (rd_kafka_assign(rk, tl)) {
		snprintf(err, errlen, "kafka assign failed");
		goto out;
	}
	nread = 0;
	while (left > 0) {
		rd_kafka_message_t *m;
		char id[37];

		if (util_now_ms() > until) {
			snprintf(err, errlen,
			    "timed out after %d ms reading the topics "
			    "(%zu partitions not read to their end)",
			    ko->timeout_ms, left);
			nread = -1;
			goto out;
		}
		m = rd_kafka_consumer_poll(rk, 200);
		if (m == NULL)
			continue;
		if (m->err) {
			if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
				snprintf(err, errlen, "kafka: %s", rd_kafka_message_errstr(m));
				rd_kafka_message_destroy(m);
				nread = -1;
				goto out;
			}
			rd_kafka_message_destroy(m);
			continue;
		}
		for (i = 0; i < np; i++) {
			struct part *pp = &parts[i];
			if (pp->done || pp->p != m->partition ||
			    strcmp(kt->name[pp->topic], rd_kafka_topic_name(m->rkt)) != 0)
				continue;
			if (m->offset >= pp->hi) {
				/* Written after we took the end offsets: not ours to judge. */
				break;
			}
			nread++;
			if (message_event_id(m, id) < 0) {
				(*no_id)++;
				if (printed++ < max_report)
					printf("FAIL  message %s[%d]@%" PRId64
					       " carries no event_id header "
					       "or envelope field\n",
					    kt->name[pp->topic], (int)m->partition, m->offset);
			} else {
				struct ev *e = ev_find(t, id, 1);
				if (e->count == 0) {
					e->first_topic = pp->topic;
					e->first_part = m->partition;
					e->first_off = m->offset;
				} else if (e->count == 1) {
					e->second_topic = pp->topic;
					e->second_part = m->partition;
					e->second_off = m->offset;
				}
				e->count++;
				if (pp->topic != T_DLQ && e->expect_topic >= 0 &&
				    pp->topic != e->expect_topic)
					e->wrong_topic = 1;
			}
			if (m->offset >= pp->hi - 1) {
				pp->done = 1;
				left--;
			}
			break;
		}
		rd_kafka_message_destroy(m);
	}
out:
	if (tl)
		rd_kafka_topic_partition_list_destroy(tl);
	if (rk) {
		rd_kafka_consumer_close(rk);
		rd_kafka_destroy(rk);
	}
	free(parts);
	return nread;
}

/* Which unknown ids exist in the outbox now (committed after our snapshot)? */
static int
recheck_unknown(const char *url, struct evtab *t, char *err, size_t errlen)
{
	PGconn *c = NULL;
	PGresult *r = NULL;
	char *arr = NULL;
	size_t i, len = 0, cap = 0;
	const char *p[1];
	int rc = -1, any = 0;

	for (i = 0; i < t->cap; i++) {
		struct ev *e = &t->e[i];
		if (!e->used || e->in_outbox || e->count == 0 || !uuid_ok(e->id, strlen(e->id)))
			continue;
		if (len + 40 >= cap) {
			cap = cap ? cap * 2 : 4096;
			arr = realloc(arr, cap);
			if (arr == NULL)
				abort();
		}
		len += (size_t)sprintf(arr + len, "%s%s", any ? "," : "{", e->id);
		any = 1;
	}
	if (!any) {
		rc = 0;
		goto out;
	}
	strcpy(arr + len, "}");
	c = PQconnectdb(url);
	if (PQstatus(c) != CONNECTION_OK) {
		snprintf(err, errlen, "connect: %s", PQerrorMessage(c));
		goto out;
	}
	p[0] = arr;
	r = PQexecParams(c, "SELECT event_id::text FROM outbox WHERE event_id = ANY($1::uuid[])", 1,
	    NULL, p, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "re-checking unknown events: %s", PQerrorMessage(c));
		goto out;
	}
	for (i = 0; i < (size_t)PQntuples(r); i++) {
		struct ev *e = ev_find(t, PQgetvalue(r, (int)i, 0), 0);
		if (e)
			e->in_outbox = 2; /* committed after the snapshot */
	}
	rc = 0;
out:
	PQclear(r);
	if (c)
		PQfinish(c);
	free(arr);
	return rc;
}

static const char *
topic_of(const struct ktopics *kt, int k)
{
	return k >= 0 && k < kt->n ? kt->name[k] : "?";
}

/* Returns violations found, or -1 on an operational error. */
static long
kafka_compare(const char *url, PGconn *c, const struct kopts *ko, char *err, size_t errlen)
{
	struct evtab t = { NULL, 0, 0 };
	struct ktopics kt;
	long nread, no_id = 0, missing = 0, dup = 0, unknown = 0, wrong = 0, late = 0, early = 0;
	long shown, v = -1;
	size_t i;

	memset(&kt, 0, sizeof(kt));
	ktopic_of_type(&kt, ko->prefix, "PaymentAuthorized"); /* T_AUTH */
	ktopic_of_type(&kt, ko->prefix, "PaymentDeclined");   /* T_DECL */
	ktopic_of_type(&kt, ko->prefix, "dlq");               /* T_DLQ */
	if (load_outbox(c, ko, &kt, &t, err, errlen) < 0)
		goto out;
	/* The snapshot is taken; only now read the broker, so every event the
	 * snapshot calls published must already be there. */
	nread = consume_all(ko, &kt, &t, &no_id, err, errlen);
	if (nread < 0)
		goto out;
	if (recheck_unknown(url, &t, err, errlen) < 0)
		goto out;

	for (i = 0; i < t.cap; i++) {
		struct ev *e = &t.e[i];
		if (!e->used)
			continue;
		if (e->in_outbox == 1 && e->published && e->count == 0)
			missing++;
		if (e->count > 1)
			dup++;
		if (e->count > 0 && e->wrong_topic)
			wrong++;
		if (e->count > 0 && e->in_outbox == 0)
			unknown++;
		if (e->count > 0 && e->in_outbox == 2)
			late++;
		if (e->count > 0 && e->in_outbox == 1 && !e->published)
			early++;
	}
	printf("%s  kafka: every published event is on the broker (%ld missing)\n",
	    missing ? "FAIL" : "ok  ", missing);
	for (i = 0, shown = 0; i < t.cap && missing; i++) {
		struct ev *e = &t.e[i];
		if (e->used && e->in_outbox == 1 && e->published && e->count == 0 &&
		    shown++ < max_report)
			printf("        event %s (outbox seq %" PRId64
			       ", aggregate %s) is marked published "
			       "but is on neither %s nor %s\n",
			    e->id, e->seq, e->aggregate, topic_of(&kt, e->expect_topic),
			    kt.name[T_DLQ]);
	}
	printf("%s  kafka: no event is on the broker twice (%ld duplicated)\n",
	    dup ? "FAIL" : "ok  ", dup);
	for (i = 0, shown = 0; i < t.cap && dup; i++) {
		struct ev *e = &t.e[i];
		if (e->used && e->count > 1 && shown++ < max_report)
			printf("        event %s (aggregate %s) appears %d times: %s[%d]@%" PRId64
			       " and %s[%d]@%" PRId64 "%s\n",
			    e->id, e->in_outbox ? e->aggregate : "?", e->count,
			    topic_of(&kt, e->first_topic), (int)e->first_part, e->first_off,
			    topic_of(&kt, e->second_topic), (int)e->second_part, e->second_off,
			    e->count > 2 ? " ..." : "");
	}
	printf("%s  kafka: every event is on its own topic or the DLQ (%ld misrouted)\n",
	    wrong ? "FAIL" : "ok  ", wrong);
	for (i = 0, shown = 0; i < t.cap && wrong; i++) {
		struct ev *e = &t.e[i];
		if (e->used && e->count > 0 && e->wrong_topic && shown++ < max_report)
			printf("        event %s (seq %" PRId64 ") is on %s, expected %s or %s\n",
			    e->id, e->seq, topic_of(&kt, e->first_topic),
			    topic_of(&kt, e->expect_topic), kt.name[T_DLQ]);
	}
	printf(
	    "%s  kafka: every message belongs to an outbox row (%ld unknown, %ld without event_id)\n",
	    unknown || no_id ? "FAIL" : "ok  ", unknown, no_id);
	for (i = 0, shown = 0; i < t.cap && unknown; i++) {
		struct ev *e = &t.e[i];
		if (e->used && e->count > 0 && e->in_outbox == 0 && shown++ < max_report)
			printf("        message %s[%d]@%" PRId64
			       " has event_id %s, which no outbox row has\n",
			    topic_of(&kt, e->first_topic), (int)e->first_part, e->first_off, e->id);
	}
	if (early)
		printf("note  %ld events are on the broker but not yet marked published "
		       "(the relay marks after the broker acknowledges)\n",
		    early);
	if (late)
		printf("note  %ld events on the broker were committed after the snapshot\n", late);
	printf("      kafka: %ld messages read, %zu outbox rows\n", nread, t.n);
	v = missing + dup + wrong + unknown + no_id;
out:
	free(t.e);
	return v;
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "database-url", 1, NULL, 'd' },
		{ "kafka", 1, NULL, 'k' },
		{ "topic-prefix", 1, NULL, 'p' },
		{ "kafka-timeout", 1, NULL, 't' },
		{ "max-report", 1, NULL, 'm' },
		{ "help", 0, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *url = getenv("DATABASE_URL"), *prefix = getenv("KAFKA_TOPIC_PREFIX");
	struct kopts ko = { NULL, "payments", 30000 };
	char err[1024] = "", buf[64];
	PGconn *c = NULL;
	PGresult *r = NULL;
	long total = 0, n;
	size_t i;
	int opt, rc = 2;

	if (prefix != NULL)
		ko.prefix = prefix;
	while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (opt) {
		case 'd': url = optarg; break;
		case 'k': ko.brokers = optarg; break;
		case 'p': ko.prefix = optarg; break;
		case 't': ko.timeout_ms = count_opt("kafka-timeout", optarg); break;
		case 'm': max_report = count_opt("max-report", optarg); break;
		default: usage();
		}
	}
	if (optind != argc || url == NULL || max_report < 1 || ko.timeout_ms < 1 ||
	    strlen(ko.prefix) > 100)
		usage();

	c = PQconnectdb(url);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "payment-verify: connect: %s", PQerrorMessage(c));
		goto out;
	}
	/* The chain hashes ids as UTF-8 bytes, so ask for them in UTF-8. */
	if (PQsetClientEncoding(c, "UTF8") != 0) {
		fprintf(stderr, "payment-verify: client_encoding UTF8: %s", PQerrorMessage(c));
		goto out;
	}
	/* Every check reads whole tables, so hash and merge joins are always
	 * right. Right after a bulk load (stale statistics) the planner can
	 * still pick a nested loop over a materialized outbox for
	 * "ORDER BY ... LIMIT", which is quadratic: minutes for 150k payments.
	 * The LATERAL last-entry lookup remains a nested loop (it has no
	 * alternative). work_mem keeps the sorts of a big ledger in memory. */
	r = PQexec(c,
	    "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; "
	    "SET LOCAL enable_nestloop = off; SET LOCAL work_mem = '64MB'");
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		fprintf(stderr, "payment-verify: %s", PQerrorMessage(c));
		goto out;
	}
	if (query_value(c,
	        "SELECT format('%s payments, %s ledger entries, %s accounts, "
	        "%s outbox events', (SELECT count(*) FROM payments), (SELECT count(*) FROM ledger_entries), "
	        "(SELECT count(*) FROM account_balances), (SELECT count(*) FROM outbox))",
	        err, sizeof(err)) < 0) {
		fprintf(stderr, "payment-verify: %s (are migrations applied?)", PQerrorMessage(c));
		goto out;
	}
	printf("payment-verify: %s\n", err);
	for (i = 0; i < ARRAY_LEN(checks); i++) {
		n = run_check(c, &checks[i], err, sizeof(err));
		if (n < 0) {
			fprintf(stderr, "payment-verify: %s", err);
			goto out;
		}
		total += n;
	}
	n = check_chain(c, err, sizeof(err));
	if (n < 0) {
		fprintf(stderr, "payment-verify: %s", err);
		goto out;
	}
	total += n;
	if (query_value(c,
	        "SELECT count(*) FROM outbox o WHERE NOT EXISTS "
	        "(SELECT 1 FROM payments p WHERE p.payment_id = o.aggregate_id)",
	        buf, sizeof(buf)) == 0 &&
	    strcmp(buf, "0") != 0)
		printf(
		    "note  %s outbox events refer to no payment (written outside authorize_payment)\n",
		    buf);
	if (ko.brokers != NULL) {
		n = kafka_compare(url, c, &ko, err, sizeof(err));
		if (n < 0) {
			fprintf(stderr, "payment-verify: %s\n", err);
			goto out;
		}
		total += n;
	}
	printf("payment-verify: %ld violation%s\n", total, total == 1 ? "" : "s");
	rc = total ? 1 : 0;
out:
	PQclear(r);
	PQfinish(c);
	return rc;
}
