//! Appends events to the user-events topic.
//!
//! Guarantee: `append` returns Ok only after the broker acknowledged every event with `acks=all`
//! through an idempotent producer, so an acknowledged event survives producer retries without
//! duplication and is ordered within the user's partition. Anything else (queue full, broker
//! down, timeout) is an error the API turns into 503; it never reports success early.
//! Keys are the user id as a decimal string, partitioned with murmur2 as Java clients do, so
//! Kafka Streams, ksqlDB or Flink consumers co-partition with Surge.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use surge_schemas::{Codec, Event, Position, headers};

#[derive(Debug, Clone)]
pub struct ProducerSettings {
    pub brokers: String,
    pub topic: String,
    /// librdkafka's delivery timeout: past it an unacknowledged event fails instead of waiting.
    pub produce_timeout: Duration,
    /// Producer queue bound; when full, writes fail fast with 503 instead of queueing without bound.
    pub queue_max_messages: u32,
    /// Time librdkafka waits to fill a batch. Trades a little latency for throughput.
    pub linger: Duration,
    /// Makes the producer transactional under this id (Kafka transactions, KIP-98). Appends
    /// then belong to the transaction the caller opened on [`EventLog::producer`]; a new
    /// producer with the same id fences the old one and aborts its open transaction.
    pub transactional_id: Option<String>,
}

impl ProducerSettings {
    pub fn new(brokers: impl Into<String>, topic: impl Into<String>) -> Self {
        ProducerSettings {
            brokers: brokers.into(),
            topic: topic.into(),
            produce_timeout: Duration::from_secs(5),
            queue_max_messages: 100_000,
            linger: Duration::from_millis(5),
            transactional_id: None,
        }
    }

    /// The write path's producer configuration: idempotent, `acks=all`, Java-compatible murmur2
    /// partitioning, transactional when an id is set. Public so a raw-produce baseline measures
    /// the same producer.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = crate::idempotent_producer_config(&self.brokers);
        config
            .set("partitioner", "murmur2_random")
            .set(
                "message.timeout.ms",
                self.produce_timeout.as_millis().to_string(),
            )
            .set(
                "queue.buffering.max.messages",
                self.queue_max_messages.to_string(),
            )
            .set("linger.ms", self.linger.as_millis().to_string());
        if let Some(id) = &self.transactional_id {
            // An open transaction holds back every read_committed reader of its partitions, so
            // one left by a crashed process must not outlive a restart by long.
            config
                .set("transactional.id", id)
                .set("transaction.timeout.ms", "15000");
        }
        config
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error("producer queue is full")]
    QueueFull,
    #[error("broker did not acknowledge: {0}")]
    Broker(KafkaError),
    #[error("encoding failed: {0}")]
    Encode(#[from] surge_schemas::Error),
}

/// Headers that travel with every event of one request.
#[derive(Debug, Clone, Default)]
pub struct TraceMeta {
    pub traceparent: String,
    pub idempotency_key: Option<String>,
}

pub struct EventLog {
    producer: FutureProducer,
    codec: Arc<Codec>,
    settings: ProducerSettings,
}

impl EventLog {
    pub fn new(settings: ProducerSettings, codec: Arc<Codec>) -> Result<Self, KafkaError> {
        let producer = settings.client_config().create()?;
        Ok(EventLog {
            producer,
            codec,
            settings,
        })
    }

    pub fn topic(&self) -> &str {
        &self.settings.topic
    }

    pub fn produce_timeout(&self) -> Duration {
        self.settings.produce_timeout
    }

    pub fn codec(&self) -> &Codec {
        &self.codec
    }

    /// The underlying producer, for transaction control when the log is transactional.
    pub fn producer(&self) -> &FutureProducer {
        &self.producer
    }

    /// Events queued or in flight to the broker.
    pub fn queue_depth(&self) -> i32 {
        self.producer.in_flight_count()
    }

    /// Appends `events` (all of one user) in order and returns the last one's position.
    /// If a later event of a batch fails, earlier ones may still have landed: the caller's retry
    /// reuses the same event ids, and projections deduplicate by event id.
    pub async fn append(
        &self,
        events: &[Event],
        meta: &TraceMeta,
    ) -> Result<Position, AppendError> {
        let mut payloads = Vec::with_capacity(events.len());
        for event in events {
            payloads.push(self.codec.encode(event).await?);
        }
        let mut deliveries = Vec::with_capacity(events.len());
        for (event, payload) in events.iter().zip(&payloads) {
            let key = event.envelope.user_id.to_string();
            let event_type = event.event_type().full_name();
            let mut headers = OwnedHeaders::new_with_capacity(3)
                .insert(Header {
                    key: headers::EVENT_TYPE,
                    value: Some(&event_type),
                })
                .insert(Header {
                    key: headers::TRACEPARENT,
                    value: Some(&meta.traceparent),
                });
            if let Some(k) = &meta.idempotency_key {
                headers = headers.insert(Header {
                    key: headers::IDEMPOTENCY_KEY,
                    value: Some(k),
                });
            }
            let record = FutureRecord::to(&self.settings.topic)
                .key(&key)
                .payload(payload)
                .headers(headers)
                .timestamp(event.envelope.recorded_at);
            match self.producer.send_result(record) {
                Ok(delivery) => deliveries.push(delivery),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    return Err(AppendError::QueueFull);
                }
                Err((e, _)) => return Err(AppendError::Broker(e)),
            }
        }
        let mut last = None;
        for delivery in deliveries {
            // librdkafka fails the message itself after message.timeout.ms; this outer bound only
            // guards against a lost callback so a request can never hang.
            let outcome = tokio::time::timeout(self.settings.produce_timeout * 2, delivery).await;
            match outcome {
                Ok(Ok(Ok(d))) => last = Some((d.partition, d.offset)),
                Ok(Ok(Err((e, _)))) => return Err(AppendError::Broker(e)),
                Ok(Err(_canceled)) => return Err(AppendError::Broker(KafkaError::Canceled)),
                Err(_elapsed) => {
                    return Err(AppendError::Broker(KafkaError::MessageProduction(
                        RDKafkaErrorCode::MessageTimedOut,
                    )));
                }
            }
        }
        let (partition, offset) = last.expect("append is called with at least one event");
        Ok(Position {
            topic: self.settings.topic.clone(),
            partition,
            offset,
        })
    }

    /// Whether the broker answers and knows our topic; used by readiness checks.
    pub async fn ping(&self, timeout: Duration) -> Result<(), KafkaError> {
        let producer = self.producer.clone();
        let topic = self.settings.topic.clone();
        tokio::task::spawn_blocking(move || {
            let metadata = producer.client().fetch_metadata(Some(&topic), timeout)?;
            let known = metadata
                .topics()
                .iter()
                .any(|t| t.error().is_none() && !t.partitions().is_empty());
            if known {
                Ok(())
            } else {
                Err(KafkaError::MetadataFetch(
                    RDKafkaErrorCode::UnknownTopicOrPartition,
                ))
            }
        })
        .await
        .map_err(|_| KafkaError::Canceled)?
    }

    /// Waits for queued events to be delivered; called on shutdown so acknowledged work is flushed.
    pub fn flush(&self, timeout: Duration) {
        if let Err(error) = self.producer.flush(timeout) {
            tracing::warn!(%error, "Producer flush at shutdown did not complete.");
        }
    }
}
