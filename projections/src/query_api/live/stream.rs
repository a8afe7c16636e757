//! `GET /v1/me/live`: the caller's own state as Server-Sent Events, `event: me` carrying what
//! `GET /v1/me` answers (profile, balance, latest ledger entries, streak).
//!
//! - **Who:** `?ticket=` from `POST /v1/live/tickets` (what `EventSource` can send), or
//!   `Authorization: tma <initData>` for clients that can set headers. initData in the URL is
//!   refused.
//! - **When:** at once on connect, then each time a processor announces a committed batch
//!   with the user's events (`hub`). The read waits until both projections behind the body
//!   have applied the announced position, so what a client sees can be read back.
//! - **Ids and resuming:** an event's `id` is the consistency token of the position it
//!   reflects, usable as `X-Consistency-Token` on any read. Events carry state, not deltas: a
//!   reconnect with `Last-Event-ID` starts with the state at or after that position, so
//!   nothing is lost, and an event whose body equals the last one sent is not sent again.
//! - **Cost and shedding:** no read happens for a user without a stream; a busy stream
//!   coalesces its pending changes into one read; a client that stops reading is cut when its
//!   connection stays blocked past the server's idle timeout (heartbeats keep a healthy idle
//!   stream open through proxies); streams are capped per instance and per user, and end after
//!   [`MAX_AGE`] for the client to reconnect, so no stream holds a slot forever.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use serde_json::Value;
use std::collections::HashMap;
use surge_http::{ApiError, authenticate};
use surge_schemas::Position;
use tokio::time::Instant;

use super::hub::{Refused, Subscription};
use super::tickets;
use crate::query_api::QueryState;
use crate::query_api::consistency::ReadAfter;
use crate::query_api::handlers::me;

/// A stream ends after this long; `EventSource` reconnects with `Last-Event-ID` by itself.
pub(crate) const MAX_AGE: Duration = Duration::from_secs(3600);
/// How long a client waits before reconnecting (the SSE `retry` field).
const RECONNECT: Duration = Duration::from_secs(1);
/// Before reading again after a failed read (a store timeout under load).
const READ_RETRY: Duration = Duration::from_secs(1);

pub(crate) async fn me_live(
    State(state): State<QueryState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if ["initData", "tgWebAppData", "init_data"]
        .iter()
        .any(|name| query.contains_key(*name))
    {
        return Err(ApiError::bad_request(
            "init_data_in_url",
            "initData must never be in a URL: trade it for a ticket at POST /v1/live/tickets",
        ));
    }
    let Some(hub) = state.live.clone() else {
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "live_updates_off",
            "this query API runs without live updates",
        ));
    };
    let user = match query.get("ticket") {
        Some(ticket) => tickets::redeem(&state, ticket).await?,
        None => authenticate(&headers, &state.validator)?.user.id,
    };
    let resume = match headers.get("last-event-id") {
        None => None,
        Some(value) => Some(last_event(&state, value.to_str().unwrap_or_default())?),
    };
    let subscription = hub.subscribe(user).map_err(|refused| match refused {
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
    })?;
    let live = Live {
        state: state.clone(),
        user,
        subscription,
        after: resume,
        last_body: None,
        first: true,
        ends: Instant::now() + MAX_AGE,
    };
    let heartbeat = state.config.live_heartbeat;
    Ok(Sse::new(events(live))
        .keep_alive(KeepAlive::new().interval(heartbeat))
        .into_response())
}

/// A `Last-Event-ID`: a token this deployment signed.
fn last_event(state: &QueryState, token: &str) -> Result<Position, ApiError> {
    let invalid = |why: String| {
        ApiError::bad_request(
            "invalid_last_event_id",
            format!("Last-Event-ID must be the id of an event of this stream: {why}"),
        )
    };
    let position = state
        .config
        .token_keys
        .verify(token)
        .map_err(|why| invalid(why.to_string()))?;
    if position.topic != state.config.events_topic {
        return Err(invalid("it comes from another deployment".into()));
    }
    Ok(position)
}

struct Live {
    state: QueryState,
    user: i64,
    subscription: Subscription,
    /// The position the next read must reflect.
    after: Option<Position>,
    last_body: Option<String>,
    /// Nothing sent yet: the first read does not wait for a change.
    first: bool,
    ends: Instant,
}

fn events(live: Live) -> impl Stream<Item = Result<Event, Infallible>> {
    futures::stream::unfold(live, |mut live| async move {
        let event = live.next().await?;
        Some((Ok(event), live))
    })
}

impl Live {
    /// The next event, or `None` when the stream ends.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if !self.first {
                tokio::select! {
                    changed = self.subscription.latest.changed() => changed.ok()?,
                    () = tokio::time::sleep_until(self.ends) => return None,
                }
                if let Some(position) = self.subscription.latest.borrow_and_update().clone() {
                    self.after = Some(position);
                }
            }
            let body = match me::read(&self.state, &ReadAfter(self.after.clone()), self.user).await
            {
                Ok(body) => body,
                Err(error) => {
                    tracing::debug!(user = self.user, ?error, "A live read failed; retrying.");
                    tokio::select! {
                        () = tokio::time::sleep(READ_RETRY) => {}
                        () = tokio::time::sleep_until(self.ends) => return None,
                    }
                    continue;
                }
            };
            let first = std::mem::replace(&mut self.first, false);
            if let Some(event) = self.event(&body, first) {
                return Some(event);
            }
        }
    }

    /// The event for `body`, unless it repeats the last one sent.
    fn event(&mut self, body: &Value, first: bool) -> Option<Event> {
        let text = body.to_string();
        if self.last_body.as_deref() == Some(text.as_str()) {
            return None;
        }
        let mut event = Event::default().event("me").data(&text);
        if let Some(position) = &self.after {
            event = event.id(self.state.config.token_keys.sign(position));
        }
        if first {
            event = event.retry(RECONNECT);
        }
        self.last_body = Some(text);
        Some(event)
    }
}
