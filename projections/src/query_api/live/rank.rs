//! The `rank` part of `GET /v1/me/live`: the caller's place on every leaderboard,
//! `{"all", "daily", "weekly"}`, each `{"rank", "score"}` or `null` when unranked.
//!
//! A place moves when anyone's score does, not only the caller's, so reading it per stream on
//! every change would cost a Redis read per stream per change. Instead each query API runs rank
//! rounds: after a leaderboard change, at most once per [`INTERVAL`], one task reads the places
//! of every user streaming from this instance, [`USERS_PER_PIPELINE`] users at a time (their
//! scores in a pipeline per leaderboard shard, then who is above them in a script per shard),
//! and hands each changed place to that user's streams through the hub. 10,000 streams cost
//! one round of 20 such reads per interval, however busy the leaderboard. A stream reads its own
//! place once on connect. Rank events carry no `id`: they show the leaderboard when read, not
//! a position a consistency token could name.

use std::sync::{Arc, Weak};
use std::time::Duration;

use serde_json::json;

use super::hub::Hub;
use crate::catalog::ProjectionId;
use crate::leaderboard::http::current;
use crate::leaderboard::{Board, Period, PeriodKind, Place, places_of};
use crate::query_api::consistency::{ReadAfter, read_store};
use crate::query_api::{Inner, QueryState};
use surge_http::ApiError;

/// The fastest places are read again after a change.
pub(crate) const INTERVAL: Duration = Duration::from_secs(2);
/// Users whose places one read takes.
const USERS_PER_PIPELINE: usize = 500;
/// In the order of the body's fields.
const PERIODS: [PeriodKind; 3] = [PeriodKind::AllTime, PeriodKind::Daily, PeriodKind::Weekly];

/// Rank rounds until the query API is gone.
pub(crate) async fn run(state: Weak<Inner>) {
    let mut board = match state
        .upgrade()
        .as_ref()
        .and_then(|inner| inner.live.as_ref())
    {
        Some(hub) => hub.board_changes(),
        None => return,
    };
    // Ends when the hub, and with it the sender of leaderboard changes, is dropped.
    while board.changed().await.is_ok() {
        board.borrow_and_update();
        let Some(inner) = state.upgrade() else {
            return;
        };
        if let Some(hub) = inner.live.clone() {
            let state = QueryState(inner);
            if let Err(error) = round(&state, &hub).await {
                tracing::debug!(?error, "A live rank round failed; the next change retries.");
            }
        }
        tokio::time::sleep(INTERVAL).await;
    }
}

/// Reads the places of every user streaming from this instance; the hub wakes those whose
/// place changed.
async fn round(state: &QueryState, hub: &Arc<Hub>) -> Result<(), ApiError> {
    let users = hub.streaming_users();
    if users.is_empty() {
        return Ok(());
    }
    let boards = Boards::served(state).await?;
    for chunk in users.chunks(USERS_PER_PIPELINE) {
        for (user, body) in chunk.iter().zip(boards.bodies(state, chunk).await?) {
            hub.set_rank(*user, body.into());
        }
    }
    Ok(())
}

/// The `rank` body of one user (a stream reads its own on connect).
pub(crate) async fn body_of(state: &QueryState, user: i64) -> Result<String, ApiError> {
    let mut bodies = Boards::served(state).await?.bodies(state, &[user]).await?;
    Ok(bodies.pop().expect("one body per user"))
}

/// What places are read from: the served leaderboard version's keys and the current periods,
/// resolved once per round.
struct Boards {
    base: String,
    partitions: i32,
    periods: [Period; 3],
}

impl Boards {
    async fn served(state: &QueryState) -> Result<Boards, ApiError> {
        let served = state
            .read_after(&ReadAfter(None), None, &[ProjectionId::Leaderboard])
            .await?;
        Ok(Boards {
            base: served.get(ProjectionId::Leaderboard).base.clone(),
            partitions: state.config.events_partitions,
            periods: PERIODS.map(current),
        })
    }

    fn board(&self) -> Board<'_> {
        Board {
            base: &self.base,
            partitions: self.partitions,
        }
    }

    /// The `rank` bodies of `users`, in their order: a pipeline per shard holding some of them,
    /// then a script per shard.
    async fn bodies(&self, state: &QueryState, users: &[i64]) -> Result<Vec<String>, ApiError> {
        let mut redis = state.redis.clone();
        let places = read_store(
            state,
            ProjectionId::Leaderboard,
            places_of(&mut redis, self.board(), &self.periods, users),
        )
        .await?;
        Ok(places.iter().map(|of_user| body(of_user)).collect())
    }
}

fn body(places: &[Option<Place>]) -> String {
    json!({ "all": places[0], "daily": places[1], "weekly": places[2] }).to_string()
}
