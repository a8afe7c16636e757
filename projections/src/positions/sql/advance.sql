-- Moves one partition's position of a projection version, in the transaction of the batch
-- whose writes it covers.
UPDATE projection_positions SET next_offset = $5, updated_at = now()
WHERE projection = $1 AND version = $2 AND topic = $3 AND partition = $4
