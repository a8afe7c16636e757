-- $1 purchase id, $2 user, $3 item, $4 Stars, $5 started at (unix ms). A repeat changes nothing.
INSERT INTO {t}_started (purchase_id, user_id, item_id, stars, started_at)
VALUES ($1, $2, $3, $4, TIMESTAMPTZ 'epoch' + $5::bigint * INTERVAL '1 millisecond')
ON CONFLICT (purchase_id) DO NOTHING
