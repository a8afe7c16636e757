INSERT INTO projection_versions (projection, version, revision, state, from_at, switched_at)
VALUES ($1, $2, $3, $4,
        TIMESTAMPTZ 'epoch' + $5 * INTERVAL '1 millisecond',
        CASE WHEN $4 = 'active' THEN now() END)
