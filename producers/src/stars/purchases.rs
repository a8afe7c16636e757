//! `POST /v1/purchases` and `GET /v1/catalog`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use surge_bot_api::{BotApiError, StarsInvoice};
use surge_schemas::products::SUBSCRIPTION_PERIOD_SECS;
use surge_schemas::{Envelope, Event, PurchaseStarted};
use uuid::Uuid;

use super::payload::InvoicePayload;
use crate::http::AppState;
use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::http::handlers::{accepted, append, now_ms};
use crate::http::json::ApiJson;
use crate::trace::TraceContext;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PurchaseBody {
    /// An item of `GET /v1/catalog`.
    #[schema(example = "coins_1000")]
    item_id: String,
}

/// `GET /v1/catalog`: what is for sale, public.
#[utoipa::path(
    get,
    path = "/v1/catalog",
    tag = "payments",
    summary = "What is for sale, in Telegram Stars",
    responses((status = 200, description = "The catalogue", body = crate::http::openapi::Catalog)),
)]
pub(crate) async fn catalog(State(s): State<AppState>) -> Json<Value> {
    let items: Vec<_> = s.config.stars.catalog.iter().collect();
    Json(json!({ "items": items, "currency": "XTR" }))
}

/// `POST /v1/purchases {"item_id"}`: an invoice link for the caller, and PurchaseStarted.
/// Answers 202 with `purchase_id`, `invoice_link`, `event_id` and the consistency token.
#[utoipa::path(
    post,
    path = "/v1/purchases",
    tag = "payments",
    summary = "Open an invoice for an item (PurchaseStarted)",
    security(("tma" = [])),
    request_body = PurchaseBody,
    responses(
        (status = 202, description = "Accepted: the invoice link and PurchaseStarted's event id", body = crate::http::openapi::PurchaseAccepted),
        crate::http::openapi::PurchaseErrors,
    ),
)]
pub(crate) async fn purchase(
    State(s): State<AppState>,
    Caller(who): Caller,
    headers: HeaderMap,
    ApiJson(body): ApiJson<PurchaseBody>,
) -> Result<Response, ApiError> {
    let user_id = who.user.id;
    let item = s.config.stars.catalog.get(&body.item_id).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_item",
            format!("there is no item {:?} in the catalogue", body.item_id),
        )
    })?;
    if item.once {
        let owned = s
            .stars
            .records
            .owns(user_id, &item.id)
            .await
            .map_err(payments_store_down)?;
        if owned {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "already_owned",
                format!("{:?} can be bought once, and you own it", item.id),
            ));
        }
    }
    let purchase_id = Uuid::now_v7();
    let payload = InvoicePayload {
        purchase_id,
        user_id,
        item_id: item.id.clone(),
        coins: item.coins(),
    };
    let invoice = StarsInvoice {
        title: item.title.clone(),
        description: item.description.clone(),
        payload: payload.seal(&s.stars.key),
        label: item.title.clone(),
        stars: item.stars,
        subscription_period: item.is_subscription().then_some(SUBSCRIPTION_PERIOD_SECS),
    };
    let link = s
        .stars
        .bot
        .create_stars_invoice_link(&invoice)
        .await
        .map_err(bot_api_failed)?;
    let now = now_ms();
    let event = Event {
        envelope: Envelope {
            event_id: Uuid::now_v7(),
            user_id,
            occurred_at: now,
            recorded_at: now,
        },
        payload: PurchaseStarted {
            purchase_id,
            item_id: item.id.clone(),
            stars: item.stars,
        }
        .into(),
    };
    let trace =
        TraceContext::continue_or_start(headers.get("traceparent").and_then(|v| v.to_str().ok()));
    let mut body = append(&s, &[event], false, &trace, None)
        .await
        .map_err(|failed| failed.error)?;
    body["purchase_id"] = json!(purchase_id);
    body["item_id"] = json!(item.id);
    body["stars"] = json!(item.stars);
    body["invoice_link"] = json!(link);
    Ok(accepted(body, false))
}

/// A Bot API call that failed: 503 when Telegram could not be reached (retry), 502 when it
/// refused (its description says why).
pub(super) fn bot_api_failed(error: BotApiError) -> ApiError {
    match error {
        BotApiError::Unreachable { .. } => {
            surge_http::sampled_warn!(%error, "The Bot API did not answer.");
            ApiError::unavailable(
                "telegram_unavailable",
                "Telegram's Bot API did not answer; retry shortly",
                std::time::Duration::from_secs(2),
            )
        }
        BotApiError::Refused { description, .. } => {
            tracing::warn!(%description, "The Bot API refused a call.");
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "telegram_refused",
                format!("Telegram refused: {description}"),
            )
        }
    }
}

pub(super) fn payments_store_down(error: redis::RedisError) -> ApiError {
    surge_http::sampled_warn!(%error, "Payment records unavailable.");
    ApiError::unavailable(
        "payments_store_unavailable",
        "purchases cannot be checked right now",
        std::time::Duration::from_secs(1),
    )
}
