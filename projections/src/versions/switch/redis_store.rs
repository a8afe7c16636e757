//! The switch in Redis, in steps that each touch one key, so that the serving version's
//! partitions may live in different slots of a Redis Cluster:
//! - **freeze**: a lease key per partition of the serving version (each partition's apply script
//!   checks its own and answers `FROZEN`), then its positions, read once every lease is set;
//! - **switch**: the leases set again (over any partition claimed since), both versions'
//!   positions compared, the `active` mark moved (`flip.lua`, the one step that must see both
//!   versions' states at once), the old version's generations bumped (its processors are
//!   fenced), and its leases kept for good, so nothing is applied to it again, whoever claims.
//!
//! Each step survives a crash after it: leases expire by themselves ([`LEASE`]) unless the
//! switch made them permanent, a flipped mark is final, and the old version's processors, held
//! by their leases until then, are fenced or find the version retired when they claim.

use std::time::Duration;

use redis::Script;
use surge_redis::Redis;

use super::{Behind, Switch, behind, check_states};
use crate::naming;
use crate::positions::Positions;
use crate::versions::{VersionState, VersionsError, states_of};

/// How long a freeze lasts unless the switch ends it first (a crashed rebuild's freeze ends
/// by itself).
const LEASE: Duration = Duration::from_secs(10);

/// The keys of one version's partitions on `topic`.
struct VersionKeys {
    base: String,
    topic: String,
    /// Partitions of `topic`: `0..partitions`.
    partitions: i32,
}

impl VersionKeys {
    fn new(prefix: &str, name: &str, version: u32, topic: &str, partitions: i32) -> Self {
        VersionKeys {
            base: naming::keys_base(prefix, name, version),
            topic: topic.to_owned(),
            partitions,
        }
    }

    async fn positions(&self, redis: &Redis) -> Result<Positions, VersionsError> {
        let (base, topic, key_of) = (&self.base, &self.topic, naming::positions_key);
        let read = crate::positions::redis_store::read_partitions;
        Ok(read(redis, base, topic, self.partitions, key_of).await?)
    }

    fn partition_key(&self, partition: i32, key_of: fn(&str) -> String) -> String {
        key_of(&naming::partition_keys_base(&self.base, partition))
    }

    /// Sets every partition's lease to `to`, for [`LEASE`] or, with `None`, for good.
    async fn lease_all(
        &self,
        redis: &Redis,
        to: u32,
        lease: Option<Duration>,
    ) -> Result<(), VersionsError> {
        for partition in 0..self.partitions {
            let mut set = redis::cmd("SET");
            set.arg(self.partition_key(partition, naming::freeze_lease_key))
                .arg(to);
            if let Some(lease) = lease {
                set.arg("PX").arg(lease.as_millis() as u64);
            }
            let () = set.query_async(&mut redis.clone()).await?;
        }
        Ok(())
    }

    /// Ends the freeze of every partition.
    async fn release_all(&self, redis: &Redis) -> Result<(), VersionsError> {
        for partition in 0..self.partitions {
            let () = redis::cmd("DEL")
                .arg(self.partition_key(partition, naming::freeze_lease_key))
                .query_async(&mut redis.clone())
                .await?;
        }
        Ok(())
    }

    /// Bumps every partition's generation: whoever holds a claim on it is fenced.
    async fn fence_all(&self, redis: &Redis) -> Result<(), VersionsError> {
        for partition in 0..self.partitions {
            let _: i64 = redis::cmd("HINCRBY")
                .arg(self.partition_key(partition, naming::generations_key))
                .arg(naming::position_field(&self.topic, partition))
                .arg(1)
                .query_async(&mut redis.clone())
                .await?;
        }
        Ok(())
    }
}

/// The states of `from` and `to` in the versions hash.
async fn states(
    redis: &Redis,
    prefix: &str,
    name: &str,
    from: u32,
    to: u32,
) -> Result<(), VersionsError> {
    let key = naming::versions_key(prefix, name);
    let states = states_of(redis, &key, &[from, to]).await?;
    let state = |i: usize| states[i].map(VersionState::as_str);
    check_states(state(0), state(1), from, to)
}

pub(super) async fn freeze(
    redis: &Redis,
    prefix: &str,
    name: &str,
    (topic, partitions): (&str, i32),
    from: u32,
    to: u32,
) -> Result<Positions, VersionsError> {
    states(redis, prefix, name, from, to).await?;
    let old = VersionKeys::new(prefix, name, from, topic, partitions);
    old.lease_all(redis, to, Some(LEASE)).await?;
    // A batch's script runs before its partition's lease or finds it: once every lease is set,
    // the positions stand still.
    old.positions(redis).await
}

pub(super) async fn switch(
    redis: &Redis,
    prefix: &str,
    name: &str,
    (topic, partitions): (&str, i32),
    from: u32,
    to: u32,
) -> Result<Switch, VersionsError> {
    let old = VersionKeys::new(prefix, name, from, topic, partitions);
    let new = VersionKeys::new(prefix, name, to, topic, partitions);
    // Again, over any lease that lapsed meanwhile (the positions are read after it, so what was
    // applied meanwhile counts).
    old.lease_all(redis, to, Some(LEASE)).await?;
    let behind: Vec<Behind> = behind(&old.positions(redis).await?, &new.positions(redis).await?);
    if !behind.is_empty() {
        old.release_all(redis).await?;
        return Ok(Switch::Behind(behind));
    }
    let flipped: String = Script::new(include_str!("flip.lua"))
        .key(naming::versions_key(prefix, name))
        .arg(from)
        .arg(to)
        .arg(crate::versions::now_ms())
        .invoke_async(&mut redis.clone())
        .await?;
    if flipped != "OK" {
        old.release_all(redis).await?;
        return Err(VersionsError::Conflict(format!(
            "cannot switch from v{from} to v{to}: {flipped}"
        )));
    }
    // Fence the old version's processors: their next batch finds the generation moved.
    old.fence_all(redis).await?;
    old.lease_all(redis, to, None).await?;
    Ok(Switch::Done)
}

/// Ends the freeze of `from` without switching.
pub(super) async fn release(
    redis: &Redis,
    prefix: &str,
    name: &str,
    (topic, partitions): (&str, i32),
    from: u32,
) -> Result<(), VersionsError> {
    VersionKeys::new(prefix, name, from, topic, partitions)
        .release_all(redis)
        .await
}
