-- 0007_lifecycle_fns: the payment lifecycle as server-side functions —
-- authorize_payment with capture methods, hold TTLs and metadata, and
-- capture_payment, void_payment, refund_payment, expire_hold. The tables
-- are 0006's.
--
-- Contract, for every function here:
--  - one call is one transaction's worth of work; nothing it refuses
--    (revoked client, missing permission) writes anything;
--  - balance rows are locked in account_id order, always before the
--    payment row (authorize_payment, capture, void, refund, expire_hold),
--    so no two of them deadlock;
--  - business declines are answers (o_error_code/o_error_message), never
--    errors; the only errors are serialization/deadlock (40001/40P01,
--    retried by the caller) and bugs. No Postgres text is meant for a
--    client: every message a client may see is composed here.
--  - Every balance stays within +-10^17 cents (the bound, docs/ledger.md):
--    a change that would cross it declines with BALANCE_LIMIT before the
--    CHECKs of 0006 could raise.
--  - Ledger entries of every kind (PAYMENT, CAPTURE, REFUND) are chained
--    with ledger_bytes() of 0003, format 'paymentd-ledger-v1', unchanged:
--    kind and refund_id are not part of the hashed bytes (the entry id,
--    payment id and amount are, so an entry cannot be moved or altered
--    without breaking its chain). payment-verify computes what it computed
--    for 0004's entries.
--  - balance_after_cents of an entry = available_cents + pending_cents of
--    its account right after the entry (what the account holds in posted
--    entries; a hold moves money between the two and writes no entry).
--
-- Capture/void/refund (the "operations") are idempotent on operation_keys:
-- the function claims (client, key) and returns o_outcome 'new' with the
-- result; the caller packs its protobuf reply and stores it with
-- op_store_response() in the SAME transaction before COMMIT, so a
-- concurrent duplicate, which waits on the claimed key, sees the final
-- bytes ('replay'). Other outcomes: 'conflict' (o_detail names the fields
-- that differ; nothing written), 'denied' (o_denied_code revoked |
-- can_debit | funding_account, o_detail the missing permission; nothing
-- written), 'not_found' (no such payment; nothing written).

-- The bound on every balance, in cents.
CREATE FUNCTION balance_bound() RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT 100000000000000000::bigint $$;

-- Metadata as one text the worker parses without a JSON parser: for each
-- entry in key order, "<octet length>:<key><octet length>:<value>".
CREATE FUNCTION metadata_text(m jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(string_agg(octet_length(e.key) || ':' || e.key
                               || octet_length(e.value) || ':' || e.value,
                               '' ORDER BY e.key COLLATE "C"), '')
      FROM jsonb_each_text(m) e
$$;

-- A payment as every RPC returns it (GetPayment, ListPayments, the
-- lifecycle replies): one column order, one parser in the worker.
CREATE TYPE payment_out AS (
    payment_id            text,
    payer_account_id      text,
    payee_account_id      text,
    amount_cents          bigint,
    currency              text,
    status                text,
    description           text,
    created_at            text,
    updated_at            text,
    capture_method        text,
    captured_amount_cents bigint,
    refunded_amount_cents bigint,
    hold_expires_at       text,
    metadata              text);

CREATE FUNCTION payment_out(p payments) RETURNS payment_out
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT ROW(p.payment_id, p.payer_account_id, p.payee_account_id,
               p.amount_cents, p.currency, p.status, p.description,
               rfc3339(p.created_at), rfc3339(p.updated_at), p.capture_method,
               p.captured_amount_cents, p.refunded_amount_cents,
               -- Only an open hold has an expiry worth showing.
               CASE WHEN p.status = 'AUTHORIZED' AND p.capture_method = 'MANUAL'
                    THEN rfc3339(p.hold_expires_at) ELSE '' END,
               metadata_text(p.metadata))::payment_out
$$;

-- A declined payment may carry a negative amount (INVALID_AMOUNT is
-- recorded, like every decline) and captures nothing: 0006's
-- captured <= amount refused that row.
ALTER TABLE payments DROP CONSTRAINT captured_within_amount;
ALTER TABLE payments ADD CONSTRAINT captured_within_amount
    CHECK (captured_amount_cents <= greatest(amount_cents, 0));

-- authorize_payment's idempotency record names every parameter, so a
-- mismatch can say which one differs.
ALTER TABLE idempotency_keys ADD COLUMN capture_method text NOT NULL DEFAULT 'AUTOMATIC';
ALTER TABLE idempotency_keys ADD COLUMN hold_ttl_seconds bigint NOT NULL DEFAULT 0;
ALTER TABLE idempotency_keys ADD COLUMN metadata jsonb NOT NULL DEFAULT '{}'::jsonb;

DROP FUNCTION authorize_payment(bigint, text, text, text, bigint, text, text, bytea,
                                text, integer, text);

-- As 0004's, plus: p_capture_method 'AUTOMATIC' (money moves now;
-- captured_amount_cents = amount) or 'MANUAL' (a hold: payer available -=
-- amount, pending += amount, no entries, hold_expires_at = now +
-- p_hold_ttl_seconds, or HOLD_TTL_SECONDS' default 604800 when 0);
-- p_hold_ttl_requested is what the request said (0 = default), recorded
-- for the mismatch message; p_metadata is a JSON object of strings. The
-- new parameters have defaults, so 0004-style calls (tests, pgbench,
-- migrate's seed) keep working as AUTOMATIC payments without metadata.
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
    p_correlation_id   text,
    p_capture_method   text DEFAULT 'AUTOMATIC',
    p_hold_ttl_requested bigint DEFAULT 0,
    p_hold_ttl_seconds bigint DEFAULT 0,
    p_metadata         jsonb DEFAULT '{}'::jsonb)
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
    v_now      timestamptz := now();
    v_code     text;
    v_msg      text;
    v_status   text;
    v_manual   boolean := p_capture_method = 'MANUAL';
    v_expires  timestamptz;
    v_payer_after bigint;
    v_payee_after bigint;
    v_payer_entry bigint;
    v_payee_entry bigint;
    v_payer_hash  bytea;
    v_payee_hash  bytea;
    v_inserted boolean := false;
BEGIN
    -- Identity first, exactly as in 0004 (see the revocation note there).
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
    IF p_capture_method NOT IN ('AUTOMATIC', 'MANUAL') THEN
        RAISE EXCEPTION 'capture method % unknown', p_capture_method
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    DELETE FROM idempotency_keys
     WHERE client_id = p_client_id AND idempotency_key = p_key
       AND expires_at <= v_now;

    FOR attempt IN 1..3 LOOP
        INSERT INTO idempotency_keys AS ik
            (client_id, idempotency_key, fingerprint, payer_account_id,
             payee_account_id, amount_cents, currency, description,
             payment_id, status, processed_at, expires_at, capture_method,
             hold_ttl_seconds, metadata)
        VALUES (p_client_id, p_key, p_fingerprint, p_payer, p_payee, p_amount,
                p_currency, p_description, p_new_payment_id, 'PENDING', v_now,
                v_now + make_interval(secs => p_key_ttl_seconds),
                p_capture_method, p_hold_ttl_requested, p_metadata)
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
    END LOOP;

    IF NOT v_inserted THEN
        IF k.idempotency_key IS NULL THEN
            RAISE EXCEPTION 'idempotency key % could not be claimed', p_key
                USING ERRCODE = '40001';
        END IF;
        IF k.fingerprint <> p_fingerprint THEN
            RETURN QUERY SELECT k.payment_id, k.status, k.error_code,
                k.error_message, rfc3339(k.processed_at), false,
                coalesce(nullif(concat_ws(', ',
                    CASE WHEN k.payer_account_id <> p_payer THEN 'payer_account_id' END,
                    CASE WHEN k.payee_account_id <> p_payee THEN 'payee_account_id' END,
                    CASE WHEN k.amount_cents <> p_amount THEN 'amount_cents' END,
                    CASE WHEN k.currency <> p_currency THEN 'currency' END,
                    CASE WHEN k.description <> p_description THEN 'description' END,
                    CASE WHEN k.capture_method <> p_capture_method THEN 'capture_method' END,
                    CASE WHEN k.hold_ttl_seconds <> p_hold_ttl_requested THEN 'hold_ttl_seconds' END,
                    CASE WHEN k.metadata <> p_metadata THEN 'metadata' END), ''),
                    'request fingerprint'),
                NULL::text, NULL::text;
            RETURN;
        END IF;
        RETURN QUERY SELECT k.payment_id, k.status, k.error_code,
            k.error_message, rfc3339(k.processed_at), true, NULL::text,
            NULL::text, NULL::text;
        RETURN;
    END IF;

    IF p_amount <= 0 THEN
        v_code := 'INVALID_AMOUNT';
        v_msg := format('amount_cents must be positive, got %s', p_amount);
    ELSIF p_amount > 1000000000000000 THEN
        v_code := 'INVALID_AMOUNT';
        v_msg := format('amount_cents must be at most 1000000000000000, got %s', p_amount);
    ELSIF p_payer = p_payee THEN
        v_code := 'SAME_ACCOUNT';
        v_msg := format('payer and payee are the same account %L', p_payer);
    ELSE
        PERFORM 1 FROM account_balances b
          WHERE b.account_id IN (p_payer, p_payee)
          ORDER BY b.account_id FOR UPDATE;
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
        ELSIF b_payer.available_cents - p_amount < -balance_bound() THEN
            v_code := 'BALANCE_LIMIT';
            v_msg := format('payer account %L would fall below the balance bound of -%s cents',
                            p_payer, balance_bound());
        ELSIF v_manual AND b_payer.pending_cents + p_amount > balance_bound() THEN
            v_code := 'BALANCE_LIMIT';
            v_msg := format('payer account %L would hold more than the balance bound of %s cents pending',
                            p_payer, balance_bound());
        ELSIF NOT v_manual AND b_payee.available_cents + p_amount > balance_bound() THEN
            v_code := 'BALANCE_LIMIT';
            v_msg := format('payee account %L would exceed the balance bound of %s cents',
                            p_payee, balance_bound());
        END IF;
    END IF;

    v_status := CASE WHEN v_code IS NULL THEN 'AUTHORIZED' ELSE 'DECLINED' END;
    IF v_manual AND v_status = 'AUTHORIZED' THEN
        v_expires := v_now + make_interval(secs =>
            CASE WHEN p_hold_ttl_seconds > 0 THEN p_hold_ttl_seconds ELSE 604800 END);
    END IF;

    INSERT INTO payments
        (payment_id, client_id, idempotency_key, payer_account_id,
         payee_account_id, amount_cents, currency, description, status,
         error_code, error_message, correlation_id, created_at, updated_at,
         capture_method, captured_amount_cents, hold_expires_at, metadata)
    VALUES (p_new_payment_id, p_client_id, p_key, p_payer, p_payee, p_amount,
            p_currency, p_description, v_status, v_code, v_msg,
            p_correlation_id, v_now, v_now, p_capture_method,
            CASE WHEN v_status = 'AUTHORIZED' AND NOT v_manual THEN p_amount ELSE 0 END,
            v_expires, p_metadata);

    IF v_status = 'AUTHORIZED' AND v_manual THEN
        -- A hold: the amount leaves available for pending; nothing posts.
        UPDATE account_balances
           SET available_cents = available_cents - p_amount,
               pending_cents = pending_cents + p_amount,
               version = version + 1, updated_at = v_now
         WHERE account_id = p_payer;
    ELSIF v_status = 'AUTHORIZED' THEN
        -- The chain advances in the balance UPDATEs (see 0003/0004).
        v_payer_entry := nextval('ledger_entries_entry_id_seq');
        v_payee_entry := nextval('ledger_entries_entry_id_seq');
        UPDATE account_balances
           SET available_cents = available_cents - p_amount,
               version = version + 1, updated_at = v_now,
               last_hash = sha256(last_hash || ledger_bytes(v_payer_entry, p_payer,
                   p_new_payment_id, 'DEBIT', p_amount, p_currency,
                   available_cents - p_amount + pending_cents, v_now))
         WHERE account_id = p_payer
        RETURNING available_cents + pending_cents, last_hash
             INTO v_payer_after, v_payer_hash;
        UPDATE account_balances
           SET available_cents = available_cents + p_amount,
               version = version + 1, updated_at = v_now,
               last_hash = sha256(last_hash || ledger_bytes(v_payee_entry, p_payee,
                   p_new_payment_id, 'CREDIT', p_amount, p_currency,
                   available_cents + p_amount + pending_cents, v_now))
         WHERE account_id = p_payee
        RETURNING available_cents + pending_cents, last_hash
             INTO v_payee_after, v_payee_hash;

        INSERT INTO ledger_entries
            (entry_id, payment_id, account_id, direction, amount_cents, currency,
             balance_after_cents, created_at, entry_hash, kind)
        VALUES (v_payer_entry, p_new_payment_id, p_payer, 'DEBIT', p_amount,
                p_currency, v_payer_after, v_now, v_payer_hash, 'PAYMENT'),
               (v_payee_entry, p_new_payment_id, p_payee, 'CREDIT', p_amount,
                p_currency, v_payee_after, v_now, v_payee_hash, 'PAYMENT');
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
                'processed_at', rfc3339(v_now),
                'capture_method', p_capture_method,
                'hold_expires_at', rfc3339(v_expires),
                'metadata', p_metadata),
            p_correlation_id, v_client_name, v_now);

    UPDATE idempotency_keys
       SET status = v_status, error_code = v_code, error_message = v_msg
     WHERE client_id = p_client_id AND idempotency_key = p_key;

    RETURN QUERY SELECT p_new_payment_id, v_status, v_code, v_msg,
        rfc3339(v_now), false, NULL::text, NULL::text, NULL::text;
END;
$$;

-- Releases the open hold of payment p (its payer's balance row and the
-- payment row already locked by the caller) because it expired: pending
-- -= amount, available += amount, status EXPIRED, PaymentExpired. The
-- caller has checked that it is an open hold past hold_expires_at.
CREATE FUNCTION hold_expire_locked(p payments, p_client_name text, p_correlation_id text)
RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_now timestamptz := now();
BEGIN
    UPDATE account_balances
       SET available_cents = available_cents + p.amount_cents,
           pending_cents = pending_cents - p.amount_cents,
           version = version + 1, updated_at = v_now
     WHERE account_id = p.payer_account_id;
    UPDATE payments
       SET status = 'EXPIRED', hold_closed_at = v_now, updated_at = v_now
     WHERE payment_id = p.payment_id;
    INSERT INTO outbox
        (aggregate_type, aggregate_id, partition_key, event_type, payload,
         correlation_id, client_name, created_at)
    VALUES ('payment', p.payment_id, p.payer_account_id, 'PaymentExpired',
            jsonb_build_object(
                'payment_id', p.payment_id,
                'payer_account_id', p.payer_account_id,
                'payee_account_id', p.payee_account_id,
                'amount_cents', p.amount_cents,
                'currency', p.currency,
                'status', 'EXPIRED',
                'released_amount_cents', p.amount_cents,
                'hold_expires_at', rfc3339(p.hold_expires_at),
                'metadata', p.metadata,
                'processed_at', rfc3339(v_now)),
            coalesce(p_correlation_id, p.correlation_id), p_client_name, v_now);
END;
$$;

-- The janitor's (and anyone's) expiry of one payment: locks the payer's
-- balance row, then the payment; if it is still an open hold past
-- hold_expires_at, releases it (EXPIRED, PaymentExpired) and returns true;
-- otherwise (captured, voided, expired already, not yet due, no such
-- payment) false and nothing written. The event's client header is the
-- payment's own client (the janitor acts for no client).
CREATE FUNCTION expire_hold(p_payment_id text) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_payer text;
    p payments%ROWTYPE;
BEGIN
    SELECT payer_account_id INTO v_payer FROM payments WHERE payment_id = p_payment_id;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM 1 FROM account_balances WHERE account_id = v_payer FOR UPDATE;
    SELECT * INTO p FROM payments WHERE payment_id = p_payment_id FOR UPDATE;
    IF p.status <> 'AUTHORIZED' OR p.capture_method <> 'MANUAL'
       OR p.hold_expires_at > now() THEN
        RETURN false;
    END IF;
    PERFORM hold_expire_locked(p,
        (SELECT name FROM clients WHERE client_id = p.client_id), NULL);
    RETURN true;
END;
$$;

-- The common start of capture/void/refund: identity, permission on the
-- debited side (p_side 'payer' for capture and void, 'payee' for refund),
-- then the claim of (client, key) in operation_keys. o_outcome:
-- 'claimed' (go on), 'replay' (o_response), 'conflict' (o_detail names
-- the differing fields, o_op the key's operation), 'denied', 'not_found'.
CREATE FUNCTION op_begin(p_client_id bigint, p_key text, p_op text, p_payment_id text,
    p_side text, p_fingerprint bytea, p_params jsonb, p_key_ttl_seconds integer,
    OUT o_outcome text, OUT o_detail text, OUT o_denied_code text,
    OUT o_response bytea, OUT o_op text, OUT o_client_name text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    k operation_keys%ROWTYPE;
    v_active boolean;
    v_admin boolean;
    v_acct text;
    v_kind text;
    v_now timestamptz := now();
BEGIN
    SELECT c.name, c.status = 'ACTIVE', c.is_admin
      INTO o_client_name, v_active, v_admin
      FROM (SELECT pg_current_xact_id()) x, clients c
     WHERE c.client_id = p_client_id;
    IF NOT FOUND OR NOT v_active THEN
        o_outcome := 'denied';
        o_denied_code := 'revoked';
        o_detail := 'client is revoked';
        RETURN;
    END IF;
    SELECT CASE WHEN p_side = 'payee' THEN p.payee_account_id ELSE p.payer_account_id END
      INTO v_acct FROM payments p WHERE p.payment_id = p_payment_id;
    IF NOT FOUND THEN
        o_outcome := 'not_found';
        RETURN;
    END IF;
    IF NOT client_may(p_client_id, v_acct, 'debit') THEN
        o_outcome := 'denied';
        o_denied_code := 'can_debit';
        o_detail := format('can_debit on %s account %s', p_side, v_acct);
        RETURN;
    END IF;
    SELECT kind INTO v_kind FROM accounts WHERE account_id = v_acct;
    IF v_kind = 'FUNDING' AND NOT v_admin THEN
        o_outcome := 'denied';
        o_denied_code := 'funding_account';
        o_detail := format('admin: %s account %s is a funding account', p_side, v_acct);
        RETURN;
    END IF;

    DELETE FROM operation_keys
     WHERE client_id = p_client_id AND idempotency_key = p_key AND expires_at <= v_now;
    FOR attempt IN 1..3 LOOP
        INSERT INTO operation_keys
            (client_id, idempotency_key, operation, fingerprint, params,
             payment_id, response, created_at, expires_at)
        VALUES (p_client_id, p_key, p_op, p_fingerprint, p_params, p_payment_id,
                '\x'::bytea, v_now, v_now + make_interval(secs => p_key_ttl_seconds))
        ON CONFLICT (client_id, idempotency_key) DO NOTHING;
        IF FOUND THEN
            o_outcome := 'claimed';
            RETURN;
        END IF;
        SELECT * INTO k FROM operation_keys
         WHERE client_id = p_client_id AND idempotency_key = p_key;
        IF FOUND THEN
            EXIT;
        END IF;
    END LOOP;
    IF k.idempotency_key IS NULL THEN
        RAISE EXCEPTION 'operation key % could not be claimed', p_key
            USING ERRCODE = '40001';
    END IF;
    IF k.operation <> p_op THEN
        -- A key names one operation: the other fields are not comparable.
        o_outcome := 'conflict';
        o_op := k.operation;
        o_detail := 'operation';
        RETURN;
    END IF;
    IF k.fingerprint <> p_fingerprint THEN
        o_outcome := 'conflict';
        o_op := k.operation;
        SELECT coalesce(nullif(string_agg(f, ', ' ORDER BY i), ''), 'request fingerprint')
          INTO o_detail
          FROM unnest(ARRAY['payment_id', 'amount_cents', 'reason'])
               WITH ORDINALITY AS u(f, i)
         WHERE k.params -> f IS DISTINCT FROM p_params -> f;
        RETURN;
    END IF;
    o_outcome := 'replay';
    o_response := k.response;
END;
$$;

-- The packed reply of a claimed operation, stored before COMMIT; true if
-- the key was there. STRICT: a NULL reply stores nothing.
CREATE FUNCTION op_store_response(p_client_id bigint, p_key text, p_response bytea)
RETURNS boolean
LANGUAGE sql VOLATILE STRICT AS $$
    UPDATE operation_keys SET response = p_response
     WHERE client_id = p_client_id AND idempotency_key = p_key
    RETURNING true
$$;

-- Why payment p (locked) cannot be captured or voided, or NULL if it can;
-- an open hold past its expiry is expired here (same transaction, which
-- the caller commits even though it declines).
CREATE FUNCTION hold_state_error(p payments, p_what text, p_client_name text,
    p_correlation_id text)
RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF p.capture_method <> 'MANUAL' THEN
        RETURN format('payment %s is %s with capture_method AUTOMATIC: there is no hold to %s',
                      p.payment_id, p.status, p_what);
    ELSIF p.status <> 'AUTHORIZED' THEN
        RETURN format('payment %s is %s: only an AUTHORIZED hold can be %s',
                      p.payment_id, p.status,
                      CASE p_what WHEN 'capture' THEN 'captured' ELSE 'voided' END);
    ELSIF p.hold_expires_at <= now() THEN
        PERFORM hold_expire_locked(p, p_client_name, p_correlation_id);
        RETURN format('payment %s is EXPIRED: its hold expired at %s',
                      p.payment_id, rfc3339(p.hold_expires_at));
    END IF;
    RETURN NULL;
END;
$$;

-- Output of the three operations (o_outcome and friends from op_begin;
-- o_error_* the business decline of a 'new' result; o_refund_* the refund
-- made; o_payment the payment after the operation).
CREATE TYPE op_result AS (
    o_outcome           text,
    o_response          bytea,
    o_detail            text,
    o_denied_code       text,
    o_op                text,
    o_error_code        text,
    o_error_message     text,
    o_refund_id         text,
    o_refund_amount     bigint,
    o_refund_reason     text,
    o_refund_created_at text,
    o_payment           payment_out);

-- CapturePayment: posts p_amount (0 = all held) of a MANUAL payment's
-- hold and releases the rest. Declines: INVALID_STATE (not an open hold;
-- expired now if past due), INVALID_AMOUNT (negative),
-- AMOUNT_EXCEEDS_REMAINING (above the hold), ACCOUNT_INACTIVE (payer or
-- payee not ACTIVE), BALANCE_LIMIT (payee past the bound).
CREATE FUNCTION capture_payment(p_client_id bigint, p_key text, p_payment_id text,
    p_amount bigint, p_fingerprint bytea, p_key_ttl_seconds integer,
    p_correlation_id text)
RETURNS SETOF op_result
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    b record;
    r op_result;
    p payments%ROWTYPE;
    a_payer accounts%ROWTYPE;
    a_payee accounts%ROWTYPE;
    b_payee account_balances%ROWTYPE;
    v_x bigint;
    v_now timestamptz := now();
    v_payer_entry bigint;
    v_payee_entry bigint;
    v_payer_after bigint;
    v_payee_after bigint;
    v_payer_hash bytea;
    v_payee_hash bytea;
BEGIN
    SELECT * INTO b FROM op_begin(p_client_id, p_key, 'CAPTURE', p_payment_id, 'payer',
        p_fingerprint, jsonb_build_object('payment_id', p_payment_id,
                                          'amount_cents', p_amount),
        p_key_ttl_seconds);
    r.o_outcome := b.o_outcome;
    r.o_detail := b.o_detail;
    r.o_denied_code := b.o_denied_code;
    r.o_response := b.o_response;
    r.o_op := b.o_op;
    IF b.o_outcome <> 'claimed' THEN
        RETURN NEXT r;
        RETURN;
    END IF;
    r.o_outcome := 'new';

    SELECT * INTO p FROM payments WHERE payment_id = p_payment_id;
    PERFORM 1 FROM account_balances
      WHERE account_id IN (p.payer_account_id, p.payee_account_id)
      ORDER BY account_id FOR UPDATE;
    SELECT * INTO p FROM payments WHERE payment_id = p_payment_id FOR UPDATE;

    r.o_error_message := hold_state_error(p, 'capture', b.o_client_name, p_correlation_id);
    IF r.o_error_message IS NULL THEN
        v_x := CASE WHEN p_amount = 0 THEN p.amount_cents ELSE p_amount END;
        SELECT * INTO a_payer FROM accounts WHERE account_id = p.payer_account_id;
        SELECT * INTO a_payee FROM accounts WHERE account_id = p.payee_account_id;
        SELECT * INTO b_payee FROM account_balances WHERE account_id = p.payee_account_id;
        IF p_amount < 0 THEN
            r.o_error_code := 'INVALID_AMOUNT';
            r.o_error_message := format('amount_cents must not be negative, got %s', p_amount);
        ELSIF v_x > p.amount_cents THEN
            r.o_error_code := 'AMOUNT_EXCEEDS_REMAINING';
            r.o_error_message := format('capture of %s cents exceeds the %s cents held by payment %s',
                                        v_x, p.amount_cents, p.payment_id);
        ELSIF a_payer.status <> 'ACTIVE' THEN
            r.o_error_code := 'ACCOUNT_INACTIVE';
            r.o_error_message := format('payer account %L is %s', p.payer_account_id, a_payer.status);
        ELSIF a_payee.status <> 'ACTIVE' THEN
            r.o_error_code := 'ACCOUNT_INACTIVE';
            r.o_error_message := format('payee account %L is %s', p.payee_account_id, a_payee.status);
        ELSIF b_payee.available_cents + v_x > balance_bound() THEN
            r.o_error_code := 'BALANCE_LIMIT';
            r.o_error_message := format('payee account %L would exceed the balance bound of %s cents',
                                        p.payee_account_id, balance_bound());
        END IF;
    ELSE
        r.o_error_code := 'INVALID_STATE';
    END IF;

    IF r.o_error_code IS NULL THEN
        v_payer_entry := nextval('ledger_entries_entry_id_seq');
        v_payee_entry := nextval('ledger_entries_entry_id_seq');
        -- The payer: the hold leaves pending, the unposted rest returns to
        -- available, X posts. available + pending drops by X.
        UPDATE account_balances
           SET available_cents = available_cents + p.amount_cents - v_x,
               pending_cents = pending_cents - p.amount_cents,
               version = version + 1, updated_at = v_now,
               last_hash = sha256(last_hash || ledger_bytes(v_payer_entry,
                   p.payer_account_id, p.payment_id, 'DEBIT', v_x, p.currency,
                   available_cents - v_x + pending_cents, v_now))
         WHERE account_id = p.payer_account_id
        RETURNING available_cents + pending_cents, last_hash
             INTO v_payer_after, v_payer_hash;
        UPDATE account_balances
           SET available_cents = available_cents + v_x,
               version = version + 1, updated_at = v_now,
               last_hash = sha256(last_hash || ledger_bytes(v_payee_entry,
                   p.payee_account_id, p.payment_id, 'CREDIT', v_x, p.currency,
                   available_cents + v_x + pending_cents, v_now))
         WHERE account_id = p.payee_account_id
        RETURNING available_cents + pending_cents, last_hash
             INTO v_payee_after, v_payee_hash;
        INSERT INTO ledger_entries
            (entry_id, payment_id, account_id, direction, amount_cents, currency,
             balance_after_cents, created_at, entry_hash, kind)
        VALUES (v_payer_entry, p.payment_id, p.payer_account_id, 'DEBIT', v_x,
                p.currency, v_payer_after, v_now, v_payer_hash, 'CAPTURE'),
               (v_payee_entry, p.payment_id, p.payee_account_id, 'CREDIT', v_x,
                p.currency, v_payee_after, v_now, v_payee_hash, 'CAPTURE');
        UPDATE payments
           SET status = 'CAPTURED', captured_amount_cents = v_x,
               hold_closed_at = v_now, updated_at = v_now
         WHERE payment_id = p.payment_id;
        INSERT INTO outbox
            (aggregate_type, aggregate_id, partition_key, event_type, payload,
             correlation_id, client_name, created_at)
        VALUES ('payment', p.payment_id, p.payer_account_id, 'PaymentCaptured',
                jsonb_build_object(
                    'payment_id', p.payment_id,
                    'payer_account_id', p.payer_account_id,
                    'payee_account_id', p.payee_account_id,
                    'amount_cents', p.amount_cents,
                    'currency', p.currency,
                    'status', 'CAPTURED',
                    'captured_amount_cents', v_x,
                    'released_amount_cents', p.amount_cents - v_x,
                    'metadata', p.metadata,
                    'processed_at', rfc3339(v_now)),
                p_correlation_id, b.o_client_name, v_now);
    END IF;
    SELECT * INTO p FROM payments WHERE payment_id = p_payment_id;
    r.o_payment := payment_out(p);
    RETURN NEXT r;
END;
$$;

-- VoidPayment: releases a MANUAL payment's whole hold; nothing posts.
-- Declines: INVALID_STATE (not an open hold; expired now if past due).
CREATE FUNCTION void_payment(p_client_id bigint, p_key text, p_payment_id text,
    p_reason text, p_fingerprint bytea, p_key_ttl_seconds integer,
    p_correlation_id text)
RETURNS SETOF op_result
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    b record;
    r op_result;
    p payments%ROWTYPE;
    v_now timestamptz := now();
BEGIN
    SELECT * INTO b FROM op_begin(p_client_id, p_key, 'VOID', p_payment_id, 'payer',
        p_fingerprint, jsonb_build_object('payment_id', p_payment_id, 'reason', p_reason),
        p_key_ttl_seconds);
    r.o_outcome := b.o_outcome;
    r.o_detail := b.o_detail;
    r.o_denied_code := b.o_denied_code;
    r.o_response := b.o_response;
    r.o_op := b.o_op;
    IF b.o_outcome <> 'claimed' THEN
        RETURN NEXT r;
        RETURN;
    END IF;
    r.o_outcome := 'new';

    SELECT * INTO p FROM payments WHERE payment_id = p_payment_id;
    PERFORM 1 FROM account_balances WHERE account_id = p.payer_account_id FOR UPDATE;
    SELECT * INTO p FROM payments WHERE payment_id = p_payment_id FOR UPDATE;

    r.o_error_message := hold_state_error(p, 'void', b.o_client_name, p_correlation_id);
    IF r.o_error_message IS NOT NULL THEN
        r.o_error_code := 'INVALID_STATE';
    ELSE
        UPDATE account_balances
           SET available_cents = available_cents + p.amount_cents,
               pending_cents = pending_cents - p.amount_cents,
               version = version + 1, updated_at = v_now
         WHERE account_id = p.payer_account_id;
        UPDATE payments
           SET status = 'VOIDED', void_reason = p_reason, hold_closed_at = v_now,
               updated_at = v_now
         WHERE payment_id = p.payment_id;
        INSERT INTO outbox
            (aggregate_type, aggregate_id, partition_key, event_type, payload,
             correlation_id, client_name, created_at)
        VALUES ('payment', p.payment_id, p.payer_account_id, 'PaymentVoided',
                jsonb_build_object(
                    'payment_id', p.payment_id,
                    'payer_account_id', p.payer_account_id,
                    'payee_account_id', p.payee_account_id,
                    'amount_cents', p.amount_cents,
                    'currency', p.currency,
                    'status', 'VOIDED',
                    'released_amount_cents', p.amount_cents,
                    'reason', p_reason,
                    'metadata', p.metadata,
                    'processed_at', rfc3339(v_now)),
                p_correlation_id, b.o_client_name, v_now);
    END IF;
    SELECT * INTO p FROM payments WHERE payment_id = p_payment_id;
    r.o_payment := payment_out(p);
    RETURN NEXT r;
END;
$$;

-- RefundPayment: moves p_amount (0 = all that is left) back from the
-- payee to the payer, as refund p_new_refund_id with a REFUND entry pair.
-- Declines: INVALID_STATE (not AUTHORIZED-automatic or CAPTURED),
-- INVALID_AMOUNT, AMOUNT_EXCEEDS_REMAINING (above captured - refunded, or
-- nothing left), ACCOUNT_INACTIVE, INSUFFICIENT_FUNDS (the payee),
-- BALANCE_LIMIT (the payer past the bound).
CREATE FUNCTION refund_payment(p_client_id bigint, p_key text, p_payment_id text,
    p_amount bigint, p_reason text, p_fingerprint bytea, p_new_refund_id text,
    p_key_ttl_seconds integer, p_correlation_id text)
RETURNS SETOF op_result
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    b record;
    r op_result;
    p payments%ROWTYPE;
    a_payer accounts%ROWTYPE;
    a_payee accounts%ROWTYPE;
    b_payer account_balances%ROWTYPE;
    b_payee account_balances%ROWTYPE;
    v_left bigint;
    v_x bigint;
    v_now timestamptz := now();
    v_payer_entry bigint;
    v_payee_entry bigint;
    v_payer_after bigint;
    v_payee_after bigint;
    v_payer_hash bytea;
    v_payee_hash bytea;
BEGIN
    SELECT * INTO b FROM op_begin(p_client_id, p_key, 'REFUND', p_payment_id, 'payee',
        p_fingerprint, jsonb_build_object('payment_id', p_payment_id,
                                          'amount_cents', p_amount, 'reason', p_reason),
        p_key_ttl_seconds);
    r.o_outcome := b.o_outcome;
    r.o_detail := b.o_detail;
    r.o_denied_code := b.o_denied_code;
    r.o_response := b.o_response;
    r.o_op := b.o_op;
    IF b.o_outcome <> 'claimed' THEN
        RETURN NEXT r;
        RETURN;
    END IF;
    r.o_outcome := 'new';

    SELECT * INTO p FROM payments WHERE payment_id = p_payment_id;
    PERFORM 1 FROM account_balances
      WHERE account_id IN (p.payer_account_id, p.payee_account_id)
      ORDER BY account_id FOR UPDATE;
    SELECT * INTO p FROM payments WHERE payment_id = p_payment_id FOR UPDATE;
    SELECT * INTO a_payer FROM accounts WHERE account_id = p.payer_account_id;
    SELECT * INTO a_payee FROM accounts WHERE account_id = p.payee_account_id;
    SELECT * INTO b_payer FROM account_balances WHERE account_id = p.payer_account_id;
    SELECT * INTO b_payee FROM account_balances WHERE account_id = p.payee_account_id;
    v_left := p.captured_amount_cents - p.refunded_amount_cents;
    v_x := CASE WHEN p_amount = 0 THEN v_left ELSE p_amount END;

    IF NOT ((p.status = 'AUTHORIZED' AND p.capture_method = 'AUTOMATIC')
            OR p.status = 'CAPTURED') THEN
        r.o_error_code := 'INVALID_STATE';
        r.o_error_message := format('payment %s is %s%s: only a posted payment (AUTHORIZED automatic, or CAPTURED) can be refunded',
            p.payment_id, p.status,
            CASE WHEN p.status = 'AUTHORIZED' THEN ' with an open hold' ELSE '' END);
    ELSIF p_amount < 0 THEN
        r.o_error_code := 'INVALID_AMOUNT';
        r.o_error_message := format('amount_cents must not be negative, got %s', p_amount);
    ELSIF v_left = 0 THEN
        r.o_error_code := 'AMOUNT_EXCEEDS_REMAINING';
        r.o_error_message := format('payment %s is refunded in full (%s cents); nothing is left to refund',
                                    p.payment_id, p.refunded_amount_cents);
    ELSIF v_x > v_left THEN
        r.o_error_code := 'AMOUNT_EXCEEDS_REMAINING';
        r.o_error_message := format('refund of %s cents exceeds the %s cents left to refund on payment %s',
                                    v_x, v_left, p.payment_id);
    ELSIF a_payer.status <> 'ACTIVE' THEN
        r.o_error_code := 'ACCOUNT_INACTIVE';
        r.o_error_message := format('payer account %L is %s', p.payer_account_id, a_payer.status);
    ELSIF a_payee.status <> 'ACTIVE' THEN
        r.o_error_code := 'ACCOUNT_INACTIVE';
        r.o_error_message := format('payee account %L is %s', p.payee_account_id, a_payee.status);
    ELSIF b_payee.available_cents - v_x < -b_payee.overdraft_limit_cents THEN
        r.o_error_code := 'INSUFFICIENT_FUNDS';
        r.o_error_message := format('payee account %L has insufficient funds for the refund',
                                    p.payee_account_id);
    ELSIF b_payer.available_cents + v_x > balance_bound() THEN
        r.o_error_code := 'BALANCE_LIMIT';
        r.o_error_message := format('payer account %L would exceed the balance bound of %s cents',
                                    p.payer_account_id, balance_bound());
    END IF;

    IF r.o_error_code IS NULL THEN
        INSERT INTO refunds (refund_id, payment_id, amount_cents, currency, reason,
                             client_id, created_at)
        VALUES (p_new_refund_id, p.payment_id, v_x, p.currency, p_reason,
                p_client_id, v_now);
        v_payer_entry := nextval('ledger_entries_entry_id_seq');
        v_payee_entry := nextval('ledger_entries_entry_id_seq');
        UPDATE account_balances
           SET available_cents = available_cents - v_x,
               version = version + 1, updated_at = v_now,
               last_hash = sha256(last_hash || ledger_bytes(v_payee_entry,
                   p.payee_account_id, p.payment_id, 'DEBIT', v_x, p.currency,
                   available_cents - v_x + pending_cents, v_now))
         WHERE account_id = p.payee_account_id
        RETURNING available_cents + pending_cents, last_hash
             INTO v_payee_after, v_payee_hash;
        UPDATE account_balances
           SET available_cents = available_cents + v_x,
               version = version + 1, updated_at = v_now,
               last_hash = sha256(last_hash || ledger_bytes(v_payer_entry,
                   p.payer_account_id, p.payment_id, 'CREDIT', v_x, p.currency,
                   available_cents + v_x + pending_cents, v_now))
         WHERE account_id = p.payer_account_id
        RETURNING available_cents + pending_cents, last_hash
             INTO v_payer_after, v_payer_hash;
        INSERT INTO ledger_entries
            (entry_id, payment_id, account_id, direction, amount_cents, currency,
             balance_after_cents, created_at, entry_hash, kind, refund_id)
        VALUES (v_payee_entry, p.payment_id, p.payee_account_id, 'DEBIT', v_x,
                p.currency, v_payee_after, v_now, v_payee_hash, 'REFUND', p_new_refund_id),
               (v_payer_entry, p.payment_id, p.payer_account_id, 'CREDIT', v_x,
                p.currency, v_payer_after, v_now, v_payer_hash, 'REFUND', p_new_refund_id);
        UPDATE payments
           SET refunded_amount_cents = refunded_amount_cents + v_x, updated_at = v_now
         WHERE payment_id = p.payment_id;
        INSERT INTO outbox
            (aggregate_type, aggregate_id, partition_key, event_type, payload,
             correlation_id, client_name, created_at)
        VALUES ('payment', p.payment_id, p.payer_account_id, 'PaymentRefunded',
                jsonb_build_object(
                    'payment_id', p.payment_id,
                    'refund_id', p_new_refund_id,
                    'payer_account_id', p.payer_account_id,
                    'payee_account_id', p.payee_account_id,
                    'amount_cents', v_x,
                    'currency', p.currency,
                    'captured_amount_cents', p.captured_amount_cents,
                    'refunded_amount_cents', p.refunded_amount_cents + v_x,
                    'reason', p_reason,
                    'metadata', p.metadata,
                    'processed_at', rfc3339(v_now)),
                p_correlation_id, b.o_client_name, v_now);
        r.o_refund_id := p_new_refund_id;
        r.o_refund_amount := v_x;
        r.o_refund_reason := p_reason;
        r.o_refund_created_at := rfc3339(v_now);
    END IF;
    SELECT * INTO p FROM payments WHERE payment_id = p_payment_id;
    r.o_payment := payment_out(p);
    RETURN NEXT r;
END;
$$;

-- ListPayments' scan: an account's payments as payer or payee, newest
-- first (the keyset (created_at, payment_id)).
CREATE INDEX payments_payer_created ON payments (payer_account_id, created_at DESC, payment_id DESC);
CREATE INDEX payments_payee_created ON payments (payee_account_id, created_at DESC, payment_id DESC);
