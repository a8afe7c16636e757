//! Quests: a user's claim of a quest they complete themselves, and the completions the quests
//! deriver decides (see [`crate::quests`] for the quest book).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{PayloadType, uuid_as_str};
use crate::quests::{MAX_ID, MAX_REWARD};
use crate::rules::{Text, Violation, value};

/// The user claims a quest they complete themselves; see [`crate::quests`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuestClaimed {
    pub quest_id: String,
}

impl PayloadType for QuestClaimed {
    /// Whether the quest exists is the write API's check (it has the quest book).
    fn check(&self) -> Result<(), Violation> {
        let QuestClaimed { quest_id } = self;
        Text::Token { max: MAX_ID }.check("quest_id", quest_id)
    }

    fn energy_cost(&self) -> u64 {
        0
    }

    fn sample() -> Self {
        QuestClaimed {
            quest_id: "open_5".into(),
        }
    }
}

/// Derived by the quests deriver, once per user and quest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuestCompleted {
    pub quest_id: String,
    /// Coins, as the quest book said when the completion was decided.
    pub reward: i64,
    #[serde(serialize_with = "uuid_as_str")]
    pub source_event_id: Uuid,
}

impl PayloadType for QuestCompleted {
    fn check(&self) -> Result<(), Violation> {
        let QuestCompleted {
            quest_id,
            reward,
            source_event_id: _,
        } = self;
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

    fn energy_cost(&self) -> u64 {
        0
    }

    fn sample() -> Self {
        QuestCompleted {
            quest_id: "tap_1000".into(),
            reward: 1000,
            source_event_id: Uuid::now_v7(),
        }
    }
}
