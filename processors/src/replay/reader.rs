//! Reading the topic for a rebuild: one consumer, no group (nothing is committed, no serving
//! group is joined), every partition assigned at the rebuild's stored position and split into a
//! queue of its own, so each partition is read and applied by its own task, in parallel.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::stream_consumer::StreamPartitionQueue;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};

use super::ReplayError;
use super::config::ReplayConfig;
use crate::runtime::{Claim, PartitionEndsExpected};

pub(crate) type ReplayConsumer = StreamConsumer<PartitionEndsExpected>;
pub(crate) type Queue = StreamPartitionQueue<PartitionEndsExpected>;

/// The consumer and the task serving its main queue, which ends with it.
pub(crate) struct Reader {
    pub(crate) consumer: Arc<ReplayConsumer>,
    main_queue: tokio::task::JoinHandle<()>,
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.main_queue.abort();
    }
}

/// The partitions of the topic, from the broker's metadata.
pub(crate) fn partitions(config: &ReplayConfig) -> Result<Vec<i32>, ReplayError> {
    let consumer: rdkafka::consumer::BaseConsumer<PartitionEndsExpected> =
        surge_kafka::client_config(&config.brokers).create_with_context(PartitionEndsExpected)?;
    let metadata = consumer.fetch_metadata(Some(&config.topic), Duration::from_secs(10))?;
    let mut partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == config.topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    partitions.sort_unstable();
    if partitions.is_empty() {
        return Err(ReplayError::NoTopic(config.topic.clone()));
    }
    Ok(partitions)
}

/// Each partition's first offset still held by the broker (its low watermark). Blocking.
pub(crate) fn first_offsets(
    config: &ReplayConfig,
    partitions: &[i32],
) -> Result<Vec<(i32, i64)>, ReplayError> {
    let consumer: rdkafka::consumer::BaseConsumer<PartitionEndsExpected> =
        surge_kafka::client_config(&config.brokers).create_with_context(PartitionEndsExpected)?;
    partitions
        .iter()
        .map(|&partition| {
            let timeout = Duration::from_secs(10);
            let (low, _) = consumer.fetch_watermarks(&config.topic, partition, timeout)?;
            Ok((partition, low))
        })
        .collect()
}

/// The partitions whose first record is past offset zero: the broker deleted the records before
/// it (retention), so a rebuild from offset zero would miss them.
pub(crate) fn truncated(first_offsets: &[(i32, i64)]) -> Vec<(i32, i64)> {
    first_offsets
        .iter()
        .copied()
        .filter(|(_, first)| *first > 0)
        .collect()
}

/// A consumer reading every claimed partition from its stored position, with one queue per
/// partition.
pub(crate) fn open(
    config: &ReplayConfig,
    group: &str,
    claims: &[Claim],
) -> Result<(Reader, Vec<(Claim, Queue)>), ReplayError> {
    let consumer: Arc<ReplayConsumer> = Arc::new(
        // Never joined: the consumer assigns its partitions itself and commits nothing.
        surge_kafka::manual_commit_consumer_config(&config.brokers, group)
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "true")
            .set("isolation.level", "read_committed")
            // A stored position outside the topic is an error, never a silent jump (a rebuild
            // from offset zero already refused a topic that lost its first events).
            .set("auto.offset.reset", "error")
            .set(
                "fetch.wait.max.ms",
                config.fetch_wait.as_millis().max(1).to_string(),
            )
            .create_with_context(PartitionEndsExpected)?,
    );
    let start = |claim: &Claim| Offset::Offset(claim.next_offset);
    let mut assignment = TopicPartitionList::new();
    for claim in claims {
        assignment.add_partition_offset(&config.topic, claim.partition, start(claim))?;
    }
    consumer.assign(&assignment)?;
    let mut queues = Vec::with_capacity(claims.len());
    for claim in claims {
        let queue = consumer
            .split_partition_queue(&config.topic, claim.partition)
            .ok_or_else(|| ReplayError::NoTopic(config.topic.clone()))?;
        // Records fetched before the split went to the main queue. Seeking again sets a
        // barrier: librdkafka discards what it fetched before the seek, so the partition's
        // queue starts exactly here.
        consumer.seek(
            &config.topic,
            claim.partition,
            start(claim),
            Duration::from_secs(10),
        )?;
        queues.push((*claim, queue));
    }
    // The main queue must still be served for the client's events; any record on it was
    // fetched before the barrier and is re-fetched through its partition's queue.
    let main = consumer.clone();
    let main_queue = tokio::spawn(async move {
        loop {
            match main.recv().await {
                Ok(message) => {
                    use rdkafka::Message;
                    tracing::debug!(
                        partition = message.partition(),
                        offset = message.offset(),
                        "A record fetched before the partition queues were split is dropped; its queue reads it again."
                    );
                }
                Err(KafkaError::PartitionEOF(_)) => {}
                Err(error) => tracing::warn!(%error, "Consumer error."),
            }
        }
    });
    Ok((
        Reader {
            consumer,
            main_queue,
        },
        queues,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_is_truncated_when_its_first_record_is_past_offset_zero() {
        assert_eq!(truncated(&[(0, 0), (1, 0)]), []);
        assert_eq!(truncated(&[(0, 0), (1, 1234), (2, 7)]), [(1, 1234), (2, 7)]);
    }
}
