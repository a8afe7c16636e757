-- The stored state of a batch's earning users: balance and ledger length, and the streak
-- (users who never earned are absent).
SELECT u.user_id, b.balance, b.entries, s.streak_current, s.streak_best,
       (s.streak_last_day - DATE '1970-01-01') AS streak_last_day
FROM UNNEST($1::bigint[]) AS u(user_id)
LEFT JOIN {t}_balances b ON b.user_id = u.user_id
LEFT JOIN {t}_streaks s ON s.user_id = u.user_id
WHERE b.user_id IS NOT NULL OR s.user_id IS NOT NULL
