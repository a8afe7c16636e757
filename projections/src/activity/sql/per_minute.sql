SELECT extract(epoch FROM minute)::bigint AS minute, event_type, events::bigint AS events
FROM {t}_per_minute
WHERE minute >= to_timestamp($1::bigint) AND minute < to_timestamp($2::bigint)
ORDER BY minute, event_type
