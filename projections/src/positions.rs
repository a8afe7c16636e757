//! Where a projection version has got to: for each partition of the events topic, the next
//! offset it will apply. Processors store it with every batch, in the same transaction (PostgreSQL
//! table `projection_positions`) or script (Redis hash `<keys base>:positions`, fields
//! `<topic>:<partition>`) as the batch's writes, so a read that sees a position sees its writes.

use std::collections::HashMap;

use redis::aio::ConnectionManager;
use sqlx::PgPool;

/// Next offset to apply, by partition; a partition never applied is absent.
pub type Positions = HashMap<i32, i64>;

#[derive(Debug, thiserror::Error)]
pub enum PositionsError {
    #[error("reading positions from PostgreSQL failed: {0}")]
    Postgres(#[from] sqlx::Error),
    #[error("reading positions from Redis failed: {0}")]
    Redis(#[from] redis::RedisError),
}

/// The field of a Redis positions or generations hash for one partition: `<topic>:<partition>`.
pub fn redis_field(topic: &str, partition: i32) -> String {
    format!("{topic}:{partition}")
}

/// The partition a Redis positions or generations field of `topic` names; `None` for another
/// topic's field.
pub fn partition_of(field: &str, topic: &str) -> Option<i32> {
    field.strip_prefix(topic)?.strip_prefix(':')?.parse().ok()
}

/// One projection version's stored positions on one topic.
#[derive(Clone)]
pub enum PositionSource {
    Postgres {
        pool: PgPool,
        projection: &'static str,
        version: u32,
        topic: String,
    },
    Redis {
        redis: ConnectionManager,
        /// The version's key space, `<deployment prefix>:<name>:v<version>`.
        keys_base: String,
        topic: String,
    },
}

impl PositionSource {
    pub async fn read(&self) -> Result<Positions, PositionsError> {
        match self {
            PositionSource::Postgres {
                pool,
                projection,
                version,
                topic,
            } => {
                let rows: Result<Vec<(i32, i64)>, _> = sqlx::query_as(
                    "SELECT partition, next_offset FROM projection_positions \
                     WHERE projection = $1 AND version = $2 AND topic = $3",
                )
                .bind(projection)
                .bind(i32::try_from(*version).unwrap_or(i32::MAX))
                .bind(topic)
                .fetch_all(pool)
                .await;
                match rows {
                    Ok(rows) => Ok(rows.into_iter().collect()),
                    // No processor has created the table yet: nothing is applied.
                    Err(e) if is_undefined_table(&e) => Ok(Positions::new()),
                    Err(e) => Err(e.into()),
                }
            }
            PositionSource::Redis {
                redis,
                keys_base,
                topic,
            } => {
                let mut conn = redis.clone();
                let fields: HashMap<String, i64> = redis::cmd("HGETALL")
                    .arg(format!("{keys_base}:positions"))
                    .query_async(&mut conn)
                    .await?;
                Ok(fields
                    .into_iter()
                    .filter_map(|(field, next)| Some((partition_of(&field, topic)?, next)))
                    .collect())
            }
        }
    }
}

/// The versions of `projection` with positions stored in PostgreSQL for `topic`, ascending.
pub async fn postgres_versions(
    pool: &PgPool,
    projection: &str,
    topic: &str,
) -> Result<Vec<u32>, PositionsError> {
    let found: Result<Vec<i32>, _> = sqlx::query_scalar(
        "SELECT DISTINCT version FROM projection_positions \
         WHERE projection = $1 AND topic = $2 ORDER BY version",
    )
    .bind(projection)
    .bind(topic)
    .fetch_all(pool)
    .await;
    match found {
        Ok(versions) => Ok(versions.into_iter().map(|v| v as u32).collect()),
        // No processor has run here yet.
        Err(e) if is_undefined_table(&e) => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
}

/// `projection_positions` does not exist yet (SQLSTATE 42P01).
pub(crate) fn is_undefined_table(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.code().as_deref() == Some("42P01"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_fields_name_a_partition_of_one_topic() {
        assert_eq!(redis_field("surge.events", 3), "surge.events:3");
        assert_eq!(partition_of("surge.events:3", "surge.events"), Some(3));
        assert_eq!(partition_of("surge.events.dlq:3", "surge.events"), None);
        assert_eq!(partition_of("other:3", "surge.events"), None);
        assert_eq!(partition_of("surge.events:x", "surge.events"), None);
    }
}
