//! The `Caller` extractor: the Telegram user proven by `Authorization: tma <initData>`, already
//! checked against their write rate. A handler that takes a `Caller` can only act as that user.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use surge_http::authenticate;
use surge_telegram_auth::InitData;

use super::AppState;
use super::error::ApiError;

pub struct Caller(pub InitData);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let init_data = authenticate(&parts.headers, &state.validator)?;
        let user = init_data.user.id;
        state.limiter.check(user).map_err(rate_limited)?;
        if let Some(shared) = &state.shared_limiter {
            shared.check(user).await.map_err(rate_limited)?;
        }
        Ok(Caller(init_data))
    }
}

fn rate_limited(wait: std::time::Duration) -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        "too many writes; slow down",
    )
    .retry_after(wait)
}
