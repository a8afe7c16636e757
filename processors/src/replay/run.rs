//! The rebuild of one version, from claiming its partitions to the hand-over: the partition
//! workers apply, and this loop watches them, switches when they have caught up with the
//! serving version, drops the old version after the grace period, and publishes progress.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rdkafka::consumer::Consumer;
use tokio::sync::watch;
use tokio::task::JoinSet;
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

impl Rebuild {
    async fn run<S: Sink>(self, sink: Arc<S>) -> Result<Report, ReplayError> {
        let started = Instant::now();
        let (name, version) = (self.entry.name, self.plan.building.version);
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

        let mut phase = Phase::Rebuilding;
        let mut frozen: Option<(Frozen, Instant)> = None;
        let mut switched_at: Option<Instant> = None;
        let mut until_switch = Duration::ZERO;
        let mut dropped_old = false;
        let mut last_serving_read = Instant::now();
        let mut last_publish: Option<Instant> = None;
        let outcome = loop {
            if last_publish.is_none_or(|at| at.elapsed() >= TICK) {
                self.publish(&tracker, phase);
                last_publish = Some(Instant::now());
            }
            // While the serving version is frozen, every millisecond pauses its writes.
            let tick = if frozen.is_some() { FROZEN_TICK } else { TICK };
            tokio::select! {
                () = tokio::time::sleep(tick) => {}
                joined = workers.join_next(), if !workers.is_empty() => match joined {
                    Some(Ok(Ok(Ended::HandedOver | Ended::Stopped))) | None => {}
                    Some(Ok(Err(error))) => break Err(error),
                    Some(Err(panic)) => break Err(ReplayError::Worker(panic.to_string())),
                },
            }
            let stores = &self.context.stores;
            let from = self.plan.serving.version;
            match phase {
                Phase::Rebuilding => {
                    if last_serving_read.elapsed() >= self.config.serving_poll {
                        last_serving_read = Instant::now();
                        match serving.read().await {
                            Ok(positions) => set_cap(&cap_tx, positions),
                            Err(error) => {
                                tracing::warn!(%error, "Reading the serving version's positions failed; retrying.")
                            }
                        }
                    }
                    if lag(&tracker, &cap_tx.borrow()) <= self.config.switch_lag {
                        // Close enough: freeze the serving version and take the last steps.
                        match freeze(stores, self.entry, &topic, from, version).await {
                            Ok(hold) => {
                                set_cap(&cap_tx, hold.serving().clone());
                                frozen = Some((hold, Instant::now()));
                                phase = Phase::Switching;
                            }
                            Err(error) => break Err(error.into()),
                        }
                    }
                }
                Phase::Switching => {
                    let (hold, since) = frozen.take().expect("frozen while switching");
                    if lag(&tracker, &cap_tx.borrow()) > 0 {
                        if since.elapsed() < SWITCH_WAIT {
                            frozen = Some((hold, since));
                        } else {
                            tracing::warn!(
                                "The rebuild did not catch up with the frozen serving version in time; unfreezing it and trying again."
                            );
                            hold.release().await.map_err(SinkError::from)?;
                            phase = Phase::Rebuilding;
                        }
                        continue;
                    }
                    let frozen_for = since.elapsed();
                    match hold.switch().await.map_err(SinkError::from) {
                        Ok(Switch::Done) => {
                            sink.set_serving(true);
                            cap_tx.send_replace(Cap::Lifted);
                            until_switch = started.elapsed();
                            switched_at = Some(Instant::now());
                            phase = Phase::HandingOver;
                            tracing::info!(
                                projection = name,
                                version,
                                replaced = from,
                                ?frozen_for,
                                "Switched: the rebuilt version serves now."
                            );
                        }
                        Ok(Switch::Behind(behind)) => {
                            tracing::warn!(
                                ?behind,
                                "The serving version moved while frozen (its freeze lease expired?); trying again."
                            );
                            phase = Phase::Rebuilding;
                        }
                        Err(error) => break Err(error.into()),
                    }
                }
                Phase::HandingOver | Phase::DroppingOld => {
                    let since = switched_at.map_or(Duration::ZERO, |at| at.elapsed());
                    self.notice_handovers(&tracker, &claims).await;
                    if !self.keep_old && !dropped_old && since >= self.config.drop_grace {
                        phase = Phase::DroppingOld;
                        self.publish(&tracker, phase);
                        drop_version(stores, self.entry, from).await?;
                        tracing::info!(
                            projection = name,
                            version = from,
                            "Dropped the old version."
                        );
                        dropped_old = true;
                        phase = Phase::HandingOver;
                    }
                    let old_settled = dropped_old || self.keep_old;
                    if old_settled && (workers.is_empty() || since >= self.config.handover_timeout)
                    {
                        break Ok(());
                    }
                }
                Phase::Done => break Ok(()),
            }
        };
        if let Some((hold, _)) = frozen {
            // Failed while the serving version was frozen: let it go on.
            let _ = hold.release().await;
        }
        stop.store(true, Ordering::Relaxed);
        while let Some(joined) = workers.join_next().await {
            if let Ok(Err(error)) = joined {
                tracing::warn!(%error, "A partition worker failed while stopping.");
            }
        }
        heads.abort();
        drop(reader);
        outcome?;
        self.publish(&tracker, Phase::Done);
        let not_handed_over: Vec<i32> = tracker
            .partitions
            .iter()
            .filter(|p| !p.handed_over.load(Ordering::Relaxed))
            .map(|p| p.partition)
            .collect();
        if !not_handed_over.is_empty() {
            tracing::warn!(projection = name, version, partitions = ?not_handed_over, "No serving processor took these partitions over in time; the version falls behind on them until `surge process` runs.");
        }
        let snapshot = tracker.snapshot(name, version, Phase::Done);
        Ok(Report {
            projection: name,
            version,
            replaced: self.plan.serving.version,
            resumed: self.plan.resumed,
            started_at_ms: self.start_ms,
            applied: snapshot.applied_this_run,
            until_switch,
            elapsed: started.elapsed(),
            dropped_old,
            not_handed_over,
        })
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
        let snapshot = tracker.snapshot(self.entry.name, self.plan.building.version, phase);
        self.progress.send_replace(Some(snapshot));
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
