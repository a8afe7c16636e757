//! Read-your-writes. A write's `X-Consistency-Token` names where its event landed; a read that
//! carries it waits (up to the configured bound) until the projections behind the endpoint have
//! applied that position, then serves. Past the bound it answers 504 `consistency_timeout` with
//! Retry-After, never stale data as if fresh. Positions are per version, so the wait also
//! decides which snapshot of the served versions the request reads (see `read_after`).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};
use sqlx::PgPool;
use surge_http::ApiError;
use surge_schemas::Position;
use tokio::sync::watch;
use tokio::time::Instant;

use super::QueryState;
use super::databases::{Database, Databases};
use super::sources::Served;
use super::waiters::{Caller, Full};
use super::watcher::WaitError;
use crate::catalog::{ProjectionId, StoreKind};

pub(crate) const HEADER: &str = "x-consistency-token";

/// The position a read must reflect, if the request named one.
pub(crate) struct ReadAfter(pub Option<Position>);

impl FromRequestParts<QueryState> for ReadAfter {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &QueryState) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get(HEADER) else {
            return Ok(ReadAfter(None));
        };
        let invalid = |why: &str| {
            ApiError::bad_request(
                "invalid_consistency_token",
                format!("X-Consistency-Token {why}"),
            )
        };
        let token = value
            .to_str()
            .map_err(|_| invalid("is not a token returned by the write API"))?;
        verified(state, token)
            .map(|position| ReadAfter(Some(position)))
            .map_err(|why| invalid(&why))
    }
}

/// The position `token` names, if this deployment signed it for its own events topic; else
/// why not.
pub(crate) fn verified(state: &QueryState, token: &str) -> Result<Position, String> {
    let position = state
        .config
        .token_keys
        .verify(token)
        .map_err(|why| why.to_string())?;
    if position.topic != state.config.events_topic {
        return Err("comes from another deployment".to_owned());
    }
    Ok(position)
}

impl QueryState {
    /// The snapshot and database to read from, once every projection in `behind` has applied
    /// `after` on that database (at once without a token). All share one deadline: the bound is
    /// per request, not per projection. `reader` is the proven user, if the read carries
    /// initData: waits are bounded per caller as well as in total (see `waiters`).
    ///
    /// A position is confirmed per version: if a waited-on projection switches version during
    /// the wait, the wait goes on with the new version's watcher (a fenced old version would
    /// never get there) and the new snapshot is returned. The snapshot returned is one in which
    /// every projection in `behind` was confirmed at exactly the version it names.
    pub(crate) async fn read_after(
        &self,
        after: &ReadAfter,
        reader: Option<i64>,
        behind: &[ProjectionId],
    ) -> Result<Reading, ApiError> {
        let started = Instant::now();
        let mut sources = self.sources.subscribe();
        let mut served = settled(&mut sources, behind, started + self.config.store_timeout).await?;
        let mut database = self.databases.pick();
        let Some(position) = &after.0 else {
            return Ok(self.reading(served, database));
        };
        // Bounded: past a bound a read is refused at once instead of holding a task.
        let _waiting = match self.waiters.try_enter(Caller::of(reader, position)) {
            Ok(waiting) => waiting,
            Err(full) => {
                self.metrics
                    .outcomes
                    .with_label_values(&[behind.first().map_or("none", |p| p.name()), "refused"])
                    .inc();
                let message = match full {
                    Full::Instance => "too many reads are waiting for their writes; retry shortly",
                    Full::Caller => {
                        "you have too many reads waiting for your writes; retry shortly"
                    }
                };
                return Err(ApiError::unavailable(
                    "too_many_waiters",
                    message,
                    Duration::from_secs(1),
                ));
            }
        };
        let deadline = started + self.config.consistency_wait;
        // A replica gets three quarters of the wait to show the write; the primary answers
        // what it has not shown by then, so a replica that fell behind since its last check
        // costs time, never a failed read.
        let replica_deadline = started + self.config.consistency_wait * 3 / 4;
        let mut confirmed: Vec<(ProjectionId, u32)> = Vec::with_capacity(behind.len());
        'snapshot: loop {
            for &projection in behind {
                let version = served.version(projection);
                if confirmed.contains(&(projection, version)) {
                    continue;
                }
                // Redis projections have one watcher whatever the database.
                let on_replica = matches!(database, Database::Replica(_))
                    && projection.store() == StoreKind::Postgres;
                let until = if on_replica {
                    replica_deadline
                } else {
                    deadline
                };
                let wait = served.watcher(projection, database).wait_applied(
                    position.partition,
                    position.offset,
                    until,
                );
                let outcome = tokio::select! {
                    outcome = wait => outcome,
                    Ok(newer) = switched(&mut sources, &served, behind) => {
                        served = newer;
                        continue 'snapshot;
                    }
                };
                if outcome.is_err() && on_replica {
                    database = Database::Primary;
                    confirmed.clear();
                    continue 'snapshot;
                }
                self.count_wait(projection, outcome)?;
                confirmed.push((projection, version));
            }
            break;
        }
        self.metrics
            .wait
            .with_label_values(&[behind.first().map_or("none", |p| p.name())])
            .observe(started.elapsed().as_secs_f64());
        Ok(self.reading(served, database))
    }

    fn reading(&self, served: Arc<Served>, database: Database) -> Reading {
        Reading {
            served,
            database,
            databases: self.databases.clone(),
        }
    }

    /// Counts a wait's outcome and turns a failed one into the answer.
    fn count_wait(
        &self,
        projection: ProjectionId,
        outcome: Result<(), WaitError>,
    ) -> Result<(), ApiError> {
        let name = projection.name();
        let label = match outcome {
            Ok(()) => "applied",
            Err(WaitError::Timeout) => "timeout",
            Err(WaitError::StoreDown) => "store_down",
        };
        self.metrics
            .outcomes
            .with_label_values(&[name, label])
            .inc();
        match outcome {
            Ok(()) => Ok(()),
            Err(WaitError::Timeout) => Err(ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "consistency_timeout",
                format!(
                    "the {name} view has not caught up with your write within {} ms; retry shortly",
                    self.config.consistency_wait.as_millis()
                ),
            )
            .retry_after(Duration::from_secs(1))),
            Err(WaitError::StoreDown) => Err(store_unavailable()),
        }
    }
}

/// The current snapshot once a registry has confirmed the version of every projection in
/// `behind` (at start-up, until the first poll has answered: a restart after a replay must not
/// read version 1). A registry that does not answer by `deadline` is a store that is down.
async fn settled(
    sources: &mut watch::Receiver<Arc<Served>>,
    behind: &[ProjectionId],
    deadline: Instant,
) -> Result<Arc<Served>, ApiError> {
    loop {
        let served = sources.borrow_and_update().clone();
        if behind.iter().all(|p| served.settled(*p)) {
            return Ok(served);
        }
        tokio::select! {
            changed = sources.changed() => changed.map_err(|_| store_unavailable())?,
            () = tokio::time::sleep_until(deadline) => return Err(store_unavailable()),
        }
    }
}

/// Resolves with the newest snapshot once it serves another version than `served` of a
/// projection in `behind`; fails (and so never resolves in a `select!`) if the snapshots end.
async fn switched(
    sources: &mut watch::Receiver<Arc<Served>>,
    served: &Served,
    behind: &[ProjectionId],
) -> Result<Arc<Served>, watch::error::RecvError> {
    loop {
        sources.changed().await?;
        let newer = sources.borrow_and_update().clone();
        if behind
            .iter()
            .any(|p| newer.version(*p) != served.version(*p))
        {
            return Ok(newer);
        }
    }
}

/// What a read reads: the snapshot of the served versions, and the PostgreSQL database on
/// which its projections were confirmed (a replica or the primary; see `databases`).
pub(crate) struct Reading {
    served: Arc<Served>,
    database: Database,
    databases: Arc<Databases>,
}

impl Reading {
    /// Runs `read` (one read of `projection`, a PostgreSQL projection) on this read's database,
    /// bounded and logged like [`read_store`]. A replica that fails it or times out (down since
    /// its last check, or still without a new version's tables) hands it to the primary, which
    /// holds everything any replica holds: a token confirmed on the replica holds there too.
    pub(crate) async fn read<'a, T, E, F>(
        &'a self,
        state: &QueryState,
        projection: ProjectionId,
        read: impl Fn(&'a PgPool) -> F,
    ) -> Result<T, ApiError>
    where
        F: Future<Output = Result<T, E>>,
        E: std::fmt::Display,
    {
        if let Database::Replica(_) = self.database {
            let attempt = read(self.databases.read_on(self.database));
            match tokio::time::timeout(state.config.store_timeout, attempt).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(error)) => surge_http::sampled_warn!(
                    key = "replica",
                    %error,
                    "A {} read failed on a replica; the primary answers it.",
                    projection.name()
                ),
                Err(_) => surge_http::sampled_warn!(
                    key = "replica",
                    "A {} read timed out on a replica; the primary answers it.",
                    projection.name()
                ),
            }
        }
        let primary = self.databases.read_on(Database::Primary);
        read_store(state, projection, read(primary)).await
    }
}

impl std::ops::Deref for Reading {
    type Target = Served;
    fn deref(&self) -> &Served {
        &self.served
    }
}

/// The answer when a store does not respond: fast, retryable, naming no internals.
pub(crate) fn store_unavailable() -> ApiError {
    ApiError::unavailable(
        "store_unavailable",
        "the data behind this endpoint is temporarily unavailable",
        Duration::from_secs(1),
    )
}

/// Runs a read of `projection`'s store with the configured timeout; any failure becomes
/// [`store_unavailable`] and is logged here with its cause.
pub(crate) async fn read_store<T, E: std::fmt::Display>(
    state: &QueryState,
    projection: ProjectionId,
    read: impl Future<Output = Result<T, E>>,
) -> Result<T, ApiError> {
    bounded(state, projection.name(), read).await
}

/// Runs a call to the store named `store` with the configured timeout; any failure becomes
/// [`store_unavailable`] and is logged here with its cause (sampled, keyed by the store).
pub(crate) async fn bounded<T, E: std::fmt::Display>(
    state: &QueryState,
    store: &'static str,
    read: impl Future<Output = Result<T, E>>,
) -> Result<T, ApiError> {
    match tokio::time::timeout(state.config.store_timeout, read).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => {
            surge_http::sampled_warn!(key = store, %error, "A {store} store read failed.");
            Err(store_unavailable())
        }
        Err(_) => {
            surge_http::sampled_warn!(key = store, "A {store} store read timed out.");
            Err(store_unavailable())
        }
    }
}

pub(crate) struct WaitMetrics {
    wait: HistogramVec,
    outcomes: IntCounterVec,
}

impl WaitMetrics {
    pub(crate) fn register(registry: &Registry) -> Self {
        let wait = HistogramVec::new(
            HistogramOpts::new(
                "query_api_consistency_wait_seconds",
                "Time reads with a consistency token waited for their projections.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0,
            ]),
            &["projection"],
        )
        .expect("valid metric");
        let outcomes = IntCounterVec::new(
            Opts::new(
                "query_api_consistency_waits_total",
                "Consistency waits by projection and outcome (applied, timeout, store_down).",
            ),
            &["projection", "outcome"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(wait.clone()))
            .expect("registered once");
        registry
            .register(Box::new(outcomes.clone()))
            .expect("registered once");
        WaitMetrics { wait, outcomes }
    }
}
