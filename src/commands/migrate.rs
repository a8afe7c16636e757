//! `surge migrate`: prepares stores and the event contract, then exits. Safe to run repeatedly
//! and from several machines at once.

use anyhow::Context;

use crate::infra;
use crate::settings::Common;

#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) common: Common,
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let common = &args.common;
    surge_projections::migrations::migrate_all(&infra::database(common).await?)
        .await
        .context("Failed to migrate the projections")?;
    let registry = infra::schema_registry(common).await?;
    infra::codec(common, &registry.url).await?;
    if common.kafka_brokers.is_some() {
        infra::kafka(common).await?;
    }
    tracing::info!(schema = %common.database_schema, topic = %common.events_topic, "Migrations applied; event schemas registered.");
    Ok(())
}
