INSERT INTO schema_registry_global_config (singleton, compatibility) VALUES (TRUE, $1)
ON CONFLICT (singleton) DO UPDATE SET compatibility = EXCLUDED.compatibility
