//! The `activity` projector, for analytics: events per minute by type, and each day's active
//! users, from which daily, weekly and monthly active users are counted. It runs in its own
//! consumer group like every projection, so it never slows the serving projections.
//!
//! Delivery guarantee: exactly-once effect, kept by the runtime's `PgSink` (the counts and the
//! partition position commit in one transaction; fencing; event-id deduplication), which the
//! per-minute counters rely on. Events older than the retention age are not recorded: retention
//! would drop them on its next pass anyway.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::PgPool;
use surge_projections::ProjectionId;
use surge_projections::activity::{self, ActivityBatch, ActivityStore, MS_PER_DAY};
use surge_projections::naming::table_prefix;

use crate::decisions;
use crate::projectors::{Projector, SinkContext};
use crate::runtime::{ApplyError, PgProjection, PgSink, Record};

/// How long activity is kept unless configured otherwise.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(90 * 86_400);

/// The activity projection, writing the tables of one version.
pub struct Activity {
    version: u32,
    retention: Duration,
    store: ActivityStore,
}

impl Activity {
    pub fn new(version: u32, retention: Duration) -> Self {
        Activity {
            version,
            retention,
            store: ActivityStore::new(&table_prefix(Self::NAME, version)),
        }
    }

    /// The first day retention keeps, as of now (days since 1970-01-01).
    fn first_kept_day(&self) -> i32 {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let age_ms = i64::try_from(self.retention.as_millis()).unwrap_or(i64::MAX);
        activity::day_of(now_ms.saturating_sub(age_ms))
    }
}

impl Projector for Activity {
    type Sink = PgSink<Self>;

    fn sink(version: u32, context: &SinkContext) -> Self::Sink {
        context.pg_sink(Self::new(version, context.stores.activity_retention))
    }
}

impl PgProjection for Activity {
    const ID: ProjectionId = ProjectionId::Activity;

    fn version(&self) -> u32 {
        self.version
    }

    async fn apply(
        &self,
        tx: &mut sqlx::PgConnection,
        records: &[Record],
    ) -> Result<(), ApplyError> {
        let first_kept_ms = i64::from(self.first_kept_day()) * MS_PER_DAY;
        let mut batch = ActivityBatch::default();
        for record in records {
            let envelope = &record.event.envelope;
            if envelope.recorded_at >= first_kept_ms
                && decisions::counts_as_active(&record.event.payload)
            {
                batch.add(
                    envelope.recorded_at,
                    record.event.payload.event_type().name(),
                    envelope.user_id,
                );
            }
        }
        self.store.record(tx, &batch).await?;
        Ok(())
    }

    /// Activity is kept by UTC day, so a rebuild starts at the beginning of the day holding
    /// `from_ms`: the old version's days before it are copied whole, and events recorded from
    /// that instant on are replayed.
    fn point_in_time_start(&self, from_ms: i64) -> Result<i64, &'static str> {
        Ok(i64::from(activity::day_of(from_ms)) * MS_PER_DAY)
    }

    async fn seed_before(
        &self,
        tx: &mut sqlx::PgConnection,
        old: u32,
        from_ms: i64,
    ) -> Result<(), ApplyError> {
        let old = ActivityStore::new(&table_prefix(Self::NAME, old));
        let first_day = activity::day_of(from_ms);
        let copied = self.store.copy_before(tx, &old, first_day).await?;
        tracing::info!(
            copied,
            first_day,
            "Copied the old version's activity before the rebuild's start."
        );
        Ok(())
    }

    async fn maintain(&self, pool: &PgPool) -> Result<(), ApplyError> {
        let dropped = self.store.drop_before(pool, self.first_kept_day()).await?;
        if !dropped.is_empty() {
            tracing::info!(?dropped, "Dropped activity older than the retention age");
        }
        Ok(())
    }
}
