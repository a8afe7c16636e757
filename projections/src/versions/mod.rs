//! Which versions of a projection exist and which one serves. A projection version is one
//! complete copy of its state (`<name>_v<N>_*` tables, or keys under `<prefix>:<name>:v<N>`),
//! built by one revision of its fold code. Exactly one version is `active`: the processors keep
//! it up to date and the query API reads it. `surge replay` builds the next version beside it
//! (`building`), switches the active mark to it atomically once it has caught up, and then drops
//! the old one (or leaves it `retired` with `--keep-old`).
//!
//! The registry lives in the same store as the projection's data and positions, so the switch can
//! check positions, fence the old version's writers and move the active mark in one atomic step
//! of that store (a PostgreSQL transaction; a Redis script):
//! - PostgreSQL: table `projection_versions`, one row per version (`sql/versions.sql`).
//! - Redis: hash `<prefix>:<name>:versions`, field = version number, value = [`VersionInfo`]
//!   as JSON.
//!
//! Besides the registry, this module owns the store operations on whole versions: the atomic
//! switch ([`switch`]) and removing a version's data ([`removal`]). Their names (tables, keys,
//! locks) come from [`crate::naming`]; positions and claims are [`crate::positions`].

mod postgres;
mod redis_store;
pub mod removal;
pub mod switch;

use std::fmt;

use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use surge_redis::Redis;

pub use postgres::{lock, lock_migrations, migrate};
pub(crate) use redis_store::{for_each_page, states_of};
pub use switch::{Behind, Frozen, Switch, freeze_postgres, freeze_redis};

/// Where a version is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VersionState {
    /// Being rebuilt by `surge replay`; nobody reads it.
    Building,
    /// Kept up to date by the processors and served by the query API. One per projection.
    Active,
    /// Served before the last switch; kept (`--keep-old`) or about to be dropped.
    Retired,
    /// Its tables or keys are gone; the entry stays so version numbers are never reused.
    Dropped,
}

impl VersionState {
    pub fn as_str(self) -> &'static str {
        match self {
            VersionState::Building => "building",
            VersionState::Active => "active",
            VersionState::Retired => "retired",
            VersionState::Dropped => "dropped",
        }
    }

    pub fn parse(text: &str) -> Option<VersionState> {
        [
            VersionState::Building,
            VersionState::Active,
            VersionState::Retired,
            VersionState::Dropped,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

impl fmt::Display for VersionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One version of a projection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInfo {
    pub version: u32,
    /// The revision of the fold code that builds it (`REVISION` of the projection). A processor
    /// only ever applies events to a version built by its own revision.
    pub revision: u32,
    pub state: VersionState,
    /// A point-in-time rebuild started here (unix ms); `None` for a rebuild from offset zero.
    #[serde(default)]
    pub from_ms: Option<i64>,
    pub created_at_ms: i64,
    #[serde(default)]
    pub switched_at_ms: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum VersionsError {
    #[error("the version registry in PostgreSQL failed: {0}")]
    Postgres(#[from] sqlx::Error),
    #[error("the version registry in Redis failed: {0}")]
    Redis(#[from] redis::RedisError),
    /// The versions are not in the states an operation expects (another process switched or
    /// dropped versions meanwhile), or a store script answered what it never answers.
    #[error("{0}")]
    Conflict(String),
    #[error("the version registry holds an unreadable entry for {projection} v{version}: {reason}")]
    Corrupt {
        projection: String,
        version: String,
        reason: String,
    },
}

/// The version registry of one projection, in the store that holds its data.
#[derive(Clone)]
pub enum VersionRegistry {
    Postgres {
        pool: PgPool,
        projection: &'static str,
    },
    Redis {
        redis: Redis,
        projection: &'static str,
        /// `<deployment prefix>:<name>:versions`
        key: String,
    },
}

impl VersionRegistry {
    pub fn postgres(pool: PgPool, projection: &'static str) -> Self {
        VersionRegistry::Postgres { pool, projection }
    }

    pub fn redis(redis: Redis, deployment_prefix: &str, projection: &'static str) -> Self {
        VersionRegistry::Redis {
            redis,
            projection,
            key: crate::naming::versions_key(deployment_prefix, projection),
        }
    }

    pub fn projection(&self) -> &'static str {
        match self {
            VersionRegistry::Postgres { projection, .. }
            | VersionRegistry::Redis { projection, .. } => projection,
        }
    }

    /// Every version ever registered (dropped ones included), ascending.
    pub async fn list(&self) -> Result<Vec<VersionInfo>, VersionsError> {
        let mut all = match self {
            VersionRegistry::Postgres { pool, projection } => {
                postgres::list(pool, projection).await?
            }
            VersionRegistry::Redis {
                redis,
                projection,
                key,
            } => redis_store::list(redis, projection, key).await?,
        };
        all.sort_by_key(|v| v.version);
        Ok(all)
    }

    /// The version that serves, if the projection has one yet.
    pub async fn active(&self) -> Result<Option<VersionInfo>, VersionsError> {
        Ok(self
            .list()
            .await?
            .into_iter()
            .find(|v| v.state == VersionState::Active))
    }

    /// The active version; a projection that has none gets version 1, active, built by
    /// `revision`. Safe when several processes start at once (only one version 1 is made).
    pub async fn ensure_active(&self, revision: u32) -> Result<VersionInfo, VersionsError> {
        if let Some(active) = self.active().await? {
            return Ok(active);
        }
        let first = VersionInfo {
            version: 1,
            revision,
            state: VersionState::Active,
            from_ms: None,
            created_at_ms: now_ms(),
            switched_at_ms: Some(now_ms()),
        };
        match self {
            VersionRegistry::Postgres { pool, projection } => {
                postgres::insert_if_none(pool, projection, &first).await?;
            }
            VersionRegistry::Redis {
                redis,
                projection,
                key,
            } => redis_store::insert_if_none(redis, projection, key, &first).await?,
        }
        self.active().await?.ok_or_else(|| VersionsError::Corrupt {
            projection: self.projection().to_owned(),
            version: "?".into(),
            reason: "versions exist but none is active".into(),
        })
    }

    /// Registers a new `building` version numbered after every version the registry has seen.
    pub async fn create_building(
        &self,
        revision: u32,
        from_ms: Option<i64>,
    ) -> Result<VersionInfo, VersionsError> {
        let template = VersionInfo {
            version: 0,
            revision,
            state: VersionState::Building,
            from_ms,
            created_at_ms: now_ms(),
            switched_at_ms: None,
        };
        match self {
            VersionRegistry::Postgres { pool, projection } => {
                postgres::insert_next(pool, projection, template).await
            }
            VersionRegistry::Redis {
                redis,
                projection,
                key,
            } => redis_store::insert_next(redis, projection, key, template).await,
        }
    }

    /// Moves `version` to `state` (used for `dropped`; the switch moves `active` atomically
    /// with its checks, see [`switch`]).
    pub async fn set_state(&self, version: u32, state: VersionState) -> Result<(), VersionsError> {
        match self {
            VersionRegistry::Postgres { pool, projection } => {
                postgres::set_state(pool, projection, version, state).await
            }
            VersionRegistry::Redis {
                redis,
                projection,
                key,
            } => redis_store::set_state(redis, projection, key, version, state).await,
        }
    }
}

/// Wall-clock unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_print_and_parse_the_same_names() {
        for state in [
            VersionState::Building,
            VersionState::Active,
            VersionState::Retired,
            VersionState::Dropped,
        ] {
            assert_eq!(VersionState::parse(state.as_str()), Some(state));
        }
        assert_eq!(VersionState::parse("serving"), None);
    }

    #[test]
    fn version_info_round_trips_as_json_and_tolerates_missing_optional_fields() {
        let info = VersionInfo {
            version: 3,
            revision: 2,
            state: VersionState::Building,
            from_ms: Some(1_700_000_000_000),
            created_at_ms: 1_700_000_000_001,
            switched_at_ms: None,
        };
        let json = serde_json::to_string(&info).unwrap();
        assert_eq!(serde_json::from_str::<VersionInfo>(&json).unwrap(), info);
        let minimal = r#"{"version":1,"revision":1,"state":"active","created_at_ms":5}"#;
        let parsed: VersionInfo = serde_json::from_str(minimal).unwrap();
        assert_eq!(parsed.from_ms, None);
        assert_eq!(parsed.state, VersionState::Active);
    }
}
