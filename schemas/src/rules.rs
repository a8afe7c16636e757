//! What each field of each event may hold: the one place for it. The write API checks every event
//! it builds against [`check`] before anything is appended, so a value no store or screen should
//! hold (a NUL byte PostgreSQL refuses, a right-to-left override on a leaderboard) is refused at
//! the edge with the field's name, and never reaches the topic.
//!
//! [`check`] destructures every field of every payload: a new event type or field does not
//! compile until its rule is written here.
//!
//! Every text field refuses control characters (Unicode `Cc`, NUL included) and bidirectional
//! embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069), then applies its kind's
//! bounds ([`Text`]). Names a player chooses must also show something: a name of only spaces,
//! zero-width, format or blank characters is refused.

mod text;

pub use text::Text;

use crate::events::{
    BotBlocked, BroadcastCancelled, BroadcastRequested, DailyCheckedIn, Payload, ProfileUpdated,
    PurchaseStarted, QuestClaimed, QuestCompleted, ReferralCredited, SessionStarted,
    StarsPaymentReceived, StarsPaymentRefunded, TapsSubmitted,
};
use crate::products::{self, MAX_COINS, MAX_STARS};
use crate::quests::{MAX_ID, MAX_REWARD};

/// Telegram's `telegram_payment_charge_id`s are opaque strings; this bounds what is stored.
pub const MAX_CHARGE_ID: usize = 256;

/// Telegram's limit on a message's text, in characters.
pub const MAX_MESSAGE_CHARS: usize = 4096;
/// Telegram's limit on an inline button's label, in characters.
pub const MAX_BUTTON_CHARS: usize = 64;

/// Taps in one `TapsSubmitted`, inclusive.
pub const MAX_TAPS: i32 = 1000;

/// A field whose value breaks its rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The payload field, by its Avro name.
    pub field: &'static str,
    pub problem: Problem,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Characters this field never holds: the input is not acceptable text at all.
    Characters(&'static str),
    /// Acceptable text (or a number) outside the field's bounds or format.
    Value(String),
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.problem {
            Problem::Characters(what) => write!(f, "{}: must not contain {what}", self.field),
            Problem::Value(rule) => write!(f, "{}: {rule}", self.field),
        }
    }
}

/// Checks every field of `payload` against its rule.
pub fn check(payload: &Payload) -> Result<(), Violation> {
    match payload {
        Payload::SessionStarted(SessionStarted {
            first_name,
            last_name,
            username,
            language_code,
            is_premium: _,
            photo_url,
            allows_write_to_pm: _,
            start_param,
            platform,
        }) => {
            Text::TelegramName.check("first_name", first_name)?;
            Text::TelegramName.check_opt("last_name", last_name)?;
            Text::Username.check_opt("username", username)?;
            Text::LanguageTag.check_opt("language_code", language_code)?;
            Text::HttpsUrl.check_opt("photo_url", photo_url)?;
            Text::Token { max: 512 }.check_opt("start_param", start_param)?;
            Text::Token { max: 32 }.check_opt("platform", platform)
        }
        Payload::ProfileUpdated(ProfileUpdated {
            display_name,
            language_code,
            photo_url,
        }) => {
            Text::DisplayName.check_opt("display_name", display_name)?;
            Text::LanguageTag.check_opt("language_code", language_code)?;
            Text::HttpsUrl.check_opt("photo_url", photo_url)
        }
        Payload::TapsSubmitted(TapsSubmitted { count }) => {
            if (1..=MAX_TAPS).contains(count) {
                Ok(())
            } else {
                Err(value("count", format!("must be between 1 and {MAX_TAPS}")))
            }
        }
        // Any day: the write API derives it from an `occurred_at` it bounds itself.
        Payload::DailyCheckedIn(DailyCheckedIn { day: _ }) => Ok(()),
        Payload::ReferralCredited(ReferralCredited {
            referred_user_id,
            source_event_id: _,
        }) => {
            if *referred_user_id > 0 {
                Ok(())
            } else {
                Err(value(
                    "referred_user_id",
                    "must be a positive user id".into(),
                ))
            }
        }
        // Whether the quest exists is the write API's check (it has the quest book).
        Payload::QuestClaimed(QuestClaimed { quest_id }) => {
            Text::Token { max: MAX_ID }.check("quest_id", quest_id)
        }
        Payload::QuestCompleted(QuestCompleted {
            quest_id,
            reward,
            source_event_id: _,
        }) => {
            Text::Token { max: MAX_ID }.check("quest_id", quest_id)?;
            if (1..=MAX_REWARD).contains(reward) {
                Ok(())
            } else {
                Err(value(
                    "reward",
                    format!("must be between 1 and {MAX_REWARD}"),
                ))
            }
        }
        Payload::PurchaseStarted(PurchaseStarted {
            purchase_id: _,
            item_id,
            stars,
        }) => {
            Text::Token {
                max: products::MAX_ID,
            }
            .check("item_id", item_id)?;
            between("stars", *stars, 1, MAX_STARS)
        }
        Payload::StarsPaymentReceived(StarsPaymentReceived {
            telegram_payment_charge_id,
            purchase_id: _,
            item_id,
            stars,
            coins,
            subscription,
            subscription_expires_at: _,
            recurring: _,
        }) => {
            charge(telegram_payment_charge_id, item_id)?;
            // Telegram, not the catalogue, says what was paid: any positive amount.
            between("stars", *stars, 1, i64::MAX)?;
            between("coins", *coins, 0, MAX_COINS)?;
            Text::Token {
                max: products::MAX_ID,
            }
            .check_opt("subscription", subscription)
        }
        Payload::StarsPaymentRefunded(StarsPaymentRefunded {
            telegram_payment_charge_id,
            purchase_id: _,
            item_id,
            stars,
            coins,
        }) => {
            charge(telegram_payment_charge_id, item_id)?;
            between("stars", *stars, 1, i64::MAX)?;
            between("coins", *coins, 0, MAX_COINS)
        }
        Payload::BroadcastRequested(BroadcastRequested {
            broadcast_id: _,
            text,
            button_text,
            active_within_days,
            language,
        }) => {
            Text::Message {
                max: MAX_MESSAGE_CHARS,
            }
            .check("text", text)?;
            Text::Shown {
                max: MAX_BUTTON_CHARS,
            }
            .check_opt("button_text", button_text)?;
            if let Some(days) = active_within_days {
                between("active_within_days", i64::from(*days), 1, 3650)?;
            }
            Text::LanguageTag.check_opt("language", language)
        }
        Payload::BroadcastCancelled(BroadcastCancelled { broadcast_id: _ }) => Ok(()),
        Payload::BotBlocked(BotBlocked { reason }) => {
            Text::Shown { max: 256 }.check("reason", reason)
        }
    }
}

/// A payment's charge id and item id.
fn charge(charge_id: &str, item_id: &str) -> Result<(), Violation> {
    Text::Opaque { max: MAX_CHARGE_ID }.check("telegram_payment_charge_id", charge_id)?;
    Text::Token {
        max: products::MAX_ID,
    }
    .check("item_id", item_id)
}

fn between(field: &'static str, n: i64, min: i64, max: i64) -> Result<(), Violation> {
    if (min..=max).contains(&n) {
        Ok(())
    } else {
        Err(value(field, format!("must be between {min} and {max}")))
    }
}

fn value(field: &'static str, rule: String) -> Violation {
    Violation {
        field,
        problem: Problem::Value(rule),
    }
}

#[cfg(test)]
mod tests;
