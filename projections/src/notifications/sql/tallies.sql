-- How many of each broadcast's deliveries were queued and how many reached each final state
-- (failed ones by Telegram's reason), counted by the statement that queues or finishes them.
-- A broadcast's progress reads these few rows however many recipients it has, and they outlive
-- the outbox's retention. Shared by every version, like the outbox.
-- state: queued, sent, failed, blocked, cancelled; reason is '' except for failed.
CREATE TABLE IF NOT EXISTS notifications_broadcast_tallies (
    broadcast_id UUID NOT NULL,
    state        TEXT NOT NULL,
    reason       TEXT NOT NULL DEFAULT '',
    count        BIGINT NOT NULL,
    PRIMARY KEY (broadcast_id, state, reason)
)
