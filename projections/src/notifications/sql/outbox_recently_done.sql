-- A broadcast's deliveries finished in the last seconds (its sending rate) without reading
-- the rest of it.
CREATE INDEX IF NOT EXISTS notifications_outbox_recently_done
    ON notifications_outbox (broadcast_id, done_at)
    WHERE broadcast_id IS NOT NULL AND done_at IS NOT NULL
