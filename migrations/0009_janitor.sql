-- 0009_janitor: the two batch jobs of the janitor process (daemon/jan/):
-- expiring holds past hold_expires_at, and deleting expired idempotency
-- and operation keys. Each call is one bounded transaction; the janitor
-- calls again at once while a batch came back full.
--
-- Contract:
--   janitor_expire_holds(p_batch) RETURNS int
--     picks up to p_batch open holds (MANUAL, AUTHORIZED) whose
--     hold_expires_at has passed, oldest expiry first, and calls
--     expire_hold(payment_id) (0007) for each; returns how many it
--     expired. A hold another transaction has locked (a capture or void in
--     flight) is skipped, not waited for: expire_hold re-checks the state
--     under its locks, so a hold is expired exactly once whoever gets
--     there first (the janitor, or a capture arriving after the expiry).
--   janitor_purge_keys(p_batch) RETURNS int
--     deletes up to p_batch rows, in all, of idempotency_keys then
--     operation_keys whose expires_at has passed, oldest first; returns how
--     many. A key that has not expired is never deleted (the condition is
--     re-checked on the row being deleted). A key whose row is locked is
--     skipped: authorize_payment deletes a stale key it meets itself, and
--     waiting for it would only serialise the two.
--     PENDING idempotency keys are left alone: a committed PENDING key
--     means a payment committed half-way, which payment-verify reports;
--     purging it would erase the evidence.
-- Lock order (no deadlock with the payment functions): the payers' balance
-- rows first, in account_id order as every writer takes them, then the
-- payment rows with SKIP LOCKED, which never waits.

CREATE FUNCTION janitor_expire_holds(p_batch int) RETURNS int
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_payers text[];
    v_n      int := 0;
    r        record;
BEGIN
    IF p_batch IS NULL OR p_batch < 1 THEN
        RAISE EXCEPTION 'janitor_expire_holds: batch must be positive, got %', p_batch
            USING ERRCODE = '22023';
    END IF;
    -- The balance rows of the payers of the holds due first, locked in
    -- account_id order (FOR UPDATE on the sorted rows locks in that
    -- order). expire_hold locks the payer's row again: a no-op for us.
    SELECT array_agg(l.account_id) INTO v_payers
      FROM (SELECT b.account_id
              FROM account_balances b
             WHERE b.account_id IN (
                   SELECT p.payer_account_id FROM payments p
                    WHERE p.status = 'AUTHORIZED' AND p.capture_method = 'MANUAL'
                      AND p.hold_expires_at <= now()
                    ORDER BY p.hold_expires_at
                    LIMIT p_batch)
             ORDER BY b.account_id
               FOR UPDATE OF b) l;
    IF v_payers IS NULL THEN
        RETURN 0;
    END IF;
    -- Only holds of payers locked above: expire_hold then never waits for
    -- a balance row while this transaction holds payment rows.
    FOR r IN
        SELECT p.payment_id
          FROM payments p
         WHERE p.status = 'AUTHORIZED' AND p.capture_method = 'MANUAL'
           AND p.hold_expires_at <= now()
           AND p.payer_account_id = ANY (v_payers)
         ORDER BY p.hold_expires_at, p.payment_id
         LIMIT p_batch
           FOR UPDATE OF p SKIP LOCKED
    LOOP
        IF expire_hold(r.payment_id) THEN
            v_n := v_n + 1;
        END IF;
    END LOOP;
    RETURN v_n;
END;
$$;

CREATE FUNCTION janitor_purge_keys(p_batch int) RETURNS int
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_idem int := 0;
    v_ops  int := 0;
BEGIN
    IF p_batch IS NULL OR p_batch < 1 THEN
        RAISE EXCEPTION 'janitor_purge_keys: batch must be positive, got %', p_batch
            USING ERRCODE = '22023';
    END IF;
    -- By ctid: exactly the row versions picked (and locked) here, through
    -- the expires_at index; expires_at is checked again on each of them.
    DELETE FROM idempotency_keys
     WHERE ctid = ANY (ARRAY(
               SELECT k.ctid FROM idempotency_keys k
                WHERE k.expires_at <= now() AND k.status <> 'PENDING'
                ORDER BY k.expires_at
                LIMIT p_batch
                  FOR UPDATE SKIP LOCKED))
       AND expires_at <= now() AND status <> 'PENDING';
    GET DIAGNOSTICS v_idem = ROW_COUNT;
    IF v_idem < p_batch THEN
        DELETE FROM operation_keys
         WHERE ctid = ANY (ARRAY(
                   SELECT o.ctid FROM operation_keys o
                    WHERE o.expires_at <= now()
                    ORDER BY o.expires_at
                    LIMIT p_batch - v_idem
                      FOR UPDATE SKIP LOCKED))
           AND expires_at <= now();
        GET DIAGNOSTICS v_ops = ROW_COUNT;
    END IF;
    RETURN v_idem + v_ops;
END;
$$;
