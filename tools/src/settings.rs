//! The settings `surge-loadgen` reads: the same `SURGE_*` variables and flags as the `surge`
//! roles' shared settings (`src/settings.rs`), so one environment drives the stack and its load
//! test alike. Every flag `surge loadgen` accepted is still accepted; the ones the load generator
//! has no use for (schema registry, HTTP limits, initData checks) are parsed and ignored, so a
//! deployment's environment with an invalid value fails here the same way it fails the roles.
//! A flag added to the roles' `Common` or `Telegram` belongs here only if the load generator uses it.

use std::net::SocketAddr;

use clap::{Args, ValueEnum};
use secrecy::SecretString;

/// Development bot token: the one the roles use when SURGE_BOT_TOKEN is unset.
const DEV_BOT_TOKEN: &str = "7000000001:AAdev-surge-local-token-not-a-secret";

/// The deployment the baselines scenario measures beside: broker, topic, database, Redis.
#[derive(Args, Debug, Clone)]
pub(crate) struct Common {
    /// Kafka bootstrap servers (baselines: required).
    #[arg(long, env = "SURGE_KAFKA_BROKERS")]
    pub(crate) kafka_brokers: Option<String>,
    /// Accepted for the roles' environment; unused.
    #[arg(long, env = "SURGE_SCHEMA_REGISTRY_URL")]
    schema_registry_url: Option<String>,
    /// Accepted for the roles' environment; unused.
    #[arg(
        long,
        env = "SURGE_SCHEMA_REGISTRY_LISTEN",
        default_value = "127.0.0.1:0"
    )]
    schema_registry_listen: SocketAddr,
    /// PostgreSQL; the database is created if missing.
    #[arg(
        long,
        env = "SURGE_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/surge"
    )]
    pub(crate) database_url: String,
    /// PostgreSQL schema (namespace) holding Surge's tables; created if missing.
    #[arg(long, env = "SURGE_DATABASE_SCHEMA", default_value = "surge")]
    pub(crate) database_schema: String,
    #[arg(
        long,
        env = "SURGE_REDIS_URL",
        default_value = "redis://127.0.0.1:6379"
    )]
    pub(crate) redis_url: String,
    /// Prefix of every Redis key the deployment writes.
    #[arg(long, env = "SURGE_REDIS_PREFIX", default_value = "surge")]
    pub(crate) redis_prefix: String,
    /// The topic of user events (keyed by user id).
    #[arg(long, env = "SURGE_EVENTS_TOPIC", default_value = "surge.events")]
    pub(crate) events_topic: String,
    /// Partitions of the events topic; the baselines' scratch topic gets as many.
    #[arg(long, env = "SURGE_EVENTS_PARTITIONS", default_value_t = 12)]
    pub(crate) events_partitions: i32,
    /// Replication factor of the baselines' scratch topic.
    #[arg(long, env = "SURGE_TOPIC_REPLICATION", default_value_t = 1)]
    pub(crate) topic_replication: i32,
    /// Accepted for the roles' environment; unused.
    #[arg(long, env = "SURGE_HTTP_HEADER_TIMEOUT_MS", default_value_t = 10_000)]
    http_header_timeout_ms: u64,
    /// Accepted for the roles' environment; unused.
    #[arg(long, env = "SURGE_HTTP_BODY_TIMEOUT_MS", default_value_t = 10_000)]
    http_body_timeout_ms: u64,
    /// Accepted for the roles' environment; unused.
    #[arg(long, env = "SURGE_HTTP_MAX_CONNECTIONS", default_value_t = 10_000)]
    http_max_connections: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum InitDataCheck {
    Hmac,
    Ed25519,
    Ed25519Test,
}

/// The bot whose users the crowd signs initData for.
#[derive(Args, Debug, Clone)]
pub(crate) struct Telegram {
    /// The bot token the APIs check initData with (default: the documented development token).
    /// Never logged.
    #[arg(long, env = "SURGE_BOT_TOKEN", default_value = DEV_BOT_TOKEN, value_parser = secret,
          hide_env_values = true, hide_default_value = true)]
    pub(crate) bot_token: SecretString,
    /// Accepted for the roles' environment; unused. Never logged.
    #[arg(long, env = "SURGE_TOKEN_SECRETS", value_parser = secret, hide_env_values = true)]
    token_secrets: Option<SecretString>,
    /// Accepted for the roles' environment; unused.
    #[arg(long, env = "SURGE_INIT_DATA_CHECK", value_enum, default_value_t = InitDataCheck::Hmac)]
    init_data_check: InitDataCheck,
    /// Accepted for the roles' environment; unused.
    #[arg(long, env = "SURGE_INIT_DATA_MAX_AGE_SECS", default_value_t = 86_400)]
    init_data_max_age_secs: u64,
}

fn secret(value: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(value.to_owned()))
}
