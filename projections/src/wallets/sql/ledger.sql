-- Append-only: one row per coin-earning event. The event id is the last line of defence
-- against counting an event twice; seq numbers a user's rows 1, 2, 3... in partition order.
-- `kind` is whatever the coin rules (the processors' economy::earning) name: the store does not
-- repeat which events earn.
CREATE TABLE IF NOT EXISTS {t}_ledger (
    event_id        UUID PRIMARY KEY,
    user_id         BIGINT NOT NULL,
    seq             BIGINT NOT NULL,
    kind            TEXT NOT NULL,
    amount          BIGINT NOT NULL CHECK (amount <> 0),
    balance_after   BIGINT NOT NULL,
    occurred_at     TIMESTAMPTZ NOT NULL,
    kafka_partition INTEGER NOT NULL,
    kafka_offset    BIGINT NOT NULL,
    UNIQUE (user_id, seq)
)
