-- The stored progress of a batch's users.
SELECT user_id, taps, sessions, referrals, streak_current, streak_best, streak_last_day
FROM {t}_progress
WHERE user_id = ANY($1::bigint[])
