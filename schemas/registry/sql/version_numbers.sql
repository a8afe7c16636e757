SELECT version FROM schema_registry_versions WHERE subject = $1 ORDER BY version
