//! `surge process`: runs projections (all, or those named with --projection), each as its own
//! consumer group that resumes from the positions in its store.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use surge_processors::projectors::{self, Stores};
use surge_processors::runtime::{ProcessorConfig, ProcessorHandle, ProcessorMetrics};
use surge_schemas::Codec;

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
    let (stores, processors) = start(
        &args.common,
        &args.process,
        &kafka.brokers,
        &registry.url,
        &metrics,
    )
    .await?;
    let listener = bind(args.process.process_addr, "processor health").await?;
    let app = surge_processors::health::app(metrics, stores, processors.clone());
    let served = serve(listener, app, "processor health").await;
    stop(&processors);
    served
}

/// Starts the selected processors; shared with `surge dev`.
pub(crate) async fn start(
    common: &Common,
    process: &Process,
    brokers: &str,
    registry_url: &str,
    metrics: &prometheus::Registry,
) -> anyhow::Result<(Stores, Arc<Mutex<Vec<ProcessorHandle>>>)> {
    let stores = Stores {
        pool: infra::database(common).await?,
        redis: infra::redis(common).await?,
        redis_prefix: common.redis_prefix.clone(),
        activity_retention: Duration::from_secs(
            u64::from(process.activity_retention_days) * 86_400,
        ),
    };
    if common.kafka_brokers.is_none() {
        tracing::warn!(
            "Embedded Kafka starts empty on every run, so the projections built from its events are reset."
        );
        projectors::reset_all(&stores, &common.events_topic)
            .await
            .context("Failed to reset the projections of the embedded broker")?;
    }
    let codec = Arc::new(Codec::new(
        registry_url,
        &common.events_topic,
        Duration::from_secs(5),
    )?);
    let processor_metrics = ProcessorMetrics::new(metrics);
    let names: Vec<String> = if process.projections.is_empty() {
        projectors::names().map(str::to_owned).collect()
    } else {
        process.projections.clone()
    };
    let mut handles = Vec::new();
    for name in &names {
        let config = ProcessorConfig {
            batch_max: process.batch_max,
            batch_wait: Duration::from_millis(process.batch_wait_ms),
            session_timeout: Duration::from_millis(process.session_timeout_ms),
            max_poll_interval: Duration::from_millis(process.max_poll_interval_ms),
            fetch_wait: Duration::from_millis(process.fetch_wait_ms),
            derived_delivery: process.derived_delivery,
            ..ProcessorConfig::new(brokers, &common.events_topic)
        };
        let handle = projectors::start(
            name,
            &stores,
            codec.clone(),
            config,
            processor_metrics.clone(),
        )
        .await
        .with_context(|| format!("Failed to start the {name} processor"))?;
        handles.push(handle);
    }
    tracing::info!(projections = ?names, "Processors running.");
    Ok((stores, Arc::new(Mutex::new(handles))))
}

/// Stops every processor, each finishing the batch in hand.
pub(crate) fn stop(processors: &Arc<Mutex<Vec<ProcessorHandle>>>) {
    let handles: Vec<_> = processors
        .lock()
        .expect("processors lock")
        .drain(..)
        .collect();
    for handle in handles {
        handle.stop();
    }
}
