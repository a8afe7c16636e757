-- Ledgers made before the coin rules moved out of the store listed the kinds in a CHECK, which
-- would refuse every event of a kind added since (and park its user): dropped on migration.
ALTER TABLE {t}_ledger DROP CONSTRAINT IF EXISTS {t}_ledger_kind_check
