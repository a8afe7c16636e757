CREATE INDEX IF NOT EXISTS notifications_outbox_by_broadcast
    ON notifications_outbox (broadcast_id, state) WHERE broadcast_id IS NOT NULL
