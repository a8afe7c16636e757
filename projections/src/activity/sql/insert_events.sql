INSERT INTO {t}_events (at, event_type, user_id)
SELECT to_timestamp(ms / 1000.0), ty, u FROM unnest($1::bigint[], $2::text[], $3::bigint[]) AS r(ms, ty, u)
