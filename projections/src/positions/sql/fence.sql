-- Fences every processor of one projection version on one topic: their next batch finds the
-- generation moved.
UPDATE projection_positions SET generation = generation + 1, updated_at = now()
WHERE projection = $1 AND version = $2 AND topic = $3
