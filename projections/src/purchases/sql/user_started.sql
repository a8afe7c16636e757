-- One user's opened invoices, newest first, at most $2.
SELECT purchase_id, item_id, stars,
       (extract(epoch FROM started_at) * 1000)::bigint AS started_at_ms
FROM {t}_started
WHERE user_id = $1
ORDER BY started_at DESC, purchase_id
LIMIT $2
