-- Stars paid and refunded per UTC day over the last $1 days (days without either are left out):
-- payments by the day they were paid, refunds by the day they were refunded.
WITH moves AS (
    SELECT paid_at AS at, stars AS paid, 0::bigint AS refunded, 1 AS payments, 0 AS refunds
    FROM {t}_payments WHERE paid_at >= (date_trunc('day', now() AT TIME ZONE 'UTC') - ($1::int - 1) * INTERVAL '1 day') AT TIME ZONE 'UTC'
    UNION ALL
    SELECT refunded_at, 0, stars, 0, 1
    FROM {t}_payments WHERE refunded_at >= (date_trunc('day', now() AT TIME ZONE 'UTC') - ($1::int - 1) * INTERVAL '1 day') AT TIME ZONE 'UTC'
)
SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day,
       sum(paid)::bigint AS stars_paid, sum(refunded)::bigint AS stars_refunded,
       sum(payments)::bigint AS payments, sum(refunds)::bigint AS refunds
FROM moves
GROUP BY 1
ORDER BY 1
