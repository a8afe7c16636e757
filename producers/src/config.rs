//! Settings of the write API. Filled from `SURGE_*` environment variables by the `surge` binary.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use surge_schemas::GameConfig;
use surge_schemas::TokenKeys;

use crate::http::rate_limit::RateScope;
use crate::idempotency::ReplicaWait;
use crate::stars::StarsConfig;

#[derive(Debug, Clone)]
pub struct WriteApiConfig {
    /// Telegram bot token: the HMAC key for initData. Never logged (SecretString redacts it).
    pub bot_token: SecretString,
    /// Validate initData with Telegram's Ed25519 key for this bot id instead of the bot token.
    pub ed25519_bot_id: Option<i64>,
    /// Oldest initData accepted.
    pub init_data_max_age: Duration,
    /// Largest request body; larger gets 413.
    pub max_body_bytes: usize,
    /// Deepest JSON nesting accepted; deeper gets 400.
    pub max_json_depth: usize,
    /// Sustained writes per second allowed to one user; over it gets 429.
    pub user_rate_per_sec: u32,
    /// Short bursts allowed above the sustained rate.
    pub user_burst: u32,
    /// Whether that rate is counted per instance or across every instance (in Redis).
    pub user_rate_scope: RateScope,
    /// Requests processed at once by one instance; past it the API sheds load with 503.
    pub max_in_flight: usize,
    /// Taps a user's energy bar holds when full ([`crate::energy`]).
    pub tap_energy_capacity: u32,
    /// Taps the bar refills per second.
    pub tap_energy_refill_per_sec: u32,
    /// How long an idempotency key remembers its first response.
    pub idempotency_ttl: Duration,
    /// Replicas a key's record of event ids must reach before they are produced; `None`: the
    /// master alone ([`crate::idempotency`]).
    pub idempotency_replicas: Option<ReplicaWait>,
    /// Namespace of this deployment's Redis keys.
    pub redis_prefix: String,
    /// Which life of the event log the idempotency records answer for, when the log does not
    /// outlive the process (the embedded mock cluster starts empty on every run): a key sent
    /// again in a later run must not be answered with an event that is gone. `None` for a real
    /// broker.
    pub log_incarnation: Option<String>,
    /// Signs the consistency tokens handed to clients (the query API checks them).
    pub token_keys: TokenKeys,
    /// The game's configuration (the quests a user may claim, `POST /v1/quests/{id}/claim`).
    pub game: GameConfig,
    /// The catalogue, the Bot API, the webhook's secret and the operator token.
    pub stars: StarsConfig,
}

impl WriteApiConfig {
    /// Defaults for everything but the token.
    pub fn new(bot_token: SecretString) -> Self {
        WriteApiConfig {
            token_keys: TokenKeys::new(None, bot_token.expose_secret()),
            bot_token,
            ed25519_bot_id: None,
            init_data_max_age: Duration::from_secs(24 * 3600),
            max_body_bytes: 64 * 1024,
            max_json_depth: 8,
            user_rate_per_sec: 20,
            user_burst: 40,
            user_rate_scope: RateScope::Instance,
            max_in_flight: 2048,
            tap_energy_capacity: crate::energy::DEFAULT_CAPACITY,
            tap_energy_refill_per_sec: crate::energy::DEFAULT_REFILL_PER_SEC,
            idempotency_ttl: Duration::from_secs(24 * 3600),
            idempotency_replicas: None,
            redis_prefix: "surge".into(),
            log_incarnation: None,
            game: GameConfig::default(),
            stars: StarsConfig::new(),
        }
    }
}
