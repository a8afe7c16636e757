SELECT next_offset, generation FROM projection_positions
WHERE projection = $1 AND version = $2 AND topic = $3 AND partition = $4
FOR UPDATE
