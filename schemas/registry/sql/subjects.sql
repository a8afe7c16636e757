SELECT DISTINCT subject FROM schema_registry_versions ORDER BY subject
