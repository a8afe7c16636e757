SELECT schema_type, schema_text FROM schema_registry_schemas WHERE id = $1
