//! `/health/live` (the process answers), `/health/ready` (its dependencies answer: broker with
//! our topic, schema registry, Redis) and `/metrics`.

use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use surge_http::{readiness, redis_up};

use super::AppState;

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

#[utoipa::path(
    get,
    path = "/health/ready",
    tag = "health",
    summary = "Kafka, the schema registry and Redis answer",
    responses(
        (status = 200, description = "Ready", body = surge_http::openapi::ReadyBody),
        (status = 503, description = "A dependency is down; `checks` names it", body = surge_http::openapi::ReadyBody),
    ),
)]
pub(super) async fn ready(State(state): State<AppState>) -> Response {
    let kafka = state.log.ping(CHECK_TIMEOUT);
    let registry = tokio::time::timeout(CHECK_TIMEOUT, state.log.codec().ping());
    let redis = redis_up(&state.redis);
    let (kafka, registry, redis) = tokio::join!(kafka, registry, redis);
    let checks = [
        ("kafka", kafka.is_ok()),
        ("schema_registry", matches!(registry, Ok(Ok(())))),
        ("redis", redis),
    ];
    readiness(&checks, Default::default())
}

pub(super) async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    state
        .metrics
        .producer_queue_depth
        .set(i64::from(state.log.queue_depth()));
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
