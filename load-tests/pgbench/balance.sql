-- pgbench twin of `paymentd-loadgen --scenario balance`: the query paymentd's
-- GetAccountBalance runs (daemon/ledger.c "getbal") for a random account.
-- Variables: -D naccts=K -D prefix=lg-
\set i random(0, :naccts - 1)
SELECT b.account_id, b.available_cents, b.pending_cents, a.currency
  FROM account_balances b JOIN accounts a USING (account_id)
 WHERE b.account_id = :prefix || lpad(:i::text, 6, '0');
