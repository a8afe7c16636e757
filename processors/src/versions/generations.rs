//! Who owns a version's partitions now: their fencing generations, as stored beside the
//! positions. A claim bumps a partition's generation, so a changed generation means another
//! processor has taken the partition (how a rebuild sees that `surge process` took over).

use std::collections::HashMap;

use surge_projections::positions::partition_of;
use surge_projections::versions::keys_base;

use crate::projectors::{Entry, StoreKind, Stores};
use crate::runtime::SinkError;

/// Each partition's generation of `version` of `entry` on `topic`.
pub async fn generations(
    stores: &Stores,
    entry: &Entry,
    version: u32,
    topic: &str,
) -> Result<HashMap<i32, i64>, SinkError> {
    match entry.store {
        StoreKind::Postgres => Ok(sqlx::query_as(
            "SELECT partition, generation FROM projection_positions \
             WHERE projection = $1 AND version = $2 AND topic = $3",
        )
        .bind(entry.name)
        .bind(version as i32)
        .bind(topic)
        .fetch_all(&stores.pool)
        .await?
        .into_iter()
        .collect()),
        StoreKind::Redis => {
            let key = format!(
                "{}:generations",
                keys_base(&stores.redis_prefix, entry.name, version)
            );
            let mut conn = stores.redis.clone();
            let fields: HashMap<String, i64> = redis::cmd("HGETALL")
                .arg(key)
                .query_async(&mut conn)
                .await?;
            Ok(fields
                .into_iter()
                .filter_map(|(field, generation)| Some((partition_of(&field, topic)?, generation)))
                .collect())
        }
    }
}
