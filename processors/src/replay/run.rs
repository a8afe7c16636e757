//! The rebuild of one version, from claiming its partitions to the hand-over: the partition
//! workers apply, and this loop watches them, switches when they have caught up with the
//! serving version, drops the old version after the grace period, and publishes progress.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rdkafka::consumer::Consumer;
use surge_projections::positions::PositionSource;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use super::pacing::Pacer;
use super::partition::{self, Cap, Ended, Shared};
use super::plan::Plan;
use super::progress::{PartitionState, Phase, Snapshot, Tracker};
use super::{ReplayConfig, ReplayError, Report, reader};
use crate::projectors::{Entry, SinkContext, UseSink};
use crate::runtime::dead_letters::DeadLetters;
use crate::runtime::{Applier, Claim, Sink, SinkError};
use crate::versions::{Frozen, Switch, drop_version, freeze, generations};

/// How often progress is published and the phase reconsidered.
const TICK: Duration = Duration::from_millis(250);
/// How often the catch-up is checked while the serving version is frozen.
const FROZEN_TICK: Duration = Duration::from_millis(2);
/// Longest the serving version stays frozen waiting for the rebuild's last batches; then it is
/// unfrozen and the rebuild tries again.
const SWITCH_WAIT: Duration = Duration::from_secs(3);
/// How often the partitions' ends are read for the progress display.
const HEADS_EVERY: Duration = Duration::from_secs(2);

pub(super) struct Rebuild {
    pub(super) entry: &'static Entry,
    pub(super) context: SinkContext,
    pub(super) config: ReplayConfig,
    pub(super) plan: Plan,
    /// The topic's partitions, from the broker's metadata.
    pub(super) partitions: Vec<i32>,
    pub(super) start_ms: Option<i64>,
    pub(super) keep_old: bool,
    pub(super) progress: watch::Sender<Option<Snapshot>>,
}

impl UseSink for Rebuild {
    type Output = Result<Report, ReplayError>;

    async fn use_sink<S: Sink>(self, sink: S) -> Self::Output {
        self.run(Arc::new(sink)).await
    }
}

/// A rebuild whose partitions are claimed and whose workers apply: what every phase reads.
struct Running<S> {
    sink: Arc<S>,
    claims: Vec<Claim>,
    tracker: Arc<Tracker>,
    /// Where the serving version has got to.
    serving: PositionSource,
    /// How far the workers may apply: the serving version's positions until the switch.
    cap: watch::Sender<Cap>,
    stop: Arc<AtomicBool>,
    workers: JoinSet<Result<Ended, ReplayError>>,
    heads: JoinHandle<()>,
    /// Taken (and so closed) when the rebuild stops.
    reader: Option<reader::Reader>,
}

/// Where the phases have got to.
struct Phases {
    phase: Phase,
    /// The serving version, frozen for the switch, and since when.
    frozen: Option<(Frozen, Instant)>,
    switched_at: Option<Instant>,
    until_switch: Duration,
    dropped_old: bool,
    last_serving_read: Instant,
}

/// What a phase's step says about the rebuild.
enum Step {
    Continue,
    Finished,
}

impl Rebuild {
    /// The phases in order: claim and start the workers, rebuild until close to the serving
    /// version, switch, hand over (dropping the old version after the grace period), then stop
    /// the workers and report.
    async fn run<S: Sink>(self, sink: Arc<S>) -> Result<Report, ReplayError> {
        let started = Instant::now();
        let mut running = self.start(sink).await?;
        let mut phases = Phases {
            phase: Phase::Rebuilding,
            frozen: None,
            switched_at: None,
            until_switch: Duration::ZERO,
            dropped_old: false,
            last_serving_read: Instant::now(),
        };
        let outcome = self.follow_phases(&mut running, &mut phases, started).await;
        if let Some((hold, _)) = phases.frozen.take() {
            // Failed while the serving version was frozen: let it go on.
            let _ = hold.release().await;
        }
        running.stop().await;
        outcome?;
        Ok(self.report(&running, &phases, started))
    }

    /// Creates the version's tables, claims its partitions (seeding a point-in-time rebuild)
    /// and starts one worker per partition, capped at the serving version's positions.
    async fn start<S: Sink>(&self, sink: Arc<S>) -> Result<Running<S>, ReplayError> {
        let (name, version) = (self.entry.name(), self.plan.building.version);
        let topic = self.config.topic.clone();
        sink.migrate().await?;
        sink.set_serving(false);
        let claims = sink.claim(&topic, &self.partitions).await?;
        if let Some(start) = self.start_ms
            && claims.iter().all(|c| c.next_offset == 0)
        {
            sink.seed_before(self.plan.serving.version, start).await?;
        }
        let tracker = Arc::new(Tracker::new(
            claims
                .iter()
                .map(|c| PartitionState::new(c.partition, c.next_offset))
                .collect(),
        ));
        if self.plan.resumed {
            let at: i64 = claims.iter().map(|c| c.next_offset).sum();
            tracing::info!(
                projection = name,
                version,
                at,
                "Resuming the interrupted rebuild where it stopped."
            );
        }

        let serving =
            (self.context.stores).positions(self.entry, self.plan.serving.version, &topic);
        let first = serving.read().await?;
        for state in &tracker.partitions {
            let at = first.get(&state.partition).copied().unwrap_or(0);
            state.serving.store(at, Ordering::Relaxed);
        }
        let (cap_tx, cap) = watch::channel(Cap::Serving(Arc::new(first)));
        let stop = Arc::new(AtomicBool::new(false));
        let group = surge_projections::naming::replay_group(&topic, name, version);
        let (reader, queues) = reader::open(&self.config, &group, &claims)?;
        let shared = Arc::new(Shared {
            applier: Applier {
                sink: sink.clone(),
                codec: self.context.codec.clone(),
                dead_letters: DeadLetters::new(&self.config.brokers, &topic, &sink.id())?,
                metrics: self.context.metrics.clone(),
                topic: topic.clone(),
                id: sink.id(),
                retry_min: self.config.retry_min,
                retry_max: self.config.retry_max,
                // A rebuild has no other partitions waiting on this one's thread: it retries
                // for as long as it takes.
                stall_after: None,
                stop: stop.clone(),
            },
            config: self.config.clone(),
            tracker: tracker.clone(),
            pacer: self.config.max_rate.map(Pacer::new),
            skip_before: self.start_ms,
            cap,
        });
        let heads = tokio::spawn(watch_heads(
            reader.consumer.clone(),
            topic.clone(),
            tracker.clone(),
        ));
        let mut workers = JoinSet::new();
        for (claim, queue) in queues {
            workers.spawn(partition::run(shared.clone(), claim, queue));
        }
        Ok(Running {
            sink,
            claims,
            tracker,
            serving,
            cap: cap_tx,
            stop,
            workers,
            heads,
            reader: Some(reader),
        })
    }

    /// Publishes progress and takes each phase's step until the rebuild has finished or failed.
    async fn follow_phases<S: Sink>(
        &self,
        running: &mut Running<S>,
        phases: &mut Phases,
        started: Instant,
    ) -> Result<(), ReplayError> {
        let mut last_publish: Option<Instant> = None;
        loop {
            if last_publish.is_none_or(|at| at.elapsed() >= TICK) {
                self.publish(&running.tracker, phases.phase);
                last_publish = Some(Instant::now());
            }
            // While the serving version is frozen, every millisecond pauses its writes.
            let tick = if phases.frozen.is_some() {
                FROZEN_TICK
            } else {
                TICK
            };
            tokio::select! {
                () = tokio::time::sleep(tick) => {}
                joined = running.workers.join_next(), if !running.workers.is_empty() => match joined {
                    Some(Ok(Ok(Ended::HandedOver | Ended::Stopped))) | None => {}
                    Some(Ok(Err(error))) => return Err(error),
                    Some(Err(panic)) => return Err(ReplayError::Worker(panic.to_string())),
                },
            }
            let step = match phases.phase {
                Phase::Rebuilding => self.rebuilding(running, phases).await?,
                Phase::Switching => self.switching(running, phases, started).await?,
                Phase::HandingOver | Phase::DroppingOld => {
                    self.handing_over(running, phases).await?
                }
                Phase::Done => Step::Finished,
            };
            if let Step::Finished = step {
                return Ok(());
            }
        }
    }

    /// Follows the serving version's positions; once close enough, freezes it to switch.
    async fn rebuilding<S: Sink>(
        &self,
        running: &Running<S>,
        phases: &mut Phases,
    ) -> Result<Step, ReplayError> {
        if phases.last_serving_read.elapsed() >= self.config.serving_poll {
            phases.last_serving_read = Instant::now();
            match running.serving.read().await {
                Ok(positions) => set_cap(&running.cap, positions),
                Err(error) => {
                    tracing::warn!(%error, "Reading the serving version's positions failed; retrying.")
                }
            }
        }
        if lag(&running.tracker, &running.cap.borrow()) <= self.config.switch_lag {
            // Close enough: freeze the serving version and take the last steps.
            let (from, to) = (self.plan.serving.version, self.plan.building.version);
            let hold = freeze(
                &self.context.stores,
                self.entry,
                &self.config.topic,
                from,
                to,
            )
            .await?;
            set_cap(&running.cap, hold.serving().clone());
            phases.frozen = Some((hold, Instant::now()));
            phases.phase = Phase::Switching;
        }
        Ok(Step::Continue)
    }

    /// Waits (a bounded time) for the workers to reach the frozen serving version, then moves
    /// the active mark in one step of the store; unfreezes and goes back to rebuilding when
    /// either does not work out.
    async fn switching<S: Sink>(
        &self,
        running: &Running<S>,
        phases: &mut Phases,
        started: Instant,
    ) -> Result<Step, ReplayError> {
        let (hold, since) = phases.frozen.take().expect("frozen while switching");
        if lag(&running.tracker, &running.cap.borrow()) > 0 {
            if since.elapsed() < SWITCH_WAIT {
                phases.frozen = Some((hold, since));
            } else {
                tracing::warn!(
                    "The rebuild did not catch up with the frozen serving version in time; unfreezing it and trying again."
                );
                hold.release().await.map_err(SinkError::from)?;
                phases.phase = Phase::Rebuilding;
            }
            return Ok(Step::Continue);
        }
        let frozen_for = since.elapsed();
        match hold.switch().await.map_err(SinkError::from)? {
            Switch::Done => {
                running.sink.set_serving(true);
                running.cap.send_replace(Cap::Lifted);
                phases.until_switch = started.elapsed();
                phases.switched_at = Some(Instant::now());
                phases.phase = Phase::HandingOver;
                tracing::info!(
                    projection = self.entry.name(),
                    version = self.plan.building.version,
                    replaced = self.plan.serving.version,
                    ?frozen_for,
                    "Switched: the rebuilt version serves now."
                );
            }
            Switch::Behind(behind) => {
                tracing::warn!(
                    ?behind,
                    "The serving version moved while frozen (its freeze lease expired?); trying again."
                );
                phases.phase = Phase::Rebuilding;
            }
        }
        Ok(Step::Continue)
    }

    /// Keeps the new version at the head until the serving processors have taken each
    /// partition over (or the hand-over times out), dropping the old version after the grace
    /// period unless it is kept.
    async fn handing_over<S: Sink>(
        &self,
        running: &Running<S>,
        phases: &mut Phases,
    ) -> Result<Step, ReplayError> {
        let since = phases.switched_at.map_or(Duration::ZERO, |at| at.elapsed());
        self.notice_handovers(&running.tracker, &running.claims)
            .await;
        let from = self.plan.serving.version;
        if !self.keep_old && !phases.dropped_old && since >= self.config.drop_grace {
            phases.phase = Phase::DroppingOld;
            self.publish(&running.tracker, phases.phase);
            drop_version(&self.context.stores, self.entry, from).await?;
            tracing::info!(
                projection = self.entry.name(),
                version = from,
                "Dropped the old version."
            );
            phases.dropped_old = true;
            phases.phase = Phase::HandingOver;
        }
        let old_settled = phases.dropped_old || self.keep_old;
        if old_settled && (running.workers.is_empty() || since >= self.config.handover_timeout) {
            return Ok(Step::Finished);
        }
        Ok(Step::Continue)
    }

    /// The report of a finished rebuild, warning about partitions no serving processor took.
    fn report<S>(&self, running: &Running<S>, phases: &Phases, started: Instant) -> Report {
        let (name, version) = (self.entry.name(), self.plan.building.version);
        self.publish(&running.tracker, Phase::Done);
        let not_handed_over: Vec<i32> = running
            .tracker
            .partitions
            .iter()
            .filter(|p| !p.handed_over.load(Ordering::Relaxed))
            .map(|p| p.partition)
            .collect();
        if !not_handed_over.is_empty() {
            tracing::warn!(projection = name, version, partitions = ?not_handed_over, "No serving processor took these partitions over in time; the version falls behind on them until `surge process` runs.");
        }
        let snapshot = running.tracker.snapshot(name, version, Phase::Done);
        Report {
            projection: name,
            version,
            replaced: self.plan.serving.version,
            resumed: self.plan.resumed,
            started_at_ms: self.start_ms,
            applied: snapshot.applied_this_run,
            until_switch: phases.until_switch,
            elapsed: started.elapsed(),
            dropped_old: phases.dropped_old,
            not_handed_over,
        }
    }

    /// Marks the partitions a serving processor has claimed since the rebuild did (their
    /// generation moved): their workers stop.
    async fn notice_handovers(&self, tracker: &Tracker, claims: &[Claim]) {
        let version = self.plan.building.version;
        let topic = &self.config.topic;
        match generations(&self.context.stores, self.entry, version, topic).await {
            Ok(now) => {
                for claim in claims {
                    if now
                        .get(&claim.partition)
                        .is_some_and(|g| *g != claim.generation)
                    {
                        tracker
                            .partition(claim.partition)
                            .handed_over
                            .store(true, Ordering::Relaxed);
                    }
                }
            }
            Err(error) => {
                tracing::warn!(%error, "Reading who owns the partitions failed; retrying.")
            }
        }
    }

    fn publish(&self, tracker: &Tracker, phase: Phase) {
        let snapshot = tracker.snapshot(self.entry.name(), self.plan.building.version, phase);
        self.progress.send_replace(Some(snapshot));
    }
}

impl<S> Running<S> {
    /// Stops the workers (waiting for each) and the readers.
    async fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        while let Some(joined) = self.workers.join_next().await {
            if let Ok(Err(error)) = joined {
                tracing::warn!(%error, "A partition worker failed while stopping.");
            }
        }
        self.heads.abort();
        drop(self.reader.take());
    }
}

/// Keeps each partition's head (high watermark) current for the progress display; the target
/// is never below the serving version's position anyway.
async fn watch_heads(consumer: Arc<reader::ReplayConsumer>, topic: String, tracker: Arc<Tracker>) {
    loop {
        let (consumer, topic, tracker) = (consumer.clone(), topic.clone(), tracker.clone());
        let _ = tokio::task::spawn_blocking(move || {
            for state in &tracker.partitions {
                match consumer.fetch_watermarks(&topic, state.partition, Duration::from_secs(5)) {
                    Ok((_, high)) => state.saw_head(high),
                    Err(error) => tracing::debug!(%error, "Reading a partition's end failed."),
                }
            }
        })
        .await;
        tokio::time::sleep(HEADS_EVERY).await;
    }
}

/// Moves the cap to `positions` if they differ from it.
fn set_cap(cap: &watch::Sender<Cap>, positions: HashMap<i32, i64>) {
    let fresh = Cap::Serving(Arc::new(positions));
    cap.send_if_modified(|current| {
        let changed = *current != fresh;
        if changed {
            *current = fresh;
        }
        changed
    });
}

/// Events the serving version has applied and the rebuild has not, over all partitions.
fn lag(tracker: &Tracker, cap: &Cap) -> i64 {
    let Cap::Serving(serving) = cap else {
        return 0;
    };
    tracker
        .partitions
        .iter()
        .map(|p| {
            let serving_next = serving.get(&p.partition).copied().unwrap_or(0);
            (serving_next - p.next.load(Ordering::Relaxed)).max(0)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lag_counts_what_the_serving_version_has_applied_and_the_rebuild_has_not() {
        let tracker = Tracker::new(vec![PartitionState::new(0, 10), PartitionState::new(1, 4)]);
        let serving = |pairs: &[(i32, i64)]| {
            Cap::Serving(Arc::new(pairs.iter().copied().collect::<HashMap<_, _>>()))
        };
        assert_eq!(lag(&tracker, &serving(&[(0, 10), (1, 4)])), 0);
        // A partition ahead of the serving one does not make up for one behind.
        assert_eq!(lag(&tracker, &serving(&[(0, 9), (1, 7)])), 3);
        // Only the partitions being rebuilt count.
        assert_eq!(lag(&tracker, &serving(&[(0, 12), (1, 5), (2, 3)])), 2 + 1);
        assert_eq!(lag(&tracker, &Cap::Lifted), 0);
    }
}
