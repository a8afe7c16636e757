//! The switch in Redis: the freeze is a lease key the serving version's apply script checks
//! (`freeze.lua`); the switch compares, fences, moves the `active` mark and ends the lease in one
//! script (`switch.lua`).

use std::collections::HashMap;
use std::time::Duration;

use redis::Script;
use surge_projections::positions::partition_of;
use surge_projections::versions::{keys_base, registry_key};

use super::{Behind, Hold, Switch};
use crate::projectors::Stores;
use crate::runtime::{FROZEN_SUFFIX, SinkError};

/// How long a freeze lasts unless the switch ends it first (a crashed rebuild's freeze ends
/// by itself).
const LEASE: Duration = Duration::from_secs(10);

/// The freeze lease of `version`, which its apply script checks.
fn lease(stores: &Stores, name: &str, version: u32) -> String {
    format!(
        "{}:{FROZEN_SUFFIX}",
        keys_base(&stores.redis_prefix, name, version)
    )
}

pub(super) async fn freeze(
    stores: &Stores,
    name: &str,
    topic: &str,
    from: u32,
    to: u32,
) -> Result<(Hold, HashMap<i32, i64>), SinkError> {
    let prefix = &stores.redis_prefix;
    let old = keys_base(prefix, name, from);
    let mut conn = stores.redis.clone();
    let reply: Vec<redis::Value> = Script::new(include_str!("../freeze.lua"))
        .key(format!("{old}:positions"))
        .key(registry_key(prefix, name))
        .key(lease(stores, name, from))
        .arg(format!("{topic}:"))
        .arg(from)
        .arg(to)
        .arg(LEASE.as_millis() as u64)
        .invoke_async(&mut conn)
        .await?;
    match reply.first().map(text).as_deref() {
        Some("FROZEN") => {
            let serving = reply[1..]
                .chunks_exact(2)
                .filter_map(|pair| {
                    let partition = partition_of(&text(&pair[0]), topic)?;
                    Some((partition, text(&pair[1]).parse().ok()?))
                })
                .collect();
            Ok((Hold::Redis, serving))
        }
        Some("STATE") => Err(state_error(from, to, &reply)),
        _ => Err(unexpected(&reply)),
    }
}

fn text(value: &redis::Value) -> String {
    redis::from_redis_value::<String>(value).unwrap_or_default()
}

fn state_error(from: u32, to: u32, reply: &[redis::Value]) -> SinkError {
    SinkError::Transient(format!(
        "cannot switch from v{from} to v{to}: {}",
        reply.get(1).map(text).unwrap_or_default()
    ))
}

fn unexpected(reply: &[redis::Value]) -> SinkError {
    SinkError::Transient(format!(
        "unexpected answer from a version script: {reply:?}"
    ))
}

pub(super) async fn switch(
    stores: &Stores,
    name: &str,
    topic: &str,
    from: u32,
    to: u32,
) -> Result<Switch, SinkError> {
    let prefix = &stores.redis_prefix;
    let (old, new) = (keys_base(prefix, name, from), keys_base(prefix, name, to));
    let mut conn = stores.redis.clone();
    let reply: Vec<redis::Value> = Script::new(include_str!("../switch.lua"))
        .key(format!("{old}:positions"))
        .key(format!("{old}:generations"))
        .key(format!("{new}:positions"))
        .key(registry_key(prefix, name))
        .key(lease(stores, name, from))
        .arg(format!("{topic}:"))
        .arg(from)
        .arg(to)
        .arg(surge_projections::versions::now_ms())
        .invoke_async(&mut conn)
        .await?;
    match reply.first().map(text).as_deref() {
        Some("OK") => Ok(Switch::Done),
        Some("STATE") => Err(state_error(from, to, &reply)),
        Some("BEHIND") => {
            let behind = reply[1..]
                .chunks_exact(3)
                .filter_map(|chunk| {
                    let partition = partition_of(&text(&chunk[0]), topic)?;
                    Some(Behind {
                        partition,
                        serving: redis::from_redis_value(&chunk[1]).ok()?,
                        rebuilt: redis::from_redis_value(&chunk[2]).ok()?,
                    })
                })
                .collect();
            Ok(Switch::Behind(behind))
        }
        _ => Err(unexpected(&reply)),
    }
}

/// Ends the freeze of `from` without switching.
pub(super) async fn release(stores: &Stores, name: &str, from: u32) -> Result<(), SinkError> {
    let mut conn = stores.redis.clone();
    let _: () = redis::cmd("DEL")
        .arg(lease(stores, name, from))
        .query_async(&mut conn)
        .await?;
    Ok(())
}
