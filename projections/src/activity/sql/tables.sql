-- The activity projection's tables, in one of two layouts chosen by what the database has.
-- With TimescaleDB: every event's (time, type, user) in a hypertable chunked by day, and two
-- continuous aggregates (per minute by type, active users per day) that also show rows not yet
-- materialised. On plain PostgreSQL: the two rollups themselves, kept by the projector,
-- range-partitioned by day so retention drops whole partitions. The reads are the same for both.
DO $$
BEGIN
IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
    CREATE TABLE IF NOT EXISTS {t}_events (
        at         timestamptz NOT NULL,
        event_type text        NOT NULL,
        user_id    bigint      NOT NULL
    );
    PERFORM create_hypertable('{t}_events', 'at',
        chunk_time_interval => interval '1 day', if_not_exists => true);
    EXECUTE $cagg$
        CREATE MATERIALIZED VIEW IF NOT EXISTS {t}_per_minute
        WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
        SELECT time_bucket(interval '1 minute', at) AS minute, event_type, count(*) AS events
        FROM {t}_events GROUP BY 1, 2 WITH NO DATA
    $cagg$;
    EXECUTE $cagg$
        CREATE MATERIALIZED VIEW IF NOT EXISTS {t}_daily_users
        WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
        SELECT time_bucket(interval '1 day', at) AS day, user_id, count(*) AS events
        FROM {t}_events GROUP BY 1, 2 WITH NO DATA
    $cagg$;
    PERFORM add_continuous_aggregate_policy('{t}_per_minute', start_offset => interval '2 hours',
        end_offset => interval '1 minute', schedule_interval => interval '1 minute',
        if_not_exists => true);
    PERFORM add_continuous_aggregate_policy('{t}_daily_users', start_offset => interval '3 days',
        end_offset => interval '1 hour', schedule_interval => interval '10 minutes',
        if_not_exists => true);
ELSE
    CREATE TABLE IF NOT EXISTS {t}_per_minute (
        minute     timestamptz NOT NULL,
        event_type text        NOT NULL,
        events     bigint      NOT NULL,
        PRIMARY KEY (minute, event_type)
    ) PARTITION BY RANGE (minute);
    CREATE TABLE IF NOT EXISTS {t}_daily_users (
        day     date   NOT NULL,
        user_id bigint NOT NULL,
        PRIMARY KEY (day, user_id)
    ) PARTITION BY RANGE (day);
END IF;
END
$$
