//! How derivers put the events they derive back on the topic. Two modes; configuration or the
//! broker's capability chooses ([`Delivery`]).
//!
//! - **Transactional** (Apache Kafka, Redpanda, librdkafka's mock cluster): a consume-transform-
//!   produce transaction per partition batch. The derived events and the batch's source offset
//!   (`send_offsets_to_transaction`) commit together, so the events are emitted exactly once
//!   even across crashes. See `transactional.rs`.
//! - **Idempotent** (any broker, including Kafka-protocol brokers without transactions): events
//!   are acknowledged with acks=all before the runtime commits the batch. A crash in between
//!   re-emits them with the same, deterministic event ids, and every projection deduplicates by
//!   event id, so a duplicate record changes nothing downstream.
//!
//! In both modes the emit happens inside the runtime's PostgreSQL transaction for the batch,
//! after the fencing check, so only the partition's current owner ever emits.

mod probe;
mod transactional;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use prometheus::IntCounterVec;
use rdkafka::error::KafkaError;
use surge_kafka::{EventLog, ProducerSettings, TraceMeta};
use surge_schemas::{Codec, Event};
use tokio::sync::OnceCell;

use crate::runtime::{ApplyError, Record};

pub use probe::broker_supports_transactions;
use transactional::TransactionalEmitter;

/// How a deriver emits; `Auto` asks the broker before the first emit.
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

/// A derived event and where the source event it came from is.
#[derive(Debug, Clone, PartialEq)]
pub struct Derived {
    pub source_partition: i32,
    pub source_offset: i64,
    pub event: Event,
}

impl Derived {
    /// `event`, derived from `source`.
    pub fn from(source: &Record, event: Event) -> Self {
        Derived {
            source_partition: source.partition,
            source_offset: source.offset,
            event,
        }
    }
}

/// A deriver's emitter. The mode is settled on first use, not at start, so a broker that is
/// down when the processor starts delays the first emit (retried by the runtime like any store
/// outage) instead of failing the start.
pub struct Emitter {
    delivery: Delivery,
    settings: EmitterSettings,
    codec: Arc<Codec>,
    /// Labelled by `processor` and `outcome`.
    transactions: IntCounterVec,
    chosen: OnceCell<Chosen>,
    suppressed: AtomicBool,
}

enum Chosen {
    Idempotent(EventLog),
    Transactional(Box<TransactionalEmitter>),
}

/// Where a deriver emits: the topic's producer settings and the deriver's id (`referrals.v1`),
/// which names its transactional ids and the group its emitted offsets are kept under.
#[derive(Debug, Clone)]
pub struct EmitterSettings {
    pub producer: ProducerSettings,
    pub deriver_id: String,
}

impl EmitterSettings {
    /// `<topic>.<deriver id>.<suffix>`: how the deriver's groups and transactional ids are named.
    fn scoped(&self, suffix: &str) -> String {
        surge_projections::naming::deriver_scoped(&self.producer.topic, &self.deriver_id, suffix)
    }
}

impl Emitter {
    /// An emitter in `delivery` mode; `Auto` runs one probe transaction before the first emit.
    pub fn new(
        delivery: Delivery,
        settings: EmitterSettings,
        codec: Arc<Codec>,
        transactions: IntCounterVec,
    ) -> Emitter {
        Emitter {
            delivery,
            settings,
            codec,
            transactions,
            chosen: OnceCell::new(),
            suppressed: AtomicBool::new(false),
        }
    }

    /// Stops (`true`) or resumes emitting. A version being rebuilt emits nothing: every event
    /// it derives was derived and emitted by the serving version, and a rebuild never passes
    /// the serving version's position before it becomes the serving version itself (see
    /// `crate::versions::switch`).
    pub fn suppress(&self, suppressed: bool) {
        self.suppressed.store(suppressed, Ordering::Relaxed);
    }

    /// Whether it emits nothing (the deriver's version is being rebuilt).
    pub fn suppressed(&self) -> bool {
        self.suppressed.load(Ordering::Relaxed)
    }

    async fn choose(&self) -> Result<Chosen, KafkaError> {
        let settings = &self.settings;
        let transactional = match self.delivery {
            Delivery::Transactional => true,
            Delivery::Idempotent => false,
            Delivery::Auto => {
                broker_supports_transactions(&settings.producer, &settings.scoped("probe")).await?
            }
        };
        tracing::info!(deriver = %settings.deriver_id, delivery = %self.delivery, transactional, "Deriver emit mode chosen.");
        let codec = self.codec.clone();
        Ok(if transactional {
            let emitter =
                TransactionalEmitter::new(settings.clone(), codec, self.transactions.clone())?;
            Chosen::Transactional(Box::new(emitter))
        } else {
            Chosen::Idempotent(EventLog::new(settings.producer.clone(), codec)?)
        })
    }

    /// Emits what a deriver derived from `batch` (each partition's records in partition order;
    /// the runtime may apply several partitions' batches together), from its `apply`: inside the
    /// runtime's transaction, before it commits. Each partition's derived events are emitted on
    /// their own, as if its batch had been applied alone, with the end of its records as the
    /// batch's end. Derived events are acknowledged before the batch's state and position
    /// commit, so a crash in between (or a later partition's emit failing, which rolls the whole
    /// batch back) replays the batch and meets events already emitted, which are not emitted
    /// again (transactional) or are deduplicated downstream (idempotent); see the module header.
    /// Nothing derived, nothing done.
    pub async fn emit_for(
        &self,
        batch: &[Record],
        derived: Vec<Derived>,
    ) -> Result<(), ApplyError> {
        let mut by_partition: BTreeMap<i32, Vec<Derived>> = BTreeMap::new();
        for d in derived {
            by_partition.entry(d.source_partition).or_default().push(d);
        }
        for (partition, derived) in by_partition {
            let end = (batch.iter().rev())
                .find(|r| r.partition == partition)
                .map(|r| r.offset + 1)
                .ok_or_else(|| {
                    ApplyError::Transient(format!(
                        "derived from partition {partition}, which the batch does not hold"
                    ))
                })?;
            self.emit(partition, derived, end).await?;
        }
        Ok(())
    }

    /// Emits `derived` (all from one partition's batch, which ends before `next_offset`).
    /// Called inside the runtime's transaction for that batch, before it commits.
    pub async fn emit(
        &self,
        partition: i32,
        derived: Vec<Derived>,
        next_offset: i64,
    ) -> Result<(), ApplyError> {
        if self.suppressed.load(Ordering::Relaxed) {
            return Ok(());
        }
        let chosen = self.chosen.get_or_try_init(|| self.choose()).await;
        match chosen.map_err(|e| {
            ApplyError::Transient(format!("choosing how to emit derived events failed: {e}"))
        })? {
            Chosen::Idempotent(log) => {
                for d in &derived {
                    log.append(std::slice::from_ref(&d.event), &TraceMeta::default())
                        .await
                        .map_err(|e| {
                            ApplyError::Transient(format!("emitting a derived event failed: {e}"))
                        })?;
                }
                Ok(())
            }
            Chosen::Transactional(emitter) => emitter.emit(partition, derived, next_offset).await,
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
