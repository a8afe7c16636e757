//! Dropping a version's tables or keys, and resetting every version of every projection. The
//! statements and keys are `surge_projections::versions::removal`.

use surge_projections::versions::{VersionState, removal};

use crate::projectors::{CATALOG, Entry, StoreKind, Stores};
use crate::runtime::SinkError;

/// Removes `version` of `entry`: its tables (with their partitions, or TimescaleDB's chunks and
/// continuous aggregates) and positions, or its Redis keys; the registry keeps it as `dropped`.
pub async fn drop_version(stores: &Stores, entry: &Entry, version: u32) -> Result<(), SinkError> {
    match entry.store() {
        StoreKind::Postgres => removal::drop_postgres(&stores.pool, entry.name(), version).await?,
        StoreKind::Redis => {
            let prefix = &stores.redis_prefix;
            removal::drop_redis(&stores.redis, prefix, entry.name(), version).await?
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
        match entry.store() {
            StoreKind::Postgres => removal::reset_postgres(&stores.pool, entry.name()).await?,
            StoreKind::Redis => {
                removal::reset_redis(&stores.redis, &stores.redis_prefix, entry.name()).await?
            }
        }
    }
    Ok(())
}
