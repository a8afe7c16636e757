//! Partitions a processor owns but cannot advance, each with the reason, for the metrics and
//! `/health/ready`. A stall stops only its own partition: the others keep flowing.
//!
//! A partition stalls for one of two causes. Its batch kept failing transiently (a store
//! outage, a timeout) past `ProcessorConfig::stall_after`: the processor pauses it, seeks it
//! back to its stored position and tries again later with backoff, clearing the stall when a
//! batch applies (see `processor`). Or, below, its position is outside the topic.
//!
//! A partition stalls when its stored position lies outside what the topic holds: beyond the
//! end (the topic was deleted and recreated, or truncated) or before the first offset (events
//! this projection never applied were deleted by retention or DeleteRecords). Resuming anywhere
//! else would silently skip events, so the partition is paused until an operator rebuilds the
//! projection (`surge replay`), and the processor says why.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::{Consumer, ConsumerContext};
use rdkafka::{Offset, TopicPartitionList};

use super::metrics::ProcessorMetrics;
use super::sink::Claim;

const WATERMARKS_TIMEOUT: Duration = Duration::from_secs(5);

/// What the topic holds of a partition: offsets `low..high`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Watermarks {
    pub low: i64,
    pub high: i64,
}

/// Why resuming `partition` at `next_offset` would skip events, if it would.
pub(crate) fn out_of_range(partition: i32, next_offset: i64, held: Watermarks) -> Option<String> {
    if next_offset > held.high {
        Some(format!(
            "partition {partition}: the stored position {next_offset} is beyond the topic's end offset {}; \
             the topic was deleted and recreated or truncated, so its new events would be skipped. \
             Rebuild the projection from the topic (surge replay).",
            held.high
        ))
    } else if next_offset < held.low {
        Some(format!(
            "partition {partition}: events {next_offset}..{} were never applied and are gone from the topic \
             (retention or DeleteRecords); resuming would skip them. Restore them or rebuild the projection.",
            held.low
        ))
    } else {
        None
    }
}

/// The stalled partitions of one processor.
#[derive(Clone)]
pub(crate) struct Stalls {
    processor: String,
    by_partition: Arc<Mutex<BTreeMap<i32, String>>>,
    metrics: ProcessorMetrics,
}

impl Stalls {
    pub(crate) fn new(processor: String, metrics: ProcessorMetrics) -> Self {
        Stalls {
            processor,
            by_partition: Arc::default(),
            metrics,
        }
    }

    pub(crate) fn mark(&self, partition: i32, reason: String) {
        tracing::error!(processor = %self.processor, partition, %reason, "Partition stalled.");
        self.gauge(partition).set(1);
        self.lock().insert(partition, reason);
    }

    pub(crate) fn clear(&self, partition: i32) {
        if self.lock().remove(&partition).is_some() {
            self.gauge(partition).set(0);
        }
    }

    /// Compares each claim's position with what the topic holds, marks and pauses the partitions
    /// that cannot resume, and clears the others. A partition whose watermarks cannot be read
    /// now (broker unreachable) is left as it was: the consumer's `auto.offset.reset=error`
    /// reports it later if it is out of range.
    pub(crate) fn check<C: ConsumerContext>(
        &self,
        consumer: &impl Consumer<C>,
        topic: &str,
        claims: &[Claim],
    ) {
        let mut pause = TopicPartitionList::new();
        for claim in claims {
            let held = match consumer.fetch_watermarks(topic, claim.partition, WATERMARKS_TIMEOUT) {
                Ok((low, high)) => Watermarks { low, high },
                Err(error) => {
                    tracing::warn!(%error, processor = %self.processor, partition = claim.partition, "Could not read the partition's watermarks to check the stored position.");
                    continue;
                }
            };
            match out_of_range(claim.partition, claim.next_offset, held) {
                Some(reason) => {
                    self.mark(claim.partition, reason);
                    let _ = pause.add_partition_offset(topic, claim.partition, Offset::Invalid);
                }
                None => {
                    self.clear(claim.partition);
                    // At zero from the assignment on, so an alert sees the first stall.
                    self.gauge(claim.partition).set(0);
                }
            }
        }
        if pause.count() > 0
            && let Err(error) = consumer.pause(&pause)
        {
            tracing::error!(%error, processor = %self.processor, "Pausing stalled partitions failed.");
        }
    }

    /// Partition -> reason.
    pub(crate) fn list(&self) -> BTreeMap<i32, String> {
        self.lock().clone()
    }

    fn gauge(&self, partition: i32) -> prometheus::IntGauge {
        self.metrics
            .partition_stalled
            .with_label_values(&[&self.processor, &partition.to_string()])
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<i32, String>> {
        self.by_partition.lock().expect("stalls lock")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELD: Watermarks = Watermarks { low: 10, high: 50 };

    #[test]
    fn a_position_within_the_topic_or_at_its_end_resumes() {
        assert_eq!(out_of_range(2, 10, HELD), None);
        assert_eq!(out_of_range(2, 30, HELD), None);
        assert_eq!(out_of_range(2, 50, HELD), None);
    }

    #[test]
    fn a_position_beyond_the_end_names_the_recreated_topic() {
        let reason = out_of_range(2, 51, HELD).unwrap();
        assert!(reason.contains("partition 2"), "{reason}");
        assert!(
            reason.contains("beyond the topic's end offset 50"),
            "{reason}"
        );
    }

    #[test]
    fn a_position_before_the_first_offset_names_the_lost_events() {
        let reason = out_of_range(2, 4, HELD).unwrap();
        assert!(reason.contains("events 4..10"), "{reason}");
    }
}
