-- One projection version's positions on one topic: next offset to apply, per partition.
SELECT partition, next_offset FROM projection_positions
WHERE projection = $1 AND version = $2 AND topic = $3
