-- Every parked event, each user's in order.
SELECT event, reason FROM {t}_parked ORDER BY user_id, kafka_partition, kafka_offset
