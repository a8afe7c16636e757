//! Connecting to the stores and the broker the baselines scenario measures, the way the `surge`
//! roles connect to them (`src/infra.rs`): the same pool settings, schema and timeouts.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use rdkafka::consumer::{Consumer, ConsumerContext};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres};

use crate::settings::Common;

/// PostgreSQL with `search_path` set to the deployment's schema, a pool of `connections` that
/// waits at most `acquire_timeout` for one; creates the database and schema if missing.
pub(crate) async fn database_pool(
    common: &Common,
    connections: u32,
    acquire_timeout: Duration,
) -> anyhow::Result<PgPool> {
    let url = &common.database_url;
    let exists = Postgres::database_exists(url)
        .await
        .context("Failed to reach PostgreSQL")?;
    if !exists {
        // Another process may create it at the same moment; only a still-missing database is an error.
        if let Err(error) = Postgres::create_database(url).await
            && !Postgres::database_exists(url).await.unwrap_or(false)
        {
            return Err(error).context("Failed to create the database");
        }
    }
    let options =
        PgConnectOptions::from_str(url).context("SURGE_DATABASE_URL is not a PostgreSQL URL")?;
    let schema = &common.database_schema;
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options.clone())
        .await?;
    let create = format!(
        "CREATE SCHEMA IF NOT EXISTS \"{}\"",
        schema.replace('"', "\"\"")
    );
    if let Err(error) = sqlx::query(&create).execute(&admin).await {
        tracing::debug!(%error, "CREATE SCHEMA raced with another process.");
    }
    admin.close().await;
    PgPoolOptions::new()
        .max_connections(connections)
        .acquire_timeout(acquire_timeout)
        .connect_with(options.options([("search_path", schema.as_str())]))
        .await
        .context("Failed to connect to PostgreSQL")
}

/// A multiplexed, self-reconnecting Redis connection with bounded waits.
pub(crate) async fn redis(common: &Common) -> anyhow::Result<ConnectionManager> {
    let client =
        redis::Client::open(common.redis_url.as_str()).context("SURGE_REDIS_URL is invalid")?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Duration::from_secs(2))
        .set_response_timeout(Duration::from_secs(2));
    ConnectionManager::new_with_config(client, config)
        .await
        .context("Failed to connect to Redis")
}

/// The partition ids of `topic`, from the broker's metadata; an error if it has none.
pub(crate) fn topic_partitions<C: ConsumerContext>(
    consumer: &impl Consumer<C>,
    topic: &str,
) -> anyhow::Result<Vec<i32>> {
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .with_context(|| format!("Failed to read the metadata of {topic}"))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    anyhow::ensure!(
        !partitions.is_empty(),
        "topic {topic} does not exist on the broker"
    );
    Ok(partitions)
}

pub(crate) use surge_processors::runtime::PartitionEndsExpected;
