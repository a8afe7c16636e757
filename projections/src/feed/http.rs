//! `GET /v1/me/feed?limit=&cursor=`: the caller's feed from Redis, newest first. The cursor is
//! opaque to clients (base64url of the last item's event id), so pages do not shift when new
//! items arrive between two reads.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use surge_http::ApiError;
use surge_http::error_responses;
use surge_http::openapi::INIT_DATA_ERRORS;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::catalog::ProjectionId;
use crate::feed::{FEED_CAP, feed_page};
use crate::query_api::QueryState;
use crate::query_api::auth::Reader;
use crate::query_api::caching::{PRIVATE_REVALIDATE, cached_json};
use crate::query_api::consistency::{ReadAfter, read_store};
use crate::query_api::handlers::{Params, limit};
use crate::query_api::openapi::READ_ERRORS;

/// The endpoints of `feed`, registered with their OpenAPI operations through the catalog's
/// line.
pub(crate) fn routes() -> OpenApiRouter<QueryState> {
    OpenApiRouter::new().routes(routes!(feed))
}

const DEFAULT_LIMIT: usize = 20;

/// `GET /v1/me/feed`.
#[derive(ToSchema)]
#[allow(dead_code)]
struct Feed {
    /// Newest first; each item is what the `feed` projection stored (`type`, `event_id`,
    /// `occurred_at` and the event's own fields).
    items: Vec<BTreeMap<String, Value>>,
    /// Opaque; `null` on the last page.
    next_cursor: Option<String>,
}

error_responses!(
    FeedErrors = [
        INIT_DATA_ERRORS,
        READ_ERRORS,
        [
            (400, "invalid_limit"),
            (400, "invalid_cursor"),
            (400, "repeated_parameter"),
        ],
    ]
);

#[utoipa::path(
    get,
    path = "/v1/me/feed",
    tag = "me",
    summary = "The caller's feed, newest first",
    security(("tma" = [])),
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Items per page (default 20)"),
        ("cursor" = Option<String>, Query, description = "A previous page's `next_cursor`"),
        surge_http::openapi::ReadHeaders,
    ),
    responses(
        (status = 200, description = "A page of the feed", body = Feed),
        FeedErrors,
    ),
)]
pub(crate) async fn feed(
    State(state): State<QueryState>,
    Reader(user_id): Reader,
    query: Params,
    after: ReadAfter,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let limit = limit(query.get("limit"), DEFAULT_LIMIT, FEED_CAP)?;
    let before = query.get("cursor").map(decode_cursor).transpose()?;
    let served = state
        .read_after(&after, Some(user_id), &[ProjectionId::Feed])
        .await?;
    let mut redis = state.redis.clone();
    let feeds = state.feeds(served.keys(ProjectionId::Feed));
    let page = read_store(
        &state,
        ProjectionId::Feed,
        feed_page(&mut redis, feeds, user_id, before, limit),
    )
    .await?;
    // Items are stored as JSON objects and served as they are, without re-parsing.
    let next = page.next.map_or_else(
        || "null".to_owned(),
        |id| format!("\"{}\"", encode_cursor(id)),
    );
    let body = format!(
        "{{\"items\":[{}],\"next_cursor\":{next}}}",
        page.items.join(",")
    );
    Ok(cached_json(&headers, body, PRIVATE_REVALIDATE))
}

fn encode_cursor(event_id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(event_id.as_bytes())
}

fn decode_cursor(cursor: &str) -> Result<Uuid, ApiError> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| Uuid::from_slice(&bytes).ok())
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_cursor",
                "cursor must be a next_cursor value from a previous page",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let id = Uuid::now_v7();
        assert_eq!(decode_cursor(&encode_cursor(id)).unwrap(), id);
        for bad in ["", "abc", "!!!!", &id.to_string()] {
            assert_eq!(
                decode_cursor(bad).unwrap_err().code,
                "invalid_cursor",
                "{bad}"
            );
        }
    }

    // Fuzzing (`PROPTEST_CASES=100000` for a longer run): any `cursor` a client sends is a
    // position in the feed or 400 `invalid_cursor`, never a panic.
    proptest::proptest! {
        #[test]
        fn arbitrary_cursors_are_an_event_id_or_invalid_cursor(
            cursor in proptest::prop_oneof![
                proptest::prelude::any::<String>(),
                "[A-Za-z0-9_-]{20,24}",
            ],
        ) {
            match decode_cursor(&cursor) {
                Ok(id) => proptest::prop_assert_eq!(decode_cursor(&encode_cursor(id)).ok(), Some(id)),
                Err(error) => proptest::prop_assert_eq!(error.code, "invalid_cursor"),
            }
        }
    }
}
