INSERT INTO projection_positions (projection, version, topic, partition, generation)
SELECT $1, $2, $3, p, 1 FROM unnest($4::integer[]) AS p
ON CONFLICT (projection, version, topic, partition)
DO UPDATE SET generation = projection_positions.generation + 1, updated_at = now()
RETURNING partition, next_offset, generation
