//! Live updates over Server-Sent Events: a ticket for `EventSource` (`tickets`), the caller's
//! own stream (`stream`), the public leaderboard's (`leaderboard`), and the instance's subscriptions fed by the processors' notices
//! (`hub`, see `crate::live`).

pub(crate) mod hub;
pub(crate) mod leaderboard;
pub(crate) mod rank;
pub(crate) mod stream;
pub(crate) mod tickets;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use surge_http::ApiError;

use super::QueryState;
use hub::{Hub, Refused};

/// The instance's hub, or 501 when live updates are off.
fn hub(state: &QueryState) -> Result<Arc<Hub>, ApiError> {
    state.live.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "live_updates_off",
            "this query API runs without live updates",
        )
    })
}

impl From<Refused> for ApiError {
    fn from(refused: Refused) -> ApiError {
        match refused {
            Refused::Full => ApiError::unavailable(
                "live_streams_full",
                "this instance holds its maximum of live streams",
                Duration::from_secs(5),
            ),
            Refused::TooManyForUser => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_live_streams",
                "this user has the most live streams allowed open already",
            ),
        }
    }
}

/// `events` as an SSE response with the configured heartbeats.
fn sse(
    state: &QueryState,
    events: impl Stream<Item = Result<Event, Infallible>> + Send + 'static,
) -> Response {
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(state.config.live_heartbeat))
        .into_response()
}
