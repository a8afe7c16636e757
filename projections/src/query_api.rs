//! The query API. The projections it will serve arrive with the processors; until then every
//! `/v1` route answers 501 with a JSON error, while health checks already report the stores it
//! reads (PostgreSQL and Redis).

use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use redis::aio::ConnectionManager;
use serde_json::json;
use sqlx::PgPool;

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone)]
struct Stores {
    pool: PgPool,
    redis: ConnectionManager,
}

pub fn app(pool: PgPool, redis: ConnectionManager) -> Router {
    Router::new()
        .route(
            "/health/live",
            get(|| async { Json(json!({ "status": "ok" })) }),
        )
        .route("/health/ready", get(ready))
        .fallback(not_implemented)
        .with_state(Stores { pool, redis })
}

async fn not_implemented() -> impl IntoResponse {
    let error = json!({ "error": {
        "code": "not_implemented",
        "message": "the query API serves projections, which are not available in this version",
    }});
    (StatusCode::NOT_IMPLEMENTED, Json(error))
}

async fn ready(State(stores): State<Stores>) -> impl IntoResponse {
    let postgres =
        tokio::time::timeout(CHECK_TIMEOUT, sqlx::query("SELECT 1").execute(&stores.pool));
    let redis = tokio::time::timeout(CHECK_TIMEOUT, async {
        let mut conn = stores.redis.clone();
        redis::cmd("PING").query_async::<String>(&mut conn).await
    });
    let (postgres, redis) = tokio::join!(postgres, redis);
    let (pg_up, redis_up) = (matches!(postgres, Ok(Ok(_))), matches!(redis, Ok(Ok(_))));
    let word = |up: bool| if up { "up" } else { "down" };
    let status = if pg_up && redis_up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if status.is_success() { "ready" } else { "unavailable" },
        "checks": { "postgres": word(pg_up), "redis": word(redis_up) },
    });
    (status, Json(body))
}
