-- $1 charge, $2 user, $3 purchase, $4 item, $5 Stars, $6 coins, $7 plan, $8 expires at (unix ms
-- or null), $9 recurring, $10 paid at (unix ms). A repeat changes nothing; a row a refund made
-- first gets its payment's time.
INSERT INTO {t}_payments AS p (telegram_payment_charge_id, user_id, purchase_id, item_id, stars,
                               coins, subscription, expires_at, recurring, paid_at)
VALUES ($1, $2, $3, $4, $5, $6, $7,
        TIMESTAMPTZ 'epoch' + $8::bigint * INTERVAL '1 millisecond', $9,
        TIMESTAMPTZ 'epoch' + $10::bigint * INTERVAL '1 millisecond')
ON CONFLICT (telegram_payment_charge_id) DO UPDATE SET
    paid_at = EXCLUDED.paid_at,
    subscription = EXCLUDED.subscription,
    expires_at = EXCLUDED.expires_at,
    recurring = EXCLUDED.recurring
WHERE p.paid_at IS NULL
