//! Where a projection version has got to: for each partition of the events topic, the next
//! offset it will apply, and the fencing generation of whoever owns the partition. Processors
//! store the position with every batch, in the same transaction (PostgreSQL table
//! `projection_positions`) or script (Redis hashes [`naming::positions_key`] and
//! [`naming::generations_key`] in each partition's key space, fields
//! [`naming::position_field`]) as the batch's writes, so a read that sees a position sees its
//! writes.
//!
//! This module holds every statement and key of that bookkeeping: reading positions and
//! generations, claiming partitions ([`postgres::claim`], [`RedisPositions::claim`]), and the
//! PostgreSQL batches' lock and move ([`postgres::lock_many`], [`postgres::advance_many`]).
//! Redis batches check and move their position inside the runtime's apply script, which
//! interleaves it with the projection's writes; that script takes its keys from
//! [`RedisPositions`].

pub mod postgres;
pub(crate) mod redis_store;

use std::collections::HashMap;

use sqlx::PgPool;
use surge_redis::Redis;

use crate::naming;
pub use redis_store::{RedisPositions, redis_versions};

/// Next offset to apply, by partition; a partition never applied is absent.
pub type Positions = HashMap<i32, i64>;

/// Fencing generations, by partition: a claim bumps its partition's.
pub type Generations = HashMap<i32, i64>;

/// Where a newly claimed partition resumes, and the generation that fences older owners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    pub partition: i32,
    pub next_offset: i64,
    pub generation: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum PositionsError {
    #[error("reading positions from PostgreSQL failed: {0}")]
    Postgres(#[from] sqlx::Error),
    #[error("reading positions from Redis failed: {0}")]
    Redis(#[from] redis::RedisError),
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
        redis: Redis,
        /// The version's key space, [`naming::keys_base`].
        keys_base: String,
        topic: String,
        /// Partitions of `topic`: each keeps its position in its own key space.
        partitions: i32,
    },
}

impl PositionSource {
    /// Each partition's next offset.
    pub async fn read(&self) -> Result<Positions, PositionsError> {
        match self {
            PositionSource::Postgres {
                pool,
                projection,
                version,
                topic,
            } => Ok(postgres::read(pool, projection, *version, topic).await?),
            PositionSource::Redis {
                redis,
                keys_base,
                topic,
                partitions,
            } => {
                let key_of = naming::positions_key;
                Ok(
                    redis_store::read_partitions(redis, keys_base, topic, *partitions, key_of)
                        .await?,
                )
            }
        }
    }

    /// Each partition's fencing generation: a changed one means another processor has claimed
    /// the partition since.
    pub async fn generations(&self) -> Result<Generations, PositionsError> {
        match self {
            PositionSource::Postgres {
                pool,
                projection,
                version,
                topic,
            } => Ok(postgres::generations(pool, projection, *version, topic).await?),
            PositionSource::Redis {
                redis,
                keys_base,
                topic,
                partitions,
            } => {
                let key_of = naming::generations_key;
                Ok(
                    redis_store::read_partitions(redis, keys_base, topic, *partitions, key_of)
                        .await?,
                )
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
    Ok(postgres::versions(pool, projection, topic).await?)
}

/// `projection_positions` does not exist yet (SQLSTATE 42P01).
pub(crate) fn is_undefined_table(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.code().as_deref() == Some("42P01"))
}
