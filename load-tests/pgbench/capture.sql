-- pgbench twin of `paymentd-loadgen --scenario capture`: what paymentd runs
-- for one MANUAL AuthorizePayment and then one CapturePayment of all of
-- its hold, as two transactions (pgbench runs each statement of a script
-- in its own, as paymentd runs each RPC as one statement). Payer and payee
-- as in authorize-uniform.sql; the hold TTL is HOLD_TTL_SECONDS' default
-- (604800, the request's hold_ttl_seconds 0); the capture's key is the
-- payment's with "-capture", its fingerprint the key's SHA-256 (paymentd
-- hashes the parameters in C); capture_payment stores its result row with
-- the key itself (0010), as it does for paymentd, and the
-- capture returns the columns paymentd reads (LEDGER_OP_COLS). The authorization's
-- payment id comes back into :pid (\gset). Variables: -D naccts=K
-- -D prefix=lg- -D lid=N (the client legacy's id, as paymentd passes it)
\set i random(0, :naccts - 1)
\set j (:i + 1 + random(0, :naccts - 2)) % :naccts
\set amt random(1, 1000)
SELECT r.o_payment_id AS pid FROM (SELECT 'pgbc-' || gen_random_uuid() AS k) x,
  LATERAL authorize_payment(:lid, x.k, :prefix || lpad(:i::text, 6, '0'), :prefix || lpad(:j::text, 6, '0'),
          :amt, 'USD', 'paymentd-loadgen', sha256(convert_to(x.k, 'UTF8')), x.k, 86400, 'pgbench',
          'MANUAL', 0, 604800, '{}'::jsonb) r \gset
SELECT c.o_outcome, c.o_response, c.o_detail, c.o_denied_code, c.o_op, c.o_error_code,
       c.o_error_message, c.o_refund_id, c.o_refund_amount, c.o_refund_reason,
       c.o_refund_created_at, (c.o_payment).*
  FROM (SELECT :pid::text || '-capture' AS k) x,
  LATERAL capture_payment(:lid, x.k, :pid::text, 0, sha256(convert_to(x.k, 'UTF8')), 86400, 'pgbench') c;
