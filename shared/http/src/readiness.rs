//! `/health/live` and `/health/ready` answers: ready only when every dependency answered, and
//! the body names each one, so an operator sees which store is down. The PostgreSQL and Redis
//! checks every role runs are here too.

use std::time::Duration;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use redis::aio::ConnectionLike;
use serde_json::{Map, Value, json};
use sqlx::PgPool;

/// The process answers.
#[utoipa::path(
    get,
    path = "/health/live",
    tag = "health",
    summary = "The process answers",
    responses((status = 200, description = "Alive", body = crate::openapi::LiveBody)),
)]
pub async fn live() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

/// 200 `{"status":"ready","checks":{name:"up"}}` when every check is up, else 503 with each
/// check's state. `extra` fields are added to the body as they are.
pub fn readiness(checks: &[(&str, bool)], extra: Map<String, Value>) -> Response {
    let all_up = checks.iter().all(|(_, up)| *up);
    let states: Map<String, Value> = checks
        .iter()
        .map(|(name, up)| ((*name).to_owned(), json!(if *up { "up" } else { "down" })))
        .collect();
    let mut body = Map::new();
    body.insert(
        "status".into(),
        json!(if all_up { "ready" } else { "unavailable" }),
    );
    body.insert("checks".into(), Value::Object(states));
    body.extend(extra);
    let status = if all_up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(Value::Object(body))).into_response()
}

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// PostgreSQL answers `SELECT 1` within the check timeout.
pub async fn postgres_up(pool: &PgPool) -> bool {
    let check = sqlx::query("SELECT 1").execute(pool);
    matches!(tokio::time::timeout(CHECK_TIMEOUT, check).await, Ok(Ok(_)))
}

/// Redis answers `PING` within the check timeout.
pub async fn redis_up(redis: &(impl ConnectionLike + Clone)) -> bool {
    let mut conn = redis.clone();
    let ping = redis::cmd("PING");
    let check = ping.query_async::<String>(&mut conn);
    matches!(tokio::time::timeout(CHECK_TIMEOUT, check).await, Ok(Ok(_)))
}
