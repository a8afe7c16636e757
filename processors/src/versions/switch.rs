//! The switch: version `to` becomes the one that serves in place of `from`, in one atomic step
//! of the projection's store, and only if `to` has applied at least everything `from` has on
//! every partition. The same step fences `from`'s processors (their generations move), so from
//! that instant nothing more is applied to `from`, and nothing `from` applied is missing in
//! `to`: no event is handled live by both versions, and none by neither. That is what lets a
//! rebuild suppress derived events: the serving version emitted everything up to the switch.
//!
//! A serving version under traffic never stands still, so the switch first *freezes* it
//! ([`freeze`]): its batches wait while the rebuild applies the last few events up to the frozen
//! positions, then [`Frozen::switch`] checks, fences and moves the `active` mark. Reads go on
//! from the frozen version meanwhile; only its writes pause, for as long as that catch-up takes.
//! - PostgreSQL: one transaction locks `from`'s position rows (its processors' next batch waits
//!   on the lock), and later compares, bumps `from`'s generations, moves the `active` mark in
//!   `projection_versions` and commits. A crash rolls it back: the freeze ends with the session.
//! - Redis: `freeze.lua` sets a lease key its processors' apply script checks (they retry), and
//!   `switch.lua` does the check, fencing and mark in one script and ends the lease. A crash
//!   leaves the lease to expire.

use std::collections::HashMap;

use std::time::Duration;

use redis::Script;
use sqlx::{Postgres, Transaction};
use surge_projections::versions::{VersionState, keys_base, registry_key};

use crate::projectors::{Entry, StoreKind, Stores};
use crate::runtime::{FROZEN_SUFFIX, SinkError};

/// A partition where `to` has not yet applied what `from` has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Behind {
    pub partition: i32,
    /// `from`'s next offset there.
    pub serving: i64,
    /// `to`'s next offset there.
    pub rebuilt: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Switch {
    /// `to` is active; `from` is retired and fenced.
    Done,
    /// Nothing changed: `to` must first catch up on these partitions.
    Behind(Vec<Behind>),
}

/// How long a Redis freeze lasts unless the switch ends it first.
const LEASE: Duration = Duration::from_secs(10);

/// A serving version frozen for a switch, with the positions it is frozen at.
pub struct Frozen {
    hold: Hold,
    serving: HashMap<i32, i64>,
    name: &'static str,
    topic: String,
    from: u32,
    to: u32,
}

enum Hold {
    /// The transaction holding `from`'s position rows.
    Postgres(Transaction<'static, Postgres>),
    /// The lease key set by `freeze.lua`.
    Redis,
}

/// Freezes `from` (which must be active, with `to` being built) for a switch to `to`.
pub async fn freeze(
    stores: &Stores,
    entry: &Entry,
    topic: &str,
    from: u32,
    to: u32,
) -> Result<Frozen, SinkError> {
    let (hold, serving) = match entry.store {
        StoreKind::Postgres => freeze_postgres(stores, entry.name, topic, from, to).await?,
        StoreKind::Redis => freeze_redis(stores, entry.name, topic, from, to).await?,
    };
    Ok(Frozen {
        hold,
        serving,
        name: entry.name,
        topic: topic.to_owned(),
        from,
        to,
    })
}

impl Frozen {
    /// Where the serving version stands, per partition, until the switch ends the freeze.
    pub fn serving(&self) -> &HashMap<i32, i64> {
        &self.serving
    }

    /// Makes `to` active if it has caught up with the frozen positions, fencing `from`; either
    /// way the freeze ends.
    pub async fn switch(self, stores: &Stores) -> Result<Switch, SinkError> {
        match self.hold {
            Hold::Postgres(tx) => {
                switch_postgres(
                    tx,
                    &self.serving,
                    self.name,
                    &self.topic,
                    self.from,
                    self.to,
                )
                .await
            }
            Hold::Redis => switch_redis(stores, self.name, &self.topic, self.from, self.to).await,
        }
    }

    /// Ends the freeze without switching.
    pub async fn release(self, stores: &Stores) -> Result<(), SinkError> {
        match self.hold {
            Hold::Postgres(tx) => Ok(tx.rollback().await?),
            Hold::Redis => {
                let lease = format!(
                    "{}:{FROZEN_SUFFIX}",
                    keys_base(&stores.redis_prefix, self.name, self.from)
                );
                let mut conn = stores.redis.clone();
                let _: () = redis::cmd("DEL").arg(lease).query_async(&mut conn).await?;
                Ok(())
            }
        }
    }
}

/// The partitions where `rebuilt` is behind `serving` (a partition absent is at offset 0).
fn behind(serving: &HashMap<i32, i64>, rebuilt: &HashMap<i32, i64>) -> Vec<Behind> {
    let mut behind: Vec<Behind> = serving
        .iter()
        .filter_map(|(&partition, &serving)| {
            let rebuilt = rebuilt.get(&partition).copied().unwrap_or(0);
            (rebuilt < serving).then_some(Behind {
                partition,
                serving,
                rebuilt,
            })
        })
        .collect();
    behind.sort_by_key(|b| b.partition);
    behind
}

async fn freeze_postgres(
    stores: &Stores,
    name: &str,
    topic: &str,
    from: u32,
    to: u32,
) -> Result<(Hold, HashMap<i32, i64>), SinkError> {
    let mut tx = stores.pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('surge-versions:' || $1))")
        .bind(name)
        .execute(&mut *tx)
        .await?;
    let states: HashMap<i32, String> = sqlx::query_as(
        "SELECT version, state FROM projection_versions WHERE projection = $1 AND version IN ($2, $3)",
    )
    .bind(name)
    .bind(from as i32)
    .bind(to as i32)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect();
    check_states(
        states.get(&(from as i32)).map(String::as_str),
        states.get(&(to as i32)).map(String::as_str),
        from,
        to,
    )?;
    // Locking the serving version's rows waits for its batch in flight, and holds off the next.
    let serving = positions(
        &mut tx,
        &format!("{POSITIONS} FOR UPDATE"),
        name,
        from,
        topic,
    )
    .await?;
    Ok((Hold::Postgres(tx), serving))
}

const POSITIONS: &str = "SELECT partition, next_offset FROM projection_positions \
                         WHERE projection = $1 AND version = $2 AND topic = $3";

async fn positions(
    tx: &mut sqlx::PgConnection,
    sql: &str,
    name: &str,
    version: u32,
    topic: &str,
) -> Result<HashMap<i32, i64>, SinkError> {
    Ok(sqlx::query_as::<_, (i32, i64)>(sql)
        .bind(name)
        .bind(version as i32)
        .bind(topic)
        .fetch_all(tx)
        .await?
        .into_iter()
        .collect())
}

async fn switch_postgres(
    mut tx: Transaction<'static, Postgres>,
    serving: &HashMap<i32, i64>,
    name: &str,
    topic: &str,
    from: u32,
    to: u32,
) -> Result<Switch, SinkError> {
    let rebuilt = positions(&mut tx, POSITIONS, name, to, topic).await?;
    let behind = behind(serving, &rebuilt);
    if !behind.is_empty() {
        tx.rollback().await?;
        return Ok(Switch::Behind(behind));
    }
    sqlx::query(
        "UPDATE projection_positions SET generation = generation + 1, updated_at = now() \
         WHERE projection = $1 AND version = $2 AND topic = $3",
    )
    .bind(name)
    .bind(from as i32)
    .bind(topic)
    .execute(&mut *tx)
    .await?;
    // Two statements: the one-active index is checked row by row.
    sqlx::query(
        "UPDATE projection_versions SET state = 'retired' WHERE projection = $1 AND version = $2",
    )
    .bind(name)
    .bind(from as i32)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE projection_versions SET state = 'active', switched_at = now() \
         WHERE projection = $1 AND version = $2",
    )
    .bind(name)
    .bind(to as i32)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Switch::Done)
}

/// Only an active `from` gives way, and only to a `to` being built: anything else means another
/// process switched or dropped versions meanwhile.
fn check_states(
    from_state: Option<&str>,
    to_state: Option<&str>,
    from: u32,
    to: u32,
) -> Result<(), SinkError> {
    let active = VersionState::Active.as_str();
    let building = VersionState::Building.as_str();
    if from_state != Some(active) || to_state != Some(building) {
        return Err(SinkError::Transient(format!(
            "cannot switch from v{from} ({}) to v{to} ({}): expected active and building",
            from_state.unwrap_or("absent"),
            to_state.unwrap_or("absent")
        )));
    }
    Ok(())
}

async fn freeze_redis(
    stores: &Stores,
    name: &str,
    topic: &str,
    from: u32,
    to: u32,
) -> Result<(Hold, HashMap<i32, i64>), SinkError> {
    let prefix = &stores.redis_prefix;
    let old = keys_base(prefix, name, from);
    let mut conn = stores.redis.clone();
    let reply: Vec<redis::Value> = Script::new(include_str!("freeze.lua"))
        .key(format!("{old}:positions"))
        .key(registry_key(prefix, name))
        .key(format!("{old}:{FROZEN_SUFFIX}"))
        .arg(format!("{topic}:"))
        .arg(from)
        .arg(to)
        .arg(LEASE.as_millis() as u64)
        .invoke_async(&mut conn)
        .await?;
    match reply.first().map(text).as_deref() {
        Some("FROZEN") => {
            let field_prefix = format!("{topic}:");
            let serving = reply[1..]
                .chunks_exact(2)
                .filter_map(|pair| {
                    let partition = text(&pair[0]).strip_prefix(&field_prefix)?.parse().ok()?;
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

async fn switch_redis(
    stores: &Stores,
    name: &str,
    topic: &str,
    from: u32,
    to: u32,
) -> Result<Switch, SinkError> {
    let prefix = &stores.redis_prefix;
    let (old, new) = (keys_base(prefix, name, from), keys_base(prefix, name, to));
    let mut conn = stores.redis.clone();
    let reply: Vec<redis::Value> = Script::new(include_str!("switch.lua"))
        .key(format!("{old}:positions"))
        .key(format!("{old}:generations"))
        .key(format!("{new}:positions"))
        .key(registry_key(prefix, name))
        .key(format!("{old}:{FROZEN_SUFFIX}"))
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
            let field_prefix = format!("{topic}:");
            let behind = reply[1..]
                .chunks_exact(3)
                .filter_map(|chunk| {
                    let partition = text(&chunk[0]).strip_prefix(&field_prefix)?.parse().ok()?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rebuilt_version_is_behind_where_it_has_applied_less_than_the_serving_one() {
        let serving = HashMap::from([(0, 10), (1, 5), (2, 7)]);
        let rebuilt = HashMap::from([(0, 10), (1, 6)]);
        assert_eq!(
            behind(&serving, &rebuilt),
            vec![Behind {
                partition: 2,
                serving: 7,
                rebuilt: 0
            }]
        );
        assert!(behind(&HashMap::new(), &rebuilt).is_empty());
    }

    #[test]
    fn only_an_active_version_gives_way_to_one_being_built() {
        assert!(check_states(Some("active"), Some("building"), 1, 2).is_ok());
        let error = check_states(Some("retired"), Some("building"), 1, 2).unwrap_err();
        assert!(error.to_string().contains("v1 (retired)"), "{error}");
        assert!(check_states(Some("active"), None, 1, 2).is_err());
    }
}
