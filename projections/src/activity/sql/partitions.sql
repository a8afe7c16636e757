-- The day partitions of the plain layout's tables, by name (`<table>_p<days since 1970>`).
SELECT child.relname::text
FROM pg_inherits
JOIN pg_class parent ON parent.oid = pg_inherits.inhparent
JOIN pg_class child ON child.oid = pg_inherits.inhrelid
JOIN pg_namespace ns ON ns.oid = parent.relnamespace
WHERE ns.nspname = current_schema() AND parent.relname = ANY($1::text[])
