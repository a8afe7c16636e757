//! `GET /v1/admin/broadcasts/{id}` and `GET /v1/admin/broadcasts?limit=` (operator): a
//! broadcast's request and its deliveries (sent, failed with Telegram's reasons, blocked,
//! cancelled, remaining), how fast they went in the last ten seconds and when the rest should
//! be done, from the `notifications` projection and its tallies. With the consistency token of
//! `POST /v1/admin/broadcasts` the broadcast is there at once.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;
use surge_http::error_responses;
use surge_http::openapi::{OPERATOR_ERRORS, PATH_ERRORS};
use surge_http::{ApiError, Path};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::catalog::ProjectionId;
use crate::notifications::{NotificationStore, Outbox, view};
use crate::query_api::QueryState;
use crate::query_api::auth::Operator;
use crate::query_api::caching::{PRIVATE_REVALIDATE, cached_json};
use crate::query_api::consistency::ReadAfter;
use crate::query_api::handlers::{Params, limit};
use crate::query_api::openapi::READ_ERRORS;

/// The endpoints of `notifications`, registered with their OpenAPI operations through the catalog's
/// line.
pub(crate) fn routes() -> OpenApiRouter<QueryState> {
    OpenApiRouter::new()
        .routes(routes!(broadcasts))
        .routes(routes!(broadcast))
}

/// A broadcast and its deliveries.
#[derive(ToSchema)]
#[allow(dead_code)]
struct BroadcastView {
    broadcast_id: Uuid,
    /// `sending`, `done` or `cancelled`.
    status: String,
    text: String,
    button_text: Option<String>,
    audience: Audience,
    requested_at: Option<String>,
    cancelled_at: Option<String>,
    recipients: i64,
    sent: i64,
    failed: i64,
    blocked: i64,
    cancelled: i64,
    remaining: i64,
    /// Deliveries per second over the last ten seconds.
    per_second: f64,
    eta_seconds: Option<i64>,
    /// Telegram's reasons for failed deliveries, with counts.
    failures: Vec<Failure>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct Audience {
    active_within_days: Option<i64>,
    language: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct Failure {
    reason: String,
    count: i64,
}

/// `GET /v1/admin/broadcasts`.
#[derive(ToSchema)]
#[allow(dead_code)]
struct Broadcasts {
    /// The latest first.
    broadcasts: Vec<BroadcastView>,
}

error_responses!(
    BroadcastErrors = [
        OPERATOR_ERRORS,
        READ_ERRORS,
        PATH_ERRORS,
        [(404, "unknown_broadcast")],
    ]
);

error_responses!(
    BroadcastsErrors = [
        OPERATOR_ERRORS,
        READ_ERRORS,
        [(400, "invalid_limit"), (400, "repeated_parameter")],
    ]
);

#[utoipa::path(
    get,
    path = "/v1/admin/broadcasts/{broadcast_id}",
    tag = "admin",
    summary = "A broadcast and its deliveries",
    security(("operator" = [])),
    params(
        ("broadcast_id" = Uuid, Path, description = "The id `POST /v1/admin/broadcasts` answered"),
        surge_http::openapi::ReadHeaders,
    ),
    responses(
        (status = 200, description = "The broadcast", body = BroadcastView),
        BroadcastErrors,
    ),
)]
pub(crate) async fn broadcast(
    State(state): State<QueryState>,
    _operator: Operator,
    Path(broadcast_id): Path<Uuid>,
    after: ReadAfter,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let served = state
        .read_after(&after, None, &[ProjectionId::Notifications])
        .await?;
    let store = served.store::<NotificationStore>();
    let read = |pool| async move {
        let Some(broadcast) = store.broadcast(pool, broadcast_id).await? else {
            return Ok(None);
        };
        let progress = Outbox.progress(pool, broadcast_id).await?;
        Ok::<_, sqlx::Error>(Some((broadcast, progress)))
    };
    let Some((broadcast, progress)) = served
        .read(&state, ProjectionId::Notifications, read)
        .await?
    else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_broadcast",
            format!(
                "no broadcast {broadcast_id} (yet: pass the request's X-Consistency-Token to wait for it)"
            ),
        ));
    };
    let body = view(&broadcast, &progress).to_string();
    Ok(cached_json(&headers, body, PRIVATE_REVALIDATE))
}

#[utoipa::path(
    get,
    path = "/v1/admin/broadcasts",
    tag = "admin",
    summary = "The latest broadcasts",
    security(("operator" = [])),
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Broadcasts (default 20)"),
        surge_http::openapi::ReadHeaders,
    ),
    responses(
        (status = 200, description = "The latest first", body = Broadcasts),
        BroadcastsErrors,
    ),
)]
pub(crate) async fn broadcasts(
    State(state): State<QueryState>,
    _operator: Operator,
    query: Params,
    after: ReadAfter,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let limit = limit(query.get("limit"), 20, 100)?;
    let served = state
        .read_after(&after, None, &[ProjectionId::Notifications])
        .await?;
    let store = served.store::<NotificationStore>();
    let read = |pool| async move {
        let broadcasts = store.latest(pool, limit as i64).await?;
        let ids: Vec<Uuid> = broadcasts.iter().map(|b| b.broadcast_id).collect();
        let mut progress = Outbox.progresses(pool, &ids).await?;
        let views: Vec<_> = broadcasts
            .iter()
            .map(|b| view(b, &progress.remove(&b.broadcast_id).unwrap_or_default()))
            .collect();
        Ok::<_, sqlx::Error>(views)
    };
    let views = served
        .read(&state, ProjectionId::Notifications, read)
        .await?;
    let body = json!({ "broadcasts": views }).to_string();
    Ok(cached_json(&headers, body, PRIVATE_REVALIDATE))
}
