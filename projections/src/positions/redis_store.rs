//! Positions in Redis: per version, the hashes [`naming::positions_key`] (next offsets) and
//! [`naming::generations_key`] (fencing generations), fields [`naming::position_field`].

use std::collections::HashMap;

use redis::Script;
use surge_redis::Redis;

use super::Claim;
use crate::naming;
use crate::versions::{VersionState, states_of};

/// The fields of the hash `key` that name partitions of `topic`, by partition.
pub(crate) async fn read_hash(
    redis: &Redis,
    key: &str,
    topic: &str,
) -> Result<HashMap<i32, i64>, redis::RedisError> {
    let mut conn = redis.clone();
    let fields: HashMap<String, i64> = redis::cmd("HGETALL")
        .arg(key)
        .query_async(&mut conn)
        .await?;
    Ok(fields
        .into_iter()
        .filter_map(|(field, value)| Some((naming::partition_of(&field, topic)?, value)))
        .collect())
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
    positions: String,
    generations: String,
    keys_base: String,
    /// The projection's versions hash: which versions may still be claimed.
    versions: String,
    claim: Script,
}

impl RedisPositions {
    pub fn new(deployment_prefix: &str, projection: &str, version: u32) -> Self {
        let base = naming::keys_base(deployment_prefix, projection, version);
        RedisPositions {
            version,
            positions: naming::positions_key(&base),
            generations: naming::generations_key(&base),
            keys_base: base.clone(),
            versions: naming::versions_key(deployment_prefix, projection),
            claim: Script::new(include_str!("claim.lua")),
        }
    }

    /// The hash of next offsets.
    pub fn positions_key(&self) -> &str {
        &self.positions
    }

    /// The hash of fencing generations.
    pub fn generations_key(&self) -> &str {
        &self.generations
    }

    /// The freeze lease of the partition `field` names: while it exists, the version's
    /// batches of that partition wait (a switch takes over).
    pub fn freeze_lease_key(&self, field: &str) -> String {
        naming::freeze_lease_key(&self.keys_base, field)
    }

    /// Claims `partitions` of `topic`: bumps each generation (fencing older owners) and returns
    /// where to resume. Empty when the version no longer serves (retired by a switch, or
    /// dropped): it is never claimed again. The version's state is read first, apart from the
    /// claim, so the versions hash and the partitions' keys need not share a slot; a claim that
    /// races a switch past that read finds the partitions frozen for good (see
    /// `versions::switch`), so it applies nothing.
    pub async fn claim(
        &self,
        redis: &Redis,
        topic: &str,
        partitions: &[i32],
    ) -> Result<Vec<Claim>, redis::RedisError> {
        let mut conn = redis.clone();
        let state = states_of(redis, &self.versions, &[self.version]).await?[0];
        if matches!(state, Some(VersionState::Retired | VersionState::Dropped)) {
            return Ok(Vec::new());
        }
        let mut invocation = self.claim.prepare_invoke();
        invocation.key(&self.positions).key(&self.generations);
        for &p in partitions {
            invocation.arg(naming::position_field(topic, p));
        }
        let flat: Vec<i64> = invocation.invoke_async(&mut conn).await?;
        Ok(partitions
            .iter()
            .zip(flat.chunks_exact(2))
            .map(|(&partition, pair)| Claim {
                partition,
                generation: pair[0],
                next_offset: pair[1],
            })
            .collect())
    }
}
