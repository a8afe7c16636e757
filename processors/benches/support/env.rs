//! What one run owns, and its removal: a PostgreSQL schema (in a database created if missing)
//! holding the schema registry and the projections, a Redis key prefix, and the topics.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, Postgres};
use surge_kafka::admin::ensure_topic;
use surge_processors::projectors::Stores;
use surge_projections::naming;
use surge_schema_registry::{EmbeddedRegistry, Registry};
use surge_schemas::Codec;

use crate::PARTITIONS;

/// What one run owns: a topic, a PostgreSQL schema and a Redis key prefix, removed at the end.
/// A setting from the environment, `default` when unset or empty.
pub(crate) fn setting(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// A whole-number setting above zero (`_` separators allowed: `1_000_000`).
pub(crate) fn count(name: &str, default: &str) -> anyhow::Result<u64> {
    let value = setting(name, default);
    let n: u64 = value
        .replace('_', "")
        .parse()
        .with_context(|| format!("{name}={value} is not a whole number"))?;
    anyhow::ensure!(n > 0, "{name} must be above 0");
    Ok(n)
}

/// What every benchmark run needs: the topic's size and the servers.
pub(crate) struct Run {
    /// Events in the pre-filled topic (`SURGE_BENCH_EVENTS`, default 1,000,000).
    pub(crate) events: usize,
    /// Distinct users among them (`SURGE_BENCH_USERS`, default 100,000).
    pub(crate) users: u64,
    /// `SURGE_TEST_KAFKA_BROKERS`, default 127.0.0.1:19092.
    pub(crate) brokers: String,
    /// `SURGE_BENCH_DATABASE_URL` (the database is created if missing).
    pub(crate) database_url: String,
    /// `SURGE_REDIS_URL`.
    pub(crate) redis_url: String,
    /// Where results are written (`SURGE_BENCH_RESULTS`).
    pub(crate) results: std::path::PathBuf,
}

impl Run {
    pub(crate) fn from_env() -> anyhow::Result<Run> {
        Ok(Run {
            events: usize::try_from(count("SURGE_BENCH_EVENTS", "1000000")?)?,
            users: count("SURGE_BENCH_USERS", "100000")?,
            brokers: setting("SURGE_TEST_KAFKA_BROKERS", "127.0.0.1:19092"),
            database_url: setting(
                "SURGE_BENCH_DATABASE_URL",
                "postgres://postgres@127.0.0.1:5432/surge_bench",
            ),
            redis_url: setting("SURGE_REDIS_URL", "redis://127.0.0.1:6379"),
            results: results_dir(),
        })
    }
}

/// Where results are written: `SURGE_BENCH_RESULTS`, else the workspace's `bench/results`.
fn results_dir() -> std::path::PathBuf {
    std::env::var_os("SURGE_BENCH_RESULTS").map_or_else(
        || {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .expect("the crate sits in the workspace")
                .join("bench/results")
        },
        std::path::PathBuf::from,
    )
}

pub(crate) struct Env {
    pub(crate) id: String,
    pub(crate) topic: String,
    pub(crate) registry: EmbeddedRegistry,
    pub(crate) codec: Arc<Codec>,
    pub(crate) stores: Stores,
}

impl Env {
    pub(crate) async fn setup(settings: &Run, unix_time: u64) -> anyhow::Result<Env> {
        let id = format!("bench_{unix_time}_{}", std::process::id());
        let url = &settings.database_url;
        if !Postgres::database_exists(url)
            .await
            .context("Failed to reach PostgreSQL")?
        {
            Postgres::create_database(url)
                .await
                .context("Failed to create the benchmark database")?;
        }
        let mut admin = PgConnection::connect(url).await?;
        sqlx::raw_sql(&format!("CREATE SCHEMA {id}"))
            .execute(&mut admin)
            .await
            .context("Failed to create the run's schema")?;
        admin.close().await?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .connect_with(
                PgConnectOptions::from_str(url)?
                    .options([("search_path", id.as_str())])
                    .application_name(&id),
            )
            .await
            .context("Failed to connect to PostgreSQL")?;
        let registry = Registry::open(pool.clone())
            .await
            .context("Failed to open the schema registry")?;
        let registry = surge_schema_registry::serve(registry, "127.0.0.1:0".parse()?)
            .await
            .context("Failed to serve the schema registry")?;
        let topic = format!("{}.events", id.replace('_', "-"));
        let codec = Codec::new(&registry.url, &topic, Duration::from_secs(10))?;
        codec
            .register_all()
            .await
            .context("Failed to register the schemas")?;
        let client = redis::Client::open(settings.redis_url.as_str())?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(2))
            .set_response_timeout(Duration::from_secs(10));
        let redis = ConnectionManager::new_with_config(client, config)
            .await
            .context("Failed to connect to Redis")?;
        for (name, partitions) in [
            (topic.clone(), PARTITIONS),
            (naming::dead_letter_topic(&topic), 1),
        ] {
            ensure_topic(&settings.brokers, &name, partitions, 1)
                .await
                .with_context(|| format!("Failed to create topic {name}"))?;
        }
        Ok(Env {
            topic,
            registry,
            codec: Arc::new(codec),
            stores: Stores {
                pool,
                redis: surge_redis::Redis::Single(redis),
                redis_prefix: id.replace('_', "-"),
                events_partitions: PARTITIONS,
                activity_retention: surge_processors::projectors::activity::DEFAULT_RETENTION,
            },
            id,
        })
    }

    /// Removes the schema, the keys and the topics; reports failures without stopping.
    pub(crate) async fn teardown(self, settings: &Run) {
        self.stores.pool.close().await;
        let _ = self.registry.shutdown().await;
        let dropped = async {
            let mut admin = PgConnection::connect(&settings.database_url).await?;
            sqlx::raw_sql(&format!("DROP SCHEMA {} CASCADE", self.id))
                .execute(&mut admin)
                .await?;
            admin.close().await
        };
        if let Err(error) = dropped.await {
            eprintln!("warning: could not drop schema {}: {error}", self.id);
        }
        let mut redis = self.stores.redis.clone();
        if let Err(error) = delete_keys(&mut redis, &format!("{}*", self.stores.redis_prefix)).await
        {
            eprintln!("warning: could not delete the run's Redis keys: {error}");
        }
        let admin: Result<AdminClient<DefaultClientContext>, _> =
            surge_kafka::client_config(&settings.brokers).create();
        let dlq = naming::dead_letter_topic(&self.topic);
        if let Ok(admin) = admin {
            let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
            if let Err(error) = admin.delete_topics(&[&self.topic, &dlq], &options).await {
                eprintln!("warning: could not delete the topics: {error}");
            }
        }
    }
}

async fn delete_keys(redis: &mut surge_redis::Redis, pattern: &str) -> redis::RedisResult<()> {
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(5000)
            .query_async(redis)
            .await?;
        if !keys.is_empty() {
            redis::cmd("UNLINK")
                .arg(&keys)
                .query_async::<()>(redis)
                .await?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}
