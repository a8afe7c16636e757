//! Derived events in Kafka transactions, one producer per source partition.
//!
//! Delivery guarantee: exactly once, on brokers with transactions. Per partition batch:
//! begin; append the derived events; `send_offsets_to_transaction(next_offset)` under the group
//! `<topic>.<deriver>.emitted`; commit. All of it runs inside the runtime's PostgreSQL
//! transaction for the batch, which commits afterwards. So:
//! - A crash before the Kafka commit leaves the transaction open until the next owner's
//!   `init_transactions` (or the transaction timeout) aborts it; read_committed readers never
//!   see its events, and PostgreSQL rolled back too: the batch replays from scratch.
//! - A crash after the Kafka commit but before PostgreSQL's replays the batch against state that
//!   never saw it. The partition's emitted offset, read when its producer starts, says which
//!   source events already have their derived events committed; those are not emitted again.
//! - Fencing: the producer of a partition (transactional id `<topic>.<deriver>.p<N>`) is created
//!   by whoever applies that partition's batch, which the runtime only lets the current owner
//!   do (generation checked, position row locked). Its `init_transactions` bumps the epoch, so a
//!   previous owner's producer is fenced and its next commit fails.
//!
//! Any failure drops the partition's producer after a best-effort abort; the runtime retries the
//! batch, and the next attempt starts a fresh producer and re-reads the emitted offset.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::IntCounterVec;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerGroupMetadata};
use rdkafka::error::KafkaError;
use rdkafka::producer::Producer;
use rdkafka::{Offset, TopicPartitionList};
use surge_kafka::{EventLog, ProducerSettings, TraceMeta};
use surge_schemas::{Codec, Event};

use super::{Derived, EmitterSettings};
use crate::runtime::ApplyError;

/// Bound on each transaction control call (init, offsets, commit, abort).
const CONTROL_TIMEOUT: Duration = Duration::from_secs(10);

/// The derived events still to emit: those whose source is at or past `emitted_until`, the
/// partition's committed emitted offset (everything before it is already in a committed
/// transaction).
fn still_to_emit(derived: Vec<Derived>, emitted_until: i64) -> Vec<Event> {
    derived
        .into_iter()
        .filter(|d| d.source_offset >= emitted_until)
        .map(|d| d.event)
        .collect()
}

struct PartitionProducer {
    log: EventLog,
    emitted_until: AtomicI64,
}

pub(super) struct TransactionalEmitter {
    settings: EmitterSettings,
    codec: Arc<Codec>,
    /// Never subscribes: it reads the emitted offsets and names their group in transactions.
    offsets: Arc<BaseConsumer>,
    group: Arc<ConsumerGroupMetadata>,
    producers: Mutex<HashMap<i32, Arc<PartitionProducer>>>,
    /// Labelled by `processor` and `outcome` (`committed`, `aborted`).
    transactions: IntCounterVec,
}

impl TransactionalEmitter {
    pub(super) fn new(
        settings: EmitterSettings,
        codec: Arc<Codec>,
        transactions: IntCounterVec,
    ) -> Result<Self, KafkaError> {
        let group_id = settings.scoped("emitted");
        let offsets: BaseConsumer =
            surge_kafka::manual_commit_consumer_config(&settings.producer.brokers, &group_id)
                // Makes the offset fetch wait for pending transactional commits (KIP-447).
                .set("isolation.level", "read_committed")
                .create()?;
        let group = offsets
            .group_metadata()
            .ok_or(KafkaError::ClientCreation(format!(
                "no group metadata for {group_id}"
            )))?;
        Ok(TransactionalEmitter {
            settings,
            codec,
            offsets: Arc::new(offsets),
            group: Arc::new(group),
            producers: Mutex::new(HashMap::new()),
            transactions,
        })
    }

    pub(super) async fn emit(
        &self,
        partition: i32,
        derived: Vec<Derived>,
        next_offset: i64,
    ) -> Result<(), ApplyError> {
        let producer = self.producer(partition).await?;
        let fresh = still_to_emit(derived, producer.emitted_until.load(Ordering::Acquire));
        if fresh.is_empty() {
            return Ok(());
        }
        let outcome = self
            .transact(&producer, partition, &fresh, next_offset)
            .await;
        let label = if outcome.is_ok() {
            producer.emitted_until.store(next_offset, Ordering::Release);
            "committed"
        } else {
            let log = producer.log.producer().clone();
            let _ = blocking(move || log.abort_transaction(CONTROL_TIMEOUT)).await;
            self.producers
                .lock()
                .expect("producers lock")
                .remove(&partition);
            "aborted"
        };
        self.transactions
            .with_label_values(&[self.settings.deriver_id.as_str(), label])
            .inc();
        outcome.map_err(|e| {
            ApplyError::Transient(format!(
                "the transaction emitting derived events of partition {partition} failed: {e}"
            ))
        })
    }

    async fn transact(
        &self,
        producer: &PartitionProducer,
        partition: i32,
        events: &[Event],
        next_offset: i64,
    ) -> Result<(), String> {
        let control = producer.log.producer().clone();
        blocking(move || control.begin_transaction()).await?;
        producer
            .log
            .append(events, &TraceMeta::default())
            .await
            .map_err(|e| e.to_string())?;
        let mut offsets = TopicPartitionList::new();
        offsets
            .add_partition_offset(
                &self.settings.producer.topic,
                partition,
                Offset::Offset(next_offset),
            )
            .map_err(|e| e.to_string())?;
        let (control, group) = (producer.log.producer().clone(), self.group.clone());
        blocking(move || {
            control.send_offsets_to_transaction(&offsets, &group, CONTROL_TIMEOUT)?;
            control.commit_transaction(CONTROL_TIMEOUT)
        })
        .await
    }

    /// The partition's producer, started (fencing older owners) on first use.
    async fn producer(&self, partition: i32) -> Result<Arc<PartitionProducer>, ApplyError> {
        if let Some(p) = self
            .producers
            .lock()
            .expect("producers lock")
            .get(&partition)
        {
            return Ok(p.clone());
        }
        let started = self.start_producer(partition).await.map_err(|e| {
            ApplyError::Transient(format!(
                "starting the transactional producer of partition {partition} failed: {e}"
            ))
        })?;
        let started = Arc::new(started);
        self.producers
            .lock()
            .expect("producers lock")
            .insert(partition, started.clone());
        Ok(started)
    }

    async fn start_producer(&self, partition: i32) -> Result<PartitionProducer, String> {
        let settings = ProducerSettings {
            transactional_id: Some(self.settings.scoped(&format!("p{partition}"))),
            ..self.settings.producer.clone()
        };
        let log = EventLog::new(settings, self.codec.clone()).map_err(|e| e.to_string())?;
        // Aborts whatever an older producer with this id left open, and fences it.
        let control = log.producer().clone();
        blocking(move || control.init_transactions(CONTROL_TIMEOUT)).await?;
        let mut wanted = TopicPartitionList::new();
        wanted.add_partition(&self.settings.producer.topic, partition);
        let offsets = self.offsets.clone();
        let committed =
            blocking(move || offsets.committed_offsets(wanted, CONTROL_TIMEOUT)).await?;
        let emitted_until = committed
            .elements()
            .first()
            .and_then(|e| match e.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            })
            .unwrap_or(0);
        tracing::info!(deriver = %self.settings.deriver_id, partition, emitted_until, "Transactional producer started.");
        Ok(PartitionProducer {
            log,
            emitted_until: AtomicI64::new(emitted_until),
        })
    }
}

/// Runs a blocking librdkafka call off the async runtime's workers.
async fn blocking<T: Send + 'static>(
    call: impl FnOnce() -> Result<T, KafkaError> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(call)
        .await
        .map_err(|e| format!("blocking Kafka call panicked: {e}"))?
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use surge_schemas::{Envelope, ReferralCredited};
    use uuid::Uuid;

    fn derived(source_offset: i64) -> Derived {
        Derived {
            source_partition: 0,
            source_offset,
            event: Event {
                envelope: Envelope {
                    event_id: Uuid::from_u128(source_offset as u128),
                    user_id: 1,
                    occurred_at: 0,
                    recorded_at: 0,
                },
                payload: ReferralCredited {
                    referred_user_id: 2,
                    source_event_id: Uuid::nil(),
                }
                .into(),
            },
        }
    }

    #[test]
    fn sources_before_the_emitted_offset_are_not_emitted_again() {
        let batch = vec![derived(3), derived(7), derived(9)];
        let ids = |events: Vec<Event>| -> Vec<u128> {
            events
                .iter()
                .map(|e| e.envelope.event_id.as_u128())
                .collect()
        };
        assert_eq!(ids(still_to_emit(batch.clone(), 0)), [3, 7, 9]);
        assert_eq!(ids(still_to_emit(batch.clone(), 7)), [7, 9]);
        assert_eq!(ids(still_to_emit(batch.clone(), 8)), [9]);
        assert!(still_to_emit(batch, 10).is_empty());
    }
}
