//! `/health/live` (the process answers), `/health/ready` (its dependencies answer: broker with
//! our topic, schema registry, Redis) and `/metrics`.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::json;

use super::AppState;

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

pub(super) async fn live() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

pub(super) async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let kafka = state.log.ping(CHECK_TIMEOUT);
    let registry = tokio::time::timeout(CHECK_TIMEOUT, state.log.codec().ping());
    let redis = tokio::time::timeout(CHECK_TIMEOUT, async {
        let mut conn = state.redis.clone();
        redis::cmd("PING").query_async::<String>(&mut conn).await
    });
    let (kafka, registry, redis) = tokio::join!(kafka, registry, redis);
    let checks = [
        ("kafka", kafka.is_ok()),
        ("schema_registry", matches!(registry, Ok(Ok(())))),
        ("redis", matches!(redis, Ok(Ok(_)))),
    ];
    let all_up = checks.iter().all(|(_, up)| *up);
    let body: serde_json::Map<_, _> = checks
        .iter()
        .map(|(name, up)| (name.to_string(), json!(if *up { "up" } else { "down" })))
        .collect();
    let status = if all_up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({ "status": if all_up { "ready" } else { "unavailable" }, "checks": body })),
    )
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
