SELECT compatibility FROM schema_registry_subject_config WHERE subject = $1
