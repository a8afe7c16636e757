//! The stores' limits: binary COPY of wallet-ledger rows into a scratch table, and pipelined
//! Redis writes of the leaderboard and feed kind under scratch keys. Both are removed after.

use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};
use sqlx::{Connection, PgPool};
use surge_baselines::CopyBinary;
use surge_projections::wallets::MIGRATIONS as WALLET_DDL;
use surge_redis::Redis;

/// Rows per COPY and events per Redis pipeline: the processors' default batch size.
const BATCH: usize = 1000;

/// A table made by the wallets ledger's own DDL (primary key on the event id, unique user and
/// sequence, checks) under a scratch prefix; its name is `<prefix>_ledger`.
pub(super) async fn scratch_table(pool: &PgPool) -> anyhow::Result<String> {
    let prefix = format!("baseline_{}", super::scratch_id());
    let ddl = WALLET_DDL
        .iter()
        .find(|ddl| ddl.contains("{t}_ledger ("))
        .context("no wallets migration creates the ledger")?
        .replace("{t}", &prefix);
    sqlx::raw_sql(&ddl).execute(pool).await?;
    Ok(format!("{prefix}_ledger"))
}

pub(super) async fn drop_table(pool: &PgPool, table: &str) -> anyhow::Result<()> {
    sqlx::raw_sql(&format!("DROP TABLE IF EXISTS {table}"))
        .execute(pool)
        .await?;
    Ok(())
}

/// Binary COPY of ledger rows, [`BATCH`] rows per transaction (BEGIN, COPY, COMMIT, as the
/// processors commit a batch), for `duration`.
pub(super) async fn copy_ledger_rows(
    pool: &PgPool,
    table: &str,
    users: &[i64],
    duration: Duration,
) -> anyhow::Result<Value> {
    let statement = format!(
        "COPY {table} (event_id, user_id, seq, kind, amount, balance_after, occurred_at, \
         kafka_partition, kafka_offset) FROM STDIN (FORMAT binary)"
    );
    let mut conn = pool.acquire().await?;
    let now_ms = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
    let (mut rows, mut batches) = (0_i64, 0_u64);
    let started = Instant::now();
    while started.elapsed() < duration {
        let mut data = CopyBinary::new();
        for _ in 0..BATCH {
            let user = users[rows as usize % users.len()];
            // One sequence for all users keeps (user_id, seq) unique without per-user state.
            rows += 1;
            data.row(9);
            data.uuid(uuid::Uuid::now_v7());
            data.i64(user);
            data.i64(rows);
            data.text(Some("taps"));
            data.i64(1);
            data.i64(rows);
            data.timestamptz_ms(now_ms);
            data.i32((rows % 12) as i32);
            data.i64(rows);
        }
        let mut tx = conn.begin().await?;
        let mut copy = tx.copy_in_raw(&statement).await?;
        copy.send(data.finish()).await?;
        copy.finish().await?;
        tx.commit().await?;
        batches += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    Ok(json!({ "rate": rows as f64 / secs, "rows": rows, "batches": batches, "secs": secs }))
}

/// Where the Redis baseline writes: `<deployment prefix>:baseline:<id>:...`.
pub(super) fn scratch_keys(deployment_prefix: &str) -> String {
    format!("{deployment_prefix}:baseline:{}", super::scratch_id())
}

/// Per event, what the leaderboard and feed projectors send for a tap: `ZINCRBY` on a ranking,
/// `LPUSH` of a feed item and `LTRIM` to the feed's cap; [`BATCH`] events per plain pipeline
/// (no script, no transaction), for `duration`.
pub(super) async fn pipelined_writes(
    redis: &Redis,
    keys: &str,
    users: &[i64],
    duration: Duration,
) -> anyhow::Result<Value> {
    let mut redis = redis.clone();
    let ranking = format!("{keys}:ranking");
    let item = r#"{"count":1,"event_id":"01a204e1-1b58-713c-b28e-221ed28b18a0","occurred_at":"2026-11-22T10:00:00.123Z","type":"taps"}"#;
    let cap = surge_projections::feed::FEED_CAP as isize;
    let (mut events, mut commands) = (0_u64, 0_u64);
    let started = Instant::now();
    while started.elapsed() < duration {
        let mut pipe = redis::pipe();
        for _ in 0..BATCH {
            let user = users[events as usize % users.len()];
            let feed = format!("{keys}:feed:{user}");
            pipe.zincr(&ranking, user, 1).ignore();
            pipe.lpush(&feed, item).ignore();
            pipe.ltrim(&feed, 0, cap - 1).ignore();
            events += 1;
            commands += 3;
        }
        pipe.query_async::<()>(&mut redis)
            .await
            .context("Redis refused a pipeline")?;
    }
    let secs = started.elapsed().as_secs_f64();
    Ok(json!({
        "rate": commands as f64 / secs,
        "events_per_sec": events as f64 / secs,
        "commands": commands,
        "secs": secs,
    }))
}

/// Deletes every key under `keys` (the ranking and each user's feed).
pub(super) async fn drop_keys(redis: &Redis, keys: &str, users: &[i64]) -> anyhow::Result<()> {
    let mut redis = redis.clone();
    let mut all = vec![format!("{keys}:ranking")];
    all.extend(users.iter().map(|user| format!("{keys}:feed:{user}")));
    for chunk in all.chunks(500) {
        redis::cmd("DEL")
            .arg(chunk)
            .query_async::<()>(&mut redis)
            .await?;
    }
    Ok(())
}
