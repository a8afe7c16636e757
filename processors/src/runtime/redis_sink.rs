//! Redis sink.
//!
//! Guarantee: exactly-once effect. One pipelined read brings the watermark, who is parked, which
//! of the batch's ids were applied before (`redis_seen`) and the users' stored states; the batch
//! is folded from them in Rust, then one Lua script checks the partition's fencing generation,
//! that the watermark is where the fold started, and that no event id was seen before; only then
//! does it write the effects, the new states, the seen ids and the new watermark. A failed check
//! writes nothing and the batch is retried (or dropped, when fenced). The same script parks the
//! batch's dead letters and the events of parked users (see `parking`, `redis_parking`).
//!
//! Every key a batch touches is in its partition's key space ([`KeySpace::partition`]), so in
//! a Redis Cluster the script runs in that partition's slot, and the partitions of a version
//! spread over the masters.
//!
//! The position bookkeeping's keys and the claim script are `surge_projections::positions`
//! ([`RedisPositions`]). `lua/apply.lua` stays here: it checks and moves the position in the
//! same script as the projection's writes, so it cannot be split off; it takes its keys from
//! `RedisPositions`.

use std::collections::{HashMap, HashSet};

use redis::Script;
use surge_redis::Redis;

use surge_projections::naming::position_field;
use surge_projections::positions::{PositionSource, Positions, RedisPositions};

use super::parking::{self, Parked, Release, Released};
use super::redis_parking::{self, ParkingKeys};
use super::redis_seen::{self, SeenIds, SeenSets};
use super::rejections::redis_script_rejects_data;
use super::sink::{Applied, Claim, Sink, SinkError};
use super::{KeySpace, Record, RedisProjection, RedisWrite};

/// The most events one apply script holds (see [`Sink::max_batch`]).
const MAX_BATCH: usize = 1000;

pub struct RedisSink<P> {
    pub(super) projection: P,
    pub(super) redis: Redis,
    version: u32,
    /// The version's key space; a batch writes in its partition's ([`KeySpace::partition`]).
    pub(super) keys: KeySpace,
    /// Partitions of the topic: the version has a key space for each.
    pub(super) partitions: i32,
    /// The version's positions, generations and freeze leases, and its claims.
    pub(super) positions: RedisPositions,
    /// The day seen ids are filed under.
    pub(super) today: fn() -> i64,
    apply_script: Script,
    pub(super) release_script: Script,
}

impl<P: RedisProjection> RedisSink<P> {
    /// A sink writing `version` of `projection` under `deployment_prefix`, for a topic of
    /// `partitions` partitions.
    pub fn new(
        projection: P,
        redis: Redis,
        deployment_prefix: &str,
        version: u32,
        partitions: i32,
    ) -> Self {
        let keys = KeySpace::new(deployment_prefix, P::NAME, version);
        let writes = include_str!("lua/writes.lua");
        RedisSink {
            projection,
            redis,
            version,
            keys,
            partitions,
            positions: RedisPositions::new(deployment_prefix, P::NAME, version),
            today: redis_seen::today,
            apply_script: Script::new(&[writes, include_str!("lua/apply.lua")].concat()),
            release_script: Script::new(&[writes, include_str!("lua/release.lua")].concat()),
        }
    }

    pub fn keys(&self) -> &KeySpace {
        &self.keys
    }

    /// The keys of `partition`: all in its key space.
    pub(super) fn partition_keys(&self, topic: &str, partition: i32) -> PartitionKeys {
        let keys = self.keys.partition(partition);
        PartitionKeys {
            field: position_field(topic, partition),
            positions: self.positions.positions_key(partition),
            generations: self.positions.generations_key(partition),
            lease: self.positions.freeze_lease_key(partition),
            state: keys.key("state"),
            parking: ParkingKeys::new(&keys),
            seen: SeenIds::new(&keys),
            keys,
        }
    }

    /// Everything a batch of a partition is checked and folded against, in one round trip
    /// (one slot): the watermark, the parking epoch and which of its users are parked, which of
    /// its ids were applied before, and its users' stored states. Read for every record (some
    /// may turn out to be below the watermark): that costs less than a round trip, and the
    /// script checks again what matters.
    async fn read_for(
        &self,
        conn: &mut Redis,
        partition: &PartitionKeys,
        seen_sets: &SeenSets,
        records: &[Record],
        dead: &[Parked],
    ) -> Result<BatchRead, SinkError> {
        let all: Vec<&Record> = records.iter().collect();
        let users = parking::users(&all, dead);
        let ids: Vec<&[u8]> = (records.iter())
            .map(|r| &r.event.envelope.event_id.as_bytes()[..])
            .collect();
        let mut read = redis::pipe();
        let field = &partition.field;
        read.hget(&partition.positions, field)
            .hget(&partition.parking.epochs, field);
        if !users.is_empty() {
            read.cmd("HMGET").arg(&partition.parking.users).arg(&users);
            read.cmd("HMGET").arg(&partition.state).arg(&users);
        }
        if !ids.is_empty() {
            for set in &seen_sets.check {
                read.cmd("SMISMEMBER").arg(set).arg(&ids);
            }
        }
        let mut answers = (read.query_async::<Vec<redis::Value>>(conn).await?).into_iter();
        let mut next = || answers.next().unwrap_or(redis::Value::Nil);
        let stored: Option<i64> = redis::from_owned_redis_value(next())?;
        let epoch: Option<i64> = redis::from_owned_redis_value(next())?;
        let (parked_at, states): (Vec<Option<String>>, Vec<Option<String>>) = if users.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            (
                redis::from_owned_redis_value(next())?,
                redis::from_owned_redis_value(next())?,
            )
        };
        let mut seen = vec![false; ids.len()];
        if !ids.is_empty() {
            for _ in &seen_sets.check {
                let found: Vec<bool> = redis::from_owned_redis_value(next())?;
                for (seen, found) in seen.iter_mut().zip(found) {
                    *seen |= found;
                }
            }
        }
        Ok(BatchRead {
            stored: stored.unwrap_or(0),
            epoch: epoch.unwrap_or(0),
            parked_users: (users.iter().zip(&parked_at))
                .filter(|(_, partition)| partition.is_some())
                .map(|(user, _)| *user)
                .collect(),
            seen,
            states: users.into_iter().zip(states).collect(),
        })
    }

    /// Files seen ids under the days `today` gives instead of this machine's clock's: for tests
    /// that cross days.
    pub fn with_clock(mut self, today: fn() -> i64) -> Self {
        self.today = today;
        self
    }
}

impl<P: RedisProjection> Sink for RedisSink<P> {
    fn name(&self) -> &'static str {
        P::NAME
    }

    fn version(&self) -> u32 {
        self.version
    }

    /// A batch is one script, and Redis serves nobody else while it runs: larger batches would
    /// delay every read (measured: batches of 500 to 20,000 events rebuild equally fast, Redis
    /// being the bound either way).
    fn max_batch(&self) -> Option<usize> {
        Some(MAX_BATCH)
    }

    async fn migrate(&self) -> Result<(), SinkError> {
        Ok(())
    }

    async fn claim(&self, topic: &str, partitions: &[i32]) -> Result<Vec<Claim>, SinkError> {
        let claims = self.positions.claim(&self.redis, topic, partitions).await?;
        if claims.is_empty() && !partitions.is_empty() {
            tracing::info!(processor = %self.id(), "This version no longer serves; its partitions are not claimed.");
        }
        Ok(claims)
    }

    async fn stored_positions(&self, topic: &str) -> Result<Positions, SinkError> {
        let source = PositionSource::Redis {
            redis: self.redis.clone(),
            keys_base: self.keys.base().to_owned(),
            topic: topic.to_owned(),
            partitions: self.partitions,
        };
        Ok(source.read().await?)
    }

    async fn apply(
        &self,
        topic: &str,
        claim: Claim,
        records: &[Record],
        next_offset: i64,
    ) -> Result<Applied, SinkError> {
        self.apply_parking(topic, claim, records, &[], next_offset)
            .await
    }

    async fn apply_parking(
        &self,
        topic: &str,
        claim: Claim,
        records: &[Record],
        dead: &[Parked],
        next_offset: i64,
    ) -> Result<Applied, SinkError> {
        let mut conn = self.redis.clone();
        let partition = self.partition_keys(topic, claim.partition);
        let field = &partition.field;
        let day = (self.today)();
        let seen_sets = partition.seen.sets(field, day);

        let read = self
            .read_for(&mut conn, &partition, &seen_sets, records, dead)
            .await?;
        let (stored, epoch) = (read.stored, read.epoch);
        if stored < claim.next_offset {
            return Err(SinkError::Behind {
                stored,
                applied: claim.next_offset,
            });
        }

        // Drop what was applied before: below the watermark, or an id already seen; park what
        // waits for a parked user.
        let fresh: Vec<&Record> = (records.iter().zip(&read.seen))
            .filter(|(r, seen)| r.offset >= stored && !**seen)
            .map(|(r, _)| r)
            .collect();
        let dead: Vec<Parked> = (dead.iter())
            .filter(|d| d.offset >= stored)
            .cloned()
            .collect();
        let (to_apply, waiting) = parking::split(fresh, &read.parked_users, &dead);
        let parked = parking::to_park(&dead, waiting);
        let mut ids = HashSet::new();
        let to_apply: Vec<&Record> = (to_apply.into_iter())
            .filter(|record| ids.insert(record.event.envelope.event_id))
            .collect();

        // Fold from the stored state of the users whose events are applied.
        let applying: HashSet<i64> = to_apply.iter().map(|r| r.event.envelope.user_id).collect();
        let mut states: HashMap<i64, P::State> = HashMap::with_capacity(applying.len());
        for (user, json) in read.states {
            if !applying.contains(&user) {
                continue;
            }
            let state = match json {
                Some(json) => serde_json::from_str(&json).map_err(|e| {
                    SinkError::Transient(format!("unreadable state of user {user}: {e}"))
                })?,
                None => P::State::default(),
            };
            states.insert(user, state);
        }
        let before = states.clone();
        let mut writes = Vec::new();
        for record in &to_apply {
            let state = states
                .get_mut(&record.event.envelope.user_id)
                .expect("loaded above");
            writes.extend(self.projection.writes(state, record, &partition.keys)?);
        }
        outside_key_space(&partition.keys, &writes)?;

        let mut invocation = self.apply_script.prepare_invoke();
        invocation
            .key(&partition.positions)
            .key(&partition.generations)
            .key(&partition.state)
            .key(&partition.lease)
            .key(&partition.parking.epochs)
            .key(&partition.parking.users);
        for set in &seen_sets.check {
            invocation.key(set);
        }
        invocation
            .key(&seen_sets.stale)
            .arg(field)
            .arg(claim.generation)
            .arg(stored)
            .arg(next_offset.max(stored))
            .arg(seen_sets.expire_at)
            .arg(epoch)
            .arg(to_apply.len());
        for record in &to_apply {
            invocation.arg(&record.event.envelope.event_id.as_bytes()[..]);
        }
        invocation.arg(writes.len());
        for write in &writes {
            let (op, key, a, b) = encode(write);
            invocation.arg(op).arg(key).arg(a).arg(b);
        }
        let changed: Vec<(&i64, &P::State)> = states
            .iter()
            .filter(|(user, state)| before.get(user) != Some(*state))
            .collect();
        invocation.arg(changed.len());
        for (user, state) in changed {
            invocation
                .arg(user)
                .arg(serde_json::to_string(state).expect("state serialises"));
        }
        invocation.arg(parked.len());
        for p in &parked {
            invocation
                .arg(partition.parking.list(p.user_id))
                .arg(p.user_id)
                .arg(serde_json::to_string(p).expect("a parked event serialises"));
        }
        let verdict: String = invocation.invoke_async(&mut conn).await.map_err(|error| {
            if redis_script_rejects_data(&error) {
                SinkError::Rejected(std::sync::Arc::new(error))
            } else {
                SinkError::from(error)
            }
        })?;
        match verdict.as_str() {
            "OK" => Ok(Applied {
                events: to_apply.len(),
                parked: parked.len(),
            }),
            "FENCED" => Err(SinkError::Fenced),
            lost if let Some(stored) = lost.strip_prefix("CLAIM_LOST ") => {
                Err(SinkError::ClaimLost {
                    stored: stored.parse().unwrap_or(0),
                    claimed: claim.generation,
                })
            }
            "FROZEN" => Err(SinkError::Transient(
                "the version is frozen while a rebuilt version takes over; retrying".into(),
            )),
            other => Err(SinkError::Transient(format!(
                "watermark check failed ({other}); retrying the batch"
            ))),
        }
    }

    async fn parked(&self) -> Result<Vec<Parked>, SinkError> {
        redis_parking::list(self).await
    }

    async fn release(&self, topic: &str, user: i64, how: Release) -> Result<Released, SinkError> {
        self.release_user(topic, user, how).await
    }
}

/// The keys of one partition of a version, all in the partition's key space (one slot).
pub(super) struct PartitionKeys {
    /// The partition's field in its positions, generations and parking epochs hashes.
    pub(super) field: String,
    pub(super) positions: String,
    pub(super) generations: String,
    /// The freeze lease a switch sets.
    pub(super) lease: String,
    /// The hash of its users' states.
    pub(super) state: String,
    pub(super) parking: ParkingKeys,
    pub(super) seen: SeenIds,
    /// The key space its projection writes in.
    pub(super) keys: KeySpace,
}

/// What [`RedisSink::read_for`] read for a batch.
struct BatchRead {
    /// The partition's watermark.
    stored: i64,
    /// The partition's parking epoch.
    epoch: i64,
    /// The batch's users who are parked.
    parked_users: HashSet<i64>,
    /// Per record of the batch, whether its id was applied before.
    seen: Vec<bool>,
    /// Each of the batch's users with their stored state (JSON), if any.
    states: Vec<(i64, Option<String>)>,
}

/// Refuses writes outside the partition's key space `keys`: a projection's bug, not an event's
/// (every event would do it), which a Redis Cluster would refuse as the script ran (its keys in
/// another slot). The batch is retried, naming the key, until a build without the bug runs; a
/// single Redis refuses it the same, so the tests find it.
pub(super) fn outside_key_space(keys: &KeySpace, writes: &[RedisWrite]) -> Result<(), SinkError> {
    match writes.iter().find(|write| !keys.holds(write.key())) {
        None => Ok(()),
        Some(write) => Err(SinkError::Transient(format!(
            "the projection wrote {} outside its partition's key space {}: a bug in its `writes`",
            write.key(),
            keys.base()
        ))),
    }
}

pub(super) fn encode(write: &RedisWrite) -> (&'static str, &str, String, String) {
    match write {
        RedisWrite::ZIncrBy { key, member, by } => ("Z", key, by.to_string(), member.clone()),
        RedisWrite::LPush { key, value } => ("L", key, value.clone(), String::new()),
        RedisWrite::LTrim { key, start, stop } => ("T", key, start.to_string(), stop.to_string()),
        RedisWrite::ExpireAt { key, unix_secs } => ("E", key, unix_secs.to_string(), String::new()),
        RedisWrite::HSet { key, field, value } => ("H", key, field.clone(), value.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_outside_the_partitions_key_space_is_refused_and_named() {
        let keys = KeySpace::new("surge", "feed", 1).partition(3);
        let inside = RedisWrite::LPush {
            key: keys.key("user:42"),
            value: "{}".into(),
        };
        assert!(outside_key_space(&keys, std::slice::from_ref(&inside)).is_ok());
        for stray in [
            "surge:feed:v1:{p4}:user:42",
            "surge:feed:v1:user:42",
            "surge:feed:v1:{p3}x",
            "surge:global",
        ] {
            let write = RedisWrite::LTrim {
                key: stray.into(),
                start: 0,
                stop: 1,
            };
            match outside_key_space(&keys, &[inside.clone(), write]) {
                Err(SinkError::Transient(reason)) => {
                    assert!(reason.contains(stray), "{reason}");
                }
                other => panic!("{stray} was let through: {other:?}"),
            }
        }
    }
}
