-- One row per user: the latest Telegram snapshot, the app-chosen fields, activity and the daily
-- check-in streak. Times are event times (occurred_at), so a rebuild gives the same rows.
CREATE TABLE IF NOT EXISTS {t}_users (
    user_id              BIGINT PRIMARY KEY,
    -- Telegram snapshot from the latest SessionStarted (null until the first session).
    first_name           TEXT,
    last_name            TEXT,
    username             TEXT,
    is_premium           BOOLEAN NOT NULL DEFAULT false,
    -- Effective values: the user's choice (ProfileUpdated) once made, else Telegram's.
    language_code        TEXT,
    language_code_chosen BOOLEAN NOT NULL DEFAULT false,
    photo_url            TEXT,
    photo_url_chosen     BOOLEAN NOT NULL DEFAULT false,
    display_name         TEXT,
    first_seen_at        TIMESTAMPTZ NOT NULL,
    last_seen_at         TIMESTAMPTZ NOT NULL,
    sessions_count       BIGINT NOT NULL DEFAULT 0,
    -- Set by the first session's start_param `ref_<id>`; never changed afterwards.
    referred_by          BIGINT,
    streak_current       INTEGER NOT NULL DEFAULT 0,
    streak_best          INTEGER NOT NULL DEFAULT 0,
    streak_last_day      DATE
)
