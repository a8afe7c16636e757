//! Quiets errors that repeat. While the broker is down every consumer reports the same error
//! several times a second, often two errors in turn (about 90 log lines a second from one idle
//! `surge process`): each error is logged when first seen, its repeats within [`QUIET`] of that
//! are only counted, and the next time it is logged carries that count.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::error::KafkaError;

/// How long repeats of one error go unlogged.
pub(crate) const QUIET: Duration = Duration::from_secs(10);

#[derive(Default)]
pub(crate) struct Repeats {
    /// By error: when it was last logged, and its repeats since.
    seen: Mutex<HashMap<String, (Instant, u64)>>,
}

impl Repeats {
    /// Notes `error` at `now`: `Some(unlogged)` when it should be logged, with how many times it
    /// went unlogged since it was last logged; `None` for a repeat within [`QUIET`] of that.
    pub(crate) fn note(&self, error: &str, now: Instant) -> Option<u64> {
        let mut seen = self.seen.lock().expect("repeats lock");
        if let Some((logged, unlogged)) = seen.get_mut(error)
            && now.saturating_duration_since(*logged) < QUIET
        {
            *unlogged += 1;
            return None;
        }
        // Errors whose text varies must not grow the map without bound.
        if seen.len() >= 64 {
            seen.retain(|_, (logged, _)| now.saturating_duration_since(*logged) < QUIET);
        }
        let unlogged = seen
            .insert(error.to_owned(), (now, 0))
            .map_or(0, |(_, n)| n);
        Some(unlogged)
    }
}

/// A Kafka client context that logs the client's errors quieted, naming the client.
pub(crate) struct QuietErrors {
    client: String,
    repeats: Repeats,
}

impl QuietErrors {
    pub(crate) fn new(client: String) -> Self {
        QuietErrors {
            client,
            repeats: Repeats::default(),
        }
    }

    /// Logs `error` unless it is a repeat within [`QUIET`].
    pub(crate) fn log(&self, error: &KafkaError, reason: &str) {
        if let Some(unlogged) = self.repeats.note(&error.to_string(), Instant::now()) {
            tracing::error!(%error, reason, client = %self.client, unlogged, "Kafka client error.");
        }
    }
}

impl ClientContext for QuietErrors {
    fn error(&self, error: KafkaError, reason: &str) {
        self.log(&error, reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_errors_repeats_within_the_window_are_counted_and_reported_when_it_is_logged_again() {
        let repeats = Repeats::default();
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        assert_eq!(repeats.note("AllBrokersDown", at(0)), Some(0));
        assert_eq!(repeats.note("AllBrokersDown", at(100)), None);
        // Another error in turn is logged once, and does not let the first through again.
        assert_eq!(repeats.note("BrokerTransportFailure", at(200)), Some(0));
        assert_eq!(repeats.note("AllBrokersDown", at(300)), None);
        assert_eq!(repeats.note("BrokerTransportFailure", at(400)), None);
        // The window runs from when the error was last logged.
        assert_eq!(repeats.note("AllBrokersDown", at(10_000)), Some(2));
        assert_eq!(repeats.note("AllBrokersDown", at(10_500)), None);
        assert_eq!(repeats.note("BrokerTransportFailure", at(10_600)), Some(1));
    }

    #[test]
    fn errors_of_ever_new_text_do_not_grow_it_without_bound() {
        let repeats = Repeats::default();
        let t0 = Instant::now();
        for i in 0..1_000_u64 {
            let now = t0 + Duration::from_secs(11 * i);
            assert_eq!(repeats.note(&format!("error {i}"), now), Some(0));
        }
        assert!(repeats.seen.lock().unwrap().len() <= 64);
    }
}
