//! The `Caller` extractor: the Telegram user proven by `Authorization: tma <initData>`, already
//! checked against their write rate. A handler that takes a `Caller` can only act as that user.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use surge_telegram_auth::{InitData, parse_authorization};

use super::AppState;
use super::error::ApiError;

pub struct Caller(pub InitData);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .map(|v| v.to_str().unwrap_or("\u{fffd}"));
        let validated = parse_authorization(header.unwrap_or(""))
            .and_then(|init_data| state.validator.validate_now(init_data));
        let init_data = validated.map_err(|e| ApiError::unauthorized(e.code(), e.to_string()))?;
        state.limiter.check(init_data.user.id).map_err(|wait| {
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many writes; slow down",
            )
            .retry_after(wait)
        })?;
        Ok(Caller(init_data))
    }
}
