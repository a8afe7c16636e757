-- One user's profile, for the query API.
SELECT user_id, first_name, last_name, username, is_premium,
       language_code, language_code_chosen, photo_url, photo_url_chosen, display_name,
       (extract(epoch FROM first_seen_at) * 1000)::bigint AS first_seen_at_ms,
       (extract(epoch FROM last_seen_at) * 1000)::bigint AS last_seen_at_ms,
       sessions_count, referred_by, streak_current, streak_best,
       (streak_last_day - DATE '1970-01-01') AS streak_last_day
FROM {t}_users
WHERE user_id = $1
