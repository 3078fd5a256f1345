-- 0010: CapturePayment, VoidPayment and RefundPayment as ONE statement each.
--
-- In 0007 the worker packed the reply of a new operation and stored it
-- with op_store_response() before COMMIT: two round trips per operation
-- ([BEGIN, the function], then [op_store_response, COMMIT]), with the
-- payment's and both balances' row locks held across the second one and
-- the worker's packing between them. Now the function stores its own
-- result row (operation_keys.result, an op_result: the payment after the
-- operation, the decline, the refund) in the statement that does the work,
-- so the worker runs it as one implicit transaction, as it runs
-- authorize_payment, and packs the reply from the row. A replay returns
-- the stored row with o_outcome 'replay' (o_response NULL); the worker
-- packs it again with replayed = true, which gives the first answer's
-- bytes with that one field added. A concurrent duplicate still waits on
-- the claimed key (op_begin's INSERT) and, once the first commits, reads
-- the row: it can never see a half-made answer, since the row is written
-- in the transaction that did the work.
--
-- Keys claimed before this migration keep their packed bytes in
-- operation_keys.response (result NULL) until they expire (at most
-- IDEMPOTENCY_TTL later); their replays return those bytes as before.
--
-- The work itself is 0007's, unchanged: each function is renamed
-- *_work and wrapped by op_finish().

ALTER TABLE operation_keys ADD COLUMN result op_result;

DROP FUNCTION op_store_response(bigint, text, bytea);

ALTER FUNCTION capture_payment(bigint, text, text, bigint, bytea, integer, text)
    RENAME TO capture_payment_work;
ALTER FUNCTION void_payment(bigint, text, text, text, bytea, integer, text)
    RENAME TO void_payment_work;
ALTER FUNCTION refund_payment(bigint, text, text, bigint, text, bytea, text, integer, text)
    RENAME TO refund_payment_work;

-- The end of every operation: a new result is stored with its key; a
-- replay becomes the stored result (or, for a key of before 0010, keeps
-- the stored bytes in o_response); other outcomes pass through.
CREATE FUNCTION op_finish(p_client_id bigint, p_key text, r op_result)
RETURNS op_result
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_result op_result;
BEGIN
    IF r.o_outcome = 'new' THEN
        UPDATE operation_keys SET result = r
         WHERE client_id = p_client_id AND idempotency_key = p_key;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'operation key % is not claimed', p_key;
        END IF;
    ELSIF r.o_outcome = 'replay' THEN
        -- (result).*: INTO a row variable takes one column per field.
        SELECT (result).* INTO v_result FROM operation_keys
         WHERE client_id = p_client_id AND idempotency_key = p_key;
        -- (Not "v_result IS NOT NULL": for a row that means every field.)
        IF v_result.o_outcome IS NOT NULL THEN
            r := v_result;
            r.o_outcome := 'replay';
            r.o_response := NULL;
        ELSIF coalesce(length(r.o_response), 0) = 0 THEN
            -- A committed claim without a result: impossible unless the
            -- row was edited by hand.
            RAISE EXCEPTION 'operation key % has no stored result', p_key;
        END IF;
    END IF;
    RETURN r;
END;
$$;

CREATE FUNCTION capture_payment(p_client_id bigint, p_key text, p_payment_id text,
    p_amount bigint, p_fingerprint bytea, p_key_ttl_seconds integer,
    p_correlation_id text)
RETURNS SETOF op_result
LANGUAGE sql VOLATILE AS $$
    SELECT f.*
      FROM capture_payment_work(p_client_id, p_key, p_payment_id, p_amount, p_fingerprint,
                                p_key_ttl_seconds, p_correlation_id) w,
           LATERAL op_finish(p_client_id, p_key, w) f
$$;

CREATE FUNCTION void_payment(p_client_id bigint, p_key text, p_payment_id text,
    p_reason text, p_fingerprint bytea, p_key_ttl_seconds integer,
    p_correlation_id text)
RETURNS SETOF op_result
LANGUAGE sql VOLATILE AS $$
    SELECT f.*
      FROM void_payment_work(p_client_id, p_key, p_payment_id, p_reason, p_fingerprint,
                             p_key_ttl_seconds, p_correlation_id) w,
           LATERAL op_finish(p_client_id, p_key, w) f
$$;

CREATE FUNCTION refund_payment(p_client_id bigint, p_key text, p_payment_id text,
    p_amount bigint, p_reason text, p_fingerprint bytea, p_new_refund_id text,
    p_key_ttl_seconds integer, p_correlation_id text)
RETURNS SETOF op_result
LANGUAGE sql VOLATILE AS $$
    SELECT f.*
      FROM refund_payment_work(p_client_id, p_key, p_payment_id, p_amount, p_reason,
                               p_fingerprint, p_new_refund_id, p_key_ttl_seconds,
                               p_correlation_id) w,
           LATERAL op_finish(p_client_id, p_key, w) f
$$;
