//! Rebuilding a projection from the topic into a new version while the current one serves
//! (`surge replay <projection>`), then switching to it with zero read downtime.
//!
//! Guarantee: the new version equals a fresh fold of the topic, and the switch loses or doubles
//! nothing. It is kept like this:
//! - **Writes** go through the projection's own sink, so the rebuild keeps the runtime's
//!   exactly-once rules: each batch's writes and its partition position commit atomically,
//!   duplicates are dropped by event id, poison is dead-lettered. Far behind, batches are large
//!   (`bulk_batch` events in one multi-row statement per table) and their commits do not wait
//!   for the WAL flush: nobody reads the version yet, and a crash loses only whole batches
//!   together with their positions.
//! - **Resuming**: the positions are in the new version's store, so an interrupted rebuild
//!   (killed, crashed) resumes where it stopped when run again (`plan.rs`).
//! - **Never ahead of the serving version**: each partition stops at the serving version's
//!   position until the switch. The switch ([`crate::versions::Switch`]) makes the new version
//!   active only once it has applied at least everything the old one has, and fences the old
//!   one in the same atomic step of the store. So no event is handled by both versions while
//!   serving and none by neither, which is why a rebuild suppresses derived events: the serving
//!   version emitted everything before the switch, the new one emits everything after.
//! - **Hand-over**: after the switch the rebuild keeps the new version at the head, now with
//!   durable commits and side effects, until `surge process` (which follows the switch within a
//!   second) claims each partition, which fences the rebuild's worker for it.
//! - **Dropping the old version** waits `drop_grace` after the switch, so reads that began on it
//!   finish and every query API has moved on; `--keep-old` keeps it.

mod config;
mod pacing;
mod partition;
mod plan;
mod progress;
mod reader;
mod run;

pub use config::ReplayConfig;
pub use progress::{PartitionProgress, Phase, Snapshot};

use std::time::Duration;

use rdkafka::error::KafkaError;
use surge_projections::positions::PositionsError;
use surge_projections::versions::VersionsError;
use tokio::sync::watch;

use crate::projectors::{self, SinkContext, StartError, UseSink, with_sink};
use crate::runtime::{Sink, SinkError};

/// What to rebuild.
#[derive(Debug, Clone)]
pub struct Request {
    pub projection: String,
    /// Start at this instant (unix ms) instead of offset zero, where the projection allows it.
    pub from_ms: Option<i64>,
    /// Keep the old version's tables or keys after the switch (state `retired`).
    pub keep_old: bool,
    /// Discard an interrupted rebuild instead of resuming it.
    pub restart: bool,
}

/// What a rebuild did.
#[derive(Debug, Clone)]
pub struct Report {
    pub projection: &'static str,
    /// The version built, now active.
    pub version: u32,
    /// The version it replaced.
    pub replaced: u32,
    /// An interrupted rebuild was resumed.
    pub resumed: bool,
    /// Where a point-in-time rebuild started (unix ms).
    pub started_at_ms: Option<i64>,
    /// Offsets this run moved past: its events, plus the transaction markers between them.
    pub applied: i64,
    /// Time from start to the switch.
    pub until_switch: Duration,
    pub elapsed: Duration,
    /// Whether the old version was dropped (not with `--keep-old`).
    pub dropped_old: bool,
    /// Partitions no serving processor took over within the hand-over timeout.
    pub not_handed_over: Vec<i32>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Start(#[from] StartError),
    #[error(
        "a rebuild of {0} is already running (another `surge replay {0}`); wait for it to finish or stop it first"
    )]
    AlreadyRunning(String),
    #[error("{projection} cannot be rebuilt from a point in time: {reason}")]
    PointInTime {
        projection: String,
        reason: &'static str,
    },
    #[error("{0}")]
    Mismatch(String),
    #[error("topic {0} does not exist on the broker")]
    NoTopic(String),
    #[error(
        "the broker has deleted the first events of {topic} (partition, first offset left: {partitions:?}), so a rebuild from offset zero would silently miss them; Surge creates its topics with retention.ms=-1 (keep forever): set that on this topic and restore the deleted events before rebuilding"
    )]
    Truncated {
        topic: String,
        partitions: Vec<(i32, i64)>,
    },
    #[error(
        "partition {0} of the version being rebuilt was claimed by another processor before the switch; nothing but this rebuild may write it"
    )]
    FencedWhileBuilding(i32),
    #[error("PostgreSQL failed: {0}")]
    Postgres(#[from] sqlx::Error),
    #[error(transparent)]
    Versions(#[from] VersionsError),
    #[error(transparent)]
    Store(#[from] SinkError),
    #[error("Kafka failed: {0}")]
    Kafka(#[from] KafkaError),
    #[error(transparent)]
    Positions(#[from] PositionsError),
    #[error("a partition worker failed: {0}")]
    Worker(String),
}

/// Rebuilds `request.projection` into a new version, switches to it and drops the old one.
/// Progress is published on `progress` a few times a second.
pub async fn run(
    request: Request,
    context: &SinkContext,
    config: ReplayConfig,
    progress: watch::Sender<Option<Snapshot>>,
) -> Result<Report, ReplayError> {
    let entry = projectors::entry(&request.projection)?;
    let stores = &context.stores;
    let _lock = plan::lock(stores, entry.name()).await?;
    let start_ms = match request.from_ms {
        None => None,
        Some(from) => Some(
            with_sink(entry.name(), 1, context, PointInTimeStart(from))
                .await?
                .map_err(|reason| ReplayError::PointInTime {
                    projection: entry.name().to_owned(),
                    reason,
                })?,
        ),
    };
    let partitions = blocking(&config, reader::partitions).await?;
    if start_ms.is_none() {
        refuse_truncated(&config, &partitions).await?;
    }
    let plan = plan::plan(stores, entry, start_ms, request.restart).await?;
    tracing::info!(
        projection = entry.name(),
        version = plan.building.version,
        serving = plan.serving.version,
        resumed = plan.resumed,
        "Rebuilding."
    );
    let rebuild = run::Rebuild {
        entry,
        partitions,
        context: context.clone(),
        config,
        plan,
        start_ms,
        keep_old: request.keep_old,
        progress,
    };
    with_sink(
        entry.name(),
        rebuild.plan.building.version,
        context,
        rebuild,
    )
    .await?
}

/// A rebuild from offset zero needs every event since the first: refuses, before anything is
/// written, if the broker's retention deleted some.
async fn refuse_truncated(config: &ReplayConfig, partitions: &[i32]) -> Result<(), ReplayError> {
    let partitions = partitions.to_vec();
    let first = blocking(config, move |config| {
        reader::first_offsets(config, &partitions)
    })
    .await?;
    let truncated = reader::truncated(&first);
    if truncated.is_empty() {
        return Ok(());
    }
    Err(ReplayError::Truncated {
        topic: config.topic.clone(),
        partitions: truncated,
    })
}

/// Runs a blocking broker call off the async runtime.
async fn blocking<T: Send + 'static>(
    config: &ReplayConfig,
    call: impl FnOnce(&ReplayConfig) -> Result<T, ReplayError> + Send + 'static,
) -> Result<T, ReplayError> {
    let config = config.clone();
    tokio::task::spawn_blocking(move || call(&config))
        .await
        .map_err(|e| ReplayError::Worker(e.to_string()))?
}

/// Asks a projection where a rebuild from an instant would start.
struct PointInTimeStart(i64);

impl UseSink for PointInTimeStart {
    type Output = Result<i64, &'static str>;

    async fn use_sink<S: Sink>(self, sink: S) -> Self::Output {
        sink.point_in_time_start(self.0)
    }
}
