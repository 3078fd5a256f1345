-- 0006_lifecycle: the tables and columns of the payment lifecycle — holds
-- (MANUAL payments), captures, voids, expiries, refunds, operation keys —
-- and of account management. The functions that use them come in the
-- migrations after this one.
--
-- Contract, for every account at every moment:
--   available_cents + pending_cents = signed sum of its posted entries
--   pending_cents = sum of amount_cents of its payer payments that are
--                   MANUAL and still AUTHORIZED (open holds)
-- and for every payment: refunded_amount_cents <= captured_amount_cents
-- (AUTOMATIC payments count as captured in full when authorized).
-- Every balance stays within +-10^17 cents (docs/ledger.md): the functions
-- decline with BALANCE_LIMIT before a change would cross it, and the CHECKs
-- below are the backstop that no writer can get past.

-- Account master data: free-form metadata from CreateAccount, and the last
-- status change (UpdateAccountStatus).
ALTER TABLE accounts ADD COLUMN metadata jsonb NOT NULL DEFAULT '{}'::jsonb;
ALTER TABLE accounts ADD COLUMN status_reason text;
ALTER TABLE accounts ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();

-- The bound. Funding accounts were created with 4*10^18 of overdraft,
-- which let a long run of huge payments overflow bigint; they get the
-- bound itself.
UPDATE account_balances SET overdraft_limit_cents = 100000000000000000
 WHERE overdraft_limit_cents > 100000000000000000;
ALTER TABLE account_balances
    ADD CONSTRAINT available_within_bound
        CHECK (available_cents BETWEEN -100000000000000000 AND 100000000000000000),
    ADD CONSTRAINT pending_within_bound CHECK (pending_cents <= 100000000000000000),
    ADD CONSTRAINT overdraft_within_bound
        CHECK (overdraft_limit_cents <= 100000000000000000);

-- Payments: how they are captured, how much was posted and refunded, the
-- open hold's expiry, metadata, and the states after a hold.
ALTER TABLE payments ADD COLUMN capture_method text NOT NULL DEFAULT 'AUTOMATIC'
    CHECK (capture_method IN ('AUTOMATIC', 'MANUAL'));
ALTER TABLE payments ADD COLUMN captured_amount_cents bigint NOT NULL DEFAULT 0
    CHECK (captured_amount_cents >= 0);
ALTER TABLE payments ADD COLUMN refunded_amount_cents bigint NOT NULL DEFAULT 0
    CHECK (refunded_amount_cents >= 0);
ALTER TABLE payments ADD COLUMN hold_expires_at timestamptz;
-- When the hold ended (capture, void or expiry): with created_at it says
-- which holds were open at any past instant (GetAccountBalance as_of).
ALTER TABLE payments ADD COLUMN hold_closed_at timestamptz;
ALTER TABLE payments ADD COLUMN metadata jsonb NOT NULL DEFAULT '{}'::jsonb;
ALTER TABLE payments ADD COLUMN void_reason text;
ALTER TABLE payments DROP CONSTRAINT payments_status_check;
ALTER TABLE payments ADD CONSTRAINT payments_status_check
    CHECK (status IN ('AUTHORIZED', 'DECLINED', 'CAPTURED', 'VOIDED', 'EXPIRED'));
ALTER TABLE payments ADD CONSTRAINT refunds_within_captured
    CHECK (refunded_amount_cents <= captured_amount_cents);
ALTER TABLE payments ADD CONSTRAINT captured_within_amount
    CHECK (captured_amount_cents <= amount_cents);
ALTER TABLE payments ADD CONSTRAINT lifecycle_states_are_manual
    CHECK (status IN ('AUTHORIZED', 'DECLINED') OR capture_method = 'MANUAL');
UPDATE payments SET captured_amount_cents = amount_cents WHERE status = 'AUTHORIZED';
-- The janitor's scan: open holds by expiry.
CREATE INDEX payments_open_holds ON payments (hold_expires_at)
    WHERE status = 'AUTHORIZED' AND capture_method = 'MANUAL';

-- A refund moves refunded money back from the payee to the payer.
CREATE TABLE refunds (
    refund_id     text PRIMARY KEY,
    payment_id    text NOT NULL REFERENCES payments (payment_id),
    amount_cents  bigint NOT NULL CHECK (amount_cents > 0),
    currency      text NOT NULL,
    reason        text NOT NULL DEFAULT '',
    client_id     bigint NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refunds_payment ON refunds (payment_id, created_at);

-- Entries of one payment: PAYMENT (AUTOMATIC, at authorization), CAPTURE
-- (MANUAL), REFUND (one pair per refund).
ALTER TABLE ledger_entries ADD COLUMN kind text NOT NULL DEFAULT 'PAYMENT'
    CHECK (kind IN ('PAYMENT', 'CAPTURE', 'REFUND'));
ALTER TABLE ledger_entries ADD COLUMN refund_id text REFERENCES refunds (refund_id);
ALTER TABLE ledger_entries ADD CONSTRAINT refund_entries_name_refund
    CHECK ((kind = 'REFUND') = (refund_id IS NOT NULL));
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_payment_id_direction_key;
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_one_pair
    UNIQUE NULLS NOT DISTINCT (payment_id, refund_id, direction);

-- Idempotency of CapturePayment, VoidPayment and RefundPayment: one key
-- space per client shared by the three (a key used for a capture cannot
-- name a refund), apart from AuthorizePayment's. The response is kept as
-- sent (protobuf bytes) so a replay is the original answer; params holds
-- the request's fields to name a mismatch.
CREATE TABLE operation_keys (
    client_id        bigint NOT NULL,
    idempotency_key  text NOT NULL,
    operation        text NOT NULL CHECK (operation IN ('CAPTURE', 'VOID', 'REFUND')),
    fingerprint      bytea NOT NULL,
    params           jsonb NOT NULL,
    payment_id       text NOT NULL,
    response         bytea NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL,
    PRIMARY KEY (client_id, idempotency_key)
);
CREATE INDEX operation_keys_expires ON operation_keys (expires_at);
