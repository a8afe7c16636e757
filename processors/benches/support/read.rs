//! Reading the pre-filled topic back: its extent (watermarks), the raw read rate (the physical
//! limit of consuming it), and a read that decodes every event into the runtime's [`Record`]s,
//! which the baselines turn into the very rows and commands the projections write.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};
use surge_processors::runtime::Record;
use surge_schemas::Codec;

/// A read that gets nothing for this long has failed.
const STALL: Duration = Duration::from_secs(60);

/// Per partition, the offsets `[low, high)` the topic holds.
///
/// Taken from the producer's delivery reports, known as soon as the fill is acknowledged.
#[derive(Debug, Clone)]
pub(crate) struct Extent {
    pub(crate) partitions: Vec<(i32, i64, i64)>,
}

impl Extent {
    pub(crate) fn events(&self) -> i64 {
        self.partitions
            .iter()
            .map(|(_, low, high)| high - low)
            .sum()
    }

    /// The sum of the partitions' end offsets: what the stored positions add up to when a
    /// projection has caught up.
    pub(crate) fn end(&self) -> i64 {
        self.partitions.iter().map(|(_, _, high)| high).sum()
    }
}

/// What a read took.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadStats {
    pub(crate) messages: u64,
    pub(crate) bytes: u64,
    pub(crate) secs: f64,
}

/// Reads every partition from its low watermark to its end, counting. Blocking.
pub(crate) fn raw_read(brokers: &str, topic: &str, extent: &Extent) -> anyhow::Result<ReadStats> {
    read_all(brokers, topic, extent, |_| Ok(()))
}

/// Reads the topic and decodes each event as the processor does, returning the records per
/// partition in offset order (index = partition). Blocking: runs the codec on `runtime`.
pub(crate) fn read_decoded(
    brokers: &str,
    topic: &str,
    extent: &Extent,
    codec: &Arc<Codec>,
    runtime: &tokio::runtime::Handle,
) -> anyhow::Result<(ReadStats, Vec<Vec<Record>>)> {
    let slots = extent
        .partitions
        .iter()
        .map(|(p, _, _)| *p as usize + 1)
        .max()
        .unwrap_or(0);
    let mut records: Vec<Vec<Record>> = (0..slots).map(|_| Vec::new()).collect();
    let stats = read_all(brokers, topic, extent, |message| {
        let payload = message.payload().context("A record has no payload")?;
        let event = runtime
            .block_on(codec.decode(payload))
            .context("Failed to decode an event")?;
        records[message.partition() as usize].push(Record {
            partition: message.partition(),
            offset: message.offset(),
            event,
        });
        Ok(())
    })?;
    Ok((stats, records))
}

/// Assigns every partition at its low watermark (no consumer group: nothing is committed) and
/// polls until each reaches its high watermark, with the processor's consumer settings.
fn read_all(
    brokers: &str,
    topic: &str,
    extent: &Extent,
    mut each: impl FnMut(&BorrowedMessage<'_>) -> anyhow::Result<()>,
) -> anyhow::Result<ReadStats> {
    let consumer: BaseConsumer =
        surge_kafka::manual_commit_consumer_config(brokers, &format!("{topic}.bench-read"))
            .set("isolation.level", "read_committed")
            .create()
            .context("Failed to create a consumer")?;
    let mut assignment = TopicPartitionList::new();
    let mut ends = std::collections::HashMap::new();
    for &(partition, low, high) in &extent.partitions {
        if high > low {
            assignment
                .add_partition_offset(topic, partition, Offset::Offset(low))
                .context("Failed to build the assignment")?;
            ends.insert(partition, high);
        }
    }
    let started = Instant::now();
    consumer
        .assign(&assignment)
        .context("Failed to assign the partitions")?;
    let (mut messages, mut bytes) = (0u64, 0u64);
    let mut last_message = Instant::now();
    while !ends.is_empty() {
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(message)) => {
                last_message = Instant::now();
                messages += 1;
                bytes += message.payload_len() as u64;
                each(&message)?;
                let partition = message.partition();
                if ends
                    .get(&partition)
                    .is_some_and(|&end| message.offset() + 1 >= end)
                {
                    ends.remove(&partition);
                }
            }
            Some(Err(error)) => tracing::warn!(%error, "Consumer error while reading back."),
            None => {}
        }
        if last_message.elapsed() > STALL {
            bail!(
                "reading the topic stalled after {messages} messages; partitions left: {:?}",
                ends.keys().collect::<Vec<_>>()
            );
        }
    }
    Ok(ReadStats {
        messages,
        bytes,
        secs: started.elapsed().as_secs_f64(),
    })
}
