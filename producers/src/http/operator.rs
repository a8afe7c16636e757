//! The operator's endpoints' authentication.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::AppState;
use super::error::ApiError;

/// An operator, proven by `Authorization: Bearer <SURGE_OPERATOR_TOKEN>` before the body is
/// read.
pub(crate) struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, ApiError> {
        surge_http::authenticate_operator(&parts.headers, s.config.stars.operator_token.as_ref())
            .map(|()| Operator)
    }
}
