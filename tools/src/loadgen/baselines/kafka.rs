//! The broker's limits: raw produce with the write API's own producer settings into a scratch
//! topic (removed afterwards), and a raw read of the events topic to its end, the ceiling of
//! what processors and replays can consume.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{Value, json};
use surge_kafka::ProducerSettings;
use surge_schemas::headers;

use crate::infra;

/// Events in flight at once during raw produce: enough to keep every partition's batches full,
/// well under the write path's queue bound.
const PRODUCE_WINDOW: usize = 20_000;
/// A read that gets nothing for this long has failed.
const READ_STALL: Duration = Duration::from_secs(30);
const ADMIN_TIMEOUT: Duration = Duration::from_secs(10);

/// What the raw read saw: the rate, and the records' average size for raw produce to copy.
pub(super) struct RawRead {
    pub(super) json: Value,
    pub(super) mean_payload_bytes: usize,
}

/// Reads every partition of `topic` from the beginning to its end (partition EOF), with no
/// consumer group. Blocking.
pub(super) fn raw_read(brokers: &str, topic: &str) -> anyhow::Result<RawRead> {
    let consumer: BaseConsumer<infra::PartitionEndsExpected> =
        surge_kafka::manual_commit_consumer_config(
            brokers,
            &format!("baseline-read-{}", uuid::Uuid::now_v7()),
        )
        .set("enable.partition.eof", "true")
        .create_with_context(infra::PartitionEndsExpected)
        .context("Failed to create the reading consumer")?;
    let partitions = infra::topic_partitions(&consumer, topic)?;
    let mut assignment = TopicPartitionList::new();
    for &partition in &partitions {
        assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
    }
    let started = Instant::now();
    consumer.assign(&assignment)?;
    let (mut records, mut payload_bytes) = (0_u64, 0_u64);
    let mut at_end = HashSet::new();
    let mut last_progress = Instant::now();
    while at_end.len() < partitions.len() {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => {
                records += 1;
                payload_bytes += message.payload_len() as u64;
                at_end.remove(&message.partition());
                last_progress = Instant::now();
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                at_end.insert(partition);
                last_progress = Instant::now();
            }
            Some(Err(error)) => return Err(error).context("Failed to read the events topic"),
            None => {}
        }
        anyhow::ensure!(
            last_progress.elapsed() < READ_STALL,
            "reading {topic} stalled after {records} records"
        );
    }
    let secs = started.elapsed().as_secs_f64();
    Ok(RawRead {
        json: json!({
            "rate": records as f64 / secs,
            "records": records,
            "bytes": payload_bytes,
            "secs": secs,
            "partitions": partitions.len(),
        }),
        mean_payload_bytes: (payload_bytes / records.max(1)) as usize,
    })
}

/// A topic of its own for raw produce, named after the events topic; deleted by [`drop_topic`].
pub(super) async fn scratch_topic(
    brokers: &str,
    events_topic: &str,
    partitions: i32,
    replication: i32,
) -> anyhow::Result<String> {
    let topic = format!("{events_topic}.baseline-{}", super::scratch_id());
    surge_kafka::admin::ensure_topic(brokers, &topic, partitions, replication)
        .await
        .context("Failed to create the scratch topic")?;
    Ok(topic)
}

pub(super) async fn drop_topic(brokers: &str, topic: &str) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = surge_kafka::client_config(brokers).create()?;
    let options = AdminOptions::new()
        .operation_timeout(Some(ADMIN_TIMEOUT))
        .request_timeout(Some(ADMIN_TIMEOUT));
    for result in admin.delete_topics(&[topic], &options).await? {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
            Err((name, code)) => anyhow::bail!("deleting topic {name} failed: {code}"),
        }
    }
    Ok(())
}

/// Produces records of `payload_bytes` keyed by the users' ids (with the write path's
/// event-type and traceparent headers) to `topic` for `duration`, keeping up to
/// [`PRODUCE_WINDOW`] unacknowledged, then waits for the last acknowledgement. The rate counts
/// acknowledged records over the whole time, the wait included.
pub(super) async fn raw_produce(
    brokers: &str,
    topic: &str,
    users: &[i64],
    payload_bytes: usize,
    duration: Duration,
) -> anyhow::Result<Value> {
    let producer: FutureProducer = ProducerSettings::new(brokers, topic)
        .client_config()
        .create()
        .context("Failed to create the producer")?;
    let payload = vec![0x5a_u8; payload_bytes];
    let keys: Vec<String> = users.iter().map(i64::to_string).collect();
    let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let mut pending = VecDeque::with_capacity(PRODUCE_WINDOW);
    let (mut acked, mut failed) = (0_u64, 0_u64);
    let mut count = |outcome: Result<Result<_, _>, _>| match outcome {
        Ok(Ok(_)) => acked += 1,
        _ => failed += 1,
    };
    let started = Instant::now();
    let mut i = 0;
    while started.elapsed() < duration {
        if pending.len() >= PRODUCE_WINDOW {
            count(pending.pop_front().expect("a full window").await);
            continue;
        }
        let headers = OwnedHeaders::new_with_capacity(2)
            .insert(Header {
                key: headers::EVENT_TYPE,
                value: Some("app.surge.events.TapsSubmitted"),
            })
            .insert(Header {
                key: headers::TRACEPARENT,
                value: Some(traceparent),
            });
        let record = FutureRecord::to(topic)
            .key(&keys[i % keys.len()])
            .payload(&payload)
            .headers(headers);
        match producer.send_result(record) {
            Ok(delivery) => {
                pending.push_back(delivery);
                i += 1;
            }
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                match pending.pop_front() {
                    Some(delivery) => count(delivery.await),
                    None => anyhow::bail!("the producer queue is full with nothing in flight"),
                }
            }
            Err((error, _)) => return Err(error).context("Failed to enqueue a record"),
        }
    }
    while let Some(delivery) = pending.pop_front() {
        count(delivery.await);
    }
    let secs = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        failed == 0,
        "{failed} records of raw produce were not acknowledged"
    );
    Ok(json!({
        "rate": acked as f64 / secs,
        "records": acked,
        "payload_bytes": payload_bytes,
        "secs": secs,
        "window": PRODUCE_WINDOW,
    }))
}
