//! What each field of each event may hold. The write API checks every event it builds against
//! [`check`] before anything is appended, so a value no store or screen should hold (a NUL byte
//! PostgreSQL refuses, a right-to-left override on a leaderboard) is refused at the edge with the
//! field's name, and never reaches the topic.
//!
//! The kinds of text and their bounds are here ([`Text`]); each event type's rules are beside its
//! struct (`PayloadType::check` in `events/`), which destructures every field: a new event type
//! or field does not compile until its rule is written.
//!
//! Every text field refuses control characters (Unicode `Cc`, NUL included) and bidirectional
//! embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069), then applies its kind's
//! bounds ([`Text`]). Names a player chooses must also show something: a name of only spaces,
//! zero-width, format or blank characters is refused.

mod text;

pub use text::Text;

use crate::events::Payload;

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

/// Checks every field of `payload` against its rule (each event type's
/// [`PayloadType::check`](crate::events::PayloadType::check), beside its struct).
pub fn check(payload: &Payload) -> Result<(), Violation> {
    payload.check()
}

/// `n` within `min..=max`, or a violation of `field` that says so.
pub(crate) fn between(field: &'static str, n: i64, min: i64, max: i64) -> Result<(), Violation> {
    if (min..=max).contains(&n) {
        Ok(())
    } else {
        Err(value(field, format!("must be between {min} and {max}")))
    }
}

/// A violation of `field`'s bounds or format, described by `rule`.
pub(crate) fn value(field: &'static str, rule: String) -> Violation {
    Violation {
        field,
        problem: Problem::Value(rule),
    }
}

#[cfg(test)]
mod tests;
