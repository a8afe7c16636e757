-- The messages to send, one row per message, shared by every version of the projection: only
-- the serving version adds rows, keyed by an id computed from what caused the message (the
-- source event, or the broadcast and the recipient), so a version that applies an event again
-- (a restart, the hand-over of a rebuild) adds nothing. The sender claims due rows with a lease
-- and records each outcome; rows in a final state are dropped after the retention.
-- state: pending, sending (claimed, lease_until), sent, failed (reason), blocked, cancelled.
CREATE TABLE IF NOT EXISTS notifications_outbox (
    message_id   UUID PRIMARY KEY,
    user_id      BIGINT NOT NULL,
    broadcast_id UUID,
    kind         TEXT NOT NULL,
    text         TEXT NOT NULL,
    button_text  TEXT,
    state        TEXT NOT NULL DEFAULT 'pending',
    reason       TEXT,
    attempts     INT NOT NULL DEFAULT 0,
    claim_id     UUID,
    lease_until  TIMESTAMPTZ,
    due_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    done_at      TIMESTAMPTZ
)
