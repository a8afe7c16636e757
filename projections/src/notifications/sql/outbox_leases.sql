CREATE INDEX IF NOT EXISTS notifications_outbox_leases
    ON notifications_outbox (lease_until) WHERE state = 'sending'
