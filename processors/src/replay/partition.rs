//! One partition of a rebuild: read its queue, batch, apply through the version's sink, and
//! never pass the serving version's position until the switch lifts that cap. Far behind, a
//! batch is up to `bulk_batch` events; near its target, `batch_max` as the serving processors
//! batch. After the switch it keeps the new version at the head until a serving processor
//! claims the partition (the rebuild sees the generation move, or this worker is fenced): the
//! hand-over.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rdkafka::Message;
use rdkafka::error::KafkaError;
use rdkafka::message::OwnedMessage;
use tokio::sync::watch;
use tokio::time::Instant;

use super::ReplayError;
use super::config::ReplayConfig;
use super::pacing::Pacer;
use super::progress::Tracker;
use super::reader::Queue;
use crate::runtime::{Applier, Claim, Outcome, Sink};

/// How long an empty queue is waited on before the loop looks at the cap and stop flag again.
const IDLE: Duration = Duration::from_millis(200);
/// A bulk batch takes what keeps arriving, up to `bulk_batch` events, and stops at the first
/// gap this long: far behind, the consumer has fetched ahead while the last batch was applied.
const BULK_GAP: Duration = Duration::from_millis(50);

/// How far a partition may go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cap {
    /// Before the switch: not past the serving version's next offset, per partition (absent:
    /// the serving version has applied nothing there).
    Serving(Arc<HashMap<i32, i64>>),
    /// After the switch: as far as the topic goes.
    Lifted,
}

impl Cap {
    fn of(&self, partition: i32) -> Option<i64> {
        match self {
            Cap::Serving(positions) => Some(positions.get(&partition).copied().unwrap_or(0)),
            Cap::Lifted => None,
        }
    }
}

/// How a partition's worker ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// A serving processor claimed the partition after the switch.
    HandedOver,
    /// The rebuild asked it to stop.
    Stopped,
}

/// What every partition's worker shares.
pub(crate) struct Shared<S> {
    pub(crate) applier: Applier<S>,
    pub(crate) config: ReplayConfig,
    pub(crate) tracker: Arc<Tracker>,
    pub(crate) pacer: Option<Pacer>,
    /// Events recorded before this instant are passed over (point-in-time rebuilds).
    pub(crate) skip_before: Option<i64>,
    pub(crate) cap: watch::Receiver<Cap>,
}

pub(crate) async fn run<S: Sink>(
    shared: Arc<Shared<S>>,
    claim: Claim,
    queue: Queue,
) -> Result<Ended, ReplayError> {
    let partition = claim.partition;
    let state = shared.tracker.partition(partition);
    let mut cap = shared.cap.clone();
    let mut next = claim.next_offset;
    let mut held: Option<OwnedMessage> = None;
    loop {
        if shared.applier.stop.load(Ordering::Relaxed) {
            return Ok(Ended::Stopped);
        }
        if state.handed_over.load(Ordering::Relaxed) {
            tracing::info!(partition, "A serving processor took the partition over.");
            return Ok(Ended::HandedOver);
        }
        let limit = cap.borrow_and_update().of(partition);
        state
            .serving
            .store(limit.unwrap_or_default(), Ordering::Relaxed);
        let allowed = |offset: i64| limit.is_none_or(|cap| offset < cap);
        let bulk = state.target() - next > shared.config.bulk_batch as i64;
        let max = if bulk {
            let bound = shared.applier.sink.max_batch().unwrap_or(usize::MAX);
            shared.config.bulk_batch.min(bound)
        } else {
            shared.config.batch_max
        };

        let mut batch: Vec<OwnedMessage> = Vec::new();
        let mut capped = false;
        if let Some(message) = held.take() {
            if allowed(message.offset()) {
                batch.push(message);
            } else {
                held = Some(message);
                capped = true;
            }
        }
        // A normal batch waits at most `batch_wait` after its first event; a bulk batch stops
        // at the first gap between events.
        let wait = shared.config.batch_wait;
        let mut deadline = (!batch.is_empty() && !bulk).then(|| Instant::now() + wait);
        while !capped && batch.len() < max {
            let timeout = match deadline {
                _ if bulk && !batch.is_empty() => BULK_GAP,
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => IDLE,
            };
            let Ok(received) = tokio::time::timeout(timeout, queue.recv()).await else {
                break; // nothing more for now
            };
            let message = match received {
                Ok(message) => message,
                Err(KafkaError::PartitionEOF(_)) => {
                    let end = batch.last().map_or(next, |m| m.offset() + 1);
                    state.saw_head(end);
                    if batch.is_empty() {
                        continue;
                    }
                    break;
                }
                Err(error) => {
                    tracing::warn!(%error, partition, "Consumer error.");
                    continue;
                }
            };
            let offset = message.offset();
            if offset < next {
                continue; // fetched from before the position: applied already
            }
            if !allowed(offset) {
                held = Some(message.detach());
                capped = true;
                break;
            }
            batch.push(message.detach());
            if !bulk {
                deadline.get_or_insert_with(|| Instant::now() + wait);
            }
        }
        if batch.is_empty() {
            if capped {
                // Wait for the serving version to move on (or the switch to lift the cap).
                tokio::select! {
                    _ = cap.changed() => {}
                    () = tokio::time::sleep(IDLE) => {}
                }
            }
            continue;
        }
        if let Some(pacer) = &shared.pacer {
            pacer.wait(batch.len()).await;
        }
        match shared
            .applier
            .process(claim, batch, shared.skip_before)
            .await
        {
            Outcome::Applied(position) => {
                next = position;
                state.next.store(next, Ordering::Relaxed);
                state.saw_head(next);
            }
            Outcome::Fenced if cap.borrow().of(partition).is_none() => {
                state.handed_over.store(true, Ordering::Relaxed);
                tracing::info!(partition, "A serving processor took the partition over.");
                return Ok(Ended::HandedOver);
            }
            Outcome::Fenced => return Err(ReplayError::FencedWhileBuilding(partition)),
            Outcome::Stopping => return Ok(Ended::Stopped),
            Outcome::Stalled { reason, .. }
            | Outcome::Behind { reason, .. }
            | Outcome::ClaimLost { reason } => {
                return Err(ReplayError::Worker(reason));
            }
        }
    }
}
