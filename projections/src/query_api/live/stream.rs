//! `GET /v1/me/live`: the caller's own state as Server-Sent Events, one event name per part
//! (`hub::Part`): `me` carrying what `GET /v1/me` answers (profile, balance, latest ledger
//! entries, streak), `feed` the feed items new since the last event, `quests` and `purchases`
//! what `GET /v1/me/quests` and `GET /v1/me/purchases` answer, and `rank` the caller's places on
//! the leaderboards (read on connect, then handed over by the instance's rank rounds, `rank`).
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
//!   reconnect with `Last-Event-ID` (or `?last_event_id=` beside a new ticket) starts with the
//!   state at or after that position, so nothing is lost, and an event whose body equals the
//!   last one sent is not sent again.
//! - **Cost and shedding:** no read happens for a user without a stream; a busy stream
//!   coalesces its pending changes into one read; a client that stops reading is cut when its
//!   connection stays blocked past the server's idle timeout (heartbeats keep a healthy idle
//!   stream open through proxies); streams are capped per instance and per user, and end after
//!   [`MAX_AGE`] for the client to reconnect, so no stream holds a slot forever.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::response::sse::Event;
use futures::{Stream, StreamExt};
use serde_json::Value;
use surge_http::error_responses;
use surge_http::openapi::INIT_DATA_ERRORS;
use surge_http::{ApiError, authenticate};
use surge_schemas::Position;
use tokio::time::Instant;
use uuid::Uuid;

use super::hub::{Changes, Part, Subscription};
use super::rank;
use super::tickets;
use crate::catalog::ProjectionId;
use crate::feed::{FeedPage, feed_page};
use crate::purchases::http as purchases;
use crate::query_api::QueryState;
use crate::query_api::consistency::{ReadAfter, read_store, verified};
use crate::query_api::handlers::{Params, me};
use crate::quests::http as quests;

/// A stream ends after this long; the client reconnects with its last event's id (a new ticket
/// and `?last_event_id=`, or `Last-Event-ID` where it authenticates by header).
pub(crate) const MAX_AGE: Duration = Duration::from_secs(3600);
/// How long a client waits before reconnecting (the SSE `retry` field).
const RECONNECT: Duration = Duration::from_secs(1);
/// Before reading again after a failed read (a store timeout under load).
const READ_RETRY: Duration = Duration::from_secs(1);
/// Feed items a `feed` event carries at most.
const FEED_ITEMS: usize = 20;
/// Purchases a `purchases` event lists: as many as `GET /v1/me/purchases` does by default.
const PURCHASES: usize = 50;

error_responses!(
    LiveErrors = [
        INIT_DATA_ERRORS,
        [
            (400, "init_data_in_url"),
            (400, "invalid_last_event_id"),
            (400, "repeated_parameter"),
            (401, "invalid_ticket"),
            (401, "ticket_expired"),
            (429, "too_many_live_streams"),
            (501, "live_updates_off"),
            (503, "live_streams_full"),
            (503, "store_unavailable"),
        ],
    ]
);

#[utoipa::path(
    get,
    path = "/v1/me/live",
    tag = "live",
    summary = "The caller's state as Server-Sent Events",
    description = "Events `me`, `quests`, `purchases` (the bodies of `GET /v1/me`, `/v1/me/quests`, `/v1/me/purchases`) and `feed` (`{\"items\", \"complete\"}`), at once and after each of the caller's changes; each `id` is a consistency token. `rank` (`{\"all\", \"daily\", \"weekly\"}`, each `{\"rank\", \"score\"}` or null) at once and whenever the caller's places move, at most every 2 s, without an id. Authenticated by `?ticket=` or by `Authorization: tma <initData>`.",
    security(("tma" = []), ()),
    params(
        ("ticket" = Option<String>, Query, description = "From `POST /v1/live/tickets`"),
        ("last_event_id" = Option<String>, Query, description = "Resume after this event, when reconnecting with a new ticket (`Last-Event-ID` wins)"),
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event"),
    ),
    responses(
        (status = 200, description = "An endless stream of events", content_type = "text/event-stream", body = String),
        LiveErrors,
    ),
)]
pub(crate) async fn me_live(
    State(state): State<QueryState>,
    query: Params,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if ["initData", "tgWebAppData", "init_data"]
        .iter()
        .any(|name| query.contains(name))
    {
        return Err(ApiError::bad_request(
            "init_data_in_url",
            "initData must never be in a URL: trade it for a ticket at POST /v1/live/tickets",
        ));
    }
    let hub = super::hub(&state)?;
    // A ticket is single-use, so `EventSource`'s own reconnect (same URL) is refused; a client
    // reconnects with a new ticket and passes the last id as `last_event_id`. The header, which
    // `EventSource` keeps current, wins. Checked before the ticket is spent.
    let resume = match headers.get("last-event-id") {
        Some(value) => Some(last_event(&state, value.to_str().unwrap_or_default())?),
        None => match query.get("last_event_id") {
            Some(token) => Some(last_event(&state, token)?),
            None => None,
        },
    };
    let user = match query.get("ticket") {
        Some(ticket) => tickets::redeem(&state, ticket).await?,
        None => authenticate(&headers, &state.validator)?.user.id,
    };
    let subscription = hub.subscribe(user)?;
    let live = Live {
        state: state.clone(),
        user,
        subscription,
        rank_sent: None,
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
    verified(state, token).map_err(|why| {
        ApiError::bad_request(
            "invalid_last_event_id",
            format!("Last-Event-ID must be the id of an event of this stream: {why}"),
        )
    })
}

/// What a part's read found.
enum Fetched {
    /// A whole state, sent when it differs from the last one sent.
    Whole(Value),
    /// The newest feed items, of which only the new ones are sent.
    Feed(FeedPage),
}

struct Live {
    state: QueryState,
    user: i64,
    subscription: Subscription,
    /// The last `rank` body sent.
    rank_sent: Option<Arc<str>>,
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
            // On connect the stream reads its own place; then the rank rounds hand it over.
            let rank = match &now.rank {
                _ if first => self.own_rank().await,
                rank => rank.clone(),
            };
            // The changed parts are read at once, each waiting only for its own projections.
            let changed: Vec<(Part, Option<Position>)> = Part::ALL
                .into_iter()
                .filter(|part| {
                    self.read.as_ref().map(|read| read.part(*part).seq) != Some(now.part(*part).seq)
                })
                .map(|part| {
                    let after = now.part(part).position.clone();
                    (part, after.or_else(|| self.resume.clone()))
                })
                .collect();
            let fetched = futures::future::join_all(
                changed
                    .iter()
                    .map(|(part, after)| self.fetch(*part, after.clone())),
            )
            .await;
            let mut events = Vec::new();
            let mut failed = false;
            for ((part, after), fetched) in changed.into_iter().zip(fetched) {
                match fetched {
                    Ok(fetched) => events.extend(self.event_of(part, fetched, after)),
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
            if let Some(rank) = rank.filter(|rank| self.rank_sent.as_ref() != Some(rank)) {
                events.push(self.event("rank", &rank, None));
                self.rank_sent = Some(rank);
            }
            if let Some(event) = events.first_mut().filter(|_| first) {
                *event = std::mem::take(event).retry(RECONNECT);
            }
            if !events.is_empty() {
                return Some(events);
            }
        }
    }

    /// Reads `part` once its projections have applied `after`.
    async fn fetch(&self, part: Part, after: Option<Position>) -> Result<Fetched, ApiError> {
        let after = ReadAfter(after);
        let (state, user) = (&self.state, self.user);
        Ok(match part {
            Part::Me => Fetched::Whole(me::read(state, &after, user).await?),
            Part::Quests => Fetched::Whole(quests::read(state, &after, user).await?),
            Part::Purchases => {
                Fetched::Whole(purchases::read(state, &after, user, PURCHASES).await?)
            }
            Part::Feed => {
                let served = state
                    .read_after(&after, Some(user), &[ProjectionId::Feed])
                    .await?;
                let mut redis = state.redis.clone();
                let feeds = state.feeds(served.keys(ProjectionId::Feed));
                let page = feed_page(&mut redis, feeds, user, None, FEED_ITEMS);
                Fetched::Feed(read_store(state, ProjectionId::Feed, page).await?)
            }
        })
    }

    /// The event for what was read, unless it repeats what was sent: a whole state equal to
    /// the last one sent, or a feed with no item newer than the newest sent.
    fn event_of(&mut self, part: Part, fetched: Fetched, after: Option<Position>) -> Option<Event> {
        let body = match fetched {
            Fetched::Whole(state) => {
                let body = state.to_string();
                let last = self.last_bodies.entry(part.name()).or_default();
                if *last == body {
                    return None;
                }
                last.clone_from(&body);
                body
            }
            Fetched::Feed(page) => self.new_items(&page)?,
        };
        Some(self.event(part.name(), &body, after.as_ref()))
    }

    /// `{"items", "complete"}` with the items of `page` newer than the newest sent, newest
    /// first (all of them on connect). `complete` is false when more arrived than the page
    /// shows: the client then reads `GET /v1/me/feed`.
    fn new_items(&mut self, page: &FeedPage) -> Option<String> {
        let id_of = |item: &String| {
            serde_json::from_str::<Value>(item).ok().and_then(|v| {
                v["event_id"]
                    .as_str()
                    .and_then(|id| id.parse::<Uuid>().ok())
            })
        };
        let newest = page.items.first().and_then(id_of);
        let known = self.newest_item;
        let fresh: Vec<&str> = page
            .items
            .iter()
            .take_while(|item| known.is_none() || id_of(item) != known)
            .map(String::as_str)
            .collect();
        let complete = known.is_none() || fresh.len() < page.items.len() || page.next.is_none();
        if fresh.is_empty() || newest == known {
            return None;
        }
        self.newest_item = newest;
        Some(format!(
            "{{\"items\":[{}],\"complete\":{complete}}}",
            fresh.join(",")
        ))
    }

    /// The caller's places, read on connect (a failed read waits for the next rank round).
    async fn own_rank(&self) -> Option<Arc<str>> {
        match rank::body_of(&self.state, self.user).await {
            Ok(body) => Some(Arc::from(body)),
            Err(error) => {
                tracing::debug!(user = self.user, ?error, "A live rank read failed.");
                None
            }
        }
    }

    fn event(&self, kind: &str, body: &str, position: Option<&Position>) -> Event {
        let event = Event::default().event(kind).data(body);
        match position {
            Some(position) => event.id(self.state.config.token_keys.sign(position)),
            None => event,
        }
    }
}
