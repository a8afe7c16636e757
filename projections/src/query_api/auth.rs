//! Who is reading: `Authorization: tma <initData>`, checked exactly as on the write side. A
//! handler that takes a [`Reader`] can only read as that user; there is no way to name another
//! user's private data.

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use surge_http::{ApiError, authenticate};

use super::QueryState;

/// The proven Telegram user id of the caller.
pub(crate) struct Reader(pub i64);

impl FromRequestParts<QueryState> for Reader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &QueryState) -> Result<Self, ApiError> {
        authenticate(&parts.headers, &state.validator).map(|init_data| Reader(init_data.user.id))
    }
}

/// `Option<Reader>`: anonymous without an Authorization header; a header that fails the check is
/// still a 401, never silently anonymous.
impl OptionalFromRequestParts<QueryState> for Reader {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &QueryState,
    ) -> Result<Option<Self>, ApiError> {
        if parts.headers.contains_key(AUTHORIZATION) {
            <Reader as FromRequestParts<QueryState>>::from_request_parts(parts, state)
                .await
                .map(Some)
        } else {
            Ok(None)
        }
    }
}
