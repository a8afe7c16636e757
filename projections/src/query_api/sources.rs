//! Which version of each projection the query API serves. `surge replay` builds a new version
//! beside the active one and then moves the active mark to it; a running query API follows
//! without a restart. One task polls the version registries every `version_poll` and publishes
//! an immutable [`Served`] snapshot; a handler takes one snapshot per request and reads
//! everything (stores, keys, watcher) from it, so a request never mixes two versions.
//!
//! The old version's tables and keys are dropped a grace period (seconds) after the switch,
//! which is far longer than the poll interval plus a request: requests that took the old
//! snapshot just before the switch still find its data.

mod active;
mod served;

use std::sync::Arc;
use std::time::Duration;

use prometheus::{IntGaugeVec, Opts, Registry};
use sqlx::PgPool;
use surge_redis::Redis;
use tokio::sync::watch;

use super::QueryApiConfig;
use super::databases::{Database, Databases};
use super::watcher::PositionWatcher;
use crate::catalog::{ProjectionId, StoreKind};
use crate::naming::{keys_base, table_prefix};
use crate::positions::PositionSource;
use served::Build;
pub(crate) use served::{Served, Version};

/// The served snapshot, kept current by a task that ends when the last `Sources` (and every
/// receiver taken from it) is dropped.
pub(crate) struct Sources {
    served: watch::Receiver<Arc<Served>>,
}

impl Sources {
    /// Serves version 1 of everything (unsettled) until the first poll, which starts at once.
    /// Registers `query_api_projection_version` in `registry`.
    pub(crate) fn spawn(
        config: &QueryApiConfig,
        databases: &Databases,
        redis: &Redis,
        registry: &Registry,
    ) -> Sources {
        let pools = databases.pools();
        let pool = &pools[Database::Primary.index()];
        let gauge = IntGaugeVec::new(
            Opts::new(
                "query_api_projection_version",
                "The version of each projection the query API serves.",
            ),
            &["projection"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(gauge.clone()))
            .expect("registered once");
        let builder = Builder {
            pools: pools.clone(),
            redis: redis.clone(),
            topic: config.events_topic.clone(),
            partitions: config.events_partitions,
            redis_prefix: config.redis_prefix.clone(),
            positions_poll: config.consistency_poll,
            timeout: config.store_timeout,
        };
        let first = Served::first(&builder);
        show(&gauge, &first);
        let (tx, served) = watch::channel(Arc::new(first));
        let registries = active::Registries::new(
            pool.clone(),
            redis.clone(),
            &config.redis_prefix,
            config.store_timeout,
        );
        tokio::spawn(follow(tx, registries, builder, gauge, config.version_poll));
        Sources { served }
    }

    /// A receiver of the snapshots, marked as having seen the current one.
    pub(crate) fn subscribe(&self) -> watch::Receiver<Arc<Served>> {
        let mut served = self.served.clone();
        served.mark_unchanged();
        served
    }
}

/// Polls until nobody can read the snapshots any more.
async fn follow(
    tx: watch::Sender<Arc<Served>>,
    registries: active::Registries,
    builder: Builder,
    gauge: IntGaugeVec,
    every: Duration,
) {
    let mut postgres = Streak::default();
    let mut redis = Streak::default();
    loop {
        let poll = tokio::select! {
            poll = registries.poll() => poll,
            () = tx.closed() => return,
        };
        postgres.report("postgres", &poll.postgres);
        redis.report("redis", &poll.redis);
        let current = tx.borrow().clone();
        if let Some(next) = current.next(&poll.polled, &builder) {
            for &projection in ProjectionId::ALL {
                let (from, to) = (current.version(projection), next.version(projection));
                if from != to {
                    tracing::info!(
                        projection = projection.name(),
                        from,
                        to,
                        "The query API now serves another version of a projection."
                    );
                }
            }
            show(&gauge, &next);
            tx.send_replace(Arc::new(next));
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = tx.closed() => return,
        }
    }
}

fn show(gauge: &IntGaugeVec, served: &Served) {
    for &projection in ProjectionId::ALL {
        gauge
            .with_label_values(&[projection.name()])
            .set(i64::from(served.version(projection)));
    }
}

/// A store's registry failing or answering again, for a warning once per failure streak instead
/// of one every poll.
#[derive(Debug, Default)]
struct Streak {
    failing: bool,
}

#[derive(Debug, PartialEq, Eq)]
enum Turn {
    Failing,
    Recovered,
}

impl Streak {
    fn observe(&mut self, ok: bool) -> Option<Turn> {
        let turn = match (self.failing, ok) {
            (false, false) => Some(Turn::Failing),
            (true, true) => Some(Turn::Recovered),
            _ => None,
        };
        self.failing = !ok;
        turn
    }

    fn report(&mut self, store: &'static str, outcome: &Result<(), String>) {
        match (self.observe(outcome.is_ok()), outcome) {
            (Some(Turn::Failing), Err(error)) => tracing::warn!(
                store,
                %error,
                "Reading the active projection versions failed; serving the versions already known until it answers."
            ),
            (Some(Turn::Recovered), _) => {
                tracing::info!(store, "Reading the active projection versions works again.");
            }
            _ => {}
        }
    }
}

/// Builds a projection's version: its table prefix or key base and a position watcher of its
/// own. Every projection of the catalog gets a watcher, also those no endpoint waits on
/// (`referrals`): a watcher reads positions only while a request waits on it (see
/// `PositionWatcher::spawn`), so an unread one is an idle task and costs no queries.
struct Builder {
    /// Every database's pool, in [`Database::index`] order: a PostgreSQL projection's version
    /// has a watcher on each.
    pools: Vec<PgPool>,
    redis: Redis,
    topic: String,
    /// Partitions of `topic`: a Redis version keeps a position in each one's key space.
    partitions: i32,
    redis_prefix: String,
    positions_poll: Duration,
    timeout: Duration,
}

impl Build for Builder {
    fn version(&self, projection: ProjectionId, number: u32) -> Version {
        let name = projection.name();
        let watcher =
            |source| PositionWatcher::spawn(name, source, self.positions_poll, self.timeout);
        match projection.store() {
            StoreKind::Postgres => {
                let watchers = self
                    .pools
                    .iter()
                    .map(|pool| {
                        watcher(PositionSource::Postgres {
                            pool: pool.clone(),
                            projection: name,
                            version: number,
                            topic: self.topic.clone(),
                        })
                    })
                    .collect();
                Version::new(number, table_prefix(name, number), watchers)
            }
            StoreKind::Redis => {
                let base = keys_base(&self.redis_prefix, name, number);
                let source = PositionSource::Redis {
                    redis: self.redis.clone(),
                    keys_base: base.clone(),
                    topic: self.topic.clone(),
                    partitions: self.partitions,
                };
                Version::new(number, base, vec![watcher(source)])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_streak_warns_once_and_its_end_is_told() {
        let mut streak = Streak::default();
        assert_eq!(streak.observe(true), None);
        assert_eq!(streak.observe(false), Some(Turn::Failing));
        assert_eq!(streak.observe(false), None, "the same streak stays quiet");
        assert_eq!(streak.observe(true), Some(Turn::Recovered));
        assert_eq!(streak.observe(true), None);
        assert_eq!(streak.observe(false), Some(Turn::Failing), "a new streak");
    }
}
