INSERT INTO {t}_per_minute (minute, event_type, events)
SELECT to_timestamp(m), ty, n FROM unnest($1::bigint[], $2::text[], $3::bigint[]) AS r(m, ty, n)
ON CONFLICT (minute, event_type) DO UPDATE SET events = {t}_per_minute.events + EXCLUDED.events
