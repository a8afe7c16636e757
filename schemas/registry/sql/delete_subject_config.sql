DELETE FROM schema_registry_subject_config WHERE subject = $1 RETURNING compatibility
