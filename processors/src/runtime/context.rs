//! The consumer context: on assignment it claims the partitions in the projection's store and
//! starts them from the stored positions (never Kafka's committed offsets); on revocation it
//! forgets them. It also turns librdkafka statistics into per-partition lag gauges, and logs the
//! client's errors, quieted while they repeat (`repeats`).
//!
//! Fetching starts exactly at the stored position: Kafka answers a fetch inside a record batch
//! with that batch, and the client drops the records before the requested offset.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::metrics::ProcessorMetrics;
use super::repeats::QuietErrors;
use super::sink::{Claim, Sink};
use super::stalls::Stalls;

/// The partitions this processor owns, with the claim that fences them.
pub(crate) type Claims = Arc<Mutex<HashMap<i32, Claim>>>;

pub(crate) struct ClaimingContext<S> {
    pub sink: Arc<S>,
    pub topic: String,
    pub runtime: tokio::runtime::Handle,
    pub claims: Claims,
    pub stop: Arc<AtomicBool>,
    pub metrics: ProcessorMetrics,
    pub retry_max: Duration,
    pub stalls: Stalls,
    /// Logs the client's errors, quieted while they repeat (a broker outage).
    pub errors: QuietErrors,
}

impl<S: Sink> ClientContext for ClaimingContext<S> {
    fn error(&self, error: KafkaError, reason: &str) {
        self.errors.log(&error, reason);
    }

    fn stats(&self, statistics: Statistics) {
        let Some(topic) = statistics.topics.get(&self.topic) else {
            return;
        };
        let id = self.sink.id();
        let owned = self.claims.lock().expect("claims lock").clone();
        for (partition, stats) in &topic.partitions {
            if owned.contains_key(partition) && stats.consumer_lag >= 0 {
                self.metrics
                    .consumer_lag
                    .with_label_values(&[&id, &partition.to_string()])
                    .set(stats.consumer_lag);
            }
        }
    }
}

impl<S: Sink> ConsumerContext for ClaimingContext<S> {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let partitions: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
                let Some(claims) = self.claim(&partitions) else {
                    return; // stopping
                };
                for claim in &claims {
                    let offset = Offset::Offset(claim.next_offset);
                    if let Err(error) =
                        tpl.set_partition_offset(&self.topic, claim.partition, offset)
                    {
                        tracing::error!(%error, partition = claim.partition, "Could not set the start offset.");
                    }
                }
                {
                    let mut owned = self.claims.lock().expect("claims lock");
                    for claim in &claims {
                        owned.insert(claim.partition, *claim);
                    }
                }
                let from: Vec<(i32, i64)> = claims
                    .iter()
                    .map(|c| (c.partition, c.next_offset))
                    .collect();
                tracing::info!(processor = %self.sink.id(), ?partitions, ?from, "Partitions assigned; resuming from the store's positions.");
                if let Err(error) = consumer.assign(tpl) {
                    tracing::error!(%error, "Assigning partitions failed.");
                }
                self.stalls.check(consumer, &self.topic, &claims);
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let mut owned = self.claims.lock().expect("claims lock");
                for element in tpl.elements() {
                    owned.remove(&element.partition());
                    // Whoever is assigned it next checks it again.
                    self.stalls.clear(element.partition());
                }
                drop(owned);
                tracing::info!(processor = %self.sink.id(), "Partitions revoked.");
                if let Err(error) = consumer.unassign() {
                    tracing::error!(%error, "Unassigning partitions failed.");
                }
            }
            other => {
                tracing::error!(error = ?other, "Rebalance failed; dropping the assignment.");
                self.claims.lock().expect("claims lock").clear();
                let _ = consumer.unassign();
            }
        }
    }
}

impl<S: Sink> ClaimingContext<S> {
    /// Claims with capped backoff until the store answers; None when the processor is stopping.
    pub(crate) fn claim(&self, partitions: &[i32]) -> Option<Vec<Claim>> {
        let mut backoff = Duration::from_millis(100);
        loop {
            // This callback runs on the processor's own thread, never a runtime worker.
            match self
                .runtime
                .block_on(self.sink.claim(&self.topic, partitions))
            {
                Ok(claims) => return Some(claims),
                Err(error) => {
                    tracing::warn!(%error, processor = %self.sink.id(), "Claiming partitions failed; retrying.");
                }
            }
            if self.stop.load(Ordering::Relaxed) {
                return None;
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(self.retry_max);
        }
    }
}
