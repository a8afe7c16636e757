-- Which of these users have parked events.
SELECT DISTINCT user_id FROM {t}_parked WHERE user_id = ANY($1::bigint[])
