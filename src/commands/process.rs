//! `surge process`: runs projections (all, or those named with --projection), each as its own
//! consumer group that resumes from the positions in its store, and follows `surge replay`'s
//! switches to new versions without a restart.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use secrecy::ExposeSecret;
use surge_bot_api::BotApi;
use surge_kafka::{EventLog, ProducerSettings};
use surge_processors::notifications::{Limiter, Sender, SenderMetrics};
use surge_processors::projectors::{self, SinkContext, Stores};
use surge_processors::runtime::{ProcessorConfig, ProcessorMetrics};
use surge_processors::supervisor::Supervisor;
use surge_projections::ProjectionId;
use surge_schemas::Codec;
use tokio::sync::watch;

use super::rebuild_progress::{self, RebuildGauges};
use crate::infra;
use crate::serve::{bind, serve};
use crate::settings::{Common, Process, Telegram};

/// How long the sender waits for one Bot API answer before it counts as no answer.
const BOT_API_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) common: Common,
    #[command(flatten)]
    pub(crate) telegram: Telegram,
    #[command(flatten)]
    pub(crate) process: Process,
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let kafka = infra::kafka(&args.common).await?;
    let registry = infra::schema_registry(&args.common).await?;
    let metrics = prometheus::Registry::new();
    let processors = start(
        &args.common,
        &args.telegram,
        &args.process,
        &kafka.brokers,
        &registry.url,
        &metrics,
    )
    .await?;
    let listener = bind(args.process.process_addr, "processor health").await?;
    let app = surge_processors::health::app(
        metrics,
        processors.stores.clone(),
        processors.supervisor.running(),
    );
    let served = serve(
        listener,
        app,
        "processor health",
        args.common.connection_limits(),
    )
    .await;
    processors.stop().await;
    served
}

/// The processors of this process and how to stop them.
pub(crate) struct Processors {
    pub(crate) stores: Stores,
    pub(crate) supervisor: Arc<Supervisor>,
    shutdown: watch::Sender<bool>,
    following: tokio::task::JoinHandle<()>,
    sender: Option<tokio::task::JoinHandle<()>>,
    rebuilds: tokio::task::JoinHandle<()>,
}

impl Processors {
    /// Stops every processor, each finishing the batch in hand.
    pub(crate) async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.following.await;
        if let Some(sender) = self.sender {
            let _ = sender.await;
        }
        let _ = self.rebuilds.await;
    }
}

/// The stores and clients every projection's sink needs; shared with `surge replay`.
pub(crate) async fn sink_context(
    common: &Common,
    process: &Process,
    brokers: &str,
    registry_url: &str,
    metrics: &prometheus::Registry,
) -> anyhow::Result<SinkContext> {
    infra::check_events_partitions(common, brokers).await?;
    let stores = Stores {
        activity_retention: Duration::from_secs(
            u64::from(process.activity_retention_days) * 86_400,
        ),
        ..infra::stores(common, Duration::from_millis(process.session_timeout_ms)).await?
    };
    let codec = Arc::new(Codec::new(
        registry_url,
        &common.events_topic,
        Duration::from_secs(5),
    )?);
    Ok(SinkContext {
        stores,
        codec,
        brokers: brokers.to_owned(),
        topic: common.events_topic.clone(),
        derived_delivery: process.derived_delivery,
        metrics: ProcessorMetrics::new(metrics),
        game: common.game(),
        templates: Arc::new(process.notify.templates()),
    })
}

/// Starts the selected processors on their projections' active versions, and follows
/// switches to new versions; shared with `surge dev`.
pub(crate) async fn start(
    common: &Common,
    telegram: &Telegram,
    process: &Process,
    brokers: &str,
    registry_url: &str,
    metrics: &prometheus::Registry,
) -> anyhow::Result<Processors> {
    let context = sink_context(common, process, brokers, registry_url, metrics).await?;
    let stores = context.stores.clone();
    let codec = context.codec.clone();
    if common.kafka_brokers.is_none() {
        tracing::warn!(
            "Embedded Kafka starts empty on every run, so the projections built from its events are reset."
        );
        surge_processors::versions::reset_all(&stores)
            .await
            .context("Failed to reset the projections of the embedded broker")?;
    }
    let names: Vec<String> = if process.projections.is_empty() {
        projectors::names().map(str::to_owned).collect()
    } else {
        process.projections.clone()
    };
    let config = ProcessorConfig {
        batch_max: process.batch_max,
        batch_wait: Duration::from_millis(process.batch_wait_ms),
        session_timeout: Duration::from_millis(process.session_timeout_ms),
        max_poll_interval: Duration::from_millis(process.max_poll_interval_ms),
        fetch_wait: Duration::from_millis(process.fetch_wait_ms),
        fetch_min_bytes: process.fetch_min_bytes,
        prefetch_messages: process.prefetch_messages,
        stall_after: Duration::from_millis(process.stall_after_ms),
        derived_delivery: process.derived_delivery,
        ..ProcessorConfig::new(brokers, &common.events_topic)
    };
    let supervisor = Supervisor::start(&names, context, config)
        .await
        .context("Failed to start the processors")?;
    tracing::info!(projections = ?supervisor.running().versions(), "Processors running.");
    let (shutdown, stopped) = watch::channel(false);
    // Wherever the notifications projection runs, its messages are sent; several instances
    // share the outbox and Telegram's limits.
    let sender = if names
        .iter()
        .any(|n| n == ProjectionId::Notifications.name())
    {
        let sender = sender(common, telegram, process, brokers, &stores, codec, metrics)?;
        Some(tokio::spawn(sender.run(stopped.clone())))
    } else {
        None
    };
    let rebuilds = tokio::spawn(rebuild_progress::run(
        RebuildGauges::register(metrics),
        stores.clone(),
        names,
        brokers.to_owned(),
        common.events_topic.clone(),
        stopped.clone(),
    ));
    let following = tokio::spawn(supervisor.clone().follow(stopped));
    Ok(Processors {
        stores,
        supervisor,
        shutdown,
        following,
        sender,
        rebuilds,
    })
}

/// The notification sender of this process.
fn sender(
    common: &Common,
    telegram: &Telegram,
    process: &Process,
    brokers: &str,
    stores: &Stores,
    codec: Arc<Codec>,
    metrics: &prometheus::Registry,
) -> anyhow::Result<Arc<Sender>> {
    let token = telegram.bot_token.expose_secret();
    let bot_id = token.split(':').next().unwrap_or_default();
    let events = EventLog::new(ProducerSettings::new(brokers, &common.events_topic), codec)
        .context("Failed to create the sender's Kafka producer")?;
    Ok(Arc::new(Sender {
        pool: stores.pool.clone(),
        bot: BotApi::new(
            &telegram.telegram_api_url,
            telegram.bot_token.clone(),
            BOT_API_TIMEOUT,
        ),
        limiter: Limiter::new(
            stores.redis.clone(),
            &stores.redis_prefix,
            bot_id,
            process.notify.limits(),
        ),
        events: Arc::new(events),
        settings: process.notify.sender(),
        metrics: SenderMetrics::new(metrics),
    }))
}
