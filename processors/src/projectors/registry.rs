//! The projections `surge process` can run, by name. Adding a projection: implement
//! `PgProjection` or `RedisProjection` in this folder, add one arm to [`start`] and its entry
//! to [`CATALOG`].

use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use sqlx::PgPool;
use surge_producers::kafka::ProducerSettings;
use surge_schemas::Codec;

use crate::derivers::emit::{Emitter, EmitterSettings};
use crate::derivers::referrals::Referrals;
use crate::runtime::{
    PgProjection, PgSink, ProcessorConfig, ProcessorHandle, ProcessorMetrics, RedisProjection,
    RedisSink, Sink, SinkError, migrate_pg, spawn,
};

/// Where a projection keeps its state (and its positions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Postgres,
    Redis,
}

/// A projection this build runs, at the version it builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub name: &'static str,
    pub version: u32,
    pub store: StoreKind,
}

/// Every projection `surge process` runs, with its version and store.
pub const CATALOG: &[Entry] = &[
    pg_entry::<super::profiles::Profiles>(),
    pg_entry::<super::wallets::Wallets>(),
    redis_entry::<super::leaderboard::Leaderboard>(),
    redis_entry::<super::feed::Feed>(),
    pg_entry::<Referrals>(),
    pg_entry::<super::activity::Activity>(),
];

/// The names of the [`CATALOG`]'s projections.
pub fn names() -> impl Iterator<Item = &'static str> {
    CATALOG.iter().map(|e| e.name)
}

const fn pg_entry<P: PgProjection>() -> Entry {
    Entry {
        name: P::NAME,
        version: P::VERSION,
        store: StoreKind::Postgres,
    }
}

const fn redis_entry<P: RedisProjection>() -> Entry {
    Entry {
        name: P::NAME,
        version: P::VERSION,
        store: StoreKind::Redis,
    }
}

/// The stores projections write to, and how long the analytics projection keeps its data.
#[derive(Clone)]
pub struct Stores {
    pub pool: PgPool,
    pub redis: ConnectionManager,
    /// Deployment prefix of Redis keys.
    pub redis_prefix: String,
    /// Age past which `activity` drops whole days (partitions or chunks).
    pub activity_retention: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("no projection named {0:?}; known: {known:?}", known = names().collect::<Vec<_>>())]
    Unknown(String),
    #[error("migrating {0} failed: {1}")]
    Migrate(String, SinkError),
    #[error("starting the consumer of {0} failed: {1}")]
    Consumer(String, rdkafka::error::KafkaError),
}

/// Migrates the named projection's store and starts its processor.
pub async fn start(
    name: &str,
    stores: &Stores,
    codec: Arc<Codec>,
    config: ProcessorConfig,
    metrics: ProcessorMetrics,
) -> Result<ProcessorHandle, StartError> {
    match name {
        "profiles" => {
            run(
                PgSink::new(super::profiles::Profiles, stores.pool.clone()),
                codec,
                config,
                metrics,
            )
            .await
        }
        "wallets" => {
            run(
                PgSink::new(super::wallets::Wallets, stores.pool.clone()),
                codec,
                config,
                metrics,
            )
            .await
        }
        "leaderboard" => {
            let sink = RedisSink::new(
                super::leaderboard::Leaderboard,
                stores.redis.clone(),
                &stores.redis_prefix,
            );
            run(sink, codec, config, metrics).await
        }
        "feed" => {
            let sink = RedisSink::new(
                super::feed::Feed,
                stores.redis.clone(),
                &stores.redis_prefix,
            );
            run(sink, codec, config, metrics).await
        }
        "referrals" => {
            let settings = EmitterSettings {
                producer: ProducerSettings::new(&config.brokers, &config.topic),
                deriver_id: "referrals.v1".into(),
            };
            let emitter = Emitter::new(
                config.derived_delivery,
                settings,
                codec.clone(),
                metrics.derived_transactions.clone(),
            );
            let deriver = Referrals::new(Arc::new(emitter), metrics.derived_outcomes.clone());
            run(
                PgSink::new(deriver, stores.pool.clone()),
                codec,
                config,
                metrics,
            )
            .await
        }
        "activity" => {
            let activity = super::activity::Activity::new(stores.activity_retention);
            run(
                PgSink::new(activity, stores.pool.clone()),
                codec,
                config,
                metrics,
            )
            .await
        }
        other => Err(StartError::Unknown(other.to_owned())),
    }
}

/// Creates every PostgreSQL projection's tables (for `surge migrate`).
pub async fn migrate_all(pool: &PgPool) -> Result<(), StartError> {
    fn failed(name: &'static str) -> impl FnOnce(SinkError) -> StartError {
        move |e| StartError::Migrate(format!("{name}.v1"), e)
    }
    migrate_pg::<super::profiles::Profiles>(pool)
        .await
        .map_err(failed("profiles"))?;
    migrate_pg::<super::wallets::Wallets>(pool)
        .await
        .map_err(failed("wallets"))?;
    migrate_pg::<Referrals>(pool)
        .await
        .map_err(failed("referrals"))?;
    migrate_pg::<super::activity::Activity>(pool)
        .await
        .map_err(failed("activity"))
}

async fn run<S: Sink>(
    sink: S,
    codec: Arc<Codec>,
    config: ProcessorConfig,
    metrics: ProcessorMetrics,
) -> Result<ProcessorHandle, StartError> {
    let id = sink.id();
    sink.migrate()
        .await
        .map_err(|e| StartError::Migrate(id.clone(), e))?;
    spawn(sink, codec, config, metrics).map_err(|e| StartError::Consumer(id, e))
}

/// Forgets every projection's state built from `topic`: positions, PostgreSQL tables (recreated
/// by the next start) and Redis keys. For an embedded broker that starts empty on every run,
/// where stored positions would otherwise point past the new, shorter log and skip its events.
pub async fn reset_all(stores: &Stores, topic: &str) -> Result<(), SinkError> {
    let pool = &stores.pool;
    for prefix in [
        super::profiles::Profiles::table_prefix(),
        super::wallets::Wallets::table_prefix(),
        Referrals::table_prefix(),
        super::activity::Activity::table_prefix(),
    ] {
        let tables: Vec<(String,)> = sqlx::query_as(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE $1",
        )
        .bind(format!("{prefix}\\_%"))
        .fetch_all(pool)
        .await?;
        for (table,) in tables {
            sqlx::query(&format!("DROP TABLE IF EXISTS \"{table}\" CASCADE"))
                .execute(pool)
                .await?;
        }
    }
    let positions_exist: Option<(String,)> =
        sqlx::query_as("SELECT to_regclass('projection_positions')::text")
            .fetch_optional(pool)
            .await?;
    if positions_exist.is_some_and(|(name,)| !name.is_empty()) {
        sqlx::query("DELETE FROM projection_positions WHERE topic = $1")
            .bind(topic)
            .execute(pool)
            .await?;
    }
    let mut redis = stores.redis.clone();
    for name in ["leaderboard", "feed"] {
        let pattern = format!("{}:{name}:v*", stores.redis_prefix);
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(&pattern)
            .query_async(&mut redis)
            .await?;
        for chunk in keys.chunks(500) {
            let _: () = redis::cmd("DEL").arg(chunk).query_async(&mut redis).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_name_is_refused_with_the_catalog_names() {
        assert_eq!(
            names().collect::<Vec<_>>(),
            [
                "profiles",
                "wallets",
                "leaderboard",
                "feed",
                "referrals",
                "activity"
            ]
        );
        let error = StartError::Unknown("nope".into()).to_string();
        assert!(
            error.contains(r#"known: ["profiles", "wallets""#),
            "{error}"
        );
    }
}
