//! What a Mini App team configures about its game, read alike by every role: the quest book
//! today. Every role receives one [`GameConfig`] (`surge process` in its sinks' context, the
//! write and query APIs in their config), so a feature with configuration of its own adds a
//! field here and its loading in `src/settings.rs`, and every role already has it.

use crate::quests::QuestBook;

/// The game's configuration; [`Default`] is the built-in game.
#[derive(Debug, Clone)]
pub struct GameConfig {
    /// The quests users can complete (`SURGE_QUESTS_FILE`).
    pub quests: QuestBook,
}

impl Default for GameConfig {
    fn default() -> Self {
        GameConfig {
            quests: QuestBook::builtin(),
        }
    }
}
