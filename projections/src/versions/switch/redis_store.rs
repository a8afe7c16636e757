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

use std::collections::BTreeSet;
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
}

impl VersionKeys {
    fn new(prefix: &str, name: &str, version: u32, topic: &str) -> Self {
        VersionKeys {
            base: naming::keys_base(prefix, name, version),
            topic: topic.to_owned(),
        }
    }

    /// The partitions the version has a position or a generation for: every one it ever
    /// claimed.
    async fn partitions(&self, redis: &Redis) -> Result<BTreeSet<i32>, VersionsError> {
        let mut conn = redis.clone();
        let (positions, generations): (Vec<String>, Vec<String>) = redis::pipe()
            .hkeys(naming::positions_key(&self.base))
            .hkeys(naming::generations_key(&self.base))
            .query_async(&mut conn)
            .await?;
        Ok((positions.iter().chain(&generations))
            .filter_map(|field| naming::partition_of(field, &self.topic))
            .collect())
    }

    async fn positions(&self, redis: &Redis) -> Result<Positions, VersionsError> {
        let key = naming::positions_key(&self.base);
        Ok(crate::positions::redis_store::read_hash(redis, &key, &self.topic).await?)
    }

    fn lease(&self, partition: i32) -> String {
        naming::freeze_lease_key(&self.base, &naming::position_field(&self.topic, partition))
    }

    /// Sets the lease of each of `partitions` to `to`, for [`LEASE`] or, with `None`, for good.
    async fn lease_all(
        &self,
        redis: &Redis,
        partitions: &BTreeSet<i32>,
        to: u32,
        lease: Option<Duration>,
    ) -> Result<(), VersionsError> {
        for &partition in partitions {
            let mut set = redis::cmd("SET");
            set.arg(self.lease(partition)).arg(to);
            if let Some(lease) = lease {
                set.arg("PX").arg(lease.as_millis() as u64);
            }
            let () = set.query_async(&mut redis.clone()).await?;
        }
        Ok(())
    }

    /// Ends the freeze of every partition the version ever claimed.
    async fn release_all(&self, redis: &Redis) -> Result<(), VersionsError> {
        for partition in self.partitions(redis).await? {
            let () = redis::cmd("DEL")
                .arg(self.lease(partition))
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
    topic: &str,
    from: u32,
    to: u32,
) -> Result<Positions, VersionsError> {
    states(redis, prefix, name, from, to).await?;
    let old = VersionKeys::new(prefix, name, from, topic);
    let partitions = old.partitions(redis).await?;
    old.lease_all(redis, &partitions, to, Some(LEASE)).await?;
    // A batch's script runs before its partition's lease or finds it: once every lease is set,
    // the positions stand still.
    old.positions(redis).await
}

pub(super) async fn switch(
    redis: &Redis,
    prefix: &str,
    name: &str,
    topic: &str,
    from: u32,
    to: u32,
) -> Result<Switch, VersionsError> {
    let old = VersionKeys::new(prefix, name, from, topic);
    let new = VersionKeys::new(prefix, name, to, topic);
    // Again, over any partition claimed since the freeze, and any lease that lapsed meanwhile
    // (the positions are read after it, so what was applied meanwhile counts).
    let partitions = old.partitions(redis).await?;
    old.lease_all(redis, &partitions, to, Some(LEASE)).await?;
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
    let generations = naming::generations_key(&old.base);
    for &partition in &partitions {
        let _: i64 = redis::cmd("HINCRBY")
            .arg(&generations)
            .arg(naming::position_field(topic, partition))
            .arg(1)
            .query_async(&mut redis.clone())
            .await?;
    }
    old.lease_all(redis, &partitions, to, None).await?;
    Ok(Switch::Done)
}

/// Ends the freeze of `from` without switching.
pub(super) async fn release(
    redis: &Redis,
    prefix: &str,
    name: &str,
    topic: &str,
    from: u32,
) -> Result<(), VersionsError> {
    VersionKeys::new(prefix, name, from, topic)
        .release_all(redis)
        .await
}
