//! `surge process`: runs projections (all, or those named with --projection), each as its own
//! consumer group that resumes from the positions in its store, and follows `surge replay`'s
//! switches to new versions without a restart.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use surge_processors::projectors::{self, SinkContext, Stores};
use surge_processors::runtime::{ProcessorConfig, ProcessorMetrics};
use surge_processors::supervisor::Supervisor;
use surge_schemas::Codec;
use tokio::sync::watch;

use crate::infra;
use crate::serve::{bind, serve};
use crate::settings::{Common, Process};

#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) common: Common,
    #[command(flatten)]
    pub(crate) process: Process,
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let kafka = infra::kafka(&args.common).await?;
    let registry = infra::schema_registry(&args.common).await?;
    let metrics = prometheus::Registry::new();
    let processors = start(
        &args.common,
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
}

impl Processors {
    /// Stops every processor, each finishing the batch in hand.
    pub(crate) async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.following.await;
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
    let stores = Stores {
        activity_retention: Duration::from_secs(
            u64::from(process.activity_retention_days) * 86_400,
        ),
        ..infra::stores(common).await?
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
        quests: common.quest_book(),
    })
}

/// Starts the selected processors on their projections' active versions, and follows
/// switches to new versions; shared with `surge dev`.
pub(crate) async fn start(
    common: &Common,
    process: &Process,
    brokers: &str,
    registry_url: &str,
    metrics: &prometheus::Registry,
) -> anyhow::Result<Processors> {
    let context = sink_context(common, process, brokers, registry_url, metrics).await?;
    let stores = context.stores.clone();
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
        stall_after: Duration::from_millis(process.stall_after_ms),
        derived_delivery: process.derived_delivery,
        ..ProcessorConfig::new(brokers, &common.events_topic)
    };
    let supervisor = Supervisor::start(&names, context, config)
        .await
        .context("Failed to start the processors")?;
    tracing::info!(projections = ?supervisor.running().versions(), "Processors running.");
    let (shutdown, stopped) = watch::channel(false);
    let following = tokio::spawn(supervisor.clone().follow(stopped));
    Ok(Processors {
        stores,
        supervisor,
        shutdown,
        following,
    })
}
