-- Moves several partitions' positions of a projection version (partition $4[i] to $5[i]), in the
-- transaction of the batches whose writes they cover.
UPDATE projection_positions AS p SET next_offset = moved.next_offset, updated_at = now()
FROM unnest($4::integer[], $5::bigint[]) AS moved (partition, next_offset)
WHERE p.projection = $1 AND p.version = $2 AND p.topic = $3 AND p.partition = moved.partition
