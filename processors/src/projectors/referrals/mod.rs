//! The `referrals` deriver: a new user's first SessionStarted naming a valid referrer
//! (`start_param` = `ref_<user id>`) becomes ReferralCredited, keyed by the referrer.
//! Self-referrals, repeated sessions, unknown referrers and sessions without a referrer produce
//! nothing and are counted in `processor_derived_outcomes_total`.
//!
//! Delivery guarantee: exactly once, in one of two modes ([`crate::emit`]):
//! - Transactional (brokers with Kafka transactions): the derived events and the source offset
//!   commit in one Kafka transaction, so each is emitted exactly once across crashes.
//! - Idempotent (any broker, also those without transactions): exactly once in effect. The derived events are
//!   acknowledged (acks=all) *before* the runtime commits the batch's state and position; a
//!   crash in between replays the batch and emits the same events again with the same ids, and
//!   every projection deduplicates by event id, so the duplicate record changes nothing.
//!
//! Both rest on the decision being deterministic on replay: each user's first-session event id
//! is kept in PostgreSQL, so the same source event decides the same way, and the derived
//! event's id is computed from the source event's id ([`derived_event_id`]).

mod decide;
mod store;

pub use decide::{Outcome, decide, derived_event_id};

use std::collections::HashSet;
use std::sync::Arc;

use prometheus::IntCounterVec;
use surge_projections::{ProjectionId, naming};
use surge_schemas::Event;

use crate::decisions;
use crate::emit::{Derived, Emitter};
use crate::projectors::{Projector, SinkContext};
use crate::runtime::{ApplyError, PgProjection, PgSink, Record};

pub struct Referrals {
    version: u32,
    emitter: Arc<Emitter>,
    outcomes: IntCounterVec,
}

impl Referrals {
    /// The deriver writing `version`'s tables. `outcomes` is labelled by `processor` and
    /// `outcome`.
    pub fn new(version: u32, emitter: Arc<Emitter>, outcomes: IntCounterVec) -> Self {
        Referrals {
            version,
            emitter,
            outcomes,
        }
    }
}

impl Projector for Referrals {
    type Sink = PgSink<Self>;

    fn sink(version: u32, context: &SinkContext) -> Self::Sink {
        let emitter = context.emitter(Self::ID, version);
        context.pg_sink(Self::new(
            version,
            emitter,
            context.metrics.derived_outcomes.clone(),
        ))
    }
}

impl PgProjection for Referrals {
    const ID: ProjectionId = ProjectionId::Referrals;

    fn version(&self) -> u32 {
        self.version
    }

    /// Only a user's sessions can lead to a credit ([`decisions::referral_source`]); every
    /// other event is ignored.
    fn idempotent(event: &Event) -> bool {
        decisions::referral_source(&event.payload).is_none()
    }

    /// A rebuild decides (and records first sessions) as the serving version does, but emits
    /// nothing until it serves.
    fn set_serving(&self, serving: bool) {
        self.emitter.suppress(!serving);
    }

    async fn apply(
        &self,
        tx: &mut sqlx::PgConnection,
        records: &[Record],
    ) -> Result<(), ApplyError> {
        let table = format!("{}_users", self.table_prefix());
        let processor = naming::processor_id(Self::NAME, self.version);
        let sessions: Vec<&Record> = records
            .iter()
            .filter(|r| decisions::referral_source(&r.event.payload).is_some())
            .collect();
        if sessions.is_empty() {
            return Ok(());
        }
        let firsts = store::record_first_sessions(tx, &table, &sessions).await?;
        let named: HashSet<i64> = sessions
            .iter()
            .filter_map(|r| decisions::referral_source(&r.event.payload))
            .filter_map(|s| decide::named_referrer(s.start_param.as_deref()))
            .collect();
        let known = store::known_users(tx, &table, &named).await?;
        let mut derived = Vec::new();
        for record in sessions {
            let first = firsts.get(&record.event.envelope.user_id).copied();
            let outcome = decide(&record.event, first, |id| known.contains(&id));
            self.outcomes
                .with_label_values(&[processor.as_str(), outcome.label()])
                .inc();
            if let Outcome::Credit(event) = outcome {
                derived.push(Derived::from(record, *event));
            }
        }
        self.emitter.emit_for(records, derived).await
    }
}
