-- Serialises version allocation per (search_path schema, subject), across processes.
SELECT pg_advisory_xact_lock(
    hashtextextended('surge-schema-registry:' || coalesce(current_schema(), '') || '/' || $1, 0)
)
