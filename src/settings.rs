//! Configuration: every setting is a `SURGE_*` environment variable (or the matching flag) with a
//! local default, so `surge dev` runs on a fresh machine with none set. `surge <role> --help`
//! lists them all. Secrets are wrapped in `SecretString` and never printed.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use secrecy::{ExposeSecret, SecretString};
use surge_processors::notifications::{Limits, SenderSettings, Templates};
use surge_processors::runtime::processor_defaults as defaults;
use surge_schemas::GameConfig;
use surge_schemas::products::Catalog;
use surge_schemas::quests::QuestBook;
use surge_telegram_auth::Validator;

/// Development bot token: public, documented, and only good for local work. Set SURGE_BOT_TOKEN
/// in any deployment that real users reach.
pub const DEV_BOT_TOKEN: &str = "7000000001:AAdev-surge-local-token-not-a-secret";

/// Settings every role shares.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// Kafka bootstrap servers; unset = librdkafka's in-process mock cluster.
    #[arg(long, env = "SURGE_KAFKA_BROKERS")]
    pub kafka_brokers: Option<String>,
    /// Confluent-compatible schema registry; unset = the embedded one, stored in PostgreSQL.
    #[arg(long, env = "SURGE_SCHEMA_REGISTRY_URL")]
    pub schema_registry_url: Option<String>,
    /// Where the embedded schema registry listens (port 0 = any free port).
    #[arg(
        long,
        env = "SURGE_SCHEMA_REGISTRY_LISTEN",
        default_value = "127.0.0.1:0"
    )]
    pub schema_registry_listen: SocketAddr,
    /// PostgreSQL; the database is created if missing.
    #[arg(
        long,
        env = "SURGE_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/surge"
    )]
    pub database_url: String,
    /// PostgreSQL schema (namespace) holding Surge's tables; created if missing.
    #[arg(long, env = "SURGE_DATABASE_SCHEMA", default_value = "surge")]
    pub database_schema: String,
    #[arg(
        long,
        env = "SURGE_REDIS_URL",
        default_value = "redis://127.0.0.1:6379"
    )]
    pub redis_url: String,
    /// Seed nodes of a Redis Cluster (comma-separated `redis://host:port`); when set, every role
    /// keeps its keys there instead of at SURGE_REDIS_URL.
    #[arg(long, env = "SURGE_REDIS_CLUSTER_URLS", value_delimiter = ',')]
    pub redis_cluster_urls: Vec<String>,
    /// Prefix of every Redis key this deployment writes.
    #[arg(long, env = "SURGE_REDIS_PREFIX", default_value = "surge")]
    pub redis_prefix: String,
    /// The topic of user events (keyed by user id).
    #[arg(long, env = "SURGE_EVENTS_TOPIC", default_value = "surge.events")]
    pub events_topic: String,
    /// Partitions of the events topic: Surge creates it with this many, the processors refuse a
    /// topic with another count, and the query API finds a user's leaderboard shard by it.
    #[arg(long, env = "SURGE_EVENTS_PARTITIONS", default_value_t = 12,
          value_parser = clap::value_parser!(i32).range(1..))]
    pub events_partitions: i32,
    /// Replication factor of topics Surge creates (3 on a production cluster).
    #[arg(long, env = "SURGE_TOPIC_REPLICATION", default_value_t = 1)]
    pub topic_replication: i32,
    /// Longest a client may take to send a request's headers, and longest an idle keep-alive
    /// connection stays open; then the server closes it.
    #[arg(long, env = "SURGE_HTTP_HEADER_TIMEOUT_MS", default_value_t = 10_000)]
    pub http_header_timeout_ms: u64,
    /// Longest a client may take to send a request's body; then 408.
    #[arg(long, env = "SURGE_HTTP_BODY_TIMEOUT_MS", default_value_t = 10_000)]
    pub http_body_timeout_ms: u64,
    /// Connections one HTTP listener holds open at once; further ones wait in the kernel's
    /// backlog until one closes.
    #[arg(long, env = "SURGE_HTTP_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub http_max_connections: usize,
    /// The quest book: a JSON file listing the quests (README, "Quests"). Every role reads the
    /// same file; unset, the built-in quests.
    #[arg(long = "quests-file", env = "SURGE_QUESTS_FILE", value_parser = quest_book)]
    pub quests: Option<QuestBook>,
    /// Origins (`https://app.example.com`, comma-separated) whose pages may call the write and
    /// query APIs from a browser: where the Mini App is hosted. Unset: no cross-origin access.
    #[arg(long, env = "SURGE_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// Bearer token of operator endpoints (the query API's `/v1/stats/activity`, the write
    /// API's `/v1/admin/refunds`); unset closes them (403). Never logged.
    #[arg(long, env = "SURGE_OPERATOR_TOKEN", value_parser = secret, hide_env_values = true)]
    pub operator_token: Option<SecretString>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InitDataCheck {
    /// HMAC-SHA256 with the bot token (Telegram's first-party check).
    Hmac,
    /// Ed25519 with Telegram's production public key (third-party validation, no token needed).
    Ed25519,
    /// Ed25519 with Telegram's test-environment public key.
    Ed25519Test,
}

#[derive(Args, Debug, Clone)]
pub struct Telegram {
    /// The bot token (default: a documented development token). Never logged.
    #[arg(long, env = "SURGE_BOT_TOKEN", default_value = DEV_BOT_TOKEN, value_parser = secret,
          hide_env_values = true, hide_default_value = true)]
    pub bot_token: SecretString,
    /// Secrets that sign consistency tokens, comma-separated: the first signs, all check, so a
    /// secret rotates by going second. Unset: a key derived from the bot token. Never logged.
    #[arg(long, env = "SURGE_TOKEN_SECRETS", value_parser = secret, hide_env_values = true)]
    pub token_secrets: Option<SecretString>,
    /// How initData is validated. Ed25519 modes take the bot id from the token's prefix.
    #[arg(long, env = "SURGE_INIT_DATA_CHECK", value_enum, default_value_t = InitDataCheck::Hmac)]
    pub init_data_check: InitDataCheck,
    /// Oldest initData accepted, in seconds.
    #[arg(long, env = "SURGE_INIT_DATA_MAX_AGE_SECS", default_value_t = 86_400)]
    pub init_data_max_age_secs: u64,
    /// The Bot API the bot's methods are called on, as `<url>/bot<token>/<method>`: Telegram's,
    /// or a local Bot API server.
    #[arg(long, env = "SURGE_TELEGRAM_API_URL", default_value = surge_bot_api::TELEGRAM_API_URL)]
    pub telegram_api_url: String,
}

impl Common {
    /// The game as configured: every role reads the same.
    pub fn game(&self) -> GameConfig {
        let builtin = GameConfig::default();
        GameConfig {
            quests: self.quests.clone().unwrap_or(builtin.quests),
        }
    }

    /// What every HTTP listener of this process tolerates from its clients.
    pub fn connection_limits(&self) -> crate::serve::ConnectionLimits {
        crate::serve::ConnectionLimits {
            header_read: Duration::from_millis(self.http_header_timeout_ms),
            body: Duration::from_millis(self.http_body_timeout_ms),
            max_connections: self.http_max_connections.max(1),
        }
    }
}

impl Telegram {
    /// The keys of consistency tokens; the write API signs and the query API checks alike.
    pub fn token_keys(&self) -> surge_schemas::TokenKeys {
        surge_schemas::TokenKeys::new(
            self.token_secrets.as_ref().map(|s| s.expose_secret()),
            self.bot_token.expose_secret(),
        )
    }

    /// The initData validator these settings describe; the write and query APIs check alike.
    pub fn validator(&self) -> anyhow::Result<Validator> {
        let max_age = Duration::from_secs(self.init_data_max_age_secs);
        let public_key = match self.init_data_check {
            InitDataCheck::Hmac => return Ok(Validator::hmac(&self.bot_token, max_age)),
            InitDataCheck::Ed25519 => surge_telegram_auth::telegram_production_key(),
            InitDataCheck::Ed25519Test => surge_telegram_auth::telegram_test_key(),
        };
        let bot_id = self
            .bot_token
            .expose_secret()
            .split(':')
            .next()
            .and_then(|id| id.parse::<i64>().ok())
            .context(
                "SURGE_BOT_TOKEN must start with the bot id (\"<bot id>:<secret>\") for Ed25519 checks",
            )?;
        Ok(Validator::ed25519(bot_id, public_key, max_age))
    }
}

/// An instant on the command line: RFC 3339 (`2026-11-22T10:00:00Z`) or unix milliseconds.
pub fn instant_ms(text: &str) -> Result<i64, String> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(|at| (at.unix_timestamp_nanos() / 1_000_000) as i64)
        .map_err(|_| {
            "expected an RFC 3339 instant (2026-11-22T10:00:00Z) or unix milliseconds".to_owned()
        })
}

fn quest_book(path: &str) -> Result<QuestBook, String> {
    let json = std::fs::read_to_string(path).map_err(|e| format!("reading {path}: {e}"))?;
    QuestBook::parse(&json).map_err(|e| format!("{path}: {e}"))
}

fn catalog(path: &str) -> Result<Catalog, String> {
    let json = std::fs::read_to_string(path).map_err(|e| format!("reading {path}: {e}"))?;
    Catalog::parse(&json).map_err(|e| format!("{path}: {e}"))
}

fn webhook_secret(value: &str) -> Result<SecretString, String> {
    if surge_producers::stars::webhook::valid_secret(value) {
        Ok(SecretString::from(value.to_owned()))
    } else {
        Err("must be 1 to 256 of A-Za-z0-9_- (Telegram's rule for secret_token)".into())
    }
}

fn secret(value: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(value.to_owned()))
}

#[derive(Args, Debug, Clone)]
pub struct WriteApi {
    #[arg(long, env = "SURGE_WRITE_ADDR", default_value = "127.0.0.1:8080")]
    pub write_addr: SocketAddr,
    /// Where the write API's `/metrics` is served: an address of its own, not for clients.
    #[arg(long, env = "SURGE_WRITE_ADMIN_ADDR", default_value = "127.0.0.1:9080")]
    pub write_admin_addr: SocketAddr,
    /// Past this, an unacknowledged write fails with 503 (librdkafka message.timeout.ms).
    #[arg(long, env = "SURGE_PRODUCE_TIMEOUT_MS", default_value_t = 5_000)]
    pub produce_timeout_ms: u64,
    /// Producer queue bound; a full queue answers 503 at once.
    #[arg(long, env = "SURGE_PRODUCER_QUEUE_MAX", default_value_t = 100_000)]
    pub producer_queue_max: u32,
    #[arg(long, env = "SURGE_PRODUCER_LINGER_MS", default_value_t = 5)]
    pub producer_linger_ms: u64,
    #[arg(long, env = "SURGE_WRITE_MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    pub max_body_bytes: usize,
    /// Sustained writes per second per user (429 past it, per instance).
    #[arg(long, env = "SURGE_USER_RATE_PER_SEC", default_value_t = 20)]
    pub user_rate_per_sec: u32,
    #[arg(long, env = "SURGE_USER_BURST", default_value_t = 40)]
    pub user_burst: u32,
    /// Where that rate is counted: `instance` (each instance's memory) or `shared` (also in
    /// Redis, across every instance, for one round trip per write).
    #[arg(long, env = "SURGE_USER_RATE_SCOPE", default_value = "instance")]
    pub user_rate_scope: surge_producers::http::rate_limit::RateScope,
    /// Requests one instance works on at once; past it, 503 + Retry-After.
    #[arg(long, env = "SURGE_WRITE_MAX_IN_FLIGHT", default_value_t = 2048)]
    pub max_in_flight: usize,
    /// Replicas of its Redis master an Idempotency-Key's record must reach (`WAIT`) before its
    /// events are produced, so that a failover cannot lose it; 0: the master alone.
    #[arg(long, env = "SURGE_IDEMPOTENCY_REPLICAS", default_value_t = 0)]
    pub idempotency_replicas: u32,
    /// How long a write waits for those replicas before it fails with 503 (at most 1,000: half
    /// the Redis client's response timeout).
    #[arg(long, env = "SURGE_IDEMPOTENCY_REPLICA_WAIT_MS", default_value_t = 250,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub idempotency_replica_wait_ms: u64,
    /// Taps a user's energy bar holds when full (shared by every instance through Redis).
    #[arg(long, env = "SURGE_TAP_ENERGY_CAPACITY",
          default_value_t = surge_producers::energy::DEFAULT_CAPACITY,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub tap_energy_capacity: u32,
    /// Taps the energy bar refills per second.
    #[arg(long, env = "SURGE_TAP_ENERGY_REFILL_PER_SEC",
          default_value_t = surge_producers::energy::DEFAULT_REFILL_PER_SEC,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub tap_energy_refill_per_sec: u32,
    /// What is sold for Telegram Stars: a JSON file (README, "Payments"); unset, the built-in
    /// catalogue.
    #[arg(long = "catalog", env = "SURGE_CATALOG", value_parser = catalog)]
    pub catalog: Option<Catalog>,
    /// Where Telegram's webhook (`POST /telegram/webhook`) is served: an address of its own.
    #[arg(
        long,
        env = "SURGE_TELEGRAM_WEBHOOK_ADDR",
        default_value = "127.0.0.1:8088"
    )]
    pub telegram_webhook_addr: SocketAddr,
    /// The secret token given to `setWebhook` (1-256 of `A-Za-z0-9_-`); the webhook refuses
    /// every update without it, and all of them while it is unset. Never logged.
    #[arg(long, env = "SURGE_TELEGRAM_WEBHOOK_SECRET", value_parser = webhook_secret,
          hide_env_values = true)]
    pub telegram_webhook_secret: Option<SecretString>,
}

impl WriteApi {
    pub fn produce_timeout(&self) -> Duration {
        Duration::from_millis(self.produce_timeout_ms)
    }
}

#[derive(Args, Debug, Clone)]
pub struct QueryApi {
    #[arg(long, env = "SURGE_QUERY_ADDR", default_value = "127.0.0.1:8081")]
    pub query_addr: SocketAddr,
    /// Where the query API's `/metrics` is served: an address of its own, not for clients.
    #[arg(long, env = "SURGE_QUERY_ADMIN_ADDR", default_value = "127.0.0.1:9081")]
    pub query_admin_addr: SocketAddr,
    /// Longest a read with X-Consistency-Token waits for its projection; past it, 504.
    #[arg(long, env = "SURGE_CONSISTENCY_WAIT_MS", default_value_t = 2_000)]
    pub consistency_wait_ms: u64,
    /// Longest a store read may take before the request answers 503.
    #[arg(long, env = "SURGE_QUERY_STORE_TIMEOUT_MS", default_value_t = 1_000)]
    pub store_timeout_ms: u64,
    /// PostgreSQL connections of one query API instance.
    #[arg(long, env = "SURGE_QUERY_PG_CONNECTIONS", default_value_t = 16)]
    pub pg_connections: u32,
    /// Read replicas of SURGE_DATABASE_URL's database, comma-separated PostgreSQL URLs: reads
    /// go to one that answers and is close enough behind, else to the primary.
    #[arg(long, env = "SURGE_DATABASE_READ_URLS", value_delimiter = ',')]
    pub database_read_urls: Vec<String>,
    /// A replica further behind the primary than this takes no reads until it catches up.
    #[arg(long, env = "SURGE_DATABASE_READ_MAX_LAG_MS", default_value_t = 1_000)]
    pub database_read_max_lag_ms: u64,
    /// Requests one instance works on at once; past it, 503 + Retry-After.
    #[arg(long, env = "SURGE_QUERY_MAX_IN_FLIGHT", default_value_t = 4096)]
    pub query_max_in_flight: usize,
    /// Reads waiting on a consistency token at once; past it, 503 + Retry-After at once.
    #[arg(long, env = "SURGE_QUERY_MAX_WAITERS", default_value_t = 1024)]
    pub query_max_waiters: usize,
    /// Of those, reads one user (or one anonymous token) may have waiting at once.
    #[arg(long, env = "SURGE_QUERY_MAX_WAITERS_PER_USER", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub query_max_waiters_per_user: u32,
    /// How long the top of a leaderboard is served from memory; 0 = always from Redis.
    #[arg(long, env = "SURGE_LEADERBOARD_CACHE_MS", default_value_t = 1_000)]
    pub leaderboard_cache_ms: u64,
    /// Live streams (`GET /v1/me/live`) one instance holds at once; past it, 503.
    #[arg(long, env = "SURGE_LIVE_MAX_STREAMS", default_value_t = 10_000)]
    pub live_max_streams: usize,
    /// Live streams one user may hold at once (tabs, devices); past it, 429.
    #[arg(long, env = "SURGE_LIVE_MAX_STREAMS_PER_USER", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub live_max_streams_per_user: u32,
}

#[derive(Args, Debug, Clone)]
pub struct Process {
    /// Projections to run (repeat the flag); default all. Each is its own consumer group, so
    /// more instances with the same projections split the partitions.
    #[arg(long = "projection", env = "SURGE_PROJECTIONS", value_delimiter = ',')]
    pub projections: Vec<String>,
    /// Health and metrics address of `surge process`.
    #[arg(long, env = "SURGE_PROCESS_ADDR", default_value = "127.0.0.1:8082")]
    pub process_addr: SocketAddr,
    /// Most events applied in one batch per partition.
    #[arg(long, env = "SURGE_PROCESS_BATCH_MAX", default_value_t = defaults::BATCH_MAX)]
    pub batch_max: usize,
    #[arg(long, env = "SURGE_PROCESS_BATCH_WAIT_MS", default_value_t = defaults::BATCH_WAIT_MS)]
    pub batch_wait_ms: u64,
    /// Longest the broker may hold a fetch that has less than SURGE_PROCESS_FETCH_MIN_BYTES
    /// (`fetch.wait.max.ms`): the most a quiet partition's next event waits to be fetched.
    #[arg(long, env = "SURGE_PROCESS_FETCH_WAIT_MS", default_value_t = defaults::FETCH_WAIT_MS)]
    pub fetch_wait_ms: u64,
    /// Data the broker gathers for a processor's fetch before answering, unless
    /// SURGE_PROCESS_FETCH_WAIT_MS passes first (`fetch.min.bytes`). Each projection fetches
    /// the whole topic; answered at the first byte, they fetch again for every few events.
    #[arg(long, env = "SURGE_PROCESS_FETCH_MIN_BYTES", default_value_t = defaults::FETCH_MIN_BYTES)]
    pub fetch_min_bytes: u32,
    /// Most fetched events each projection's consumer holds ahead of its batches
    /// (`queued.min.messages`); a consumer per projection, about 500 bytes per event held.
    #[arg(long, env = "SURGE_PROCESS_PREFETCH_MESSAGES", default_value_t = defaults::PREFETCH_MESSAGES,
          value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub prefetch_messages: u32,
    /// How long a silent instance keeps its partitions before the group moves them.
    #[arg(
        long,
        env = "SURGE_PROCESS_SESSION_TIMEOUT_MS",
        default_value_t = defaults::SESSION_TIMEOUT_MS
    )]
    pub session_timeout_ms: u64,
    /// Longest pause between polls (e.g. a store outage being retried) before the group moves
    /// this instance's partitions; also how long a rebalance waits for members to rejoin.
    #[arg(
        long,
        env = "SURGE_PROCESS_MAX_POLL_INTERVAL_MS",
        default_value_t = defaults::MAX_POLL_INTERVAL_MS
    )]
    pub max_poll_interval_ms: u64,
    /// How long a partition's batch may keep failing transiently (store down, timeouts) before
    /// the partition is marked stalled (metrics, `/health/ready`) and set aside, so the other
    /// partitions keep flowing; it is retried later from its stored position.
    #[arg(long, env = "SURGE_PROCESS_STALL_AFTER_MS", default_value_t = defaults::STALL_AFTER_MS)]
    pub stall_after_ms: u64,
    /// Days the `activity` analytics projection keeps; older days are dropped whole.
    #[arg(long, env = "SURGE_ACTIVITY_RETENTION_DAYS", default_value_t = 90,
          value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub activity_retention_days: u32,
    /// How derivers (referrals) emit: `transactional` (Kafka transactions, exactly once),
    /// `idempotent` (any broker; duplicates carry the same event id and change nothing) or
    /// `auto` (a probe transaction before the first emit picks).
    #[arg(long, env = "SURGE_DERIVED_DELIVERY", default_value = "auto")]
    pub derived_delivery: surge_processors::emit::Delivery,
    #[command(flatten)]
    pub notify: Notify,
}

/// The `notifications` projection's sender: what it sends, and Telegram's limits it keeps.
#[derive(Args, Debug, Clone)]
pub struct Notify {
    /// Which events message their user and the templates per language (JSON); default: the
    /// built-in ones (referral credits, completed quests, Stars payments).
    #[arg(long = "notifications-file", env = "SURGE_NOTIFICATIONS_FILE", value_parser = templates)]
    pub templates: Option<Templates>,
    /// The Mini App's `https://` URL, opened by an inline `web_app` button under each message;
    /// unset: messages carry no button.
    #[arg(long, env = "SURGE_MINI_APP_URL", value_parser = https_url)]
    pub mini_app_url: Option<String>,
    /// Messages per second the bot sends overall (Telegram's limit: about 30).
    #[arg(long, env = "SURGE_NOTIFY_RATE_PER_SEC", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub notify_rate_per_sec: u32,
    /// Broadcast messages per second with Telegram's paid broadcasting (`allow_paid_broadcast`,
    /// up to 1,000, 0.1 Star per message); 0: broadcasts share the free rate.
    #[arg(long, env = "SURGE_NOTIFY_PAID_RATE_PER_SEC", default_value_t = 0,
          value_parser = clap::value_parser!(u32).range(0..=1000))]
    pub notify_paid_rate_per_sec: u32,
    /// Least time between two messages to one private chat (Telegram: about 1 s).
    #[arg(long, env = "SURGE_NOTIFY_CHAT_INTERVAL_MS", default_value_t = 1_000)]
    pub notify_chat_interval_ms: u64,
    /// Messages per minute to one group chat (Telegram: 20).
    #[arg(long, env = "SURGE_NOTIFY_GROUP_PER_MINUTE", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub notify_group_per_minute: u32,
    /// How long a sender holds the messages it claimed; a dead sender's are sent again after
    /// it (see the sender's delivery guarantee).
    #[arg(long, env = "SURGE_NOTIFY_LEASE_MS", default_value_t = 30_000,
          value_parser = clap::value_parser!(u64).range(500..))]
    pub notify_lease_ms: u64,
    /// Sends awaiting Telegram's answer at once, per sender.
    #[arg(long, env = "SURGE_NOTIFY_CONCURRENCY", default_value_t = 64)]
    pub notify_concurrency: usize,
    /// Attempts before a message that keeps failing with 5xx or no answer is failed.
    #[arg(long, env = "SURGE_NOTIFY_MAX_ATTEMPTS", default_value_t = 8,
          value_parser = clap::value_parser!(i32).range(1..=100))]
    pub notify_max_attempts: i32,
}

impl Notify {
    /// The configured templates, or the built-in ones.
    pub fn templates(&self) -> Templates {
        self.templates.clone().unwrap_or_else(Templates::builtin)
    }

    pub fn limits(&self) -> Limits {
        Limits {
            per_second: self.notify_rate_per_sec,
            paid_per_second: self.notify_paid_rate_per_sec,
            chat_interval: Duration::from_millis(self.notify_chat_interval_ms),
            group_per_minute: self.notify_group_per_minute,
        }
    }

    pub fn sender(&self) -> SenderSettings {
        SenderSettings {
            lease: Duration::from_millis(self.notify_lease_ms),
            batch: SenderSettings::batch_for(self.limits().fastest()),
            concurrency: self.notify_concurrency.max(1),
            max_attempts: self.notify_max_attempts,
            mini_app_url: self.mini_app_url.clone(),
            poll: Duration::from_millis(200),
        }
    }
}

fn templates(path: &str) -> Result<Templates, String> {
    let json = std::fs::read_to_string(path).map_err(|e| format!("reading {path}: {e}"))?;
    Templates::parse(&json).map_err(|e| format!("{path}: {e}"))
}

fn https_url(value: &str) -> Result<String, String> {
    surge_schemas::rules::Text::HttpsUrl
        .check("url", value)
        .map(|()| value.to_owned())
        .map_err(|v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Probe {
        #[command(flatten)]
        telegram: Telegram,
    }

    #[test]
    fn instants_are_rfc3339_or_unix_milliseconds() {
        assert_eq!(instant_ms("1795379397000"), Ok(1_795_379_397_000));
        assert_eq!(instant_ms("2026-11-22T10:00:00Z"), Ok(1_795_341_600_000));
        assert!(instant_ms("yesterday").unwrap_err().contains("RFC 3339"));
    }

    #[derive(Parser)]
    struct ProcessProbe {
        #[command(flatten)]
        process: Process,
    }

    #[test]
    fn a_prefetch_of_no_events_is_refused_by_name() {
        let refused = ProcessProbe::try_parse_from(["probe", "--prefetch-messages", "0"])
            .err()
            .expect("a consumer that may hold no event could never fetch");
        assert!(
            refused.to_string().contains("--prefetch-messages"),
            "{refused}"
        );
        let parsed = ProcessProbe::try_parse_from(["probe", "--prefetch-messages", "5000"])
            .expect("a prefetch of 5,000 events is valid");
        assert_eq!(parsed.process.prefetch_messages, 5000);
    }

    #[test]
    fn the_token_is_never_in_debug_output() {
        let probe = Probe::parse_from(["probe", "--bot-token", "123:super-secret"]);
        let shown = format!("{:?}", probe.telegram);
        assert!(!shown.contains("super-secret"), "{shown}");
    }
}

/// `surge dev`'s demo Mini App.
#[derive(Args, Debug, Clone)]
pub struct Demo {
    /// Where `surge dev` serves the demo Mini App (and, for a plain browser, development initData).
    #[arg(long, env = "SURGE_DEMO_ADDR", default_value = "127.0.0.1:8090")]
    pub demo_addr: SocketAddr,
    /// The built demo: `npm --prefix demo run build` writes it (`scripts/dev.sh` does).
    #[arg(long, env = "SURGE_DEMO_DIR", default_value = "demo/dist")]
    pub demo_dir: std::path::PathBuf,
}
