-- 0002_authorize_payment: the whole authorization as one server-side
-- function, so a payment is one round trip and one transaction.
--
-- Contract: called as SELECT * FROM authorize_payment(...) in autocommit.
-- Returns exactly one row:
--   o_payment_id, o_status ('AUTHORIZED'|'DECLINED'), o_error_code,
--   o_error_message, o_processed_at (RFC 3339), o_replayed, o_conflict.
-- o_conflict is non-NULL when the key exists with other parameters; then
-- nothing was written and the caller answers FAILED_PRECONDITION.
-- Serialization or deadlock failures propagate as SQLSTATE 40001/40P01 and
-- the caller retries the whole call; every other error aborts the
-- transaction, so nothing half-written stays behind.

CREATE FUNCTION authorize_payment(
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
    o_conflict       text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    k          idempotency_keys%ROWTYPE;
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
    v_inserted boolean := false;
BEGIN
    -- An expired key may be used again: drop the stale record first. A
    -- concurrent caller blocked on the same row skips it once we commit.
    DELETE FROM idempotency_keys
     WHERE idempotency_key = p_key AND expires_at <= v_now;

    -- Claim the key. ON CONFLICT waits for a concurrent claimer of the same
    -- key to finish, so N racing requests produce exactly one payment.
    FOR attempt IN 1..3 LOOP
        INSERT INTO idempotency_keys AS ik
            (idempotency_key, fingerprint, payer_account_id, payee_account_id,
             amount_cents, currency, description, payment_id, status,
             processed_at, expires_at)
        VALUES (p_key, p_fingerprint, p_payer, p_payee, p_amount, p_currency,
                p_description, p_new_payment_id, 'PENDING', v_now,
                v_now + make_interval(secs => p_key_ttl_seconds))
        ON CONFLICT (idempotency_key) DO NOTHING;
        IF FOUND THEN
            v_inserted := true;
            EXIT;
        END IF;
        SELECT * INTO k FROM idempotency_keys WHERE idempotency_key = p_key;
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
                         THEN 'request fingerprint' END);
            RETURN;
        END IF;
        RETURN QUERY SELECT k.payment_id, k.status, k.error_code,
            k.error_message, rfc3339(k.processed_at), true, NULL::text;
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
        (payment_id, idempotency_key, payer_account_id, payee_account_id,
         amount_cents, currency, description, status, error_code,
         error_message, correlation_id, created_at, updated_at)
    VALUES (p_new_payment_id, p_key, p_payer, p_payee, p_amount, p_currency,
            p_description, v_status, v_code, v_msg, p_correlation_id,
            v_now, v_now);

    IF v_status = 'AUTHORIZED' THEN
        UPDATE account_balances
           SET available_cents = available_cents - p_amount,
               version = version + 1, updated_at = v_now
         WHERE account_id = p_payer
        RETURNING available_cents INTO v_payer_after;
        UPDATE account_balances
           SET available_cents = available_cents + p_amount,
               version = version + 1, updated_at = v_now
         WHERE account_id = p_payee
        RETURNING available_cents INTO v_payee_after;

        INSERT INTO ledger_entries
            (payment_id, account_id, direction, amount_cents, currency,
             balance_after_cents, created_at)
        VALUES (p_new_payment_id, p_payer, 'DEBIT', p_amount, p_currency,
                v_payer_after, v_now),
               (p_new_payment_id, p_payee, 'CREDIT', p_amount, p_currency,
                v_payee_after, v_now);
    END IF;

    INSERT INTO outbox
        (aggregate_type, aggregate_id, partition_key, event_type, payload,
         correlation_id, created_at)
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
            p_correlation_id, v_now);

    UPDATE idempotency_keys
       SET status = v_status, error_code = v_code, error_message = v_msg
     WHERE idempotency_key = p_key;

    RETURN QUERY SELECT p_new_payment_id, v_status, v_code, v_msg,
        rfc3339(v_now), false, NULL::text;
END;
$$;
