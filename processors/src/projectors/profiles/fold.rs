//! What each event does to a profile. Pure: no I/O. Which event type is which
//! [`ProfileChange`] is decided in [`crate::decisions::profile`].
//!
//! - SessionStarted: refreshes the Telegram snapshot (names, username, premium; language and
//!   photo unless the user chose their own), counts the session, and on the user's first
//!   session sets `referred_by` from `start_param` (`ref_<user id>`), never changed afterwards.
//! - ProfileUpdated: sets display name, language and photo when present (absent = unchanged); a
//!   language or photo set this way is the user's choice and later sessions keep it.
//! - DailyCheckedIn: moves the streak by [`Streak::check_in`].
//! - TapsSubmitted, QuestClaimed, PurchaseStarted: activity only (the user is there): moves
//!   `last_seen_at`.
//! - ReferralCredited, QuestCompleted, payments, broadcasts, blocks: nothing. They are derived,
//!   reported by Telegram or observed by the bot, not done by the user in the Mini App.
//!
//! Every event that touches a profile creates it when missing and widens
//! `first_seen_at..last_seen_at` to its `occurred_at`, so times never move backwards when an
//! offline event arrives late.

use std::collections::HashMap;

use surge_projections::profiles::Profile;
use surge_schemas::{Event, ProfileUpdated, SessionStarted};

use crate::decisions;
use crate::projectors::economy::Streak;
use crate::runtime::Record;

/// What an event does to a profile, as [`crate::decisions::profile`] decides for each event
/// type.
#[derive(Debug, Clone, Copy)]
pub enum ProfileChange<'a> {
    /// Refreshes the Telegram snapshot, counts the session, may set the referrer.
    Session(&'a SessionStarted),
    /// Sets the fields the user chose.
    Update(&'a ProfileUpdated),
    /// Moves the streak.
    CheckIn { day: i32 },
    /// Activity only: moves `last_seen_at`.
    Seen,
    /// Not the profile's business.
    None,
}

impl ProfileChange<'_> {
    /// Whether a repeat of the event changes nothing: activity only moves a maximum. (Sessions
    /// count, and a repeated old profile update or check-in could undo a later one.)
    pub fn idempotent(self) -> bool {
        match self {
            ProfileChange::Seen | ProfileChange::None => true,
            ProfileChange::Session(_)
            | ProfileChange::Update(_)
            | ProfileChange::CheckIn { .. } => false,
        }
    }
}

/// Whether `event` changes its user's profile.
pub fn touches(event: &Event) -> bool {
    !matches!(decisions::profile(&event.payload), ProfileChange::None)
}

/// Folds `event` into its user's profile (`None`: no row yet), creating it when needed.
pub fn fold(profile: &mut Option<Profile>, event: &Event) {
    let change = decisions::profile(&event.payload);
    if let ProfileChange::None = change {
        return;
    }
    let envelope = &event.envelope;
    let at = envelope.occurred_at;
    let p = profile.get_or_insert_with(|| Profile {
        user_id: envelope.user_id,
        first_seen_at_ms: at,
        last_seen_at_ms: at,
        ..Profile::default()
    });
    p.first_seen_at_ms = p.first_seen_at_ms.min(at);
    p.last_seen_at_ms = p.last_seen_at_ms.max(at);
    match change {
        ProfileChange::Session(s) => {
            if p.sessions_count == 0 {
                p.referred_by = referrer(s.start_param.as_deref(), envelope.user_id);
            }
            p.sessions_count += 1;
            p.first_name = Some(s.first_name.clone());
            p.last_name.clone_from(&s.last_name);
            p.username.clone_from(&s.username);
            p.is_premium = s.is_premium;
            if !p.language_code_chosen {
                p.language_code.clone_from(&s.language_code);
            }
            if !p.photo_url_chosen {
                p.photo_url.clone_from(&s.photo_url);
            }
        }
        ProfileChange::Update(u) => {
            if let Some(name) = &u.display_name {
                p.display_name = Some(name.clone());
            }
            if let Some(language) = &u.language_code {
                p.language_code = Some(language.clone());
                p.language_code_chosen = true;
            }
            if let Some(photo) = &u.photo_url {
                p.photo_url = Some(photo.clone());
                p.photo_url_chosen = true;
            }
        }
        ProfileChange::CheckIn { day } => {
            let mut streak =
                Streak::from_columns(p.streak_current, p.streak_best, p.streak_last_day);
            streak.check_in(day);
            (p.streak_current, p.streak_best, p.streak_last_day) = streak.columns();
        }
        ProfileChange::Seen | ProfileChange::None => {}
    }
}

/// Folds a batch (one partition, in order) onto the stored rows of its users. Returns the rows
/// to write: each touched user once, in the order first touched.
pub fn fold_batch(mut stored: HashMap<i64, Profile>, records: &[Record]) -> Vec<Profile> {
    let mut order = Vec::new();
    let mut folded: HashMap<i64, Option<Profile>> = HashMap::new();
    for record in records.iter().filter(|r| touches(&r.event)) {
        let user_id = record.event.envelope.user_id;
        let profile = folded.entry(user_id).or_insert_with(|| {
            order.push(user_id);
            stored.remove(&user_id)
        });
        fold(profile, &record.event);
    }
    order
        .into_iter()
        .filter_map(|user| folded.remove(&user).flatten())
        .collect()
}

/// The referrer a `start_param` names: `ref_<user id>` with the id in canonical decimal
/// (digits only, no sign or leading zero, fits in i64), not the user themselves.
pub fn referrer(start_param: Option<&str>, user_id: i64) -> Option<i64> {
    let digits = start_param?.strip_prefix("ref_")?;
    let canonical = !digits.is_empty()
        && !digits.starts_with('0')
        && digits.bytes().all(|b| b.is_ascii_digit());
    let referrer: i64 = digits.parse().ok().filter(|_| canonical)?;
    (referrer != user_id).then_some(referrer)
}

#[cfg(test)]
#[path = "fold_tests.rs"]
mod tests;
