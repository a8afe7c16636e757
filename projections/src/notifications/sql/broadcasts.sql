-- Every broadcast an operator requested, and whether it was cancelled. Its deliveries live in
-- the outbox, which every version shares.
CREATE TABLE IF NOT EXISTS {t}_broadcasts (
    broadcast_id       UUID PRIMARY KEY,
    text               TEXT NOT NULL,
    button_text        TEXT,
    active_within_days INT,
    language           TEXT,
    requested_at       TIMESTAMPTZ NOT NULL,
    cancelled_at       TIMESTAMPTZ
)
