//! The `quests` projection's tables and reader. Each user's progress toward every quest
//! (`<prefix>_progress`: taps, sessions, credited referrals, check-in streak) and the quests
//! they completed (`<prefix>_completed`, one row per user and quest). The quests deriver in
//! `processors` folds events into these rows and decides completions; the query API reads them
//! for `GET /v1/me/quests` together with the quest book.

pub(crate) mod http;
mod store;

pub use store::{Completed, QuestStore};

use serde::Serialize;
use surge_schemas::quests::{Goal, Quest, QuestBook};

pub const MIGRATIONS: &[&str] = &[include_str!("sql/tables.sql")];

/// What a user has done toward the quests. Days are days since 1970-01-01 (UTC).
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct Progress {
    pub user_id: i64,
    pub taps: i64,
    pub sessions: i64,
    pub referrals: i64,
    pub streak_current: i32,
    pub streak_best: i32,
    pub streak_last_day: Option<i32>,
}

impl Progress {
    /// How far toward `goal` the user is (may exceed its target).
    pub fn toward(&self, goal: Goal) -> i64 {
        match goal {
            Goal::Taps(_) => self.taps,
            Goal::Streak(_) => i64::from(self.streak_best),
            Goal::Referrals(_) => self.referrals,
            Goal::Sessions(_) => self.sessions,
        }
    }

    pub fn reached(&self, goal: Goal) -> bool {
        self.toward(goal) >= goal.target()
    }
}

/// One quest as its user sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct QuestState {
    pub id: String,
    pub title: String,
    pub reward: i64,
    pub goal: GoalView,
    /// Toward the goal, capped at its target.
    pub progress: i64,
    pub status: Status,
    /// RFC 3339 milliseconds, once completed.
    pub completed_at: Option<String>,
    /// Whether the user completes it by claiming it (`POST /v1/quests/{id}/claim`).
    pub claim: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct GoalView {
    pub kind: &'static str,
    pub target: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = QuestStatus)]
pub enum Status {
    InProgress,
    /// The goal is met and the quest waits for the user's claim.
    Claimable,
    Completed,
}

/// Every quest of `book` for a user with `progress` (`None`: nothing counted yet) and
/// `completed`, in the book's order.
pub fn states(
    book: &QuestBook,
    progress: Option<&Progress>,
    completed: &[Completed],
) -> Vec<QuestState> {
    let none = Progress::default();
    let progress = progress.unwrap_or(&none);
    book.iter()
        .map(|quest| {
            state(
                quest,
                progress,
                completed.iter().find(|c| c.quest_id == quest.id),
            )
        })
        .collect()
}

fn state(quest: &Quest, progress: &Progress, completed: Option<&Completed>) -> QuestState {
    let status = match completed {
        Some(_) => Status::Completed,
        None if quest.claim && progress.reached(quest.goal) => Status::Claimable,
        None => Status::InProgress,
    };
    QuestState {
        id: quest.id.clone(),
        title: quest.title.clone(),
        reward: completed.map_or(quest.reward, |c| c.reward),
        goal: GoalView {
            kind: quest.goal.kind(),
            target: quest.goal.target(),
        },
        progress: progress.toward(quest.goal).min(quest.goal.target()),
        status,
        completed_at: completed.and_then(|c| crate::feed::rfc3339_millis(c.completed_at_ms)),
        claim: quest.claim,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_quest_shows_capped_progress_and_its_status() {
        let book = QuestBook::builtin();
        let progress = Progress {
            taps: 5000,
            sessions: 5,
            streak_best: 2,
            ..Progress::default()
        };
        let done = Completed {
            user_id: 1,
            quest_id: "tap_1000".into(),
            reward: 900,
            event_id: uuid::Uuid::nil(),
            completed_at_ms: 0,
        };
        let states = states(&book, Some(&progress), &[done]);
        let by_id = |id: &str| states.iter().find(|s| s.id == id).unwrap();
        let taps = by_id("tap_1000");
        assert_eq!((taps.progress, taps.status), (1000, Status::Completed));
        assert_eq!(taps.reward, 900, "the reward its completion paid");
        assert_eq!(
            taps.completed_at.as_deref(),
            Some("1970-01-01T00:00:00.000Z")
        );
        assert_eq!(by_id("streak_3").status, Status::InProgress);
        assert_eq!(by_id("streak_3").progress, 2);
        assert_eq!(by_id("open_5").status, Status::Claimable);
        assert_eq!(states.len(), book.iter().count());
    }
}
