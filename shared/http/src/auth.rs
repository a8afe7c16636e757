//! `Authorization: tma <initData>`, checked the same way by every API: a 401 with the check's
//! own error code when it fails.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
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
