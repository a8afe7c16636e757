-- Takes a transaction-scoped advisory lock named by text (see `naming`).
SELECT pg_advisory_xact_lock(hashtext($1))
