CREATE INDEX IF NOT EXISTS {t}_payments_by_user ON {t}_payments (user_id)
