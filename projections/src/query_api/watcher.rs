//! Read-your-writes waiting without a database poll per request: one watcher per projection
//! keeps a shared snapshot of its positions, refreshed by a single task only while requests are
//! waiting on it. A thousand requests waiting on the same projection cost one query every
//! `interval`, not a thousand.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use crate::positions::{PositionSource, Positions};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitError {
    /// The projection had not applied the position when the deadline passed.
    Timeout,
    /// The store holding the positions did not answer.
    StoreDown,
}

#[derive(Clone, Default)]
struct Snapshot {
    positions: Arc<Positions>,
    /// The last refresh failed.
    down: bool,
}

impl Snapshot {
    fn applied(&self, partition: i32, offset: i64) -> bool {
        applied(&self.positions, partition, offset)
    }
}

/// Whether `positions` (next offset to apply, by partition) include `offset` on `partition`.
pub(crate) fn applied(positions: &Positions, partition: i32, offset: i64) -> bool {
    positions.get(&partition).is_some_and(|next| *next > offset)
}

/// Waiting requests; the refresher sleeps while there are none.
#[derive(Default)]
struct Demand {
    waiters: AtomicUsize,
    wake: Notify,
}

struct Waiting<'a>(&'a Demand);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiters.fetch_sub(1, Ordering::AcqRel);
    }
}

pub struct PositionWatcher {
    snapshot: watch::Receiver<Snapshot>,
    demand: Arc<Demand>,
}

impl PositionWatcher {
    /// Starts the refresher task; it ends when the watcher is dropped.
    pub fn spawn(
        name: &'static str,
        source: PositionSource,
        interval: Duration,
        read_timeout: Duration,
    ) -> Self {
        let (tx, snapshot) = watch::channel(Snapshot::default());
        let demand = Arc::new(Demand::default());
        let task_demand = demand.clone();
        tokio::spawn(async move {
            loop {
                // `notify_one` stores a permit, so a waiter arriving between the check and
                // the await is not missed.
                while task_demand.waiters.load(Ordering::Acquire) == 0 {
                    tokio::select! {
                        () = task_demand.wake.notified() => {}
                        () = tx.closed() => return,
                    }
                }
                let read = tokio::time::timeout(read_timeout, source.read()).await;
                let fresh = match read {
                    Ok(Ok(positions)) => Some(positions),
                    Ok(Err(error)) => {
                        tracing::warn!(projection = name, %error, "Reading projection positions failed.");
                        None
                    }
                    Err(_) => {
                        tracing::warn!(
                            projection = name,
                            "Reading projection positions timed out."
                        );
                        None
                    }
                };
                tx.send_if_modified(|snapshot| match fresh {
                    Some(positions) if snapshot.down || *snapshot.positions != positions => {
                        *snapshot = Snapshot {
                            positions: Arc::new(positions),
                            down: false,
                        };
                        true
                    }
                    Some(_) => false,
                    None => {
                        snapshot.down = true;
                        true
                    }
                });
                tokio::time::sleep(interval).await;
            }
        });
        PositionWatcher { snapshot, demand }
    }

    /// Positions the projection is known to have applied: a lower bound, refreshed only while
    /// reads wait, and never moving back within one version.
    pub fn confirmed(&self) -> Arc<Positions> {
        self.snapshot.borrow().positions.clone()
    }

    /// Returns once the projection has applied `offset` on `partition`, or fails at `deadline`
    /// or when the store cannot be read.
    pub async fn wait_applied(
        &self,
        partition: i32,
        offset: i64,
        deadline: Instant,
    ) -> Result<(), WaitError> {
        let mut snapshot = self.snapshot.clone();
        if snapshot.borrow_and_update().applied(partition, offset) {
            return Ok(());
        }
        self.demand.waiters.fetch_add(1, Ordering::AcqRel);
        let _waiting = Waiting(&self.demand);
        self.demand.wake.notify_one();
        loop {
            tokio::select! {
                changed = snapshot.changed() => {
                    if changed.is_err() {
                        return Err(WaitError::StoreDown);
                    }
                }
                () = tokio::time::sleep_until(deadline) => return Err(WaitError::Timeout),
            }
            let now = snapshot.borrow_and_update();
            if now.applied(partition, offset) {
                return Ok(());
            }
            if now.down {
                return Err(WaitError::StoreDown);
            }
        }
    }
}
