//! Writes and reads of the activity tables, with the SQL rendered once for a version's prefix.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

use serde::Serialize;
use sqlx::{PgConnection, PgPool};

use super::ActivityBatch;
use super::partitions::{create_day, partition_day};
use crate::catalog::{ProjectionId, VersionedStore};
use crate::table_prefix::render;
use crate::timescaledb::TimescaleDb;

/// Which of the two layouts the tables were created in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Rollup tables range-partitioned by day, kept by the projector.
    Partitioned,
    /// A hypertable of events and continuous aggregates.
    Timescale,
}

/// Events of one type in one minute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct MinuteCount {
    /// Unix seconds of the minute's start.
    pub minute: i64,
    pub event_type: String,
    pub events: i64,
}

pub struct ActivityStore {
    prefix: String,
    count_minutes: String,
    mark_active: String,
    insert_events: String,
    per_minute: String,
    daily_active: String,
    distinct_active: String,
    layout: OnceLock<Layout>,
    /// Days whose partitions are known to exist; cleared whenever a write fails, since the
    /// transaction that created one may have rolled back.
    known_days: Mutex<HashSet<i32>>,
}

impl VersionedStore for ActivityStore {
    const ID: ProjectionId = ProjectionId::Activity;

    fn at(table_prefix: &str) -> Self {
        ActivityStore::new(table_prefix)
    }
}

impl ActivityStore {
    pub fn new(prefix: &str) -> Self {
        let sql = |text: &str| render(text, prefix);
        ActivityStore {
            prefix: prefix.to_owned(),
            count_minutes: sql(include_str!("sql/count_minutes.sql")),
            mark_active: sql(include_str!("sql/mark_active.sql")),
            insert_events: sql(include_str!("sql/insert_events.sql")),
            per_minute: sql(include_str!("sql/per_minute.sql")),
            daily_active: sql(include_str!("sql/daily_active.sql")),
            distinct_active: sql(include_str!("sql/distinct_active.sql")),
            layout: OnceLock::new(),
            known_days: Mutex::new(HashSet::new()),
        }
    }

    /// The layout the tables were created in: TimescaleDB's has an events hypertable.
    pub async fn layout(&self, conn: &mut PgConnection) -> Result<Layout, sqlx::Error> {
        if let Some(layout) = self.layout.get() {
            return Ok(*layout);
        }
        let events: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text")
            .bind(format!("{}_events", self.prefix))
            .fetch_one(conn)
            .await?;
        let layout = if events.is_some() {
            Layout::Timescale
        } else {
            Layout::Partitioned
        };
        Ok(*self.layout.get_or_init(|| layout))
    }

    /// Writes `batch` inside the caller's transaction.
    pub async fn record(
        &self,
        conn: &mut PgConnection,
        batch: &ActivityBatch,
    ) -> Result<(), sqlx::Error> {
        if batch.is_empty() {
            return Ok(());
        }
        let written = match self.layout(&mut *conn).await? {
            Layout::Timescale => self.insert_events(conn, batch).await,
            Layout::Partitioned => self.update_rollups(conn, batch).await,
        };
        if written.is_err() {
            self.known_days.lock().expect("not poisoned").clear();
        }
        written
    }

    async fn insert_events(
        &self,
        conn: &mut PgConnection,
        batch: &ActivityBatch,
    ) -> Result<(), sqlx::Error> {
        let (at, (types, users)): (Vec<i64>, (Vec<&str>, Vec<i64>)) = batch
            .events
            .iter()
            .map(|(at, ty, user)| (*at, (ty.as_str(), *user)))
            .unzip();
        sqlx::query(&self.insert_events)
            .bind(at)
            .bind(types)
            .bind(users)
            .execute(conn)
            .await?;
        Ok(())
    }

    async fn update_rollups(
        &self,
        conn: &mut PgConnection,
        batch: &ActivityBatch,
    ) -> Result<(), sqlx::Error> {
        self.ensure_days(&mut *conn, batch).await?;
        let (minutes, (types, counts)): (Vec<i64>, (Vec<&str>, Vec<i64>)) = batch
            .minutes
            .iter()
            .map(|((minute, ty), n)| (*minute, (ty.as_str(), *n)))
            .unzip();
        let counted = sqlx::query(&self.count_minutes)
            .bind(minutes)
            .bind(types)
            .bind(counts);
        execute(&mut *conn, counted).await?;
        let (days, users): (Vec<i32>, Vec<i64>) = batch.active.iter().copied().unzip();
        let marked = sqlx::query(&self.mark_active).bind(days).bind(users);
        execute(conn, marked).await
    }

    /// Creates the partitions of the batch's days that are not known to exist. Creation takes a
    /// transaction-scoped lock so two processors creating the same day never collide.
    async fn ensure_days(
        &self,
        conn: &mut PgConnection,
        batch: &ActivityBatch,
    ) -> Result<(), sqlx::Error> {
        let missing: Vec<i32> = {
            let known = self.known_days.lock().expect("not poisoned");
            batch
                .days()
                .into_iter()
                .filter(|day| !known.contains(day))
                .collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        let lock = sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(format!("{}_partitions", self.prefix));
        execute(&mut *conn, lock).await?;
        for day in &missing {
            let ddl = create_day(&self.prefix, *day).ok_or_else(|| {
                sqlx::Error::Protocol(format!("day {day} is outside the calendar"))
            })?;
            execute_script(&mut *conn, &ddl).await?;
        }
        self.known_days
            .lock()
            .expect("not poisoned")
            .extend(missing);
        Ok(())
    }

    /// Drops data of days before `first_kept_day` (days since 1970-01-01): whole partitions in
    /// the plain layout, chunks in TimescaleDB's. Returns what was dropped, for the log.
    pub async fn drop_before(
        &self,
        pool: &PgPool,
        first_kept_day: i32,
    ) -> Result<Vec<String>, sqlx::Error> {
        let (layout, timescaledb) = {
            let mut conn = pool.acquire().await?;
            let layout = self.layout(&mut conn).await?;
            (layout, TimescaleDb::find(&mut conn).await?)
        };
        match layout {
            Layout::Timescale => {
                let Some(timescaledb) = timescaledb else {
                    return Err(sqlx::Error::Protocol(format!(
                        "{}_events is a TimescaleDB hypertable but the timescaledb extension is \
                         not installed",
                        self.prefix
                    )));
                };
                let drop_chunks = drop_chunks_sql(&timescaledb);
                let mut dropped = Vec::new();
                for relation in ["events", "per_minute", "daily_users"] {
                    let chunks: Vec<String> = sqlx::query_scalar(&drop_chunks)
                        .bind(format!("{}_{relation}", self.prefix))
                        .bind(first_kept_day)
                        .fetch_all(pool)
                        .await?;
                    dropped.extend(chunks);
                }
                Ok(dropped)
            }
            Layout::Partitioned => {
                let tables = [
                    format!("{}_per_minute", self.prefix),
                    format!("{}_daily_users", self.prefix),
                ];
                let partitions: Vec<String> =
                    sqlx::query_scalar(include_str!("sql/partitions.sql"))
                        .bind(&tables[..])
                        .fetch_all(pool)
                        .await?;
                let old: Vec<(String, i32)> = partitions
                    .into_iter()
                    .filter_map(|name| {
                        let day = tables.iter().find_map(|t| partition_day(t, &name))?;
                        (day < first_kept_day).then_some((name, day))
                    })
                    .collect();
                for (name, _) in &old {
                    sqlx::raw_sql(&format!("DROP TABLE IF EXISTS {name}"))
                        .execute(pool)
                        .await?;
                }
                let mut known = self.known_days.lock().expect("not poisoned");
                for (_, day) in &old {
                    known.remove(day);
                }
                Ok(old.into_iter().map(|(name, _)| name).collect())
            }
        }
    }

    /// Copies what `old` (another version's store) holds from before `first_day` into these
    /// (empty) tables, inside the caller's transaction: for a rebuild that replays only the
    /// events from `first_day` on. Returns the rows copied.
    pub async fn copy_before(
        &self,
        conn: &mut PgConnection,
        old: &ActivityStore,
        first_day: i32,
    ) -> Result<u64, sqlx::Error> {
        let start = format!("(date '1970-01-01' + {first_day})::timestamptz");
        let copy = |table: &str, column: &str| {
            format!(
                "INSERT INTO {new}_{table} SELECT * FROM {old}_{table} WHERE {column} < {start} \
                 ON CONFLICT DO NOTHING",
                new = self.prefix,
                old = old.prefix
            )
        };
        if self.layout(&mut *conn).await? == Layout::Timescale {
            let copied = sqlx::query(&copy("events", "at")).execute(conn).await?;
            return Ok(copied.rows_affected());
        }
        let tables = [
            format!("{}_per_minute", old.prefix),
            format!("{}_daily_users", old.prefix),
        ];
        let partitions: Vec<String> = sqlx::query_scalar(include_str!("sql/partitions.sql"))
            .bind(&tables[..])
            .fetch_all(&mut *conn)
            .await?;
        let mut days: Vec<i32> = partitions
            .iter()
            .filter_map(|name| tables.iter().find_map(|t| partition_day(t, name)))
            .filter(|day| *day < first_day)
            .collect();
        days.sort_unstable();
        days.dedup();
        let batch = ActivityBatch {
            active: days.iter().map(|day| (*day, 0)).collect(),
            ..ActivityBatch::default()
        };
        self.ensure_days(&mut *conn, &batch).await?;
        let minutes = sqlx::query(&copy("per_minute", "minute"))
            .execute(&mut *conn)
            .await?;
        let users = sqlx::query(&copy("daily_users", "day"))
            .execute(conn)
            .await?;
        Ok(minutes.rows_affected() + users.rows_affected())
    }

    /// Events per minute by type in `[from, to)` (unix seconds), ascending.
    pub async fn per_minute(
        &self,
        pool: &PgPool,
        from_unix_s: i64,
        to_unix_s: i64,
    ) -> Result<Vec<MinuteCount>, sqlx::Error> {
        sqlx::query_as(&self.per_minute)
            .bind(from_unix_s)
            .bind(to_unix_s)
            .fetch_all(pool)
            .await
    }

    /// Active users of each day in `[from_day, to_day)` that had any, ascending.
    pub async fn daily_active(
        &self,
        pool: &PgPool,
        from_day: i32,
        to_day: i32,
    ) -> Result<Vec<(i32, i64)>, sqlx::Error> {
        sqlx::query_as(&self.daily_active)
            .bind(from_day)
            .bind(to_day)
            .fetch_all(pool)
            .await
    }

    /// Distinct users active on any day in `[from_day, to_day)`.
    pub async fn distinct_active(
        &self,
        pool: &PgPool,
        from_day: i32,
        to_day: i32,
    ) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar(&self.distinct_active)
            .bind(from_day)
            .bind(to_day)
            .fetch_one(pool)
            .await
    }
}

/// `drop_chunks` of a relation (`$1`) older than a day (`$2`, days since 1970-01-01), called in
/// the extension's schema.
fn drop_chunks_sql(timescaledb: &TimescaleDb) -> String {
    timescaledb.render(include_str!("sql/drop_chunks.sql"))
}

/// One statement on the caller's connection. A plain function, so the reborrow of the
/// connection happens at the call and not inside a generic `Executor` bound (which trips the
/// `Send` check of the projector's future).
async fn execute(
    conn: &mut PgConnection,
    query: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
) -> Result<(), sqlx::Error> {
    query.execute(conn).await.map(drop)
}

/// Several statements in one round trip, on the caller's connection.
async fn execute_script(conn: &mut PgConnection, sql: &str) -> Result<(), sqlx::Error> {
    sqlx::Executor::execute(conn, sql).await.map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activity::tests::assert_calls_qualified;

    #[test]
    fn drop_chunks_is_called_in_the_extensions_schema() {
        let sql = drop_chunks_sql(&TimescaleDb::in_schema("ts ext"));
        assert_calls_qualified(&sql, r#""ts ext""#);
        assert!(
            sql.contains(r#""ts ext".drop_chunks($1::regclass"#),
            "{sql}"
        );
    }
}
