-- A user's first parked event and how many they have.
SELECT kafka_partition, kafka_offset, event, reason, count(*) OVER () AS parked
FROM {t}_parked WHERE user_id = $1
ORDER BY kafka_partition, kafka_offset
LIMIT 1
