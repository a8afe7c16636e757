-- A version's parked events (see `surge_processors::runtime::parking`): per user, in partition offset order;
-- the first of a user's is the dead-lettered event that parked them, with its reason. `event`
-- is the event as JSON text (text, not jsonb: jsonb refuses the \u0000 a poison event may hold).
CREATE TABLE IF NOT EXISTS {t}_parked (
    user_id         BIGINT NOT NULL,
    kafka_partition INTEGER NOT NULL,
    kafka_offset    BIGINT NOT NULL,
    event           TEXT NOT NULL,
    reason          TEXT,
    parked_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, kafka_partition, kafka_offset)
)
