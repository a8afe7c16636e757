//! Applying partitions' messages through a sink (each poll's partitions together when the sink
//! can, see `Applier::process_together`): decode (registry outages retried, garbage
//! dead-lettered), apply with retries (store outages retried with capped backoff, events the
//! projection rejects dead-lettered), and the per-batch metrics. Shared by the serving
//! processors and rebuilds, so both keep the same delivery rules. A dead-lettered event parks
//! its user: the sink keeps it, and the user's later events, with the batch (see `parking`).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::message::{Message, OwnedMessage};
use surge_schemas::Codec;

use super::Record;
use super::dead_letters::{DeadLetterKind, DeadLetters};
use super::metrics::ProcessorMetrics;
use super::parking::Parked;
use super::rejections::Rejection;
use super::sink::{Applied, Claim, PartitionBatch, Sink, SinkError};

/// What became of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Applied; the partition's position is now this offset.
    Applied(i64),
    /// Another owner claimed the partition since `claim`: nothing was written.
    Fenced,
    /// A stop was requested while retrying: nothing was written.
    Stopping,
    /// Transient failures went on past `stall_after`: the partition's stored position is
    /// `position` (it may have moved when the batch was applied event by event), the rest of the
    /// batch was not applied.
    Stalled { position: i64, reason: String },
    /// The store lost writes ([`SinkError::Behind`]): its position is `position`, behind what
    /// was applied; the partition is read again from there at once.
    Behind { position: i64, reason: String },
    /// The store lost this processor's claim ([`SinkError::ClaimLost`]): nothing was written;
    /// the partition is claimed again and read from the new claim's position.
    ClaimLost { reason: String },
}

/// What a processor does about `partition` when the store's position is `stored`, behind the
/// `applied` it reached there: reads it again from `stored` ([`SinkError::Behind`]).
pub(crate) fn lost_writes(processor: &str, partition: i32, stored: i64, applied: i64) -> Outcome {
    let error = SinkError::Behind { stored, applied };
    let reason = format!("{error}; reading the partition again from {stored}");
    tracing::error!(processor, partition, %reason, "The store lost writes.");
    Outcome::Behind {
        position: stored,
        reason,
    }
}

/// One try at a batch, with its retries.
enum Attempt {
    Done(Outcome),
    /// The store rejected the data: the records are handed back to be narrowed down, with the
    /// events dead-lettered on the way, still to be parked.
    Rejected {
        records: Vec<Record>,
        sources: Vec<OwnedMessage>,
        dead: Vec<Parked>,
        error: Rejection,
    },
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
    /// How long a batch may keep failing transiently before its partition is given up for now
    /// ([`Outcome::Stalled`]); `None`: retry for as long as it takes.
    pub(crate) stall_after: Option<Duration>,
    pub(crate) stop: Arc<AtomicBool>,
}

/// A partition batch on its way to the sink: the records to apply and the events dead-lettered
/// from it so far (to park).
struct Batch {
    records: Vec<Record>,
    sources: Vec<OwnedMessage>,
    dead: Vec<Parked>,
}

/// A partition's messages, decoded: the events to apply and the messages they came from (for
/// dead letters), and the offset after the last message.
struct DecodedBatch {
    claim: Claim,
    records: Vec<Record>,
    sources: Vec<OwnedMessage>,
    next_offset: i64,
}

/// The dead-lettered events before `offset`, in order.
fn take_before(dead: &mut VecDeque<Parked>, offset: i64) -> Vec<Parked> {
    let mut due = Vec::new();
    while dead.front().is_some_and(|d| d.offset < offset) {
        due.extend(dead.pop_front());
    }
    due
}

enum Decoded {
    Event(Box<surge_schemas::Event>),
    Skipped,
    Stopping,
}

impl<S: Sink> Applier<S> {
    /// Creates the dead-letter counters at zero, so that an alert on their increase sees the
    /// first dead letter (a series born at 1 has no increase).
    pub(crate) fn start_counting(&self) {
        for kind in DeadLetterKind::ALL {
            self.metrics
                .dead_letters
                .with_label_values(&[&self.id, kind.as_str()]);
        }
    }

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
        match self.decode_batch(claim, messages, skip_before).await {
            Some(d) => {
                self.apply(d.claim, d.records, d.sources, d.next_offset)
                    .await
            }
            None => Outcome::Stopping,
        }
    }

    /// [`process`](Self::process) for the batches of several partitions (one each), returning
    /// their outcomes in order. When the sink can, they are applied in one transaction (one
    /// round of bookkeeping instead of one per partition); if that fails for any reason, nothing
    /// was written and each is applied on its own, with the usual retries, fencing and
    /// dead-lettering.
    pub(crate) async fn process_together(
        &self,
        batches: Vec<(Claim, Vec<OwnedMessage>)>,
    ) -> Vec<Outcome> {
        let count = batches.len();
        let mut decoded = Vec::with_capacity(count);
        for (claim, messages) in batches {
            match self.decode_batch(claim, messages, None).await {
                Some(d) => decoded.push(d),
                None => return vec![Outcome::Stopping; count],
            }
        }
        if decoded.len() > 1 {
            let started = Instant::now();
            let batches: Vec<PartitionBatch> = (decoded.iter())
                .map(|d| PartitionBatch {
                    claim: d.claim,
                    records: &d.records,
                    dead: &[],
                    next_offset: d.next_offset,
                })
                .collect();
            match self.sink.apply_together(&self.topic, &batches).await {
                Some(Ok(applied)) => {
                    let records = batches.iter().map(|b| b.records.len()).sum();
                    self.observe(records, started);
                    return (batches.iter().zip(applied))
                        .map(|(batch, applied)| {
                            self.count(batch.claim.partition, applied, batch.next_offset);
                            Outcome::Applied(batch.next_offset)
                        })
                        .collect();
                }
                // Each batch on its own says what went wrong, and how to go on.
                Some(Err(error)) => {
                    tracing::debug!(%error, processor = %self.id, "Applying a poll's batches together failed; applying them partition by partition.")
                }
                None => {}
            }
        }
        let mut outcomes = Vec::with_capacity(count);
        for d in decoded {
            outcomes.push(
                self.apply(d.claim, d.records, d.sources, d.next_offset)
                    .await,
            );
        }
        outcomes
    }

    /// Decodes `messages` (one partition, ascending offsets); `None` when a stop was requested.
    async fn decode_batch(
        &self,
        claim: Claim,
        messages: Vec<OwnedMessage>,
        skip_before: Option<i64>,
    ) -> Option<DecodedBatch> {
        let next_offset = messages.last()?.offset() + 1;
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
                Decoded::Stopping => return None,
            }
        }
        Some(DecodedBatch {
            claim,
            records,
            sources,
            next_offset,
        })
    }

    /// The metrics of a partition batch applied.
    fn count(&self, partition: i32, applied: Applied, next_offset: i64) {
        let partition = partition.to_string();
        let labels = [self.id.as_str(), partition.as_str()];
        let metrics = &self.metrics;
        (metrics.events_applied.with_label_values(&labels)).inc_by(applied.events as u64);
        (metrics.events_parked.with_label_values(&labels)).inc_by(applied.parked as u64);
        (metrics.applied_offset.with_label_values(&labels)).set(next_offset);
    }

    /// The metrics of a transaction applied: its events, and how long it took since `started`.
    fn observe(&self, records: usize, started: Instant) {
        let metrics = &self.metrics;
        (metrics.batch_size.with_label_values(&[&self.id])).observe(records as f64);
        (metrics.apply_seconds.with_label_values(&[&self.id]))
            .observe(started.elapsed().as_secs_f64());
    }

    /// Registry outages are retried, not dead-lettered: they say nothing about the event.
    async fn decode(&self, message: &OwnedMessage) -> Decoded {
        let mut backoff = self.retry_min;
        loop {
            let Some(payload) = message.payload() else {
                return self
                    .dead_letter(message, DeadLetterKind::Decode, "record has no payload")
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
                        .dead_letter(message, DeadLetterKind::Decode, &error.to_string())
                        .await;
                }
            }
        }
    }

    /// Applies a batch; when the store rejects its data, narrows the rejection down to the
    /// events causing it (see [`Self::apply_event_by_event`]).
    async fn apply(
        &self,
        claim: Claim,
        records: Vec<Record>,
        sources: Vec<OwnedMessage>,
        next_offset: i64,
    ) -> Outcome {
        let batch = Batch {
            records,
            sources,
            dead: Vec::new(),
        };
        match self
            .apply_batch(claim, claim.next_offset, batch, next_offset)
            .await
        {
            Attempt::Done(outcome) => outcome,
            Attempt::Rejected {
                records,
                sources,
                dead,
                error,
            } => {
                tracing::warn!(%error, processor = %self.id, partition = claim.partition, events = records.len(), "The store rejected a batch's data; applying it event by event to find the events causing it.");
                let batch = Batch {
                    records,
                    sources,
                    dead,
                };
                self.apply_event_by_event(claim, batch, next_offset).await
            }
        }
    }

    /// Applies each event in a transaction (script) of its own, in order, moving the position
    /// with it. An event the store rejects on its own is dead-lettered with the store's reason
    /// and parked, and the position moves past it; the events after it are applied (or parked
    /// behind it) as usual. Only a rejected batch takes this slow path.
    async fn apply_event_by_event(&self, claim: Claim, batch: Batch, next_offset: i64) -> Outcome {
        let mut position = claim.next_offset;
        let mut dead: VecDeque<Parked> = batch.dead.into();
        let mut rest = batch.records.into_iter().zip(batch.sources).peekable();
        while let Some((record, source)) = rest.next() {
            // Up to the next event, so records dead-lettered at decoding are passed over too.
            let next = rest.peek().map_or(next_offset, |(r, _)| r.offset);
            let one = Batch {
                records: vec![record],
                sources: vec![source],
                dead: take_before(&mut dead, next),
            };
            let (records, sources, mut due, error) =
                match self.apply_batch(claim, position, one, next).await {
                    Attempt::Done(Outcome::Applied(at)) => {
                        position = at;
                        continue;
                    }
                    Attempt::Done(other) => return other,
                    Attempt::Rejected {
                        records,
                        sources,
                        dead,
                        error,
                    } => (records, sources, dead, error),
                };
            let reason = format!("the store rejected the event: {error}");
            if let Decoded::Stopping = self
                .dead_letter(&sources[0], DeadLetterKind::Rejected, &reason)
                .await
            {
                return Outcome::Stopping;
            }
            due.push(Parked::of(&records[0], Some(reason)));
            // Past the rejected event, without it: the batch parks it and moves the position.
            match self.park(claim, position, due, next).await {
                Ok(at) => position = at,
                Err(outcome) => return outcome,
            }
        }
        if !dead.is_empty() {
            match self.park(claim, position, dead.into(), next_offset).await {
                Ok(at) => position = at,
                Err(outcome) => return outcome,
            }
        }
        Outcome::Applied(position.max(next_offset))
    }

    /// Parks `dead` and moves the position from `position` to `next_offset`.
    async fn park(
        &self,
        claim: Claim,
        position: i64,
        dead: Vec<Parked>,
        next_offset: i64,
    ) -> Result<i64, Outcome> {
        let batch = Batch {
            records: Vec::new(),
            sources: Vec::new(),
            dead,
        };
        match self.apply_batch(claim, position, batch, next_offset).await {
            Attempt::Done(Outcome::Applied(at)) => Ok(at),
            Attempt::Done(other) => Err(other),
            // Nothing but parked events and the position were written: not the data's fault.
            Attempt::Rejected { error, .. } => Err(self.stalled(
                claim,
                position,
                format!("parking dead-lettered events was rejected: {error}"),
            )),
        }
    }

    /// Applies `records` and moves the position from `position` to `next_offset`, retrying
    /// transient failures with backoff (until `stall_after`, when set) and dead-lettering the
    /// events the projection itself rejects.
    async fn apply_batch(
        &self,
        claim: Claim,
        position: i64,
        batch: Batch,
        next_offset: i64,
    ) -> Attempt {
        let Batch {
            mut records,
            mut sources,
            mut dead,
        } = batch;
        let mut backoff = self.retry_min;
        let mut failing_since: Option<Instant> = None;
        loop {
            let started = Instant::now();
            match self
                .sink
                .apply_parking(&self.topic, claim, &records, &dead, next_offset)
                .await
            {
                Ok(applied) => {
                    self.count(claim.partition, applied, next_offset);
                    self.observe(records.len(), started);
                    return Attempt::Done(Outcome::Applied(next_offset));
                }
                Err(SinkError::Fenced) => {
                    self.metrics.fenced.with_label_values(&[&self.id]).inc();
                    return Attempt::Done(Outcome::Fenced);
                }
                Err(SinkError::Poison { event_id, reason }) => {
                    let Some(index) = records
                        .iter()
                        .position(|r| r.event.envelope.event_id == event_id)
                    else {
                        tracing::error!(%event_id, "A projection rejected an event that is not in the batch.");
                        return Attempt::Done(Outcome::Stopping);
                    };
                    if let Decoded::Stopping = self
                        .dead_letter(&sources[index], DeadLetterKind::Rejected, &reason)
                        .await
                    {
                        return Attempt::Done(Outcome::Stopping);
                    }
                    dead.push(Parked::of(&records.remove(index), Some(reason)));
                    dead.sort_by_key(|d| d.offset);
                    sources.remove(index);
                }
                Err(SinkError::Rejected(error)) => {
                    return Attempt::Rejected {
                        records,
                        sources,
                        dead,
                        error,
                    };
                }
                Err(SinkError::Behind { stored, applied }) => {
                    return Attempt::Done(lost_writes(&self.id, claim.partition, stored, applied));
                }
                Err(error @ SinkError::ClaimLost { .. }) => {
                    let reason = format!("{error}; claiming the partition again");
                    tracing::error!(processor = %self.id, partition = claim.partition, %reason, "The store lost a claim.");
                    return Attempt::Done(Outcome::ClaimLost { reason });
                }
                Err(SinkError::Transient(error)) => {
                    let since = *failing_since.get_or_insert(started);
                    if let Some(bound) = self.stall_after
                        && since.elapsed() >= bound
                    {
                        let reason = format!(
                            "applying a batch has failed for {:.0?}: {error}",
                            since.elapsed()
                        );
                        return Attempt::Done(self.stalled(claim, position, reason));
                    }
                    tracing::warn!(%error, processor = %self.id, partition = claim.partition, ?backoff, "Applying a batch failed; retrying.");
                    self.metrics.retries.with_label_values(&[&self.id]).inc();
                    if self.stopping() {
                        return Attempt::Done(Outcome::Stopping);
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.retry_max);
                }
            }
        }
    }

    fn stalled(&self, claim: Claim, position: i64, reason: String) -> Outcome {
        tracing::error!(processor = %self.id, partition = claim.partition, position, %reason, "Giving up on the partition for now.");
        Outcome::Stalled { position, reason }
    }

    /// Dead-letters durably; retries until the broker takes it, so nothing is skipped silently.
    /// Only a stop request ends the retries, and then the batch is not applied either.
    async fn dead_letter(
        &self,
        message: &OwnedMessage,
        kind: DeadLetterKind,
        reason: &str,
    ) -> Decoded {
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
            .with_label_values(&[&self.id, kind.as_str()])
            .inc();
        Decoded::Skipped
    }
}
