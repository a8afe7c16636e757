//! Per-user parking: when a projection version dead-letters a user's event, that user's later
//! events wait for it, in order, while every other user flows.
//!
//! Guarantees, kept by both sinks (`pg_parking`, `redis_parking`):
//! - **Durable and atomic.** A version keeps its parked events beside its data (the table
//!   `<name>_v<N>_parked`, or the list `<prefix>:<name>:v<N>:parked:<user>` with the hash
//!   `...:parked` of parked users), written in the same transaction or script as the batch and
//!   the position that moves past them. A restart finds them; a rebuilt version parks its own by
//!   the same rule, and dropping a version drops them.
//! - **In order.** The event that parks a user (its *head*) keeps the reason it was dead-lettered
//!   with; the user's later events of the same version queue behind it by partition offset.
//!   An event of a user is parked when the user has parked events, or when an earlier event of
//!   the same batch parks them.
//! - **Released exactly once, by an operator** (`surge dlq`). `retry` applies the user's parked
//!   events in order, each with its removal from the queue in one transaction (script), under
//!   the partition's position lock (PostgreSQL) or a per-partition parking epoch (Redis) so a
//!   processor's batch and a release never interleave. It stops at the first event the store or
//!   projection rejects again: that one stays first, with the new reason, and the user stays
//!   parked. `skip` drops the head, then does what `retry` does with the rest. Released events
//!   are deduplicated by event id like any other, so an event applied before (a duplicate
//!   record) changes nothing.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use surge_schemas::{Envelope, Event, EventType, Payload};
use uuid::Uuid;

use super::Record;
use super::sink::SinkError;

/// An event a version holds back, with where it came from and, for the head, why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Parked {
    pub user_id: i64,
    pub partition: i32,
    pub offset: i64,
    pub event_id: Uuid,
    /// The short name, e.g. `ProfileUpdated`.
    pub event_type: String,
    pub occurred_at: i64,
    pub recorded_at: i64,
    /// The payload's fields as JSON (`Payload::to_json`), so the event is read back exactly.
    pub payload: serde_json::Value,
    /// Why the event was dead-lettered (or rejected again when retried): set on the event that
    /// parked its user, `None` on the events waiting behind it.
    pub reason: Option<String>,
}

/// What to do with a user's parked events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// Apply them in order.
    Retry,
    /// Drop the first one (the dead-lettered event), then apply the rest in order.
    Skip,
}

/// What releasing one user's parked events did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Released {
    pub applied: usize,
    pub skipped: usize,
    /// Events still parked: the one rejected again and those behind it.
    pub still_parked: usize,
    /// Why the first of those was rejected again.
    pub rejected: Option<String>,
}

impl Parked {
    /// `record` as a parked event; `reason` for the event that parks its user.
    pub fn of(record: &Record, reason: Option<String>) -> Self {
        let envelope = &record.event.envelope;
        Parked {
            user_id: envelope.user_id,
            partition: record.partition,
            offset: record.offset,
            event_id: envelope.event_id,
            event_type: record.event.event_type().name().to_owned(),
            occurred_at: envelope.occurred_at,
            recorded_at: envelope.recorded_at,
            payload: record.event.payload.to_json(),
            reason,
        }
    }

    /// The record as the processor had it.
    pub fn record(&self) -> Result<Record, ParkedError> {
        let event_type = EventType::from_name(&self.event_type)
            .ok_or_else(|| ParkedError::UnknownType(self.event_type.clone()))?;
        let payload = Payload::from_json(event_type, self.payload.clone())?;
        Ok(Record {
            partition: self.partition,
            offset: self.offset,
            event: Event {
                envelope: Envelope {
                    event_id: self.event_id,
                    user_id: self.user_id,
                    occurred_at: self.occurred_at,
                    recorded_at: self.recorded_at,
                },
                payload,
            },
        })
    }
}

/// A stored parked event this build cannot read back.
#[derive(Debug, thiserror::Error)]
pub enum ParkedError {
    #[error("unknown event type {0:?}")]
    UnknownType(String),
    #[error("unreadable payload: {0}")]
    Payload(#[from] serde_json::Error),
}

/// Splits a batch's fresh records into those to apply and those to park, in offset order: a
/// record is parked when its user is in `parked_users`, or when one of `dead` (the batch's
/// dead-lettered events, parked as heads) has the same user and an earlier offset.
pub(crate) fn split<'a>(
    records: Vec<&'a Record>,
    parked_users: &HashSet<i64>,
    dead: &[Parked],
) -> (Vec<&'a Record>, Vec<&'a Record>) {
    let mut first_dead: HashMap<i64, i64> = HashMap::new();
    for d in dead {
        let at = first_dead.entry(d.user_id).or_insert(d.offset);
        *at = (*at).min(d.offset);
    }
    records.into_iter().partition(|r| {
        let user = r.event.envelope.user_id;
        !parked_users.contains(&user) && first_dead.get(&user).is_none_or(|at| r.offset < *at)
    })
}

/// The users of `records` and `dead`, each once.
pub(crate) fn users(records: &[&Record], dead: &[Parked]) -> Vec<i64> {
    let all: HashSet<i64> = (records.iter().map(|r| r.event.envelope.user_id))
        .chain(dead.iter().map(|d| d.user_id))
        .collect();
    all.into_iter().collect()
}

/// The parked events of a batch: its dead letters, then its records waiting for a parked user.
pub(crate) fn to_park(dead: &[Parked], waiting: Vec<&Record>) -> Vec<Parked> {
    let mut parked: Vec<Parked> = dead.to_vec();
    parked.extend(waiting.into_iter().map(|r| Parked::of(r, None)));
    parked
}

/// The reason a released event is rejected again, or the error when it is not the event's
/// fault (the store is down: the release fails and changes nothing more).
pub(crate) fn rejected_again(error: SinkError) -> Result<String, SinkError> {
    match error {
        SinkError::Rejected(source) => Ok(format!("the store rejected the event: {source}")),
        SinkError::Poison { reason, .. } => Ok(reason),
        other => Err(other),
    }
}

#[cfg(test)]
mod tests {
    use surge_schemas::{ProfileUpdated, TapsSubmitted};

    use super::*;

    fn record(user_id: i64, offset: i64) -> Record {
        Record {
            partition: 3,
            offset,
            event: Event {
                envelope: Envelope {
                    event_id: Uuid::from_u128(offset as u128),
                    user_id,
                    occurred_at: 1_000 + offset,
                    recorded_at: 2_000 + offset,
                },
                payload: TapsSubmitted { count: 7 }.into(),
            },
        }
    }

    fn offsets(records: &[&Record]) -> Vec<i64> {
        records.iter().map(|r| r.offset).collect()
    }

    #[test]
    fn a_parked_users_events_wait_and_the_others_apply() {
        let batch: Vec<Record> = [(1, 10), (2, 11), (1, 12), (3, 13)]
            .map(|(u, o)| record(u, o))
            .into();
        let (apply, park) = split(batch.iter().collect(), &HashSet::from([1]), &[]);
        assert_eq!(offsets(&apply), [11, 13]);
        assert_eq!(offsets(&park), [10, 12]);
    }

    #[test]
    fn a_dead_letter_parks_its_users_later_events_of_the_batch_not_the_earlier_ones() {
        let batch: Vec<Record> = [(1, 10), (2, 11), (1, 13), (2, 14)]
            .map(|(u, o)| record(u, o))
            .into();
        let dead = [Parked::of(&record(1, 12), Some("rejected".into()))];
        let (apply, park) = split(batch.iter().collect(), &HashSet::new(), &dead);
        assert_eq!(offsets(&apply), [10, 11, 14]);
        assert_eq!(offsets(&park), [13]);
        assert_eq!(users(&park, &dead), [1]);
        let parked = to_park(&dead, park);
        assert_eq!(
            parked.iter().map(|p| p.offset).collect::<Vec<_>>(),
            [12, 13]
        );
        assert_eq!(parked[1].reason, None);
    }

    #[test]
    fn a_parked_event_reads_back_as_the_same_record_nul_bytes_included() {
        let mut original = record(42, 7);
        original.event.payload = ProfileUpdated {
            display_name: Some("a\u{0}b".into()),
            language_code: None,
            photo_url: Some("https://x/\u{0}y".into()),
        }
        .into();
        let parked = Parked::of(&original, Some("0x00".into()));
        let stored = serde_json::to_string(&parked).unwrap();
        assert!(
            !stored.contains('\u{0}'),
            "stored as JSON escapes: {stored}"
        );
        let back: Parked = serde_json::from_str(&stored).unwrap();
        assert_eq!(back.record().unwrap(), original);
        assert_eq!(back.reason.as_deref(), Some("0x00"));
    }
}
