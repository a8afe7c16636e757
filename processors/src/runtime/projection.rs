//! What a projection implements. The runtime owns everything about delivery (positions, fencing,
//! deduplication, batching, retries, dead letters); a projection only says what an event does to
//! its store.

use std::future::Future;

use surge_projections::ProjectionId;
use surge_schemas::Event;
use uuid::Uuid;

/// One decoded event as the runtime hands it to projections.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub event: Event,
}

/// Why a projection could not apply an event.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApplyError {
    /// The store failed (connection lost, timeout): the runtime retries the batch with backoff,
    /// without skipping anything.
    #[error("store failure: {0}")]
    Transient(String),
    /// This event can never be applied: the runtime dead-letters it and goes on with the rest.
    #[error("event {event_id} rejected: {reason}")]
    Poison { event_id: Uuid, reason: String },
    /// The store refused the data (SQLSTATE class 22 or 23): some event of the batch can never
    /// be applied. The runtime finds which one by applying the batch event by event.
    #[error("the store rejected the data: {0}")]
    Rejected(#[source] super::rejections::Rejection),
}

/// Classified by cause: a data or integrity error is a rejection, anything else transient.
impl From<sqlx::Error> for ApplyError {
    fn from(error: sqlx::Error) -> Self {
        if super::rejections::sqlx_rejects_data(&error) {
            ApplyError::Rejected(std::sync::Arc::new(error))
        } else {
            ApplyError::Transient(error.to_string())
        }
    }
}

/// A projection kept in PostgreSQL.
///
/// A value of it writes the tables of one version (`<name>_v<version>_*`): the version that
/// serves, or the next one `surge replay` builds beside it. Those tables (their DDL) and the
/// revision are the catalog's, in `surge_projections::migrations`, so the read side can create
/// them without linking the processors.
///
/// The runtime opens one transaction per partition batch, checks the fencing generation, drops
/// events already applied (offset below the stored position, or an event id seen before), calls
/// [`PgProjection::apply`] with what is left, moves the position, and commits. So `apply` sees
/// each event once, in partition order, and must not commit or roll back itself.
pub trait PgProjection: Send + Sync + 'static {
    /// Which projection of the catalog this is.
    const ID: ProjectionId;
    /// Its stable name, e.g. `wallets` (from the catalog). With the version it names the tables
    /// (`wallets_v1_ledger`) and the consumer group.
    const NAME: &'static str = Self::ID.name();
    /// The revision of this projection's code, from the catalog's
    /// [`ProjectionId::revision`] (bump it in the catalog).
    const REVISION: u32 = Self::ID.revision();

    /// The version whose tables this value writes.
    fn version(&self) -> u32;

    /// Whether applying `event` again, at any later point, changes nothing: the projection
    /// ignores it, only moves a maximum with it, or keys its writes by the event id (the wallets
    /// ledger). The runtime records the ids of the other events to drop their duplicates (one
    /// index write per event, most of a rebuild's work for some projections), and for these
    /// only drops repeats within a batch.
    fn idempotent(_event: &Event) -> bool {
        false
    }

    /// Applies `records`, none applied before: each partition's in ascending offsets, the
    /// partitions one after another (the runtime applies the batches of every partition a poll
    /// brought in one transaction). A user's events are all in one partition, so each user's
    /// are in order.
    fn apply(
        &self,
        tx: &mut sqlx::PgConnection,
        records: &[Record],
    ) -> impl Future<Output = Result<(), ApplyError>> + Send;

    /// Whether this version serves (the default) or is being rebuilt; a projection with side
    /// effects (a deriver emitting events) suppresses them while it is rebuilt.
    fn set_serving(&self, _serving: bool) {}

    /// Periodic housekeeping of the projection's own tables (e.g. retention), off the hot path.
    fn maintain(
        &self,
        _pool: &sqlx::PgPool,
    ) -> impl Future<Output = Result<(), ApplyError>> + Send {
        async { Ok(()) }
    }

    /// Where a rebuild asked to start at `from_ms` (unix ms) really starts: the projection may
    /// take it back to a boundary it keeps data by. Most projections fold every event since the
    /// first, so they refuse with the reason.
    fn point_in_time_start(&self, _from_ms: i64) -> Result<i64, &'static str> {
        Err(NO_POINT_IN_TIME)
    }

    /// For a point-in-time rebuild starting at `from_ms` (as returned by
    /// [`point_in_time_start`](Self::point_in_time_start)): copies from version `old` what it holds from
    /// before `from_ms` into this version's (empty) tables, inside the rebuild's first
    /// transaction. Only called when `point_in_time_start` accepted the instant.
    fn seed_before(
        &self,
        _tx: &mut sqlx::PgConnection,
        _old: u32,
        _from_ms: i64,
    ) -> impl Future<Output = Result<(), ApplyError>> + Send {
        async { Ok(()) }
    }

    /// The table prefix, `<name>_v<version>`.
    fn table_prefix(&self) -> String {
        surge_projections::naming::table_prefix(Self::NAME, self.version())
    }
}

/// Why most projections refuse a point-in-time rebuild.
pub const NO_POINT_IN_TIME: &str =
    "its state folds every event since the first, so it can only be rebuilt from offset zero";

/// A projection kept in Redis: a pure function from one event to the writes it causes.
///
/// The runtime runs a batch's writes in one Lua script that checks the partition's watermark and
/// fencing generation, skips events whose id it has seen, applies the writes in order and moves
/// the watermark; an event at or below the watermark changes nothing.
pub trait RedisProjection: Send + Sync + 'static {
    /// Which projection of the catalog this is.
    const ID: ProjectionId;
    /// Its stable name (from the catalog).
    const NAME: &'static str = Self::ID.name();
    /// The revision of this projection's code, from the catalog's
    /// [`ProjectionId::revision`] (bump it in the catalog).
    const REVISION: u32 = Self::ID.revision();

    /// Per-user state the fold needs (`()` when none). The runtime loads it for the batch's users
    /// from the hash `<partition's keyspace>:state` (field = user id, JSON value), threads it through the
    /// batch in order, and stores it in the same script as the writes.
    type State: Default
        + Clone
        + PartialEq
        + serde::Serialize
        + serde::de::DeserializeOwned
        + Send
        + Sync;

    /// The writes `record` causes to its user's `state`, updating it, under `keys`: the key
    /// space of the record's partition ([`KeySpace::partition`]), the only keys its batch's
    /// script may touch. Pure and deterministic: a replay from the same state gives the same
    /// writes.
    fn writes(
        &self,
        state: &mut Self::State,
        record: &Record,
        keys: &KeySpace,
    ) -> Result<Vec<RedisWrite>, ApplyError>;
}

/// Names Redis keys of one projection version, `<deployment prefix>:<name>:v<version>:<suffix>`,
/// or of one partition of it ([`KeySpace::partition`]), `<version's base>:{p<partition>}:<suffix>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySpace {
    base: String,
}

impl KeySpace {
    pub fn new(deployment_prefix: &str, name: &str, version: u32) -> Self {
        KeySpace {
            base: surge_projections::naming::keys_base(deployment_prefix, name, version),
        }
    }

    /// The key space of one partition of this version: a hash slot of its own in a Redis
    /// Cluster, holding everything a batch of the partition touches.
    pub fn partition(&self, partition: i32) -> KeySpace {
        KeySpace {
            base: surge_projections::naming::partition_keys_base(&self.base, partition),
        }
    }

    pub fn key(&self, suffix: &str) -> String {
        format!("{}:{suffix}", self.base)
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Whether `key` is in this key space.
    pub fn holds(&self, key: &str) -> bool {
        key.strip_prefix(&self.base)
            .is_some_and(|rest| rest.starts_with(':'))
    }
}

/// The Redis commands a projection may issue. Kept to a small closed set so the apply script
/// stays simple and auditable. Each writes one key, which must be in the key space the fold was
/// handed (the runtime refuses a batch writing elsewhere: in a Redis Cluster its script could
/// not run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisWrite {
    ZIncrBy {
        key: String,
        member: String,
        by: i64,
    },
    LPush {
        key: String,
        value: String,
    },
    LTrim {
        key: String,
        start: i64,
        stop: i64,
    },
    /// Absolute expiry, so replaying the same event sets the same deadline.
    ExpireAt {
        key: String,
        unix_secs: i64,
    },
    HSet {
        key: String,
        field: String,
        value: String,
    },
}

impl RedisWrite {
    /// The key it writes.
    pub fn key(&self) -> &str {
        match self {
            RedisWrite::ZIncrBy { key, .. }
            | RedisWrite::LPush { key, .. }
            | RedisWrite::LTrim { key, .. }
            | RedisWrite::ExpireAt { key, .. }
            | RedisWrite::HSet { key, .. } => key,
        }
    }
}
