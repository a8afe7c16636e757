//! `/health/live`, `/health/ready` and `/metrics` for `surge process`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus::{Encoder, Registry, TextEncoder};
use serde_json::json;

use crate::projectors::Stores;
use crate::runtime::ProcessorHandle;

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone)]
struct Health {
    registry: Registry,
    stores: Stores,
    processors: Arc<Mutex<Vec<ProcessorHandle>>>,
}

pub fn app(
    registry: Registry,
    stores: Stores,
    processors: Arc<Mutex<Vec<ProcessorHandle>>>,
) -> Router {
    Router::new()
        .route(
            "/health/live",
            get(|| async { Json(json!({ "status": "ok" })) }),
        )
        .route("/health/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(Health {
            registry,
            stores,
            processors,
        })
}

async fn ready(State(health): State<Health>) -> impl IntoResponse {
    let postgres = tokio::time::timeout(
        CHECK_TIMEOUT,
        sqlx::query("SELECT 1").execute(&health.stores.pool),
    );
    let redis = tokio::time::timeout(CHECK_TIMEOUT, async {
        let mut conn = health.stores.redis.clone();
        redis::cmd("PING").query_async::<String>(&mut conn).await
    });
    let (postgres, redis) = tokio::join!(postgres, redis);
    let stopped: Vec<String> = health
        .processors
        .lock()
        .expect("processors lock")
        .iter()
        .filter(|p| p.is_finished())
        .map(|p| p.id.clone())
        .collect();
    let checks = [
        ("postgres", matches!(postgres, Ok(Ok(_)))),
        ("redis", matches!(redis, Ok(Ok(_)))),
        ("processors", stopped.is_empty()),
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
    let word = if all_up { "ready" } else { "unavailable" };
    (
        status,
        Json(json!({ "status": word, "checks": body, "stopped": stopped })),
    )
}

async fn metrics(State(health): State<Health>) -> impl IntoResponse {
    let mut out = Vec::new();
    TextEncoder::new()
        .encode(&health.registry.gather(), &mut out)
        .expect("text encoding");
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}
