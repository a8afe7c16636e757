//! One projection version's consumer: poll a batch, decode, dead-letter poison, apply the
//! partitions' batches through the sink (together when it can, else each on its own) with
//! retries, repeat. Runs on a thread of its own so that rebalance callbacks can wait on the
//! store without blocking the async runtime.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::{Offset, TopicPartitionList};
use surge_schemas::Codec;

use super::applier::{Applier, Outcome, lost_writes};
use super::config::ProcessorConfig;
use super::context::{ClaimingContext, Claims};
use super::dead_letters::DeadLetters;
use super::live::{LivePublisher, users_of};
use super::metrics::ProcessorMetrics;
use super::repeats::{QuietErrors, Repeats};
use super::sink::Sink;
use super::stalls::Stalls;

const MAINTAIN_EVERY: Duration = Duration::from_secs(600);
/// How often the store's positions are compared with what was applied, to find a store that
/// lost writes while its partitions were quiet (see `find_lost_writes`).
const CHECK_POSITIONS_EVERY: Duration = Duration::from_secs(5);
const IDLE_POLL: Duration = Duration::from_millis(200);
const SEEK_TIMEOUT: Duration = Duration::from_secs(5);
/// How often applied positions are committed to Kafka. They are only for outside tools (lag
/// dashboards, `kafka-consumer-groups`): committing after every poll cost the broker an offset
/// commit per group and poll, for nothing the processors need.
const COMMIT_EVERY: Duration = Duration::from_secs(1);
/// How long a stopping processor waits to leave its consumer group (see `leave_group`).
const CLOSE_WAIT: Duration = Duration::from_secs(5);
/// The longest a stalled partition waits between tries.
const SET_ASIDE_MAX: Duration = Duration::from_secs(300);

/// Partitions set aside after their batch kept failing: when each is tried again, and the
/// backoff it has reached (doubling from `retry_max` per stall, reset when a batch applies).
#[derive(Default)]
struct SetAside {
    until: HashMap<i32, Instant>,
    backoff: HashMap<i32, Duration>,
}

impl SetAside {
    fn holds(&self, partition: i32) -> bool {
        self.until.contains_key(&partition)
    }

    /// Holds `partition` for its next backoff; returns it.
    fn hold(&mut self, partition: i32, first: Duration) -> Duration {
        let wait = *self
            .backoff
            .entry(partition)
            .and_modify(|b| *b = (*b * 2).min(SET_ASIDE_MAX))
            .or_insert(first);
        self.until.insert(partition, Instant::now() + wait);
        wait
    }

    fn due(&self) -> Vec<i32> {
        let now = Instant::now();
        (self.until.iter())
            .filter(|(_, at)| **at <= now)
            .map(|(p, _)| *p)
            .collect()
    }

    fn release(&mut self, partition: i32) {
        self.until.remove(&partition);
    }

    fn applied(&mut self, partition: i32) {
        self.backoff.remove(&partition);
    }
}

/// A running processor; stop it with [`ProcessorHandle::stop`].
pub struct ProcessorHandle {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    stalls: Stalls,
    claims: Claims,
    pub id: String,
}

impl ProcessorHandle {
    /// Finishes the batch in hand, leaves the group (waiting for that at most `CLOSE_WAIT`),
    /// and returns.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Partitions this processor owns but cannot advance, with the reason.
    pub fn stalled(&self) -> BTreeMap<i32, String> {
        self.stalls.list()
    }

    /// How many partitions this processor has claimed.
    pub fn owned(&self) -> usize {
        self.claims.lock().expect("claims lock").len()
    }
}

/// Starts a processor for `sink` on its own thread; with `live`, each committed batch is
/// announced to the query API's live streams.
pub fn spawn<S: Sink>(
    sink: S,
    codec: Arc<Codec>,
    config: ProcessorConfig,
    metrics: ProcessorMetrics,
    live: Option<LivePublisher>,
) -> Result<ProcessorHandle, rdkafka::error::KafkaError> {
    let sink = Arc::new(sink);
    let id = sink.id();
    let stop = Arc::new(AtomicBool::new(false));
    let claims: Claims = Arc::new(Mutex::new(Default::default()));
    let stalls = Stalls::new(id.clone(), metrics.clone());
    let context = ClaimingContext {
        sink: sink.clone(),
        topic: config.topic.clone(),
        runtime: tokio::runtime::Handle::current(),
        claims: claims.clone(),
        stop: stop.clone(),
        metrics: metrics.clone(),
        retry_max: config.retry_max,
        stalls: stalls.clone(),
        errors: QuietErrors::new(format!("{id} consumer")),
    };
    let consumer: BaseConsumer<ClaimingContext<S>> =
        surge_kafka::manual_commit_consumer_config(&config.brokers, &config.group_id(&id))
            // A stored position outside the topic stops the partition (see `stalls`): resetting
            // to either end would silently skip events.
            .set("auto.offset.reset", "error")
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
            .set("fetch.min.bytes", config.fetch_min_bytes.max(1).to_string())
            .set(
                "queued.min.messages",
                config.prefetch_messages.max(1).to_string(),
            )
            .set("statistics.interval.ms", "5000")
            // A full queue postpones the partition's next fetch by this much (librdkafka's
            // default is a second): with a short queue that second idled catch-ups.
            .set("fetch.queue.backoff.ms", "10")
            // A fetch's buffer lives until its last event is taken; at librdkafka's 1 MiB per
            // partition, nine consumers' buffers held about 300 MB during a catch-up.
            .set("max.partition.fetch.bytes", "262144")
            .create_with_context(context)?;
    consumer.subscribe(&[&config.topic])?;
    let applier = Applier {
        sink: sink.clone(),
        codec,
        dead_letters: DeadLetters::new(&config.brokers, &config.topic, &id)?,
        metrics,
        topic: config.topic.clone(),
        id: id.clone(),
        retry_min: config.retry_min,
        retry_max: config.retry_max,
        stall_after: Some(config.stall_after),
        stop: stop.clone(),
    };
    applier.start_counting();
    let worker = Worker {
        sink,
        applier,
        config,
        claims: claims.clone(),
        stalls: stalls.clone(),
        stop: stop.clone(),
        id: id.clone(),
        live,
        errors: Repeats::default(),
    };
    let runtime = tokio::runtime::Handle::current();
    let thread = std::thread::Builder::new()
        .name(format!("processor-{id}"))
        .spawn(move || {
            let id = worker.id.clone();
            worker.run(&consumer, &runtime);
            leave_group(consumer, &id);
        })
        .expect("spawn processor thread");
    Ok(ProcessorHandle {
        stop,
        thread: Some(thread),
        stalls,
        claims,
        id,
    })
}

/// Closes `consumer` (leaving its group), waiting at most `CLOSE_WAIT`. With the broker
/// unreachable librdkafka's close waits for the group coordinator for as long as it takes (a
/// SIGTERM'd `surge process` hung on it for minutes); a stop must not. The close goes on in the
/// background and ends when the broker answers, or with the process.
fn leave_group<C: ConsumerContext + 'static>(consumer: BaseConsumer<C>, id: &str) {
    let (closed, done) = std::sync::mpsc::channel();
    let closing = std::thread::Builder::new()
        .name(format!("close-{id}"))
        .spawn(move || {
            drop(consumer);
            let _ = closed.send(());
        });
    if closing.is_ok() && done.recv_timeout(CLOSE_WAIT).is_err() {
        tracing::warn!(processor = %id, wait = ?CLOSE_WAIT, "Leaving the consumer group did not finish in time (is the broker reachable?); stopping anyway. The group moves the partitions after the session timeout.");
    }
}

struct Worker<S> {
    sink: Arc<S>,
    applier: Applier<S>,
    config: ProcessorConfig,
    claims: Claims,
    stalls: Stalls,
    stop: Arc<AtomicBool>,
    id: String,
    live: Option<LivePublisher>,
    /// The consumer's errors, quieted while they repeat (a broker outage).
    errors: Repeats,
}

impl<S: Sink> Worker<S> {
    fn run(self, consumer: &BaseConsumer<ClaimingContext<S>>, runtime: &tokio::runtime::Handle) {
        tracing::info!(processor = %self.id, topic = %self.config.topic, "Processor started.");
        // Housekeeping (retention, pruning seen ids) runs once at start, so processes that
        // restart more often than MAINTAIN_EVERY still do it, then every MAINTAIN_EVERY.
        let mut next_maintain = Instant::now();
        let mut next_check = Instant::now() + CHECK_POSITIONS_EVERY;
        let mut held = SetAside::default();
        let mut commits = Commits::default();
        while !self.stopping() {
            self.take_back_due(consumer, &mut held);
            let batch = self.poll_batch(consumer);
            let mut by_partition: BTreeMap<i32, Vec<OwnedMessage>> = BTreeMap::new();
            // Fetched before the partition was paused: it starts again from its stored position.
            for message in batch.into_iter().filter(|m| !held.holds(m.partition())) {
                by_partition
                    .entry(message.partition())
                    .or_default()
                    .push(message);
            }
            let mut batches = Vec::with_capacity(by_partition.len());
            for (partition, mut messages) in by_partition {
                let claim = self
                    .claims
                    .lock()
                    .expect("claims lock")
                    .get(&partition)
                    .copied();
                let Some(claim) = claim else { continue }; // not ours any more
                // Fetched before a re-claim moved the position on: applied already.
                messages.retain(|m| m.offset() >= claim.next_offset);
                if !messages.is_empty() {
                    batches.push((claim, messages));
                }
            }
            let announced: Vec<_> = (batches.iter())
                .map(|(claim, messages)| {
                    let users = self.live.as_ref().map(|_| users_of(messages));
                    (claim.partition, users)
                })
                .collect();
            let outcomes = runtime.block_on(self.applier.process_together(batches));
            for ((partition, users), outcome) in announced.into_iter().zip(outcomes) {
                self.settle(consumer, partition, users, outcome, &mut held, &mut commits);
            }
            if commits.due() {
                self.commit(consumer, &mut commits);
            }
            if Instant::now() >= next_check {
                next_check = Instant::now() + CHECK_POSITIONS_EVERY;
                self.find_lost_writes(consumer, runtime, &mut held, &mut commits);
            }
            if Instant::now() >= next_maintain {
                next_maintain = Instant::now() + MAINTAIN_EVERY;
                if let Err(error) = runtime.block_on(self.sink.maintain()) {
                    tracing::warn!(%error, processor = %self.id, "Maintenance failed; will retry later.");
                }
            }
        }
        self.commit(consumer, &mut commits);
        consumer.unsubscribe();
        tracing::info!(processor = %self.id, "Processor stopped.");
    }

    /// Reads the partitions whose stored position went back behind what this processor applied
    /// there again from that position: the store lost writes (a Redis restarted without
    /// persistence, a failover to a replica that had not received them), its data with them. A
    /// partition with new events finds it in its next batch ([`SinkError::Behind`]); this finds
    /// it in a quiet one, whose lost writes would otherwise wait for its next event.
    ///
    /// [`SinkError::Behind`]: super::sink::SinkError::Behind
    fn find_lost_writes(
        &self,
        consumer: &BaseConsumer<ClaimingContext<S>>,
        runtime: &tokio::runtime::Handle,
        held: &mut SetAside,
        commits: &mut Commits,
    ) {
        let stored = match runtime.block_on(self.sink.stored_positions(&self.config.topic)) {
            Ok(stored) => stored,
            Err(error) => {
                tracing::debug!(%error, processor = %self.id, "Could not read the stored positions; checking again later.");
                return;
            }
        };
        let claims: Vec<(i32, i64)> = (self.claims.lock().expect("claims lock").values())
            .filter(|claim| !held.holds(claim.partition))
            .map(|claim| (claim.partition, claim.next_offset))
            .collect();
        for (partition, applied) in claims {
            // No position at all is 0: a Redis restarted empty. (A dropped version's positions
            // are gone too; reading it again finds its claim gone, and claiming it gives
            // nothing.)
            let stored = stored.get(&partition).copied().unwrap_or(0);
            if stored < applied {
                let outcome = lost_writes(&self.id, partition, stored, applied);
                self.settle(consumer, partition, None, outcome, held, commits);
            }
        }
    }

    /// Acts on what became of `partition`'s batch: announces and records what applied (the
    /// batch's `users`, when live streams are on), forgets a partition fenced off, sets aside
    /// one that stalled or whose store lost writes (to be read again from the store's position).
    fn settle(
        &self,
        consumer: &BaseConsumer<ClaimingContext<S>>,
        partition: i32,
        users: Option<Vec<i64>>,
        outcome: Outcome,
        held: &mut SetAside,
        commits: &mut Commits,
    ) {
        // A store that lost writes is read again from its position at once; a failing one after
        // a backoff.
        let set_aside_for = if matches!(outcome, Outcome::Behind { .. }) {
            self.config.retry_min
        } else {
            self.config.retry_max
        };
        match outcome {
            Outcome::Applied(next) => {
                if let (Some(live), Some(users)) = (&self.live, users) {
                    live.batch_applied(partition, next - 1, users);
                }
                held.applied(partition);
                self.stalls.clear(partition);
                if let Some(owned) = self.claims.lock().expect("claims lock").get_mut(&partition) {
                    owned.next_offset = next;
                }
                commits.applied(partition, next);
            }
            Outcome::Fenced => {
                tracing::warn!(processor = %self.id, partition, "Fenced: another processor owns this partition now, or a rebuilt version replaced this one; dropping the batch.");
                self.claims.lock().expect("claims lock").remove(&partition);
            }
            Outcome::ClaimLost { reason } => {
                self.claim_again(consumer, partition, reason, held);
            }
            Outcome::Stopping => {}
            Outcome::Stalled { position, reason } | Outcome::Behind { position, reason } => {
                if let Some(owned) = self.claims.lock().expect("claims lock").get_mut(&partition) {
                    owned.next_offset = position;
                }
                self.set_aside(consumer, partition, reason, held, set_aside_for);
            }
        }
    }

    /// Claims `partition` again after the store lost this processor's claim, and sets it aside
    /// to be read again from the new claim's position at once. A version that no longer serves
    /// is not claimed: the partition is forgotten, as when fenced.
    fn claim_again(
        &self,
        consumer: &BaseConsumer<ClaimingContext<S>>,
        partition: i32,
        reason: String,
        held: &mut SetAside,
    ) {
        let Some(claims) = consumer.context().claim(&[partition]) else {
            return; // stopping
        };
        let mut owned = self.claims.lock().expect("claims lock");
        match claims.first() {
            Some(claim) => {
                owned.insert(partition, *claim);
                drop(owned);
                tracing::info!(processor = %self.id, partition, generation = claim.generation, from = claim.next_offset, "Partition claimed again.");
                self.set_aside(consumer, partition, reason, held, self.config.retry_min);
            }
            None => {
                owned.remove(&partition);
            }
        }
    }

    /// Commits the positions applied since the last commit, of the partitions still ours.
    /// Kafka's committed offsets are only for outside tools (lag dashboards); resuming always
    /// uses the store's positions, so an async, best-effort commit is enough.
    fn commit(&self, consumer: &BaseConsumer<ClaimingContext<S>>, commits: &mut Commits) {
        let claims = self.claims.lock().expect("claims lock");
        let mut tpl = TopicPartitionList::new();
        for (partition, next) in commits.take() {
            if claims.contains_key(&partition) {
                let _ =
                    tpl.add_partition_offset(&self.config.topic, partition, Offset::Offset(next));
            }
        }
        drop(claims);
        if tpl.count() > 0 {
            let _ = consumer.commit(&tpl, CommitMode::Async);
        }
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Marks `partition` stalled and pauses it, to be tried again after a backoff that starts
    /// at `first`.
    fn set_aside(
        &self,
        consumer: &BaseConsumer<ClaimingContext<S>>,
        partition: i32,
        reason: String,
        held: &mut SetAside,
        first: Duration,
    ) {
        self.stalls.mark(partition, reason);
        let mut tpl = TopicPartitionList::new();
        let _ = tpl.add_partition_offset(&self.config.topic, partition, Offset::Invalid);
        if let Err(error) = consumer.pause(&tpl) {
            tracing::error!(%error, processor = %self.id, partition, "Pausing a stalled partition failed.");
        }
        let wait = held.hold(partition, first);
        tracing::warn!(processor = %self.id, partition, ?wait, "Partition set aside; the others go on.");
    }

    /// Seeks the partitions set aside whose backoff has passed back to their stored positions
    /// and resumes them. They stay marked stalled until a batch of theirs applies.
    fn take_back_due(&self, consumer: &BaseConsumer<ClaimingContext<S>>, held: &mut SetAside) {
        for partition in held.due() {
            let claim = self
                .claims
                .lock()
                .expect("claims lock")
                .get(&partition)
                .copied();
            let Some(claim) = claim else {
                held.release(partition); // revoked: whoever owns it now starts it afresh
                continue;
            };
            let seek = consumer.seek(
                &self.config.topic,
                partition,
                Offset::Offset(claim.next_offset),
                SEEK_TIMEOUT,
            );
            let mut tpl = TopicPartitionList::new();
            let _ = tpl.add_partition_offset(&self.config.topic, partition, Offset::Invalid);
            match seek.and_then(|()| consumer.resume(&tpl)) {
                Ok(()) => {
                    tracing::info!(processor = %self.id, partition, from = claim.next_offset, "Retrying a stalled partition.");
                    held.release(partition);
                }
                Err(error) => {
                    tracing::warn!(%error, processor = %self.id, partition, "Could not take a stalled partition back yet.");
                    held.hold(partition, self.config.retry_max);
                }
            }
        }
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
                Some(Err(KafkaError::MessageConsumption(RDKafkaErrorCode::AutoOffsetReset))) => {
                    // librdkafka does not say which partition; check every owned one.
                    let claims: Vec<_> = self
                        .claims
                        .lock()
                        .expect("claims lock")
                        .values()
                        .copied()
                        .collect();
                    self.stalls.check(consumer, &self.config.topic, &claims);
                }
                Some(Err(error)) => {
                    if let Some(unlogged) = self.errors.note(&error.to_string(), Instant::now()) {
                        tracing::warn!(%error, processor = %self.id, unlogged, "Consumer error.");
                    }
                }
                None if batch.is_empty() => return batch,
                None => break,
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
        }
        batch
    }
}

/// Applied positions waiting for their next commit to Kafka, at most one per [`COMMIT_EVERY`].
struct Commits {
    pending: BTreeMap<i32, i64>,
    last: Instant,
}

impl Default for Commits {
    fn default() -> Self {
        Self {
            pending: BTreeMap::new(),
            last: Instant::now(),
        }
    }
}

impl Commits {
    fn applied(&mut self, partition: i32, next: i64) {
        self.pending.insert(partition, next);
    }

    fn due(&self) -> bool {
        !self.pending.is_empty() && self.last.elapsed() >= COMMIT_EVERY
    }

    fn take(&mut self) -> BTreeMap<i32, i64> {
        self.last = Instant::now();
        std::mem::take(&mut self.pending)
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::ClientContext;
    use rdkafka::consumer::Rebalance;
    use rdkafka::mocking::MockCluster;

    use super::*;

    /// Revoking its partitions takes `revoke`: what a close looks like when the broker never
    /// answers it.
    struct SlowRevoke {
        revoke: Duration,
    }

    impl ClientContext for SlowRevoke {}

    impl ConsumerContext for SlowRevoke {
        fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
            if let Rebalance::Revoke(_) = rebalance {
                std::thread::sleep(self.revoke);
            }
        }
    }

    #[test]
    fn a_close_that_does_not_finish_holds_a_stop_for_close_wait_at_most() {
        let cluster = MockCluster::new(1).unwrap();
        cluster.create_topic("events", 1, 1).unwrap();
        let slow = SlowRevoke {
            revoke: CLOSE_WAIT * 6,
        };
        let consumer: BaseConsumer<SlowRevoke> =
            surge_kafka::manual_commit_consumer_config(&cluster.bootstrap_servers(), "group")
                .create_with_context(slow)
                .unwrap();
        consumer.subscribe(&["events"]).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while consumer.assignment().unwrap().count() == 0 {
            assert!(
                Instant::now() < deadline,
                "the partition was never assigned"
            );
            consumer.poll(Duration::from_millis(100));
        }
        let started = Instant::now();
        leave_group(consumer, "events.test");
        let took = started.elapsed();
        assert!(
            took >= CLOSE_WAIT && took < CLOSE_WAIT * 3,
            "leaving took {took:?}"
        );
    }
}
