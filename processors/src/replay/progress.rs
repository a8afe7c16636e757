//! How far a rebuild has got: per partition, the next offset applied and the offset it aims
//! for, and from their recent history the events/s and the ETA. The partition workers update
//! [`Tracker`]'s counters; the rebuild publishes a [`Snapshot`] a few times a second for the
//! command line to draw.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

/// The rates are averaged over this much recent history.
const RATE_WINDOW: Duration = Duration::from_secs(5);

/// Where the rebuild is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Reading and applying, behind the serving version.
    Rebuilding,
    /// Caught up with the serving version; switching the active version.
    Switching,
    /// Active: keeping up with the head until the serving processors take the partitions over.
    HandingOver,
    /// Dropping the old version.
    DroppingOld,
    Done,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Rebuilding => "rebuilding",
            Phase::Switching => "switching",
            Phase::HandingOver => "handing over",
            Phase::DroppingOld => "dropping the old version",
            Phase::Done => "done",
        }
    }
}

/// One partition's counters, shared between its worker and the rebuild.
#[derive(Debug)]
pub(crate) struct PartitionState {
    pub(crate) partition: i32,
    /// The next offset to apply (everything before it is in the new version).
    pub(crate) next: AtomicI64,
    /// The partition's end as last seen (high watermark or end-of-partition).
    pub(crate) head: AtomicI64,
    /// The serving version's next offset here, while the rebuild may not pass it.
    pub(crate) serving: AtomicI64,
    /// The worker has stopped: a serving processor took the partition over.
    pub(crate) handed_over: AtomicBool,
}

impl PartitionState {
    pub(crate) fn new(partition: i32, next: i64) -> Self {
        PartitionState {
            partition,
            next: AtomicI64::new(next),
            head: AtomicI64::new(next),
            serving: AtomicI64::new(0),
            handed_over: AtomicBool::new(false),
        }
    }

    /// The offset the partition aims for now: the serving version's position or the head,
    /// whichever is further (the head may be under-reported by some brokers).
    pub(crate) fn target(&self) -> i64 {
        let next = self.next.load(Ordering::Relaxed);
        self.head
            .load(Ordering::Relaxed)
            .max(self.serving.load(Ordering::Relaxed))
            .max(next)
    }

    pub(crate) fn saw_head(&self, head: i64) {
        self.head.fetch_max(head, Ordering::Relaxed);
    }
}

/// One partition in a snapshot. Counts are offsets: events from offset zero.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PartitionProgress {
    pub partition: i32,
    pub done: i64,
    pub target: i64,
    /// Events per second over the last few seconds.
    pub rate: f64,
    pub eta: Option<Duration>,
    pub handed_over: bool,
}

/// The whole rebuild at one instant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshot {
    pub projection: &'static str,
    pub version: u32,
    pub phase: Phase,
    pub elapsed: Duration,
    /// Offsets moved past in this run (events and transaction markers; a resumed rebuild
    /// started from its stored positions).
    pub applied_this_run: i64,
    pub done: i64,
    pub target: i64,
    pub rate: f64,
    pub eta: Option<Duration>,
    pub partitions: Vec<PartitionProgress>,
}

/// The counters, and the history the rates come from.
pub(crate) struct Tracker {
    pub(crate) partitions: Vec<PartitionState>,
    started: Instant,
    started_at: Vec<i64>,
    history: Mutex<VecDeque<(Instant, Vec<i64>)>>,
}

impl Tracker {
    pub(crate) fn new(partitions: Vec<PartitionState>) -> Self {
        let started_at = partitions
            .iter()
            .map(|p| p.next.load(Ordering::Relaxed))
            .collect();
        Tracker {
            partitions,
            started: Instant::now(),
            started_at,
            history: Mutex::new(VecDeque::new()),
        }
    }

    pub(crate) fn partition(&self, partition: i32) -> &PartitionState {
        self.partitions
            .iter()
            .find(|p| p.partition == partition)
            .expect("a tracked partition")
    }

    /// The current snapshot; records the counters for the rates.
    pub(crate) fn snapshot(
        &self,
        projection: &'static str,
        version: u32,
        phase: Phase,
    ) -> Snapshot {
        self.snapshot_at(Instant::now(), projection, version, phase)
    }

    fn snapshot_at(
        &self,
        now: Instant,
        projection: &'static str,
        version: u32,
        phase: Phase,
    ) -> Snapshot {
        let nexts: Vec<i64> = self
            .partitions
            .iter()
            .map(|p| p.next.load(Ordering::Relaxed))
            .collect();
        let (then, before) = {
            let mut history = self.history.lock().expect("history lock");
            history.push_back((now, nexts.clone()));
            while history.len() > 2 && now - history[1].0 >= RATE_WINDOW {
                history.pop_front();
            }
            history.front().cloned().expect("just pushed")
        };
        let secs = (now - then).as_secs_f64();
        let rate = |from: i64, to: i64| {
            if secs > 0.0 {
                (to - from).max(0) as f64 / secs
            } else {
                0.0
            }
        };
        let partitions: Vec<PartitionProgress> = self
            .partitions
            .iter()
            .zip(nexts.iter().zip(&before))
            .map(|(state, (&done, &was))| {
                let handed_over = state.handed_over.load(Ordering::Relaxed);
                // A partition handed over is no longer this rebuild's to finish.
                let target = if handed_over {
                    done
                } else {
                    state.target().max(done)
                };
                let rate = rate(was, done);
                PartitionProgress {
                    partition: state.partition,
                    done,
                    target,
                    rate,
                    eta: eta(target - done, rate),
                    handed_over,
                }
            })
            .collect();
        let done: i64 = nexts.iter().sum();
        let target: i64 = partitions.iter().map(|p| p.target).sum();
        let rate = rate(before.iter().sum(), done);
        Snapshot {
            projection,
            version,
            phase,
            elapsed: now - self.started,
            applied_this_run: done - self.started_at.iter().sum::<i64>(),
            done,
            target,
            rate,
            eta: eta(target - done, rate),
            partitions,
        }
    }
}

/// Time to do `remaining` events at `rate`; `None` when nothing is moving.
fn eta(remaining: i64, rate: f64) -> Option<Duration> {
    if remaining <= 0 {
        return Some(Duration::ZERO);
    }
    (rate >= 1.0).then(|| Duration::from_secs_f64(remaining as f64 / rate))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker(nexts: &[i64]) -> Tracker {
        Tracker::new(
            nexts
                .iter()
                .enumerate()
                .map(|(p, &next)| PartitionState::new(p as i32, next))
                .collect(),
        )
    }

    #[test]
    fn the_target_is_the_further_of_the_head_and_the_serving_position() {
        let state = PartitionState::new(0, 10);
        assert_eq!(state.target(), 10);
        state.saw_head(50);
        state.serving.store(40, Ordering::Relaxed);
        assert_eq!(state.target(), 50);
        state.serving.store(70, Ordering::Relaxed);
        assert_eq!(state.target(), 70);
        state.saw_head(20); // a lower watermark never moves the head back
        assert_eq!(state.head.load(Ordering::Relaxed), 50);
    }

    #[test]
    fn eta_is_what_remains_over_the_rate_and_unknown_when_stalled() {
        assert_eq!(eta(1000, 100.0), Some(Duration::from_secs(10)));
        assert_eq!(eta(0, 0.0), Some(Duration::ZERO));
        assert_eq!(eta(1000, 0.0), None);
    }

    #[test]
    fn rates_come_from_the_counters_over_the_recent_window() {
        let tracker = tracker(&[100, 0]);
        tracker.partitions[0].saw_head(1100);
        tracker.partitions[1].saw_head(500);
        let t0 = tracker.started;
        let first = tracker.snapshot_at(t0, "wallets", 2, Phase::Rebuilding);
        assert_eq!((first.done, first.target, first.rate), (100, 1600, 0.0));
        assert_eq!(first.eta, None);

        tracker.partitions[0].next.store(300, Ordering::Relaxed);
        tracker.partitions[1].next.store(100, Ordering::Relaxed);
        let t2 = t0 + Duration::from_secs(2);
        let second = tracker.snapshot_at(t2, "wallets", 2, Phase::Rebuilding);
        assert_eq!(second.applied_this_run, 300);
        assert_eq!(second.rate, 150.0);
        assert_eq!(second.partitions[0].rate, 100.0);
        assert_eq!(second.partitions[0].eta, Some(Duration::from_secs(8)));
        assert_eq!(second.eta, Some(Duration::from_secs_f64(1200.0 / 150.0)));

        // Samples older than the window stop counting.
        let t20 = t0 + Duration::from_secs(20);
        let _ = tracker.snapshot_at(
            t20 - Duration::from_secs(1),
            "wallets",
            2,
            Phase::Rebuilding,
        );
        let late = tracker.snapshot_at(t20, "wallets", 2, Phase::Rebuilding);
        assert_eq!(late.rate, 0.0);
    }
}
