//! Broadcasts, requested by an operator (`Authorization: Bearer <SURGE_OPERATOR_TOKEN>`):
//! - `POST /v1/admin/broadcasts {"text", "button"?: {"text"}, "audience"?: {"active_within_days"?,
//!   "language"?}}` appends BroadcastRequested and answers 202 `{"broadcast_id", ...}`; the
//!   `notifications` projection expands it into one delivery per recipient and the processors'
//!   sender delivers them within Telegram's limits;
//! - `POST /v1/admin/broadcasts/{id}/cancel` appends BroadcastCancelled: what is not yet sent is
//!   dropped.
//!
//! Both events are keyed by [`OPERATOR_USER_ID`], so a broadcast and its cancellation are
//! applied in order. Progress is read from the query API (`GET /v1/admin/broadcasts/{id}`).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use surge_http::Path;
use surge_schemas::rules::{self, Problem};
use surge_schemas::{
    BroadcastCancelled, BroadcastRequested, Envelope, Event, OPERATOR_USER_ID, Payload,
};
use uuid::Uuid;

use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::handlers::{accepted, append, now_ms};
use crate::http::json::{ApiJson, object};
use crate::http::operator::Operator;
use crate::trace::TraceContext;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BroadcastBody {
    #[schema(example = "A new season starts today!")]
    text: String,
    #[serde(default, deserialize_with = "object")]
    button: Option<ButtonBody>,
    #[serde(default, deserialize_with = "object")]
    audience: Option<AudienceBody>,
}

/// An inline button that opens the Mini App.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ButtonBody {
    text: String,
}

/// Who receives it; everyone who let the bot write to them when absent.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct AudienceBody {
    #[serde(default)]
    active_within_days: Option<i32>,
    #[serde(default)]
    language: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/admin/broadcasts",
    tag = "admin",
    summary = "Send a message to the bot's users (BroadcastRequested)",
    security(("operator" = [])),
    request_body = BroadcastBody,
    responses(
        (status = 202, description = "Accepted: the broadcast's id", body = crate::http::openapi::BroadcastAccepted),
        crate::http::openapi::BroadcastErrors,
    ),
)]
pub(crate) async fn request(
    State(s): State<AppState>,
    _operator: Operator,
    headers: HeaderMap,
    ApiJson(body): ApiJson<BroadcastBody>,
) -> Result<Response, ApiError> {
    let broadcast_id = Uuid::now_v7();
    let audience = body.audience.unwrap_or_default();
    let payload = Payload::from(BroadcastRequested {
        broadcast_id,
        text: body.text,
        button_text: body.button.map(|b| b.text),
        active_within_days: audience.active_within_days,
        language: audience.language,
    });
    let mut answer = append_operator_event(&s, &headers, payload).await?;
    tracing::info!(%broadcast_id, "Broadcast requested.");
    answer["broadcast_id"] = json!(broadcast_id);
    Ok(accepted(answer, false))
}

#[utoipa::path(
    post,
    path = "/v1/admin/broadcasts/{broadcast_id}/cancel",
    tag = "admin",
    summary = "Drop what a broadcast has not sent yet (BroadcastCancelled)",
    security(("operator" = [])),
    params(("broadcast_id" = Uuid, Path, description = "The broadcast's id")),
    responses(
        (status = 202, description = "Accepted", body = crate::http::openapi::BroadcastAccepted),
        crate::http::openapi::CancelErrors,
    ),
)]
pub(crate) async fn cancel(
    State(s): State<AppState>,
    _operator: Operator,
    headers: HeaderMap,
    Path(broadcast_id): Path<Uuid>,
) -> Result<Response, ApiError> {
    let payload = Payload::from(BroadcastCancelled { broadcast_id });
    let mut answer = append_operator_event(&s, &headers, payload).await?;
    tracing::info!(%broadcast_id, "Broadcast cancelled.");
    answer["broadcast_id"] = json!(broadcast_id);
    Ok(accepted(answer, false))
}

/// Checks `payload` against its rules and appends it under the operator's key.
async fn append_operator_event(
    s: &AppState,
    headers: &HeaderMap,
    payload: Payload,
) -> Result<serde_json::Value, ApiError> {
    rules::check(&payload).map_err(|violation| {
        let field = match violation.field {
            "button_text" => "button.text",
            "active_within_days" => "audience.active_within_days",
            "language" => "audience.language",
            other => other,
        };
        match violation.problem {
            Problem::Characters(what) => {
                ApiError::bad_request("invalid_text", format!("{field}: must not contain {what}"))
            }
            Problem::Value(rule) => {
                ApiError::unprocessable("invalid_field", format!("{field}: {rule}"))
            }
        }
    })?;
    let now = now_ms();
    let event = Event {
        envelope: Envelope {
            event_id: Uuid::now_v7(),
            user_id: OPERATOR_USER_ID,
            occurred_at: now,
            recorded_at: now,
        },
        payload,
    };
    let trace =
        TraceContext::continue_or_start(headers.get("traceparent").and_then(|v| v.to_str().ok()));
    append(s, &[event], false, &trace, None)
        .await
        .map_err(|failed| failed.error)
}
