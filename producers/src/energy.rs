//! Tap energy: the game economy's limit, as in Notcoin or Hamster Kombat. Each user has a bar of
//! `capacity` taps that refills at `refill_per_sec`; a request's taps must fit in what is left,
//! whole, or the request gets 429 with `Retry-After` (when the bar will hold them) and appends
//! nothing. However a client batches, it cannot earn more than `capacity` at once plus
//! `refill_per_sec` after that.
//!
//! The bar lives in Redis (`<prefix>:energy:<user id>`), read, refilled and spent by one Lua
//! script ([`spend.lua`](energy/spend.lua)) on Redis's own clock, so every write-API instance
//! shares it and two concurrent requests can never both spend the same energy. A full bar is the
//! same as no key, so keys expire once refilled. Redis unreachable means no taps are accepted
//! (fail closed, 503): the economy is never left unguarded.
//!
//! Energy is spent after a request is validated and its idempotency key claimed, just before the
//! append, so a request refused for any other reason spends nothing. See
//! `http::handlers::accept` for what happens when the append fails after the spend.

use std::time::Duration;

use surge_redis::Redis;
use surge_schemas::Event;

/// Hamster Kombat's starting bar: 1,000 taps, refilled at 3 per second (a full bar in about
/// 5.5 minutes). A person tapping flat out manages 10 to 15 taps a second.
pub const DEFAULT_CAPACITY: u32 = 1000;
pub const DEFAULT_REFILL_PER_SEC: u32 = 3;

/// The energy a request's events cost together: one per tap, nothing else (each event type
/// says what it costs beside its struct, `PayloadType::energy_cost` in `schemas/src/events/`).
pub fn total_cost(events: &[Event]) -> u64 {
    events.iter().map(|e| e.payload.energy_cost()).sum()
}

/// Where a user's bar stands after a spend, as the 202 body reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Level {
    /// Whole taps left now.
    pub left: u64,
    pub capacity: u32,
    pub refill_per_sec: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spend {
    /// Spent; the bar now holds `Level::left`.
    Granted(Level),
    /// Not enough energy: nothing was spent. The bar will hold the cost after `wait`.
    Refused { level: Level, wait: Duration },
    /// The cost exceeds a full bar: this request can never be accepted.
    OverCapacity { capacity: u32 },
}

#[derive(Clone)]
pub struct EnergyStore {
    redis: Redis,
    prefix: String,
    capacity: u32,
    refill_per_sec: u32,
    script: redis::Script,
}

impl EnergyStore {
    pub fn new(redis: Redis, prefix: &str, capacity: u32, refill_per_sec: u32) -> Self {
        EnergyStore {
            redis,
            prefix: prefix.to_owned(),
            capacity: capacity.max(1),
            refill_per_sec: refill_per_sec.max(1),
            script: redis::Script::new(include_str!("energy/spend.lua")),
        }
    }

    /// The Redis key of a user's bar.
    fn key(&self, user_id: i64) -> String {
        format!("{}:energy:{}", self.prefix, self.redis.slot(user_id))
    }

    /// Spends `taps` if the bar holds them, atomically. `0` reads the level.
    pub async fn spend(&self, user_id: i64, taps: u64) -> redis::RedisResult<Spend> {
        if taps > u64::from(self.capacity) {
            return Ok(Spend::OverCapacity {
                capacity: self.capacity,
            });
        }
        let (granted, left, wait_ms) = self.run(user_id, i64::try_from(taps).unwrap_or(0)).await?;
        let level = self.level(left);
        Ok(if granted == 1 {
            Spend::Granted(level)
        } else {
            Spend::Refused {
                level,
                wait: Duration::from_millis(wait_ms.max(1)),
            }
        })
    }

    /// Gives back taps spent by a request that certainly appended nothing (up to a full bar).
    pub async fn refund(&self, user_id: i64, taps: u64) -> redis::RedisResult<()> {
        if taps > 0 {
            self.run(user_id, -i64::try_from(taps).unwrap_or(0)).await?;
        }
        Ok(())
    }

    /// Fills the user's bar for the payment `charge_id`, once however often it is asked (for
    /// `keep`, past any redelivery of the payment): false when it was already given.
    pub async fn refill_once(
        &self,
        user_id: i64,
        charge_id: &str,
        keep: Duration,
    ) -> redis::RedisResult<bool> {
        // Beside the bar in a cluster: the script touches both.
        let marker = format!(
            "{}:energy-refill:{}{charge_id}",
            self.prefix,
            self.redis.beside(user_id)
        );
        let filled: i32 = redis::Script::new(include_str!("energy/refill_once.lua"))
            .key(self.key(user_id))
            .key(marker)
            .arg(keep.as_secs())
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(filled == 1)
    }

    async fn run(&self, user_id: i64, cost: i64) -> redis::RedisResult<(i64, u64, u64)> {
        let mut conn = self.redis.clone();
        self.script
            .key(self.key(user_id))
            .arg(self.capacity)
            .arg(self.refill_per_sec)
            .arg(cost)
            .invoke_async(&mut conn)
            .await
    }

    fn level(&self, left: u64) -> Level {
        Level {
            left,
            capacity: self.capacity,
            refill_per_sec: self.refill_per_sec,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use surge_schemas::{DailyCheckedIn, Envelope, Payload, TapsSubmitted};
    use uuid::Uuid;

    fn event(payload: Payload) -> Event {
        Event {
            envelope: Envelope {
                event_id: Uuid::now_v7(),
                user_id: 1,
                occurred_at: 0,
                recorded_at: 0,
            },
            payload,
        }
    }

    #[test]
    fn only_taps_cost_energy() {
        let events = [
            event(TapsSubmitted { count: 1000 }.into()),
            event(DailyCheckedIn { day: 1 }.into()),
            event(TapsSubmitted { count: 7 }.into()),
        ];
        assert_eq!(total_cost(&events), 1007);
    }
}
