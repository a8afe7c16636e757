-- Claims partitions of a projection version: bumps each generation (fencing older owners) and
-- returns where to resume. A version that no longer serves (retired by a switch, or dropped) is
-- never claimed again, so a late processor of it cannot write after the switch.
INSERT INTO projection_positions (projection, version, topic, partition, generation)
SELECT $1, $2, $3, p, 1 FROM unnest($4::integer[]) AS p
WHERE NOT EXISTS (
    SELECT 1 FROM projection_versions
    WHERE projection = $1 AND version = $2 AND state IN ('retired', 'dropped')
)
ON CONFLICT (projection, version, topic, partition)
DO UPDATE SET generation = projection_positions.generation + 1, updated_at = now()
RETURNING partition, next_offset, generation
