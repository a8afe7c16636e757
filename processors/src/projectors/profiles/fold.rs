//! What each event does to a profile. Pure: no I/O.
//!
//! - SessionStarted: refreshes the Telegram snapshot (names, username, premium; language and
//!   photo unless the user chose their own), counts the session, and on the user's first
//!   session sets `referred_by` from `start_param` (`ref_<user id>`), never changed afterwards.
//! - ProfileUpdated: sets display name, language and photo when present (absent = unchanged); a
//!   language or photo set this way is the user's choice and later sessions keep it.
//! - DailyCheckedIn: moves the streak by [`Streak::check_in`].
//! - TapsSubmitted: activity only (the user is there, tapping): moves `last_seen_at`.
//! - ReferralCredited: nothing. It is derived, credited to the referrer without them acting.
//!
//! Every event that touches a profile creates it when missing and widens
//! `first_seen_at..last_seen_at` to its `occurred_at`, so times never move backwards when an
//! offline event arrives late.

use std::collections::HashMap;

use surge_projections::profiles::Profile;
use surge_schemas::{Event, Payload};

use crate::projectors::economy::Streak;
use crate::runtime::Record;

/// Whether `event` changes its user's profile.
pub fn touches(event: &Event) -> bool {
    match event.payload {
        Payload::SessionStarted(_)
        | Payload::TapsSubmitted(_)
        | Payload::DailyCheckedIn(_)
        | Payload::ProfileUpdated(_)
        | Payload::QuestClaimed(_)
        | Payload::PurchaseStarted(_) => true,
        // Derived, credited without the user acting (see the module header), or reported by
        // Telegram rather than sent by the Mini App.
        Payload::ReferralCredited(_)
        | Payload::QuestCompleted(_)
        | Payload::StarsPaymentReceived(_)
        | Payload::StarsPaymentRefunded(_)
        // An operator's broadcasts are nobody's profile; a block is observed by the sender,
        // not done in the Mini App.
        | Payload::BroadcastRequested(_)
        | Payload::BroadcastCancelled(_)
        | Payload::BotBlocked(_) => false,
    }
}

/// Folds `event` into its user's profile (`None`: no row yet), creating it when needed.
pub fn fold(profile: &mut Option<Profile>, event: &Event) {
    if !touches(event) {
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
    match &event.payload {
        Payload::SessionStarted(s) => {
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
        Payload::ProfileUpdated(u) => {
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
        Payload::DailyCheckedIn(c) => {
            let mut streak =
                Streak::from_columns(p.streak_current, p.streak_best, p.streak_last_day);
            streak.check_in(c.day);
            (p.streak_current, p.streak_best, p.streak_last_day) = streak.columns();
        }
        Payload::TapsSubmitted(_)
        | Payload::QuestClaimed(_)
        | Payload::PurchaseStarted(_)
        | Payload::ReferralCredited(_)
        | Payload::QuestCompleted(_)
        | Payload::StarsPaymentReceived(_)
        | Payload::StarsPaymentRefunded(_)
        | Payload::BroadcastRequested(_)
        | Payload::BroadcastCancelled(_)
        | Payload::BotBlocked(_) => {}
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
