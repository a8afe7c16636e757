-- Parks events; one already parked (the same record delivered again) stays as it is.
INSERT INTO {t}_parked (user_id, kafka_partition, kafka_offset, event, reason)
SELECT * FROM unnest($1::bigint[], $2::integer[], $3::bigint[], $4::text[], $5::text[])
ON CONFLICT DO NOTHING
