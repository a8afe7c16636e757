//! The quest book: every quest a user can complete, from configuration (`SURGE_QUESTS_FILE`, a
//! JSON array; [`QuestBook::builtin`] when unset). The write API reads it to refuse claims of
//! quests that do not exist, the quests deriver to decide completions, the query API to show
//! titles and goals. A completion carries its reward in the event, so changing the book later
//! never rewrites coins already earned.
//!
//! ```json
//! [{"id": "tap_1000", "title": "Tap 1,000 times", "reward": 1000, "goal": {"taps": 1000}},
//!  {"id": "open_5", "title": "Open the app 5 times", "reward": 300,
//!   "goal": {"sessions": 5}, "claim": true}]
//! ```

use std::collections::HashSet;
use std::sync::Arc;

use serde::Deserialize;

use crate::rules::Text;

/// Quest ids are tokens of at most this many bytes (they go into event ids' derivation and URLs).
pub const MAX_ID: usize = 32;
/// The largest reward one quest may pay.
pub const MAX_REWARD: i64 = 1_000_000_000;

/// What a user must reach. Counted from the user's events as the quests projection applies them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Goal {
    /// Taps in total.
    Taps(i64),
    /// Daily check-ins on consecutive UTC days (the longest streak so far counts).
    Streak(i64),
    /// Friends who joined through the user's link (credited referrals).
    Referrals(i64),
    /// Sessions started (times the Mini App was opened).
    Sessions(i64),
}

impl Goal {
    /// The number to reach.
    pub fn target(self) -> i64 {
        match self {
            Goal::Taps(n) | Goal::Streak(n) | Goal::Referrals(n) | Goal::Sessions(n) => n,
        }
    }

    /// Its name in the HTTP API.
    pub fn kind(self) -> &'static str {
        match self {
            Goal::Taps(_) => "taps",
            Goal::Streak(_) => "streak",
            Goal::Referrals(_) => "referrals",
            Goal::Sessions(_) => "sessions",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quest {
    pub id: String,
    pub title: String,
    /// Coins the completion earns.
    pub reward: i64,
    pub goal: Goal,
    /// Completed only when the user claims it (`POST /v1/quests/{id}/claim`) with the goal met,
    /// instead of as soon as the goal is met.
    #[serde(default)]
    pub claim: bool,
}

/// The quests, in the book's order. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuestBook {
    quests: Arc<[Quest]>,
}

const BUILTIN: &str = r#"[
  {"id": "tap_1000", "title": "Tap 1,000 times", "reward": 1000, "goal": {"taps": 1000}},
  {"id": "streak_3", "title": "Check in 3 days in a row", "reward": 500, "goal": {"streak": 3}},
  {"id": "invite_3", "title": "Invite 3 friends", "reward": 1500, "goal": {"referrals": 3}},
  {"id": "open_5", "title": "Open the app 5 times", "reward": 300, "goal": {"sessions": 5}, "claim": true}
]"#;

impl QuestBook {
    /// The quests `surge dev` and the tests run with when no file is configured.
    pub fn builtin() -> QuestBook {
        QuestBook::parse(BUILTIN).expect("the built-in quest book is valid")
    }

    /// A book from its JSON; the error names the quest and the rule it breaks.
    pub fn parse(json: &str) -> Result<QuestBook, String> {
        let quests: Vec<Quest> =
            serde_json::from_str(json).map_err(|e| format!("not a quest book: {e}"))?;
        let mut ids = HashSet::new();
        for (index, quest) in quests.iter().enumerate() {
            let name = format!("quest {index} ({:?})", quest.id);
            Text::Token { max: MAX_ID }
                .check("id", &quest.id)
                .map_err(|v| format!("{name}: {v}"))?;
            if !ids.insert(quest.id.as_str()) {
                return Err(format!("{name}: the id is used twice"));
            }
            Text::DisplayName
                .check("title", &quest.title)
                .map_err(|v| format!("{name}: {v}"))?;
            if !(1..=MAX_REWARD).contains(&quest.reward) {
                return Err(format!("{name}: reward must be between 1 and {MAX_REWARD}"));
            }
            if !(1..=i64::from(i32::MAX)).contains(&quest.goal.target()) {
                return Err(format!(
                    "{name}: the goal must be between 1 and {}",
                    i32::MAX
                ));
            }
        }
        Ok(QuestBook {
            quests: quests.into(),
        })
    }

    pub fn get(&self, id: &str) -> Option<&Quest> {
        self.quests.iter().find(|q| q.id == id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Quest> {
        self.quests.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_book_has_one_quest_of_each_goal_and_one_to_claim() {
        let book = QuestBook::builtin();
        let kinds: Vec<&str> = book.iter().map(|q| q.goal.kind()).collect();
        assert_eq!(kinds, ["taps", "streak", "referrals", "sessions"]);
        assert!(book.get("open_5").unwrap().claim);
        assert!(!book.get("tap_1000").unwrap().claim);
        assert_eq!(book.get("nope"), None);
    }

    #[test]
    fn a_broken_book_is_refused_naming_the_quest_and_the_rule() {
        let refused = |json: &str| QuestBook::parse(json).unwrap_err();
        let quest = |id: &str, reward: i64, goal: &str| {
            format!(r#"{{"id": "{id}", "title": "T", "reward": {reward}, "goal": {goal}}}"#)
        };
        let ok = quest("a", 1, r#"{"taps": 1}"#);
        assert!(QuestBook::parse(&format!("[{ok}]")).is_ok());
        assert!(refused(&format!("[{ok}, {ok}]")).contains("used twice"));
        let bad_id = refused(&format!("[{}]", quest("a b", 1, r#"{"taps": 1}"#)));
        assert!(bad_id.contains(r#"quest 0 ("a b"): id"#), "{bad_id}");
        assert!(refused(&format!("[{}]", quest("a", 0, r#"{"taps": 1}"#))).contains("reward"));
        assert!(refused(&format!("[{}]", quest("a", 1, r#"{"taps": 0}"#))).contains("goal"));
        assert!(refused(&format!("[{}]", quest("a", 1, r#"{"coins": 5}"#))).contains("unknown"));
        assert!(refused("{}").contains("not a quest book"));
    }
}
