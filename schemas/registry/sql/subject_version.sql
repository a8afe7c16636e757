-- $2 NULL means the latest version.
SELECT v.version, s.id, s.schema_text
FROM schema_registry_versions v
JOIN schema_registry_schemas s ON s.id = v.schema_id
WHERE v.subject = $1 AND ($2::INTEGER IS NULL OR v.version = $2)
ORDER BY v.version DESC
LIMIT 1
