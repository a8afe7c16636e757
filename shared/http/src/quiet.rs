//! Quiet logs under attack: a warning that a flood can repeat (a shed request, a refused wait, a
//! store that is down for every request) is written at most once per call site or error code
//! every [`WINDOW`], carrying how many like it were left out since the last one written
//! (`suppressed`). Every one of them is still counted in the metrics; the log only has to say
//! that it is happening. One minute of flood used to write 193 MB.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

/// At most one line per key in this long.
pub const WINDOW: Duration = Duration::from_secs(10);

struct Sampled {
    written_at: Instant,
    suppressed: u64,
}

/// Keys are call sites or error codes: a fixed, small set, so the map stays small.
static SAMPLES: LazyLock<Mutex<HashMap<&'static str, Sampled>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Whether a warning under `key` is written now: `Some(suppressed)`, how many were left out
/// since the last one written; `None` when this one is left out (and counted).
pub fn admit(key: &'static str) -> Option<u64> {
    admit_at(&SAMPLES, key, Instant::now())
}

fn admit_at(
    samples: &Mutex<HashMap<&'static str, Sampled>>,
    key: &'static str,
    now: Instant,
) -> Option<u64> {
    let mut samples = samples
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    match samples.get_mut(key) {
        Some(sampled) if now.duration_since(sampled.written_at) < WINDOW => {
            sampled.suppressed += 1;
            None
        }
        Some(sampled) => {
            let suppressed = std::mem::take(&mut sampled.suppressed);
            sampled.written_at = now;
            Some(suppressed)
        }
        None => {
            samples.insert(
                key,
                Sampled {
                    written_at: now,
                    suppressed: 0,
                },
            );
            Some(0)
        }
    }
}

/// `tracing::warn!`, sampled by [`admit`]: keyed by the call site, or by `key = <&'static str>`
/// given first. The line written carries a `suppressed` field.
#[macro_export]
macro_rules! sampled_warn {
    (key = $key:expr, $($arg:tt)+) => {
        if let Some(suppressed) = $crate::quiet::admit($key) {
            $crate::__tracing::warn!(suppressed, $($arg)+);
        }
    };
    ($($arg:tt)+) => {
        $crate::sampled_warn!(key = concat!(file!(), ":", line!()), $($arg)+)
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_key_and_window_counting_what_was_left_out() {
        let samples = Mutex::new(HashMap::new());
        let start = Instant::now();
        assert_eq!(admit_at(&samples, "a", start), Some(0));
        for i in 1..=1000 {
            assert_eq!(
                admit_at(&samples, "a", start + Duration::from_millis(i)),
                None
            );
        }
        assert_eq!(admit_at(&samples, "b", start), Some(0), "keys are apart");
        assert_eq!(admit_at(&samples, "a", start + WINDOW), Some(1000));
        assert_eq!(admit_at(&samples, "a", start + WINDOW), None);
        assert_eq!(admit_at(&samples, "a", start + WINDOW * 2), Some(1));
    }

    #[test]
    fn the_macro_writes_the_first_and_leaves_out_the_rest() {
        // Both expansions share this one call site's key.
        let mut written = 0;
        for _ in 0..3 {
            if admit(concat!(file!(), ":", "macro-test")).is_some() {
                written += 1;
            }
            sampled_warn!(key = "quiet-test", "a warning");
        }
        assert_eq!(written, 1);
    }
}
