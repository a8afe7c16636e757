//! `GET /v1/leaderboard/{all|daily|weekly}/live?limit=`: the public top N as Server-Sent Events
//! (`event: top`, the body anonymous `GET /v1/leaderboard/{period}` answers), at once and then
//! at most once a second while the leaderboard changes. Every stream of an instance reads
//! through the same in-memory top (`top_cache`), so a thousand streams cost what one does: one
//! Redis read per period per cache interval. Streams wake on the leaderboard processors'
//! notices, and every [`IDLE_REFRESH`] anyway so a new day or week shows without a change.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::Response;
use axum::response::sse::Event;
use futures::Stream;
use surge_http::error_responses;
use surge_http::openapi::PATH_ERRORS;
use surge_http::{ApiError, Path};
use tokio::time::Instant;

use super::hub::BoardSubscription;
use super::stream::MAX_AGE;
use crate::catalog::ProjectionId;
use crate::leaderboard::PeriodKind;
use crate::leaderboard::http::{current, period_and_limit};
use crate::query_api::QueryState;
use crate::query_api::consistency::ReadAfter;
use crate::query_api::handlers::Params;
use crate::query_api::top_cache::Needs;

/// The fastest a stream sends.
const MIN_GAP: Duration = Duration::from_secs(1);
/// A stream reads again after this long without a notice.
const IDLE_REFRESH: Duration = Duration::from_secs(30);
const DEFAULT_LIMIT: usize = 10;

error_responses!(
    BoardLiveErrors = [
        PATH_ERRORS,
        [
            (400, "invalid_period"),
            (400, "invalid_limit"),
            (400, "repeated_parameter"),
            (501, "live_updates_off"),
            (503, "live_streams_full"),
        ],
    ]
);

#[utoipa::path(
    get,
    path = "/v1/leaderboard/{period}/live",
    tag = "live",
    summary = "The public top of a leaderboard as Server-Sent Events",
    description = "`event: top` with the anonymous `GET /v1/leaderboard/{period}` body, at once and at most once a second while it changes.",
    params(
        ("period" = crate::query_api::openapi::PeriodName, Path, description = "The current UTC day, ISO week, or all time"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "Entries (default 10)"),
    ),
    responses(
        (status = 200, description = "An endless stream of events", content_type = "text/event-stream", body = String),
        BoardLiveErrors,
    ),
)]
pub(crate) async fn leaderboard_live(
    State(state): State<QueryState>,
    Path(kind): Path<String>,
    query: Params,
) -> Result<Response, ApiError> {
    let (kind, limit) = period_and_limit(&kind, &query, DEFAULT_LIMIT)?;
    let subscription = super::hub(&state)?.subscribe_board()?;
    let board = Board {
        state: state.clone(),
        kind,
        limit,
        subscription,
        last: None,
        sent_at: None,
        ends: Instant::now() + MAX_AGE,
    };
    Ok(super::sse(&state, events(board)))
}

struct Board {
    state: QueryState,
    kind: PeriodKind,
    limit: usize,
    subscription: BoardSubscription,
    last: Option<String>,
    sent_at: Option<Instant>,
    ends: Instant,
}

fn events(board: Board) -> impl Stream<Item = Result<Event, Infallible>> {
    futures::stream::unfold(board, |mut board| async move {
        let event = board.next().await?;
        Some((Ok(event), board))
    })
}

impl Board {
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(sent_at) = self.sent_at {
                tokio::select! {
                    _ = self.subscription.changes.changed() => {}
                    () = tokio::time::sleep(IDLE_REFRESH) => {}
                    () = tokio::time::sleep_until(self.ends) => return None,
                }
                tokio::time::sleep_until(sent_at + MIN_GAP).await;
            }
            // A top read before the latest notice may miss its change; when no later notice
            // comes, the stream would show it only at the idle refresh.
            let noticed = *self.subscription.changes.borrow_and_update();
            let period = current(self.kind);
            let read = async {
                let served = self
                    .state
                    .read_after(&ReadAfter(None), None, &[ProjectionId::Leaderboard])
                    .await?;
                let board = served.get(ProjectionId::Leaderboard);
                self.state
                    .top_cache
                    .top(
                        &self.state,
                        board,
                        period,
                        self.limit,
                        Needs::ReadSince(noticed),
                    )
                    .await
            };
            self.sent_at = Some(Instant::now());
            let top = match read.await {
                Ok(top) => top,
                Err(error) => {
                    tracing::debug!(?error, "A live leaderboard read failed; retrying.");
                    self.subscription.changes.mark_changed();
                    continue;
                }
            };
            if self.last.as_deref() == Some(top.anonymous_body.as_str()) {
                continue;
            }
            self.last = Some(top.anonymous_body.clone());
            return Some(Event::default().event("top").data(&top.anonymous_body));
        }
    }
}
