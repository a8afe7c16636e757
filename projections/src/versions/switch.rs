//! The switch: version `to` becomes the one that serves in place of `from`, only if `to` has
//! applied at least everything `from` has on every partition, and `from`'s processors are
//! fenced (their generations move; in Redis its partitions also stay frozen), so from that
//! instant nothing more is applied to `from`, and nothing `from` applied is missing in `to`: no
//! event is handled live by both versions, and none by neither. PostgreSQL does it in one
//! transaction; Redis in steps under the freeze, which holds `from` still between them. That is
//! what lets a rebuild suppress derived events: the serving version emitted everything up to
//! the switch.
//!
//! A serving version under traffic never stands still, so the switch first *freezes* it
//! ([`freeze_postgres`], [`freeze_redis`]): its batches wait while the rebuild applies the last
//! few events up to the frozen positions, then [`Frozen::switch`] checks, fences and moves the
//! `active` mark. Reads go on from the frozen version meanwhile; only its writes pause, for as
//! long as that catch-up takes.
//! - PostgreSQL: one transaction locks `from`'s position rows (its processors' next batch waits
//!   on the lock), and later compares, bumps `from`'s generations, moves the `active` mark in
//!   `projection_versions` and commits. A crash rolls it back: the freeze ends with the session.
//! - Redis: a lease key per partition that its apply script checks (its batches retry), set one
//!   by one; the switch compares, moves the mark in one script over the versions hash, bumps
//!   the generations and keeps the leases for good, one key at a time, so a version's partitions
//!   may live in different slots of a Redis Cluster (`redis_store`). A crash leaves the leases
//!   to expire.
//!
//! When to freeze, switch or give up is the rebuild's decision (`surge-processors`' replay).

mod postgres;
mod redis_store;

use std::collections::HashMap;

use sqlx::{PgPool, Postgres, Transaction};
use surge_redis::Redis;

use super::{VersionState, VersionsError};
use crate::positions::Positions;

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

/// A serving version frozen for a switch, with the positions it is frozen at.
pub struct Frozen {
    hold: Hold,
    serving: Positions,
    projection: String,
    topic: String,
    from: u32,
    to: u32,
}

enum Hold {
    /// The transaction holding `from`'s position rows.
    Postgres(Transaction<'static, Postgres>),
    /// The projection's versions whose `from` has a freeze lease on every partition.
    Redis(redis_store::RedisVersions),
}

/// Freezes `from` of the PostgreSQL projection `projection` (`from` must be active, with `to`
/// being built) for a switch to `to`.
pub async fn freeze_postgres(
    pool: &PgPool,
    projection: &str,
    topic: &str,
    from: u32,
    to: u32,
) -> Result<Frozen, VersionsError> {
    let (tx, serving) = postgres::freeze(pool, projection, topic, from, to).await?;
    Ok(Frozen::new(
        Hold::Postgres(tx),
        serving,
        projection,
        topic,
        from,
        to,
    ))
}

/// Freezes `from` of the Redis projection `projection` (`from` must be active, with `to` being
/// built) for a switch to `to`; `topic` has `partitions` partitions.
pub async fn freeze_redis(
    redis: &Redis,
    deployment_prefix: &str,
    projection: &str,
    topic: &str,
    partitions: i32,
    from: u32,
    to: u32,
) -> Result<Frozen, VersionsError> {
    let versions = redis_store::RedisVersions {
        redis: redis.clone(),
        deployment_prefix: deployment_prefix.to_owned(),
        projection: projection.to_owned(),
        topic: topic.to_owned(),
        partitions,
    };
    let serving = versions.freeze(from, to).await?;
    let hold = Hold::Redis(versions);
    Ok(Frozen::new(hold, serving, projection, topic, from, to))
}

impl Frozen {
    fn new(
        hold: Hold,
        serving: Positions,
        projection: &str,
        topic: &str,
        from: u32,
        to: u32,
    ) -> Self {
        Frozen {
            hold,
            serving,
            projection: projection.to_owned(),
            topic: topic.to_owned(),
            from,
            to,
        }
    }

    /// Where the serving version stands, per partition, until the switch ends the freeze.
    pub fn serving(&self) -> &HashMap<i32, i64> {
        &self.serving
    }

    /// Makes `to` active if it has caught up with the frozen positions, fencing `from`; either
    /// way the freeze ends.
    pub async fn switch(self) -> Result<Switch, VersionsError> {
        let Frozen {
            hold,
            serving,
            projection,
            topic,
            from,
            to,
        } = self;
        match hold {
            Hold::Postgres(tx) => {
                postgres::switch(tx, &serving, &projection, &topic, from, to).await
            }
            Hold::Redis(versions) => versions.switch(from, to).await,
        }
    }

    /// Ends the freeze without switching.
    pub async fn release(self) -> Result<(), VersionsError> {
        match self.hold {
            Hold::Postgres(tx) => Ok(tx.rollback().await?),
            Hold::Redis(versions) => versions.release(self.from).await,
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

/// Only an active `from` gives way, and only to a `to` being built: anything else means another
/// process switched or dropped versions meanwhile.
fn check_states(
    from_state: Option<&str>,
    to_state: Option<&str>,
    from: u32,
    to: u32,
) -> Result<(), VersionsError> {
    let active = VersionState::Active.as_str();
    let building = VersionState::Building.as_str();
    if from_state != Some(active) || to_state != Some(building) {
        return Err(VersionsError::Conflict(format!(
            "cannot switch from v{from} ({}) to v{to} ({}): expected active and building",
            from_state.unwrap_or("absent"),
            to_state.unwrap_or("absent")
        )));
    }
    Ok(())
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
