//! The `activity` projection's storage: events per minute by type, and which users were active
//! on which day (daily, weekly and monthly active users are counts over it). Times are the
//! server's `recorded_at`, which a client cannot set.
//!
//! Two layouts, chosen when the tables are created by whether the database has the
//! `timescaledb` extension:
//! - TimescaleDB (`sql/timescale.sql`): a hypertable of every event's (time, type, user), chunked
//!   by day, and two continuous aggregates that are the rollups; retention drops chunks. Its
//!   functions are called in the extension's own schema ([`crate::timescaledb`]).
//! - Plain PostgreSQL (`sql/partitioned.sql`): the two rollups as tables range-partitioned by
//!   day, kept by the projector itself; retention drops whole day partitions, never rows.
//!
//! The reads are the same SQL for both. The projector that fills it lives with the processors
//! (`surge_processors::projectors::activity`).

pub(crate) mod http;
mod partitions;
mod store;

pub use partitions::{day_of, partition_name};
pub use store::{ActivityStore, Layout, MinuteCount};

use std::collections::{BTreeMap, BTreeSet};

/// The plain-PostgreSQL layout's idempotent DDL, with `{t}` for the table prefix.
pub const MIGRATIONS: &[&str] = &[include_str!("sql/partitioned.sql")];

/// The TimescaleDB layout's idempotent DDL, with `{t}` for the table prefix and
/// `{timescaledb}` for the extension's schema.
pub const TIMESCALE_MIGRATIONS: &[&str] = &[include_str!("sql/timescale.sql")];

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
pub(crate) mod tests {
    use super::*;
    use crate::table_prefix::render;
    use crate::timescaledb::{PLACEHOLDER, TimescaleDb};

    /// TimescaleDB's API functions (the ones Surge calls, and the neighbours a change would
    /// likely reach for).
    const TIMESCALEDB_FUNCTIONS: &[&str] = &[
        "create_hypertable",
        "set_chunk_time_interval",
        "time_bucket",
        "add_continuous_aggregate_policy",
        "remove_continuous_aggregate_policy",
        "refresh_continuous_aggregate",
        "add_retention_policy",
        "drop_chunks",
        "show_chunks",
        "add_compression_policy",
    ];

    /// Fails unless every call of a TimescaleDB function in `sql` is written `<schema>.f(`, and
    /// no placeholder is left.
    pub(crate) fn assert_calls_qualified(sql: &str, schema: &str) {
        assert!(!sql.contains(PLACEHOLDER), "placeholder left in {sql}");
        for function in TIMESCALEDB_FUNCTIONS {
            let call = format!("{function}(");
            for (at, _) in sql.match_indices(&call) {
                assert!(
                    sql[..at].ends_with(&format!("{schema}.")),
                    "{function} is called outside {schema} at byte {at} of:\n{sql}"
                );
            }
        }
    }

    #[test]
    fn the_timescale_layout_calls_the_extension_in_its_own_schema() {
        let timescaledb = TimescaleDb::in_schema("ts_ext");
        let ddl: String = TIMESCALE_MIGRATIONS
            .iter()
            .map(|d| timescaledb.render(&render(d, "activity_v3")))
            .collect();
        assert_calls_qualified(&ddl, r#""ts_ext""#);
        for call in [
            r#""ts_ext".create_hypertable('activity_v3_events', 'at'"#,
            r#""ts_ext".time_bucket(interval '1 minute', at)"#,
            r#""ts_ext".time_bucket(interval '1 day', at)"#,
            r#""ts_ext".add_continuous_aggregate_policy('activity_v3_per_minute'"#,
            r#""ts_ext".add_continuous_aggregate_policy('activity_v3_daily_users'"#,
        ] {
            assert!(ddl.contains(call), "{call} missing from:\n{ddl}");
        }
    }

    #[test]
    fn an_unqualified_call_is_caught() {
        let caught = std::panic::catch_unwind(|| {
            assert_calls_qualified(
                r#"SELECT "x".time_bucket(a), drop_chunks('t', now())"#,
                r#""x""#,
            )
        });
        assert!(caught.is_err());
    }

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
