//! Positions in Redis: per partition of a version, in the partition's key space
//! ([`naming::partition_keys_base`]), the hashes [`naming::positions_key`] (next offset) and
//! [`naming::generations_key`] (fencing generation), field [`naming::position_field`].

use std::collections::HashMap;

use futures::future::try_join_all;
use redis::Script;
use surge_redis::Redis;

use super::Claim;
use crate::naming;
use crate::versions::{VersionState, states_of};

/// The value of each of the `partitions` partitions of `topic` in the hash `key_of` names in
/// that partition's key space under `keys_base`; a partition without one is absent. One
/// command per partition, sent at once: in a cluster each goes to its own slot's master.
pub(crate) async fn read_partitions(
    redis: &Redis,
    keys_base: &str,
    topic: &str,
    partitions: i32,
    key_of: fn(&str) -> String,
) -> Result<HashMap<i32, i64>, redis::RedisError> {
    let values = try_join_all((0..partitions).map(|partition| {
        let key = key_of(&naming::partition_keys_base(keys_base, partition));
        let mut conn = redis.clone();
        async move {
            let value: Option<i64> = redis::cmd("HGET")
                .arg(key)
                .arg(naming::position_field(topic, partition))
                .query_async(&mut conn)
                .await?;
            Ok::<_, redis::RedisError>(value.map(|value| (partition, value)))
        }
    }))
    .await?;
    Ok(values.into_iter().flatten().collect())
}

/// The versions of `projection` with a positions hash under `deployment_prefix`, any order.
pub async fn redis_versions(
    redis: &Redis,
    deployment_prefix: &str,
    projection: &str,
) -> Result<Vec<u32>, redis::RedisError> {
    let pattern = naming::all_positions_keys_pattern(deployment_prefix, projection);
    let mut versions = Vec::new();
    crate::versions::for_each_page(redis, &pattern, |keys| {
        versions.extend(keys.iter().filter_map(|key| {
            naming::version_of_positions_key(deployment_prefix, projection, key)
        }));
        async { Ok(()) }
    })
    .await?;
    Ok(versions)
}

/// The position bookkeeping keys of one Redis projection version, and its claim script.
pub struct RedisPositions {
    version: u32,
    keys_base: String,
    /// The projection's versions hash: which versions may still be claimed.
    versions: String,
    claim: Script,
}

impl RedisPositions {
    pub fn new(deployment_prefix: &str, projection: &str, version: u32) -> Self {
        RedisPositions {
            version,
            keys_base: naming::keys_base(deployment_prefix, projection, version),
            versions: naming::versions_key(deployment_prefix, projection),
            claim: Script::new(include_str!("claim.lua")),
        }
    }

    /// The hash of `partition`'s next offset.
    pub fn positions_key(&self, partition: i32) -> String {
        naming::positions_key(&naming::partition_keys_base(&self.keys_base, partition))
    }

    /// The hash of `partition`'s fencing generation.
    pub fn generations_key(&self, partition: i32) -> String {
        naming::generations_key(&naming::partition_keys_base(&self.keys_base, partition))
    }

    /// The freeze lease of `partition`: while it exists, the version's batches of that
    /// partition wait (a switch takes over).
    pub fn freeze_lease_key(&self, partition: i32) -> String {
        naming::freeze_lease_key(&naming::partition_keys_base(&self.keys_base, partition))
    }

    /// Claims `partitions` of `topic`: bumps each generation (fencing older owners) and returns
    /// where to resume. Empty when the version no longer serves (retired by a switch, or
    /// dropped): it is never claimed again. The version's state is read first, apart from the
    /// claim, so the versions hash and the partitions' keys need not share a slot; a claim that
    /// races a switch past that read finds the partitions frozen for good (see
    /// `versions::switch`), so it applies nothing. Each partition is claimed by a script of its
    /// own, in its own slot.
    pub async fn claim(
        &self,
        redis: &Redis,
        topic: &str,
        partitions: &[i32],
    ) -> Result<Vec<Claim>, redis::RedisError> {
        let state = states_of(redis, &self.versions, &[self.version]).await?[0];
        if matches!(state, Some(VersionState::Retired | VersionState::Dropped)) {
            return Ok(Vec::new());
        }
        try_join_all(partitions.iter().map(|&partition| async move {
            let (generation, next_offset): (i64, i64) = self
                .claim
                .key(self.positions_key(partition))
                .key(self.generations_key(partition))
                .arg(naming::position_field(topic, partition))
                .invoke_async(&mut redis.clone())
                .await?;
            Ok(Claim {
                partition,
                generation,
                next_offset,
            })
        }))
        .await
    }
}
