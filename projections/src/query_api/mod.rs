//! The query API: serves projections only (never the topics, never the write side), to the user
//! proven by their initData, with read-your-writes on request, cache validators, compression, and
//! a fast 503 naming no internals when a store is down.
//!
//! - `auth`: who is asking (the same initData check as the write side).
//! - `consistency`: `X-Consistency-Token` and the wait for the projection behind the endpoint.
//! - `databases`: which PostgreSQL a read goes to (a read replica close enough behind, else the
//!   primary).
//! - `caching`: ETag / If-None-Match and Cache-Control.
//! - `handlers`: every route (a projection's own endpoints are in its folder's `http.rs`, named by
//!   its catalog line; `me`, which reads several, is here).

pub(crate) mod auth;
pub(crate) mod caching;
pub(crate) mod consistency;
mod databases;
pub(crate) mod handlers;
mod health;
mod live;
pub(crate) mod openapi;
mod sources;
pub(crate) mod top_cache;
mod waiters;
mod watcher;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::middleware;
use axum::routing::get;
use prometheus::Registry;
use secrecy::SecretString;
use sqlx::PgPool;
use surge_http::{ApiError, RouteMetrics, record_route_metrics};
use surge_redis::Redis;
use surge_schemas::GameConfig;
use surge_schemas::TokenKeys;
use surge_telegram_auth::Validator;
use tower::ServiceBuilder;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::feed::Feeds;
use crate::leaderboard::Board;

pub use databases::Replica;
pub use watcher::{PositionWatcher, WaitError};

/// Bodies smaller than this are sent as they are: compressing them costs more than it saves.
const COMPRESS_ABOVE_BYTES: u16 = 1024;

#[derive(Debug, Clone)]
pub struct QueryApiConfig {
    /// The events topic: consistency tokens must name it.
    pub events_topic: String,
    /// Partitions of the events topic: the leaderboard keeps a shard per partition, and a
    /// user's is found by their partition (`SURGE_EVENTS_PARTITIONS`, which the processors
    /// check against the topic).
    pub events_partitions: i32,
    /// Deployment prefix of Redis keys.
    pub redis_prefix: String,
    /// Longest wait for a projection to apply a consistency token's position.
    pub consistency_wait: Duration,
    /// How often a watcher re-reads positions while requests wait on it.
    pub consistency_poll: Duration,
    /// How often the active version of every projection is read, to follow `surge replay`'s
    /// switches without a restart. Must stay well below replay's drop grace period.
    pub version_poll: Duration,
    /// Longest a store read may take before the request fails with 503.
    pub store_timeout: Duration,
    /// Requests one instance works on at once; past it, 503 + Retry-After.
    pub max_in_flight: usize,
    /// How long the top of a leaderboard is served from memory (zero: always from Redis).
    pub leaderboard_cache: Duration,
    /// Bearer token of operator routes (`/v1/stats/...`); `None` closes them.
    pub operator_token: Option<SecretString>,
    /// Check the consistency tokens the write API signed; others get 400.
    pub token_keys: TokenKeys,
    /// Reads waiting on a token at once in this instance; past it, 503 + Retry-After at once.
    pub max_waiters: usize,
    /// Of those, reads one caller (a user, or an anonymous token's write) may have waiting.
    pub max_waiters_per_caller: usize,
    /// The game's configuration (the quests `GET /v1/me/quests` lists).
    pub game: GameConfig,
    /// The Redis servers to receive the processors' live notices from (`GET /v1/me/live`), tried
    /// in turn: the single server, or a cluster's seed nodes (a notice published on any node of a
    /// cluster reaches every node). Empty turns live updates off.
    pub live_redis: Vec<redis::Client>,
    /// Live streams one instance holds at once, and one user may hold.
    pub live_max_streams: usize,
    pub live_max_streams_per_user: usize,
    /// How often an idle live stream sends a heartbeat comment; below the server's idle timeout.
    pub live_heartbeat: Duration,
    /// Read replicas of the database; the primary serves when none is usable.
    pub replicas: Vec<Replica>,
    /// A replica further behind the primary than this takes no reads.
    pub replica_max_lag: Duration,
}

impl QueryApiConfig {
    pub fn new(
        events_topic: impl Into<String>,
        events_partitions: i32,
        redis_prefix: impl Into<String>,
        token_keys: TokenKeys,
    ) -> Self {
        QueryApiConfig {
            token_keys,
            max_waiters: 1024,
            max_waiters_per_caller: 8,
            events_topic: events_topic.into(),
            events_partitions,
            redis_prefix: redis_prefix.into(),
            consistency_wait: Duration::from_secs(2),
            consistency_poll: Duration::from_millis(5),
            version_poll: Duration::from_millis(500),
            store_timeout: Duration::from_secs(1),
            max_in_flight: 4096,
            leaderboard_cache: Duration::from_secs(1),
            operator_token: None,
            game: GameConfig::default(),
            live_redis: Vec::new(),
            live_max_streams: 10_000,
            live_max_streams_per_user: 4,
            live_heartbeat: Duration::from_secs(5),
            replicas: Vec::new(),
            replica_max_lag: Duration::from_secs(1),
        }
    }
}

/// Everything a handler reads; cheap to clone.
#[derive(Clone)]
pub struct QueryState(Arc<Inner>);

pub struct Inner {
    pub(crate) config: QueryApiConfig,
    validator: Validator,
    /// The primary database: health checks (reads go through `databases`).
    pool: PgPool,
    /// Where PostgreSQL reads go: a replica or the primary.
    databases: Arc<databases::Databases>,
    pub(crate) redis: Redis,
    /// The versions served, their stores and watchers; handlers take one snapshot per request.
    sources: sources::Sources,
    pub(crate) top_cache: top_cache::TopCache,
    registry: Registry,
    metrics: consistency::WaitMetrics,
    /// Reads waiting on a consistency token, bounded in total and per caller.
    waiters: waiters::Waiters,
    /// Live streams and the notices that wake them; `None` when live updates are off.
    live: Option<Arc<live::hub::Hub>>,
}

impl std::ops::Deref for QueryState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl QueryState {
    /// The sets of `version` of the leaderboard: a shard per partition of the events topic.
    pub(crate) fn leaderboard<'a>(&self, version: &'a sources::Version) -> Board<'a> {
        Board {
            base: &version.base,
            partitions: self.config.events_partitions,
        }
    }

    /// The lists of a feed version whose key space is `base`: each user's in their partition's.
    pub(crate) fn feeds<'a>(&self, base: &'a str) -> Feeds<'a> {
        Feeds {
            base,
            partitions: self.config.events_partitions,
        }
    }
}

/// The query API's two routers: `public` for clients, `admin` (`/metrics`) for an address of
/// its own that is not exposed to them.
pub struct Routers {
    pub public: Router,
    pub admin: Router,
}

/// The public routes, each registered with its OpenAPI operation so none can be undocumented:
/// the reads (behind load shedding), the live streams (long-lived: outside the in-flight limit,
/// bounded by the live hub's own caps instead) and the health checks.
fn public_routes() -> (
    OpenApiRouter<QueryState>,
    OpenApiRouter<QueryState>,
    OpenApiRouter<QueryState>,
) {
    let reads = handlers::routes().routes(routes!(live::tickets::issue));
    let streams = OpenApiRouter::new()
        .routes(routes!(live::stream::me_live))
        .routes(routes!(live::leaderboard::leaderboard_live));
    let health = OpenApiRouter::new()
        .routes(routes!(surge_http::live))
        .routes(routes!(health::ready));
    (reads, streams, health)
}

/// The query API's OpenAPI document, as `GET /openapi.json` serves it.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    let (reads, streams, health) = public_routes();
    openapi::document(reads.merge(streams).merge(health).into_openapi())
}

/// Builds the routers. Spawns the task following the active projection versions and the position
/// watchers, so it must run inside a Tokio runtime; they end when the router is dropped.
pub fn app(config: QueryApiConfig, validator: Validator, pool: PgPool, redis: Redis) -> Routers {
    let registry = Registry::new();
    let routes = Arc::new(
        RouteMetrics::register(&registry, "query_api").expect("route metrics register once"),
    );
    let metrics = consistency::WaitMetrics::register(&registry);
    let databases = databases::Databases::start(
        pool.clone(),
        config.replicas.clone(),
        config.replica_max_lag,
        config.store_timeout,
        &registry,
    );
    let sources = sources::Sources::spawn(&config, &databases, &redis, &registry);
    let live = (!config.live_redis.is_empty()).then(|| {
        let open = prometheus::IntGauge::new(
            "query_api_live_streams",
            "Live streams (GET /v1/me/live) open on this instance.",
        )
        .expect("valid metric");
        registry
            .register(Box::new(open.clone()))
            .expect("registered once");
        let hub = live::hub::Hub::new(
            &config.events_topic,
            config.live_max_streams,
            config.live_max_streams_per_user,
            open,
        );
        tokio::spawn((hub.clone()).run(config.live_redis.clone(), config.redis_prefix.clone()));
        hub
    });
    let state = QueryState(Arc::new(Inner {
        live,
        top_cache: top_cache::TopCache::new(config.leaderboard_cache),
        waiters: waiters::Waiters::new(config.max_waiters, config.max_waiters_per_caller),
        config,
        validator,
        pool,
        databases,
        redis,
        sources,
        registry,
        metrics,
    }));
    if state.live.is_some() {
        tokio::spawn(live::rank::run(Arc::downgrade(&state.0)));
    }
    let shed = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
            ApiError::unavailable(
                "overloaded",
                "the query API is at capacity",
                Duration::from_secs(1),
            )
        }))
        .load_shed()
        .concurrency_limit(state.config.max_in_flight);
    let compress = CompressionLayer::new().compress_when(
        SizeAbove::new(COMPRESS_ABOVE_BYTES).and(NotForContentType::const_new("text/event-stream")),
    );
    let (reads, streams, health) = public_routes();
    let reads = reads.layer(shed);
    let (router, doc) = reads.merge(streams).merge(health).split_for_parts();
    let doc = openapi::document(doc);
    let admin = Router::new()
        .route("/metrics", get(health::metrics))
        .fallback(surge_http::no_route)
        .method_not_allowed_fallback(surge_http::method_not_allowed)
        .with_state(state.clone());
    let public = router
        .route("/openapi.json", surge_http::openapi::serve(&doc))
        .fallback(surge_http::no_route)
        .method_not_allowed_fallback(surge_http::method_not_allowed)
        .layer(compress)
        .layer(middleware::from_fn_with_state(routes, record_route_metrics))
        .with_state(state);
    Routers { public, admin }
}
