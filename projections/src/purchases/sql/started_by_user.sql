CREATE INDEX IF NOT EXISTS {t}_started_by_user ON {t}_started (user_id, started_at DESC)
