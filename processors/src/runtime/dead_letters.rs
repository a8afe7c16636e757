//! The dead-letter topic `<topic>.dlq` (`naming::dead_letter_topic`): events that cannot be decoded or applied, with the
//! original key, payload and headers, plus headers naming the reason, projection and origin.
//! A dead letter is written durably (acks=all) before the position moves past its event.

use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use surge_projections::naming;

use super::repeats::QuietErrors;

pub const REASON: &str = "surge-dlq-reason";
pub const PROJECTION: &str = "surge-dlq-projection";
pub const ORIGIN_TOPIC: &str = "surge-dlq-origin-topic";
pub const ORIGIN_PARTITION: &str = "surge-dlq-origin-partition";
pub const ORIGIN_OFFSET: &str = "surge-dlq-origin-offset";

/// Why an event was dead-lettered: the `reason` label of `processor_dead_letters_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLetterKind {
    /// The record does not decode (no payload, unknown schema, invalid data).
    Decode,
    /// The projection or its store refused the event.
    Rejected,
}

impl DeadLetterKind {
    pub const ALL: [DeadLetterKind; 2] = [DeadLetterKind::Decode, DeadLetterKind::Rejected];

    pub const fn as_str(self) -> &'static str {
        match self {
            DeadLetterKind::Decode => "decode",
            DeadLetterKind::Rejected => "rejected",
        }
    }
}

pub struct DeadLetters {
    producer: FutureProducer<QuietErrors>,
    topic: String,
    projection: String,
}

impl DeadLetters {
    pub fn new(brokers: &str, source_topic: &str, projection: &str) -> Result<Self, KafkaError> {
        let producer = surge_kafka::idempotent_producer_config(brokers)
            .set("message.timeout.ms", "30000")
            .create_with_context(QuietErrors::new(format!("{projection} dead letters")))?;
        Ok(DeadLetters {
            producer,
            topic: naming::dead_letter_topic(source_topic),
            projection: projection.to_owned(),
        })
    }

    /// Writes `message` with `reason`; returns once the broker acknowledged it.
    pub async fn send(&self, message: &OwnedMessage, reason: &str) -> Result<(), KafkaError> {
        let partition = message.partition().to_string();
        let offset = message.offset().to_string();
        let mut headers = OwnedHeaders::new();
        if let Some(original) = message.headers() {
            for h in original.iter() {
                headers = headers.insert(Header {
                    key: h.key,
                    value: h.value,
                });
            }
        }
        let headers = headers
            .insert(Header {
                key: REASON,
                value: Some(reason),
            })
            .insert(Header {
                key: PROJECTION,
                value: Some(&self.projection),
            })
            .insert(Header {
                key: ORIGIN_TOPIC,
                value: Some(message.topic()),
            })
            .insert(Header {
                key: ORIGIN_PARTITION,
                value: Some(&partition),
            })
            .insert(Header {
                key: ORIGIN_OFFSET,
                value: Some(&offset),
            });
        let mut record: FutureRecord<'_, [u8], [u8]> =
            FutureRecord::to(&self.topic).headers(headers);
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        if let Some(payload) = message.payload() {
            record = record.payload(payload);
        }
        self.producer
            .send(record, Duration::from_secs(30))
            .await
            .map(|_| ())
            .map_err(|(e, _)| e)
    }
}
