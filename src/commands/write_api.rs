//! `surge write-api`: Telegram-authenticated writes become Avro events on Kafka.

use std::time::Duration;

use anyhow::Context;
use surge_kafka::{EventLog, ProducerSettings};
use surge_producers::idempotency::ReplicaWait;
use surge_producers::stars::StarsConfig;
use surge_producers::{AppState, WriteApiConfig};
use surge_redis::Redis;
use surge_schemas::products::Catalog;

use crate::infra;
use crate::serve::{bind, cors, serve};
use crate::settings::{Common, Telegram, WriteApi};

#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) common: Common,
    #[command(flatten)]
    pub(crate) telegram: Telegram,
    #[command(flatten)]
    pub(crate) write: WriteApi,
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let kafka = infra::kafka(&args.common).await?;
    let registry = infra::schema_registry(&args.common).await?;
    let state = state(
        &args.common,
        &args.telegram,
        &args.write,
        &kafka.brokers,
        &registry.url,
    )
    .await?;
    let listener = bind(args.write.write_addr, "write API").await?;
    let admin_listener = bind(args.write.write_admin_addr, "write API admin").await?;
    let webhook_listener = bind(args.write.telegram_webhook_addr, "Telegram webhook").await?;
    let log = state.log.clone();
    let limits = args.common.connection_limits();
    let admin = surge_producers::admin(state.clone());
    let webhook = surge_producers::webhook(state.clone());
    let app = cors::allow_origins(surge_producers::app(state), &args.common.cors_origins)?;
    let (served, admin_served, webhook_served) = tokio::join!(
        serve(listener, app, "write API", limits),
        serve(admin_listener, admin, "write API admin", limits),
        serve(webhook_listener, webhook, "Telegram webhook", limits),
    );
    log.flush(Duration::from_secs(10));
    served.and(admin_served).and(webhook_served)
}

/// Everything the write API needs, connected and checked.
pub(crate) async fn state(
    common: &Common,
    telegram: &Telegram,
    write: &WriteApi,
    brokers: &str,
    registry_url: &str,
) -> anyhow::Result<AppState> {
    let codec = infra::codec(common, registry_url).await?;
    let producer = ProducerSettings {
        produce_timeout: write.produce_timeout(),
        queue_max_messages: write.producer_queue_max,
        linger: Duration::from_millis(write.producer_linger_ms),
        ..ProducerSettings::new(brokers, &common.events_topic)
    };
    let log = EventLog::new(producer, codec).context("Failed to create the Kafka producer")?;
    let idempotency_replicas = (write.idempotency_replicas > 0).then(|| ReplicaWait {
        replicas: write.idempotency_replicas,
        timeout: Duration::from_millis(write.idempotency_replica_wait_ms),
    });
    // A wait that ran into the client's own timeout would read as Redis down, and leave the
    // record it could not undo.
    anyhow::ensure!(
        idempotency_replicas.is_none_or(|wait| wait.timeout * 2 <= surge_redis::TIMEOUT),
        "SURGE_IDEMPOTENCY_REPLICA_WAIT_MS is {} ms; it must be at most {} ms, half the Redis \
         client's response timeout",
        write.idempotency_replica_wait_ms,
        surge_redis::TIMEOUT.as_millis() / 2
    );
    let redis = infra::redis(common).await?;
    if let Some(wait) = idempotency_replicas {
        warn_if_too_few_replicas(&redis, wait.replicas).await;
    }
    let config = WriteApiConfig {
        init_data_max_age: Duration::from_secs(telegram.init_data_max_age_secs),
        max_body_bytes: write.max_body_bytes,
        user_rate_per_sec: write.user_rate_per_sec,
        user_burst: write.user_burst,
        user_rate_scope: write.user_rate_scope,
        max_in_flight: write.max_in_flight,
        tap_energy_capacity: write.tap_energy_capacity,
        tap_energy_refill_per_sec: write.tap_energy_refill_per_sec,
        idempotency_replicas,
        redis_prefix: common.redis_prefix.clone(),
        // The embedded mock cluster starts empty on every run (its records expire with their
        // TTL).
        log_incarnation: (common.kafka_brokers.is_none())
            .then(|| format!("run{}", surge_projections::versions::now_ms())),
        token_keys: telegram.token_keys(),
        game: common.game(),
        stars: StarsConfig {
            catalog: write.catalog.clone().unwrap_or_else(Catalog::builtin),
            api_url: telegram.telegram_api_url.clone(),
            webhook_secret: write.telegram_webhook_secret.clone(),
            operator_token: common.operator_token.clone(),
        },
        ..WriteApiConfig::new(telegram.bot_token.clone())
    };
    let validator = telegram.validator()?;
    Ok(AppState::new(config, validator, log, redis))
}

/// Warns at start when a Redis master has fewer replicas than `SURGE_IDEMPOTENCY_REPLICAS`:
/// its users' keyed writes would all be refused. Not a refusal to start: a replica may be down
/// for a while and come back, and a write API that cannot start meanwhile fails every user.
async fn warn_if_too_few_replicas(redis: &Redis, wanted: u32) {
    let Ok(infos) = redis.info("replication").await else {
        return;
    };
    for info in infos {
        let connected =
            surge_redis::info_field(&info, "connected_slaves").and_then(|n| n.parse::<u32>().ok());
        if let Some(connected) = connected
            && connected < wanted
        {
            tracing::warn!(
                connected,
                wanted,
                "A Redis master has fewer replicas than SURGE_IDEMPOTENCY_REPLICAS: its users' \
                 keyed writes are refused (503 idempotency_not_replicated) until it has them."
            );
        }
    }
}
