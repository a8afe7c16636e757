//! The `activity` projection's storage: events per minute by type, and which users were active
//! on which day (daily, weekly and monthly active users are counts over it). Times are the
//! server's `recorded_at`, which a client cannot set.
//!
//! Two layouts, chosen when the tables are created (`sql/tables.sql`):
//! - TimescaleDB: a hypertable of every event's (time, type, user), chunked by day, and two
//!   continuous aggregates that are the rollups; retention drops chunks.
//! - Plain PostgreSQL: the two rollups as tables range-partitioned by day, kept by the projector
//!   itself; retention drops whole day partitions, never rows.
//!
//! The reads are the same SQL for both. The projector that fills it lives with the processors
//! (`surge_processors::projectors::activity`).

mod partitions;
mod store;

pub use partitions::{day_of, partition_name};
pub use store::{ActivityStore, Layout, MinuteCount};

use std::collections::{BTreeMap, BTreeSet};

/// `CREATE TABLE IF NOT EXISTS` statements, with `{t}` for the table prefix.
pub const MIGRATIONS: &[&str] = &[include_str!("sql/tables.sql")];

pub const MS_PER_DAY: i64 = 86_400_000;

/// One batch of events, folded into what the store writes: per-minute counts, active
/// (day, user) pairs, and, for the TimescaleDB layout, the events themselves.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ActivityBatch {
    /// (unix seconds of the minute, event type) → events.
    pub minutes: BTreeMap<(i64, String), i64>,
    /// (days since 1970-01-01, user id).
    pub active: BTreeSet<(i32, i64)>,
    /// (recorded_at in unix ms, event type, user id).
    pub events: Vec<(i64, String, i64)>,
}

impl ActivityBatch {
    pub fn add(&mut self, recorded_at_ms: i64, event_type: &str, user_id: i64) {
        let minute = recorded_at_ms.div_euclid(60_000) * 60;
        *self
            .minutes
            .entry((minute, event_type.to_owned()))
            .or_default() += 1;
        self.active.insert((day_of(recorded_at_ms), user_id));
        self.events
            .push((recorded_at_ms, event_type.to_owned(), user_id));
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The days the batch touches, ascending.
    pub fn days(&self) -> BTreeSet<i32> {
        self.active.iter().map(|(day, _)| *day).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_counts_minutes_by_type_and_users_once_per_day() {
        let mut batch = ActivityBatch::default();
        let day = 20_000 * MS_PER_DAY;
        batch.add(day + 5_000, "TapsSubmitted", 1);
        batch.add(day + 59_999, "TapsSubmitted", 1);
        batch.add(day + 60_000, "TapsSubmitted", 2);
        batch.add(day + 61_000, "SessionStarted", 2);
        batch.add(day - 1, "TapsSubmitted", 1);
        let minute0 = 20_000 * 86_400;
        assert_eq!(batch.minutes[&(minute0, "TapsSubmitted".into())], 2);
        assert_eq!(batch.minutes[&(minute0 + 60, "TapsSubmitted".into())], 1);
        assert_eq!(batch.minutes[&(minute0 + 60, "SessionStarted".into())], 1);
        assert_eq!(batch.minutes[&(minute0 - 60, "TapsSubmitted".into())], 1);
        let active: Vec<_> = batch.active.iter().copied().collect();
        assert_eq!(active, vec![(19_999, 1), (20_000, 1), (20_000, 2)]);
        assert_eq!(
            batch.days().into_iter().collect::<Vec<_>>(),
            vec![19_999, 20_000]
        );
    }
}
