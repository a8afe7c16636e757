//! Per-user write rate (GCRA from `governor`), kept in this instance's memory: a check costs no
//! network round trip on the hot path. With N instances behind a balancer a user can reach up to
//! N times the rate: route users stickily (by user id), or share the rate through Redis
//! ([`shared`], `SURGE_USER_RATE_SCOPE=shared`) when that matters.

mod shared;

pub use shared::SharedRateLimiter;

use std::num::NonZeroU32;
use std::sync::{Arc, Weak};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

/// Where a user's write rate is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RateScope {
    /// In each instance's memory (no round trip).
    #[default]
    Instance,
    /// In each instance's memory, then in Redis across every instance.
    Shared,
}

impl std::str::FromStr for RateScope {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "instance" => Ok(RateScope::Instance),
            "shared" => Ok(RateScope::Shared),
            other => Err(format!(
                "unknown rate scope {other:?}; expected instance or shared"
            )),
        }
    }
}

/// The sustained rate and the burst both limiters count with: at least one write a second, and
/// a burst below the rate is the rate.
fn rate_and_burst(per_sec: u32, burst: u32) -> (NonZeroU32, NonZeroU32) {
    let rate = NonZeroU32::new(per_sec.max(1)).expect("at least one");
    let burst = NonZeroU32::new(burst.max(rate.get())).expect("at least one");
    (rate, burst)
}

pub struct UserRateLimiter {
    limiter: DefaultKeyedRateLimiter<i64>,
    clock: DefaultClock,
}

impl UserRateLimiter {
    pub fn new(per_sec: u32, burst: u32) -> Self {
        let (rate, burst) = rate_and_burst(per_sec, burst);
        let quota = Quota::per_second(rate).allow_burst(burst);
        UserRateLimiter {
            limiter: DefaultKeyedRateLimiter::keyed(quota),
            clock: DefaultClock::default(),
        }
    }

    /// Ok, or how long until the user may write again.
    pub fn check(&self, user_id: i64) -> Result<(), Duration> {
        self.limiter
            .check_key(&user_id)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Forgets idle users every minute so the map does not grow with every user ever seen.
    /// Holds only a weak reference: the task ends when the app is dropped.
    pub fn spawn_cleanup(this: &Arc<Self>) {
        let weak: Weak<Self> = Arc::downgrade(this);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(limiter) = weak.upgrade() else { break };
                limiter.limiter.retain_recent();
                limiter.limiter.shrink_to_fit();
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_refuses_with_a_wait_per_user() {
        let limiter = UserRateLimiter::new(1, 3);
        for _ in 0..3 {
            assert!(limiter.check(7).is_ok());
        }
        let wait = limiter.check(7).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert!(limiter.check(8).is_ok(), "another user is not limited");
    }
}
