//! The per-user write rate shared by every write-API instance (`SURGE_USER_RATE_SCOPE=shared`):
//! the instance's GCRA again, kept in Redis beside the user's other keys (`<prefix>:rate:<user>`,
//! in the user's slot in a cluster) and run by one script ([`shared.lua`](shared.lua)) on Redis's
//! own clock, so a client spreading its writes over n instances still gets one rate. It costs a
//! round trip per write; the instance's own limiter runs first and turns a flood from one client
//! away without asking Redis.
//!
//! Redis unreachable: the write goes on under the instance's limit alone (fail open). A rate
//! limit protects capacity; the game economy is guarded by energy, which fails closed.

use std::time::Duration;

use redis::Script;
use surge_redis::Redis;

pub struct SharedRateLimiter {
    redis: Redis,
    prefix: String,
    /// Microseconds per write at the sustained rate.
    interval_us: u64,
    burst: u32,
    script: Script,
}

impl SharedRateLimiter {
    /// `per_sec` and `burst` as the instance's limiter takes them.
    pub fn new(redis: Redis, prefix: &str, per_sec: u32, burst: u32) -> Self {
        let (rate, burst) = super::rate_and_burst(per_sec, burst);
        SharedRateLimiter {
            redis,
            prefix: prefix.to_owned(),
            interval_us: 1_000_000 / u64::from(rate.get()),
            burst: burst.get(),
            script: Script::new(include_str!("shared.lua")),
        }
    }

    fn key(&self, user_id: i64) -> String {
        format!("{}:rate:{}", self.prefix, self.redis.slot(user_id))
    }

    /// Ok (the write is counted), or how long until the user may write again. Ok as well when
    /// Redis does not answer (see the module's note).
    pub async fn check(&self, user_id: i64) -> Result<(), Duration> {
        let answer = self
            .script
            .key(self.key(user_id))
            .arg(self.interval_us)
            .arg(self.burst)
            .invoke_async::<u64>(&mut self.redis.clone())
            .await;
        match answer {
            Ok(0) => Ok(()),
            Ok(wait_us) => Err(Duration::from_micros(wait_us)),
            Err(error) => {
                surge_http::sampled_warn!(key = "shared_rate_unchecked", %error, "The shared write rate could not be checked; this instance's own limit applies alone.");
                Ok(())
            }
        }
    }
}
