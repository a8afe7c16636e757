-- Writes back the folded progress of a batch (whole rows, one per user).
INSERT INTO {t}_progress AS p (user_id, taps, sessions, referrals, streak_current, streak_best, streak_last_day)
SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::integer[], $6::integer[], $7::integer[])
ON CONFLICT (user_id) DO UPDATE SET
    taps = EXCLUDED.taps,
    sessions = EXCLUDED.sessions,
    referrals = EXCLUDED.referrals,
    streak_current = EXCLUDED.streak_current,
    streak_best = EXCLUDED.streak_best,
    streak_last_day = EXCLUDED.streak_last_day
