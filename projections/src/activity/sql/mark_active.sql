INSERT INTO {t}_daily_users (day, user_id)
SELECT date '1970-01-01' + d, u FROM unnest($1::integer[], $2::bigint[]) AS r(d, u)
ON CONFLICT DO NOTHING
