//! Does the broker complete Kafka transactions? One empty-handed probe transaction tells: it
//! commits an offset of a probe group (no records) and ends the transaction.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::{Offset, TopicPartitionList};
use surge_kafka::ProducerSettings;

const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// True when a transaction commits; false when the broker says it does not implement them
/// (some Kafka-protocol brokers answer EndTxn as unsupported). Other failures (broker down) are errors, so an
/// outage never silently downgrades the delivery mode.
pub async fn broker_supports_transactions(
    producer: &ProducerSettings,
    probe_group: &str,
) -> Result<bool, KafkaError> {
    let (producer, probe_group) = (producer.clone(), probe_group.to_owned());
    tokio::task::spawn_blocking(move || probe(&producer, &probe_group))
        .await
        .map_err(|_| KafkaError::Canceled)?
}

fn probe(settings: &ProducerSettings, probe_group: &str) -> Result<bool, KafkaError> {
    let producer: BaseProducer = ProducerSettings {
        transactional_id: Some(probe_group.to_owned()),
        ..settings.clone()
    }
    .client_config()
    .create()?;
    let group: BaseConsumer = surge_kafka::client_config(&settings.brokers)
        .set("group.id", probe_group)
        .create()?;
    let metadata = group
        .group_metadata()
        .ok_or_else(|| KafkaError::ClientCreation("no probe group metadata".into()))?;
    let mut offsets = TopicPartitionList::new();
    offsets.add_partition_offset(&settings.topic, 0, Offset::Offset(0))?;
    let outcome = producer
        .init_transactions(PROBE_TIMEOUT)
        .and_then(|()| producer.begin_transaction())
        .and_then(|()| producer.send_offsets_to_transaction(&offsets, &metadata, PROBE_TIMEOUT))
        .and_then(|()| producer.commit_transaction(PROBE_TIMEOUT));
    match outcome {
        Ok(()) => Ok(true),
        Err(error) if unsupported(&error) => {
            tracing::info!(%error, "The broker does not support Kafka transactions.");
            Ok(false)
        }
        Err(error) => Err(error),
    }
}

fn unsupported(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(RDKafkaErrorCode::UnsupportedFeature | RDKafkaErrorCode::UnsupportedVersion)
    )
}
