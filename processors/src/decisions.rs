//! What each event type means to each projection, decided in this one file: one exhaustive
//! match per projection, turning a [`Payload`] into that projection's own input (a type of its
//! folder, which its fold matches in turn). A new event type therefore fails to compile here,
//! and only here, until every projection has said what it does with it; a new projection that
//! reads existing events adds its function here. Pure: no I/O.
//!
//! Two vocabularies are nothing but what each event type shows, so they are written here with
//! their rules rather than in their projections' folders: the feed's item types ([`Activity`])
//! and the ledger kind of the coins an event grants (the text `kind` of [`Earning::Granted`];
//! the kinds of taps, check-ins and referrals are named where the economy prices them).
//!
//! The write path's own rule about events (what they cost in energy) lives beside it, in
//! `producers/src/energy.rs`.

use serde::{Deserialize, Serialize};
use surge_projections::feed;
use surge_schemas::{EventType, Payload, SessionStarted};

use crate::projectors::economy::{Earning, REFERRAL_BONUS};
use crate::projectors::notifications::RecipientChange;
use crate::projectors::profiles::ProfileChange;
use crate::projectors::purchases::PurchaseChange;
use crate::projectors::quests::QuestInput;

/// What `payload` earns its user (`envelope.user_id`): wallets and leaderboard count it the same
/// way, so "score = coins earned" holds across stores. `Err` with a reason for a payload no rule
/// can price (a negative tap count), which the projections dead-letter.
pub fn earning(payload: &Payload) -> Result<Earning, String> {
    Ok(match payload {
        Payload::TapsSubmitted(t) if t.count < 0 => {
            return Err(format!("TapsSubmitted with a negative count ({})", t.count));
        }
        Payload::TapsSubmitted(t) => Earning::Taps { count: t.count },
        Payload::DailyCheckedIn(c) => Earning::CheckIn { day: c.day },
        Payload::ReferralCredited(_) => Earning::Referral,
        Payload::QuestCompleted(q) if q.reward < 0 => {
            return Err(format!(
                "QuestCompleted with a negative reward ({})",
                q.reward
            ));
        }
        Payload::QuestCompleted(q) => Earning::Granted {
            coins: q.reward,
            kind: "quest",
        },
        Payload::StarsPaymentReceived(p) if p.coins < 0 => {
            return Err(format!(
                "StarsPaymentReceived with negative coins ({})",
                p.coins
            ));
        }
        // A subscription payment grants no coins: nothing to load or record.
        Payload::StarsPaymentReceived(p) if p.coins == 0 => Earning::Nothing,
        Payload::StarsPaymentReceived(p) => Earning::Granted {
            coins: p.coins,
            kind: "purchase",
        },
        Payload::StarsPaymentRefunded(r) if r.coins < 0 => {
            return Err(format!(
                "StarsPaymentRefunded with negative coins ({})",
                r.coins
            ));
        }
        Payload::StarsPaymentRefunded(r) if r.coins == 0 => Earning::Nothing,
        Payload::StarsPaymentRefunded(r) => Earning::Granted {
            coins: -r.coins,
            kind: "refund",
        },
        Payload::SessionStarted(_)
        | Payload::ProfileUpdated(_)
        | Payload::QuestClaimed(_)
        | Payload::PurchaseStarted(_)
        | Payload::BroadcastRequested(_)
        | Payload::BroadcastCancelled(_)
        | Payload::BotBlocked(_) => Earning::Nothing,
    })
}

/// What `payload` does to its user's profile, and so to the name the leaderboards show.
pub fn profile(payload: &Payload) -> ProfileChange<'_> {
    match payload {
        Payload::SessionStarted(s) => ProfileChange::Session(s),
        Payload::ProfileUpdated(u) => ProfileChange::Update(u),
        Payload::DailyCheckedIn(c) => ProfileChange::CheckIn { day: c.day },
        // The user is there, acting in the Mini App.
        Payload::TapsSubmitted(_) | Payload::QuestClaimed(_) | Payload::PurchaseStarted(_) => {
            ProfileChange::Seen
        }
        // Derived, credited without the user acting, or reported by Telegram rather than sent
        // by the Mini App; an operator's broadcasts are nobody's profile; a block is observed by
        // the bot's sender, not done in the Mini App.
        Payload::ReferralCredited(_)
        | Payload::QuestCompleted(_)
        | Payload::StarsPaymentReceived(_)
        | Payload::StarsPaymentRefunded(_)
        | Payload::BroadcastRequested(_)
        | Payload::BroadcastCancelled(_)
        | Payload::BotBlocked(_) => ProfileChange::None,
    }
}

/// The session that may credit its user's referrer; only sessions can.
pub fn referral_source(payload: &Payload) -> Option<&SessionStarted> {
    match payload {
        Payload::SessionStarted(s) => Some(s),
        Payload::TapsSubmitted(_)
        | Payload::DailyCheckedIn(_)
        | Payload::ProfileUpdated(_)
        | Payload::ReferralCredited(_)
        | Payload::QuestClaimed(_)
        | Payload::QuestCompleted(_)
        | Payload::PurchaseStarted(_)
        | Payload::StarsPaymentReceived(_)
        | Payload::StarsPaymentRefunded(_)
        | Payload::BroadcastRequested(_)
        | Payload::BroadcastCancelled(_)
        | Payload::BotBlocked(_) => None,
    }
}

/// What a feed item shows (see `surge_projections::feed::FeedItem`), tagged by `"type"`: the
/// feed's JSON, served as it is stored. Optional fields are always present, `null` when absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Activity {
    /// SessionStarted, the Mini App opened: `{"type":"session","platform":"ios"|null}`.
    Session { platform: Option<String> },
    /// ProfileUpdated: each field is the new value, `null` where it did not change.
    Profile {
        display_name: Option<String>,
        language_code: Option<String>,
        photo_url: Option<String>,
    },
    /// TapsSubmitted: `{"type":"taps","count":25}`.
    Taps { count: i32 },
    /// DailyCheckedIn, for the UTC day `"day":"2026-11-22"` (see [`feed::iso_date`]).
    Checkin { day: String },
    /// ReferralCredited, in the referrer's feed: `{"type":"referral","referred_user_id":42}`.
    /// Telegram user ids have at most 52 significant bits, so JSON numbers hold them exactly.
    Referral { referred_user_id: i64 },
    /// QuestClaimed, a quest the user completes themselves:
    /// `{"type":"quest_claim","quest_id":"open_5"}`. Whether it completed shows as a `quest`.
    QuestClaim { quest_id: String },
    /// QuestCompleted: `{"type":"quest","quest_id":"tap_1000","reward":1000}`.
    Quest { quest_id: String, reward: i64 },
    /// PurchaseStarted, an invoice opened: `{"type":"purchase_started","item_id":"vip","stars":250}`.
    PurchaseStarted { item_id: String, stars: i64 },
    /// StarsPaymentReceived: `{"type":"purchase","item_id":"coins_1000","stars":50,"coins":1000}`.
    Purchase {
        item_id: String,
        stars: i64,
        coins: i64,
    },
    /// StarsPaymentRefunded, its coins taken back:
    /// `{"type":"refund","item_id":"coins_1000","stars":50,"coins":1000}`.
    Refund {
        item_id: String,
        stars: i64,
        coins: i64,
    },
}

/// The feed item's activity `payload` becomes (`None`: not the user's activity); an error says
/// why it cannot be shown.
pub fn feed_activity(payload: &Payload) -> Result<Option<Activity>, String> {
    Ok(Some(match payload {
        Payload::SessionStarted(s) => Activity::Session {
            platform: s.platform.clone(),
        },
        Payload::ProfileUpdated(p) => Activity::Profile {
            display_name: p.display_name.clone(),
            language_code: p.language_code.clone(),
            photo_url: p.photo_url.clone(),
        },
        Payload::TapsSubmitted(t) => Activity::Taps { count: t.count },
        Payload::DailyCheckedIn(c) => Activity::Checkin {
            day: feed::iso_date(c.day)
                .ok_or_else(|| format!("check-in day {} is outside the calendar", c.day))?,
        },
        Payload::ReferralCredited(r) => Activity::Referral {
            referred_user_id: r.referred_user_id,
        },
        Payload::QuestClaimed(c) => Activity::QuestClaim {
            quest_id: c.quest_id.clone(),
        },
        Payload::QuestCompleted(c) => Activity::Quest {
            quest_id: c.quest_id.clone(),
            reward: c.reward,
        },
        Payload::PurchaseStarted(p) => Activity::PurchaseStarted {
            item_id: p.item_id.clone(),
            stars: p.stars,
        },
        Payload::StarsPaymentReceived(p) => Activity::Purchase {
            item_id: p.item_id.clone(),
            stars: p.stars,
            coins: p.coins,
        },
        Payload::StarsPaymentRefunded(r) => Activity::Refund {
            item_id: r.item_id.clone(),
            stars: r.stars,
            coins: r.coins,
        },
        // An operator's broadcasts, and what the bot's sender learnt about a user.
        Payload::BroadcastRequested(_)
        | Payload::BroadcastCancelled(_)
        | Payload::BotBlocked(_) => return Ok(None),
    }))
}

/// Whether `payload` counts its user as active in the `activity` analytics: what users do and
/// what happens to them in the Mini App, not an operator's broadcasts (keyed by no user) nor
/// what the bot's sender observed (a block found by a broadcast would make every blocked user
/// look active that day).
pub fn counts_as_active(payload: &Payload) -> bool {
    match payload {
        Payload::SessionStarted(_)
        | Payload::ProfileUpdated(_)
        | Payload::TapsSubmitted(_)
        | Payload::DailyCheckedIn(_)
        | Payload::ReferralCredited(_)
        | Payload::QuestClaimed(_)
        | Payload::QuestCompleted(_)
        | Payload::PurchaseStarted(_)
        | Payload::StarsPaymentReceived(_)
        | Payload::StarsPaymentRefunded(_) => true,
        Payload::BroadcastRequested(_)
        | Payload::BroadcastCancelled(_)
        | Payload::BotBlocked(_) => false,
    }
}

/// What `payload` moves in its user's quest progress.
pub fn quest_input(payload: &Payload) -> QuestInput<'_> {
    match payload {
        Payload::TapsSubmitted(t) => QuestInput::Taps { count: t.count },
        Payload::SessionStarted(_) => QuestInput::Session,
        Payload::ReferralCredited(_) => QuestInput::Referral,
        Payload::DailyCheckedIn(c) => QuestInput::CheckIn { day: c.day },
        Payload::QuestClaimed(c) => QuestInput::Claim {
            quest_id: &c.quest_id,
        },
        Payload::QuestCompleted(q) => QuestInput::Completed(q),
        Payload::ProfileUpdated(_)
        | Payload::PurchaseStarted(_)
        | Payload::StarsPaymentReceived(_)
        | Payload::StarsPaymentRefunded(_)
        | Payload::BroadcastRequested(_)
        | Payload::BroadcastCancelled(_)
        | Payload::BotBlocked(_) => QuestInput::Nothing,
    }
}

/// What `payload` records of a purchase (`None`: nothing).
pub fn purchase(payload: &Payload) -> Option<PurchaseChange<'_>> {
    match payload {
        Payload::PurchaseStarted(p) => Some(PurchaseChange::Started(p)),
        Payload::StarsPaymentReceived(p) => Some(PurchaseChange::Paid(p)),
        Payload::StarsPaymentRefunded(r) => Some(PurchaseChange::Refunded(r)),
        Payload::SessionStarted(_)
        | Payload::ProfileUpdated(_)
        | Payload::TapsSubmitted(_)
        | Payload::DailyCheckedIn(_)
        | Payload::ReferralCredited(_)
        | Payload::QuestClaimed(_)
        | Payload::QuestCompleted(_)
        | Payload::BroadcastRequested(_)
        | Payload::BroadcastCancelled(_)
        | Payload::BotBlocked(_) => None,
    }
}

/// What `payload` does to who can be messaged, and to the operator's broadcasts.
pub fn recipient(payload: &Payload) -> RecipientChange<'_> {
    match payload {
        Payload::SessionStarted(s) => RecipientChange::Session(s),
        Payload::ProfileUpdated(u) => RecipientChange::Update(u),
        Payload::TapsSubmitted(_)
        | Payload::DailyCheckedIn(_)
        | Payload::QuestClaimed(_)
        | Payload::PurchaseStarted(_)
        | Payload::StarsPaymentReceived(_) => RecipientChange::Active,
        Payload::BotBlocked(_) => RecipientChange::Blocked,
        Payload::BroadcastRequested(b) => RecipientChange::Broadcast(b),
        Payload::BroadcastCancelled(c) => RecipientChange::Cancelled(c),
        // Derived or reported without the user acting.
        Payload::ReferralCredited(_)
        | Payload::QuestCompleted(_)
        | Payload::StarsPaymentRefunded(_) => RecipientChange::None,
    }
}

/// The placeholders an event offers its message template (`None`: this event type never
/// notifies its user).
pub fn message_variables(payload: &Payload) -> Option<Vec<(&'static str, String)>> {
    match payload {
        Payload::ReferralCredited(_) => Some(vec![("coins", REFERRAL_BONUS.to_string())]),
        Payload::QuestCompleted(q) => Some(vec![
            ("quest", q.quest_id.clone()),
            ("coins", q.reward.to_string()),
        ]),
        Payload::StarsPaymentReceived(p) => Some(vec![
            ("item", p.item_id.clone()),
            ("stars", p.stars.to_string()),
            ("coins", p.coins.to_string()),
        ]),
        Payload::SessionStarted(_)
        | Payload::ProfileUpdated(_)
        | Payload::TapsSubmitted(_)
        | Payload::DailyCheckedIn(_)
        | Payload::QuestClaimed(_)
        | Payload::PurchaseStarted(_)
        | Payload::StarsPaymentRefunded(_)
        | Payload::BroadcastRequested(_)
        | Payload::BroadcastCancelled(_)
        | Payload::BotBlocked(_) => None,
    }
}

/// The placeholder names [`message_variables`] offers for `event_type`, for checking templates
/// when they are read (a test in `notifications::templates` holds the two together).
pub fn message_variable_names(event_type: EventType) -> Option<&'static [&'static str]> {
    match event_type {
        EventType::ReferralCredited => Some(&["coins"]),
        EventType::QuestCompleted => Some(&["quest", "coins"]),
        EventType::StarsPaymentReceived => Some(&["item", "stars", "coins"]),
        EventType::SessionStarted
        | EventType::ProfileUpdated
        | EventType::TapsSubmitted
        | EventType::DailyCheckedIn
        | EventType::QuestClaimed
        | EventType::PurchaseStarted
        | EventType::StarsPaymentRefunded
        | EventType::BroadcastRequested
        | EventType::BroadcastCancelled
        | EventType::BotBlocked => None,
    }
}
