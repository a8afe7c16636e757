//! The code of each projection in the catalog ([`ProjectionId`]): how its sink is built for one
//! version (its name, revision and tables are the catalog's). Adding a projection: add it to the
//! catalog (`projections/src/lib.rs`), then, in the module named like it beside this one
//! (`<name>.rs` or `<name>/`), which the compiler asks for, implement `PgProjection` or
//! `RedisProjection` and [`Projector`] for a type named like its id.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use surge_kafka::ProducerSettings;
use surge_projections::ProjectionId;
pub use surge_projections::StoreKind;
use surge_projections::naming::{self, keys_base};
use surge_projections::positions::PositionSource;
use surge_projections::versions::{VersionRegistry, VersionsError};
use surge_redis::Redis;
use surge_schemas::Codec;
use surge_schemas::GameConfig;

use super::code_of;
use crate::emit::{Delivery, Emitter, EmitterSettings};
use crate::notifications::Templates;
use crate::runtime::{
    LivePublisher, PgProjection, PgSink, ProcessorConfig, ProcessorHandle, ProcessorMetrics,
    RedisProjection, RedisSink, Sink, SinkError, spawn,
};

/// A projection's code as `surge process`, `surge replay` and `surge dlq` run it: its sink for
/// one version, built from what every sink receives. Each projector implements it beside its
/// fold.
pub trait Projector {
    type Sink: CatalogSink;
    /// The sink writing `version` of the projection.
    fn sink(version: u32, context: &SinkContext) -> Self::Sink;
}

/// The sink of a projection of the catalog, which knows whose it is.
pub trait CatalogSink: Sink {
    const ID: ProjectionId;
}

impl<P: PgProjection> CatalogSink for PgSink<P> {
    const ID: ProjectionId = P::ID;
}

impl<P: RedisProjection> CatalogSink for RedisSink<P> {
    const ID: ProjectionId = P::ID;
}

/// Declares the projector module of every projection of the catalog and maps each id to its
/// projector (`Id => module`, the projector being `module::Id`); invoked through
/// `surge_projections::each_projection!` in `projectors/mod.rs`, so it always lists exactly the
/// catalog's projections. A projector that writes another projection than its module's fails at
/// compile time.
macro_rules! registry {
    ($($id:ident => $module:ident),+ $(,)?) => {
        $(pub mod $module;)+

        /// The code of each projection.
        pub(crate) const fn code_of(id: surge_projections::ProjectionId) -> registry::Entry {
            match id {
                $(surge_projections::ProjectionId::$id => {
                    registry::entry_of::<$module::$id>(surge_projections::ProjectionId::$id)
                })+
            }
        }

        /// Hands `user` the sink of `version` of `id`.
        pub(crate) async fn use_sink_of<U: registry::UseSink>(
            id: surge_projections::ProjectionId,
            version: u32,
            context: &registry::SinkContext,
            user: U,
        ) -> U::Output {
            match id {
                $(surge_projections::ProjectionId::$id => {
                    let sink = <$module::$id as registry::Projector>::sink(version, context);
                    user.use_sink(sink).await
                })+
            }
        }
    };
}
pub(crate) use registry;

/// A projection this build runs, at the revision of its code this build has. Everything about
/// it is read from its id (the catalog); the entry only proves that this build has the
/// projection's code.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    pub id: ProjectionId,
}

impl Entry {
    pub const fn name(&self) -> &'static str {
        self.id.name()
    }

    pub const fn store(&self) -> StoreKind {
        self.id.store()
    }

    pub const fn revision(&self) -> u32 {
        self.id.revision()
    }
}

/// Every projection of the catalog with the code this build has for it, in the catalog's
/// order: what `surge process` runs.
pub const CATALOG: &[Entry] = &{
    let mut entries = [code_of(ProjectionId::ALL[0]); ProjectionId::ALL.len()];
    let mut i = 1;
    while i < entries.len() {
        entries[i] = code_of(ProjectionId::ALL[i]);
        i += 1;
    }
    entries
};

/// The entry of `id`, whose code is `P`: refused at compile time unless `P` writes `id`.
pub(crate) const fn entry_of<P: Projector>(id: ProjectionId) -> Entry {
    assert!(
        <P::Sink as CatalogSink>::ID.index() == id.index(),
        "the projector in a projection's module writes another projection"
    );
    Entry { id }
}

/// The names of the [`CATALOG`]'s projections.
pub fn names() -> impl Iterator<Item = &'static str> {
    CATALOG.iter().map(|e| e.name())
}

/// The catalog entry named `name`.
pub fn entry(name: &str) -> Result<&'static Entry, StartError> {
    CATALOG
        .iter()
        .find(|e| e.name() == name)
        .ok_or_else(|| StartError::Unknown(name.to_owned()))
}

/// The stores projections write to, and how long the analytics projection keeps its data.
#[derive(Clone)]
pub struct Stores {
    pub pool: PgPool,
    pub redis: Redis,
    /// Deployment prefix of Redis keys.
    pub redis_prefix: String,
    /// Partitions of the events topic: a Redis projection version has a key space for each.
    pub events_partitions: i32,
    /// Age past which `activity` drops whole days (partitions or chunks).
    pub activity_retention: Duration,
}

impl Stores {
    /// Where `version` of `entry` has got to on `topic`, read from the store that holds it.
    pub fn positions(&self, entry: &Entry, version: u32, topic: &str) -> PositionSource {
        match entry.store() {
            StoreKind::Postgres => PositionSource::Postgres {
                pool: self.pool.clone(),
                projection: entry.name(),
                version,
                topic: topic.to_owned(),
            },
            StoreKind::Redis => PositionSource::Redis {
                redis: self.redis.clone(),
                keys_base: keys_base(&self.redis_prefix, entry.name(), version),
                topic: topic.to_owned(),
                partitions: self.events_partitions,
            },
        }
    }

    /// The version registry of `entry`, in the store that holds its data.
    pub fn versions(&self, entry: &Entry) -> VersionRegistry {
        match entry.store() {
            StoreKind::Postgres => VersionRegistry::postgres(self.pool.clone(), entry.name()),
            StoreKind::Redis => {
                VersionRegistry::redis(self.redis.clone(), &self.redis_prefix, entry.name())
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("no projection named {0:?}; known: {known:?}", known = names().collect::<Vec<_>>())]
    Unknown(String),
    #[error("migrating {0} failed: {1}")]
    Migrate(String, SinkError),
    #[error("starting the consumer of {0} failed: {1}")]
    Consumer(String, rdkafka::error::KafkaError),
    #[error(transparent)]
    Versions(#[from] VersionsError),
}

/// What a sink needs besides the stores: how derivers reach the topic, and the metrics.
#[derive(Clone)]
pub struct SinkContext {
    pub stores: Stores,
    pub codec: Arc<Codec>,
    pub brokers: String,
    pub topic: String,
    pub derived_delivery: Delivery,
    pub metrics: ProcessorMetrics,
    /// The game's configuration (the quests the `quests` deriver completes).
    pub game: GameConfig,
    /// Which events message their user, and what the messages say.
    pub templates: Arc<Templates>,
}

/// Something done with one projection version's sink, whatever the projection's type.
pub trait UseSink {
    type Output;
    fn use_sink<S: Sink>(self, sink: S) -> impl Future<Output = Self::Output> + Send;
}

/// Builds the sink of `version` of the projection `name` and hands it to `user`.
pub async fn with_sink<U: UseSink>(
    name: &str,
    version: u32,
    context: &SinkContext,
    user: U,
) -> Result<U::Output, StartError> {
    Ok(super::use_sink_of(entry(name)?.id, version, context, user).await)
}

impl SinkContext {
    /// `projection`'s sink in PostgreSQL.
    pub fn pg_sink<P: PgProjection>(&self, projection: P) -> PgSink<P> {
        PgSink::new(projection, self.stores.pool.clone())
    }

    /// `projection`'s sink for `version` in Redis.
    pub fn redis_sink<P: RedisProjection>(&self, projection: P, version: u32) -> RedisSink<P> {
        let stores = &self.stores;
        RedisSink::new(
            projection,
            stores.redis.clone(),
            &stores.redis_prefix,
            version,
            stores.events_partitions,
        )
    }

    /// The emitter of `version` of the deriver `id`; its id names the deriver's transactions.
    pub fn emitter(&self, id: ProjectionId, version: u32) -> Arc<Emitter> {
        let settings = EmitterSettings {
            producer: ProducerSettings::new(&self.brokers, &self.topic),
            deriver_id: naming::processor_id(id.name(), version),
        };
        Arc::new(Emitter::new(
            self.derived_delivery,
            settings,
            self.codec.clone(),
            self.metrics.derived_transactions.clone(),
        ))
    }
}

/// Migrates a sink's store and starts its serving processor.
struct Spawn {
    codec: Arc<Codec>,
    config: ProcessorConfig,
    metrics: ProcessorMetrics,
    stores: Stores,
}

impl UseSink for Spawn {
    type Output = Result<ProcessorHandle, StartError>;

    async fn use_sink<S: Sink>(self, sink: S) -> Self::Output {
        let id = sink.id();
        sink.migrate()
            .await
            .map_err(|e| StartError::Migrate(id.clone(), e))?;
        let live = LivePublisher::spawn(
            self.stores.redis.clone(),
            &self.stores.redis_prefix,
            sink.name(),
        );
        spawn(sink, self.codec, self.config, self.metrics, Some(live))
            .map_err(|e| StartError::Consumer(id, e))
    }
}

/// Migrates `version` of the projection `name` and starts its serving processor.
pub async fn start(
    name: &str,
    version: u32,
    context: &SinkContext,
    config: ProcessorConfig,
) -> Result<ProcessorHandle, StartError> {
    let spawn = Spawn {
        codec: context.codec.clone(),
        config,
        metrics: context.metrics.clone(),
        stores: context.stores.clone(),
    };
    with_sink(name, version, context, spawn).await?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_name_is_refused_with_the_catalog_names() {
        let catalog: Vec<ProjectionId> = CATALOG.iter().map(|e| e.id).collect();
        assert_eq!(
            catalog,
            ProjectionId::ALL,
            "the catalog's projections, in its order"
        );
        let error = StartError::Unknown("nope".into()).to_string();
        assert!(
            error.contains(r#"known: ["profiles", "wallets""#),
            "{error}"
        );
        assert!(entry("nope").is_err());
        assert_eq!(entry("feed").unwrap().store(), StoreKind::Redis);
    }
}
