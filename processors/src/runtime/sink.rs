//! Where a projection's batches land. A sink keeps, per partition, the next offset to apply and a
//! fencing generation, in the same store as the projection's data, and commits a batch's writes
//! with the new position atomically. Two implementations: PostgreSQL and Redis.

use std::future::Future;

use surge_projections::naming;
use surge_projections::positions::{Positions, PositionsError};
use surge_projections::versions::VersionsError;
use uuid::Uuid;

use super::parking::{Parked, Release, Released};
use super::rejections::{Rejection, sqlx_rejects_data};
use super::{NO_POINT_IN_TIME, Record};

/// Where a newly assigned partition resumes, and the generation that fences older owners.
pub use surge_projections::positions::Claim;

#[derive(Debug, Clone, thiserror::Error)]
pub enum SinkError {
    /// Retry the same batch later (store down, timeout, a conflicting concurrent write).
    #[error("transient store failure: {0}")]
    Transient(String),
    /// Another processor claimed the partition since we did: drop our work on it.
    #[error("fenced: another processor owns the partition now")]
    Fenced,
    /// The projection rejects this event for good: dead-letter it and retry without it.
    #[error("event {event_id} rejected: {reason}")]
    Poison { event_id: Uuid, reason: String },
    /// The store refused the batch's data (see `rejections.rs`): some event
    /// in it can never be applied, and the store does not say which. The runtime applies the
    /// batch event by event to find it, dead-letters it and applies the rest.
    #[error("the store rejected the batch's data: {0}")]
    Rejected(#[source] Rejection),
    /// The store's position is `stored`, behind what this processor applied there: the store
    /// lost acknowledged writes (a Redis restarted without persistence, or a failover to a
    /// replica that had not received them). Its data went back with its position, so reading
    /// the partition again from `stored` applies each event once.
    #[error(
        "the store's position {stored} is behind what this processor applied ({applied}): the store lost writes"
    )]
    Behind { stored: i64, applied: i64 },
    /// The store's fencing generation is `stored`, below the `claimed` one this processor's
    /// claim set (0: none at all): the store lost the claim's write (a failover to a replica
    /// that had not received it, a Redis restarted empty). Any later claim would have moved it
    /// to `claimed` or past it, so nobody claimed the partition since: it is still ours, to
    /// claim again. Claiming a version that no longer serves gives nothing, as ever.
    #[error(
        "the store's generation {stored} is below this processor's claim ({claimed}): the store lost the claim"
    )]
    ClaimLost { stored: i64, claimed: i64 },
}

impl From<sqlx::Error> for SinkError {
    fn from(error: sqlx::Error) -> Self {
        if sqlx_rejects_data(&error) {
            SinkError::Rejected(std::sync::Arc::new(error))
        } else {
            SinkError::Transient(error.to_string())
        }
    }
}

/// Outside the apply script a Redis error says nothing about the events: transient. The apply
/// script's errors are classified where it is invoked.
impl From<redis::RedisError> for SinkError {
    fn from(error: redis::RedisError) -> Self {
        SinkError::Transient(error.to_string())
    }
}

/// The version and position bookkeeping's failures, classified as the store's own are.
impl From<VersionsError> for SinkError {
    fn from(error: VersionsError) -> Self {
        match error {
            VersionsError::Postgres(error) => error.into(),
            VersionsError::Redis(error) => error.into(),
            VersionsError::Conflict(reason) => SinkError::Transient(reason),
            corrupt @ VersionsError::Corrupt { .. } => SinkError::Transient(corrupt.to_string()),
        }
    }
}

impl From<PositionsError> for SinkError {
    fn from(error: PositionsError) -> Self {
        match error {
            PositionsError::Postgres(error) => error.into(),
            PositionsError::Redis(error) => error.into(),
        }
    }
}

impl From<super::ApplyError> for SinkError {
    fn from(error: super::ApplyError) -> Self {
        match error {
            super::ApplyError::Transient(reason) => SinkError::Transient(reason),
            super::ApplyError::Poison { event_id, reason } => {
                SinkError::Poison { event_id, reason }
            }
            super::ApplyError::Rejected(source) => SinkError::Rejected(source),
        }
    }
}

/// One partition's batch, for [`Sink::apply_together`]: as the arguments of
/// [`Sink::apply_parking`].
#[derive(Debug, Clone, Copy)]
pub struct PartitionBatch<'a> {
    pub claim: Claim,
    pub records: &'a [Record],
    pub dead: &'a [Parked],
    pub next_offset: i64,
}

/// What a batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Applied {
    /// Events whose effects were written (the rest were duplicates, already applied or parked).
    pub events: usize,
    /// Events parked: the batch's dead letters and the events of parked users (see `parking`).
    pub parked: usize,
}

pub trait Sink: Send + Sync + 'static {
    /// The projection's name.
    fn name(&self) -> &'static str;

    /// The projection version this sink writes.
    fn version(&self) -> u32;

    /// `<name>.v<version>`: names the consumer group, the metrics and dead letters.
    fn id(&self) -> String {
        naming::processor_id(self.name(), self.version())
    }

    /// Creates what the sink needs (tables, positions), idempotently.
    fn migrate(&self) -> impl Future<Output = Result<(), SinkError>> + Send;

    /// The most events a batch should hold, if the store wants a bound (a rebuild's bulk batches
    /// are otherwise large).
    fn max_batch(&self) -> Option<usize> {
        None
    }

    /// Whether the version serves (the default) or is being rebuilt. While rebuilt, nobody
    /// reads it: commits need not wait for durability (a crash may lose the last ones, positions
    /// included, and those batches are simply applied again), and side effects (derived events)
    /// are suppressed.
    fn set_serving(&self, _serving: bool) {}

    /// Where a rebuild asked to start at `from_ms` really starts, or why it cannot (see
    /// [`PgProjection::point_in_time_start`](super::PgProjection::point_in_time_start)).
    fn point_in_time_start(&self, _from_ms: i64) -> Result<i64, &'static str> {
        Err(NO_POINT_IN_TIME)
    }

    /// Copies what version `old` holds from before `from_ms` (point-in-time rebuilds only).
    fn seed_before(
        &self,
        _old: u32,
        _from_ms: i64,
    ) -> impl Future<Output = Result<(), SinkError>> + Send {
        async { Ok(()) }
    }

    /// Takes ownership of `partitions` of `topic`: bumps each generation, returns where to resume.
    fn claim(
        &self,
        topic: &str,
        partitions: &[i32],
    ) -> impl Future<Output = Result<Vec<Claim>, SinkError>> + Send;

    /// The positions the store holds on `topic`, by partition (a partition never applied is
    /// absent). The processor compares them with what it applied, to find a store that lost
    /// writes while a partition was quiet ([`SinkError::Behind`] finds it on the next batch).
    fn stored_positions(
        &self,
        topic: &str,
    ) -> impl Future<Output = Result<Positions, SinkError>> + Send;

    /// Applies `records` (one partition, ascending offsets) and moves the position to
    /// `next_offset`, atomically, if `generation` still owns the partition. Records at or below
    /// the stored position, or with an event id applied before, change nothing.
    fn apply(
        &self,
        topic: &str,
        claim: Claim,
        records: &[Record],
        next_offset: i64,
    ) -> impl Future<Output = Result<Applied, SinkError>> + Send;

    /// [`apply`](Self::apply), and parks `dead` (the batch's dead-lettered events, each the head
    /// of its user's queue) and the events of parked users instead of applying them, in the
    /// same transaction (see `parking`). Sinks without parking (test doubles) apply as `apply`.
    fn apply_parking(
        &self,
        topic: &str,
        claim: Claim,
        records: &[Record],
        dead: &[Parked],
        next_offset: i64,
    ) -> impl Future<Output = Result<Applied, SinkError>> + Send {
        let _ = dead;
        self.apply(topic, claim, records, next_offset)
    }

    /// Applies the batches of several partitions (one each) in one transaction, all or nothing,
    /// each as [`apply_parking`](Self::apply_parking) would: a failure of any (fencing, a
    /// rejection, an outage) writes nothing, and the runtime then applies each batch on its own
    /// with the usual retries. Returns what each batch did, in order; `None` when this sink
    /// applies one partition at a time (the default).
    fn apply_together(
        &self,
        topic: &str,
        batches: &[PartitionBatch<'_>],
    ) -> impl Future<Output = Option<Result<Vec<Applied>, SinkError>>> + Send {
        let _ = (topic, batches);
        async { None }
    }

    /// Every event this version holds parked, by user, each user's in order.
    fn parked(&self) -> impl Future<Output = Result<Vec<Parked>, SinkError>> + Send {
        async { Ok(Vec::new()) }
    }

    /// Releases `user`'s parked events (see [`Release`] and `parking`).
    fn release(
        &self,
        topic: &str,
        user: i64,
        how: Release,
    ) -> impl Future<Output = Result<Released, SinkError>> + Send {
        let _ = (topic, user, how);
        async { Ok(Released::default()) }
    }

    /// Periodic housekeeping off the hot path (e.g. forgetting old event ids).
    fn maintain(&self) -> impl Future<Output = Result<(), SinkError>> + Send {
        async { Ok(()) }
    }
}
