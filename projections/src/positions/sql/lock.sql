-- Locks one partition's position row of a projection version for the batch's transaction: its
-- next offset and fencing generation; no row means the partition was never claimed.
SELECT next_offset, generation FROM projection_positions
WHERE projection = $1 AND version = $2 AND topic = $3 AND partition = $4
FOR UPDATE
