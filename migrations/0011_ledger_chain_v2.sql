-- 0011_ledger_chain_v2: the hash chain covers every field of an entry.
-- Format 'paymentd-ledger-v1' (0003) hashes the entry id, account,
-- payment, direction, amount, currency, balance after and time; 0006 added
-- kind and refund_id outside it, so a REFUND entry relabelled CAPTURE, or
-- given another refund's id, kept its hash. Format 'paymentd-ledger-v2' is
-- v1's fields followed by kind and refund_id ('' when NULL), docs/ledger.md.
--
-- Contract:
--  - every entry records the format of its hash in hash_format: 1 for the
--    entries already written (their hashes are kept: re-hashing history
--    would erase exactly what the chain is there to show), 2 for every
--    entry from here on (the column default, so the trigger path of 0003
--    and the writers below agree without naming it);
--  - the format tag is part of the hashed bytes, so changing hash_format
--    (say 2 -> 1, to hide a relabelled kind) breaks the chain at that
--    entry like any other edit;
--  - authorize_payment, capture_payment_work and refund_payment_work are
--    0007's, unchanged but for their four ledger_bytes() calls, which
--    become ledger_bytes_v2() with the kind and refund id they insert;
--  - payment-verify computes each entry's hash in its own format.

ALTER TABLE ledger_entries ADD COLUMN hash_format smallint NOT NULL DEFAULT 1
    CONSTRAINT ledger_entries_hash_format CHECK (hash_format IN (1, 2));
ALTER TABLE ledger_entries ALTER COLUMN hash_format SET DEFAULT 2;

-- v1's nine fields, then kind and refund_id; concat_ws skips NULLs, hence
-- the coalesce (an entry without a refund hashes an empty last field).
CREATE FUNCTION ledger_bytes_v2(p_entry_id bigint, p_account text, p_payment text,
    p_direction text, p_amount bigint, p_currency text, p_balance_after bigint,
    p_created_at timestamptz, p_kind text, p_refund_id text) RETURNS bytea
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT convert_to(concat_ws(E'\x1f', 'paymentd-ledger-v2', p_entry_id,
               p_account, p_payment, p_direction, p_amount, p_currency,
               p_balance_after,
               (extract(epoch FROM p_created_at) * 1000000)::bigint,
               p_kind, coalesce(p_refund_id, '')), 'UTF8')
$$;

-- A stored (or about to be stored) row in its own format: the chain
-- trigger of 0003 calls this, so a hand-inserted entry gets a v2 hash.
CREATE OR REPLACE FUNCTION ledger_entry_bytes(e ledger_entries) RETURNS bytea
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE e.hash_format
        WHEN 1 THEN ledger_bytes(e.entry_id, e.account_id, e.payment_id, e.direction,
                        e.amount_cents, e.currency, e.balance_after_cents, e.created_at)
        ELSE ledger_bytes_v2(e.entry_id, e.account_id, e.payment_id, e.direction,
                        e.amount_cents, e.currency, e.balance_after_cents, e.created_at,
                        e.kind, e.refund_id)
    END
$$;

-- The three writers that hash their own entries (see 0003's contract).

CREATE OR REPLACE FUNCTION authorize_payment(
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
               last_hash = sha256(last_hash || ledger_bytes_v2(v_payer_entry, p_payer,
                   p_new_payment_id, 'DEBIT', p_amount, p_currency,
                   available_cents - p_amount + pending_cents, v_now, 'PAYMENT', NULL))
         WHERE account_id = p_payer
        RETURNING available_cents + pending_cents, last_hash
             INTO v_payer_after, v_payer_hash;
        UPDATE account_balances
           SET available_cents = available_cents + p_amount,
               version = version + 1, updated_at = v_now,
               last_hash = sha256(last_hash || ledger_bytes_v2(v_payee_entry, p_payee,
                   p_new_payment_id, 'CREDIT', p_amount, p_currency,
                   available_cents + p_amount + pending_cents, v_now, 'PAYMENT', NULL))
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

CREATE OR REPLACE FUNCTION capture_payment_work(p_client_id bigint, p_key text, p_payment_id text,
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
               last_hash = sha256(last_hash || ledger_bytes_v2(v_payer_entry,
                   p.payer_account_id, p.payment_id, 'DEBIT', v_x, p.currency,
                   available_cents - v_x + pending_cents, v_now, 'CAPTURE', NULL))
         WHERE account_id = p.payer_account_id
        RETURNING available_cents + pending_cents, last_hash
             INTO v_payer_after, v_payer_hash;
        UPDATE account_balances
           SET available_cents = available_cents + v_x,
               version = version + 1, updated_at = v_now,
               last_hash = sha256(last_hash || ledger_bytes_v2(v_payee_entry,
                   p.payee_account_id, p.payment_id, 'CREDIT', v_x, p.currency,
                   available_cents + v_x + pending_cents, v_now, 'CAPTURE', NULL))
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

CREATE OR REPLACE FUNCTION refund_payment_work(p_client_id bigint, p_key text, p_payment_id text,
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
               last_hash = sha256(last_hash || ledger_bytes_v2(v_payee_entry,
                   p.payee_account_id, p.payment_id, 'DEBIT', v_x, p.currency,
                   available_cents - v_x + pending_cents, v_now, 'REFUND', p_new_refund_id))
         WHERE account_id = p.payee_account_id
        RETURNING available_cents + pending_cents, last_hash
             INTO v_payee_after, v_payee_hash;
        UPDATE account_balances
           SET available_cents = available_cents + v_x,
               version = version + 1, updated_at = v_now,
               last_hash = sha256(last_hash || ledger_bytes_v2(v_payer_entry,
                   p.payer_account_id, p.payment_id, 'CREDIT', v_x, p.currency,
                   available_cents + v_x + pending_cents, v_now, 'REFUND', p_new_refund_id))
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
