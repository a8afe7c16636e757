//! Dropping a version's tables or keys, and resetting every version of every projection.

use surge_projections::versions::{VersionState, keys_base, table_prefix};

use crate::projectors::{CATALOG, Entry, StoreKind, Stores};
use crate::runtime::SinkError;

/// Removes `version` of `entry`: its tables (with their partitions, or TimescaleDB's chunks and
/// continuous aggregates) and positions, or its Redis keys; the registry keeps it as `dropped`.
pub async fn drop_version(stores: &Stores, entry: &Entry, version: u32) -> Result<(), SinkError> {
    match entry.store {
        StoreKind::Postgres => {
            drop_tables(
                stores,
                &format!("{}\\_%", table_prefix(entry.name, version)),
            )
            .await?;
            forget_positions(stores, entry.name, Some(version)).await?;
        }
        StoreKind::Redis => {
            let base = keys_base(&stores.redis_prefix, entry.name, version);
            unlink_matching(stores, &format!("{base}:*")).await?;
        }
    }
    stores
        .versions(entry)
        .set_state(version, VersionState::Dropped)
        .await
        .map_err(|e| SinkError::Transient(e.to_string()))
}

/// Forgets every projection's state: all versions' tables, positions, registry entries and
/// Redis keys. For an embedded broker that starts empty on every run, where stored positions
/// would otherwise point past the new, shorter log and skip its events.
pub async fn reset_all(stores: &Stores) -> Result<(), SinkError> {
    for entry in CATALOG {
        match entry.store {
            StoreKind::Postgres => {
                drop_tables(stores, &format!("{}\\_v%", entry.name)).await?;
                forget_positions(stores, entry.name, None).await?;
                if exists(stores, "projection_versions").await? {
                    sqlx::query("DELETE FROM projection_versions WHERE projection = $1")
                        .bind(entry.name)
                        .execute(&stores.pool)
                        .await?;
                }
            }
            StoreKind::Redis => {
                // The versions hash and every version's keys.
                let pattern = format!("{}:{}:v*", stores.redis_prefix, entry.name);
                unlink_matching(stores, &pattern).await?;
            }
        }
    }
    Ok(())
}

/// Drops the tables and materialized views of the current schema whose names match `like`.
/// Partitions go with their parent. TimescaleDB's continuous aggregates are views (relkind `v`,
/// which `DROP VIEW` refuses) over their hypertable: they go with it through `CASCADE`, and the
/// extension removes their materialization hypertables and refresh policies with them (checked
/// on TimescaleDB 2.17.2). No TimescaleDB function is called here, so nothing depends on the
/// extension's schema.
async fn drop_tables(stores: &Stores, like: &str) -> Result<(), SinkError> {
    let relations: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.relname::text, c.relkind::text FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = current_schema() AND c.relname LIKE $1 \
           AND c.relkind IN ('r', 'p', 'm') AND NOT c.relispartition \
         ORDER BY c.relkind DESC",
    )
    .bind(like)
    .fetch_all(&stores.pool)
    .await?;
    // Materialized views before their tables.
    for (name, kind) in relations {
        let what = if kind == "m" {
            "MATERIALIZED VIEW"
        } else {
            "TABLE"
        };
        sqlx::query(&format!("DROP {what} IF EXISTS \"{name}\" CASCADE"))
            .execute(&stores.pool)
            .await?;
    }
    Ok(())
}

async fn exists(stores: &Stores, table: &str) -> Result<bool, SinkError> {
    let found: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text")
        .bind(table)
        .fetch_one(&stores.pool)
        .await?;
    Ok(found.is_some())
}

async fn forget_positions(
    stores: &Stores,
    name: &str,
    version: Option<u32>,
) -> Result<(), SinkError> {
    if !exists(stores, "projection_positions").await? {
        return Ok(());
    }
    sqlx::query(
        "DELETE FROM projection_positions WHERE projection = $1 AND ($2::integer IS NULL OR version = $2)",
    )
    .bind(name)
    .bind(version.map(|v| v as i32))
    .execute(&stores.pool)
    .await?;
    Ok(())
}

/// Unlinks every key matching `pattern`, a SCAN page at a time (never `KEYS`: a version may
/// hold millions of keys, and Redis serves reads meanwhile).
async fn unlink_matching(stores: &Stores, pattern: &str) -> Result<(), SinkError> {
    let mut conn = stores.redis.clone();
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await?;
        if !keys.is_empty() {
            let _: () = redis::cmd("UNLINK")
                .arg(&keys)
                .query_async(&mut conn)
                .await?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}
