//! Connecting to, or embedding, what the roles depend on: Kafka (or librdkafka's in-process mock
//! cluster), the schema registry (or the embedded one, stored in PostgreSQL), PostgreSQL, Redis.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres};
use surge_kafka::admin::ensure_topic;
use surge_processors::projectors::Stores;
use surge_projections::naming::dead_letter_topic;
use surge_projections::query_api::Replica;
use surge_redis::Redis;
use surge_schema_registry::{EmbeddedRegistry, Registry};
use surge_schemas::Codec;

use crate::settings::Common;

/// Brokers to talk to; holds the mock cluster alive when it is the embedded one.
pub struct Kafka {
    pub brokers: String,
    _embedded: Option<MockCluster<'static, DefaultProducerContext>>,
}

/// Connects to SURGE_KAFKA_BROKERS, or starts the in-process mock cluster, and creates the topic.
pub async fn kafka(common: &Common) -> anyhow::Result<Kafka> {
    let (brokers, embedded) = match &common.kafka_brokers {
        Some(brokers) => (brokers.clone(), None),
        None => {
            let cluster =
                MockCluster::new(1).context("Failed to start the embedded Kafka mock cluster")?;
            let brokers = cluster.bootstrap_servers();
            let topic = &common.events_topic;
            for (name, partitions) in [
                (topic.clone(), common.events_partitions),
                (dead_letter_topic(topic), 1),
            ] {
                cluster
                    .create_topic(&name, partitions, 1)
                    .with_context(|| {
                        format!("Failed to create topic {name} in the mock cluster")
                    })?;
            }
            tracing::info!(%brokers, "Embedded Kafka (librdkafka mock cluster) started; its events live only as long as this process.");
            (brokers, Some(cluster))
        }
    };
    let dlq = dead_letter_topic(&common.events_topic);
    for (topic, partitions) in [(&common.events_topic, common.events_partitions), (&dlq, 1)] {
        ensure_topic(&brokers, topic, partitions, common.topic_replication)
            .await
            .with_context(|| format!("Failed to create topic {topic} on {brokers}"))?;
    }
    Ok(Kafka {
        brokers,
        _embedded: embedded,
    })
}

/// The projection stores with the default activity retention (only processors apply it), for
/// the processors: PostgreSQL ends a transaction left idle for `idle_in_transaction`. A
/// processor that stops in the middle of a batch (paused, frozen, cut off) holds its
/// partitions' position rows locked; the group hands the partitions to another instance after
/// its session timeout, and the new owner's claim waits on those locks until the server ends
/// that transaction, so give it the session timeout. The frozen instance's commit then fails,
/// and its retry is fenced.
pub async fn stores(common: &Common, idle_in_transaction: Duration) -> anyhow::Result<Stores> {
    let timeout = format!("{}ms", idle_in_transaction.as_millis().max(1));
    let pool = database_pool_with(
        common,
        CONNECTIONS,
        ACQUIRE_TIMEOUT,
        &[("idle_in_transaction_session_timeout", &timeout)],
    )
    .await?;
    Ok(stores_with(common, pool, redis(common).await?))
}

pub fn stores_with(common: &Common, pool: PgPool, redis: Redis) -> Stores {
    Stores {
        pool,
        redis_prefix: common.redis_prefix.clone(),
        redis,
        events_partitions: common.events_partitions,
        activity_retention: surge_processors::projectors::activity::DEFAULT_RETENTION,
    }
}

/// Connections of a role's pool, unless the role sets its own (the query API).
const CONNECTIONS: u32 = 16;
/// How long a role waits for a connection of its pool, unless it sets its own.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// PostgreSQL with `search_path` set to Surge's schema; creates the database and schema if missing.
pub async fn database(common: &Common) -> anyhow::Result<PgPool> {
    database_pool(common, CONNECTIONS, ACQUIRE_TIMEOUT).await
}

/// Like [`database`], with a pool of `connections` that waits at most `acquire_timeout` for one.
pub async fn database_pool(
    common: &Common,
    connections: u32,
    acquire_timeout: Duration,
) -> anyhow::Result<PgPool> {
    database_pool_with(common, connections, acquire_timeout, &[]).await
}

/// Like [`database_pool`], with these run-time parameters set on every connection.
pub async fn database_pool_with(
    common: &Common,
    connections: u32,
    acquire_timeout: Duration,
    parameters: &[(&str, &str)],
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
        .connect_with(
            options
                .options([("search_path", schema.as_str())])
                .options(parameters.iter().copied()),
        )
        .await
        .context("Failed to connect to PostgreSQL")
}

/// Pools on the read replicas `urls`, with the primary's schema. Lazy: a replica that is down
/// at start is skipped until it answers, rather than stopping the role.
pub fn read_replicas(
    common: &Common,
    urls: &[String],
    connections: u32,
    acquire_timeout: Duration,
) -> anyhow::Result<Vec<Replica>> {
    urls.iter()
        .filter(|url| !url.trim().is_empty())
        .map(|url| {
            let options = PgConnectOptions::from_str(url.trim())
                .context("SURGE_DATABASE_READ_URLS holds something that is not a PostgreSQL URL")?;
            let name = format!("{}:{}", options.get_host(), options.get_port());
            let pool = PgPoolOptions::new()
                .max_connections(connections)
                .acquire_timeout(acquire_timeout)
                .connect_lazy_with(
                    options.options([("search_path", common.database_schema.as_str())]),
                );
            Ok(Replica { name, pool })
        })
        .collect()
}

/// The schema registry URL; starts the embedded registry when SURGE_SCHEMA_REGISTRY_URL is unset.
pub struct SchemaRegistry {
    pub url: String,
    _embedded: Option<EmbeddedRegistry>,
}

pub async fn schema_registry(common: &Common) -> anyhow::Result<SchemaRegistry> {
    if let Some(url) = &common.schema_registry_url {
        return Ok(SchemaRegistry {
            url: url.clone(),
            _embedded: None,
        });
    }
    let pool = database(common).await?;
    let registry = Registry::open(pool)
        .await
        .context("Failed to open the embedded schema registry")?;
    let embedded = surge_schema_registry::serve(registry, common.schema_registry_listen)
        .await
        .context("Failed to start the embedded schema registry")?;
    tracing::info!(url = %embedded.url, "Embedded schema registry started (stored in PostgreSQL).");
    Ok(SchemaRegistry {
        url: embedded.url.clone(),
        _embedded: Some(embedded),
    })
}

/// A codec for the events topic with every event schema registered: an incompatible schema
/// change stops the role at start-up with the registry's reason.
pub async fn codec(common: &Common, registry_url: &str) -> anyhow::Result<Arc<Codec>> {
    let codec = Codec::new(registry_url, &common.events_topic, Duration::from_secs(5))?;
    codec
        .register_all()
        .await
        .context("Failed to register the event schemas")?;
    Ok(Arc::new(codec))
}

/// A client for each Redis server named by the configuration: the cluster's seed nodes when
/// `SURGE_REDIS_CLUSTER_URLS` is set, else the server of `SURGE_REDIS_URL`. For what a
/// multiplexed connection cannot carry: pub/sub.
pub fn redis_servers(common: &Common) -> anyhow::Result<Vec<redis::Client>> {
    if common.redis_cluster_urls.is_empty() {
        let client =
            redis::Client::open(common.redis_url.as_str()).context("SURGE_REDIS_URL is invalid")?;
        return Ok(vec![client]);
    }
    (common.redis_cluster_urls.iter())
        .map(|url| {
            redis::Client::open(url.as_str())
                .with_context(|| format!("SURGE_REDIS_CLUSTER_URLS holds an invalid URL: {url}"))
        })
        .collect()
}

/// Every role's Redis: the cluster of `SURGE_REDIS_CLUSTER_URLS` when set, else the server at
/// `SURGE_REDIS_URL`. The write API's keys name their user through [`Redis::slot`], so each
/// user's keys share a cluster slot; the projections' name their partition the same way
/// (`surge_projections::naming::partition_keys_base`), and the bot's pacing its bot.
pub async fn redis(common: &Common) -> anyhow::Result<Redis> {
    let conn = if common.redis_cluster_urls.is_empty() {
        // A URL that does not parse gets its own message rather than a failed connection's.
        redis::Client::open(common.redis_url.as_str()).context("SURGE_REDIS_URL is invalid")?;
        Redis::single(&common.redis_url)
            .await
            .context("Failed to connect to Redis")?
    } else {
        Redis::cluster(&common.redis_cluster_urls)
            .await
            .context("Failed to connect to the Redis Cluster of SURGE_REDIS_CLUSTER_URLS")?
    };
    // A server that hides INFO is not refused; one that names an older version is. In a
    // cluster every master is asked.
    if let Ok(infos) = conn.info("server").await {
        for info in infos {
            redis_version_supported(&info)?;
        }
    }
    Ok(conn)
}

/// The oldest Redis Surge runs on: the Redis projections check a batch's event ids with
/// `SMISMEMBER`, which Redis 6.2 added.
const OLDEST_REDIS: (u32, u32) = (6, 2);

/// Refuses a Redis older than [`OLDEST_REDIS`], from its `INFO server` answer.
fn redis_version_supported(info: &str) -> anyhow::Result<()> {
    let Some(version) = surge_redis::info_field(info, "redis_version") else {
        return Ok(());
    };
    let mut parts = version.split('.').map(|n| n.parse::<u32>().unwrap_or(0));
    let major_minor = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    anyhow::ensure!(
        major_minor >= OLDEST_REDIS,
        "Redis {version} is too old: Surge needs Redis {}.{} or later (SMISMEMBER)",
        OLDEST_REDIS.0,
        OLDEST_REDIS.1
    );
    Ok(())
}

/// The partition ids of `topic`, from the broker's metadata; an error if it has none.
pub fn topic_partitions<C: ConsumerContext>(
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

/// Refuses an events topic whose partition count is not `SURGE_EVENTS_PARTITIONS`: the query
/// API finds a user's leaderboard shard by that count (a shard per partition), so processors
/// writing the shards of another count would hide users from it. A topic not there yet (made
/// by `surge migrate` later) or a broker not answering within 10 s is let through with a
/// warning.
pub async fn check_events_partitions(common: &Common, brokers: &str) -> anyhow::Result<()> {
    let (brokers, topic) = (brokers.to_owned(), common.events_topic.clone());
    let found = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<i32>> {
        let consumer: BaseConsumer = surge_kafka::client_config(&brokers).create()?;
        topic_partitions(&consumer, &topic)
    })
    .await?;
    match found {
        Ok(partitions) => anyhow::ensure!(
            partitions.len() == common.events_partitions as usize,
            "the events topic {} has {} partitions but SURGE_EVENTS_PARTITIONS is {}: set it to \
             the topic's count (every role reads it; the leaderboard keeps a shard per partition)",
            common.events_topic,
            partitions.len(),
            common.events_partitions
        ),
        Err(error) => tracing::warn!(
            error = %format!("{error:#}"),
            "Could not check the events topic's partitions against SURGE_EVENTS_PARTITIONS."
        ),
    }
    Ok(())
}

pub use surge_processors::runtime::PartitionEndsExpected;

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    /// The version check reads every master's `INFO` on a cluster, where the client answers
    /// with one text per node rather than one text.
    #[tokio::test]
    async fn the_write_apis_redis_reports_every_masters_version_on_redis_cluster() {
        let infos = surge_testkit::redis_cluster()
            .await
            .info("server")
            .await
            .unwrap();
        assert_eq!(infos.len(), 3, "one INFO per master");
        for info in &infos {
            assert!(info.contains("redis_version:"), "{info}");
            redis_version_supported(info).unwrap();
        }
        let single = surge_testkit::redis().await.info("server").await.unwrap();
        assert_eq!(single.len(), 1);
        assert!(single[0].contains("redis_version:"));
    }

    /// A processor frozen inside a batch's transaction (here: a transaction that locked a row
    /// and went silent) does not keep the row locked: the server ends the transaction after the
    /// timeout, the next owner takes the lock, and the frozen transaction cannot commit.
    #[tokio::test]
    async fn the_processors_pool_ends_a_transaction_left_idle_so_its_locks_free_up() {
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            common: Common,
        }
        let schema = surge_testkit::unique_id("idle_tx_");
        let url = surge_testkit::database_url();
        let args = [
            "surge",
            "--database-url",
            &url,
            "--database-schema",
            &schema,
        ];
        let cli = Cli::try_parse_from(args).unwrap();
        let stores = stores(&cli.common, Duration::from_millis(500))
            .await
            .unwrap();
        let next_owner = surge_testkit::pg_pool_with(&schema, 1).await;
        for statement in [
            "CREATE TABLE held (id int PRIMARY KEY)",
            "INSERT INTO held VALUES (1)",
        ] {
            sqlx::query(statement).execute(&next_owner).await.unwrap();
        }
        let lock = "SELECT id FROM held WHERE id = 1 FOR UPDATE";

        let mut frozen = stores.pool.begin().await.unwrap();
        sqlx::query(lock).execute(&mut *frozen).await.unwrap();
        let mut taking = next_owner.begin().await.unwrap();
        sqlx::query("SET LOCAL lock_timeout = '30s'")
            .execute(&mut *taking)
            .await
            .unwrap();
        sqlx::query(lock)
            .execute(&mut *taking)
            .await
            .expect("the row is free once the idle transaction is ended");
        taking.commit().await.unwrap();
        assert!(
            frozen.commit().await.is_err(),
            "the ended transaction cannot commit"
        );

        drop(stores);
        surge_testkit::drop_schema(&schema).await.unwrap();
    }

    #[test]
    fn redis_before_6_2_is_refused_by_name() {
        let info = |version: &str| {
            format!("# Server\r\nredis_version:{version}\r\nredis_mode:standalone\r\n")
        };
        for ok in ["6.2.0", "7.0.15", "7.4.1", "10.0.0"] {
            assert!(redis_version_supported(&info(ok)).is_ok(), "{ok}");
        }
        for old in ["6.0.16", "5.0.7", "6.1.99"] {
            let error = redis_version_supported(&info(old)).unwrap_err().to_string();
            assert_eq!(
                error,
                format!("Redis {old} is too old: Surge needs Redis 6.2 or later (SMISMEMBER)")
            );
        }
        assert!(
            redis_version_supported("# Server\r\n").is_ok(),
            "no version: not refused"
        );
    }
}
