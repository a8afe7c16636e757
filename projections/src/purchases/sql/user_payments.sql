-- One user's payments, newest first, at most $2.
SELECT telegram_payment_charge_id, purchase_id, item_id, stars, coins, subscription,
       (extract(epoch FROM expires_at) * 1000)::bigint AS expires_at_ms, recurring,
       (extract(epoch FROM paid_at) * 1000)::bigint AS paid_at_ms,
       (extract(epoch FROM refunded_at) * 1000)::bigint AS refunded_at_ms
FROM {t}_payments
WHERE user_id = $1
ORDER BY coalesce(paid_at, refunded_at) DESC, telegram_payment_charge_id
LIMIT $2
