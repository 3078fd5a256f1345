-- pgbench twin of `paymentd-loadgen --scenario hot`: every payment moves
-- money to or from PREFIXhot (direction random), the other side uniform.
-- Variables: -D naccts=K -D prefix=lg- -D lid=N (the client legacy's id)
\set i random(0, :naccts - 1)
\set flip random(0, 1)
\set amt random(1, 1000)
SELECT r.* FROM (SELECT 'pgb-' || gen_random_uuid() AS k, :prefix || 'hot' AS h,
                        :prefix || lpad(:i::text, 6, '0') AS o) x,
  LATERAL authorize_payment(:lid, x.k, CASE WHEN :flip = 1 THEN x.h ELSE x.o END,
          CASE WHEN :flip = 1 THEN x.o ELSE x.h END, :amt, 'USD', 'paymentd-loadgen',
          sha256(convert_to(x.k, 'UTF8')), x.k, 86400, 'pgbench') r;
