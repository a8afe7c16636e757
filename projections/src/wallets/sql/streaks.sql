-- The daily check-in streak the coin rules need (economy::Streak). Written only when a
-- check-in counts, which always earns coins.
CREATE TABLE IF NOT EXISTS {t}_streaks (
    user_id         BIGINT PRIMARY KEY,
    streak_current  INTEGER NOT NULL,
    streak_best     INTEGER NOT NULL,
    streak_last_day DATE NOT NULL
)
