-- Event notifications before broadcast messages, then oldest due first.
CREATE INDEX IF NOT EXISTS notifications_outbox_due
    ON notifications_outbox ((broadcast_id IS NOT NULL), due_at) WHERE state = 'pending'
