//! Telegram's limits on one bot, kept in Redis so every sender of the bot (every processor
//! instance) shares them: a global pace (30 messages a second by default; paid broadcasting's
//! own, up to 1,000, when configured), one message a second to a chat and 20 a minute to a
//! group, and a pause of every send after a 429 for its `retry_after`.
//!
//! A sender books its next slot on the shared pace and sleeps until it (at most one booked
//! slot per sender, never more than [`BOOK_AHEAD`]), so the round trips between slots do not
//! slow the pace. The pace runs at [`PACE_MARGIN`] of the configured rate: messages leave evenly spaced, but
//! reach Telegram with network jitter, and two that arrive closer than they left must not push
//! a one-second window over its limit.

use std::time::Duration;

use redis::Script;
use surge_projections::naming::bot_keys_base;
use surge_redis::Redis;

/// The share of a configured rate the pace uses.
pub const PACE_MARGIN: f64 = 0.95;

/// Telegram's limits, as configured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Messages per second overall (Telegram: about 30).
    pub per_second: u32,
    /// Messages per second with `allow_paid_broadcast` (up to 1,000); 0: paid broadcasting off.
    pub paid_per_second: u32,
    /// Between two messages to one private chat (Telegram: about 1 s).
    pub chat_interval: Duration,
    /// Messages per minute to one group (Telegram: 20).
    pub group_per_minute: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_second: 30,
            paid_per_second: 0,
            chat_interval: Duration::from_secs(1),
            group_per_minute: 20,
        }
    }
}

impl Limits {
    /// The fastest any one kind of message may go, for sizing claims.
    pub fn fastest(&self) -> u32 {
        self.per_second.max(self.paid_per_second).max(1)
    }

    fn interval_us(per_second: u32) -> u64 {
        (1_000_000.0 / (f64::from(per_second.max(1)) * PACE_MARGIN)).ceil() as u64
    }

    /// Between two messages to `chat_id`: a group's (negative id) spreads its per-minute limit
    /// evenly, with the margin.
    fn chat_interval(&self, chat_id: i64) -> Duration {
        if chat_id < 0 {
            Duration::from_secs_f64(60.0 / (f64::from(self.group_per_minute.max(1)) * PACE_MARGIN))
        } else {
            self.chat_interval
        }
    }
}

/// How far ahead a sender may book a slot: beyond it, it waits instead of holding slots it
/// may not use (a pause could come first).
pub const BOOK_AHEAD: Duration = Duration::from_millis(250);

/// A slot booked for a send, or how long to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// Booked: the message goes out in this long.
    Taken(Duration),
    /// The bot is paused after a 429.
    Paused(Duration),
    /// This chat was messaged too recently.
    ChatBusy(Duration),
    /// The pace: the next slot comes in this long.
    Pace(Duration),
}

/// One bot's limits in Redis.
#[derive(Clone)]
pub struct Limiter {
    redis: Redis,
    limits: Limits,
    pause_key: String,
    free_key: String,
    paid_key: String,
    chat_prefix: String,
    script: Script,
}

impl Limiter {
    /// The limiter of the bot `bot_id` under the deployment prefix `prefix`.
    pub fn new(redis: Redis, prefix: &str, bot_id: &str, limits: Limits) -> Self {
        let base = bot_keys_base(prefix, bot_id);
        Limiter {
            redis,
            limits,
            pause_key: format!("{base}:pause"),
            free_key: format!("{base}:pace"),
            paid_key: format!("{base}:paid_pace"),
            chat_prefix: format!("{base}:chat:"),
            script: Script::new(include_str!("limiter.lua")),
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Books a slot for a message to `chat_id`, paid broadcasting when `paid`.
    pub async fn take(&self, chat_id: i64, paid: bool) -> redis::RedisResult<Slot> {
        let (pace, per_second) = if paid {
            (&self.paid_key, self.limits.paid_per_second)
        } else {
            (&self.free_key, self.limits.per_second)
        };
        let chat_ms = self.limits.chat_interval(chat_id).as_millis().max(1) as u64;
        let (verdict, wait): (i64, i64) = self
            .script
            .key(&self.pause_key)
            .key(pace)
            .key(format!("{}{chat_id}", self.chat_prefix))
            .arg(Limits::interval_us(per_second))
            .arg(chat_ms)
            .arg(BOOK_AHEAD.as_micros() as u64)
            .invoke_async(&mut self.redis.clone())
            .await?;
        if verdict == 0 {
            return Ok(Slot::Taken(Duration::from_micros(wait.max(0) as u64)));
        }
        let wait = Duration::from_millis(wait.max(1) as u64);
        Ok(match verdict {
            1 => Slot::Paused(wait),
            2 => Slot::ChatBusy(wait),
            _ => Slot::Pace(wait),
        })
    }

    /// Pauses every send of the bot for `retry_after` (Telegram's 429), unless a longer pause
    /// is already set.
    pub async fn pause(&self, retry_after: Duration) -> redis::RedisResult<()> {
        let ms = retry_after.as_millis().max(1) as u64;
        let mut redis = self.redis.clone();
        let current: i64 = redis::cmd("PTTL")
            .arg(&self.pause_key)
            .query_async(&mut redis)
            .await?;
        if current < ms as i64 {
            let () = redis::cmd("SET")
                .arg(&self.pause_key)
                .arg(1)
                .arg("PX")
                .arg(ms)
                .query_async(&mut redis)
                .await?;
        }
        Ok(())
    }

    /// How long the bot stays paused.
    pub async fn paused_for(&self) -> redis::RedisResult<Duration> {
        let ms: i64 = redis::cmd("PTTL")
            .arg(&self.pause_key)
            .query_async(&mut self.redis.clone())
            .await?;
        Ok(Duration::from_millis(ms.max(0) as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pace_keeps_a_margin_under_the_rate_and_groups_spread_their_minute() {
        assert_eq!(Limits::interval_us(30), 35_088);
        assert_eq!(Limits::interval_us(1000), 1_053);
        let limits = Limits::default();
        assert_eq!(limits.chat_interval(42), Duration::from_secs(1));
        let group = limits.chat_interval(-10_042);
        assert!(
            group > Duration::from_secs(3) && group < Duration::from_millis(3200),
            "{group:?}"
        );
    }
}
