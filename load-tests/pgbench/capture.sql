-- pgbench twin of `paymentd-loadgen --scenario capture`: what paymentd runs
-- for one MANUAL AuthorizePayment and then one CapturePayment of all of
-- its hold, as two transactions (pgbench runs each statement of a script
-- in its own, as paymentd commits each RPC on its own). Payer and payee as
-- in authorize-uniform.sql; the hold TTL is HOLD_TTL_SECONDS' default
-- (604800, the request's hold_ttl_seconds 0); the capture's key is the
-- payment's with "-capture", its fingerprint the key's SHA-256 (paymentd
-- hashes the parameters in C), and the packed reply paymentd stores with
-- op_store_response in the capture's transaction is stood in for by 160
-- bytes (about the size of a CapturePaymentResponse). The authorization's
-- payment id comes back into :pid (\gset). Variables: -D naccts=K
-- -D prefix=lg- -D lid=N (the client legacy's id, as paymentd passes it)
\set i random(0, :naccts - 1)
\set j (:i + 1 + random(0, :naccts - 2)) % :naccts
\set amt random(1, 1000)
SELECT r.o_payment_id AS pid FROM (SELECT 'pgbc-' || gen_random_uuid() AS k) x,
  LATERAL authorize_payment(:lid, x.k, :prefix || lpad(:i::text, 6, '0'), :prefix || lpad(:j::text, 6, '0'),
          :amt, 'USD', 'paymentd-loadgen', sha256(convert_to(x.k, 'UTF8')), x.k, 86400, 'pgbench',
          'MANUAL', 0, 604800, '{}'::jsonb) r \gset
SELECT c.o_outcome, c.o_error_code, s.stored
  FROM (SELECT :pid::text || '-capture' AS k) x,
  LATERAL capture_payment(:lid, x.k, :pid::text, 0, sha256(convert_to(x.k, 'UTF8')), 86400, 'pgbench') c,
  LATERAL op_store_response(:lid, x.k, CASE WHEN c.o_outcome = 'new'
                                            THEN convert_to(repeat('x', 160), 'UTF8') END) s(stored);
