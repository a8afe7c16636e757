//! The Rust servers under load: the real query API and a bare axum handler returning the same
//! bytes (webdis, the third, is [`surge_baselines::Webdis`]). Both run on a 2-thread runtime of
//! their own, as a deployed instance on this machine would.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use bytes::Bytes;
use redis::aio::ConnectionManager;
use secrecy::SecretString;
use surge_baselines::serve_on_own_runtime;
use surge_projections::query_api::{self, QueryApiConfig};
use surge_telegram_auth::Validator;

use super::data::{BOT_TOKEN, Fixture, PARTITIONS};

pub(crate) struct QueryApi {
    pub(crate) addr: SocketAddr,
}

impl QueryApi {
    /// The query API with its leaderboard cache set to `leaderboard_cache` (zero: none).
    pub(crate) async fn start(
        fixture: &Fixture,
        leaderboard_cache: Duration,
    ) -> anyhow::Result<QueryApi> {
        let (database_url, redis_url, prefix) = (
            fixture.database_url.clone(),
            fixture.redis_url.clone(),
            fixture.prefix.clone(),
        );
        let addr = serve_on_own_runtime(2, move || {
            Box::pin(async move {
                let pool = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(1))
                    .connect(&database_url)
                    .await?;
                let redis = surge_redis::Redis::Single(
                    ConnectionManager::new(redis::Client::open(redis_url)?).await?,
                );
                let validator = Validator::hmac(
                    &SecretString::from(BOT_TOKEN.to_owned()),
                    Duration::from_secs(86_400),
                );
                let config = QueryApiConfig {
                    leaderboard_cache,
                    ..QueryApiConfig::new(
                        "bench.events",
                        PARTITIONS,
                        prefix,
                        surge_schemas::TokenKeys::new(None, BOT_TOKEN),
                    )
                };
                Ok(query_api::app(config, validator, pool, redis).public)
            })
        })?;
        Ok(QueryApi { addr })
    }
}

pub(crate) struct Bare {
    pub(crate) addr: SocketAddr,
}

impl Bare {
    /// `GET /<name>` answers `body` for each `(name, body)`.
    pub(crate) fn start(bodies: &[(&str, Bytes)]) -> anyhow::Result<Bare> {
        let routes: Vec<(String, Bytes)> = bodies
            .iter()
            .map(|(name, body)| (format!("/{name}"), body.clone()))
            .collect();
        let addr = serve_on_own_runtime(2, move || {
            Box::pin(async move {
                let mut router = Router::new();
                for (path, body) in routes {
                    router = router.route(
                        &path,
                        get(move || {
                            let body = body.clone();
                            async move { ([(CONTENT_TYPE, "application/json")], body) }
                        }),
                    );
                }
                Ok(router)
            })
        })?;
        Ok(Bare { addr })
    }
}
