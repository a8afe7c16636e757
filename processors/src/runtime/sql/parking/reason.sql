-- Why a parked event was rejected again when retried.
UPDATE {t}_parked SET reason = $4 WHERE user_id = $1 AND kafka_partition = $2 AND kafka_offset = $3
