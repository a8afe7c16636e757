-- A user's coin balance. Invariant: balance = sum(amount) and entries = count(*) of the user's
-- ledger rows; only ledger rows actually inserted move it (see write.sql).
CREATE TABLE IF NOT EXISTS {t}_balances (
    user_id    BIGINT PRIMARY KEY,
    balance    BIGINT NOT NULL,
    entries    BIGINT NOT NULL,
    -- The latest occurred_at among the events that moved the balance (event time).
    updated_at TIMESTAMPTZ NOT NULL
)
