-- What each user has done toward the quests, counted from their events.
CREATE TABLE IF NOT EXISTS {t}_progress (
    user_id         BIGINT PRIMARY KEY,
    taps            BIGINT NOT NULL,
    sessions        BIGINT NOT NULL,
    referrals       BIGINT NOT NULL,
    streak_current  INTEGER NOT NULL,
    streak_best     INTEGER NOT NULL,
    streak_last_day INTEGER
);
-- Each quest a user completed, once: the fact that keeps a replayed or repeated decision from
-- completing it again. event_id is the QuestCompleted event's id.
CREATE TABLE IF NOT EXISTS {t}_completed (
    user_id      BIGINT NOT NULL,
    quest_id     TEXT NOT NULL,
    reward       BIGINT NOT NULL,
    event_id     UUID NOT NULL,
    completed_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, quest_id)
)
