//! One projection version's consumer: poll a batch, decode, dead-letter poison, apply per
//! partition through the sink with retries, repeat. Runs on a thread of its own so that
//! rebalance callbacks can wait on the store without blocking the async runtime.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use surge_schemas::Codec;

use super::Record;
use super::config::ProcessorConfig;
use super::context::{ClaimingContext, Claims};
use super::dead_letters::DeadLetters;
use super::metrics::ProcessorMetrics;
use super::resume::{Check, Resumes};
use super::sink::{Claim, Sink, SinkError};

const MAINTAIN_EVERY: Duration = Duration::from_secs(600);
const IDLE_POLL: Duration = Duration::from_millis(200);

/// A running processor; stop it with [`ProcessorHandle::stop`].
pub struct ProcessorHandle {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    pub id: String,
}

impl ProcessorHandle {
    /// Finishes the batch in hand, leaves the group, and returns.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }
}

/// Starts a processor for `sink` on its own thread.
pub fn spawn<S: Sink>(
    sink: S,
    codec: Arc<Codec>,
    config: ProcessorConfig,
    metrics: ProcessorMetrics,
) -> Result<ProcessorHandle, rdkafka::error::KafkaError> {
    let sink = Arc::new(sink);
    let id = sink.id();
    let stop = Arc::new(AtomicBool::new(false));
    let claims: Claims = Arc::new(Mutex::new(Default::default()));
    let context = ClaimingContext {
        sink: sink.clone(),
        topic: config.topic.clone(),
        runtime: tokio::runtime::Handle::current(),
        claims: claims.clone(),
        stop: stop.clone(),
        metrics: metrics.clone(),
        retry_max: config.retry_max,
    };
    let consumer: BaseConsumer<ClaimingContext<S>> = ClientConfig::new()
        .set("bootstrap.servers", &config.brokers)
        .set("group.id", config.group_id(&id))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .set(
            "session.timeout.ms",
            config.session_timeout.as_millis().to_string(),
        )
        .set(
            "heartbeat.interval.ms",
            (config.session_timeout.as_millis() / 4)
                .max(100)
                .to_string(),
        )
        .set(
            "max.poll.interval.ms",
            config.max_poll_interval.as_millis().to_string(),
        )
        .set(
            "fetch.wait.max.ms",
            config.fetch_wait.as_millis().max(1).to_string(),
        )
        .set("statistics.interval.ms", "5000")
        .create_with_context(context)?;
    consumer.subscribe(&[&config.topic])?;
    let dead_letters = DeadLetters::new(&config.brokers, &config.topic, &id)?;
    let worker = Worker {
        sink,
        codec,
        config,
        metrics,
        claims,
        dead_letters,
        stop: stop.clone(),
        id: id.clone(),
    };
    let runtime = tokio::runtime::Handle::current();
    let thread = std::thread::Builder::new()
        .name(format!("processor-{id}"))
        .spawn(move || worker.run(&consumer, &runtime))
        .expect("spawn processor thread");
    Ok(ProcessorHandle {
        stop,
        thread: Some(thread),
        id,
    })
}

struct Worker<S> {
    sink: Arc<S>,
    codec: Arc<Codec>,
    config: ProcessorConfig,
    metrics: ProcessorMetrics,
    claims: Claims,
    dead_letters: DeadLetters,
    stop: Arc<AtomicBool>,
    id: String,
}

impl<S: Sink> Worker<S> {
    fn run(self, consumer: &BaseConsumer<ClaimingContext<S>>, runtime: &tokio::runtime::Handle) {
        tracing::info!(processor = %self.id, topic = %self.config.topic, "Processor started.");
        // Housekeeping (retention, pruning seen ids) runs once at start, so processes that
        // restart more often than MAINTAIN_EVERY still do it, then every MAINTAIN_EVERY.
        let mut next_maintain = Instant::now();
        let mut resumes = Resumes::default();
        while !self.stopping() {
            let batch = self.poll_batch(consumer);
            let mut by_partition: BTreeMap<i32, Vec<OwnedMessage>> = BTreeMap::new();
            for message in batch {
                by_partition
                    .entry(message.partition())
                    .or_default()
                    .push(message);
            }
            let mut done = TopicPartitionList::new();
            for (partition, mut messages) in by_partition {
                let claim = self
                    .claims
                    .lock()
                    .expect("claims lock")
                    .get(&partition)
                    .copied();
                let Some(claim) = claim else { continue }; // not ours any more
                if let Check::Seek(offset) = resumes.check(&claim, messages[0].offset()) {
                    let seek = consumer.seek(
                        &self.config.topic,
                        partition,
                        Offset::Offset(offset),
                        Duration::from_secs(5),
                    );
                    if let Err(error) = seek {
                        tracing::warn!(%error, processor = %self.id, partition, "Seeking back failed; will retry.");
                    }
                    continue;
                }
                // Fetching started before the stored position; what precedes it is applied.
                messages.retain(|m| m.offset() >= claim.next_offset);
                if messages.is_empty() {
                    continue;
                }
                if let Some(next) = runtime.block_on(self.process(claim, messages)) {
                    let _ = done.add_partition_offset(
                        &self.config.topic,
                        partition,
                        Offset::Offset(next),
                    );
                }
            }
            // Kafka's committed offsets are only for outside tools (lag dashboards); resuming
            // always uses the store's positions, so an async, best-effort commit is enough.
            if done.count() > 0 {
                let _ = consumer.commit(&done, CommitMode::Async);
            }
            if Instant::now() >= next_maintain {
                next_maintain = Instant::now() + MAINTAIN_EVERY;
                if let Err(error) = runtime.block_on(self.sink.maintain()) {
                    tracing::warn!(%error, processor = %self.id, "Maintenance failed; will retry later.");
                }
            }
        }
        consumer.unsubscribe();
        tracing::info!(processor = %self.id, "Processor stopped.");
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Up to `batch_max` messages, waiting at most `batch_wait` after the first. Returns an
    /// empty batch after an idle poll so the caller can notice a stop request.
    fn poll_batch(&self, consumer: &BaseConsumer<ClaimingContext<S>>) -> Vec<OwnedMessage> {
        let mut batch = Vec::new();
        let mut deadline: Option<Instant> = None;
        while batch.len() < self.config.batch_max && !self.stopping() {
            let timeout =
                deadline.map_or(IDLE_POLL, |d| d.saturating_duration_since(Instant::now()));
            match consumer.poll(timeout) {
                Some(Ok(message)) => {
                    batch.push(message.detach());
                    deadline.get_or_insert_with(|| Instant::now() + self.config.batch_wait);
                }
                Some(Err(error)) => tracing::warn!(%error, processor = %self.id, "Consumer error."),
                None if batch.is_empty() => return batch,
                None => break,
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
        }
        batch
    }

    /// Decodes and applies one partition's messages; returns the next offset when applied.
    async fn process(&self, claim: Claim, messages: Vec<OwnedMessage>) -> Option<i64> {
        let next_offset = messages.last().map(|m| m.offset() + 1)?;
        let mut records = Vec::with_capacity(messages.len());
        let mut sources = Vec::with_capacity(messages.len());
        for message in messages {
            match self.decode(&message).await {
                Decoded::Event(event) => {
                    records.push(Record {
                        partition: message.partition(),
                        offset: message.offset(),
                        event: *event,
                    });
                    sources.push(message);
                }
                Decoded::DeadLettered => {}
                Decoded::Stopping => return None,
            }
        }
        self.apply(claim, records, sources, next_offset).await
    }

    /// Registry outages are retried, not dead-lettered: they say nothing about the event.
    async fn decode(&self, message: &OwnedMessage) -> Decoded {
        let mut backoff = self.config.retry_min;
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
                    backoff = (backoff * 2).min(self.config.retry_max);
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
    ) -> Option<i64> {
        let partition = claim.partition.to_string();
        let mut backoff = self.config.retry_min;
        loop {
            let started = Instant::now();
            match self
                .sink
                .apply(&self.config.topic, claim, &records, next_offset)
                .await
            {
                Ok(applied) => {
                    let labels = [self.id.as_str(), partition.as_str()];
                    self.metrics
                        .events_applied
                        .with_label_values(&labels)
                        .inc_by(applied.events as u64);
                    self.metrics
                        .applied_offset
                        .with_label_values(&labels)
                        .set(next_offset);
                    self.metrics
                        .batch_size
                        .with_label_values(&[&self.id])
                        .observe(records.len() as f64);
                    self.metrics
                        .apply_seconds
                        .with_label_values(&[&self.id])
                        .observe(started.elapsed().as_secs_f64());
                    return Some(next_offset);
                }
                Err(SinkError::Fenced) => {
                    tracing::warn!(processor = %self.id, partition = claim.partition, "Fenced: another processor owns this partition now; dropping the batch.");
                    self.metrics.fenced.with_label_values(&[&self.id]).inc();
                    self.claims
                        .lock()
                        .expect("claims lock")
                        .remove(&claim.partition);
                    return None;
                }
                Err(SinkError::Poison { event_id, reason }) => {
                    let Some(index) = records
                        .iter()
                        .position(|r| r.event.envelope.event_id == event_id)
                    else {
                        tracing::error!(%event_id, "A projection rejected an event that is not in the batch.");
                        return None;
                    };
                    if let Decoded::Stopping =
                        self.dead_letter(&sources[index], "rejected", &reason).await
                    {
                        return None;
                    }
                    records.remove(index);
                    sources.remove(index);
                }
                Err(SinkError::Transient(error)) => {
                    tracing::warn!(%error, processor = %self.id, partition = claim.partition, ?backoff, "Applying a batch failed; retrying.");
                    self.metrics.retries.with_label_values(&[&self.id]).inc();
                    if self.stopping() {
                        return None;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.config.retry_max);
                }
            }
        }
    }

    /// Dead-letters durably; retries until the broker takes it, so nothing is skipped silently.
    /// Only a stop request ends the retries, and then the batch is not applied either.
    async fn dead_letter(&self, message: &OwnedMessage, kind: &str, reason: &str) -> Decoded {
        tracing::warn!(processor = %self.id, partition = message.partition(), offset = message.offset(), reason, "Dead-lettering an event.");
        let mut backoff = self.config.retry_min;
        while let Err(error) = self.dead_letters.send(message, reason).await {
            tracing::error!(%error, "Writing a dead letter failed; retrying.");
            if self.stopping() {
                return Decoded::Stopping;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(self.config.retry_max);
        }
        self.metrics
            .dead_letters
            .with_label_values(&[&self.id, kind])
            .inc();
        Decoded::DeadLettered
    }
}

enum Decoded {
    Event(Box<surge_schemas::Event>),
    DeadLettered,
    Stopping,
}
