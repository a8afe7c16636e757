SELECT v.version, s.id, s.fingerprint, s.schema_text
FROM schema_registry_versions v
JOIN schema_registry_schemas s ON s.id = v.schema_id
WHERE v.subject = $1
ORDER BY v.version
