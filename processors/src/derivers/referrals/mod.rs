//! The `referrals` deriver: a new user's first SessionStarted naming a valid referrer
//! (`start_param` = `ref_<user id>`) becomes ReferralCredited, keyed by the referrer.
//! Self-referrals, repeated sessions, unknown referrers and sessions without a referrer produce
//! nothing and are counted in `processor_derived_outcomes_total`.
//!
//! Delivery guarantee: exactly once in effect, on any broker (this is the mode for brokers
//! without Kafka transactions, such as tansu 0.6).
//! - The decision is deterministic on replay: each user's first-session event id is kept in
//!   PostgreSQL, so the same source event always decides the same way, and the derived event's
//!   id is computed from the source event's id ([`derived_event_id`]).
//! - The derived events are acknowledged by the broker (acks=all) *before* the runtime commits
//!   the batch's state and position in one transaction. A crash in between replays the batch and
//!   emits the same events again, with the same ids; every projection deduplicates by event id,
//!   so the duplicate record changes nothing.

mod decide;
mod store;

pub use decide::{Outcome, decide, derived_event_id};

use std::collections::HashSet;
use std::sync::Arc;

use prometheus::IntCounterVec;
use surge_producers::kafka::{EventLog, TraceMeta};
use surge_schemas::Payload;

use crate::runtime::{ApplyError, PgProjection, Record};

pub struct Referrals {
    log: Arc<EventLog>,
    outcomes: IntCounterVec,
}

impl Referrals {
    /// `outcomes` is labelled by `processor` and `outcome`.
    pub fn new(log: Arc<EventLog>, outcomes: IntCounterVec) -> Self {
        Referrals { log, outcomes }
    }
}

impl PgProjection for Referrals {
    const NAME: &'static str = "referrals";
    const VERSION: u32 = 1;

    fn migrations() -> &'static [&'static str] {
        &[include_str!("sql/users.sql")]
    }

    async fn apply(
        &self,
        tx: &mut sqlx::PgConnection,
        records: &[Record],
    ) -> Result<(), ApplyError> {
        let table = format!("{}_users", Self::table_prefix());
        let sessions: Vec<&Record> = records
            .iter()
            .filter(|r| matches!(r.event.payload, Payload::SessionStarted(_)))
            .collect();
        if sessions.is_empty() {
            return Ok(());
        }
        let firsts = store::record_first_sessions(tx, &table, &sessions).await?;
        let named: HashSet<i64> = sessions
            .iter()
            .filter_map(|r| match &r.event.payload {
                Payload::SessionStarted(s) => decide::named_referrer(s.start_param.as_deref()),
                _ => None,
            })
            .collect();
        let known = store::known_users(tx, &table, &named).await?;
        let mut derived = Vec::new();
        for record in sessions {
            let first = firsts.get(&record.event.envelope.user_id).copied();
            let outcome = decide(&record.event, first, |id| known.contains(&id));
            self.outcomes
                .with_label_values(&["referrals.v1", outcome.label()])
                .inc();
            if let Outcome::Credit(event) = outcome {
                derived.push(*event);
            }
        }
        // Emit before the runtime commits: see the module header for why this order is safe.
        for event in &derived {
            self.log
                .append(std::slice::from_ref(event), &TraceMeta::default())
                .await
                .map_err(|e| {
                    ApplyError::Transient(format!("emitting ReferralCredited failed: {e}"))
                })?;
        }
        Ok(())
    }
}
