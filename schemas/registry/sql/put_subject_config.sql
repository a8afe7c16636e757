INSERT INTO schema_registry_subject_config (subject, compatibility) VALUES ($1, $2)
ON CONFLICT (subject) DO UPDATE SET compatibility = EXCLUDED.compatibility
