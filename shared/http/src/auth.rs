//! `Authorization: tma <initData>`, checked the same way by every API: a 401 with the check's
//! own error code when it fails; and the operator's bearer token.

use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use surge_telegram_auth::{InitData, Validator, parse_authorization};

use crate::ApiError;

/// The initData the request's Authorization header proves, or the 401 to answer.
pub fn authenticate(headers: &HeaderMap, validator: &Validator) -> Result<InitData, ApiError> {
    let header = headers
        .get(AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or("\u{fffd}"));
    parse_authorization(header.unwrap_or(""))
        .and_then(|init_data| validator.validate_now(init_data))
        .map_err(|e| ApiError::unauthorized(e.code(), e.to_string()))
}

/// Whether `given` equals `expected`, in constant time, so response timing does not reveal how
/// much of a guess was right.
pub fn secret_matches(given: &str, expected: &SecretString) -> bool {
    bool::from(given.as_bytes().ct_eq(expected.expose_secret().as_bytes()))
}

/// An operator, proven by `Authorization: Bearer <operator token>` (`SURGE_OPERATOR_TOKEN`).
/// Operator routes are closed (403) when no token is configured; Telegram users can never pass.
pub fn authenticate_operator(
    headers: &HeaderMap,
    expected: Option<&SecretString>,
) -> Result<(), ApiError> {
    let Some(expected) = expected else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "operator_access_disabled",
            "operator endpoints are closed: no operator token is configured",
        ));
    };
    let given = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            ApiError::unauthorized(
                "operator_token_required",
                "send the operator token as Authorization: Bearer <token>",
            )
        })?;
    if secret_matches(given, expected) {
        Ok(())
    } else {
        Err(ApiError::unauthorized(
            "invalid_operator_token",
            "the operator token is not valid",
        ))
    }
}
