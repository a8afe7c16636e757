//! Redis side of per-user parking (guarantees in `parking`): in each partition's key space
//! (`<base>`, see `KeySpace::partition`), the hash `<base>:parked` (parked user -> their
//! partition's field), a list `<base>:parked:<user>` of each user's parked events (JSON, in
//! order) and the hash `<base>:parked_epochs`, the partition's counter that every change of who
//! is parked bumps. The apply script parks and moves the
//! watermark only if the epoch is the one its batch was split with; a release (`release.lua`)
//! changes a user's queue only if no batch or release of the partition ran since it read it.

use surge_redis::Redis;
use uuid::Uuid;

use super::parking::{self, Parked, Release, Released};
use super::redis_sink::{PartitionKeys, RedisSink, encode, outside_key_space};
use super::rejections::redis_script_rejects_data;
use super::sink::SinkError;
use super::{KeySpace, RedisProjection, RedisWrite};

/// The parking keys of one partition of a version.
pub(crate) struct ParkingKeys {
    pub(crate) users: String,
    pub(crate) epochs: String,
    lists: String,
}

impl ParkingKeys {
    pub(crate) fn new(keys: &KeySpace) -> Self {
        ParkingKeys {
            users: keys.key("parked"),
            epochs: keys.key("parked_epochs"),
            lists: keys.key("parked:"),
        }
    }

    /// The list of `user`'s parked events.
    pub(crate) fn list(&self, user: i64) -> String {
        format!("{}{user}", self.lists)
    }
}

/// Every parked event of the version, each user's in order, from every partition.
pub(super) async fn list<P: RedisProjection>(
    sink: &RedisSink<P>,
) -> Result<Vec<Parked>, SinkError> {
    let mut conn = sink.redis.clone();
    let mut all = Vec::new();
    for partition in 0..sink.partitions {
        let keys = ParkingKeys::new(&sink.keys.partition(partition));
        let users: Vec<i64> = redis::cmd("HKEYS")
            .arg(&keys.users)
            .query_async(&mut conn)
            .await?;
        for user in users {
            let entries: Vec<String> = redis::cmd("LRANGE")
                .arg(keys.list(user))
                .arg(0)
                .arg(-1)
                .query_async(&mut conn)
                .await?;
            for entry in entries {
                all.push(read(&entry)?);
            }
        }
    }
    all.sort_by_key(|p| (p.user_id, p.partition, p.offset));
    Ok(all)
}

/// The partition whose key space parks `user`, if any: a user's events are all on one.
async fn parked_in<P: RedisProjection>(
    sink: &RedisSink<P>,
    user: i64,
) -> Result<Option<i32>, SinkError> {
    let mut conn = sink.redis.clone();
    for partition in 0..sink.partitions {
        let keys = ParkingKeys::new(&sink.keys.partition(partition));
        let parked: bool = redis::cmd("HEXISTS")
            .arg(&keys.users)
            .arg(user)
            .query_async(&mut conn)
            .await?;
        if parked {
            return Ok(Some(partition));
        }
    }
    Ok(None)
}

fn read(entry: &str) -> Result<Parked, SinkError> {
    serde_json::from_str(entry)
        .map_err(|e| SinkError::Transient(format!("unreadable parked event: {e}")))
}

/// One step of a release, as `release.lua` takes it.
enum Step {
    Apply {
        id: Uuid,
        writes: Vec<RedisWrite>,
        state: Option<String>,
    },
    Drop,
    /// Keep the head first, with this reason.
    Keep(Parked),
}

impl<P: RedisProjection> RedisSink<P> {
    /// Releases `user`'s parked events, one script per event (see `parking`).
    pub(super) async fn release_user(
        &self,
        topic: &str,
        user: i64,
        how: Release,
    ) -> Result<Released, SinkError> {
        let mut released = Released::default();
        let Some(partition) = parked_in(self, user).await? else {
            return Ok(released);
        };
        let keys = self.partition_keys(topic, partition);
        let mut conn = self.redis.clone();
        let list = keys.parking.list(user);
        let mut skip = how == Release::Skip;
        loop {
            // The user's partition field (`<topic>:<partition>`), written when they were parked.
            let field: Option<String> = redis::cmd("HGET")
                .arg(&keys.parking.users)
                .arg(user)
                .query_async(&mut conn)
                .await?;
            let Some(field) = field else { break };
            let (epoch, head, count): (Option<i64>, Option<String>, usize) = redis::pipe()
                .hget(&keys.parking.epochs, &field)
                .lindex(&list, 0)
                .llen(&list)
                .query_async(&mut conn)
                .await?;
            let Some(head) = head else { break };
            let head = read(&head)?;
            let epoch = epoch.unwrap_or(0);
            let step = if skip {
                Step::Drop
            } else {
                self.step(&mut conn, &keys, &head).await?
            };
            let run = (&keys, list.as_str(), field.as_str());
            let verdict = match self.run(&mut conn, run, epoch, user, &step).await {
                Err(error) if redis_script_rejects_data(&error) => {
                    // Refused by Redis itself: the head stays first, with the reason.
                    let reason = format!("the store rejected the event: {error}");
                    let keep = Step::Keep(with_reason(&head, reason));
                    self.run(&mut conn, run, epoch, user, &keep).await?;
                    keep
                }
                Err(error) => return Err(error.into()),
                Ok(verdict) if verdict == "OK" => step,
                Ok(verdict) if verdict == "MOVED" => continue, // read again
                Ok(other) => {
                    return Err(SinkError::Transient(format!(
                        "releasing a parked event of user {user} answered {other}"
                    )));
                }
            };
            match verdict {
                Step::Apply { .. } => released.applied += 1,
                Step::Drop => {
                    released.skipped += 1;
                    skip = false;
                }
                Step::Keep(again) => {
                    released.still_parked = count;
                    released.rejected = again.reason;
                    break;
                }
            }
        }
        Ok(released)
    }

    /// What applying `head` takes: its writes from the user's stored state, or, when the
    /// projection rejects it again, keeping it with the new reason.
    async fn step(
        &self,
        conn: &mut Redis,
        keys: &PartitionKeys,
        head: &Parked,
    ) -> Result<Step, SinkError> {
        let record = match head.record() {
            Ok(record) => record,
            Err(error) => {
                let reason = format!("this build cannot read the parked event: {error}");
                return Ok(Step::Keep(with_reason(head, reason)));
            }
        };
        let stored: Option<String> = redis::cmd("HGET")
            .arg(&keys.state)
            .arg(head.user_id)
            .query_async(conn)
            .await?;
        let before: P::State = match &stored {
            Some(json) => serde_json::from_str(json).map_err(|e| {
                SinkError::Transient(format!("unreadable state of user {}: {e}", head.user_id))
            })?,
            None => P::State::default(),
        };
        let mut state = before.clone();
        match self.projection.writes(&mut state, &record, &keys.keys) {
            Ok(writes) => {
                outside_key_space(&keys.keys, &writes)?;
                Ok(Step::Apply {
                    id: record.event.envelope.event_id,
                    writes,
                    state: (state != before)
                        .then(|| serde_json::to_string(&state).expect("state serialises")),
                })
            }
            Err(error) => {
                let reason = parking::rejected_again(error.into())?;
                Ok(Step::Keep(with_reason(head, reason)))
            }
        }
    }

    /// Runs `release.lua` for one step, on the user's partition `keys`, `list` and `field`.
    async fn run(
        &self,
        conn: &mut Redis,
        (keys, list, field): (&PartitionKeys, &str, &str),
        epoch: i64,
        user: i64,
        step: &Step,
    ) -> Result<String, redis::RedisError> {
        let mut invocation = self.release_script.prepare_invoke();
        invocation
            .key(&keys.parking.users)
            .key(list)
            .key(&keys.parking.epochs)
            .key(&keys.state)
            .key(&keys.lease);
        let seen = keys.seen.sets(field, (self.today)());
        for set in &seen.check {
            invocation.key(set);
        }
        invocation.arg(field).arg(epoch).arg(user);
        match step {
            Step::Apply { id, writes, state } => {
                invocation
                    .arg("apply")
                    .arg(&id.as_bytes()[..])
                    .arg(seen.expire_at)
                    .arg("");
                invocation.arg(writes.len());
                for write in writes {
                    let (op, key, a, b) = encode(write);
                    invocation.arg(op).arg(key).arg(a).arg(b);
                }
                invocation.arg(usize::from(state.is_some()));
                if let Some(state) = state {
                    invocation.arg(user).arg(state);
                }
            }
            Step::Drop => {
                invocation.arg("drop").arg("").arg(seen.expire_at).arg("");
            }
            Step::Keep(head) => {
                let json = serde_json::to_string(head).expect("a parked event serialises");
                invocation
                    .arg("reason")
                    .arg("")
                    .arg(seen.expire_at)
                    .arg(json);
            }
        }
        invocation.invoke_async(conn).await
    }
}

fn with_reason(head: &Parked, reason: String) -> Parked {
    Parked {
        reason: Some(reason),
        ..head.clone()
    }
}
