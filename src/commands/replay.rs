//! `surge replay <projection>`: rebuilds the projection's next version from the topic while the
//! current one serves, switches to it atomically (running query APIs and processors follow
//! without restart) and drops the old one. Progress is drawn live on a terminal and printed as
//! plain lines otherwise. The guarantees are `surge_processors::replay`'s.

mod display;

use std::time::Duration;

use anyhow::Context;
use surge_processors::replay::{self, ReplayConfig, Request};
use tokio::sync::watch;

use crate::infra;
use crate::settings::{Common, Process, instant_ms};

#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) common: Common,
    #[command(flatten)]
    pub(crate) process: Process,
    /// The projection to rebuild (`surge projections` lists them).
    pub(crate) projection: String,
    /// Rebuild from this instant instead of offset zero, where the projection allows it
    /// (`activity`): RFC 3339 (`2026-11-22T10:00:00Z`) or unix milliseconds.
    #[arg(long, value_parser = instant_ms)]
    pub(crate) from: Option<i64>,
    /// Keep the old version's tables or keys after the switch (listed as `retired`).
    #[arg(long)]
    pub(crate) keep_old: bool,
    /// Discard an interrupted rebuild of this projection instead of resuming it.
    #[arg(long)]
    pub(crate) restart: bool,
    /// Apply at most this many events per second (all partitions together), to leave the
    /// stores room for serving; default: as fast as they take them.
    #[arg(long, env = "SURGE_REPLAY_MAX_RATE", value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) max_rate: Option<u32>,
    /// Most events per partition batch while far behind (bulk load).
    #[arg(long, env = "SURGE_REPLAY_BULK_BATCH", default_value_t = 20_000,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub(crate) bulk_batch: u32,
    /// Seconds the old version is kept after the switch before it is dropped, so reads that
    /// started on it finish and every query API has moved on.
    #[arg(long, env = "SURGE_REPLAY_DROP_GRACE_SECS", default_value_t = 5)]
    pub(crate) drop_grace_secs: u64,
    /// Seconds after the switch the rebuild keeps the new version at the head itself, waiting
    /// for `surge process` to take its partitions over.
    #[arg(long, env = "SURGE_REPLAY_HANDOVER_TIMEOUT_SECS", default_value_t = 60)]
    pub(crate) handover_timeout_secs: u64,
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let common = &args.common;
    let brokers = common.kafka_brokers.clone().context(
        "surge replay reads the events from a running broker: set SURGE_KAFKA_BROKERS (the embedded one lives inside `surge dev`)",
    )?;
    let registry = infra::schema_registry(common).await?;
    let metrics = prometheus::Registry::new();
    let context =
        super::process::sink_context(common, &args.process, &brokers, &registry.url, &metrics)
            .await?;
    let config = ReplayConfig {
        bulk_batch: args.bulk_batch as usize,
        batch_max: args.process.batch_max,
        batch_wait: Duration::from_millis(args.process.batch_wait_ms),
        fetch_wait: Duration::from_millis(args.process.fetch_wait_ms),
        max_rate: args.max_rate,
        drop_grace: Duration::from_secs(args.drop_grace_secs),
        handover_timeout: Duration::from_secs(args.handover_timeout_secs),
        ..ReplayConfig::new(&brokers, &common.events_topic)
    };
    let request = Request {
        projection: args.projection.clone(),
        from_ms: args.from,
        keep_old: args.keep_old,
        restart: args.restart,
    };
    let (progress, snapshots) = watch::channel(None);
    let drawing = tokio::spawn(display::draw(snapshots));
    let result = replay::run(request, &context, config, progress).await;
    let _ = drawing.await;
    let report = result.with_context(|| format!("Failed to rebuild {}", args.projection))?;
    println!("{}", display::summary(&report));
    Ok(())
}
