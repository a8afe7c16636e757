//! `surge dev`: the whole system in one process on embedded defaults, for a laptop or a demo.

use std::net::SocketAddr;
use std::time::Duration;

use super::demo::{self, DemoConfig};
use crate::infra;
use crate::serve::{bind, cors, serve};
use crate::settings::{Common, Demo, Process, QueryApi, Telegram, WriteApi};

#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) common: Common,
    #[command(flatten)]
    pub(crate) telegram: Telegram,
    #[command(flatten)]
    pub(crate) write: WriteApi,
    #[command(flatten)]
    pub(crate) query: QueryApi,
    #[command(flatten)]
    pub(crate) process: Process,
    #[command(flatten)]
    pub(crate) demo: Demo,
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let common = &args.common;
    let kafka = infra::kafka(common).await?;
    let registry = infra::schema_registry(common).await?;
    let state = super::write_api::state(
        common,
        &args.telegram,
        &args.write,
        &kafka.brokers,
        &registry.url,
    )
    .await?;
    let query = super::query_api::app(common, &args.telegram, &args.query).await?;
    let metrics = prometheus::Registry::new();
    let processors = super::process::start(
        common,
        &args.telegram,
        &args.process,
        &kafka.brokers,
        &registry.url,
        &metrics,
    )
    .await?;
    wait_for_partitions(&processors, common.events_partitions).await;
    let process_app = surge_processors::health::app(
        metrics,
        processors.stores.clone(),
        processors.supervisor.running(),
    );
    let process_listener = bind(args.process.process_addr, "processor health").await?;
    let write_listener = bind(args.write.write_addr, "write API").await?;
    let query_listener = bind(args.query.query_addr, "query API").await?;
    let write_admin_listener = bind(args.write.write_admin_addr, "write API admin").await?;
    let query_admin_listener = bind(args.query.query_admin_addr, "query API admin").await?;
    let webhook_listener = bind(args.write.telegram_webhook_addr, "Telegram webhook").await?;
    let demo_listener = bind(args.demo.demo_addr, "Mini App demo").await?;
    let demo_addr = demo_listener.local_addr()?;
    let demo = demo::app(
        &args.demo.demo_dir,
        DemoConfig {
            write_url: browser_url(write_listener.local_addr()?),
            query_url: browser_url(query_listener.local_addr()?),
            bot_token: args.telegram.bot_token.clone(),
        },
    );
    // The demo page calls both APIs from its own origin.
    let mut origins = common.cors_origins.clone();
    origins.push(browser_url(demo_addr));
    if demo_addr.ip().is_loopback() {
        origins.push(format!("http://localhost:{}", demo_addr.port()));
    }
    tracing::info!(
        write = %args.write.write_addr,
        query = %args.query.query_addr,
        webhook = %args.write.telegram_webhook_addr,
        registry = %registry.url,
        demo = %browser_url(demo_addr),
        "Surge dev is up. Open the demo Mini App, or sign initData with `surge sign-init-data --user-id 1`."
    );
    let log = state.log.clone();
    let limits = args.common.connection_limits();
    let write_admin = surge_producers::admin(state.clone());
    let webhook = surge_producers::webhook(state.clone());
    let write_app = cors::allow_origins(surge_producers::app(state), &origins)?;
    let query_app = cors::allow_origins(query.public, &origins)?;
    let (write, query, process, write_admin, query_admin, webhook, demo) = tokio::join!(
        serve(write_listener, write_app, "write API", limits),
        serve(query_listener, query_app, "query API", limits),
        serve(process_listener, process_app, "processor health", limits),
        serve(write_admin_listener, write_admin, "write API admin", limits),
        serve(query_admin_listener, query.admin, "query API admin", limits),
        serve(webhook_listener, webhook, "Telegram webhook", limits),
        serve(demo_listener, demo, "Mini App demo", limits),
    );
    log.flush(Duration::from_secs(10));
    processors.stop().await;
    write
        .and(query)
        .and(process)
        .and(write_admin)
        .and(query_admin)
        .and(webhook)
        .and(demo)
}

/// Waits, at most [`JOIN_DEADLINE`], until every processor has claimed all `partitions`: the
/// APIs open after, so a first write read back with its token does not wait out its bound (and
/// answer 504) while the processors are still joining their groups.
async fn wait_for_partitions(processors: &super::process::Processors, partitions: i32) {
    let running = processors.supervisor.running();
    let all = usize::try_from(partitions).unwrap_or(0);
    let deadline = tokio::time::Instant::now() + JOIN_DEADLINE;
    loop {
        let joining = running.owning_fewer_than(all);
        if joining.is_empty() {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(
                ?joining,
                "Processors still joining their groups; opening the APIs anyway."
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How long `surge dev` waits for its processors to claim their partitions before it opens.
const JOIN_DEADLINE: Duration = Duration::from_secs(30);

/// How a browser on this machine reaches a listener (an unspecified address through localhost).
fn browser_url(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        format!("http://localhost:{}", addr.port())
    } else {
        format!("http://{addr}")
    }
}
