//! The `leaderboard` projector: coins earned per user, all time, per UTC day and per ISO week,
//! as Redis sorted sets, with a hash of the names to show beside them.
//!
//! Delivery guarantee: exactly-once effect. This fold is pure; the runtime applies each event's
//! writes and its new [`LeaderboardState`] in the same script that checks fencing, skips event
//! ids already seen and moves the partition's watermark, so a `ZINCRBY` is never applied twice.
//! Expiry deadlines are absolute, so a replay sets the same ones. The key layout lives in
//! [`surge_projections::leaderboard`], shared with the query API's readers.
//!
//! What each event does:
//! - every event earning coins ([`economy::earning`]: taps, counted check-ins, referral credits
//!   to the referrer) adds them to `all`, `daily:<day>` and `weekly:<week>` of its `occurred_at`,
//!   in the shards of its partition, and sets the two period sets' expiry;
//! - SessionStarted sets the user's name to their Telegram username, else first name, unless
//!   they chose a display name; ProfileUpdated with a `display_name` sets and keeps that one;
//! - anything else (0 coins, no new name) writes nothing, though a check-in still moves the
//!   streak in the state;
//! - an event the coin rules cannot price (a negative tap count) is poison, as in wallets.

use serde::{Deserialize, Serialize};
use surge_projections::ProjectionId;
use surge_projections::leaderboard::{NAMES_SUFFIX, Period, PeriodKind};
use surge_schemas::{Event, Payload};

use super::economy::{self, Streak};
use super::profiles::ProfileChange;
use crate::decisions;
use crate::projectors::{Projector, SinkContext};
use crate::runtime::{ApplyError, KeySpace, Record, RedisProjection, RedisSink, RedisWrite};

/// The leaderboard projection. Stateless itself; per-user state is [`LeaderboardState`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Leaderboard;

/// What the fold keeps per user (JSON in the projection's `state` hash).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LeaderboardState {
    /// Check-in bonuses grow with the streak.
    pub streak: Streak,
    /// The name last written to `names`, to skip rewriting it on every session.
    pub name: Option<String>,
    /// The user chose `name` (ProfileUpdated); sessions no longer replace it.
    pub name_chosen: bool,
}

impl Projector for Leaderboard {
    type Sink = RedisSink<Self>;

    fn sink(version: u32, context: &SinkContext) -> Self::Sink {
        context.redis_sink(Leaderboard, version)
    }
}

impl RedisProjection for Leaderboard {
    const ID: ProjectionId = ProjectionId::Leaderboard;
    type State = LeaderboardState;

    fn writes(
        &self,
        state: &mut LeaderboardState,
        record: &Record,
        keys: &KeySpace,
    ) -> Result<Vec<RedisWrite>, ApplyError> {
        let event = &record.event;
        let member = event.envelope.user_id.to_string();
        // Checked before the state changes, so a rejected event leaves no trace.
        let periods = periods_of(event)?;
        let earning = economy::priced(event)?;
        let mut writes = Vec::new();

        if let Some(name) = new_name(state, &event.payload) {
            writes.push(RedisWrite::HSet {
                key: keys.key(NAMES_SUFFIX),
                field: member.clone(),
                value: name,
            });
        }

        let coins = earning.coins(&mut state.streak);
        if coins != 0 {
            for period in periods {
                let key = keys.key(&period.suffix());
                writes.push(RedisWrite::ZIncrBy {
                    key: key.clone(),
                    member: member.clone(),
                    by: coins,
                });
                // After the ZINCRBY: an EXPIREAT on a missing key does nothing, and one already
                // past (a replay of an old day) deletes the set it just made, as it should.
                if let Some(unix_secs) = period.expires_at() {
                    writes.push(RedisWrite::ExpireAt { key, unix_secs });
                }
            }
        }
        Ok(writes)
    }
}

/// The sets an event's coins go to: all time, its UTC day, its ISO week.
fn periods_of(event: &Event) -> Result<[Period; 3], ApplyError> {
    let at = event.envelope.occurred_at;
    let period = |kind| {
        Period::containing(kind, at).ok_or_else(|| ApplyError::Poison {
            event_id: event.envelope.event_id,
            reason: format!("occurred_at {at} ms is outside the calendar"),
        })
    };
    Ok([
        Period::AllTime,
        period(PeriodKind::Daily)?,
        period(PeriodKind::Weekly)?,
    ])
}

/// The name to write for this event, if it changes the one shown; updates `state`.
fn new_name(state: &mut LeaderboardState, payload: &Payload) -> Option<String> {
    let name = match decisions::profile(payload) {
        ProfileChange::Update(p) => {
            let chosen = p.display_name.clone()?;
            state.name_chosen = true;
            chosen
        }
        ProfileChange::Session(s) if !state.name_chosen => s
            .username
            .clone()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| s.first_name.clone()),
        ProfileChange::Session(_)
        | ProfileChange::CheckIn { .. }
        | ProfileChange::Seen
        | ProfileChange::None => return None,
    };
    if name.is_empty() || state.name.as_ref() == Some(&name) {
        return None;
    }
    state.name = Some(name.clone());
    Some(name)
}

#[cfg(test)]
mod tests;
