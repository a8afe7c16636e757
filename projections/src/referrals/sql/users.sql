-- Every user the deriver has seen a session of, with the event id of their first session:
-- the fact that makes a replayed decision come out the same.
CREATE TABLE IF NOT EXISTS {t}_users (
    user_id                BIGINT PRIMARY KEY,
    first_session_event_id UUID NOT NULL,
    first_seen_at          TIMESTAMPTZ NOT NULL
)
