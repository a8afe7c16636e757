-- Applies a folded batch in one statement: appends the numbered ledger rows, skipping any
-- event id the ledger already holds, moves each balance by the rows actually inserted only (so
-- balance = sum(ledger.amount) however often an event is offered), and stores the changed
-- streaks. $1..$9: ledger rows; $10..$13: streaks. Returns the number of ledger rows inserted.
WITH inserted AS (
    INSERT INTO {t}_ledger (event_id, user_id, seq, kind, amount, balance_after, occurred_at,
                            kafka_partition, kafka_offset)
    SELECT event_id, user_id, seq, kind, amount, balance_after,
           TIMESTAMPTZ 'epoch' + occurred_at_ms * INTERVAL '1 millisecond',
           kafka_partition, kafka_offset
    FROM UNNEST($1::uuid[], $2::bigint[], $3::bigint[], $4::text[], $5::bigint[], $6::bigint[],
                $7::bigint[], $8::integer[], $9::bigint[])
        AS e(event_id, user_id, seq, kind, amount, balance_after, occurred_at_ms,
             kafka_partition, kafka_offset)
    ON CONFLICT (event_id) DO NOTHING
    RETURNING user_id, amount, occurred_at
),
moved AS (
    INSERT INTO {t}_balances AS b (user_id, balance, entries, updated_at)
    SELECT user_id, sum(amount)::bigint, count(*), max(occurred_at)
    FROM inserted
    GROUP BY user_id
    ON CONFLICT (user_id) DO UPDATE SET
        balance = b.balance + EXCLUDED.balance,
        entries = b.entries + EXCLUDED.entries,
        updated_at = greatest(b.updated_at, EXCLUDED.updated_at)
),
streaks AS (
    INSERT INTO {t}_streaks (user_id, streak_current, streak_best, streak_last_day)
    SELECT user_id, streak_current, streak_best, DATE '1970-01-01' + streak_last_day
    FROM UNNEST($10::bigint[], $11::integer[], $12::integer[], $13::integer[])
        AS s(user_id, streak_current, streak_best, streak_last_day)
    ON CONFLICT (user_id) DO UPDATE SET
        streak_current = EXCLUDED.streak_current,
        streak_best = EXCLUDED.streak_best,
        streak_last_day = EXCLUDED.streak_last_day
)
SELECT count(*) AS inserted FROM inserted
