-- 0003_ledger_chain: a tamper-evident ledger. Every ledger entry carries
-- entry_hash = SHA-256(previous entry_hash of the same account || the
-- entry's canonical bytes); the account's latest hash is kept on its
-- balance row (account_balances.last_hash). payment-verify recomputes every
-- chain on its own (OpenSSL, not these functions) and names the first
-- entry that no longer matches. docs/ledger.md describes the format.
--
-- Contract: a writer of ledger_entries either leaves entry_hash NULL, and a
-- BEFORE INSERT trigger extends the chain (a second UPDATE of the balance
-- row: correct for any writer, ~20% dearer per payment), or — the hot path,
-- authorize_payment from 0004 on — extends last_hash itself in the balance
-- UPDATE it makes anyway (with ledger_bytes() and an entry_id taken from
-- the sequence first) and inserts that hash, and no trigger runs for it (a
-- hash that is not the chain's is what payment-verify reports). A writer
-- must hold the
-- account's balance row lock before it inserts (every writer already has
-- to, to compute balance_after_cents), so entry_id order is chain order.
-- Entries are append-only: UPDATE and DELETE raise (TRUNCATE, as in
-- `paymentd reset-test-data`, resets balances and chains together).
-- Existing entries are chained here, in entry_id order per account.

-- The canonical bytes of one entry, the hash input after the previous
-- hash: these fields as text joined by the unit separator 0x1F, UTF-8:
--   'paymentd-ledger-v1', entry_id, account_id, payment_id, direction,
--   amount_cents, currency, balance_after_cents,
--   created_at as integer microseconds since 1970-01-01 00:00:00 UTC.
-- Integers are plain decimal (a leading '-' when negative). The version tag
-- lets a later format coexist. Ids never contain control characters (the
-- API rejects them), so 0x1F cannot occur inside a field. Not STRICT, so
-- the planner can inline it (concat_ws is not strict; every field is NOT
-- NULL anyway).
CREATE FUNCTION ledger_bytes(p_entry_id bigint, p_account text, p_payment text,
    p_direction text, p_amount bigint, p_currency text, p_balance_after bigint,
    p_created_at timestamptz) RETURNS bytea
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT convert_to(concat_ws(E'\x1f', 'paymentd-ledger-v1', p_entry_id,
               p_account, p_payment, p_direction, p_amount, p_currency,
               p_balance_after,
               (extract(epoch FROM p_created_at) * 1000000)::bigint), 'UTF8')
$$;

-- The same for a stored (or about to be stored) row.
CREATE FUNCTION ledger_entry_bytes(e ledger_entries) RETURNS bytea
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT ledger_bytes(e.entry_id, e.account_id, e.payment_id, e.direction,
               e.amount_cents, e.currency, e.balance_after_cents, e.created_at)
$$;

-- Genesis is the empty string: an account's first entry hashes its
-- canonical bytes alone, and an account without entries has last_hash ''.
ALTER TABLE account_balances ADD COLUMN last_hash bytea NOT NULL DEFAULT '\x'::bytea;
ALTER TABLE ledger_entries ADD COLUMN entry_hash bytea;

-- The backfill: one pass over the entries in chain order.
DO $$
DECLARE
    e       ledger_entries%ROWTYPE;
    v_acct  text;
    v_hash  bytea;
BEGIN
    FOR e IN SELECT * FROM ledger_entries ORDER BY account_id, entry_id LOOP
        IF v_acct IS DISTINCT FROM e.account_id THEN
            IF v_acct IS NOT NULL THEN
                UPDATE account_balances SET last_hash = v_hash WHERE account_id = v_acct;
            END IF;
            v_acct := e.account_id;
            v_hash := '\x'::bytea;
        END IF;
        v_hash := sha256(v_hash || ledger_entry_bytes(e));
        UPDATE ledger_entries SET entry_hash = v_hash WHERE entry_id = e.entry_id;
    END LOOP;
    IF v_acct IS NOT NULL THEN
        UPDATE account_balances SET last_hash = v_hash WHERE account_id = v_acct;
    END IF;
END $$;

ALTER TABLE ledger_entries ALTER COLUMN entry_hash SET NOT NULL;

-- One statement extends the chain: the balance row is already locked FOR
-- UPDATE by the writer, so two entries of one account cannot interleave,
-- and reading last_hash and writing the new one cannot race.
CREATE FUNCTION ledger_entries_chain() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE account_balances
       SET last_hash = sha256(last_hash || ledger_entry_bytes(NEW))
     WHERE account_id = NEW.account_id
    RETURNING last_hash INTO NEW.entry_hash;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'ledger entry for account % which has no balance row',
            NEW.account_id USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NEW;
END;
$$;

-- Only for writers that leave entry_hash NULL: an entry that comes with its
-- hash (authorize_payment's) costs no trigger call at all; a wrong one is
-- what payment-verify reports.
CREATE TRIGGER ledger_entries_chain BEFORE INSERT ON ledger_entries
    FOR EACH ROW WHEN (NEW.entry_hash IS NULL) EXECUTE FUNCTION ledger_entries_chain();

-- Corrections are new entries, never edits: an UPDATE or DELETE of an
-- entry is a bug (or an attack, which payment-verify would report anyway).
-- A superuser can still disable the trigger; that is what the chain is for.
CREATE FUNCTION ledger_entries_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger_entries is append-only (% of entry %)', TG_OP, OLD.entry_id
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_entries_append_only();
