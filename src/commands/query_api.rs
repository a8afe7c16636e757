//! `surge query-api`: serves the projections. Until the projections exist it answers every
//! `/v1` route with 501 and reports its stores on `/health/ready`.

use axum::Router;

use crate::infra;
use crate::serve::{bind, serve};
use crate::settings::{Common, QueryApi};

#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) common: Common,
    #[command(flatten)]
    pub(crate) query: QueryApi,
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let app = app(&args.common).await?;
    let listener = bind(args.query.query_addr, "query API").await?;
    serve(listener, app, "query API").await
}

pub(crate) async fn app(common: &Common) -> anyhow::Result<Router> {
    let pool = infra::database(common).await?;
    let redis = infra::redis(common).await?;
    Ok(surge_projections::query_api::app(pool, redis))
}
