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
use crate::positions::{Positions, RedisPositions};
use crate::versions::{VersionState, VersionsError, states_of};

/// How long a freeze lasts unless the switch ends it first (a crashed rebuild's freeze ends
/// by itself).
const LEASE: Duration = Duration::from_secs(10);

/// A Redis projection's versions on one topic: where its switch runs.
pub(super) struct RedisVersions {
    pub(super) redis: Redis,
    pub(super) deployment_prefix: String,
    pub(super) projection: String,
    pub(super) topic: String,
    /// Partitions of `topic`: every version has a key space for each, `0..partitions`.
    pub(super) partitions: i32,
}

impl RedisVersions {
    fn version(&self, version: u32) -> VersionKeys<'_> {
        VersionKeys {
            on: self,
            base: naming::keys_base(&self.deployment_prefix, &self.projection, version),
            keys: RedisPositions::new(&self.deployment_prefix, &self.projection, version),
        }
    }

    /// Checks the states of `from` and `to` in the versions hash.
    async fn check_states(&self, from: u32, to: u32) -> Result<(), VersionsError> {
        let key = naming::versions_key(&self.deployment_prefix, &self.projection);
        let states = states_of(&self.redis, &key, &[from, to]).await?;
        let state = |i: usize| states[i].map(VersionState::as_str);
        check_states(state(0), state(1), from, to)
    }

    pub(super) async fn freeze(&self, from: u32, to: u32) -> Result<Positions, VersionsError> {
        self.check_states(from, to).await?;
        let old = self.version(from);
        old.lease_all(to, Some(LEASE)).await?;
        // A batch's script runs before its partition's lease or finds it: once every lease is
        // set, the positions stand still.
        old.positions().await
    }

    pub(super) async fn switch(&self, from: u32, to: u32) -> Result<Switch, VersionsError> {
        let (old, new) = (self.version(from), self.version(to));
        // Again, over any lease that lapsed meanwhile (the positions are read after it, so what
        // was applied meanwhile counts).
        old.lease_all(to, Some(LEASE)).await?;
        let behind: Vec<Behind> = behind(&old.positions().await?, &new.positions().await?);
        if !behind.is_empty() {
            old.release_all().await?;
            return Ok(Switch::Behind(behind));
        }
        let flipped: String = Script::new(include_str!("flip.lua"))
            .key(naming::versions_key(
                &self.deployment_prefix,
                &self.projection,
            ))
            .arg(from)
            .arg(to)
            .arg(crate::versions::now_ms())
            .invoke_async(&mut self.redis.clone())
            .await?;
        if flipped != "OK" {
            old.release_all().await?;
            return Err(VersionsError::Conflict(format!(
                "cannot switch from v{from} to v{to}: {flipped}"
            )));
        }
        // Fence the old version's processors: their next batch finds the generation moved.
        old.fence_all().await?;
        old.lease_all(to, None).await?;
        Ok(Switch::Done)
    }

    /// Ends the freeze of `from` without switching.
    pub(super) async fn release(&self, from: u32) -> Result<(), VersionsError> {
        self.version(from).release_all().await
    }
}

/// The keys of one version's partitions.
struct VersionKeys<'a> {
    on: &'a RedisVersions,
    base: String,
    /// Its partitions' position bookkeeping keys.
    keys: RedisPositions,
}

impl VersionKeys<'_> {
    async fn positions(&self) -> Result<Positions, VersionsError> {
        let RedisVersions {
            redis,
            topic,
            partitions,
            ..
        } = self.on;
        let read = crate::positions::redis_store::read_partitions;
        Ok(read(redis, &self.base, topic, *partitions, naming::positions_key).await?)
    }

    /// Sets every partition's lease to `to`, for [`LEASE`] or, with `None`, for good.
    async fn lease_all(&self, to: u32, lease: Option<Duration>) -> Result<(), VersionsError> {
        for partition in 0..self.on.partitions {
            let mut set = redis::cmd("SET");
            set.arg(self.keys.freeze_lease_key(partition)).arg(to);
            if let Some(lease) = lease {
                set.arg("PX").arg(lease.as_millis() as u64);
            }
            let () = set.query_async(&mut self.on.redis.clone()).await?;
        }
        Ok(())
    }

    /// Ends the freeze of every partition.
    async fn release_all(&self) -> Result<(), VersionsError> {
        for partition in 0..self.on.partitions {
            let () = redis::cmd("DEL")
                .arg(self.keys.freeze_lease_key(partition))
                .query_async(&mut self.on.redis.clone())
                .await?;
        }
        Ok(())
    }

    /// Bumps every partition's generation: whoever holds a claim on it is fenced.
    async fn fence_all(&self) -> Result<(), VersionsError> {
        for partition in 0..self.on.partitions {
            let _: i64 = redis::cmd("HINCRBY")
                .arg(self.keys.generations_key(partition))
                .arg(naming::position_field(&self.on.topic, partition))
                .arg(1)
                .query_async(&mut self.on.redis.clone())
                .await?;
        }
        Ok(())
    }
}
