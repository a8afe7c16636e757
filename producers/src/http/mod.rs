//! The write API's HTTP surface: `fn app(state) -> Router`, so handlers are testable without a
//! socket, and the shared state every handler sees.

pub mod auth;
mod body_first;
pub mod error;
pub(crate) mod handlers;
mod health;
pub mod json;
pub(crate) mod openapi;
pub(crate) mod operator;
pub mod rate_limit;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use surge_http::record_route_metrics;
use surge_redis::Redis;
use surge_telegram_auth::Validator;
use tower::ServiceBuilder;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::broadcasts;
use crate::config::WriteApiConfig;
use crate::energy::EnergyStore;
use crate::idempotency::IdempotencyStore;
use crate::metrics::Metrics;
use crate::stars::{self, Stars};
pub use error::ApiError;
use rate_limit::{RateScope, SharedRateLimiter, UserRateLimiter};
use surge_kafka::EventLog;

/// What every request shares. axum's `State` clones it per request (several times, once per
/// extractor and middleware), so it is one `Arc`: the stores inside own strings and scripts
/// that a deep clone would copy each time.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub config: WriteApiConfig,
    pub validator: Validator,
    pub log: Arc<EventLog>,
    pub redis: Redis,
    pub idempotency: IdempotencyStore,
    pub energy: EnergyStore,
    pub limiter: Arc<UserRateLimiter>,
    /// The rate across every instance, when `SURGE_USER_RATE_SCOPE=shared`.
    pub shared_limiter: Option<SharedRateLimiter>,
    pub metrics: Metrics,
    pub stars: Stars,
}

impl AppState {
    pub fn new(config: WriteApiConfig, validator: Validator, log: EventLog, redis: Redis) -> Self {
        let lock_ttl = log_lock_ttl(&log);
        let idempotency_prefix = match &config.log_incarnation {
            Some(incarnation) => format!("{}:{incarnation}", config.redis_prefix),
            None => config.redis_prefix.clone(),
        };
        let idempotency = IdempotencyStore::new(
            redis.clone(),
            &idempotency_prefix,
            config.idempotency_ttl,
            lock_ttl,
            config.idempotency_replicas,
        );
        let energy = EnergyStore::new(
            redis.clone(),
            &config.redis_prefix,
            config.tap_energy_capacity,
            config.tap_energy_refill_per_sec,
        );
        let limiter = Arc::new(UserRateLimiter::new(
            config.user_rate_per_sec,
            config.user_burst,
        ));
        UserRateLimiter::spawn_cleanup(&limiter);
        let shared_limiter = (config.user_rate_scope == RateScope::Shared).then(|| {
            SharedRateLimiter::new(
                redis.clone(),
                &config.redis_prefix,
                config.user_rate_per_sec,
                config.user_burst,
            )
        });
        let stars = Stars::new(
            &config.stars,
            &config.bot_token,
            redis.clone(),
            &config.redis_prefix,
        );
        AppState(Arc::new(Shared {
            config,
            validator,
            log: Arc::new(log),
            redis,
            idempotency,
            energy,
            limiter,
            shared_limiter,
            metrics: Metrics::new(),
            stars,
        }))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// An idempotency lock must outlive one attempt: the delivery timeout plus margin.
fn log_lock_ttl(log: &EventLog) -> Duration {
    log.produce_timeout() * 2 + Duration::from_secs(5)
}

pub fn app(state: AppState) -> Router {
    let shed = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
            ApiError::unavailable(
                "overloaded",
                "the write API is at capacity",
                Duration::from_secs(1),
            )
        }))
        .load_shed()
        .concurrency_limit(state.config.max_in_flight);
    let (writes, others) = routes();
    let writes = writes
        .layer(middleware::from_fn_with_state(
            state.clone(),
            body_first::read_body_first,
        ))
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(shed)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_in_flight,
        ));
    let (router, doc) = writes.merge(others).split_for_parts();
    let doc = openapi::document(doc);
    let router = router.route("/openapi.json", surge_http::openapi::serve(&doc));
    public(router, state)
}

/// The public routes, each registered with its OpenAPI operation so none can be undocumented:
/// the writes (behind the body-first read, the body limit and load shedding), and the rest.
fn routes() -> (OpenApiRouter<AppState>, OpenApiRouter<AppState>) {
    let writes = OpenApiRouter::new()
        .routes(routes!(handlers::sessions))
        .routes(routes!(handlers::taps))
        .routes(routes!(handlers::checkins))
        .routes(routes!(handlers::profile))
        .routes(routes!(handlers::batch))
        .routes(routes!(handlers::claim_quest))
        .routes(routes!(stars::purchase))
        .routes(routes!(stars::refund))
        .routes(routes!(broadcasts::request))
        .routes(routes!(broadcasts::cancel));
    let others = OpenApiRouter::new()
        .routes(routes!(stars::catalog))
        .routes(routes!(surge_http::live))
        .routes(routes!(health::ready));
    (writes, others)
}

/// The write API's OpenAPI document, as `GET /openapi.json` serves it.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    let (writes, others) = routes();
    openapi::document(writes.merge(others).into_openapi())
}

/// A client-facing router answered in the shared error shape for what it does not route, and
/// counted in the route metrics.
fn public(router: Router<AppState>, state: AppState) -> Router {
    router
        .fallback(surge_http::no_route)
        .method_not_allowed_fallback(surge_http::method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.metrics.routes.clone(),
            record_route_metrics,
        ))
        .with_state(state)
}

/// The admin router, for an address of its own that is not exposed to clients: `/metrics`.
pub fn admin(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(health::metrics))
        .fallback(surge_http::no_route)
        .method_not_allowed_fallback(surge_http::method_not_allowed)
        .with_state(state)
}

/// Telegram's webhook, for an address of its own (`SURGE_TELEGRAM_WEBHOOK_ADDR`) that only
/// Telegram needs to reach: `POST /telegram/webhook` ([`stars::webhook`]).
pub fn webhook(state: AppState) -> Router {
    let router = Router::new()
        .route("/telegram/webhook", post(stars::webhook::update))
        .layer(DefaultBodyLimit::max(WEBHOOK_MAX_BODY_BYTES));
    public(router, state)
}

/// Telegram's updates are small; a message with a long text and entities stays far below this.
const WEBHOOK_MAX_BODY_BYTES: usize = 1024 * 1024;

/// Counts write requests being worked on (the load-shedding bound applies to these).
async fn count_in_flight(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let gauge = &state.metrics.writes_in_flight;
    gauge.inc();
    let response = next.run(request).await;
    gauge.dec();
    response
}
