//! Where the query API's PostgreSQL reads go: to a read replica (`SURGE_DATABASE_READ_URLS`)
//! that answers and is at most `replica_max_lag` behind, spread round-robin; to the primary when
//! none is, as the last resort. A task checks every replica each [`CHECK_EVERY`] and keeps the
//! per-replica metrics.
//!
//! Lag is measured against the primary's WAL position, not against the replica's last replayed
//! transaction time (which ages on an idle primary): the task samples the primary's WAL position
//! each check, and a replica's lag is the age of the oldest sample it has not replayed yet. A
//! replica is therefore known to be behind within one check, whatever the traffic.
//!
//! A consistency token is waited for on the database the read goes to (see
//! `QueryState::read_after`): positions are written in the same transactions as the rows, so
//! they replicate together, and a position seen on a replica means its rows are there too.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use prometheus::{GaugeVec, IntCounterVec, IntGaugeVec, Opts, Registry};
use sqlx::PgPool;
use tokio::time::Instant;

/// How often each replica's lag and health are checked.
const CHECK_EVERY: Duration = Duration::from_millis(250);

/// A read replica of the primary database.
#[derive(Debug, Clone)]
pub struct Replica {
    /// How it is named in logs and metrics (`host:port`, never the URL with its password).
    pub name: String,
    /// On the same schema as the primary's pool.
    pub pool: PgPool,
}

/// The database one read goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Database {
    Primary,
    /// The index in `SURGE_DATABASE_READ_URLS`.
    Replica(usize),
}

impl Database {
    /// Its place among [`Databases::all`]: the primary first, then the replicas in order.
    pub(crate) fn index(self) -> usize {
        match self {
            Database::Primary => 0,
            Database::Replica(index) => index + 1,
        }
    }
}

pub(crate) struct Databases {
    primary: PgPool,
    replicas: Vec<Replica>,
    /// Per replica: answering and close enough behind to serve reads.
    usable: Box<[AtomicBool]>,
    next: AtomicUsize,
    reads: IntCounterVec,
}

impl Databases {
    /// Registers the metrics and, with replicas, starts the task checking them; it ends when
    /// the returned value is dropped. Replicas serve once their first check has passed.
    pub(crate) fn start(
        primary: PgPool,
        replicas: Vec<Replica>,
        max_lag: Duration,
        timeout: Duration,
        registry: &Registry,
    ) -> Arc<Databases> {
        let databases = Arc::new(Databases::new(primary, replicas, registry));
        if !databases.replicas.is_empty() {
            let gauges = ReplicaGauges::register(registry);
            for replica in &databases.replicas {
                tracing::info!(replica = %replica.name, "Reads go to a PostgreSQL replica when it is close enough behind.");
            }
            let replicas = databases.replicas.len();
            let weak = Arc::downgrade(&databases);
            tokio::spawn(check(weak, replicas, gauges, max_lag, timeout));
        }
        databases
    }

    /// Without checks: no replica serves until marked usable.
    fn new(primary: PgPool, replicas: Vec<Replica>, registry: &Registry) -> Databases {
        let reads = IntCounterVec::new(
            Opts::new(
                "query_api_postgres_reads_total",
                "PostgreSQL reads by the database that served them (primary or a replica).",
            ),
            &["database"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(reads.clone()))
            .expect("registered once");
        Databases {
            usable: replicas.iter().map(|_| AtomicBool::new(false)).collect(),
            primary,
            replicas,
            next: AtomicUsize::new(0),
            reads,
        }
    }

    /// Where the next read goes: the next usable replica in turn, else the primary.
    pub(crate) fn pick(&self) -> Database {
        let count = self.replicas.len();
        if count == 0 {
            return Database::Primary;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..count)
            .map(|step| (start + step) % count)
            .find(|&index| self.usable[index].load(Ordering::Relaxed))
            .map_or(Database::Primary, Database::Replica)
    }

    /// The pool of `database`, counting one read on it.
    pub(crate) fn read_on(&self, database: Database) -> &PgPool {
        let (name, pool) = match database {
            Database::Primary => ("primary", &self.primary),
            Database::Replica(index) => {
                let replica = &self.replicas[index];
                (replica.name.as_str(), &replica.pool)
            }
        };
        self.reads.with_label_values(&[name]).inc();
        pool
    }

    /// Every database's pool, the primary first ([`Database::index`]).
    pub(crate) fn pools(&self) -> Vec<PgPool> {
        std::iter::once(self.primary.clone())
            .chain(self.replicas.iter().map(|r| r.pool.clone()))
            .collect()
    }
}

struct ReplicaGauges {
    up: IntGaugeVec,
    lag_seconds: GaugeVec,
    lag_bytes: IntGaugeVec,
    serving: IntGaugeVec,
}

impl ReplicaGauges {
    fn register(registry: &Registry) -> Self {
        let per_replica = |name: &str, help: &str| {
            let gauge =
                IntGaugeVec::new(Opts::new(name, help), &["replica"]).expect("valid metric");
            registry
                .register(Box::new(gauge.clone()))
                .expect("registered once");
            gauge
        };
        let lag_seconds = GaugeVec::new(
            Opts::new(
                "query_api_replica_lag_seconds",
                "How long ago the primary wrote the oldest WAL the replica has not replayed (0: none).",
            ),
            &["replica"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(lag_seconds.clone()))
            .expect("registered once");
        ReplicaGauges {
            up: per_replica(
                "query_api_replica_up",
                "1 when the replica answered its last check.",
            ),
            lag_seconds,
            lag_bytes: per_replica(
                "query_api_replica_lag_bytes",
                "WAL bytes between the primary's position and the replica's replay position.",
            ),
            serving: per_replica(
                "query_api_replica_serving",
                "1 when the replica takes reads: up and at most SURGE_DATABASE_READ_MAX_LAG_MS behind.",
            ),
        }
    }
}

/// The primary's WAL position: the end of what it has written.
const PRIMARY_WAL: &str = "SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint";
/// What a replica has replayed, so what its reads show (a primary named as a replica by
/// mistake answers its own position and is never behind).
const REPLAYED_WAL: &str = "SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() \
     ELSE pg_current_wal_lsn() END - '0/0'::pg_lsn)::bigint";

/// Checks every replica each [`CHECK_EVERY`] until the databases are dropped.
async fn check(
    databases: std::sync::Weak<Databases>,
    replicas: usize,
    gauges: ReplicaGauges,
    max_lag: Duration,
    timeout: Duration,
) {
    let mut primary_wal = WalHistory::default();
    let mut was_serving: Vec<Option<bool>> = vec![None; replicas];
    loop {
        let Some(databases) = databases.upgrade() else {
            return;
        };
        let now = Instant::now();
        // A primary that does not answer leaves the history as it was: replicas are then
        // judged by what the primary was last seen to have written.
        if let Some(position) = read_wal(&databases.primary, PRIMARY_WAL, timeout).await {
            primary_wal.sample(now, position);
        }
        primary_wal.forget_before(now, max_lag.max(Duration::from_secs(1)) * 4);
        // All at once: a replica that does not answer holds no other's check.
        let replayed_all = futures::future::join_all(
            databases
                .replicas
                .iter()
                .map(|replica| read_wal(&replica.pool, REPLAYED_WAL, timeout)),
        )
        .await;
        for (index, (replica, replayed)) in databases.replicas.iter().zip(replayed_all).enumerate()
        {
            let name = [replica.name.as_str()];
            gauges
                .up
                .with_label_values(&name)
                .set(i64::from(replayed.is_some()));
            let lag = replayed.map(|replayed| {
                let lag = primary_wal.lag(now, replayed);
                gauges
                    .lag_seconds
                    .with_label_values(&name)
                    .set(lag.as_secs_f64());
                let bytes = primary_wal
                    .newest()
                    .map_or(0, |newest| (newest - replayed).max(0));
                gauges.lag_bytes.with_label_values(&name).set(bytes);
                lag
            });
            let serving = lag.is_some_and(|lag| lag <= max_lag);
            gauges
                .serving
                .with_label_values(&name)
                .set(i64::from(serving));
            databases.usable[index].store(serving, Ordering::Relaxed);
            if was_serving[index] != Some(serving) {
                match (serving, lag) {
                    (true, _) => {
                        tracing::info!(replica = %replica.name, "The replica serves reads.")
                    }
                    (false, None) => {
                        tracing::warn!(replica = %replica.name, "The replica does not answer; its reads go elsewhere.")
                    }
                    (false, Some(lag)) => {
                        tracing::warn!(replica = %replica.name, lag_ms = lag.as_millis() as u64, "The replica is too far behind; its reads go elsewhere.")
                    }
                }
                was_serving[index] = Some(serving);
            }
        }
        drop(databases);
        tokio::time::sleep_until(now + CHECK_EVERY).await;
    }
}

async fn read_wal(pool: &PgPool, query: &str, timeout: Duration) -> Option<i64> {
    let read = sqlx::query_scalar::<_, i64>(query).fetch_one(pool);
    match tokio::time::timeout(timeout, read).await {
        Ok(Ok(position)) => Some(position),
        Ok(Err(error)) => {
            tracing::debug!(%error, "A WAL position check failed.");
            None
        }
        Err(_) => None,
    }
}

/// The primary's WAL position as sampled at each check, oldest first.
#[derive(Debug, Default)]
struct WalHistory(VecDeque<(Instant, i64)>);

impl WalHistory {
    fn sample(&mut self, at: Instant, position: i64) {
        // Only changes matter: the oldest sample past a replica's position dates its lag.
        if self.newest() != Some(position) {
            self.0.push_back((at, position));
        }
    }

    /// Drops samples older than `keep`, except the newest of those: it dates every position
    /// before the kept ones, so a replica behind it is still shown at least `keep` behind
    /// (dropping it would make such a replica look as recent as the next sample).
    fn forget_before(&mut self, now: Instant, keep: Duration) {
        while self.0.len() > 1 && self.0.get(1).is_some_and(|(at, _)| now - *at > keep) {
            self.0.pop_front();
        }
    }

    fn newest(&self) -> Option<i64> {
        self.0.back().map(|(_, position)| *position)
    }

    /// How long ago the primary had written WAL a replica that replayed up to `replayed` lacks:
    /// zero when it has everything sampled.
    fn lag(&self, now: Instant, replayed: i64) -> Duration {
        self.0
            .iter()
            .find(|(_, position)| *position > replayed)
            .map_or(Duration::ZERO, |(at, _)| now - *at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replica_is_as_far_behind_as_the_oldest_primary_position_it_lacks() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut history = WalHistory::default();
        history.sample(at(0), 100);
        history.sample(at(250), 100);
        history.sample(at(500), 180);
        history.sample(at(750), 260);
        let now = at(1000);
        assert_eq!(history.lag(now, 260), Duration::ZERO, "has everything");
        assert_eq!(
            history.lag(now, 300),
            Duration::ZERO,
            "ahead of the last sample"
        );
        assert_eq!(history.lag(now, 200), Duration::from_millis(250));
        assert_eq!(history.lag(now, 180), Duration::from_millis(250));
        assert_eq!(history.lag(now, 150), Duration::from_millis(500));
        assert_eq!(
            history.lag(now, 50),
            Duration::from_millis(1000),
            "an unchanged position keeps its first sample's time"
        );
        history.forget_before(now, Duration::from_millis(400));
        assert_eq!(
            history.lag(now, 50),
            Duration::from_millis(500),
            "the sample dating what was forgotten stays: still at least 400 ms behind"
        );
        assert_eq!(history.lag(now, 200), Duration::from_millis(250));
        history.forget_before(at(10_000), Duration::from_millis(400));
        assert_eq!(history.newest(), Some(260), "the newest sample stays");
        assert_eq!(
            history.lag(at(10_000), 200),
            Duration::from_millis(9_250),
            "an idle primary: behind since its last change"
        );
    }

    #[tokio::test]
    async fn reads_go_round_robin_to_usable_replicas_and_else_to_the_primary() {
        let lazy = || {
            sqlx::postgres::PgPoolOptions::new()
                .connect_lazy("postgres://nobody@127.0.0.1:1/none")
                .unwrap()
        };
        let replicas = (0..3)
            .map(|i| Replica {
                name: format!("r{i}"),
                pool: lazy(),
            })
            .collect();
        let registry = Registry::new();
        let databases = Databases::new(lazy(), replicas, &registry);
        assert_eq!(databases.pick(), Database::Primary, "none checked yet");
        databases.usable[0].store(true, Ordering::Relaxed);
        databases.usable[2].store(true, Ordering::Relaxed);
        let picks: Vec<_> = (0..4).map(|_| databases.pick()).collect();
        assert!(picks.iter().all(|p| matches!(p, Database::Replica(0 | 2))));
        assert!(picks.contains(&Database::Replica(0)) && picks.contains(&Database::Replica(2)));
        assert_eq!(Database::Replica(2).index(), 3);
    }
}
