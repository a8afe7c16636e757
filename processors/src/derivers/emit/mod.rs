//! How derivers put the events they derive back on the topic. Two modes; configuration or the
//! broker's capability chooses ([`Delivery`]).
//!
//! - **Transactional** (Apache Kafka, Redpanda, librdkafka's mock cluster): a consume-transform-
//!   produce transaction per partition batch. The derived events and the batch's source offset
//!   (`send_offsets_to_transaction`) commit together, so the events are emitted exactly once
//!   even across crashes. See [`transactional`].
//! - **Idempotent** (any broker, including tansu 0.6, whose EndTxn is not implemented): events
//!   are acknowledged with acks=all before the runtime commits the batch. A crash in between
//!   re-emits them with the same, deterministic event ids, and every projection deduplicates by
//!   event id, so a duplicate record changes nothing downstream.
//!
//! In both modes the emit happens inside the runtime's PostgreSQL transaction for the batch,
//! after the fencing check, so only the partition's current owner ever emits.

mod probe;
mod transactional;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use prometheus::IntCounterVec;
use rdkafka::error::KafkaError;
use surge_producers::kafka::{EventLog, ProducerSettings, TraceMeta};
use surge_schemas::{Codec, Event};

use crate::runtime::ApplyError;

pub use probe::broker_supports_transactions;
pub use transactional::{TransactionalEmitter, still_to_emit};

/// How a deriver emits; `Auto` asks the broker at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Delivery {
    #[default]
    Auto,
    Transactional,
    Idempotent,
}

impl FromStr for Delivery {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Delivery::Auto),
            "transactional" => Ok(Delivery::Transactional),
            "idempotent" => Ok(Delivery::Idempotent),
            other => Err(format!(
                "unknown delivery mode {other:?}; expected auto, transactional or idempotent"
            )),
        }
    }
}

impl fmt::Display for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Delivery::Auto => "auto",
            Delivery::Transactional => "transactional",
            Delivery::Idempotent => "idempotent",
        })
    }
}

/// A derived event and the offset of the source event it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Derived {
    pub source_offset: i64,
    pub event: Event,
}

pub enum Emitter {
    Idempotent(EventLog),
    Transactional(Box<TransactionalEmitter>),
}

/// Where a deriver emits: the topic's producer settings and the deriver's id (`referrals.v1`),
/// which names its transactional ids and the group its emitted offsets are kept under.
pub struct EmitterSettings {
    pub producer: ProducerSettings,
    pub deriver_id: String,
}

impl Emitter {
    /// Builds the emitter for `delivery`; `Auto` runs one probe transaction against the broker.
    pub async fn connect(
        delivery: Delivery,
        settings: EmitterSettings,
        codec: Arc<Codec>,
        transactions: IntCounterVec,
    ) -> Result<Emitter, KafkaError> {
        let transactional = match delivery {
            Delivery::Transactional => true,
            Delivery::Idempotent => false,
            Delivery::Auto => {
                let group = format!("{}.{}.probe", settings.producer.topic, settings.deriver_id);
                broker_supports_transactions(&settings.producer, &group).await?
            }
        };
        tracing::info!(deriver = %settings.deriver_id, %delivery, transactional, "Deriver emit mode chosen.");
        if transactional {
            let emitter = TransactionalEmitter::new(settings, codec, transactions)?;
            Ok(Emitter::Transactional(Box::new(emitter)))
        } else {
            Ok(Emitter::Idempotent(EventLog::new(
                settings.producer,
                codec,
            )?))
        }
    }

    /// Emits `derived` (all from one partition's batch, which ends before `next_offset`).
    /// Called inside the runtime's transaction for that batch, before it commits.
    pub async fn emit(
        &self,
        partition: i32,
        derived: Vec<Derived>,
        next_offset: i64,
    ) -> Result<(), ApplyError> {
        match self {
            Emitter::Idempotent(log) => {
                for d in &derived {
                    log.append(std::slice::from_ref(&d.event), &TraceMeta::default())
                        .await
                        .map_err(|e| {
                            ApplyError::Transient(format!("emitting a derived event failed: {e}"))
                        })?;
                }
                Ok(())
            }
            Emitter::Transactional(emitter) => emitter.emit(partition, derived, next_offset).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_modes_parse_and_print_the_same_names() {
        for mode in [
            Delivery::Auto,
            Delivery::Transactional,
            Delivery::Idempotent,
        ] {
            assert_eq!(mode.to_string().parse::<Delivery>(), Ok(mode));
        }
        let error = "exactly-once".parse::<Delivery>().unwrap_err();
        assert!(
            error.contains("expected auto, transactional or idempotent"),
            "{error}"
        );
    }
}
