//! One projection through the real runtime: `projectors::start` (migrate, join the group, claim,
//! consume), timed until the positions stored with the projection's data reach the topic's end,
//! then stopped. The processor's own metrics say how big its batches were and how long applying
//! them took.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use surge_processors::projectors::feed::Feed;
use surge_processors::projectors::leaderboard::Leaderboard;
use surge_processors::projectors::profiles::Profiles;
use surge_processors::projectors::wallets::Wallets;
use surge_processors::projectors::{self, SinkContext, Stores};
use surge_processors::runtime::{PgProjection, ProcessorConfig, ProcessorMetrics, RedisProjection};
use surge_schemas::Codec;

use super::cpu::{self, CpuUse};
use super::read::Extent;
use super::server::{PgSampler, RedisStats, Slice};

/// How often the stored positions are read.
const POLL: Duration = Duration::from_millis(100);
/// A run whose positions do not move for this long has failed.
const STALL: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Store {
    Postgres,
    Redis,
}

/// A projection `projectors::start` knows, and where its positions live. A run's schema and key
/// prefix are fresh, so it builds version 1.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Projection {
    pub(crate) name: &'static str,
    pub(crate) store: Store,
    pub(crate) version: u32,
}

pub(crate) const PROJECTIONS: [Projection; 4] = [
    Projection {
        name: Profiles::NAME,
        store: Store::Postgres,
        version: 1,
    },
    Projection {
        name: Wallets::NAME,
        store: Store::Postgres,
        version: 1,
    },
    Projection {
        name: Leaderboard::NAME,
        store: Store::Redis,
        version: 1,
    },
    Projection {
        name: Feed::NAME,
        store: Store::Redis,
        version: 1,
    },
];

/// What one run did.
#[derive(Debug, Clone)]
pub(crate) struct RunStats {
    /// Events in the topic.
    pub(crate) events: i64,
    /// Events the processor counted as applied (its metric); equals `events` on a clean run.
    pub(crate) applied: u64,
    /// From `start` to positions at the end: migration, group join, claim, then the work.
    pub(crate) total_secs: f64,
    /// From `start` to the first position seen moving.
    pub(crate) startup_secs: f64,
    /// The work alone: from the first position seen moving to the end, and the events in it.
    pub(crate) steady_secs: f64,
    pub(crate) steady_events: i64,
    /// Events per partition batch the processor applied, on average.
    pub(crate) mean_batch: f64,
    pub(crate) batches: u64,
    /// Time inside the sink's `apply` (store round trips and the fold), summed.
    pub(crate) apply_secs: f64,
    pub(crate) retries: u64,
    pub(crate) dead_letters: u64,
    pub(crate) fenced: u64,
    pub(crate) cpu: CpuUse,
    /// What the store spent the run on, from the server's side.
    pub(crate) server: Vec<Slice>,
}

/// How to watch the stores from outside during a run.
pub(crate) struct Probe<'a> {
    pub(crate) database_url: &'a str,
    /// The application name the run's PostgreSQL connections carry.
    pub(crate) application_name: &'a str,
}

impl RunStats {
    /// Events per second once running (start-up excluded).
    pub(crate) fn rate(&self) -> f64 {
        self.steady_events as f64 / self.steady_secs.max(f64::EPSILON)
    }
}

pub(crate) async fn run(
    projection: &Projection,
    stores: &Stores,
    codec: Arc<Codec>,
    config: ProcessorConfig,
    extent: &Extent,
    probe: &Probe<'_>,
) -> anyhow::Result<RunStats> {
    let topic = config.topic.clone();
    let partitions = extent.partitions.len();
    let end = extent.end();
    let registry = prometheus::Registry::new();
    let metrics = ProcessorMetrics::new(&registry);
    let sampler = match projection.store {
        Store::Postgres => {
            Some(PgSampler::start(probe.database_url, probe.application_name).await?)
        }
        Store::Redis => None,
    };
    let redis_before = match projection.store {
        Store::Redis => Some(RedisStats::take(&stores.redis).await?),
        Store::Postgres => None,
    };
    let cpu_before = cpu::sample();
    let started = Instant::now();
    let context = SinkContext {
        stores: stores.clone(),
        codec,
        brokers: config.brokers.clone(),
        topic: config.topic.clone(),
        derived_delivery: config.derived_delivery,
        metrics: metrics.clone(),
        game: surge_schemas::GameConfig::default(),
        templates: std::sync::Arc::new(surge_processors::notifications::Templates::builtin()),
    };
    let handle = projectors::start(projection.name, projection.version, &context, config)
        .await
        .with_context(|| format!("Failed to start {}", projection.name))?;
    let mut first: Option<(f64, i64)> = None;
    let mut last = 0;
    let mut last_move = Instant::now();
    let outcome = loop {
        tokio::time::sleep(POLL).await;
        let position = match positions(projection, stores, &topic).await {
            Ok(position) => position,
            Err(error) => break Err(error),
        };
        let now = started.elapsed().as_secs_f64();
        if position > 0 && first.is_none() {
            first = Some((now, position));
        }
        if position > last {
            last = position;
            last_move = Instant::now();
        }
        if position >= end {
            break Ok(now);
        }
        if handle.is_finished() {
            break Err(anyhow::anyhow!(
                "the processor stopped at {position} of {end}"
            ));
        }
        if last_move.elapsed() > STALL {
            break Err(anyhow::anyhow!(
                "no progress for {} s at {position} of {end}",
                STALL.as_secs()
            ));
        }
    };
    let cpu_after = cpu::sample();
    let server = match (sampler, redis_before) {
        (Some(sampler), _) => sampler.finish().await?,
        (None, Some(before)) => before.until(&RedisStats::take(&stores.redis).await?),
        (None, None) => Vec::new(),
    };
    let id = handle.id.clone();
    // `stop` joins the processor's thread, which blocks on this runtime: not on a worker.
    tokio::task::spawn_blocking(move || handle.stop())
        .await
        .context("Failed to stop the processor")?;
    let total_secs = outcome?;

    let events = extent.events();
    let (startup_secs, steady_secs, steady_events) = match first {
        // Caught up between two polls: no steady part to tell apart.
        Some((at, position)) if position < end => (at, total_secs - at, end - position),
        _ => (0.0, total_secs, events),
    };
    let batch = metrics.batch_size.with_label_values(&[&id]);
    let applied = (0..partitions)
        .map(|p| {
            metrics
                .events_applied
                .with_label_values(&[id.as_str(), &p.to_string()])
                .get()
        })
        .sum();
    let dead_letters = ["decode", "rejected"]
        .iter()
        .map(|kind| {
            metrics
                .dead_letters
                .with_label_values(&[id.as_str(), kind])
                .get()
        })
        .sum();
    Ok(RunStats {
        events,
        applied,
        total_secs,
        startup_secs,
        steady_secs,
        steady_events,
        mean_batch: batch.get_sample_sum() / batch.get_sample_count().max(1) as f64,
        batches: batch.get_sample_count(),
        apply_secs: metrics
            .apply_seconds
            .with_label_values(&[&id])
            .get_sample_sum(),
        retries: metrics.retries.with_label_values(&[&id]).get(),
        dead_letters,
        fenced: metrics.fenced.with_label_values(&[&id]).get(),
        cpu: cpu_before.until(&cpu_after),
        server,
    })
}

/// The sum of the stored next offsets of `topic`'s partitions.
async fn positions(projection: &Projection, stores: &Stores, topic: &str) -> anyhow::Result<i64> {
    let entry = projectors::entry(projection.name)?;
    let positions = (stores.positions(entry, projection.version, topic).read())
        .await
        .context("Failed to read the stored positions")?;
    Ok(positions.values().sum())
}

/// Fails unless the run applied every event exactly once and nothing went wrong on the way.
pub(crate) fn check(name: &str, stats: &RunStats) -> anyhow::Result<()> {
    if stats.applied != stats.events as u64 || stats.dead_letters > 0 || stats.fenced > 0 {
        bail!(
            "{name}: applied {} of {} events, {} dead letters, {} fenced batches",
            stats.applied,
            stats.events,
            stats.dead_letters,
            stats.fenced
        );
    }
    Ok(())
}
