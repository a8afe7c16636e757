//! An operator's broadcasts, keyed by [`OPERATOR_USER_ID`](super::OPERATOR_USER_ID), and what
//! the bot's sender learnt about a user.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{PayloadType, uuid_as_str};
use crate::rules::{MAX_BUTTON_CHARS, MAX_MESSAGE_CHARS, Text, Violation, between};

/// An operator's message to an audience; keyed by [`OPERATOR_USER_ID`](super::OPERATOR_USER_ID).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BroadcastRequested {
    #[serde(serialize_with = "uuid_as_str")]
    pub broadcast_id: Uuid,
    pub text: String,
    /// The label of a `web_app` button that opens the Mini App.
    pub button_text: Option<String>,
    /// Only users with an event in this many days before the request.
    pub active_within_days: Option<i32>,
    /// Only users of this language.
    pub language: Option<String>,
}

impl PayloadType for BroadcastRequested {
    fn check(&self) -> Result<(), Violation> {
        let BroadcastRequested {
            broadcast_id: _,
            text,
            button_text,
            active_within_days,
            language,
        } = self;
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

    fn energy_cost(&self) -> u64 {
        0
    }

    fn sample() -> Self {
        BroadcastRequested {
            broadcast_id: Uuid::now_v7(),
            text: "Season 2 starts now!\nTap to play.".into(),
            button_text: Some("Play".into()),
            active_within_days: Some(7),
            language: Some("pt-BR".into()),
        }
    }
}

/// An operator cancelled a broadcast; keyed by [`OPERATOR_USER_ID`](super::OPERATOR_USER_ID).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BroadcastCancelled {
    #[serde(serialize_with = "uuid_as_str")]
    pub broadcast_id: Uuid,
}

impl PayloadType for BroadcastCancelled {
    fn check(&self) -> Result<(), Violation> {
        let BroadcastCancelled { broadcast_id: _ } = self;
        Ok(())
    }

    fn energy_cost(&self) -> u64 {
        0
    }

    fn sample() -> Self {
        BroadcastCancelled {
            broadcast_id: Uuid::now_v7(),
        }
    }
}

/// Telegram refused a message to the user with 403; they leave every audience until their next
/// session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BotBlocked {
    /// Telegram's description.
    pub reason: String,
}

impl PayloadType for BotBlocked {
    fn check(&self) -> Result<(), Violation> {
        let BotBlocked { reason } = self;
        Text::Shown { max: 256 }.check("reason", reason)
    }

    fn energy_cost(&self) -> u64 {
        0
    }

    fn sample() -> Self {
        BotBlocked {
            reason: "Forbidden: bot was blocked by the user".into(),
        }
    }
}
