-- pgbench twin of `paymentd-loadgen --scenario uniform`: one call of
-- authorize_payment per transaction, payer and payee drawn uniformly from
-- the loadgen's accounts (PREFIX000000..naccts-1, payee != payer), amounts
-- 1..1000 cents, a fresh key per call (also used as the payment id, where
-- paymentd uses a ULID) and its SHA-256 as the fingerprint (paymentd hashes
-- the parameters in C). Variables: -D naccts=K -D prefix=lg- -D lid=N (the
-- client legacy's id, as paymentd passes it: looked up once, not per call)
\set i random(0, :naccts - 1)
\set j (:i + 1 + random(0, :naccts - 2)) % :naccts
\set amt random(1, 1000)
SELECT r.* FROM (SELECT 'pgb-' || gen_random_uuid() AS k) x,
  LATERAL authorize_payment(:lid, x.k, :prefix || lpad(:i::text, 6, '0'), :prefix || lpad(:j::text, 6, '0'),
          :amt, 'USD', 'paymentd-loadgen', sha256(convert_to(x.k, 'UTF8')), x.k, 86400, 'pgbench') r;
