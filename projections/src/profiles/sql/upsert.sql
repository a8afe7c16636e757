-- Writes back the folded rows of a batch (one row per user, whole rows): one statement per batch.
INSERT INTO {t}_users AS u (
    user_id, first_name, last_name, username, is_premium,
    language_code, language_code_chosen, photo_url, photo_url_chosen, display_name,
    first_seen_at, last_seen_at, sessions_count, referred_by,
    streak_current, streak_best, streak_last_day
)
SELECT r.user_id, r.first_name, r.last_name, r.username, r.is_premium,
       r.language_code, r.language_code_chosen, r.photo_url, r.photo_url_chosen, r.display_name,
       TIMESTAMPTZ 'epoch' + r.first_seen_at_ms * INTERVAL '1 millisecond',
       TIMESTAMPTZ 'epoch' + r.last_seen_at_ms * INTERVAL '1 millisecond',
       r.sessions_count, r.referred_by,
       r.streak_current, r.streak_best, DATE '1970-01-01' + r.streak_last_day
FROM UNNEST(
    $1::bigint[], $2::text[], $3::text[], $4::text[], $5::boolean[],
    $6::text[], $7::boolean[], $8::text[], $9::boolean[], $10::text[],
    $11::bigint[], $12::bigint[], $13::bigint[], $14::bigint[],
    $15::integer[], $16::integer[], $17::integer[]
) AS r(
    user_id, first_name, last_name, username, is_premium,
    language_code, language_code_chosen, photo_url, photo_url_chosen, display_name,
    first_seen_at_ms, last_seen_at_ms, sessions_count, referred_by,
    streak_current, streak_best, streak_last_day
)
ON CONFLICT (user_id) DO UPDATE SET
    first_name = EXCLUDED.first_name,
    last_name = EXCLUDED.last_name,
    username = EXCLUDED.username,
    is_premium = EXCLUDED.is_premium,
    language_code = EXCLUDED.language_code,
    language_code_chosen = EXCLUDED.language_code_chosen,
    photo_url = EXCLUDED.photo_url,
    photo_url_chosen = EXCLUDED.photo_url_chosen,
    display_name = EXCLUDED.display_name,
    first_seen_at = EXCLUDED.first_seen_at,
    last_seen_at = EXCLUDED.last_seen_at,
    sessions_count = EXCLUDED.sessions_count,
    referred_by = EXCLUDED.referred_by,
    streak_current = EXCLUDED.streak_current,
    streak_best = EXCLUDED.streak_best,
    streak_last_day = EXCLUDED.streak_last_day
