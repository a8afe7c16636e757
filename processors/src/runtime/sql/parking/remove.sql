-- Removes one parked event (applied or skipped).
DELETE FROM {t}_parked WHERE user_id = $1 AND kafka_partition = $2 AND kafka_offset = $3
