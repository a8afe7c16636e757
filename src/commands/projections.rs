//! `surge projections`: each projection's versions (from its version registry, plus any version
//! that only left positions behind), their state, positions, how far behind the head of the
//! events topic they are, and the revision of the code that built them.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::{Value, json};
use sqlx::PgPool;
use surge_processors::projectors::{CATALOG, Entry, StoreKind};
use surge_projections::positions::{self, Positions};
use surge_projections::versions::{VersionInfo, VersionState};
use surge_redis::Redis;

use crate::infra;
use crate::settings::Common;

#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) common: Common,
    /// Print JSON (one array, with per-partition detail) instead of a table.
    #[arg(long)]
    json: bool,
    /// Then drop every retired version (kept with `surge replay --keep-old`, or left when a
    /// rebuild was interrupted between its switch and the drop): their tables and keys go.
    #[arg(long)]
    drop_retired: bool,
}

/// One projection version as found in its store.
struct Row {
    entry: Entry,
    version: u32,
    /// `None` for a version with positions but no registry entry (left by an older build).
    info: Option<VersionInfo>,
    positions: Positions,
}

impl Row {
    fn state(&self) -> &'static str {
        self.info
            .as_ref()
            .map_or("unregistered", |i| i.state.as_str())
    }
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let common = &args.common;
    let brokers = common.kafka_brokers.clone().context(
        "surge projections compares positions with a running broker: set SURGE_KAFKA_BROKERS",
    )?;
    let heads = heads(brokers, common.events_topic.clone()).await?;
    let pool = infra::database(common).await?;
    let redis = infra::redis(common).await?;
    let mut rows = Vec::new();
    let stores = infra::stores_with(common, pool.clone(), redis.clone());
    for entry in CATALOG {
        let registered: BTreeMap<u32, VersionInfo> = stores
            .versions(entry)
            .list()
            .await
            .with_context(|| format!("Failed to read the versions of {}", entry.name()))?
            .into_iter()
            .filter(|v| v.state != VersionState::Dropped)
            .map(|v| (v.version, v))
            .collect();
        let mut versions = stored_versions(entry, common, &pool, &redis).await?;
        versions.extend(registered.keys());
        let mut registered = registered;
        if versions.is_empty() {
            // Nothing has run yet: version 1 is what will serve (and what the query API reads).
            versions.insert(1);
            registered.insert(1, not_started(entry));
        }
        for version in versions {
            let source = stores.positions(entry, version, &common.events_topic);
            let positions = source
                .read()
                .await
                .with_context(|| format!("Failed to read the positions of {}", entry.name()))?;
            rows.push(Row {
                entry: *entry,
                version,
                info: registered.get(&version).cloned(),
                positions,
            });
        }
    }
    if args.drop_retired {
        for row in rows.iter().filter(|r| r.state() == "retired") {
            surge_processors::versions::drop_version(&stores, &row.entry, row.version)
                .await
                .with_context(|| format!("Failed to drop {} v{}", row.entry.name(), row.version))?;
            eprintln!("dropped {} v{}", row.entry.name(), row.version);
        }
        rows.retain(|r| r.state() != "retired");
    }
    if args.json {
        let all: Vec<Value> = rows.iter().map(|row| to_json(row, &heads)).collect();
        println!("{}", Value::Array(all));
    } else {
        print_table(&rows, &heads);
    }
    Ok(())
}

/// Version 1 of a projection no process has started yet.
fn not_started(entry: &Entry) -> VersionInfo {
    VersionInfo {
        version: 1,
        revision: entry.revision(),
        state: VersionState::Active,
        from_ms: None,
        created_at_ms: 0,
        switched_at_ms: None,
    }
}

/// The next offset to be written, per partition of the topic (its high watermark).
pub(crate) async fn heads(brokers: String, topic: String) -> anyhow::Result<BTreeMap<i32, i64>> {
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = surge_kafka::client_config(&brokers).create()?;
        let timeout = Duration::from_secs(10);
        let partitions = infra::topic_partitions(&consumer, &topic)?;
        partitions
            .into_iter()
            .map(|p| {
                let (_, high) = consumer
                    .fetch_watermarks(&topic, p, timeout)
                    .with_context(|| format!("Failed to read the end of {topic}/{p}"))?;
                Ok((p, high))
            })
            .collect()
    })
    .await?
}

/// Versions of `entry` with positions stored for the events topic.
async fn stored_versions(
    entry: &Entry,
    common: &Common,
    pool: &PgPool,
    redis: &Redis,
) -> anyhow::Result<BTreeSet<u32>> {
    match entry.store() {
        StoreKind::Postgres => {
            Ok(
                positions::postgres_versions(pool, entry.name(), &common.events_topic)
                    .await?
                    .into_iter()
                    .collect(),
            )
        }
        StoreKind::Redis => {
            Ok(
                positions::redis_versions(redis, &common.redis_prefix, entry.name())
                    .await?
                    .into_iter()
                    .collect(),
            )
        }
    }
}

/// Events applied and still to apply, over every partition of the topic.
pub(crate) fn totals(positions: &Positions, heads: &BTreeMap<i32, i64>) -> (i64, i64) {
    heads.iter().fold((0, 0), |(applied, lag), (p, head)| {
        let next = positions.get(p).copied().unwrap_or(0);
        (applied + next, lag + (head - next).max(0))
    })
}

fn to_json(row: &Row, heads: &BTreeMap<i32, i64>) -> Value {
    let (applied, lag) = totals(&row.positions, heads);
    let partitions: Vec<Value> = heads
        .iter()
        .map(|(p, head)| {
            let next = row.positions.get(p).copied();
            json!({
                "partition": p,
                "next_offset": next,
                "head": head,
                "lag": (head - next.unwrap_or(0)).max(0),
            })
        })
        .collect();
    json!({
        "projection": row.entry.name(),
        "version": row.version,
        "revision": row.info.as_ref().map(|i| i.revision),
        "build_revision": row.entry.revision(),
        "store": row.entry.store().as_str(),
        "state": row.state(),
        "active": row.state() == "active",
        "from": row.info.as_ref().and_then(|i| i.from_ms),
        "applied": applied,
        "head": heads.values().sum::<i64>(),
        "lag": lag,
        "partitions_started": row.positions.len(),
        "partitions": partitions,
    })
}

fn print_table(rows: &[Row], heads: &BTreeMap<i32, i64>) {
    println!(
        "{:<12} {:>7} {:>8}  {:<8}  {:<12} {:>12} {:>12} {:>10}  {:>10}",
        "PROJECTION",
        "VERSION",
        "REVISION",
        "STORE",
        "STATE",
        "APPLIED",
        "HEAD",
        "LAG",
        "PARTITIONS"
    );
    let head: i64 = heads.values().sum();
    for row in rows {
        let (applied, lag) = totals(&row.positions, heads);
        let revision = row.info.as_ref().map_or("?".to_owned(), |i| {
            let mark = if i.revision == row.entry.revision() {
                ""
            } else {
                "*"
            };
            format!("{}{mark}", i.revision)
        });
        println!(
            "{:<12} {:>7} {:>8}  {:<8}  {:<12} {:>12} {:>12} {:>10}  {:>10}",
            row.entry.name(),
            row.version,
            revision,
            row.entry.store().as_str(),
            row.state(),
            applied,
            head,
            lag,
            format!("{}/{}", row.positions.len(), heads.len()),
        );
    }
    if rows.iter().any(|r| {
        r.info
            .as_ref()
            .is_some_and(|i| i.revision != r.entry.revision())
    }) {
        println!("* built by another revision of the projection's code than this build's");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_counts_unstarted_partitions_from_zero_and_never_goes_negative() {
        let heads = BTreeMap::from([(0, 10), (1, 5), (2, 0)]);
        let positions = Positions::from([(0, 7), (2, 3)]);
        assert_eq!(totals(&positions, &heads), (10, 3 + 5));
    }
}
