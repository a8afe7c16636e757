-- The activity tables with TimescaleDB: every event's (time, type, user) in a hypertable chunked
-- by day, and the two rollups as continuous aggregates that also show rows not yet materialised
-- (same names and columns as the plain layout's tables, so the reads are the same SQL). Their
-- chunks are one day too, so retention's `drop_chunks` drops the same days from all three.
-- `{timescaledb}` is the schema the extension lives in, which is not on the search path.
CREATE TABLE IF NOT EXISTS {t}_events (
    at         timestamptz NOT NULL,
    event_type text        NOT NULL,
    user_id    bigint      NOT NULL
);
SELECT {timescaledb}.create_hypertable('{t}_events', 'at',
    chunk_time_interval => interval '1 day', if_not_exists => true);
CREATE MATERIALIZED VIEW IF NOT EXISTS {t}_per_minute
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT {timescaledb}.time_bucket(interval '1 minute', at) AS minute, event_type, count(*) AS events
FROM {t}_events GROUP BY 1, 2 WITH NO DATA;
CREATE MATERIALIZED VIEW IF NOT EXISTS {t}_daily_users
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT {timescaledb}.time_bucket(interval '1 day', at) AS day, user_id, count(*) AS events
FROM {t}_events GROUP BY 1, 2 WITH NO DATA;
SELECT {timescaledb}.set_chunk_time_interval('{t}_per_minute', interval '1 day');
SELECT {timescaledb}.set_chunk_time_interval('{t}_daily_users', interval '1 day');
SELECT {timescaledb}.add_continuous_aggregate_policy('{t}_per_minute',
    start_offset => interval '2 hours', end_offset => interval '1 minute',
    schedule_interval => interval '1 minute', if_not_exists => true);
SELECT {timescaledb}.add_continuous_aggregate_policy('{t}_daily_users',
    start_offset => interval '3 days', end_offset => interval '1 hour',
    schedule_interval => interval '10 minutes', if_not_exists => true)
