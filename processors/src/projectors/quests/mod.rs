//! The `quests` deriver: folds each user's events into their progress toward the quest book's
//! goals (`surge_projections::quests`), and when a goal is reached (or, for a quest the user
//! claims, claimed with its goal met) emits QuestCompleted, keyed by the user. Each quest
//! completes at most once per user: the completion is recorded in the same transaction as the
//! progress that reached it, and a QuestCompleted read back from the topic is recorded too.
//!
//! Delivery guarantee: exactly once, as for referral credits (see
//! [`crate::projectors::referrals`]): the decision is deterministic on replay (progress and
//! completions are kept in PostgreSQL with the partition's position), and the derived event's
//! id is computed from the source event's id and the quest id, so a re-emission after a crash
//! is the same event and every projection deduplicates it.

mod decide;

pub use decide::{Outcome, QuestInput, UserQuests, completion_id};

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use prometheus::IntCounterVec;
use surge_projections::naming::table_prefix;
use surge_projections::quests::{self, QuestStore};
use surge_projections::{ProjectionId, naming};
use surge_schemas::Event;
use surge_schemas::quests::QuestBook;

use crate::decisions;
use crate::emit::{Derived, Emitter};
use crate::projectors::economy;
use crate::projectors::{Projector, SinkContext};
use crate::runtime::{ApplyError, PgProjection, PgSink, Record};

pub struct Quests {
    version: u32,
    book: QuestBook,
    store: QuestStore,
    emitter: Arc<Emitter>,
    outcomes: IntCounterVec,
}

impl Quests {
    /// The deriver writing `version`'s tables. `outcomes` is labelled by `processor` and
    /// `outcome`.
    pub fn new(
        version: u32,
        book: QuestBook,
        emitter: Arc<Emitter>,
        outcomes: IntCounterVec,
    ) -> Self {
        Quests {
            version,
            book,
            store: QuestStore::new(&table_prefix(Self::NAME, version)),
            emitter,
            outcomes,
        }
    }
}

impl Projector for Quests {
    type Sink = PgSink<Self>;

    fn sink(version: u32, context: &SinkContext) -> Self::Sink {
        let emitter = context.emitter(Self::ID, version);
        let outcomes = context.metrics.derived_outcomes.clone();
        context.pg_sink(Self::new(
            version,
            context.game.quests.clone(),
            emitter,
            outcomes,
        ))
    }
}

impl PgProjection for Quests {
    const ID: ProjectionId = ProjectionId::Quests;

    fn version(&self) -> u32 {
        self.version
    }

    /// See [`QuestInput::idempotent`].
    fn idempotent(event: &Event) -> bool {
        decisions::quest_input(&event.payload).idempotent()
    }

    /// A rebuild decides (and records completions) as the serving version does, but emits
    /// nothing until it serves.
    fn set_serving(&self, serving: bool) {
        self.emitter.suppress(!serving);
    }

    async fn apply(
        &self,
        tx: &mut sqlx::PgConnection,
        records: &[Record],
    ) -> Result<(), ApplyError> {
        let batch = records;
        for record in batch {
            // Refuses what no rule can count (a negative tap count) before anything changes.
            economy::priced(&record.event)?;
        }
        let records: Vec<&Record> = batch
            .iter()
            .filter(|r| decisions::quest_input(&r.event.payload) != QuestInput::Nothing)
            .collect();
        if records.is_empty() {
            return Ok(());
        }
        let mut users: Vec<i64> = records.iter().map(|r| r.event.envelope.user_id).collect();
        users.sort_unstable();
        users.dedup();
        let mut progress = self.store.progress(&mut *tx, &users).await?;
        let mut state: HashMap<i64, UserQuests> = users
            .iter()
            .map(|&user_id| {
                let progress = progress.remove(&user_id).unwrap_or(quests::Progress {
                    user_id,
                    ..Default::default()
                });
                (
                    user_id,
                    UserQuests {
                        progress,
                        completed: HashMap::new(),
                    },
                )
            })
            .collect();
        let mut stored = HashSet::new();
        for done in self.store.completed(&mut *tx, &users).await? {
            if let Some(user) = state.get_mut(&done.user_id) {
                stored.insert((done.user_id, done.quest_id.clone()));
                user.completed.insert(done.quest_id.clone(), done);
            }
        }
        // While rebuilding nothing is emitted, so only completions read back from the topic are
        // recorded: a decision of a rebuild whose quest book differs from the one the history
        // was decided with would otherwise show a quest as completed that nobody was paid for.
        // Once serving, the version decides again; the completion's id is one per user and
        // quest, so a completion decided by both versions is applied once.
        let rebuilding = self.emitter.suppressed();
        let facts: HashSet<(i64, &str)> = records
            .iter()
            .filter_map(|r| match decisions::quest_input(&r.event.payload) {
                QuestInput::Completed(q) => Some((r.event.envelope.user_id, q.quest_id.as_str())),
                _ => None,
            })
            .collect();

        let processor = naming::processor_id(Self::NAME, self.version);
        let mut derived = Vec::new();
        for record in &records {
            let user = state
                .get_mut(&record.event.envelope.user_id)
                .expect("every user of the batch is loaded");
            let outcome = user.apply(&self.book, &record.event);
            if outcome != Outcome::Nothing {
                self.outcomes
                    .with_label_values(&[processor.as_str(), outcome.label()])
                    .inc();
            }
            if let Outcome::Completed(events) = outcome {
                derived.extend(events.into_iter().map(|event| Derived::from(record, event)));
            }
        }

        let rows: Vec<quests::Progress> = state.values().map(|u| u.progress.clone()).collect();
        self.store.write_progress(&mut *tx, &rows).await?;
        let new: Vec<quests::Completed> = state
            .into_values()
            .flat_map(|u| u.completed.into_values())
            .filter(|c| !stored.contains(&(c.user_id, c.quest_id.clone())))
            .filter(|c| !rebuilding || facts.contains(&(c.user_id, c.quest_id.as_str())))
            .collect();
        self.store.record_completed(&mut *tx, &new).await?;
        self.emitter.emit_for(batch, derived).await
    }
}
