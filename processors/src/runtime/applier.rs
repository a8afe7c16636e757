//! Applying one partition's messages through a sink: decode (registry outages retried, garbage
//! dead-lettered), apply with retries (store outages retried with capped backoff, events the
//! projection rejects dead-lettered), and the per-batch metrics. Shared by the serving
//! processors and rebuilds, so both keep the same delivery rules.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::message::{Message, OwnedMessage};
use surge_schemas::Codec;

use super::Record;
use super::dead_letters::DeadLetters;
use super::metrics::ProcessorMetrics;
use super::sink::{Claim, Sink, SinkError};

/// What became of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Applied; the partition's position is now this offset.
    Applied(i64),
    /// Another owner claimed the partition since `claim`: nothing was written.
    Fenced,
    /// A stop was requested while retrying: nothing was written.
    Stopping,
}

pub(crate) struct Applier<S> {
    pub(crate) sink: Arc<S>,
    pub(crate) codec: Arc<Codec>,
    pub(crate) dead_letters: DeadLetters,
    pub(crate) metrics: ProcessorMetrics,
    pub(crate) topic: String,
    /// `<name>.v<version>`, the metrics' and logs' label.
    pub(crate) id: String,
    pub(crate) retry_min: Duration,
    pub(crate) retry_max: Duration,
    pub(crate) stop: Arc<AtomicBool>,
}

enum Decoded {
    Event(Box<surge_schemas::Event>),
    Skipped,
    Stopping,
}

impl<S: Sink> Applier<S> {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Decodes and applies `messages` (one partition, ascending offsets, none applied before)
    /// and moves the position past the last one. Events recorded before `skip_before` (unix ms)
    /// are passed over without being applied (a point-in-time rebuild).
    pub(crate) async fn process(
        &self,
        claim: Claim,
        messages: Vec<OwnedMessage>,
        skip_before: Option<i64>,
    ) -> Outcome {
        let Some(next_offset) = messages.last().map(|m| m.offset() + 1) else {
            return Outcome::Stopping;
        };
        let mut records = Vec::with_capacity(messages.len());
        let mut sources = Vec::with_capacity(messages.len());
        for message in messages {
            let early = |at: i64| skip_before.is_some_and(|start| at < start);
            // The record's timestamp is the event's recorded_at: skip without decoding.
            if message.timestamp().to_millis().is_some_and(early) {
                continue;
            }
            match self.decode(&message).await {
                Decoded::Event(event) if early(event.envelope.recorded_at) => {}
                Decoded::Event(event) => {
                    records.push(Record {
                        partition: message.partition(),
                        offset: message.offset(),
                        event: *event,
                    });
                    sources.push(message);
                }
                Decoded::Skipped => {}
                Decoded::Stopping => return Outcome::Stopping,
            }
        }
        self.apply(claim, records, sources, next_offset).await
    }

    /// Registry outages are retried, not dead-lettered: they say nothing about the event.
    async fn decode(&self, message: &OwnedMessage) -> Decoded {
        let mut backoff = self.retry_min;
        loop {
            let Some(payload) = message.payload() else {
                return self
                    .dead_letter(message, "decode", "record has no payload")
                    .await;
            };
            match self.codec.decode(payload).await {
                Ok(event) => return Decoded::Event(Box::new(event)),
                Err(error) if error.is_transient() => {
                    tracing::warn!(%error, processor = %self.id, "Schema registry unavailable; retrying.");
                    if self.stopping() {
                        return Decoded::Stopping;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.retry_max);
                }
                Err(error) => {
                    return self
                        .dead_letter(message, "decode", &error.to_string())
                        .await;
                }
            }
        }
    }

    async fn apply(
        &self,
        claim: Claim,
        mut records: Vec<Record>,
        mut sources: Vec<OwnedMessage>,
        next_offset: i64,
    ) -> Outcome {
        let partition = claim.partition.to_string();
        let mut backoff = self.retry_min;
        loop {
            let started = Instant::now();
            match self
                .sink
                .apply(&self.topic, claim, &records, next_offset)
                .await
            {
                Ok(applied) => {
                    let labels = [self.id.as_str(), partition.as_str()];
                    let metrics = &self.metrics;
                    metrics
                        .events_applied
                        .with_label_values(&labels)
                        .inc_by(applied.events as u64);
                    metrics
                        .applied_offset
                        .with_label_values(&labels)
                        .set(next_offset);
                    metrics
                        .batch_size
                        .with_label_values(&[&self.id])
                        .observe(records.len() as f64);
                    metrics
                        .apply_seconds
                        .with_label_values(&[&self.id])
                        .observe(started.elapsed().as_secs_f64());
                    return Outcome::Applied(next_offset);
                }
                Err(SinkError::Fenced) => {
                    self.metrics.fenced.with_label_values(&[&self.id]).inc();
                    return Outcome::Fenced;
                }
                Err(SinkError::Poison { event_id, reason }) => {
                    let Some(index) = records
                        .iter()
                        .position(|r| r.event.envelope.event_id == event_id)
                    else {
                        tracing::error!(%event_id, "A projection rejected an event that is not in the batch.");
                        return Outcome::Stopping;
                    };
                    if let Decoded::Stopping =
                        self.dead_letter(&sources[index], "rejected", &reason).await
                    {
                        return Outcome::Stopping;
                    }
                    records.remove(index);
                    sources.remove(index);
                }
                Err(SinkError::Transient(error)) => {
                    tracing::warn!(%error, processor = %self.id, partition = claim.partition, ?backoff, "Applying a batch failed; retrying.");
                    self.metrics.retries.with_label_values(&[&self.id]).inc();
                    if self.stopping() {
                        return Outcome::Stopping;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.retry_max);
                }
            }
        }
    }

    /// Dead-letters durably; retries until the broker takes it, so nothing is skipped silently.
    /// Only a stop request ends the retries, and then the batch is not applied either.
    async fn dead_letter(&self, message: &OwnedMessage, kind: &str, reason: &str) -> Decoded {
        tracing::warn!(processor = %self.id, partition = message.partition(), offset = message.offset(), reason, "Dead-lettering an event.");
        let mut backoff = self.retry_min;
        while let Err(error) = self.dead_letters.send(message, reason).await {
            tracing::error!(%error, "Writing a dead letter failed; retrying.");
            if self.stopping() {
                return Decoded::Stopping;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(self.retry_max);
        }
        self.metrics
            .dead_letters
            .with_label_values(&[&self.id, kind])
            .inc();
        Decoded::Skipped
    }
}
