-- The activity tables on plain PostgreSQL: the two rollups themselves, kept by the projector,
-- range-partitioned by day so retention drops whole partitions (created per day on first use,
-- see `partitions.rs`). The TimescaleDB layout is `timescale.sql`; the reads are the same.
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
) PARTITION BY RANGE (day)
