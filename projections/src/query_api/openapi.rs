//! The query API's OpenAPI document: the schemas of the bodies its handlers build with `json!`
//! (documentation only: the handlers' output is unchanged), the error codes each handler can
//! answer, and [`document`], which `app` serves at `GET /openapi.json`.

use std::collections::BTreeMap;

use serde_json::Value;
use surge_http::error_responses;
use surge_http::openapi::{
    INIT_DATA_ERRORS, OPERATOR_ERRORS, PATH_ERRORS, add_response_header, operations, string_header,
};
use utoipa::openapi::OpenApi;
use utoipa::{PartialSchema, ToSchema};
use uuid::Uuid;

use crate::leaderboard::Entry;
use crate::quests::QuestState;

const DESCRIPTION: &str = "Surge's query API: reads the projections only, as the user proven by \
`Authorization: tma <initData>` (or the operator, for `/v1/admin/*` and `/v1/stats/*`). A read \
may carry a write's `X-Consistency-Token` and then waits (bounded) until it reflects that \
write. Every `200` carries a strong `ETag`; `If-None-Match` with it answers `304`. Every \
refusal is `{\"error\": {\"code\", \"message\"}}`. Not in this document: `/metrics` (on the \
admin address).";

/// `GET /v1/me`: a user who has not opened the app yet gets a null profile and an empty wallet.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct Me {
    user_id: i64,
    profile: Option<MeProfile>,
    wallet: MeWallet,
    streak: MeStreak,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct MeProfile {
    first_name: Option<String>,
    last_name: Option<String>,
    username: Option<String>,
    display_name: Option<String>,
    language_code: Option<String>,
    photo_url: Option<String>,
    is_premium: bool,
    /// RFC 3339, milliseconds, UTC.
    first_seen_at: Option<String>,
    last_seen_at: Option<String>,
    sessions_count: i64,
    referred_by: Option<i64>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct MeWallet {
    balance: i64,
    /// Ledger entries in all.
    entries: i64,
    /// The latest 20, newest first.
    latest: Vec<LedgerEntry>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct LedgerEntry {
    event_id: Uuid,
    seq: i64,
    kind: String,
    amount: i64,
    balance_after: i64,
    occurred_at: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct MeStreak {
    current: i64,
    best: i64,
    /// `YYYY-MM-DD` (UTC).
    last_check_in_day: Option<String>,
}

/// `GET /v1/me/feed`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct Feed {
    /// Newest first; each item is what the `feed` projection stored (`type`, `event_id`,
    /// `occurred_at` and the event's own fields).
    items: Vec<BTreeMap<String, Value>>,
    /// Opaque; `null` on the last page.
    next_cursor: Option<String>,
}

/// `GET /v1/me/quests`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct Quests {
    quests: Vec<QuestState>,
}

/// `GET /v1/leaderboard/{period}`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct Leaderboard {
    /// The period's suffix: `all`, the UTC day or the ISO week.
    period: String,
    entries: Vec<Entry>,
    /// Only with initData: the caller's rank and score, `null` if unranked.
    me: Option<Entry>,
}

/// `GET /v1/users/{id}`: a public card.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct UserCard {
    user_id: i64,
    /// The display name, else the username, else the first name.
    name: Option<String>,
    username: Option<String>,
    photo_url: Option<String>,
    is_premium: bool,
    member_since: Option<String>,
    streak: CardStreak,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct CardStreak {
    current: i64,
    best: i64,
}

/// `GET /v1/stats/activity`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct Activity {
    as_of: Option<String>,
    /// Minutes that had events, ascending.
    events_per_minute: Vec<MinuteActivity>,
    active_users: ActiveUsers,
    daily_active_users: Vec<DayActivity>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct MinuteActivity {
    minute: Option<String>,
    total: i64,
    /// Events by type.
    by_type: BTreeMap<String, i64>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct ActiveUsers {
    daily: i64,
    weekly: i64,
    monthly: i64,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct DayActivity {
    day: Option<String>,
    users: i64,
}

/// `GET /v1/stats/revenue`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct Revenue {
    as_of: Option<String>,
    /// `XTR` (Telegram Stars).
    currency: String,
    days: Vec<crate::purchases::RevenueDay>,
}

/// A broadcast and its deliveries.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct BroadcastView {
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
pub(crate) struct Audience {
    active_within_days: Option<i64>,
    language: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct Failure {
    reason: String,
    count: i64,
}

/// `GET /v1/admin/broadcasts`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct Broadcasts {
    /// The latest first.
    broadcasts: Vec<BroadcastView>,
}

/// A leaderboard's period.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub(crate) enum PeriodName {
    All,
    Daily,
    Weekly,
}

/// `POST /v1/live/tickets`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct Ticket {
    /// Single-use, for `GET /v1/me/live?ticket=`.
    ticket: String,
    /// Seconds it stays valid.
    expires_in: u64,
}

/// What every read that can wait on a consistency token or read a store can refuse.
const READ_ERRORS: &[(u16, &str)] = &[
    (400, "invalid_consistency_token"),
    (503, "store_unavailable"),
    (503, "overloaded"),
    (503, "too_many_waiters"),
    (504, "consistency_timeout"),
];

error_responses!(pub(crate) UserReadErrors = [INIT_DATA_ERRORS, READ_ERRORS]);
error_responses!(pub(crate) FeedErrors = [
    INIT_DATA_ERRORS,
    READ_ERRORS,
    [(400, "invalid_limit"), (400, "invalid_cursor")],
]);
error_responses!(pub(crate) LimitedReadErrors = [
    INIT_DATA_ERRORS,
    READ_ERRORS,
    [(400, "invalid_limit")],
]);
error_responses!(pub(crate) LeaderboardErrors = [
    INIT_DATA_ERRORS,
    READ_ERRORS,
    PATH_ERRORS,
    [(400, "invalid_period"), (400, "invalid_limit")],
]);
error_responses!(pub(crate) UserErrors = [
    INIT_DATA_ERRORS,
    READ_ERRORS,
    PATH_ERRORS,
    [(400, "invalid_user_id"), (404, "user_not_found")],
]);
error_responses!(pub(crate) WindowErrors = [
    OPERATOR_ERRORS,
    READ_ERRORS,
    [(400, "invalid_window")],
]);
error_responses!(pub(crate) BroadcastErrors = [
    OPERATOR_ERRORS,
    READ_ERRORS,
    PATH_ERRORS,
    [(404, "unknown_broadcast")],
]);
error_responses!(pub(crate) BroadcastsErrors = [
    OPERATOR_ERRORS,
    READ_ERRORS,
    [(400, "invalid_limit")],
]);
error_responses!(pub(crate) TicketErrors = [
    INIT_DATA_ERRORS,
    [(503, "store_unavailable"), (503, "overloaded")],
]);
error_responses!(pub(crate) LiveErrors = [
    INIT_DATA_ERRORS,
    [
        (400, "init_data_in_url"),
        (400, "invalid_last_event_id"),
        (401, "invalid_ticket"),
        (401, "ticket_expired"),
        (429, "too_many_live_streams"),
        (501, "live_updates_off"),
        (503, "live_streams_full"),
        (503, "store_unavailable"),
    ],
]);
error_responses!(pub(crate) BoardLiveErrors = [
    PATH_ERRORS,
    [
        (400, "invalid_period"),
        (400, "invalid_limit"),
        (501, "live_updates_off"),
        (503, "live_streams_full"),
    ],
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
    fn the_document_lists_every_route_and_every_refusal() {
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
