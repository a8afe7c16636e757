//! Reading through PostgreSQL read replicas: the real streaming replica of the test database
//! (`scripts/services.sh --replica`). A write is made as a processor makes it (the rows and the
//! position in one transaction on the primary) and read back with its consistency token.
//!
//! These tests pause the replica's replay, which every test reading the replica would notice,
//! so they share one nextest group (`.config/nextest.toml`: names holding `read_replica`) and
//! run one at a time.

use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use surge_schemas::Position;

use super::helpers::{Stores, TOPIC, get, named_profile, until};
use crate::naming;
use crate::profiles::{self, ProfileStore};
use crate::query_api::Replica;
use crate::table_prefix::render;
use crate::versions::{self, VersionRegistry};
use crate::wallets;

const USER: i64 = 7_000_000_077;
/// Room for a loaded machine; no figure here is a timing assertion.
const DEADLINE: Duration = Duration::from_secs(30);
const REPLICA: &str = "the_replica";

/// Profiles and wallets v1 (active), `USER` named "Before", both projections at offset 1 of
/// partition 0.
async fn set_up(stores: &Stores) {
    let mut conn = stores.pool.acquire().await.unwrap();
    versions::migrate(&mut conn).await.unwrap();
    stores
        .execute(&render(
            profiles::MIGRATIONS[0],
            &naming::table_prefix("profiles", 1),
        ))
        .await;
    for ddl in wallets::MIGRATIONS {
        stores
            .execute(&render(ddl, &naming::table_prefix("wallets", 1)))
            .await;
    }
    for projection in ["profiles", "wallets"] {
        VersionRegistry::postgres(stores.pool.clone(), projection)
            .ensure_active(1)
            .await
            .unwrap();
    }
    stores
        .execute(&format!(
            "INSERT INTO projection_positions (projection, version, topic, partition, next_offset) \
             VALUES ('profiles', 1, '{TOPIC}', 0, 1), ('wallets', 1, '{TOPIC}', 0, 1)"
        ))
        .await;
    write_name(stores, "Before", 1).await;
}

/// Names `USER` and moves both projections to `next_offset` in one transaction, as a batch
/// does; returns the token of the write at `next_offset - 1`.
async fn write_name(stores: &Stores, name: &str, next_offset: i64) -> String {
    let mut tx = stores.pool.begin().await.unwrap();
    ProfileStore::new(&naming::table_prefix("profiles", 1))
        .upsert(&mut tx, &[named_profile(USER, name)])
        .await
        .unwrap();
    sqlx::query(
        "UPDATE projection_positions SET next_offset = $1 \
         WHERE version = 1 AND topic = $2 AND partition = 0",
    )
    .bind(next_offset)
    .bind(TOPIC)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    super::helpers::token_keys().sign(&Position {
        topic: TOPIC.into(),
        partition: 0,
        offset: next_offset - 1,
    })
}

/// The query API reading through `pool` as the replica named [`REPLICA`].
fn app_reading(stores: &Stores, pool: sqlx::PgPool, max_lag: Duration) -> Router {
    stores.app(|config| {
        config.replicas = vec![Replica {
            name: REPLICA.into(),
            pool,
        }];
        config.replica_max_lag = max_lag;
        config.consistency_wait = Duration::from_secs(8);
    })
}

async fn name(app: &Router, token: Option<&str>) -> String {
    let (status, body) = get(app, "/v1/me", Some(USER), token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["profile"]["display_name"]
        .as_str()
        .unwrap_or_else(|| panic!("no profile: {body}"))
        .to_owned()
}

/// The value of the metric line starting with `series` (`name{labels}`), if present.
async fn metric(app: &Router, series: &str) -> Option<f64> {
    let (_, body) = get(app, "/admin/metrics", None, None).await;
    body.as_str()?.lines().find_map(|line| {
        line.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

async fn reads_on(app: &Router, database: &str) -> f64 {
    metric(
        app,
        &format!("query_api_postgres_reads_total{{database=\"{database}\"}}"),
    )
    .await
    .unwrap_or(0.0)
}

/// Waits until the replica's `gauge` (`query_api_replica_<gauge>`) reads `want`.
async fn until_gauge(app: &Router, gauge: &str, want: f64) {
    let series = format!("query_api_replica_{gauge}{{replica=\"{REPLICA}\"}}");
    until(&format!("{series} at {want}"), DEADLINE, || {
        let series = &series;
        async move { (metric(app, series).await == Some(want)).then_some(()) }
    })
    .await;
}

async fn until_serving(app: &Router, serving: bool) {
    until_gauge(app, "serving", if serving { 1.0 } else { 0.0 }).await;
}

/// Pauses the replica's replay (a replica deliberately behind) until dropped, even when the
/// test fails: a replica left paused would hold every later run's replica reads.
struct PausedReplay;

impl PausedReplay {
    async fn start(pool: &sqlx::PgPool) -> PausedReplay {
        sqlx::query("SELECT pg_wal_replay_pause()")
            .execute(pool)
            .await
            .unwrap();
        PausedReplay
    }
}

impl Drop for PausedReplay {
    fn drop(&mut self) {
        let url = surge_testkit::read_replica_url();
        let resumed = surge_testkit::on_own_runtime(move || async move {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&url).await?;
            sqlx::query("SELECT pg_wal_replay_resume()")
                .execute(&mut conn)
                .await
                .map(drop)
        });
        if !matches!(resumed, Some(Ok(()))) {
            eprintln!("could not resume the replica's replay: {resumed:?}");
        }
    }
}

#[tokio::test]
async fn a_read_replica_serves_reads_with_a_token_once_it_has_the_write() {
    let stores = Stores::new().await;
    set_up(&stores).await;
    let pool = surge_testkit::read_replica_pool(&stores.id).await;
    let app = app_reading(&stores, pool, Duration::from_secs(1));
    until_serving(&app, true).await;

    let token = write_name(&stores, "After", 11).await;
    assert_eq!(name(&app, Some(&token)).await, "After");
    assert_eq!(
        (
            reads_on(&app, REPLICA).await,
            reads_on(&app, "primary").await
        ),
        (2.0, 0.0),
        "the profile and the wallet were read on the replica"
    );
    let lag = metric(
        &app,
        &format!("query_api_replica_lag_bytes{{replica=\"{REPLICA}\"}}"),
    )
    .await;
    assert!(lag.is_some(), "the lag is exported");
}

#[tokio::test]
async fn a_read_replica_deliberately_behind_hands_its_reads_to_the_primary() {
    let stores = Stores::new().await;
    set_up(&stores).await;
    let pool = surge_testkit::read_replica_pool(&stores.id).await;
    let app = app_reading(&stores, pool.clone(), Duration::from_millis(500));
    until_serving(&app, true).await;

    let paused = PausedReplay::start(&pool).await;
    let token = write_name(&stores, "After", 11).await;
    // Read at once: the replica may still count as serving; it cannot show the write, so the
    // primary answers once the replica's share of the wait is over. Never a 504, never "Before".
    assert_eq!(name(&app, Some(&token)).await, "After");

    until_serving(&app, false).await;
    let lag = metric(
        &app,
        &format!("query_api_replica_lag_seconds{{replica=\"{REPLICA}\"}}"),
    )
    .await
    .unwrap();
    assert!(lag > 0.5, "the lag shows: {lag}");
    // Skipped now: reads with or without a token go to the primary and see the write.
    let on_replica = reads_on(&app, REPLICA).await;
    let on_primary = reads_on(&app, "primary").await;
    let token = write_name(&stores, "Later", 21).await;
    assert_eq!(name(&app, Some(&token)).await, "Later");
    assert_eq!(name(&app, None).await, "Later");
    assert_eq!(reads_on(&app, REPLICA).await, on_replica);
    assert_eq!(reads_on(&app, "primary").await, on_primary + 4.0);

    drop(paused);
    until_serving(&app, true).await;
    let token = write_name(&stores, "Resumed", 31).await;
    assert_eq!(name(&app, Some(&token)).await, "Resumed");
    assert_eq!(reads_on(&app, REPLICA).await, on_replica + 2.0);
}

#[tokio::test]
async fn a_read_replica_that_is_down_is_skipped() {
    let stores = Stores::new().await;
    set_up(&stores).await;
    let down = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(Duration::from_millis(200))
        .connect_lazy("postgres://postgres@127.0.0.1:1/surge_test")
        .unwrap();
    let app = app_reading(&stores, down, Duration::from_secs(1));
    until_gauge(&app, "up", 0.0).await;
    let token = write_name(&stores, "After", 11).await;
    assert_eq!(name(&app, Some(&token)).await, "After");
    assert_eq!(
        (
            reads_on(&app, REPLICA).await,
            reads_on(&app, "primary").await
        ),
        (0.0, 2.0)
    );
}

#[tokio::test]
async fn a_read_replica_that_fails_a_read_hands_it_to_the_primary() {
    use std::str::FromStr;
    let stores = Stores::new().await;
    set_up(&stores).await;
    // The real replica, answering its checks, on a schema that has none of the tables: every
    // read there fails, as on a replica that went down after its last check.
    let options = sqlx::postgres::PgConnectOptions::from_str(&surge_testkit::read_replica_url())
        .unwrap()
        .options([("search_path", "no_such_schema")]);
    let failing = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect_lazy_with(options);
    let app = app_reading(&stores, failing, Duration::from_secs(3600));
    until_serving(&app, true).await;

    assert_eq!(name(&app, None).await, "Before");
    assert_eq!(
        (
            reads_on(&app, REPLICA).await,
            reads_on(&app, "primary").await
        ),
        (2.0, 2.0),
        "each of the two reads tried the replica, then the primary"
    );
}
