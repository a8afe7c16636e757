-- One user's balance, streak and latest $2 ledger rows (newest first), in one snapshot.
-- One result row per ledger row; one row with null ledger columns when $2 is 0.
SELECT b.user_id, b.balance, b.entries,
       (extract(epoch FROM b.updated_at) * 1000)::bigint AS updated_at_ms,
       coalesce(s.streak_current, 0) AS streak_current,
       coalesce(s.streak_best, 0) AS streak_best,
       (s.streak_last_day - DATE '1970-01-01') AS streak_last_day,
       l.event_id, l.seq, l.kind, l.amount, l.balance_after, l.occurred_at_ms,
       l.kafka_partition, l.kafka_offset
FROM {t}_balances b
LEFT JOIN {t}_streaks s ON s.user_id = b.user_id
LEFT JOIN LATERAL (
    SELECT event_id, seq, kind, amount, balance_after,
           (extract(epoch FROM occurred_at) * 1000)::bigint AS occurred_at_ms,
           kafka_partition, kafka_offset
    FROM {t}_ledger
    WHERE user_id = b.user_id
    ORDER BY seq DESC
    LIMIT $2
) l ON true
WHERE b.user_id = $1
ORDER BY l.seq DESC
