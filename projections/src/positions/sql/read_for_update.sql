-- read.sql, locking the rows: whoever writes them next (the version's next batch) waits.
SELECT partition, next_offset FROM projection_positions
WHERE projection = $1 AND version = $2 AND topic = $3
FOR UPDATE
