//! Who is reading: `Authorization: tma <initData>`, checked exactly as on the write side. A
//! handler that takes a [`Reader`] can only read as that user; there is no way to name another
//! user's private data.

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use surge_http::ApiError;
use surge_telegram_auth::parse_authorization;

use super::QueryState;

/// The proven Telegram user id of the caller.
pub(crate) struct Reader(pub i64);

impl FromRequestParts<QueryState> for Reader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &QueryState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .map(|v| v.to_str().unwrap_or("\u{fffd}"));
        parse_authorization(header.unwrap_or(""))
            .and_then(|init_data| state.validator.validate_now(init_data))
            .map(|init_data| Reader(init_data.user.id))
            .map_err(|e| ApiError::unauthorized(e.code(), e.to_string()))
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
