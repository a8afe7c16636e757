//! The sender: sends the outbox's messages through the Bot API within Telegram's limits
//! ([`Limiter`]), from any number of processor instances at once.
//!
//! Each round a sender claims due messages (event notifications first) for a lease, takes a
//! slot from the shared limiter for each, sends it, and records every outcome under its claim:
//! - sent; 403 (the user blocked the bot, or is gone): `BotBlocked` is appended for the user,
//!   who leaves every audience until their next session; another 4xx: failed, with Telegram's
//!   description as the reason;
//! - 429: every send of the bot pauses for `retry_after`, and the message is due again then;
//!   5xx or no answer: due again after a capped exponential backoff, failed after
//!   `max_attempts`; 401 or 404 (a wrong token or API URL, nothing to do with the message):
//!   every send pauses for a minute, with an error in the log.
//!
//! Delivery guarantee: **at least once, with repeats bounded by the messages in flight at a
//! crash.** The Bot API has no idempotency key, so a sender that dies between Telegram's answer
//! and recording it cannot know whether the message went. Each send starts the moment its slot
//! is taken and its outcome is written within `RECORD_EVERY` of the answer, so what a crash
//! leaves unrecorded is the sends awaiting Telegram's answer (at most `concurrency`; at 30
//! messages a second and a 100 ms answer, about 3) and the last few milliseconds of answers.
//! Those messages go back to the queue when their claim's lease expires and are sent again,
//! each to its chat at most once more; the rest of the claim was never sent. Skipping them
//! instead would lose messages nobody can tell were lost; a repeated "+500 coins" is the lesser
//! harm. A claim stops sending before its lease ends, so a live sender never races the one that
//! reclaims its messages. Nothing else sends twice: rows are unique by what caused them, and a
//! rebuild or replay of any projection queues nothing (see [`crate::projectors::notifications`]).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus::{IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};
use sqlx::PgPool;
use surge_bot_api::{BotApi, BotApiError, OutgoingMessage};
use surge_kafka::{EventLog, TraceMeta};
use surge_projections::notifications::{Claimed, Outbox, Outcome};
use surge_schemas::{BotBlocked, Envelope, Event};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::Instant;

use crate::runtime::registered;
use uuid::Uuid;

use super::limiter::{Limiter, Slot};
use crate::projectors::referrals::derived_event_id;

/// How a sender runs.
#[derive(Debug, Clone)]
pub struct SenderSettings {
    /// How long a claim holds its messages; a dead sender's messages are sent again after it.
    pub lease: Duration,
    /// Messages claimed at once (the next claim follows as soon as this one's slots are taken).
    pub batch: i64,
    /// Sends awaiting Telegram's answer at once.
    pub concurrency: usize,
    /// Attempts before a message that keeps failing with 5xx or no answer is failed.
    pub max_attempts: i32,
    /// The Mini App's `https://` URL, opened by the messages' buttons; none without it.
    pub mini_app_url: Option<String>,
    /// How often an idle sender looks for due messages.
    pub poll: Duration,
}

impl SenderSettings {
    /// A claim of about half a second of sending at the fastest rate, at least one message.
    pub fn batch_for(per_second: u32) -> i64 {
        i64::from(per_second / 2).max(1)
    }
}

/// The sender's metrics.
#[derive(Clone)]
pub struct SenderMetrics {
    pub sent: IntCounterVec,
    pub failed: IntCounterVec,
    pub blocked: IntCounterVec,
    pub throttled: IntCounterVec,
    pub retried: IntCounterVec,
    pub reclaimed: IntCounterVec,
    pub paused_ms: IntGauge,
    pub queue_depth: IntGaugeVec,
}

impl SenderMetrics {
    pub fn new(registry: &Registry) -> Self {
        let counter = |name: &str, help: &str, labels: &[&str]| {
            registered(
                registry,
                IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"),
            )
        };
        let paused_ms = registered(
            registry,
            IntGauge::new(
                "notifier_paused_ms",
                "How long every send of the bot stays paused after Telegram's 429, as last seen",
            )
            .expect("valid metric"),
        );
        let queue_depth = registered(
            registry,
            IntGaugeVec::new(
                Opts::new(
                    "notifier_queue_depth",
                    "Messages waiting to be sent, per broadcast (broadcast=\"events\": event notifications)",
                ),
                &["broadcast"],
            )
            .expect("valid metric"),
        );
        SenderMetrics {
            sent: counter(
                "notifier_sent_total",
                "Messages Telegram accepted",
                &["kind"],
            ),
            failed: counter(
                "notifier_failed_total",
                "Messages failed for good, by Telegram's error code (or unreachable)",
                &["reason"],
            ),
            blocked: counter(
                "notifier_blocked_total",
                "Messages refused with 403: the user blocked the bot",
                &["kind"],
            ),
            throttled: counter(
                "notifier_throttled_total",
                "Telegram's 429 answers (each pauses every send of the bot)",
                &["kind"],
            ),
            retried: counter(
                "notifier_retried_total",
                "Messages put back for a 5xx, no answer or a paused bot",
                &["kind"],
            ),
            reclaimed: counter(
                "notifier_reclaimed_total",
                "Messages whose sender's lease expired, put back to be sent again",
                &["kind"],
            ),
            paused_ms,
            queue_depth,
        }
    }
}

/// One sender of one bot.
pub struct Sender {
    pub pool: PgPool,
    pub bot: BotApi,
    pub limiter: Limiter,
    pub events: Arc<EventLog>,
    pub settings: SenderSettings,
    pub metrics: SenderMetrics,
}

/// What sending one message came to.
struct Sent {
    message_id: Uuid,
    outcome: Outcome,
}

const WHOLE_BOT_PAUSE: Duration = Duration::from_secs(60);
const RECLAIM_EVERY: Duration = Duration::from_secs(1);
const DEPTHS_EVERY: Duration = Duration::from_secs(5);

impl Sender {
    /// Sends until `stop` turns true, then waits for the sends in flight and records them.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        tracing::info!("Notification sender running.");
        let (outcomes, recorded) = mpsc::unbounded_channel();
        let recorder = tokio::spawn(record_outcomes(self.pool.clone(), recorded));
        let concurrency = self.settings.concurrency.max(1);
        let permits = Arc::new(Semaphore::new(concurrency));
        let mut next_reclaim = Instant::now();
        let mut next_depths = Instant::now();
        while !*stop.borrow() {
            if Instant::now() >= next_reclaim {
                next_reclaim = Instant::now() + RECLAIM_EVERY;
                match Outbox.reclaim_expired(&self.pool).await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::warn!(
                            messages = n,
                            "Messages of an expired claim are due again; they may have been sent once already."
                        );
                        self.metrics.reclaimed.with_label_values(&["any"]).inc_by(n);
                    }
                    Err(error) => tracing::warn!(%error, "Reclaiming expired claims failed."),
                }
            }
            if Instant::now() >= next_depths {
                next_depths = Instant::now() + DEPTHS_EVERY;
                self.publish_depths().await;
            }
            let claimed = match self.round(&outcomes, &permits).await {
                Ok(claimed) => claimed,
                Err(error) => {
                    tracing::warn!(%error, "A sending round failed; trying again.");
                    0
                }
            };
            if claimed == 0 {
                tokio::select! {
                    _ = tokio::time::sleep(self.settings.poll) => {}
                    _ = stop.changed() => {}
                }
            }
        }
        // Every send holds a permit: taking them all waits for the last answer.
        let _all = permits.acquire_many(concurrency as u32).await;
        drop(outcomes);
        let _ = recorder.await;
        tracing::info!("Notification sender stopped.");
    }

    async fn publish_depths(&self) {
        match Outbox.queue_depths(&self.pool).await {
            Ok(depths) => {
                self.metrics.queue_depth.reset();
                for depth in depths {
                    let label = depth
                        .broadcast_id
                        .map_or_else(|| "events".to_owned(), |id| id.to_string());
                    self.metrics
                        .queue_depth
                        .with_label_values(&[&label])
                        .set(depth.waiting);
                }
            }
            Err(error) => tracing::warn!(%error, "Reading the queue depths failed."),
        }
        if let Ok(paused) = self.limiter.paused_for().await {
            self.metrics.paused_ms.set(paused.as_millis() as i64);
        }
    }

    /// One claim: takes a slot for each message and starts its send as a task of its own the
    /// moment the slot is taken (so messages leave at the limiter's pace, and a 429's pause
    /// stops the slots after it). Returns how many it claimed once every slot was taken, so
    /// the next claim follows without waiting for this one's answers; outcomes go to the
    /// recorder as they come.
    async fn round(
        self: &Arc<Self>,
        outcomes: &mpsc::UnboundedSender<Recorded>,
        permits: &Arc<Semaphore>,
    ) -> Result<usize, sqlx::Error> {
        let claim_id = Uuid::now_v7();
        let claimed = Outbox
            .claim(
                &self.pool,
                claim_id,
                self.settings.lease,
                self.settings.batch,
            )
            .await?;
        let count = claimed.len();
        // Stop sending well before the lease ends, so no other sender reclaims a message this
        // one may still send.
        let stop_at = Instant::now() + self.settings.lease.mul_f64(0.8);
        for message in claimed {
            if let Some(outcome) = self.wait_for_slot(&message, stop_at).await {
                let _ = outcomes.send((claim_id, message.message_id, outcome));
                continue;
            }
            let permit = Arc::clone(permits)
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            let this = Arc::clone(self);
            let outcomes = outcomes.clone();
            tokio::spawn(async move {
                let sent = this.send(message).await;
                let _ = outcomes.send((claim_id, sent.message_id, sent.outcome));
                drop(permit);
            });
        }
        Ok(count)
    }

    /// Waits for a slot for `message`: `None` once taken, or the outcome of giving up for now
    /// (its chat was messaged too recently, or the claim's time ran out).
    async fn wait_for_slot(&self, message: &Claimed, stop_at: Instant) -> Option<Outcome> {
        let paid = self.paid(message);
        loop {
            let wait = match self.limiter.take(message.user_id, paid).await {
                Ok(Slot::Taken(at)) => {
                    tokio::time::sleep(at).await;
                    return None;
                }
                Ok(Slot::ChatBusy(wait)) => {
                    return Some(Outcome::Retry {
                        after: wait,
                        attempt: false,
                    });
                }
                Ok(Slot::Paused(wait) | Slot::Pace(wait)) => wait,
                Err(error) => {
                    tracing::warn!(%error, "The limiter is unreachable; waiting.");
                    Duration::from_millis(500)
                }
            };
            if Instant::now() + wait >= stop_at {
                return Some(Outcome::Retry {
                    after: wait,
                    attempt: false,
                });
            }
            tokio::time::sleep(wait).await;
        }
    }

    fn paid(&self, message: &Claimed) -> bool {
        message.broadcast_id.is_some() && self.limiter.limits().paid_per_second > 0
    }

    fn kind(message_is_broadcast: bool) -> &'static str {
        if message_is_broadcast {
            "broadcast"
        } else {
            "event"
        }
    }

    async fn send(&self, message: Claimed) -> Sent {
        let button = match (&message.button_text, &self.settings.mini_app_url) {
            (Some(label), Some(url)) => Some((label.as_str(), url.as_str())),
            _ => None,
        };
        let outgoing = OutgoingMessage {
            chat_id: message.user_id,
            text: &message.text,
            web_app_button: button,
            paid_broadcast: self.paid(&message),
        };
        let kind = Self::kind(message.broadcast_id.is_some());
        let outcome = match self.bot.send_message(&outgoing).await {
            Ok(()) => {
                self.metrics.sent.with_label_values(&[kind]).inc();
                Outcome::Sent
            }
            Err(error) => self.refused(&message, kind, error).await,
        };
        Sent {
            message_id: message.message_id,
            outcome,
        }
    }

    /// What a refusal means for the message (and the bot).
    async fn refused(&self, message: &Claimed, kind: &str, error: BotApiError) -> Outcome {
        match &error {
            BotApiError::Refused {
                code: 429,
                retry_after,
                ..
            } => {
                self.metrics.throttled.with_label_values(&[kind]).inc();
                let after = Duration::from_secs(retry_after.unwrap_or(1).max(1));
                if let Err(error) = self.limiter.pause(after).await {
                    tracing::warn!(%error, "Recording Telegram's pause failed.");
                }
                tracing::warn!(
                    retry_after_secs = after.as_secs(),
                    "Telegram answered 429; every send of the bot pauses."
                );
                Outcome::Retry {
                    after,
                    attempt: false,
                }
            }
            BotApiError::Refused {
                code: 401 | 404,
                description,
                ..
            } => {
                tracing::error!(%description, "The Bot API refuses the bot (check SURGE_BOT_TOKEN and SURGE_TELEGRAM_API_URL); every send pauses for a minute.");
                let _ = self.limiter.pause(WHOLE_BOT_PAUSE).await;
                Outcome::Retry {
                    after: WHOLE_BOT_PAUSE,
                    attempt: false,
                }
            }
            BotApiError::Refused {
                code: 403,
                description,
                ..
            } => match self.append_blocked(message, description).await {
                Ok(()) => {
                    self.metrics.blocked.with_label_values(&[kind]).inc();
                    Outcome::Blocked {
                        reason: description.clone(),
                    }
                }
                Err(append) => {
                    tracing::warn!(error = %append, "Appending BotBlocked failed; the message is due again.");
                    self.retry(message, kind, format!("BotBlocked not appended: {append}"))
                }
            },
            BotApiError::Refused {
                code, description, ..
            } if (400..500).contains(code) => {
                self.metrics
                    .failed
                    .with_label_values(&[&code.to_string()])
                    .inc();
                Outcome::Failed {
                    reason: description.clone(),
                }
            }
            BotApiError::Refused { .. } | BotApiError::Unreachable { .. } => {
                self.retry(message, kind, error.to_string())
            }
        }
    }

    /// Due again after a backoff, or failed once attempts run out.
    fn retry(&self, message: &Claimed, kind: &str, reason: String) -> Outcome {
        if message.attempts >= self.settings.max_attempts {
            self.metrics.failed.with_label_values(&["gave_up"]).inc();
            return Outcome::Failed { reason };
        }
        self.metrics.retried.with_label_values(&[kind]).inc();
        let exponent = u32::try_from(message.attempts.clamp(1, 10) - 1).unwrap_or(0);
        Outcome::Retry {
            after: (Duration::from_secs(1) * 2u32.pow(exponent)).min(Duration::from_secs(300)),
            attempt: true,
        }
    }

    async fn append_blocked(&self, message: &Claimed, reason: &str) -> Result<(), String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let event = Event {
            envelope: Envelope {
                // One per refused message, so reporting it twice appends one event.
                event_id: derived_event_id(message.message_id, "BotBlocked"),
                user_id: message.user_id,
                occurred_at: now,
                recorded_at: now,
            },
            payload: BotBlocked {
                reason: reason.chars().take(256).collect(),
            }
            .into(),
        };
        self.events
            .append(&[event], &trace_meta())
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

/// A claim's id, a message's id and what became of it.
type Recorded = (Uuid, Uuid, Outcome);

/// How long the recorder gathers outcomes into one write.
const RECORD_EVERY: Duration = Duration::from_millis(20);

/// Writes outcomes as they come, gathered for [`RECORD_EVERY`] into one statement, so what a
/// crash leaves unrecorded is the sends in flight and at most that long of answers.
async fn record_outcomes(pool: PgPool, mut recorded: mpsc::UnboundedReceiver<Recorded>) {
    let mut batch = Vec::new();
    while let Some(first) = recorded.recv().await {
        batch.push(first);
        let until = Instant::now() + RECORD_EVERY;
        while batch.len() < 1_000 {
            match tokio::time::timeout_at(until, recorded.recv()).await {
                Ok(Some(outcome)) => batch.push(outcome),
                Ok(None) | Err(_) => break,
            }
        }
        for attempt in 1..=5u32 {
            match Outbox.record(&pool, &batch).await {
                Ok(written) => {
                    if (written as usize) < batch.len() {
                        tracing::warn!(
                            written,
                            outcomes = batch.len(),
                            "Some outcomes came after their claim's lease expired and were left as the new claim has them."
                        );
                    }
                    break;
                }
                Err(error) if attempt < 5 => {
                    tracing::warn!(%error, attempt, "Recording outcomes failed; retrying.");
                    tokio::time::sleep(Duration::from_millis(200) * attempt).await;
                }
                Err(error) => tracing::error!(
                    %error,
                    outcomes = batch.len(),
                    "Outcomes could not be recorded; their messages are due again after the lease and may be sent twice."
                ),
            }
        }
        batch.clear();
    }
}

/// A fresh W3C trace context for an event the sender appends.
fn trace_meta() -> TraceMeta {
    let span = Uuid::new_v4().simple().to_string();
    TraceMeta {
        traceparent: format!("00-{}-{}-01", Uuid::new_v4().simple(), &span[..16]),
        idempotency_key: None,
    }
}
