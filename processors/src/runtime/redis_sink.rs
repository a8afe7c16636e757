//! Redis sink.
//!
//! Guarantee: exactly-once effect. The batch is folded in Rust from the users' stored state, then
//! one Lua script checks the partition's fencing generation, that the watermark is where the fold
//! started, and that no event id was seen before; only then does it write the effects, the new
//! states, the seen ids and the new watermark. A failed check writes nothing and the batch is
//! retried (or dropped, when fenced). The same script parks the batch's dead letters and the
//! events of parked users (see `parking`, `redis_parking`).
//!
//! The position bookkeeping's keys and the claim script are `surge_projections::positions`
//! ([`RedisPositions`]). `lua/apply.lua` stays here: it checks and moves the position in the
//! same script as the projection's writes, so it cannot be split off; it takes its keys from
//! `RedisPositions`.

use std::collections::{HashMap, HashSet};

use redis::Script;
use redis::aio::ConnectionManager;

use surge_projections::naming::position_field;
use surge_projections::positions::RedisPositions;

use super::parking::{Parked, Release, Released};
use super::redis_parking::{self, ParkingKeys};
use super::rejections::redis_script_rejects_data;
use super::sink::{Applied, Claim, Sink, SinkError};
use super::{KeySpace, Record, RedisProjection, RedisWrite};

/// The most events one apply script holds (see [`Sink::max_batch`]).
const MAX_BATCH: usize = 1000;

/// Event ids are remembered this long (duplicates arrive within the 24 h idempotency window).
pub(super) const SEEN_TTL_SECS: u64 = 48 * 3600;

pub struct RedisSink<P> {
    pub(super) projection: P,
    pub(super) redis: ConnectionManager,
    version: u32,
    pub(super) keys: KeySpace,
    pub(super) parking: ParkingKeys,
    /// The version's positions, generations and freeze lease, and its claims.
    pub(super) positions: RedisPositions,
    apply_script: Script,
    pub(super) release_script: Script,
}

impl<P: RedisProjection> RedisSink<P> {
    /// A sink writing `version` of `projection` under `deployment_prefix`.
    pub fn new(
        projection: P,
        redis: ConnectionManager,
        deployment_prefix: &str,
        version: u32,
    ) -> Self {
        let keys = KeySpace::new(deployment_prefix, P::NAME, version);
        let writes = include_str!("lua/writes.lua");
        RedisSink {
            projection,
            redis,
            version,
            parking: ParkingKeys::new(&keys),
            keys,
            positions: RedisPositions::new(deployment_prefix, P::NAME, version),
            apply_script: Script::new(&[writes, include_str!("lua/apply.lua")].concat()),
            release_script: Script::new(&[writes, include_str!("lua/release.lua")].concat()),
        }
    }

    pub fn keys(&self) -> &KeySpace {
        &self.keys
    }

    pub(super) fn seen_key(&self, record: &Record) -> String {
        self.keys
            .key(&format!("seen:{}", record.event.envelope.event_id))
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
        let field = position_field(topic, claim.partition);
        let stored: Option<i64> = redis::cmd("HGET")
            .arg(self.positions.positions_key())
            .arg(&field)
            .query_async(&mut conn)
            .await?;
        let stored = stored.unwrap_or(0);

        // Drop what was applied before: below the watermark, or an id already seen; park what
        // waits for a parked user.
        let fresh: Vec<&Record> = records.iter().filter(|r| r.offset >= stored).collect();
        let dead: Vec<Parked> = (dead.iter())
            .filter(|d| d.offset >= stored)
            .cloned()
            .collect();
        let (epoch, fresh, parked) =
            redis_parking::split(&mut conn, &self.parking, &field, fresh, &dead).await?;
        let mut exists = redis::pipe();
        for record in &fresh {
            exists.exists(self.seen_key(record));
        }
        let seen: Vec<bool> = if fresh.is_empty() {
            Vec::new()
        } else {
            exists.query_async(&mut conn).await?
        };
        let mut ids = HashSet::new();
        let to_apply: Vec<&Record> = fresh
            .into_iter()
            .zip(seen)
            .filter(|(record, seen)| !seen && ids.insert(record.event.envelope.event_id))
            .map(|(record, _)| record)
            .collect();

        // Fold from the users' stored state.
        let users: Vec<i64> = to_apply
            .iter()
            .map(|r| r.event.envelope.user_id)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let mut states: HashMap<i64, P::State> = HashMap::new();
        if !users.is_empty() {
            let raw: Vec<Option<String>> = redis::cmd("HMGET")
                .arg(self.keys.key("state"))
                .arg(&users)
                .query_async(&mut conn)
                .await?;
            for (user, json) in users.iter().zip(raw) {
                let state = match json {
                    Some(json) => serde_json::from_str(&json).map_err(|e| {
                        SinkError::Transient(format!("unreadable state of user {user}: {e}"))
                    })?,
                    None => P::State::default(),
                };
                states.insert(*user, state);
            }
        }
        let before = states.clone();
        let mut writes = Vec::new();
        for record in &to_apply {
            let state = states
                .get_mut(&record.event.envelope.user_id)
                .expect("loaded above");
            writes.extend(self.projection.writes(state, record, &self.keys)?);
        }

        let mut invocation = self.apply_script.prepare_invoke();
        invocation
            .key(self.positions.positions_key())
            .key(self.positions.generations_key())
            .key(self.keys.key("state"))
            .key(self.positions.freeze_lease_key())
            .key(&self.parking.epochs)
            .key(&self.parking.users)
            .arg(&field)
            .arg(claim.generation)
            .arg(stored)
            .arg(next_offset.max(stored))
            .arg(SEEN_TTL_SECS)
            .arg(epoch)
            .arg(to_apply.len());
        for record in &to_apply {
            invocation.arg(self.seen_key(record));
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
                .arg(self.parking.list(p.user_id))
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
            "FROZEN" => Err(SinkError::Transient(
                "the version is frozen while a rebuilt version takes over; retrying".into(),
            )),
            other => Err(SinkError::Transient(format!(
                "watermark check failed ({other}); retrying the batch"
            ))),
        }
    }

    async fn parked(&self) -> Result<Vec<Parked>, SinkError> {
        redis_parking::list(&mut self.redis.clone(), &self.parking).await
    }

    async fn release(&self, _topic: &str, user: i64, how: Release) -> Result<Released, SinkError> {
        self.release_user(user, how).await
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
