//! Removing a version's data: its tables (with their partitions, or TimescaleDB's chunks and
//! continuous aggregates) and positions, or its Redis keys; and forgetting every version of a
//! projection. When to do it (after a switch, on `surge projections drop`, for an embedded
//! broker that starts empty) is the caller's decision.

use sqlx::PgPool;
use surge_redis::Redis;

use super::redis_store::for_each_page;
use crate::naming;
use crate::positions;

/// Drops the tables of `version` of the PostgreSQL projection `projection` and its positions.
/// The registry entry stays (see [`VersionRegistry::set_state`](super::VersionRegistry::set_state)).
pub async fn drop_postgres(
    pool: &PgPool,
    projection: &str,
    version: u32,
) -> Result<(), sqlx::Error> {
    drop_tables(pool, &naming::version_tables_like(projection, version)).await?;
    forget_positions(pool, projection, Some(version)).await
}

/// Unlinks every key of `version` of the Redis projection `projection`. The registry entry
/// stays.
pub async fn drop_redis(
    redis: &Redis,
    deployment_prefix: &str,
    projection: &str,
    version: u32,
) -> Result<(), redis::RedisError> {
    let base = naming::keys_base(deployment_prefix, projection, version);
    unlink_matching(redis, &naming::version_keys_pattern(&base)).await
}

/// Forgets every version of the PostgreSQL projection `projection`: tables, positions and
/// registry entries.
pub async fn reset_postgres(pool: &PgPool, projection: &str) -> Result<(), sqlx::Error> {
    drop_tables(pool, &naming::all_versions_tables_like(projection)).await?;
    forget_positions(pool, projection, None).await?;
    if exists(pool, "projection_versions").await? {
        sqlx::query(include_str!("sql/forget_versions.sql"))
            .bind(projection)
            .execute(pool)
            .await?;
    }
    Ok(())
}

/// Forgets every version of the Redis projection `projection`: the versions hash and every
/// version's keys.
pub async fn reset_redis(
    redis: &Redis,
    deployment_prefix: &str,
    projection: &str,
) -> Result<(), redis::RedisError> {
    let pattern = naming::all_versions_keys_pattern(deployment_prefix, projection);
    unlink_matching(redis, &pattern).await
}

/// Drops the tables and materialized views of the current schema whose names match `like`.
/// Partitions go with their parent. TimescaleDB's continuous aggregates are views (relkind `v`,
/// which `DROP VIEW` refuses) over their hypertable: they go with it through `CASCADE`, and the
/// extension removes their materialization hypertables and refresh policies with them (checked
/// on TimescaleDB 2.17.2). No TimescaleDB function is called here, so nothing depends on the
/// extension's schema.
async fn drop_tables(pool: &PgPool, like: &str) -> Result<(), sqlx::Error> {
    let relations: Vec<(String, String)> = sqlx::query_as(include_str!("sql/relations.sql"))
        .bind(like)
        .fetch_all(pool)
        .await?;
    // Materialized views before their tables.
    for (name, kind) in relations {
        let what = if kind == "m" {
            "MATERIALIZED VIEW"
        } else {
            "TABLE"
        };
        sqlx::query(&format!("DROP {what} IF EXISTS \"{name}\" CASCADE"))
            .execute(pool)
            .await?;
    }
    Ok(())
}

async fn exists(pool: &PgPool, table: &str) -> Result<bool, sqlx::Error> {
    let found: Option<String> = sqlx::query_scalar(include_str!("sql/exists.sql"))
        .bind(table)
        .fetch_one(pool)
        .await?;
    Ok(found.is_some())
}

async fn forget_positions(
    pool: &PgPool,
    projection: &str,
    version: Option<u32>,
) -> Result<(), sqlx::Error> {
    if !exists(pool, "projection_positions").await? {
        return Ok(());
    }
    positions::postgres::forget(pool, projection, version).await
}

/// Unlinks every key matching `pattern`, a SCAN page at a time (in a cluster the client splits
/// each `UNLINK` by slot).
async fn unlink_matching(redis: &Redis, pattern: &str) -> Result<(), redis::RedisError> {
    for_each_page(redis, pattern, |keys| async move {
        if !keys.is_empty() {
            let _: () = redis::cmd("UNLINK")
                .arg(&keys)
                .query_async(&mut redis.clone())
                .await?;
        }
        Ok(())
    })
    .await
}
