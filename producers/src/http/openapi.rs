//! The write API's OpenAPI document: the schemas of the bodies its handlers build with `json!`
//! (documentation only: the handlers' output is unchanged), the error codes each handler can
//! answer, and [`document`], which `app` serves at `GET /openapi.json`.

use serde_json::Value;
use surge_http::error_responses;
use surge_http::openapi::{
    INIT_DATA_ERRORS, OPERATOR_ERRORS, PATH_ERRORS, add_response_header, has_parameter, operations,
    string_header,
};
use utoipa::ToSchema;
use utoipa::openapi::OpenApi;
use uuid::Uuid;

use crate::energy::Level;

const DESCRIPTION: &str = "Surge's write API: every write a Telegram Mini App makes becomes an \
event on the log, answered `202 Accepted` with the event id and a consistency token \
(`X-Consistency-Token`) for read-your-writes on the query API. Every refusal is \
`{\"error\": {\"code\", \"message\"}}`. Not in this document: Telegram's webhook \
(`POST /telegram/webhook`, on `SURGE_TELEGRAM_WEBHOOK_ADDR`, for Telegram only) and `/metrics` \
(on the admin address).";

/// `202` of a single write: the event id and the signed consistency token.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct Accepted {
    event_id: Uuid,
    /// The signed consistency token (also `X-Consistency-Token`).
    position: String,
    /// The user's tap energy after the request; only when it had taps.
    energy: Option<Level>,
}

/// `202` of a batch: one event id per action, in order.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct BatchAccepted {
    event_ids: Vec<Uuid>,
    position: String,
    /// Only when the batch had taps.
    energy: Option<Level>,
}

/// `202` of `POST /v1/purchases`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct PurchaseAccepted {
    event_id: Uuid,
    position: String,
    purchase_id: Uuid,
    item_id: String,
    stars: i64,
    /// Telegram's invoice link, for `Telegram.WebApp.openInvoice`.
    invoice_link: String,
}

/// `202` of `POST /v1/admin/refunds`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct RefundAccepted {
    event_id: Uuid,
    /// `null` when the refund had been recorded already (nothing new was appended).
    position: Option<String>,
    refunded: bool,
    /// Telegram answered that the charge was already refunded.
    already_refunded: bool,
}

/// `202` of the broadcast endpoints.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct BroadcastAccepted {
    event_id: Uuid,
    position: String,
    broadcast_id: Uuid,
}

/// `GET /v1/catalog`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct Catalog {
    items: Vec<CatalogItem>,
    /// Always `XTR` (Telegram Stars).
    currency: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct CatalogItem {
    id: String,
    title: String,
    description: String,
    stars: i64,
    /// `{"coins": n}`, `{"subscription": "<plan>"}` or `"energy_refill"`.
    grants: Value,
    /// Bought at most once per user.
    once: bool,
}

/// What reading a JSON body can refuse ([`super::json::ApiJson`], [`super::body_first`]).
const BODY_ERRORS: &[(u16, &str)] = &[
    (400, "invalid_json"),
    (400, "json_too_deep"),
    (400, "unreadable_body"),
    (413, "body_too_large"),
    (415, "unsupported_media_type"),
    (422, "invalid_field"),
];

/// What every write answered by the write protocol (`handlers::accept`) can refuse.
const WRITE_ERRORS: &[(u16, &str)] = &[
    (400, "invalid_idempotency_key"),
    (400, "invalid_text"),
    (409, "idempotency_in_progress"),
    (422, "invalid_field"),
    (422, "idempotency_key_reused"),
    (429, "rate_limited"),
    (429, "out_of_energy"),
    (500, "internal"),
    (503, "overloaded"),
    (503, "broker_unavailable"),
    (503, "schema_registry_unavailable"),
    (503, "idempotency_store_unavailable"),
    (503, "idempotency_not_replicated"),
    (503, "energy_store_unavailable"),
];

/// What a Stars call (an invoice, a refund) may answer besides its own refusals: Telegram's
/// and the payment store's failures.
const PAYMENT_ERRORS: &[(u16, &str)] = &[
    (500, "internal"),
    (502, "telegram_refused"),
    (503, "overloaded"),
    (503, "broker_unavailable"),
    (503, "schema_registry_unavailable"),
    (503, "payments_store_unavailable"),
    (503, "telegram_unavailable"),
];

/// What an operator event's append can refuse (`broadcasts`).
const OPERATOR_WRITE_ERRORS: &[(u16, &str)] = &[
    (400, "invalid_text"),
    (422, "invalid_field"),
    (500, "internal"),
    (503, "overloaded"),
    (503, "broker_unavailable"),
    (503, "schema_registry_unavailable"),
];

error_responses!(pub(crate) WriteErrors = [INIT_DATA_ERRORS, BODY_ERRORS, WRITE_ERRORS]);
error_responses!(
    /// A quest claim's, alone or in a batch: the quest book decides (`actions::check_claims`).
    pub(crate) ClaimErrors = [
    INIT_DATA_ERRORS,
    BODY_ERRORS,
    WRITE_ERRORS,
    [(404, "unknown_quest"), (409, "quest_not_claimable")],
]);
error_responses!(pub(crate) PurchaseErrors = [
    INIT_DATA_ERRORS,
    BODY_ERRORS,
    [(404, "unknown_item"), (409, "already_owned"), (429, "rate_limited")],
    PAYMENT_ERRORS,
]);
error_responses!(pub(crate) RefundErrors = [
    OPERATOR_ERRORS,
    BODY_ERRORS,
    [(404, "unknown_charge")],
    PAYMENT_ERRORS,
]);
error_responses!(pub(crate) BroadcastErrors = [OPERATOR_ERRORS, BODY_ERRORS, OPERATOR_WRITE_ERRORS]);
error_responses!(pub(crate) CancelErrors = [OPERATOR_ERRORS, PATH_ERRORS, OPERATOR_WRITE_ERRORS]);

/// The document of `router` (the write API's routes), finished with what both APIs share.
pub(crate) fn document(router: OpenApi) -> OpenApi {
    let mut doc = surge_http::openapi::finish(router, "Surge write API", DESCRIPTION);
    let token = string_header(
        "The signed consistency token of the write (the body's `position`): send it as \
         `X-Consistency-Token` on a query API read to see at least this write",
    );
    add_response_header(&mut doc, "202", "X-Consistency-Token", &token, |_, _| true);
    let replayed = string_header(
        "`true` when this answers an earlier attempt with the same `Idempotency-Key`",
    );
    add_response_header(
        &mut doc,
        "202",
        "Idempotent-Replayed",
        &replayed,
        |_, op| has_parameter(op, "Idempotency-Key"),
    );
    // These bodies are optional: an empty body means no options.
    for (path, _, op) in operations(&mut doc) {
        if let (true, Some(body)) = (
            matches!(path, "/v1/sessions" | "/v1/checkins"),
            op.request_body.as_mut(),
        ) {
            body.required = Some(utoipa::openapi::Required::False);
        }
    }
    doc
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_document_keeps_every_published_route_and_lists_every_refusal() {
        surge_http::openapi::check_document(
            &mut crate::http::openapi_document(),
            &[
                "POST /v1/sessions",
                "POST /v1/taps",
                "POST /v1/checkins",
                "PATCH /v1/profile",
                "POST /v1/batch",
                "POST /v1/quests/{quest_id}/claim",
                "POST /v1/purchases",
                "POST /v1/admin/refunds",
                "POST /v1/admin/broadcasts",
                "POST /v1/admin/broadcasts/{broadcast_id}/cancel",
                "GET /v1/catalog",
                "GET /health/live",
                "GET /health/ready",
            ],
            &["/v1/catalog", "/health/live", "/health/ready"],
        );
    }
}
