-- 0001_ledger: accounts, balances, payments, double-entry ledger,
-- idempotency keys and the transactional outbox.
--
-- Contract: applied once by `paymentd migrate` inside one transaction and
-- recorded in schema_migrations. Never edit an applied migration; add a new
-- file with the next number instead (the runner stores a checksum and
-- refuses to run when an applied file changed).

CREATE TABLE accounts (
    account_id      text PRIMARY KEY
                    CHECK (length(account_id) BETWEEN 1 AND 64),
    currency        text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    -- Only ACTIVE accounts take part in payments; FROZEN and CLOSED decline.
    status          text NOT NULL DEFAULT 'ACTIVE'
                    CHECK (status IN ('ACTIVE', 'FROZEN', 'CLOSED')),
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- Balances live apart from the account master data so the hot row that every
-- payment locks stays narrow. version counts every change (audit and
-- optimistic readers); overdraft_limit_cents is how far below zero the
-- balance may go (0 for customers, large for the funding/equity account).
CREATE TABLE account_balances (
    account_id            text PRIMARY KEY REFERENCES accounts (account_id),
    available_cents       bigint NOT NULL DEFAULT 0,
    pending_cents         bigint NOT NULL DEFAULT 0 CHECK (pending_cents >= 0),
    overdraft_limit_cents bigint NOT NULL DEFAULT 0
                          CHECK (overdraft_limit_cents >= 0),
    version               bigint NOT NULL DEFAULT 0,
    updated_at            timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT balance_within_overdraft
        CHECK (available_cents >= -overdraft_limit_cents)
);

-- Every authorization attempt that passed request validation is a row here,
-- declines included (they carry error_code). Payer and payee are not foreign
-- keys: a decline for an unknown account is recorded too.
CREATE TABLE payments (
    payment_id        text PRIMARY KEY,
    idempotency_key   text NOT NULL,
    payer_account_id  text NOT NULL,
    payee_account_id  text NOT NULL,
    amount_cents      bigint NOT NULL,
    currency          text NOT NULL,
    description       text NOT NULL DEFAULT '',
    status            text NOT NULL CHECK (status IN ('AUTHORIZED', 'DECLINED')),
    error_code        text,
    error_message     text,
    correlation_id    text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT authorized_amount_positive
        CHECK (status = 'DECLINED' OR amount_cents > 0),
    CONSTRAINT decline_has_code
        CHECK ((status = 'DECLINED') = (error_code IS NOT NULL))
);
CREATE INDEX payments_idempotency_key ON payments (idempotency_key);
CREATE INDEX payments_payer ON payments (payer_account_id, created_at);

-- Double-entry ledger. A DEBIT lowers the account's balance, a CREDIT raises
-- it; every authorized payment writes exactly one of each, so the signed sum
-- over all entries is zero and an account's balance is the signed sum of its
-- entries. balance_after_cents is the balance right after this entry.
CREATE TABLE ledger_entries (
    entry_id            bigserial PRIMARY KEY,
    payment_id          text NOT NULL REFERENCES payments (payment_id),
    account_id          text NOT NULL REFERENCES accounts (account_id),
    direction           text NOT NULL CHECK (direction IN ('DEBIT', 'CREDIT')),
    amount_cents        bigint NOT NULL CHECK (amount_cents > 0),
    currency            text NOT NULL,
    balance_after_cents bigint NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (payment_id, direction)
);
CREATE INDEX ledger_entries_account ON ledger_entries (account_id, entry_id);

-- Idempotency records: the request's parameters (to name a mismatch), its
-- fingerprint (SHA-256 computed by the daemon over a canonical encoding) and
-- the outcome to replay. A key is reusable once expires_at has passed.
CREATE TABLE idempotency_keys (
    idempotency_key   text PRIMARY KEY,
    fingerprint       bytea NOT NULL,
    payer_account_id  text NOT NULL,
    payee_account_id  text NOT NULL,
    amount_cents      bigint NOT NULL,
    currency          text NOT NULL,
    description       text NOT NULL,
    payment_id        text NOT NULL,
    status            text NOT NULL,
    error_code        text,
    error_message     text,
    processed_at      timestamptz NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    expires_at        timestamptz NOT NULL
);
CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires_at);

-- Transactional outbox. seq orders events; txid is the writing transaction,
-- so a reader can stop below the oldest transaction still running
-- (pg_snapshot_xmin) and never skip a row whose lower seq commits late.
CREATE TABLE outbox (
    seq             bigserial PRIMARY KEY,
    event_id        uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
    txid            xid8 NOT NULL DEFAULT pg_current_xact_id(),
    aggregate_type  text NOT NULL,
    aggregate_id    text NOT NULL,
    partition_key   text NOT NULL,
    event_type      text NOT NULL,
    payload         jsonb NOT NULL,
    correlation_id  text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    published_at    timestamptz,
    retry_count     integer NOT NULL DEFAULT 0,
    last_error      text
);
CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;

-- RFC 3339 UTC rendering used for every timestamp the API returns.
CREATE FUNCTION rfc3339(ts timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;
