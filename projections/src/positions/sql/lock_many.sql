-- Locks partitions' position rows of a projection version for the transaction that applies
-- their batches (or releases a parked user), in partition order, so two such transactions never
-- deadlock: each row's next offset and fencing generation; a partition never claimed has no row.
SELECT partition, next_offset, generation FROM projection_positions
WHERE projection = $1 AND version = $2 AND topic = $3 AND partition = ANY($4::integer[])
ORDER BY partition
FOR UPDATE
