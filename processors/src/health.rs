//! `/health/live`, `/health/ready` and `/metrics` for `surge process`.

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus::{Encoder, Registry, TextEncoder};
use serde_json::json;
use surge_http::{live, postgres_up, readiness, redis_up};

use crate::projectors::Stores;
use crate::supervisor::Running;

#[derive(Clone)]
struct Health {
    registry: Registry,
    stores: Stores,
    processors: Running,
}

pub fn app(registry: Registry, stores: Stores, processors: Running) -> Router {
    Router::new()
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(Health {
            registry,
            stores,
            processors,
        })
}

async fn ready(State(health): State<Health>) -> Response {
    let (postgres, redis) = tokio::join!(
        postgres_up(&health.stores.pool),
        redis_up(&health.stores.redis),
    );
    let stopped = health.processors.stopped();
    let stalled = health.processors.stalled();
    let checks = [
        ("postgres", postgres),
        ("redis", redis),
        ("processors", stopped.is_empty()),
        ("partitions", stalled.is_empty()),
    ];
    let mut extra = serde_json::Map::new();
    extra.insert("stopped".into(), json!(stopped));
    extra.insert("stalled".into(), json!(stalled));
    readiness(&checks, extra)
}

async fn metrics(State(health): State<Health>) -> impl IntoResponse {
    let mut out = Vec::new();
    TextEncoder::new()
        .encode(&health.registry.gather(), &mut out)
        .expect("text encoding");
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}
