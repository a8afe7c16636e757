SELECT EXISTS (SELECT 1 FROM schema_registry_versions WHERE subject = $1)
