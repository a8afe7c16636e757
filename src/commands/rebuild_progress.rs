//! How far each rebuild has come, for the dashboard: `surge replay` fills a `building` version
//! from the topic while the active one serves, and every `surge process` reads, every
//! [`INTERVAL`], the positions of each building version of its projections against the ends of
//! the events topic. `processor_rebuild_applied_events` and
//! `processor_rebuild_remaining_events` (labels `projection`, `version`) count the events that
//! version has applied and still has to apply; progress is applied / (applied + remaining), and
//! a finished rebuild leaves the gauges, an interrupted one stays until resumed. Every instance
//! reports the same figures: aggregate with `max`.

use std::time::Duration;

use prometheus::{IntGaugeVec, Opts, Registry};
use surge_processors::projectors::{CATALOG, Stores};
use surge_processors::runtime::registered;
use surge_projections::versions::VersionState;
use tokio::sync::watch;

use super::projections::{heads, totals};

/// Between two readings: a few small queries per projection each time.
const INTERVAL: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub(crate) struct RebuildGauges {
    applied: IntGaugeVec,
    remaining: IntGaugeVec,
}

impl RebuildGauges {
    pub(crate) fn register(registry: &Registry) -> RebuildGauges {
        let gauge = |name: &str, help: &str| {
            registered(
                registry,
                IntGaugeVec::new(Opts::new(name, help), &["projection", "version"])
                    .expect("valid metric"),
            )
        };
        RebuildGauges {
            applied: gauge(
                "processor_rebuild_applied_events",
                "Events a version being rebuilt (surge replay) has applied.",
            ),
            remaining: gauge(
                "processor_rebuild_remaining_events",
                "Events a version being rebuilt (surge replay) still has to apply to reach the head.",
            ),
        }
    }
}

/// Reports the rebuilds of the projections in `names` until `stopped`.
pub(crate) async fn run(
    gauges: RebuildGauges,
    stores: Stores,
    names: Vec<String>,
    brokers: String,
    topic: String,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        if let Err(error) = read_once(&gauges, &stores, &names, &brokers, &topic).await {
            tracing::warn!(%error, "Could not read the rebuilds' progress; trying again later.");
        }
        tokio::select! {
            () = tokio::time::sleep(INTERVAL) => {}
            _ = stopped.wait_for(|stop| *stop) => return,
        }
    }
}

async fn read_once(
    gauges: &RebuildGauges,
    stores: &Stores,
    names: &[String],
    brokers: &str,
    topic: &str,
) -> anyhow::Result<()> {
    let mut found = Vec::new();
    for entry in CATALOG
        .iter()
        .filter(|e| names.iter().any(|n| n == e.name()))
    {
        for info in stores.versions(entry).list().await? {
            if info.state == VersionState::Building {
                let positions = stores.positions(entry, info.version, topic).read().await?;
                found.push((entry.name(), info.version, positions));
            }
        }
    }
    // The topic's ends only when something is being rebuilt.
    let heads = if found.is_empty() {
        Default::default()
    } else {
        heads(brokers.to_owned(), topic.to_owned()).await?
    };
    gauges.applied.reset();
    gauges.remaining.reset();
    for (name, version, positions) in found {
        let (applied, remaining) = totals(&positions, &heads);
        let labels = [name, &version.to_string()];
        gauges.applied.with_label_values(&labels).set(applied);
        gauges.remaining.with_label_values(&labels).set(remaining);
    }
    Ok(())
}
