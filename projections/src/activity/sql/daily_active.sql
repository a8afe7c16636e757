SELECT (day::date - date '1970-01-01') AS day, count(*) AS users
FROM {t}_daily_users
WHERE day >= date '1970-01-01' + $1::integer AND day < date '1970-01-01' + $2::integer
GROUP BY 1
ORDER BY 1
