-- The bounds are timestamptz (UTC midnights, sqlx sessions are UTC) for both layouts: compared
-- as dates, TimescaleDB 2.17.2 plans `time_bucket(...) < date` under a continuous aggregate as
-- always false and returns no rows.
SELECT (day::date - date '1970-01-01') AS day, count(*) AS users
FROM {t}_daily_users
WHERE day >= (date '1970-01-01' + $1::integer)::timestamptz
  AND day < (date '1970-01-01' + $2::integer)::timestamptz
GROUP BY 1
ORDER BY 1
