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
use surge_projections::activity::{self, ActivityBatch, ActivityStore, MS_PER_DAY};

use crate::runtime::{ApplyError, PgProjection, Record};

/// How long activity is kept unless configured otherwise.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(90 * 86_400);

/// The activity projection, version 1.
pub struct Activity {
    retention: Duration,
    store: ActivityStore,
}

impl Activity {
    pub fn new(retention: Duration) -> Self {
        Activity {
            retention,
            store: ActivityStore::new(&Self::table_prefix()),
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

impl PgProjection for Activity {
    const NAME: &'static str = "activity";
    const VERSION: u32 = 1;

    fn migrations() -> &'static [&'static str] {
        activity::MIGRATIONS
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
            if envelope.recorded_at >= first_kept_ms {
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

    async fn maintain(&self, pool: &PgPool) -> Result<(), ApplyError> {
        let dropped = self.store.drop_before(pool, self.first_kept_day()).await?;
        if !dropped.is_empty() {
            tracing::info!(?dropped, "Dropped activity older than the retention age");
        }
        Ok(())
    }
}
