//! Each test's own stores: a PostgreSQL schema in `surge_test` (`SURGE_TEST_DATABASE_URL`) and a
//! Redis key prefix (`SURGE_REDIS_URL`), both removed when the test ends, even when it fails. The
//! router is the real one from [`app`], driven with `oneshot` (no socket).

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use secrecy::SecretString;
use serde_json::Value;
use sqlx::PgPool;
use surge_redis::Redis;
use surge_telegram_auth::{InitDataBuilder, Validator, WebAppUser};
use tokio::time::Instant;
use tower::ServiceExt;

use crate::query_api::{QueryApiConfig, app};

pub(super) const TOPIC: &str = "versions-test.events";
/// Partitions of [`TOPIC`] as the query API is told: the leaderboard's shards.
pub(super) const PARTITIONS: i32 = 4;
const BOT_TOKEN: &str = "7000000042:AAtest-token-for-query-api-versions";

/// The keys the write API of this test deployment would sign tokens with.
pub(super) fn token_keys() -> surge_schemas::TokenKeys {
    surge_schemas::TokenKeys::new(None, BOT_TOKEN)
}

pub(super) struct Stores {
    /// Also the Redis key prefix.
    pub(super) id: String,
    pub(super) pool: PgPool,
    pub(super) redis: Redis,
}

impl Stores {
    pub(super) async fn new() -> Stores {
        let id = surge_testkit::unique_id("qv");
        let pool = surge_testkit::pg_pool(&id).await;
        let redis = surge_testkit::redis().await;
        Stores { id, pool, redis }
    }

    /// The query API on these stores, with `tune` applied to its configuration; its admin
    /// routes under `/admin` (`/admin/metrics`).
    pub(super) fn app(&self, tune: impl FnOnce(&mut QueryApiConfig)) -> Router {
        let mut config = QueryApiConfig::new(TOPIC, PARTITIONS, &self.id, token_keys());
        config.version_poll = Duration::from_millis(100);
        tune(&mut config);
        let validator = Validator::hmac(
            &SecretString::from(BOT_TOKEN.to_owned()),
            Duration::from_secs(86_400),
        );
        let routers = app(config, validator, self.pool.clone(), self.redis.clone());
        routers.public.nest_service("/admin", routers.admin)
    }

    pub(super) async fn execute(&self, sql: &str) {
        sqlx::raw_sql(sql).execute(&self.pool).await.unwrap();
    }
}

impl Drop for Stores {
    fn drop(&mut self) {
        let id = self.id.clone();
        let cleaned = surge_testkit::on_own_runtime(move || async move {
            surge_testkit::drop_schema(&id).await?;
            let mut redis = surge_testkit::redis().await;
            surge_testkit::delete_keys(&mut redis, &id).await?;
            anyhow::Ok(())
        });
        if !matches!(cleaned, Some(Ok(()))) {
            eprintln!("could not remove test stores {}", self.id);
        }
    }
}

/// `user_id` seen once, named `name`.
pub(super) fn named_profile(user_id: i64, name: &str) -> crate::profiles::Profile {
    crate::profiles::Profile {
        user_id,
        display_name: Some(name.into()),
        first_seen_at_ms: 1_717_171_717_123,
        last_seen_at_ms: 1_717_171_717_123,
        sessions_count: 1,
        ..Default::default()
    }
}

fn init_data(user_id: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let user = WebAppUser {
        id: user_id,
        first_name: "Test".into(),
        last_name: None,
        username: None,
        language_code: Some("en".into()),
        is_premium: false,
        is_bot: false,
        photo_url: None,
        allows_write_to_pm: false,
    };
    InitDataBuilder::new(user, now).sign(BOT_TOKEN)
}

/// `GET path`, as `user` when given, with a consistency token when given; the status and the
/// body (JSON, or a JSON string holding the text when it is not JSON).
pub(super) async fn get(
    app: &Router,
    path: &str,
    user: Option<i64>,
    token: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = Request::get(path);
    if let Some(user) = user {
        request = request.header("authorization", format!("tma {}", init_data(user)));
    }
    if let Some(token) = token {
        request = request.header("x-consistency-token", token);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, body)
}

/// Polls `probe` until it returns `Some`, failing with `what` at `deadline`.
pub(super) async fn until<T, F: Future<Output = Option<T>>>(
    what: &str,
    deadline: Duration,
    mut probe: impl FnMut() -> F,
) -> T {
    let give_up = Instant::now() + deadline;
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(Instant::now() < give_up, "{what} within {deadline:?}");
        // Paces the probe; the condition, not this pause, is what the test waits for.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
