//! `GET /v1/me/purchases?limit=`: the caller's opened invoices with their status, payments and
//! subscriptions, from the `purchases` projection (PostgreSQL). With the consistency token of
//! `POST /v1/purchases` it shows at least that purchase; a Mini App told "failed" by
//! `openInvoice` reads here whether it was paid.
//!
//! `GET /v1/stats/revenue?days=` (operator): Stars paid and refunded per UTC day.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::json;
use surge_http::ApiError;
use surge_http::error_responses;
use surge_http::openapi::INIT_DATA_ERRORS;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::catalog::ProjectionId;
use crate::purchases::{PurchaseStore, view};
use crate::query_api::QueryState;
use crate::query_api::auth::{Operator, Reader};
use crate::query_api::caching::{PRIVATE_REVALIDATE, cached_json};
use crate::query_api::consistency::ReadAfter;
use crate::query_api::handlers::{Params, limit, time, whole_number};
use crate::query_api::openapi::READ_ERRORS;
use crate::versions::now_ms;

/// The endpoints of `purchases`, registered with their OpenAPI operations through the catalog's
/// line.
pub(crate) fn routes() -> OpenApiRouter<QueryState> {
    OpenApiRouter::new()
        .routes(routes!(my_purchases))
        .routes(routes!(revenue))
}

/// `GET /v1/stats/revenue`.
#[derive(ToSchema)]
#[allow(dead_code)]
struct Revenue {
    as_of: Option<String>,
    /// `XTR` (Telegram Stars).
    currency: String,
    days: Vec<crate::purchases::RevenueDay>,
}

error_responses!(
    LimitedReadErrors = [
        INIT_DATA_ERRORS,
        READ_ERRORS,
        [(400, "invalid_limit"), (400, "repeated_parameter")],
    ]
);

#[utoipa::path(
    get,
    path = "/v1/me/purchases",
    tag = "me",
    summary = "The caller's invoices, payments and subscriptions",
    security(("tma" = [])),
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Invoices listed (default 50)"),
        surge_http::openapi::ReadHeaders,
    ),
    responses(
        (status = 200, description = "Newest first", body = crate::purchases::PurchasesView),
        LimitedReadErrors,
    ),
)]
pub(crate) async fn my_purchases(
    State(state): State<QueryState>,
    Reader(user_id): Reader,
    query: Params,
    after: ReadAfter,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let limit = limit(query.get("limit"), 50, 200)?;
    let body = read(&state, &after, user_id, limit).await?.to_string();
    Ok(cached_json(&headers, body, PRIVATE_REVALIDATE))
}

/// What `GET /v1/me/purchases?limit=` answers `user_id`, once `purchases` has applied `after`.
pub(crate) async fn read(
    state: &QueryState,
    after: &ReadAfter,
    user_id: i64,
    limit: usize,
) -> Result<serde_json::Value, ApiError> {
    let served = state
        .read_after(after, Some(user_id), &[ProjectionId::Purchases])
        .await?;
    let store = served.store::<PurchaseStore>();
    let (started, payments) = served
        .read(state, ProjectionId::Purchases, |pool| {
            store.of_user(pool, user_id, limit as i64)
        })
        .await?;
    Ok(serde_json::to_value(view(&started, &payments, now_ms())).expect("plain data serialises"))
}

#[utoipa::path(
    get,
    path = "/v1/stats/revenue",
    tag = "admin",
    summary = "Stars paid and refunded per UTC day",
    security(("operator" = [])),
    params(
        ("days" = Option<u32>, Query, minimum = 1, maximum = 366, description = "Days back (default 30)"),
        surge_http::openapi::ReadHeaders,
    ),
    responses(
        (status = 200, description = "Days with payments or refunds", body = Revenue),
        crate::query_api::openapi::WindowErrors,
    ),
)]
pub(crate) async fn revenue(
    State(state): State<QueryState>,
    _operator: Operator,
    query: Params,
    after: ReadAfter,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let days = whole_number("days", "invalid_window", query.get("days"), 30, 366)?;
    let served = state
        .read_after(&after, None, &[ProjectionId::Purchases])
        .await?;
    let store = served.store::<PurchaseStore>();
    let days = served
        .read(&state, ProjectionId::Purchases, |pool| {
            store.revenue(pool, days as i32)
        })
        .await?;
    let body = json!({ "as_of": time(now_ms()), "currency": "XTR", "days": days }).to_string();
    Ok(cached_json(&headers, body, PRIVATE_REVALIDATE))
}
