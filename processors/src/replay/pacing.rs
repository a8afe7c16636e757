//! `--max-rate`: spaces a rebuild's batches so all partitions together apply at most so many
//! events per second, leaving the stores room for the serving path.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// A shared schedule: each batch reserves `events / rate` seconds of it and waits for its slot.
pub(crate) struct Pacer {
    per_event: Duration,
    next_free: Mutex<Option<Instant>>,
}

impl Pacer {
    pub(crate) fn new(events_per_sec: u32) -> Self {
        Pacer {
            per_event: Duration::from_secs(1) / events_per_sec.max(1),
            next_free: Mutex::new(None),
        }
    }

    /// When a batch of `events` asked for at `now` may be applied; reserves its share.
    fn reserve(&self, events: usize, now: Instant) -> Instant {
        let mut next_free = self.next_free.lock().expect("pacer lock");
        let start = next_free.map_or(now, |free| free.max(now));
        *next_free = Some(start + self.per_event * u32::try_from(events).unwrap_or(u32::MAX));
        start
    }

    /// Waits until a batch of `events` may be applied.
    pub(crate) async fn wait(&self, events: usize) {
        let at = self.reserve(events, Instant::now());
        tokio::time::sleep_until(at).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_spaced_by_their_size_over_the_rate() {
        let pacer = Pacer::new(1000);
        let now = Instant::now();
        assert_eq!(pacer.reserve(500, now), now);
        assert_eq!(pacer.reserve(100, now), now + Duration::from_millis(500));
        assert_eq!(pacer.reserve(1, now), now + Duration::from_millis(600));
        // After an idle stretch the schedule starts from the present, not the past.
        let later = now + Duration::from_secs(10);
        assert_eq!(pacer.reserve(1, later), later);
    }
}
