-- The tables and materialized views of the current schema whose names match $1 (a LIKE
-- pattern), but partitions, which go with their parent; materialized views first.
SELECT c.relname::text, c.relkind::text FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relname LIKE $1
  AND c.relkind IN ('r', 'p', 'm') AND NOT c.relispartition
ORDER BY c.relkind DESC
