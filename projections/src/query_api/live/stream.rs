//! `GET /v1/me/live`: the caller's own state as Server-Sent Events, one event name per part
//! (`hub::Part`): `me` carrying what `GET /v1/me` answers (profile, balance, latest ledger
//! entries, streak), `feed` the feed items new since the last event, `quests` and `purchases`
//! what `GET /v1/me/quests` and `GET /v1/me/purchases` answer.
//!
//! - **Who:** `?ticket=` from `POST /v1/live/tickets` (what `EventSource` can send), or
//!   `Authorization: tma <initData>` for clients that can set headers. initData in the URL is
//!   refused.
//! - **When:** at once on connect, then each time a processor of a part's projections
//!   announces a committed batch with the user's events (`hub`); only that part is read again.
//!   The read waits until every projection behind the part has applied the announced position,
//!   so what a client sees can be read back.
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
use axum::http::HeaderMap;
use axum::response::Response;
use axum::response::sse::Event;
use futures::{Stream, StreamExt};
use serde_json::Value;
use std::collections::HashMap;
use surge_http::{ApiError, authenticate};
use surge_schemas::Position;
use tokio::time::Instant;

use uuid::Uuid;

use super::hub::{Changes, Part, Subscription};
use super::tickets;
use crate::catalog::ProjectionId;
use crate::feed::feed_page;
use crate::query_api::QueryState;
use crate::query_api::consistency::{ReadAfter, read_store};
use crate::query_api::handlers::{me, purchases, quests};

/// A stream ends after this long; `EventSource` reconnects with `Last-Event-ID` by itself.
pub(crate) const MAX_AGE: Duration = Duration::from_secs(3600);
/// How long a client waits before reconnecting (the SSE `retry` field).
const RECONNECT: Duration = Duration::from_secs(1);
/// Before reading again after a failed read (a store timeout under load).
const READ_RETRY: Duration = Duration::from_secs(1);
/// Feed items a `feed` event carries at most.
const FEED_ITEMS: usize = 20;

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
    let hub = super::hub(&state)?;
    let user = match query.get("ticket") {
        Some(ticket) => tickets::redeem(&state, ticket).await?,
        None => authenticate(&headers, &state.validator)?.user.id,
    };
    let resume = match headers.get("last-event-id") {
        None => None,
        Some(value) => Some(last_event(&state, value.to_str().unwrap_or_default())?),
    };
    let subscription = hub.subscribe(user)?;
    let live = Live {
        state: state.clone(),
        user,
        subscription,
        resume,
        read: None,
        last_bodies: HashMap::new(),
        newest_item: None,
        ends: Instant::now() + MAX_AGE,
    };
    Ok(super::sse(&state, events(live)))
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
    /// The position the first reads must reflect (`Last-Event-ID`).
    resume: Option<Position>,
    /// The change counts last read, per part; `None` before the first read.
    read: Option<Changes>,
    /// The last body sent per part (the feed sends only what is new instead).
    last_bodies: HashMap<&'static str, String>,
    /// The newest feed item sent.
    newest_item: Option<Uuid>,
    ends: Instant,
}

fn events(live: Live) -> impl Stream<Item = Result<Event, Infallible>> {
    futures::stream::unfold(live, |mut live| async move {
        let events = live.next().await?;
        Some((futures::stream::iter(events.into_iter().map(Ok)), live))
    })
    .flatten()
}

impl Live {
    /// The next events (at least one), or `None` when the stream ends.
    async fn next(&mut self) -> Option<Vec<Event>> {
        loop {
            let first = self.read.is_none();
            if !first {
                tokio::select! {
                    changed = self.subscription.latest.changed() => changed.ok()?,
                    () = tokio::time::sleep_until(self.ends) => return None,
                }
            }
            let now = self.subscription.latest.borrow_and_update().clone();
            let mut events = Vec::new();
            let mut failed = false;
            for part in Part::ALL {
                let change = now.part(part);
                let read_before = self.read.as_ref().map(|read| read.part(part).seq);
                if read_before == Some(change.seq) {
                    continue;
                }
                let after = change.position.clone().or_else(|| self.resume.clone());
                let event = match part {
                    Part::Me => self.me(after).await,
                    Part::Feed => self.feed(after).await,
                    Part::Quests => {
                        let after_read = ReadAfter(after.clone());
                        let read = quests::read(&self.state, &after_read, self.user).await;
                        self.state_event(part, read, after).await
                    }
                    Part::Purchases => {
                        let after_read = ReadAfter(after.clone());
                        let read = purchases::read(&self.state, &after_read, self.user, 20).await;
                        self.state_event(part, read, after).await
                    }
                };
                match event {
                    Ok(event) => events.extend(event),
                    Err(error) => {
                        tracing::debug!(user = self.user, ?error, "A live read failed; retrying.");
                        failed = true;
                    }
                }
            }
            if failed {
                // Read every part again shortly: what failed is still unsent.
                self.subscription.latest.mark_changed();
                tokio::select! {
                    () = tokio::time::sleep(READ_RETRY) => {}
                    () = tokio::time::sleep_until(self.ends) => return None,
                }
            } else {
                self.read = Some(now);
            }
            if let Some(event) = events.first_mut().filter(|_| first) {
                *event = std::mem::take(event).retry(RECONNECT);
            }
            if !events.is_empty() {
                return Some(events);
            }
        }
    }

    /// `event: me`, unless it repeats the last one sent.
    async fn me(&mut self, after: Option<Position>) -> Result<Option<Event>, ApiError> {
        let read = me::read(&self.state, &ReadAfter(after.clone()), self.user).await;
        self.state_event(Part::Me, read, after).await
    }

    /// The event of a part whose body is a whole state, unless it repeats the last one sent.
    async fn state_event(
        &mut self,
        part: Part,
        read: Result<Value, ApiError>,
        after: Option<Position>,
    ) -> Result<Option<Event>, ApiError> {
        let body = read?.to_string();
        let last = self.last_bodies.entry(part.name()).or_default();
        if *last == body {
            return Ok(None);
        }
        last.clone_from(&body);
        Ok(Some(self.event(part.name(), &body, after.as_ref())))
    }

    /// `event: feed` with the items newer than the newest sent, newest first (the latest
    /// [`FEED_ITEMS`] on connect). `complete` is false when more arrived than it shows: the
    /// client then reads `GET /v1/me/feed`.
    async fn feed(&mut self, after: Option<Position>) -> Result<Option<Event>, ApiError> {
        let served = self
            .state
            .read_after(
                &ReadAfter(after.clone()),
                Some(self.user),
                &[ProjectionId::Feed],
            )
            .await?;
        let mut redis = self.state.redis.clone();
        let keys = served.keys(ProjectionId::Feed);
        let page = read_store(
            &self.state,
            ProjectionId::Feed,
            feed_page(&mut redis, keys, self.user, None, FEED_ITEMS),
        )
        .await?;
        let id_of = |item: &String| {
            serde_json::from_str::<Value>(item).ok().and_then(|v| {
                v["event_id"]
                    .as_str()
                    .and_then(|id| id.parse::<Uuid>().ok())
            })
        };
        let newest = page.items.first().and_then(id_of);
        let known = self.newest_item;
        let fresh: Vec<&String> = page
            .items
            .iter()
            .take_while(|item| known.is_none() || id_of(item) != known)
            .collect();
        let complete = known.is_none() || fresh.len() < page.items.len() || page.next.is_none();
        if fresh.is_empty() || newest == known {
            return Ok(None);
        }
        self.newest_item = newest;
        let body = format!(
            "{{\"items\":[{}],\"complete\":{complete}}}",
            fresh
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(",")
        );
        Ok(Some(self.event("feed", &body, after.as_ref())))
    }

    fn event(&self, kind: &str, body: &str, position: Option<&Position>) -> Event {
        let event = Event::default().event(kind).data(body);
        match position {
            Some(position) => event.id(self.state.config.token_keys.sign(position)),
            None => event,
        }
    }
}
