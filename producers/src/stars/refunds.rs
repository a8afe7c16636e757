//! `POST /v1/admin/refunds {"telegram_payment_charge_id"}` (operator token): refunds a payment
//! through `refundStarPayment` and, once Telegram confirms or answers that the charge is already
//! refunded, appends StarsPaymentRefunded. Telegram's own `refunded_payment` update for the same
//! charge becomes the same event (same id), so a refund is applied once whichever comes first.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::payload::InvoicePayload;
use super::purchases::{bot_api_failed, payments_store_down};
use super::webhook::refund_event;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::handlers::{accepted, append, now_ms};
use crate::http::json::ApiJson;
use crate::http::operator::Operator;
use crate::trace::TraceContext;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RefundBody {
    telegram_payment_charge_id: String,
}

#[utoipa::path(
    post,
    path = "/v1/admin/refunds",
    tag = "admin",
    summary = "Refund a Stars payment (StarsPaymentRefunded)",
    security(("operator" = [])),
    request_body = RefundBody,
    responses(
        (status = 202, description = "Refunded", body = crate::http::openapi::RefundAccepted),
        crate::http::openapi::RefundErrors,
    ),
)]
pub(crate) async fn refund(
    State(s): State<AppState>,
    _operator: Operator,
    headers: HeaderMap,
    ApiJson(body): ApiJson<RefundBody>,
) -> Result<Response, ApiError> {
    let charge_id = body.telegram_payment_charge_id;
    let charge = s
        .stars
        .records
        .charge(&charge_id)
        .await
        .map_err(payments_store_down)?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_charge",
                format!("no payment with telegram_payment_charge_id {charge_id:?} was received"),
            )
        })?;
    let payload = InvoicePayload::open(&charge.invoice_payload, &s.stars.key)
        .map_err(|e| ApiError::internal("A recorded payment's payload does not open.", &e))?;
    let already_refunded = match s
        .stars
        .bot
        .refund_star_payment(charge.user_id, &charge_id)
        .await
    {
        Ok(()) => false,
        Err(e) if e.says("CHARGE_ALREADY_REFUNDED") => true,
        Err(e) => return Err(bot_api_failed(e)),
    };
    tracing::info!(
        charge_id,
        user_id = charge.user_id,
        already_refunded,
        "Refunded a Stars payment."
    );
    let event = refund_event(charge.user_id, &charge_id, charge.stars, &payload, now_ms());
    // Recorded only after its event was acknowledged: appending it again could only take the
    // coins back twice where duplicates are remembered for a while (the Redis projections).
    let mut body = if charge.refunded {
        json!({ "event_id": event.envelope.event_id, "position": null })
    } else {
        let trace = TraceContext::continue_or_start(
            headers.get("traceparent").and_then(|v| v.to_str().ok()),
        );
        let body = append(&s, &[event], false, &trace, None)
            .await
            .map_err(|failed| failed.error)?;
        s.stars
            .records
            .refunded(&charge_id, &charge, &payload.item_id)
            .await
            .map_err(payments_store_down)?;
        body
    };
    body["refunded"] = json!(true);
    body["already_refunded"] = json!(already_refunded);
    Ok(accepted(body, false))
}
