//! `GET /v1/leaderboard/{all|daily|weekly}?limit=`: the top N with names, from Redis, for the
//! current UTC day or ISO week. Leaderboards are shared views: anyone may read the top (briefly
//! public-cacheable); with initData the answer adds the caller's own rank and score as `me`
//! and is cacheable only by that caller.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::json;
use surge_http::ApiError;
use surge_http::Path;
use surge_http::error_responses;
use surge_http::openapi::{INIT_DATA_ERRORS, PATH_ERRORS};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::catalog::ProjectionId;
use crate::leaderboard::{Entry, MAX_LIMIT, Period, PeriodKind, rank_of};
use crate::query_api::QueryState;
use crate::query_api::auth::Reader;
use crate::query_api::caching::{PRIVATE_BRIEF, PUBLIC_BRIEF, cached_json, tagged_json};
use crate::query_api::consistency::{ReadAfter, read_store};
use crate::query_api::handlers::{Params, limit};
use crate::query_api::openapi::READ_ERRORS;
use crate::query_api::top_cache::Needs;
use crate::versions::now_ms;

/// The endpoints of `leaderboard`, registered with their OpenAPI operations through the catalog's
/// line.
pub(crate) fn routes() -> OpenApiRouter<QueryState> {
    OpenApiRouter::new().routes(routes!(leaderboard))
}

const DEFAULT_LIMIT: usize = 100;

/// The period named in the path and the `limit` of the query (`default` when absent).
pub(crate) fn period_and_limit(
    kind: &str,
    query: &Params,
    default: usize,
) -> Result<(PeriodKind, usize), ApiError> {
    let kind: PeriodKind = kind.parse().map_err(|_| {
        ApiError::bad_request(
            "invalid_period",
            "the leaderboard is one of all, daily or weekly",
        )
    })?;
    let limit = limit(query.get("limit"), default, MAX_LIMIT)?;
    Ok((kind, limit))
}

/// The period of `kind` that contains now (UTC).
pub(crate) fn current(kind: PeriodKind) -> Period {
    Period::containing(kind, now_ms()).expect("the present is inside the calendar")
}

/// `GET /v1/leaderboard/{period}`.
#[derive(ToSchema)]
#[allow(dead_code)]
struct Leaderboard {
    /// The period's suffix: `all`, the UTC day or the ISO week.
    period: String,
    entries: Vec<Entry>,
    /// Only with initData: the caller's rank and score, `null` if unranked.
    me: Option<Entry>,
}

error_responses!(
    LeaderboardErrors = [
        INIT_DATA_ERRORS,
        READ_ERRORS,
        PATH_ERRORS,
        [
            (400, "invalid_period"),
            (400, "invalid_limit"),
            (400, "repeated_parameter"),
        ],
    ]
);

#[utoipa::path(
    get,
    path = "/v1/leaderboard/{period}",
    tag = "leaderboard",
    summary = "The top of a leaderboard; with initData also the caller's rank",
    security((), ("tma" = [])),
    params(
        ("period" = crate::query_api::openapi::PeriodName, Path, description = "The current UTC day, ISO week, or all time"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "Entries (default 100)"),
        surge_http::openapi::ReadHeaders,
    ),
    responses(
        (status = 200, description = "The top, and `me` with initData", body = Leaderboard),
        LeaderboardErrors,
    ),
)]
pub(crate) async fn leaderboard(
    State(state): State<QueryState>,
    reader: Option<Reader>,
    Path(kind): Path<String>,
    query: Params,
    after: ReadAfter,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (kind, limit) = period_and_limit(&kind, &query, DEFAULT_LIMIT)?;
    let period = current(kind);
    let served = state
        .read_after(
            &after,
            reader.as_ref().map(|r| r.0),
            &[ProjectionId::Leaderboard],
        )
        .await?;
    let board = served.get(ProjectionId::Leaderboard);
    let top = state
        .top_cache
        .top(
            &state,
            board,
            period,
            limit,
            after.0.as_ref().map_or(Needs::Cached, Needs::Covers),
        )
        .await?;
    let Some(Reader(user_id)) = reader else {
        let body = top.anonymous_body.clone();
        return Ok(tagged_json(
            &headers,
            body,
            &top.anonymous_etag,
            PUBLIC_BRIEF,
        ));
    };
    let entries = top.entries.as_slice();
    let me = match entries.iter().find(|e| e.user_id == user_id) {
        Some(entry) => Some(entry.clone()),
        None => {
            let mut redis = state.redis.clone();
            read_store(
                &state,
                ProjectionId::Leaderboard,
                rank_of(&mut redis, state.leaderboard(board), period, user_id),
            )
            .await?
        }
    };
    let body = json!({ "period": period.suffix(), "entries": entries, "me": me });
    Ok(cached_json(&headers, body.to_string(), PRIVATE_BRIEF))
}
