//! Who is reading: `Authorization: tma <initData>`, checked exactly as on the write side. A
//! handler that takes a [`Reader`] can only read as that user; there is no way to name another
//! user's private data. Operator routes take an [`Operator`] instead.

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use surge_http::{ApiError, authenticate, authenticate_operator};

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

/// An operator, proven by `Authorization: Bearer <operator token>` from configuration. Operator
/// routes are closed when no token is configured; Telegram users can never pass.
pub(crate) struct Operator;

impl FromRequestParts<QueryState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &QueryState) -> Result<Self, ApiError> {
        authenticate_operator(&parts.headers, state.config.operator_token.as_ref())
            .map(|()| Operator)
    }
}
