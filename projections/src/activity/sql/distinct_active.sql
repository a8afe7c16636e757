-- Bounds as timestamptz: see daily_active.sql.
SELECT count(DISTINCT user_id)
FROM {t}_daily_users
WHERE day >= (date '1970-01-01' + $1::integer)::timestamptz
  AND day < (date '1970-01-01' + $2::integer)::timestamptz
