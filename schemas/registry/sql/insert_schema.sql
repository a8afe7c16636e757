-- Returns no row when a concurrent transaction registered the same schema first.
INSERT INTO schema_registry_schemas (fingerprint, schema_type, schema_text)
VALUES ($1, 'AVRO', $2)
ON CONFLICT (fingerprint) DO NOTHING
RETURNING id
