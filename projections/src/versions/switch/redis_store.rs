//! The switch in Redis: the freeze is a lease key the serving version's apply script checks
//! (`freeze.lua`); the switch compares, fences, moves the `active` mark and ends the lease in one
//! script (`switch.lua`).

use std::time::Duration;

use redis::Script;
use surge_redis::Redis;

use super::{Behind, Switch};
use crate::naming;
use crate::positions::Positions;
use crate::versions::VersionsError;

/// How long a freeze lasts unless the switch ends it first (a crashed rebuild's freeze ends
/// by itself).
const LEASE: Duration = Duration::from_secs(10);

/// The freeze lease of `version`, which its apply script checks.
fn lease(deployment_prefix: &str, name: &str, version: u32) -> String {
    naming::freeze_lease_key(&naming::keys_base(deployment_prefix, name, version))
}

pub(super) async fn freeze(
    redis: &Redis,
    prefix: &str,
    name: &str,
    topic: &str,
    from: u32,
    to: u32,
) -> Result<Positions, VersionsError> {
    let old = naming::keys_base(prefix, name, from);
    let mut conn = redis.clone();
    let reply: Vec<redis::Value> = Script::new(include_str!("freeze.lua"))
        .key(naming::positions_key(&old))
        .key(naming::versions_key(prefix, name))
        .key(lease(prefix, name, from))
        .arg(naming::position_field_prefix(topic))
        .arg(from)
        .arg(to)
        .arg(LEASE.as_millis() as u64)
        .invoke_async(&mut conn)
        .await?;
    match reply.first().map(text).as_deref() {
        Some("FROZEN") => Ok(reply[1..]
            .chunks_exact(2)
            .filter_map(|pair| {
                let partition = naming::partition_of(&text(&pair[0]), topic)?;
                Some((partition, text(&pair[1]).parse().ok()?))
            })
            .collect()),
        Some("STATE") => Err(state_error(from, to, &reply)),
        _ => Err(unexpected(&reply)),
    }
}

fn text(value: &redis::Value) -> String {
    redis::from_redis_value::<String>(value).unwrap_or_default()
}

fn state_error(from: u32, to: u32, reply: &[redis::Value]) -> VersionsError {
    VersionsError::Conflict(format!(
        "cannot switch from v{from} to v{to}: {}",
        reply.get(1).map(text).unwrap_or_default()
    ))
}

fn unexpected(reply: &[redis::Value]) -> VersionsError {
    VersionsError::Conflict(format!(
        "unexpected answer from a version script: {reply:?}"
    ))
}

pub(super) async fn switch(
    redis: &Redis,
    prefix: &str,
    name: &str,
    topic: &str,
    from: u32,
    to: u32,
) -> Result<Switch, VersionsError> {
    let (old, new) = (
        naming::keys_base(prefix, name, from),
        naming::keys_base(prefix, name, to),
    );
    let mut conn = redis.clone();
    let reply: Vec<redis::Value> = Script::new(include_str!("switch.lua"))
        .key(naming::positions_key(&old))
        .key(naming::generations_key(&old))
        .key(naming::positions_key(&new))
        .key(naming::versions_key(prefix, name))
        .key(lease(prefix, name, from))
        .arg(naming::position_field_prefix(topic))
        .arg(from)
        .arg(to)
        .arg(crate::versions::now_ms())
        .invoke_async(&mut conn)
        .await?;
    match reply.first().map(text).as_deref() {
        Some("OK") => Ok(Switch::Done),
        Some("STATE") => Err(state_error(from, to, &reply)),
        Some("BEHIND") => {
            let behind = reply[1..]
                .chunks_exact(3)
                .filter_map(|chunk| {
                    let partition = naming::partition_of(&text(&chunk[0]), topic)?;
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
pub(super) async fn release(
    redis: &Redis,
    prefix: &str,
    name: &str,
    from: u32,
) -> Result<(), VersionsError> {
    let mut conn = redis.clone();
    let _: () = redis::cmd("DEL")
        .arg(lease(prefix, name, from))
        .query_async(&mut conn)
        .await?;
    Ok(())
}
