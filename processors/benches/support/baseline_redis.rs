//! Redis baselines: the commands a projection's fold issues (leaderboard: ZINCRBY x3 with
//! EXPIREAT on the day and week sets, HSET of a changed name; feed: LPUSH + LTRIM), computed
//! with the projection's own `writes` from the same records and per-user state, sent as plain
//! pipelines (no script, no transaction) of `batch_max` events each, per partition in offset
//! order, under a key space of their own. Only the round trips are timed.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use surge_processors::runtime::{KeySpace, Record, RedisProjection, RedisWrite};
use surge_projections::ProjectionId;

use super::Baseline;

pub(crate) async fn pipelined<P: RedisProjection>(
    projection: &P,
    redis: &surge_redis::Redis,
    deployment_prefix: &str,
    partitions: &[Vec<Record>],
    batch_max: usize,
) -> anyhow::Result<Baseline> {
    let keys = KeySpace::new(deployment_prefix, P::NAME, 1);
    let mut redis = redis.clone();
    let mut states: HashMap<i64, P::State> = HashMap::new();
    let (mut events, mut commands, mut batches) = (0u64, 0u64, 0u64);
    let mut time = Duration::ZERO;
    for records in partitions {
        for chunk in records.chunks(batch_max) {
            let mut pipe = redis::pipe();
            for record in chunk {
                let state = states.entry(record.event.envelope.user_id).or_default();
                let writes = projection
                    .writes(state, record, &keys.partition(record.partition))
                    .context("The fold rejected an event")?;
                commands += writes.len() as u64;
                for write in writes {
                    match write {
                        RedisWrite::ZIncrBy { key, member, by } => pipe.zincr(key, member, by),
                        RedisWrite::LPush { key, value } => pipe.lpush(key, value),
                        RedisWrite::LTrim { key, start, stop } => {
                            pipe.ltrim(key, start as isize, stop as isize)
                        }
                        RedisWrite::ExpireAt { key, unix_secs } => pipe.expire_at(key, unix_secs),
                        RedisWrite::HSet { key, field, value } => pipe.hset(key, field, value),
                    }
                    .ignore();
                }
            }
            let started = Instant::now();
            pipe.query_async::<()>(&mut redis)
                .await
                .context("Redis refused a pipeline")?;
            time += started.elapsed();
            events += chunk.len() as u64;
            batches += 1;
        }
    }
    let what = match P::ID {
        ProjectionId::Leaderboard => "pipelined ZINCRBY x3 + EXPIREAT x2 (+ HSET name) per event",
        ProjectionId::Feed => "pipelined LPUSH + LTRIM per event",
        _ => "pipelined fold writes",
    };
    Ok(Baseline {
        what: what.to_owned(),
        events,
        writes: commands,
        batches,
        secs: time.as_secs_f64(),
    })
}
