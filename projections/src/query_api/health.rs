//! `/health/ready` names the store that is down; `/metrics` (on the admin router) serves the
//! query API's registry.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use prometheus::{Encoder, TextEncoder};
use surge_http::{postgres_up, readiness, redis_up};

use super::QueryState;

#[utoipa::path(
    get,
    path = "/health/ready",
    tag = "health",
    summary = "PostgreSQL and Redis answer",
    responses(
        (status = 200, description = "Ready", body = surge_http::openapi::ReadyBody),
        (status = 503, description = "A store is down; `checks` names it", body = surge_http::openapi::ReadyBody),
    ),
)]
pub(super) async fn ready(State(state): State<QueryState>) -> Response {
    let (postgres, redis) = tokio::join!(postgres_up(&state.pool), redis_up(&state.redis));
    readiness(
        &[("postgres", postgres), ("redis", redis)],
        Default::default(),
    )
}

pub(super) async fn metrics(State(state): State<QueryState>) -> impl IntoResponse {
    let mut out = Vec::new();
    TextEncoder::new()
        .encode(&state.registry.gather(), &mut out)
        .expect("text encoding");
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}
