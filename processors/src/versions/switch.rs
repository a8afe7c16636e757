//! The switch of a projection's active version, in the projection's store: see
//! `surge_projections::versions::switch` for how each store keeps it atomic. The rebuild
//! (`crate::replay`) decides when to freeze, switch or release.

use crate::projectors::{Entry, StoreKind, Stores};
use crate::runtime::SinkError;
pub use surge_projections::versions::{Behind, Frozen, Switch};

/// Freezes `from` (which must be active, with `to` being built) for a switch to `to`.
pub async fn freeze(
    stores: &Stores,
    entry: &Entry,
    topic: &str,
    from: u32,
    to: u32,
) -> Result<Frozen, SinkError> {
    use surge_projections::versions::{freeze_postgres, freeze_redis};
    let frozen = match entry.store() {
        StoreKind::Postgres => freeze_postgres(&stores.pool, entry.name(), topic, from, to).await,
        StoreKind::Redis => {
            let (redis, prefix, name) = (&stores.redis, &stores.redis_prefix, entry.name());
            freeze_redis(
                redis,
                prefix,
                name,
                topic,
                stores.events_partitions,
                from,
                to,
            )
            .await
        }
    };
    Ok(frozen?)
}
