//! The query API's OpenAPI document: what its handlers share (a leaderboard's period, the
//! refusals of every read) and [`document`], which `app` serves at `GET /openapi.json`. Each
//! handler documents its own body (the schema of what it builds with `json!`: documentation
//! only, the output is unchanged) and its own refusals beside its `#[utoipa::path]`.

use surge_http::error_responses;
use surge_http::openapi::{
    INIT_DATA_ERRORS, OPERATOR_ERRORS, add_response_header, operations, string_header,
};
use utoipa::openapi::OpenApi;
use utoipa::{PartialSchema, ToSchema};

const DESCRIPTION: &str = "Surge's query API: reads the projections only, as the user proven by \
`Authorization: tma <initData>` (or the operator, for `/v1/admin/*` and `/v1/stats/*`). A read \
may carry a write's `X-Consistency-Token` and then waits (bounded) until it reflects that \
write. Every `200` carries a strong `ETag`; `If-None-Match` with it answers `304`. Every \
refusal is `{\"error\": {\"code\", \"message\"}}`. Not in this document: `/metrics` (on the \
admin address).";

/// A leaderboard's period.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub(crate) enum PeriodName {
    All,
    Daily,
    Weekly,
}

/// What every read that can wait on a consistency token or read a store can refuse.
pub(crate) const READ_ERRORS: &[(u16, &str)] = &[
    (400, "invalid_consistency_token"),
    (503, "store_unavailable"),
    (503, "overloaded"),
    (503, "too_many_waiters"),
    (504, "consistency_timeout"),
];

error_responses!(pub(crate) UserReadErrors = [INIT_DATA_ERRORS, READ_ERRORS]);
error_responses!(pub(crate) WindowErrors = [
    OPERATOR_ERRORS,
    READ_ERRORS,
    [(400, "invalid_window"), (400, "repeated_parameter")],
]);

/// The document of `router` (the query API's routes), finished with what both APIs share:
/// every cached read's `200` names its `ETag` and `Cache-Control`, and answers `304`.
pub(crate) fn document(router: OpenApi) -> OpenApi {
    let mut doc = surge_http::openapi::finish(router, "Surge query API", DESCRIPTION);
    // A path parameter's type is not collected with the operation's schemas.
    let components = doc.components.get_or_insert_with(Default::default);
    components
        .schemas
        .insert(PeriodName::name().into_owned(), PeriodName::schema());
    let cached = |path: &str, op: &utoipa::openapi::path::Operation| {
        surge_http::openapi::has_parameter(op, "If-None-Match") && !path.ends_with("/live")
    };
    let etag = string_header("A strong validator of the body; send it as `If-None-Match`");
    let cache = string_header("How long and for whom the answer may be cached");
    add_response_header(&mut doc, "200", "ETag", &etag, cached);
    add_response_header(&mut doc, "200", "Cache-Control", &cache, cached);
    for (path, _, op) in operations(&mut doc) {
        if cached(path, op) {
            let not_modified = utoipa::openapi::ResponseBuilder::new()
                .description("Not Modified: `If-None-Match` names the current `ETag`; no body")
                .header("ETag", etag.clone())
                .header("Cache-Control", cache.clone())
                .build();
            op.responses
                .responses
                .insert("304".to_owned(), not_modified.into());
        }
    }
    doc
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_document_keeps_every_published_route_and_lists_every_refusal() {
        surge_http::openapi::check_document(
            &mut crate::query_api::openapi_document(),
            &[
                "GET /v1/me",
                "GET /v1/me/feed",
                "GET /v1/me/quests",
                "GET /v1/me/purchases",
                "GET /v1/leaderboard/{period}",
                "GET /v1/users/{id}",
                "GET /v1/stats/activity",
                "GET /v1/stats/revenue",
                "GET /v1/admin/broadcasts",
                "GET /v1/admin/broadcasts/{broadcast_id}",
                "POST /v1/live/tickets",
                "GET /v1/me/live",
                "GET /v1/leaderboard/{period}/live",
                "GET /health/live",
                "GET /health/ready",
            ],
            &["/health/live", "/health/ready"],
        );
    }
}
