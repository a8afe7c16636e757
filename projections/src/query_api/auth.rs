//! Who is reading: `Authorization: tma <initData>`, checked exactly as on the write side. A
//! handler that takes a [`Reader`] can only read as that user; there is no way to name another
//! user's private data. Operator routes take an [`Operator`] instead.

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use secrecy::ExposeSecret;
use subtle::ConstantTimeEq;
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

/// An operator, proven by `Authorization: Bearer <operator token>` from configuration. Operator
/// routes are closed when no token is configured; Telegram users can never pass.
pub(crate) struct Operator;

impl FromRequestParts<QueryState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &QueryState) -> Result<Self, ApiError> {
        let Some(expected) = &state.config.operator_token else {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "operator_access_disabled",
                "operator endpoints are closed: no operator token is configured",
            ));
        };
        let given = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                ApiError::unauthorized(
                    "operator_token_required",
                    "send the operator token as Authorization: Bearer <token>",
                )
            })?;
        // Constant time, so response timing does not reveal how much of a guess was right.
        if bool::from(given.as_bytes().ct_eq(expected.expose_secret().as_bytes())) {
            Ok(Operator)
        } else {
            Err(ApiError::unauthorized(
                "invalid_operator_token",
                "the operator token is not valid",
            ))
        }
    }
}
