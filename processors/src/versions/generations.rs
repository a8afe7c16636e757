//! Who owns a version's partitions now: their fencing generations, as stored beside the
//! positions. A claim bumps a partition's generation, so a changed generation means another
//! processor has taken the partition (how a rebuild sees that `surge process` took over).

use std::collections::HashMap;

use crate::projectors::{Entry, Stores};
use crate::runtime::SinkError;

/// Each partition's generation of `version` of `entry` on `topic`.
pub async fn generations(
    stores: &Stores,
    entry: &Entry,
    version: u32,
    topic: &str,
) -> Result<HashMap<i32, i64>, SinkError> {
    Ok(stores
        .positions(entry, version, topic)
        .generations()
        .await?)
}
