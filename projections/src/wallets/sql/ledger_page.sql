-- A page of one user's ledger, newest first: rows with seq below $2 (all when null), at most $3.
SELECT event_id, user_id, seq, kind, amount, balance_after,
       (extract(epoch FROM occurred_at) * 1000)::bigint AS occurred_at_ms,
       kafka_partition, kafka_offset
FROM {t}_ledger
WHERE user_id = $1 AND seq < coalesce($2::bigint, 9223372036854775807)
ORDER BY seq DESC
LIMIT $3
