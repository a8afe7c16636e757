-- Who can be messaged, and who an audience picks: a user's languages (Telegram's, and the one
-- chosen in the Mini App, which wins), whether they let the bot write to them
-- (initData's allows_write_to_pm, sticky once given), whether they blocked the bot since their
-- last session, and when they were first and last active (by recorded_at).
CREATE TABLE IF NOT EXISTS {t}_recipients (
    user_id           BIGINT PRIMARY KEY,
    telegram_language TEXT,
    chosen_language   TEXT,
    allows_write      BOOLEAN NOT NULL,
    blocked           BOOLEAN NOT NULL,
    first_seen_at     TIMESTAMPTZ NOT NULL,
    last_active_at    TIMESTAMPTZ NOT NULL
)
