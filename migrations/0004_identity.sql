-- 0004_identity: who is calling. Clients with their credentials, account
-- grants, per-client rate limits, idempotency keys scoped to the client,
-- and the acting client recorded on every payment and event.
--
-- Contract: after this migration authorize_payment takes the acting
-- client's id first and checks, in the payment's own transaction, that the
-- client is ACTIVE and may debit the payer (clients are never deleted:
-- revoking keeps the row); a refusal writes nothing and is
-- returned in o_denied_code ('revoked', 'can_debit', 'funding_account') and
-- o_denied (the missing permission, for the caller's message). Existing payments and keys belong to
-- the client `legacy`, which AUTH_MODE=none maps every caller to, so the
-- seed's behaviour is unchanged there.

-- A client is a service (or an operator) that calls paymentd. Revoking it
-- keeps the row (payments refer to it) and fails every later RPC.
CREATE TABLE clients (
    client_id   bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE
                CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$'),
    status      text NOT NULL DEFAULT 'ACTIVE'
                CHECK (status IN ('ACTIVE', 'REVOKED')),
    -- Admins may do everything on every account (debit funding accounts,
    -- AccountService); other clients only what their grants say.
    is_admin    boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    CONSTRAINT revoked_has_time CHECK ((status = 'REVOKED') = (revoked_at IS NOT NULL))
);

-- How a client proves who it is. kind:
--   mtls_uri     a URI SAN of its certificate (e.g. spiffe://…/client/x)
--   mtls_dns     a DNS SAN of its certificate
--   mtls_sha256  SHA-256 of the DER certificate, lowercase hex
--   token        SHA-256 (lowercase hex) of the API token "pd_…"; the token
--                itself (32 random bytes) is shown once and never stored.
-- A plain hash suffices for tokens: they are 256 random bits, so there is
-- nothing for a slow KDF to protect against dictionary guessing.
CREATE TABLE client_credentials (
    credential_id  bigserial PRIMARY KEY,
    client_id      bigint NOT NULL REFERENCES clients (client_id),
    kind           text NOT NULL
                   CHECK (kind IN ('mtls_uri', 'mtls_dns', 'mtls_sha256', 'token')),
    value          text NOT NULL CHECK (length(value) BETWEEN 1 AND 512),
    -- For tokens: the first characters of the token, so an operator can
    -- tell tokens apart in `paymentd client list` without the secret.
    hint           text NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL DEFAULT now(),
    revoked_at     timestamptz
);
-- One live credential maps to one client; revoked ones stay for audit.
CREATE UNIQUE INDEX client_credentials_live
    ON client_credentials (kind, value) WHERE revoked_at IS NULL;
CREATE INDEX client_credentials_client ON client_credentials (client_id);

-- What a client may do on which accounts. account_pattern is an account id,
-- or a prefix followed by '*' ('acc-shop-17-*'; '*' alone is every account).
CREATE TABLE account_grants (
    client_id        bigint NOT NULL REFERENCES clients (client_id),
    account_pattern  text NOT NULL
                     CHECK (account_pattern ~ '^[A-Za-z0-9._:-]{0,64}\*?$'
                            AND account_pattern <> ''),
    can_debit        boolean NOT NULL DEFAULT false,
    can_read         boolean NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (client_id, account_pattern)
);

-- Per-client, per-method rate limits (requests per RATE_LIMIT_WINDOW_SECONDS;
-- 0 = unlimited). A method without a row here uses RATE_LIMITS/_DEFAULT.
CREATE TABLE client_limits (
    client_id  bigint NOT NULL REFERENCES clients (client_id),
    method     text NOT NULL CHECK (method ~ '^[A-Za-z]{1,64}$'),
    limit_per_window integer NOT NULL CHECK (limit_per_window BETWEEN 0 AND 100000000),
    PRIMARY KEY (client_id, method)
);

-- Funding accounts (the bank's equity accounts, allowed below zero) can only
-- be debited by admins, whatever the grants say.
ALTER TABLE accounts ADD COLUMN kind text NOT NULL DEFAULT 'CUSTOMER'
    CHECK (kind IN ('CUSTOMER', 'FUNDING'));
UPDATE accounts a SET kind = 'FUNDING'
  FROM account_balances b
 WHERE b.account_id = a.account_id AND b.overdraft_limit_cents > 0;

-- The legacy client owns everything written before identities existed and
-- is the caller of AUTH_MODE=none. It has no credentials, so no
-- authenticated mode can ever act as it.
INSERT INTO clients (name, is_admin) VALUES ('legacy', true);

CREATE FUNCTION legacy_client_id() RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT client_id FROM clients WHERE name = 'legacy'
$$;

-- No foreign keys from the hot tables to clients: each would take FOR KEY
-- SHARE on the one client row in every payment (a MultiXact per concurrent
-- pair, measured ~13% of the call); authorize_payment reads the client row
-- itself, and clients are never deleted (revoked rows stay).
ALTER TABLE payments ADD COLUMN client_id bigint;
UPDATE payments SET client_id = legacy_client_id();
ALTER TABLE payments ALTER COLUMN client_id SET NOT NULL;
DROP INDEX payments_idempotency_key;
CREATE INDEX payments_client_key ON payments (client_id, idempotency_key);

ALTER TABLE idempotency_keys ADD COLUMN client_id bigint;
UPDATE idempotency_keys SET client_id = legacy_client_id();
ALTER TABLE idempotency_keys ALTER COLUMN client_id SET NOT NULL;
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_pkey;
ALTER TABLE idempotency_keys ADD PRIMARY KEY (client_id, idempotency_key);

-- The acting client's name travels as a Kafka header, not in the payload.
ALTER TABLE outbox ADD COLUMN client_name text;

-- May client p_client read (p_perm = 'read') or debit ('debit') account
-- p_account? False for unknown or revoked clients. PL/pgSQL, not SQL: a
-- SQL function with a FROM clause is not inlined, and its body would be
-- planned again at every execution of the statement that calls it;
-- PL/pgSQL keeps its plan for the session.
CREATE FUNCTION client_may(p_client bigint, p_account text, p_perm text)
RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    RETURN coalesce((
        SELECT c.status = 'ACTIVE' AND (c.is_admin OR EXISTS (
                   SELECT 1 FROM account_grants g
                    WHERE g.client_id = c.client_id
                      AND CASE p_perm WHEN 'debit' THEN g.can_debit
                                      ELSE g.can_read END
                      AND (g.account_pattern = p_account
                           OR (right(g.account_pattern, 1) = '*'
                               AND starts_with(p_account,
                                               left(g.account_pattern, -1))))))
          FROM clients c WHERE c.client_id = p_client), false);
END;
$$;

-- Revocation and payments: a payment assigns its transaction id before it
-- reads the client (pg_current_xact_id() below), and `paymentd client
-- revoke` (and the other commands that take a permission away) commits and
-- then waits until every transaction that had an id at that moment has
-- ended (pg_snapshot_xmin passes the snapshot's xmax). So when the command
-- returns, every payment that read the old state has committed or rolled
-- back, and every later payment reads the new state — at no cost on the
-- payment path (an advisory lock per payment cost ~7% of the call).

DROP FUNCTION authorize_payment(text, text, text, bigint, text, text, bytea,
                                text, integer, text);

CREATE FUNCTION authorize_payment(
    p_client_id        bigint,
    p_key              text,
    p_payer            text,
    p_payee            text,
    p_amount           bigint,
    p_currency         text,
    p_description      text,
    p_fingerprint      bytea,
    p_new_payment_id   text,
    p_key_ttl_seconds  integer,
    p_correlation_id   text)
RETURNS TABLE (
    o_payment_id     text,
    o_status         text,
    o_error_code     text,
    o_error_message  text,
    o_processed_at   text,
    o_replayed       boolean,
    o_conflict       text,
    o_denied_code    text,
    o_denied         text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    k          idempotency_keys%ROWTYPE;
    v_client_name text;
    v_active   boolean;
    v_may_debit boolean;
    v_funding  boolean;
    a_payer    accounts%ROWTYPE;
    a_payee    accounts%ROWTYPE;
    b_payer    account_balances%ROWTYPE;
    b_payee    account_balances%ROWTYPE;
    r          record;
    v_now      timestamptz := now();
    v_code     text;
    v_msg      text;
    v_status   text;
    v_payer_after bigint;
    v_payee_after bigint;
    v_payer_entry bigint;
    v_payee_entry bigint;
    v_payer_hash  bytea;
    v_payee_hash  bytea;
    v_inserted boolean := false;
BEGIN
    -- Who is acting, and may they debit the payer? Checked before anything
    -- is written, in one statement (each plpgsql statement costs an
    -- executor start); the transaction id is taken in it, before the client
    -- is read, so a revocation that commits meanwhile waits for this
    -- payment (see above).
    SELECT c.name, c.status = 'ACTIVE',
           c.is_admin OR EXISTS (
               SELECT 1 FROM account_grants g
                WHERE g.client_id = c.client_id AND g.can_debit
                  AND (g.account_pattern = p_payer
                       OR (right(g.account_pattern, 1) = '*'
                           AND starts_with(p_payer, left(g.account_pattern, -1))))),
           NOT c.is_admin AND EXISTS (
               SELECT 1 FROM accounts WHERE account_id = p_payer AND kind = 'FUNDING')
      INTO v_client_name, v_active, v_may_debit, v_funding
      FROM (SELECT pg_current_xact_id()) x, clients c
     WHERE c.client_id = p_client_id;
    IF NOT FOUND OR NOT v_active THEN
        RETURN QUERY SELECT NULL::text, NULL::text, NULL::text, NULL::text,
            NULL::text, false, NULL::text, 'revoked'::text,
            'client is revoked'::text;
        RETURN;
    END IF;
    IF NOT v_may_debit THEN
        RETURN QUERY SELECT NULL::text, NULL::text, NULL::text, NULL::text,
            NULL::text, false, NULL::text, 'can_debit'::text,
            format('can_debit on payer account %s', p_payer);
        RETURN;
    END IF;
    IF v_funding THEN
        RETURN QUERY SELECT NULL::text, NULL::text, NULL::text, NULL::text,
            NULL::text, false, NULL::text, 'funding_account'::text,
            format('admin: payer account %s is a funding account', p_payer);
        RETURN;
    END IF;

    -- An expired key may be used again: drop the stale record first. A
    -- concurrent caller blocked on the same row skips it once we commit.
    DELETE FROM idempotency_keys
     WHERE client_id = p_client_id AND idempotency_key = p_key
       AND expires_at <= v_now;

    -- Claim the key. ON CONFLICT waits for a concurrent claimer of the same
    -- key to finish, so N racing requests produce exactly one payment.
    FOR attempt IN 1..3 LOOP
        INSERT INTO idempotency_keys AS ik
            (client_id, idempotency_key, fingerprint, payer_account_id,
             payee_account_id, amount_cents, currency, description,
             payment_id, status, processed_at, expires_at)
        VALUES (p_client_id, p_key, p_fingerprint, p_payer, p_payee, p_amount,
                p_currency, p_description, p_new_payment_id, 'PENDING', v_now,
                v_now + make_interval(secs => p_key_ttl_seconds))
        ON CONFLICT (client_id, idempotency_key) DO NOTHING;
        IF FOUND THEN
            v_inserted := true;
            EXIT;
        END IF;
        SELECT * INTO k FROM idempotency_keys
         WHERE client_id = p_client_id AND idempotency_key = p_key;
        IF FOUND THEN
            EXIT;
        END IF;
        -- The holder rolled back or the row expired in between: try again.
    END LOOP;

    IF NOT v_inserted THEN
        IF k.idempotency_key IS NULL THEN
            RAISE EXCEPTION 'idempotency key % could not be claimed', p_key
                USING ERRCODE = '40001';
        END IF;
        IF k.fingerprint <> p_fingerprint THEN
            RETURN QUERY SELECT k.payment_id, k.status, k.error_code,
                k.error_message, rfc3339(k.processed_at), false,
                concat_ws(', ',
                    CASE WHEN k.payer_account_id <> p_payer THEN 'payer_account_id' END,
                    CASE WHEN k.payee_account_id <> p_payee THEN 'payee_account_id' END,
                    CASE WHEN k.amount_cents <> p_amount THEN 'amount_cents' END,
                    CASE WHEN k.currency <> p_currency THEN 'currency' END,
                    CASE WHEN k.description <> p_description THEN 'description' END,
                    CASE WHEN k.payer_account_id = p_payer
                          AND k.payee_account_id = p_payee
                          AND k.amount_cents = p_amount
                          AND k.currency = p_currency
                          AND k.description = p_description
                         THEN 'request fingerprint' END),
                NULL::text, NULL::text;
            RETURN;
        END IF;
        RETURN QUERY SELECT k.payment_id, k.status, k.error_code,
            k.error_message, rfc3339(k.processed_at), true, NULL::text,
            NULL::text, NULL::text;
        RETURN;
    END IF;

    -- Business checks, cheapest first. Accounts are locked in sorted id
    -- order so two payments in opposite directions cannot deadlock.
    IF p_amount <= 0 THEN
        v_code := 'INVALID_AMOUNT';
        v_msg := format('amount_cents must be positive, got %s', p_amount);
    ELSIF p_amount > 1000000000000000 THEN
        -- 10^15 cents caps every sum below bigint overflow.
        v_code := 'INVALID_AMOUNT';
        v_msg := format('amount_cents must be at most 1000000000000000, got %s', p_amount);
    ELSIF p_payer = p_payee THEN
        v_code := 'SAME_ACCOUNT';
        v_msg := format('payer and payee are the same account %L', p_payer);
    ELSE
        FOR r IN
            SELECT b.account_id
              FROM account_balances b
             WHERE b.account_id IN (p_payer, p_payee)
             ORDER BY b.account_id
               FOR UPDATE
        LOOP
            NULL;
        END LOOP;
        SELECT * INTO a_payer FROM accounts WHERE account_id = p_payer;
        SELECT * INTO a_payee FROM accounts WHERE account_id = p_payee;
        SELECT * INTO b_payer FROM account_balances WHERE account_id = p_payer;
        SELECT * INTO b_payee FROM account_balances WHERE account_id = p_payee;

        IF a_payer.account_id IS NULL OR b_payer.account_id IS NULL THEN
            v_code := 'ACCOUNT_NOT_FOUND';
            v_msg := format('payer account %L not found', p_payer);
        ELSIF a_payee.account_id IS NULL OR b_payee.account_id IS NULL THEN
            v_code := 'ACCOUNT_NOT_FOUND';
            v_msg := format('payee account %L not found', p_payee);
        ELSIF a_payer.status <> 'ACTIVE' THEN
            v_code := 'ACCOUNT_INACTIVE';
            v_msg := format('payer account %L is %s', p_payer, a_payer.status);
        ELSIF a_payee.status <> 'ACTIVE' THEN
            v_code := 'ACCOUNT_INACTIVE';
            v_msg := format('payee account %L is %s', p_payee, a_payee.status);
        ELSIF a_payer.currency <> p_currency THEN
            v_code := 'CURRENCY_MISMATCH';
            v_msg := format('payer account %L holds %s, request is in %s',
                            p_payer, a_payer.currency, p_currency);
        ELSIF a_payee.currency <> p_currency THEN
            v_code := 'CURRENCY_MISMATCH';
            v_msg := format('payee account %L holds %s, request is in %s',
                            p_payee, a_payee.currency, p_currency);
        ELSIF b_payer.available_cents - p_amount
              < -b_payer.overdraft_limit_cents THEN
            v_code := 'INSUFFICIENT_FUNDS';
            v_msg := format('payer account %L has insufficient funds', p_payer);
        END IF;
    END IF;

    v_status := CASE WHEN v_code IS NULL THEN 'AUTHORIZED' ELSE 'DECLINED' END;

    INSERT INTO payments
        (payment_id, client_id, idempotency_key, payer_account_id,
         payee_account_id, amount_cents, currency, description, status,
         error_code, error_message, correlation_id, created_at, updated_at)
    VALUES (p_new_payment_id, p_client_id, p_key, p_payer, p_payee, p_amount,
            p_currency, p_description, v_status, v_code, v_msg,
            p_correlation_id, v_now, v_now);

    IF v_status = 'AUTHORIZED' THEN
        -- The hash chain (0003) advances in the balance UPDATEs this
        -- function makes anyway, on rows it has locked: the entry ids come
        -- first, since they are part of the hashed bytes. The trigger only
        -- checks the inserted hashes against last_hash.
        v_payer_entry := nextval('ledger_entries_entry_id_seq');
        v_payee_entry := nextval('ledger_entries_entry_id_seq');
        UPDATE account_balances
           SET available_cents = available_cents - p_amount,
               version = version + 1, updated_at = v_now,
               last_hash = sha256(last_hash || ledger_bytes(v_payer_entry, p_payer,
                   p_new_payment_id, 'DEBIT', p_amount, p_currency,
                   available_cents - p_amount, v_now))
         WHERE account_id = p_payer
        RETURNING available_cents, last_hash INTO v_payer_after, v_payer_hash;
        UPDATE account_balances
           SET available_cents = available_cents + p_amount,
               version = version + 1, updated_at = v_now,
               last_hash = sha256(last_hash || ledger_bytes(v_payee_entry, p_payee,
                   p_new_payment_id, 'CREDIT', p_amount, p_currency,
                   available_cents + p_amount, v_now))
         WHERE account_id = p_payee
        RETURNING available_cents, last_hash INTO v_payee_after, v_payee_hash;

        INSERT INTO ledger_entries
            (entry_id, payment_id, account_id, direction, amount_cents, currency,
             balance_after_cents, created_at, entry_hash)
        VALUES (v_payer_entry, p_new_payment_id, p_payer, 'DEBIT', p_amount,
                p_currency, v_payer_after, v_now, v_payer_hash),
               (v_payee_entry, p_new_payment_id, p_payee, 'CREDIT', p_amount,
                p_currency, v_payee_after, v_now, v_payee_hash);
    END IF;

    INSERT INTO outbox
        (aggregate_type, aggregate_id, partition_key, event_type, payload,
         correlation_id, client_name, created_at)
    VALUES ('payment', p_new_payment_id, p_payer,
            CASE WHEN v_status = 'AUTHORIZED' THEN 'PaymentAuthorized'
                 ELSE 'PaymentDeclined' END,
            jsonb_build_object(
                'payment_id', p_new_payment_id,
                'payer_account_id', p_payer,
                'payee_account_id', p_payee,
                'amount_cents', p_amount,
                'currency', p_currency,
                'description', p_description,
                'status', v_status,
                'error_code', v_code,
                'error_message', v_msg,
                'processed_at', rfc3339(v_now)),
            p_correlation_id, v_client_name, v_now);

    UPDATE idempotency_keys
       SET status = v_status, error_code = v_code, error_message = v_msg
     WHERE client_id = p_client_id AND idempotency_key = p_key;

    RETURN QUERY SELECT p_new_payment_id, v_status, v_code, v_msg,
        rfc3339(v_now), false, NULL::text, NULL::text, NULL::text;
END;
$$;
