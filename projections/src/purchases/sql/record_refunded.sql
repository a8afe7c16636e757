-- $1 charge, $2 user, $3 purchase, $4 item, $5 Stars, $6 coins, $7 refunded at (unix ms). The
-- first refund's time stays: a repeat changes nothing.
INSERT INTO {t}_payments AS p (telegram_payment_charge_id, user_id, purchase_id, item_id, stars,
                               coins, recurring, refunded_at)
VALUES ($1, $2, $3, $4, $5, $6, false,
        TIMESTAMPTZ 'epoch' + $7::bigint * INTERVAL '1 millisecond')
ON CONFLICT (telegram_payment_charge_id) DO UPDATE SET
    refunded_at = EXCLUDED.refunded_at
WHERE p.refunded_at IS NULL
