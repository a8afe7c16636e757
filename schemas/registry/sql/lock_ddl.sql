SELECT pg_advisory_xact_lock(hashtextextended('surge-schema-registry:ddl', 0))
