-- The versions of each PostgreSQL-kept projection (and, for Redis-kept ones, see the Redis hash
-- `<prefix>:<name>:versions`). One `active` version per projection at most.
CREATE TABLE IF NOT EXISTS projection_versions (
    projection  text        NOT NULL,
    version     integer     NOT NULL,
    revision    integer     NOT NULL,
    state       text        NOT NULL CHECK (state IN ('building', 'active', 'retired', 'dropped')),
    from_at     timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    switched_at timestamptz,
    PRIMARY KEY (projection, version)
);
CREATE UNIQUE INDEX IF NOT EXISTS projection_versions_one_active
    ON projection_versions (projection) WHERE state = 'active';
