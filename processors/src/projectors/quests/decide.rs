//! The quest rule, pure: what one event does to its user's progress, and which quests it
//! completes. Deterministic, so a replayed batch decides exactly as before.

use std::collections::HashMap;

use surge_projections::quests::{Completed, Progress};
use surge_schemas::quests::{Quest, QuestBook};
use surge_schemas::{Envelope, Event, QuestCompleted};
use uuid::Uuid;

use crate::decisions;
use crate::projectors::economy::Streak;
use crate::projectors::referrals::derived_event_id;

/// What an event did besides moving progress, for `processor_derived_outcomes_total`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Completed these quests: the events to emit.
    Completed(Vec<Event>),
    /// A claim of a quest whose goal is not met yet: nothing happens.
    ClaimTooEarly,
    /// A claim of a quest the book does not have (any more), that completes without a claim,
    /// or that is already completed.
    ClaimRefused,
    /// Everything else.
    Nothing,
}

impl Outcome {
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Completed(_) => "completed",
            Outcome::ClaimTooEarly => "claim_too_early",
            Outcome::ClaimRefused => "claim_refused",
            Outcome::Nothing => "nothing",
        }
    }
}

/// The event id of `user_id`'s completion of `quest_id`: one id per user and quest, whichever
/// event reached the goal and whichever version decided it, so a completion decided twice (by a
/// rebuilt version that took over before it read the old version's completion back) is the
/// same event, and every projection applies it once.
pub fn completion_id(user_id: i64, quest_id: &str) -> Uuid {
    derived_event_id(Uuid::nil(), &format!("QuestCompleted:{user_id}:{quest_id}"))
}

/// What an event moves in its user's quest progress, as [`crate::decisions::quest_input`]
/// decides for each event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuestInput<'a> {
    Taps {
        count: i32,
    },
    Session,
    /// A credited referral.
    Referral,
    CheckIn {
        day: i32,
    },
    /// The user claims a quest they complete themselves.
    Claim {
        quest_id: &'a str,
    },
    /// A completion, read back from the topic.
    Completed(&'a QuestCompleted),
    /// Nothing quests count.
    Nothing,
}

impl QuestInput<'_> {
    /// Progress counts, so those events must be deduplicated; a completion read back is
    /// recorded only if absent.
    pub fn idempotent(self) -> bool {
        match self {
            QuestInput::Completed(_) | QuestInput::Nothing => true,
            QuestInput::Taps { .. }
            | QuestInput::Session
            | QuestInput::Referral
            | QuestInput::CheckIn { .. }
            | QuestInput::Claim { .. } => false,
        }
    }
}

/// One user's state as the deriver holds it during a batch.
#[derive(Debug, Clone, Default)]
pub struct UserQuests {
    pub progress: Progress,
    /// By quest id.
    pub completed: HashMap<String, Completed>,
}

impl UserQuests {
    /// Applies `event` (of this user, in partition order) and decides what it completes.
    /// `event` must have passed the coin rules' refusal of impossible payloads.
    pub fn apply(&mut self, book: &QuestBook, event: &Event) -> Outcome {
        let p = &mut self.progress;
        let mut claimed = None;
        match decisions::quest_input(&event.payload) {
            QuestInput::Taps { count } => p.taps += i64::from(count.max(0)),
            QuestInput::Session => p.sessions += 1,
            QuestInput::Referral => p.referrals += 1,
            QuestInput::CheckIn { day } => {
                let mut streak =
                    Streak::from_columns(p.streak_current, p.streak_best, p.streak_last_day);
                streak.check_in(day);
                (p.streak_current, p.streak_best, p.streak_last_day) = streak.columns();
            }
            QuestInput::Claim { quest_id } => claimed = Some(quest_id),
            // The fact coming back through the topic (or decided under an older quest book):
            // recorded, so the quest never completes again; it wins over a decision of the
            // same batch, whose book may differ.
            QuestInput::Completed(q) => {
                let fact = Completed {
                    user_id: event.envelope.user_id,
                    quest_id: q.quest_id.clone(),
                    reward: q.reward,
                    event_id: event.envelope.event_id,
                    completed_at_ms: event.envelope.occurred_at,
                };
                self.completed.insert(q.quest_id.clone(), fact);
                return Outcome::Nothing;
            }
            QuestInput::Nothing => return Outcome::Nothing,
        }
        if let Some(id) = claimed {
            return match book.get(id) {
                Some(quest) if quest.claim && !self.completed.contains_key(id) => {
                    if self.progress.reached(quest.goal) {
                        Outcome::Completed(vec![self.complete(quest, event)])
                    } else {
                        Outcome::ClaimTooEarly
                    }
                }
                _ => Outcome::ClaimRefused,
            };
        }
        let due: Vec<&Quest> = book
            .iter()
            .filter(|q| !q.claim && !self.completed.contains_key(&q.id))
            .filter(|q| self.progress.reached(q.goal))
            .collect();
        if due.is_empty() {
            return Outcome::Nothing;
        }
        Outcome::Completed(due.into_iter().map(|q| self.complete(q, event)).collect())
    }

    /// Records `quest` as completed by `source` and returns the event that says so.
    fn complete(&mut self, quest: &Quest, source: &Event) -> Event {
        let envelope = Envelope {
            event_id: completion_id(source.envelope.user_id, &quest.id),
            user_id: source.envelope.user_id,
            // The source's times, so a re-emission is the same event byte for byte.
            occurred_at: source.envelope.occurred_at,
            recorded_at: source.envelope.recorded_at,
        };
        self.completed.insert(
            quest.id.clone(),
            Completed {
                user_id: envelope.user_id,
                quest_id: quest.id.clone(),
                reward: quest.reward,
                event_id: envelope.event_id,
                completed_at_ms: envelope.occurred_at,
            },
        );
        let payload = QuestCompleted {
            quest_id: quest.id.clone(),
            reward: quest.reward,
            source_event_id: source.envelope.event_id,
        };
        Event {
            envelope,
            payload: payload.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use surge_schemas::{DailyCheckedIn, Payload, QuestClaimed, SessionStarted, TapsSubmitted};

    use super::*;

    fn event(payload: Payload) -> Event {
        Event {
            envelope: Envelope {
                event_id: Uuid::now_v7(),
                user_id: 7,
                occurred_at: 1_000,
                recorded_at: 2_000,
            },
            payload,
        }
    }

    fn taps(count: i32) -> Event {
        event(TapsSubmitted { count }.into())
    }

    fn completed_ids(outcome: &Outcome) -> Vec<String> {
        match outcome {
            Outcome::Completed(events) => events
                .iter()
                .map(|e| match &e.payload {
                    Payload::QuestCompleted(q) => q.quest_id.clone(),
                    other => panic!("{other:?}"),
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    #[test]
    fn reaching_a_goal_completes_its_quest_once_under_one_id_per_user_and_quest() {
        let book = QuestBook::builtin();
        let mut user = UserQuests::default();
        assert_eq!(user.apply(&book, &taps(999)), Outcome::Nothing);
        let source = taps(1);
        let outcome = user.apply(&book, &source);
        assert_eq!(completed_ids(&outcome), ["tap_1000"]);
        let Outcome::Completed(events) = &outcome else {
            unreachable!()
        };
        assert_eq!(events[0].envelope.event_id, completion_id(7, "tap_1000"));
        assert_ne!(completion_id(7, "tap_1000"), completion_id(8, "tap_1000"));
        assert_ne!(completion_id(7, "tap_1000"), completion_id(7, "streak_3"));
        assert_eq!(events[0].envelope.user_id, 7);
        assert_eq!(
            user.apply(&book, &taps(1000)),
            Outcome::Nothing,
            "never again"
        );

        let mut replayed = UserQuests::default();
        replayed.apply(&book, &taps(999));
        assert_eq!(
            replayed.apply(&book, &source),
            outcome,
            "a replay decides the same"
        );
    }

    #[test]
    fn streaks_count_consecutive_days_and_referrals_count_credits() {
        let book = QuestBook::builtin();
        let mut user = UserQuests::default();
        let check_in = |day| event(DailyCheckedIn { day }.into());
        assert_eq!(user.apply(&book, &check_in(10)), Outcome::Nothing);
        assert_eq!(user.apply(&book, &check_in(11)), Outcome::Nothing);
        assert_eq!(
            user.apply(&book, &check_in(13)),
            Outcome::Nothing,
            "a gap restarts"
        );
        user.apply(&book, &check_in(14));
        assert_eq!(
            completed_ids(&user.apply(&book, &check_in(15))),
            ["streak_3"]
        );
        let credit = || {
            event(
                surge_schemas::ReferralCredited {
                    referred_user_id: 9,
                    source_event_id: Uuid::now_v7(),
                }
                .into(),
            )
        };
        user.apply(&book, &credit());
        user.apply(&book, &credit());
        assert_eq!(completed_ids(&user.apply(&book, &credit())), ["invite_3"]);
    }

    #[test]
    fn a_claim_quest_completes_only_when_claimed_with_its_goal_met() {
        let book = QuestBook::builtin();
        let mut user = UserQuests::default();
        let session = || {
            event(
                SessionStarted {
                    first_name: "A".into(),
                    last_name: None,
                    username: None,
                    language_code: None,
                    is_premium: false,
                    photo_url: None,
                    allows_write_to_pm: false,
                    start_param: None,
                    platform: None,
                }
                .into(),
            )
        };
        let claim = |id: &str| {
            event(
                QuestClaimed {
                    quest_id: id.into(),
                }
                .into(),
            )
        };
        for _ in 0..4 {
            assert_eq!(user.apply(&book, &session()), Outcome::Nothing);
        }
        assert_eq!(user.apply(&book, &claim("open_5")), Outcome::ClaimTooEarly);
        assert_eq!(
            user.apply(&book, &session()),
            Outcome::Nothing,
            "no claim, no completion"
        );
        assert_eq!(
            completed_ids(&user.apply(&book, &claim("open_5"))),
            ["open_5"]
        );
        assert_eq!(
            user.apply(&book, &claim("open_5")),
            Outcome::ClaimRefused,
            "once"
        );
        assert_eq!(
            user.apply(&book, &claim("tap_1000")),
            Outcome::ClaimRefused,
            "not a claim quest"
        );
        assert_eq!(user.apply(&book, &claim("nope")), Outcome::ClaimRefused);
    }

    #[test]
    fn a_completion_already_on_the_topic_is_never_decided_again() {
        let book = QuestBook::builtin();
        let mut user = UserQuests::default();
        let fact = event(
            QuestCompleted {
                quest_id: "tap_1000".into(),
                reward: 10,
                source_event_id: Uuid::now_v7(),
            }
            .into(),
        );
        assert_eq!(user.apply(&book, &fact), Outcome::Nothing);
        assert_eq!(user.completed["tap_1000"].reward, 10);
        assert_eq!(user.apply(&book, &taps(1000)), Outcome::Nothing);
    }
}
