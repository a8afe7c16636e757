//! `surge query-api`: serves the projections, with read-your-writes and cache validators.

use std::time::Duration;

use surge_projections::query_api::{self, QueryApiConfig, Routers};

use crate::infra;
use crate::serve::{bind, cors, serve};
use crate::settings::{Common, QueryApi, Telegram};

#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) common: Common,
    #[command(flatten)]
    pub(crate) telegram: Telegram,
    #[command(flatten)]
    pub(crate) query: QueryApi,
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let routers = app(&args.common, &args.telegram, &args.query).await?;
    let listener = bind(args.query.query_addr, "query API").await?;
    let admin_listener = bind(args.query.query_admin_addr, "query API admin").await?;
    let limits = args.common.connection_limits();
    let public = cors::allow_origins(routers.public, &args.common.cors_origins)?;
    let (served, admin_served) = tokio::join!(
        serve(listener, public, "query API", limits),
        serve(admin_listener, routers.admin, "query API admin", limits),
    );
    served.and(admin_served)
}

pub(crate) async fn app(
    common: &Common,
    telegram: &Telegram,
    query: &QueryApi,
) -> anyhow::Result<Routers> {
    let store_timeout = Duration::from_millis(query.store_timeout_ms);
    // A pool that cannot hand out a connection within the store timeout answers 503 instead
    // of queueing requests behind a slow or absent database.
    let pool = infra::database_pool(common, query.pg_connections, store_timeout).await?;
    let replicas = infra::read_replicas(
        common,
        &query.database_read_urls,
        query.pg_connections,
        store_timeout,
    )?;
    let redis = infra::redis(common).await?;
    // The projection tables exist before any read, even when no processor has run yet. A
    // read-only database user cannot create them: then reads answer 503 until `surge migrate`
    // or a processor has.
    if let Err(error) = surge_projections::migrations::migrate_all(&pool).await {
        tracing::warn!(%error, "Could not create the projection tables; reads fail until they exist.");
    }
    let config = QueryApiConfig {
        consistency_wait: Duration::from_millis(query.consistency_wait_ms),
        store_timeout,
        max_in_flight: query.query_max_in_flight,
        leaderboard_cache: Duration::from_millis(query.leaderboard_cache_ms),
        operator_token: common.operator_token.clone(),
        max_waiters: query.query_max_waiters,
        max_waiters_per_caller: query.query_max_waiters_per_user as usize,
        game: common.game(),
        live_redis: infra::redis_servers(common)?,
        live_max_streams: query.live_max_streams,
        live_max_streams_per_user: query.live_max_streams_per_user as usize,
        // Well inside the idle timeout that closes a connection nothing was written to.
        live_heartbeat: Duration::from_millis(common.http_header_timeout_ms / 2)
            .clamp(Duration::from_millis(100), Duration::from_secs(15)),
        replicas,
        replica_max_lag: Duration::from_millis(query.database_read_max_lag_ms),
        ..QueryApiConfig::new(
            &common.events_topic,
            common.events_partitions,
            &common.redis_prefix,
            telegram.token_keys(),
        )
    };
    Ok(query_api::app(config, telegram.validator()?, pool, redis))
}
