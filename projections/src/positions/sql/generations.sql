-- One projection version's fencing generations on one topic, per partition.
SELECT partition, generation FROM projection_positions
WHERE projection = $1 AND version = $2 AND topic = $3
