-- 0008_accounts: account management (AccountService) and what statements
-- need: the page-token key, create_account, update_account_status and the
-- keyset indexes of ListAccountEntries / ListPayments / as_of balances.
--
-- Contract:
--  - page_token_keys holds one 32-byte secret, made here from the server's
--    strong random source; workers read it once per connection and sign
--    page tokens with it (daemon/ledger/page_token.h). Replacing the row
--    invalidates every outstanding token (they fail INVALID_ARGUMENT).
--  - create_account and update_account_status are admin-only: the acting
--    client is read in the function's own transaction (after its
--    transaction id is taken, as authorize_payment does, so a revocation
--    waits for it), and a refusal writes nothing (o_denied_code 'revoked'
--    or 'admin', o_denied the missing permission).
--  - Both return one row describing the account afterwards, or an
--    o_error_code (ALREADY_EXISTS, NOT_FOUND, FAILED_PRECONDITION) with a
--    message meant for the client; they never raise for a business
--    outcome. Each change writes one outbox event keyed by the account
--    (AccountCreated, AccountStatusChanged); a no-op writes none.
--  - Money only enters through payments: a new account starts at zero,
--    and the way to fund it is a payment from the funding account of its
--    currency (acc-equity-<ccy>, kind FUNDING, which `paymentd migrate`
--    keeps for each of FUNDING_CURRENCIES). An account may be created in a
--    currency without a funding account; it can then only receive money
--    from other accounts of that currency.

-- One row (key_id 1). 32 bytes from three gen_random_uuid() (each 122
-- bits from pg_strong_random(), the source core Postgres 15 exposes
-- without pgcrypto), hashed together: SHA-256 of 366 random bits.
CREATE TABLE page_token_keys (
    key_id      smallint PRIMARY KEY CHECK (key_id = 1),
    secret      bytea NOT NULL CHECK (length(secret) = 32),
    created_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO page_token_keys (key_id, secret)
VALUES (1, sha256(uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid())
                  || uuid_send(gen_random_uuid())));

-- Keyset pagination, newest first: ListAccountEntries walks an account's
-- entries by (created_at, entry_id) backwards (and as_of takes the last
-- one at or before an instant). ListPayments walks payments by payer and
-- by payee on 0007's payments_payer_created / payments_payee_created,
-- which make 0001's payments_payer (same leading columns) redundant: one
-- index fewer for every payment to maintain.
CREATE INDEX ledger_entries_account_time ON ledger_entries (account_id, created_at, entry_id);
DROP INDEX payments_payer;
-- Holds of a payer by time: pending balance as of an instant.
CREATE INDEX payments_payer_holds ON payments (payer_account_id, created_at)
    WHERE capture_method = 'MANUAL';

-- The account as the API shows it (Account message), for the functions
-- below: always one row, all NULL when there is no such account.
CREATE FUNCTION account_view(p_account_id text)
RETURNS TABLE (
    o_account_id  text,
    o_currency    text,
    o_status      text,
    o_kind        text,
    o_overdraft   bigint,
    o_available   bigint,
    o_pending     bigint,
    o_created_at  text,
    o_metadata    jsonb)
LANGUAGE sql STABLE AS $$
    SELECT a.account_id, a.currency, a.status, a.kind, b.overdraft_limit_cents,
           b.available_cents, b.pending_cents, rfc3339(a.created_at), a.metadata
      FROM (VALUES (1)) one
      LEFT JOIN (accounts a JOIN account_balances b USING (account_id))
        ON a.account_id = p_account_id
$$;

-- CreateAccount. p_account_id is never empty here: the daemon generates
-- one ("acc-" + ULID) when the request leaves it empty. Same id and the
-- same currency, overdraft limit and metadata: the existing account
-- (o_created false), whatever its status; anything else differing:
-- ALREADY_EXISTS naming the fields. Concurrent creates of one id: the
-- INSERT ... ON CONFLICT waits for the first, so exactly one creates it
-- and the others compare against it.
CREATE FUNCTION create_account(
    p_client_id       bigint,
    p_account_id      text,
    p_currency        text,
    p_overdraft       bigint,
    p_metadata        jsonb,
    p_correlation_id  text)
RETURNS TABLE (
    o_denied_code  text,
    o_denied       text,
    o_error_code   text,
    o_error        text,
    o_changed      boolean,
    o_account_id   text,
    o_currency     text,
    o_status       text,
    o_kind         text,
    o_overdraft    bigint,
    o_available    bigint,
    o_pending      bigint,
    o_created_at   text,
    o_metadata     jsonb)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_client_name  text;
    v_active       boolean;
    v_admin        boolean;
    v_now          timestamptz := now();
    a              accounts%ROWTYPE;
    v_overdraft    bigint;
    v_diff         text;
BEGIN
    SELECT c.name, c.status = 'ACTIVE', c.is_admin
      INTO v_client_name, v_active, v_admin
      FROM (SELECT pg_current_xact_id()) x, clients c
     WHERE c.client_id = p_client_id;
    IF NOT FOUND OR NOT v_active THEN
        RETURN QUERY SELECT 'revoked'::text, 'client is revoked'::text, NULL::text,
            NULL::text, false, v.* FROM account_view(NULL) v;
        RETURN;
    END IF;
    IF NOT v_admin THEN
        RETURN QUERY SELECT 'admin'::text,
            'admin: CreateAccount is for admin clients'::text, NULL::text, NULL::text,
            false, v.* FROM account_view(NULL) v;
        RETURN;
    END IF;

    INSERT INTO accounts (account_id, currency, kind, metadata, created_at, updated_at)
    VALUES (p_account_id, p_currency, 'CUSTOMER', p_metadata, v_now, v_now)
    ON CONFLICT (account_id) DO NOTHING;
    IF FOUND THEN
        INSERT INTO account_balances (account_id, overdraft_limit_cents, updated_at)
        VALUES (p_account_id, p_overdraft, v_now);
        INSERT INTO outbox
            (aggregate_type, aggregate_id, partition_key, event_type, payload,
             correlation_id, client_name, created_at)
        VALUES ('account', p_account_id, p_account_id, 'AccountCreated',
                jsonb_build_object(
                    'account_id', p_account_id,
                    'currency', p_currency,
                    'kind', 'CUSTOMER',
                    'status', 'ACTIVE',
                    'overdraft_limit_cents', p_overdraft,
                    'metadata', p_metadata,
                    'created_at', rfc3339(v_now)),
                p_correlation_id, v_client_name, v_now);
        RETURN QUERY SELECT NULL::text, NULL::text, NULL::text, NULL::text, true, v.*
            FROM account_view(p_account_id) v;
        RETURN;
    END IF;

    SELECT * INTO a FROM accounts WHERE account_id = p_account_id;
    SELECT b.overdraft_limit_cents INTO v_overdraft
      FROM account_balances b WHERE b.account_id = p_account_id;
    v_diff := concat_ws(', ',
        CASE WHEN a.currency <> p_currency THEN 'currency' END,
        CASE WHEN v_overdraft IS DISTINCT FROM p_overdraft THEN 'overdraft_limit_cents' END,
        CASE WHEN a.metadata <> p_metadata THEN 'metadata' END,
        CASE WHEN a.kind <> 'CUSTOMER' THEN 'kind (it is a funding account)' END);
    IF v_diff <> '' THEN
        RETURN QUERY SELECT NULL::text, NULL::text, 'ALREADY_EXISTS'::text,
            format('account %s already exists with different %s', p_account_id, v_diff),
            false, v.* FROM account_view(p_account_id) v;
        RETURN;
    END IF;
    RETURN QUERY SELECT NULL::text, NULL::text, NULL::text, NULL::text, false, v.*
        FROM account_view(p_account_id) v;
END;
$$;

-- UpdateAccountStatus. ACTIVE <-> FROZEN freely; CLOSED from either when
-- the account holds nothing (available + pending = 0) and no hold is
-- open on it as payer or as payee (a capture would post to it); CLOSED
-- is final. The same status again is a no-op that returns the account
-- and writes no event. The balance row is locked first, as every payment
-- does, so the balance and hold checks cannot race a payment: one that
-- is in flight finishes before, and the next one sees the new status.
-- The account row is locked FOR NO KEY UPDATE, which does not block the
-- FOR KEY SHARE that inserting a ledger entry takes on it.
CREATE FUNCTION update_account_status(
    p_client_id       bigint,
    p_account_id      text,
    p_status          text,
    p_reason          text,
    p_correlation_id  text)
RETURNS TABLE (
    o_denied_code  text,
    o_denied       text,
    o_error_code   text,
    o_error        text,
    o_changed      boolean,
    o_account_id   text,
    o_currency     text,
    o_status       text,
    o_kind         text,
    o_overdraft    bigint,
    o_available    bigint,
    o_pending      bigint,
    o_created_at   text,
    o_metadata     jsonb)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_client_name  text;
    v_active       boolean;
    v_admin        boolean;
    v_now          timestamptz := now();
    a              accounts%ROWTYPE;
    b              account_balances%ROWTYPE;
    v_holds        bigint;
    v_err          text;
BEGIN
    SELECT c.name, c.status = 'ACTIVE', c.is_admin
      INTO v_client_name, v_active, v_admin
      FROM (SELECT pg_current_xact_id()) x, clients c
     WHERE c.client_id = p_client_id;
    IF NOT FOUND OR NOT v_active THEN
        RETURN QUERY SELECT 'revoked'::text, 'client is revoked'::text, NULL::text,
            NULL::text, false, v.* FROM account_view(NULL) v;
        RETURN;
    END IF;
    IF NOT v_admin THEN
        RETURN QUERY SELECT 'admin'::text,
            'admin: UpdateAccountStatus is for admin clients'::text, NULL::text,
            NULL::text, false, v.* FROM account_view(NULL) v;
        RETURN;
    END IF;
    IF p_status IS NULL OR p_status NOT IN ('ACTIVE', 'FROZEN', 'CLOSED') THEN
        RETURN QUERY SELECT NULL::text, NULL::text, 'INVALID_ARGUMENT'::text,
            format('status must be ACTIVE, FROZEN or CLOSED, got %s', p_status),
            false, v.* FROM account_view(NULL) v;
        RETURN;
    END IF;

    SELECT * INTO b FROM account_balances WHERE account_id = p_account_id FOR UPDATE;
    SELECT * INTO a FROM accounts WHERE account_id = p_account_id FOR NO KEY UPDATE;
    IF a.account_id IS NULL OR b.account_id IS NULL THEN
        RETURN QUERY SELECT NULL::text, NULL::text, 'NOT_FOUND'::text,
            format('account %s not found', p_account_id), false, v.*
            FROM account_view(NULL) v;
        RETURN;
    END IF;
    IF a.status = p_status THEN
        RETURN QUERY SELECT NULL::text, NULL::text, NULL::text, NULL::text, false, v.*
            FROM account_view(p_account_id) v;
        RETURN;
    END IF;
    IF a.status = 'CLOSED' THEN
        v_err := format('account %s is CLOSED, which is final', p_account_id);
    ELSIF p_status = 'CLOSED' THEN
        IF b.available_cents + b.pending_cents <> 0 THEN
            v_err := format('account %s cannot be closed: it holds %s cents '
                            '(available %s, pending %s); move the money out first',
                            p_account_id, b.available_cents + b.pending_cents,
                            b.available_cents, b.pending_cents);
        ELSE
            SELECT count(*) INTO v_holds FROM payments
             WHERE (payer_account_id = p_account_id OR payee_account_id = p_account_id)
               AND capture_method = 'MANUAL' AND status = 'AUTHORIZED';
            IF v_holds > 0 THEN
                v_err := format('account %s cannot be closed: %s open hold(s) name it; '
                                'capture or void them first', p_account_id, v_holds);
            END IF;
        END IF;
    END IF;
    IF v_err IS NOT NULL THEN
        RETURN QUERY SELECT NULL::text, NULL::text, 'FAILED_PRECONDITION'::text, v_err,
            false, v.* FROM account_view(p_account_id) v;
        RETURN;
    END IF;

    UPDATE accounts SET status = p_status, status_reason = p_reason, updated_at = v_now
     WHERE account_id = p_account_id;
    INSERT INTO outbox
        (aggregate_type, aggregate_id, partition_key, event_type, payload,
         correlation_id, client_name, created_at)
    VALUES ('account', p_account_id, p_account_id, 'AccountStatusChanged',
            jsonb_build_object(
                'account_id', p_account_id,
                'previous_status', a.status,
                'status', p_status,
                'reason', p_reason,
                'changed_at', rfc3339(v_now)),
            p_correlation_id, v_client_name, v_now);
    RETURN QUERY SELECT NULL::text, NULL::text, NULL::text, NULL::text, true, v.*
        FROM account_view(p_account_id) v;
END;
$$;
