//! What the test suites share, in one place: unique names, a PostgreSQL schema and a pool on it
//! per test, the test Redis and the test Kafka broker, and a fake of Telegram's Bot API
//! ([`bot_api`]). Used as a dev-dependency only.
//!
//! Every helper panics on failure: a test that cannot reach its services should fail loudly, not
//! skip. The settings are read from the environment `scripts/test.sh` exports:
//! `SURGE_TEST_DATABASE_URL`, `SURGE_TEST_DATABASE_READ_URL` (its streaming replica),
//! `SURGE_REDIS_URL`, `SURGE_TEST_REDIS_CLUSTER_URLS` (the Redis Cluster of
//! `scripts/services.sh --redis-cluster`) and `SURGE_TEST_KAFKA_BROKERS`.

pub mod bot_api;

use std::str::FromStr;

use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool, Postgres};

/// The database tests create their schemas in when `SURGE_TEST_DATABASE_URL` is unset
/// (`scripts/test.sh` recreates it for every run).
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/surge_test";
/// The streaming replica of the test database (`scripts/services.sh --replica`) when
/// `SURGE_TEST_DATABASE_READ_URL` is unset.
pub const DEFAULT_READ_REPLICA_URL: &str = "postgres://postgres@127.0.0.1:5433/surge_test";
/// The Redis tests use when `SURGE_REDIS_URL` is unset.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";
/// Seed nodes of the test Redis Cluster when `SURGE_TEST_REDIS_CLUSTER_URLS` is unset.
pub const DEFAULT_REDIS_CLUSTER_URLS: &str =
    "redis://127.0.0.1:7101,redis://127.0.0.1:7102,redis://127.0.0.1:7103";

/// A fresh name starting with `prefix`: lowercase ASCII letters, digits and `_`, at most 63
/// bytes, so one value serves as a PostgreSQL schema (unquoted), a topic, a consumer group and
/// a Redis key prefix. Unique across processes (a UUIDv7 follows the prefix).
///
/// # Panics
/// When `prefix` does not start with a lowercase letter, holds anything but `[a-z0-9_]`, or is
/// longer than 31 bytes.
pub fn unique_id(prefix: &str) -> String {
    assert!(
        prefix.starts_with(|c: char| c.is_ascii_lowercase())
            && prefix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && prefix.len() <= 31,
        "unique_id prefix {prefix:?} must match [a-z][a-z0-9_]{{0,30}}"
    );
    format!("{prefix}{}", uuid::Uuid::now_v7().simple())
}

/// `SURGE_TEST_DATABASE_URL`, else [`DEFAULT_DATABASE_URL`].
pub fn database_url() -> String {
    std::env::var("SURGE_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned())
}

/// `SURGE_TEST_DATABASE_READ_URL`, else [`DEFAULT_READ_REPLICA_URL`].
pub fn read_replica_url() -> String {
    std::env::var("SURGE_TEST_DATABASE_READ_URL")
        .unwrap_or_else(|_| DEFAULT_READ_REPLICA_URL.to_owned())
}

/// A pool on the test database's streaming replica ([`read_replica_url`]) whose `search_path`
/// is `schema` (created on the primary, so it replicates).
///
/// # Panics
/// When the replica does not answer, or answers but is not a replica.
pub async fn read_replica_pool(schema: &str) -> PgPool {
    let url = read_replica_url();
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect_with(options_at(&url, schema))
        .await
        .unwrap_or_else(|e| {
            panic!(
                "a PostgreSQL replica must be running at {url} (scripts/services.sh --replica): {e}"
            )
        });
    let replica: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(replica, "{url} is not a replica");
    pool
}

/// `SURGE_REDIS_URL`, else [`DEFAULT_REDIS_URL`].
pub fn redis_url() -> String {
    std::env::var("SURGE_REDIS_URL").unwrap_or_else(|_| DEFAULT_REDIS_URL.to_owned())
}

/// `SURGE_TEST_REDIS_CLUSTER_URLS`, else [`DEFAULT_REDIS_CLUSTER_URLS`]: comma-separated, as
/// `SURGE_REDIS_CLUSTER_URLS` takes them.
pub fn redis_cluster_urls() -> String {
    std::env::var("SURGE_TEST_REDIS_CLUSTER_URLS")
        .unwrap_or_else(|_| DEFAULT_REDIS_CLUSTER_URLS.to_owned())
}

/// A connection to the test Redis Cluster ([`redis_cluster_urls`]).
///
/// # Panics
/// When the cluster is not reachable there.
pub async fn redis_cluster() -> surge_redis::Redis {
    let urls = redis_cluster_urls();
    let seeds: Vec<String> = urls.split(',').map(str::to_owned).collect();
    surge_redis::Redis::cluster(&seeds)
        .await
        .unwrap_or_else(|e| panic!("a Redis Cluster must be running at {urls}: {e}"))
}

/// The broker process `scripts/test.sh` started (`SURGE_TEST_KAFKA_BROKERS`).
///
/// # Panics
/// When the variable is unset: the tests needing a real broker have no fallback.
pub fn kafka_brokers() -> String {
    std::env::var("SURGE_TEST_KAFKA_BROKERS").expect(
        "SURGE_TEST_KAFKA_BROKERS is unset: run the suite with scripts/test.sh, which starts the broker",
    )
}

/// Creates the test database if it is missing and `schema` in it if that is missing. Another
/// test (or the app under test) may create either at the same moment; losing that race is fine.
pub async fn create_schema(schema: &str) {
    let url = database_url();
    if !Postgres::database_exists(&url)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL must be running at {url}: {e}"))
    {
        let _ = Postgres::create_database(&url).await;
    }
    let mut conn = PgConnection::connect(&url).await.unwrap();
    let created = sqlx::raw_sql(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
        .execute(&mut conn)
        .await;
    // `IF NOT EXISTS` still fails with unique_violation when two sessions create it together.
    if let Err(error) = created {
        let raced = error
            .as_database_error()
            .is_some_and(|e| e.code().as_deref() == Some("23505"));
        assert!(raced, "creating schema {schema}: {error}");
    }
    conn.close().await.unwrap();
}

/// Options for a connection to the test database whose `search_path` is `schema`; the
/// connection's `application_name` is `schema` too, so a test can find its own sessions.
pub fn pg_options(schema: &str) -> PgConnectOptions {
    options_at(&database_url(), schema)
}

/// Options for `url` whose `search_path` and `application_name` are `schema`.
fn options_at(url: &str, schema: &str) -> PgConnectOptions {
    PgConnectOptions::from_str(url)
        .unwrap_or_else(|e| panic!("{url} is not a PostgreSQL URL: {e}"))
        .application_name(schema)
        .options([("search_path", schema)])
}

/// [`pg_pool_with`] with at most four connections.
pub async fn pg_pool(schema: &str) -> PgPool {
    pg_pool_with(schema, 4).await
}

/// Creates `schema` (and the test database) when missing and returns a pool of at most
/// `max_connections` connections whose `search_path` is `schema`. A second call for the same
/// schema gives another pool on it.
pub async fn pg_pool_with(schema: &str, max_connections: u32) -> PgPool {
    create_schema(schema).await;
    PgPoolOptions::new()
        .max_connections(max_connections)
        .connect_with(pg_options(schema))
        .await
        .unwrap()
}

/// Drops `schema` with everything in it. Waits at most 10 s for locks, so a leftover session
/// cannot hang the run.
pub async fn drop_schema(schema: &str) -> Result<(), sqlx::Error> {
    let mut conn = PgConnection::connect(&database_url()).await?;
    sqlx::raw_sql(&format!(
        "SET lock_timeout = '10s'; DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
    ))
    .execute(&mut conn)
    .await?;
    conn.close().await
}

/// Runs the future `make` returns to completion on a thread with a runtime of its own, for
/// `Drop` impls: they run inside the test's runtime, which cannot be blocked on. `None` when that
/// thread or runtime failed.
pub fn on_own_runtime<T, F>(make: impl FnOnce() -> F + Send + 'static) -> Option<T>
where
    T: Send + 'static,
    F: Future<Output = T>,
{
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        Some(runtime.block_on(make()))
    })
    .join()
    .ok()
    .flatten()
}

/// [`drop_schema`] from a `Drop` impl ([`on_own_runtime`]). Reports a failure on stderr only.
pub fn drop_schema_blocking(schema: &str) {
    let owned = schema.to_owned();
    let dropped = on_own_runtime(move || async move { drop_schema(&owned).await });
    if !matches!(dropped, Some(Ok(()))) {
        eprintln!("could not drop test schema {schema}: {dropped:?}");
    }
}

/// A uniquely named schema in the test database and a pool on it; the schema and everything in
/// it is dropped when this is, even when the test fails.
pub struct TestSchema {
    /// The schema's name, from [`unique_id`]; also usable as a topic or key prefix.
    pub name: String,
    /// A pool whose `search_path` is the schema.
    pub pool: PgPool,
}

impl TestSchema {
    /// A schema named `unique_id(prefix)` and a pool of at most `max_connections` on it.
    pub async fn new(prefix: &str, max_connections: u32) -> TestSchema {
        let name = unique_id(prefix);
        let pool = pg_pool_with(&name, max_connections).await;
        TestSchema { name, pool }
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        drop_schema_blocking(&self.name);
    }
}

/// A connection to the test Redis ([`redis_url`]).
///
/// # Panics
/// When Redis is not reachable there.
pub async fn redis() -> surge_redis::Redis {
    let url = redis_url();
    surge_redis::Redis::single(&url)
        .await
        .unwrap_or_else(|e| panic!("Redis must be running at {url}: {e}"))
}

/// Deletes every key under `prefix` (`{prefix}:*`), as tests do when they end.
/// On a cluster, `KEYS` asks every master and `DEL` goes to each key's.
pub async fn delete_keys(
    conn: &mut impl redis::aio::ConnectionLike,
    prefix: &str,
) -> redis::RedisResult<()> {
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(conn)
        .await?;
    if !keys.is_empty() {
        redis::cmd("DEL").arg(keys).query_async::<()>(conn).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::unique_id;

    #[test]
    fn unique_ids_are_distinct_lowercase_and_short_enough_for_postgres() {
        let (a, b) = (unique_id("t"), unique_id("reg_test"));
        assert_ne!(unique_id("t"), a);
        assert!(b.starts_with("reg_test"));
        for id in [a, b, unique_id("abcdefghijklmnopqrstuvwxyz_1234")] {
            assert!(id.len() <= 63, "{id}");
            assert!(
                id.bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
            );
        }
    }

    #[test]
    #[should_panic(expected = "must match")]
    fn a_prefix_with_a_hyphen_is_refused() {
        unique_id("surge-test");
    }
}
