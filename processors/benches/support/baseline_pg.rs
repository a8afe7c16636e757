//! PostgreSQL baselines: the rows a projection writes, computed with its own pure fold from the
//! same records, written with a plain binary `COPY ... FROM STDIN (FORMAT binary)`, `batch_max`
//! events per batch (per partition, in offset order, as the processor batches), one
//! transaction per batch, into a logged table with the projection table's columns and indexes.
//! Only the round trips (BEGIN, COPY, COMMIT) are timed; folding and encoding the rows are not.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::{Connection, PgConnection, PgPool};
use surge_baselines::CopyBinary;
use surge_processors::projectors::economy::{self, Streak};
use surge_processors::projectors::profiles;
use surge_processors::runtime::Record;
use surge_projections::profiles::{MIGRATIONS as PROFILE_DDL, Profile};
use surge_projections::wallets::MIGRATIONS as WALLET_DDL;

use super::Baseline;

/// Profiles: the rows the projection upserts, i.e. each user a batch touches once, with their
/// folded state. COPY cannot upsert, so the table keeps `profiles_v1_users`' columns with a
/// plain index on `user_id` in place of the primary key (the same index upkeep per row).
pub(crate) async fn profiles(
    pool: &PgPool,
    partitions: &[Vec<Record>],
    batch_max: usize,
) -> anyhow::Result<Baseline> {
    let ddl = table_ddl(PROFILE_DDL, "_users (", "copy_profiles")?
        + "; ALTER TABLE copy_profiles_users DROP CONSTRAINT copy_profiles_users_pkey"
        + "; CREATE INDEX copy_profiles_users_user_id ON copy_profiles_users (user_id)";
    let copy = "COPY copy_profiles_users (user_id, first_name, last_name, username, is_premium, \
                language_code, language_code_chosen, photo_url, photo_url_chosen, display_name, \
                first_seen_at, last_seen_at, sessions_count, referred_by, streak_current, \
                streak_best, streak_last_day) FROM STDIN (FORMAT binary)";
    let mut conn = pool.acquire().await?;
    sqlx::raw_sql(&ddl).execute(&mut *conn).await?;
    let mut state: HashMap<i64, Profile> = HashMap::new();
    let mut totals = Totals::default();
    for records in partitions {
        for chunk in records.chunks(batch_max) {
            let stored = chunk
                .iter()
                .filter_map(|r| state.get(&r.event.envelope.user_id))
                .map(|p| (p.user_id, p.clone()))
                .collect();
            let rows = profiles::fold_batch(stored, chunk);
            let mut data = CopyBinary::new();
            for p in &rows {
                data.row(17);
                data.i64(p.user_id);
                data.text(p.first_name.as_deref());
                data.text(p.last_name.as_deref());
                data.text(p.username.as_deref());
                data.bool(p.is_premium);
                data.text(p.language_code.as_deref());
                data.bool(p.language_code_chosen);
                data.text(p.photo_url.as_deref());
                data.bool(p.photo_url_chosen);
                data.text(p.display_name.as_deref());
                data.timestamptz_ms(p.first_seen_at_ms);
                data.timestamptz_ms(p.last_seen_at_ms);
                data.i64(p.sessions_count);
                data.opt_i64(p.referred_by);
                data.i32(p.streak_current);
                data.i32(p.streak_best);
                data.opt_date(p.streak_last_day);
            }
            let took = copy_batch(&mut conn, copy, data.finish()).await?;
            totals.add(chunk.len(), rows.len(), took);
            for row in rows {
                state.insert(row.user_id, row);
            }
        }
    }
    Ok(totals.baseline("binary COPY, the profile rows each batch upserts (1 per user per batch)"))
}

/// Wallets: one `wallets_v1_ledger` row per coin-earning event, numbered and with its running
/// balance as the projection stores it, into a table made by the ledger's own DDL (primary key
/// on the event id, unique user and sequence, checks). Amounts come from the shared coin rules
/// ([`economy::earning`]), as in the projection's fold. The balances and streaks the projection
/// also upserts are not in the baseline.
pub(crate) async fn wallets(
    pool: &PgPool,
    partitions: &[Vec<Record>],
    batch_max: usize,
) -> anyhow::Result<Baseline> {
    let ddl = table_ddl(WALLET_DDL, "_ledger (", "copy_wallets")?;
    let copy = "COPY copy_wallets_ledger (event_id, user_id, seq, kind, amount, balance_after, \
                occurred_at, kafka_partition, kafka_offset) FROM STDIN (FORMAT binary)";
    let mut conn = pool.acquire().await?;
    sqlx::raw_sql(&ddl).execute(&mut *conn).await?;
    let mut streaks: HashMap<i64, Streak> = HashMap::new();
    // Per user: ledger rows so far and balance.
    let mut balances: HashMap<i64, (i64, i64)> = HashMap::new();
    let mut totals = Totals::default();
    for records in partitions {
        for chunk in records.chunks(batch_max) {
            let mut data = CopyBinary::new();
            let mut rows = 0;
            for record in chunk {
                let event = &record.event;
                let earning = economy::earning(&event.payload).map_err(anyhow::Error::msg)?;
                let Some(kind) = earning.kind() else { continue };
                let user_id = event.envelope.user_id;
                let amount = earning.coins(streaks.entry(user_id).or_default());
                if amount == 0 {
                    continue;
                }
                let (seq, balance) = balances.entry(user_id).or_default();
                *seq += 1;
                *balance += amount;
                rows += 1;
                data.row(9);
                data.uuid(event.envelope.event_id);
                data.i64(user_id);
                data.i64(*seq);
                data.text(Some(kind));
                data.i64(amount);
                data.i64(*balance);
                data.timestamptz_ms(event.envelope.occurred_at);
                data.i32(record.partition);
                data.i64(record.offset);
            }
            let took = copy_batch(&mut conn, copy, data.finish()).await?;
            totals.add(chunk.len(), rows, took);
        }
    }
    Ok(totals.baseline("binary COPY, 1 ledger row per coin-earning event"))
}

/// The projection's `CREATE TABLE` for the table whose DDL holds `marker`, for table prefix
/// `prefix` instead of the projection's.
fn table_ddl(migrations: &[&str], marker: &str, prefix: &str) -> anyhow::Result<String> {
    migrations
        .iter()
        .find(|ddl| ddl.contains(&format!("{{t}}{marker}")))
        .map(|ddl| ddl.replace("{t}", prefix))
        .with_context(|| format!("no migration creates a {marker} table"))
}

/// One batch: BEGIN, COPY, COMMIT.
async fn copy_batch(
    conn: &mut PgConnection,
    statement: &str,
    data: Vec<u8>,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut tx = conn.begin().await?;
    let mut copy = tx.copy_in_raw(statement).await?;
    copy.send(data).await?;
    copy.finish().await?;
    tx.commit().await?;
    Ok(started.elapsed())
}

#[derive(Default)]
struct Totals {
    events: u64,
    rows: u64,
    batches: u64,
    time: Duration,
}

impl Totals {
    fn add(&mut self, events: usize, rows: usize, took: Duration) {
        self.events += events as u64;
        self.rows += rows as u64;
        self.batches += 1;
        self.time += took;
    }

    fn baseline(self, what: &str) -> Baseline {
        Baseline {
            what: what.to_owned(),
            events: self.events,
            writes: self.rows,
            batches: self.batches,
            secs: self.time.as_secs_f64(),
        }
    }
}
