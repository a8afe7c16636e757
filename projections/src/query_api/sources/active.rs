//! Reading which version of each served projection is active: one query for every
//! PostgreSQL-kept projection, and the Redis registry hash of each Redis-kept one. Each store is
//! read with the store timeout; a store that does not answer leaves its projections `Unknown`,
//! so the others can still switch.

use std::time::Duration;

use redis::aio::ConnectionManager;
use sqlx::PgPool;

use super::Projection;
use super::served::{ByProjection, Polled};
use crate::positions::is_undefined_table;
use crate::versions::VersionRegistry;

const ACTIVE: &str = "SELECT projection, version FROM projection_versions WHERE state = 'active'";

/// The registries of the served projections.
pub(super) struct Registries {
    pool: PgPool,
    leaderboard: VersionRegistry,
    feed: VersionRegistry,
    timeout: Duration,
}

/// One poll: what was learnt, and why a store could not be read.
pub(super) struct Poll {
    pub(super) polled: ByProjection<Polled>,
    pub(super) postgres: Result<(), String>,
    pub(super) redis: Result<(), String>,
}

impl Registries {
    pub(super) fn new(
        pool: PgPool,
        redis: ConnectionManager,
        redis_prefix: &str,
        timeout: Duration,
    ) -> Self {
        let registry = |projection: Projection| {
            VersionRegistry::redis(redis.clone(), redis_prefix, projection.name())
        };
        Registries {
            pool,
            leaderboard: registry(Projection::Leaderboard),
            feed: registry(Projection::Feed),
            timeout,
        }
    }

    pub(super) async fn poll(&self) -> Poll {
        let (rows, leaderboard, feed) = tokio::join!(
            self.bounded(postgres_active(&self.pool)),
            self.bounded(redis_active(&self.leaderboard)),
            self.bounded(redis_active(&self.feed)),
        );
        let mut polled = ByProjection::from_fn(|_| Polled::Unknown);
        let postgres = rows.map(|rows| {
            for projection in Projection::ALL.into_iter().filter(|p| !p.in_redis()) {
                polled[projection] = from_rows(&rows, projection);
            }
        });
        let mut redis = Ok(());
        for (projection, outcome) in [
            (Projection::Leaderboard, leaderboard),
            (Projection::Feed, feed),
        ] {
            match outcome {
                Ok(found) => polled[projection] = found,
                Err(error) => redis = Err(error),
            }
        }
        Poll {
            polled,
            postgres,
            redis,
        }
    }

    async fn bounded<T>(&self, read: impl Future<Output = Result<T, String>>) -> Result<T, String> {
        tokio::time::timeout(self.timeout, read)
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {} ms", self.timeout.as_millis())))
    }
}

async fn postgres_active(pool: &PgPool) -> Result<Vec<(String, i32)>, String> {
    match sqlx::query_as(ACTIVE).fetch_all(pool).await {
        Ok(rows) => Ok(rows),
        // Nothing has created the registry in this schema yet: no version is active.
        Err(e) if is_undefined_table(&e) => Ok(Vec::new()),
        Err(e) => Err(e.to_string()),
    }
}

async fn redis_active(registry: &VersionRegistry) -> Result<Polled, String> {
    match registry.active().await {
        Ok(Some(info)) => Ok(Polled::Active(info.version)),
        Ok(None) => Ok(Polled::NoneYet),
        Err(e) => Err(e.to_string()),
    }
}

/// `projection`'s active version among `(projection, version)` rows; a negative version is an
/// unreadable registry, not "none yet".
fn from_rows(rows: &[(String, i32)], projection: Projection) -> Polled {
    match rows.iter().find(|(name, _)| name == projection.name()) {
        None => Polled::NoneYet,
        Some((_, version)) => u32::try_from(*version).map_or(Polled::Unknown, Polled::Active),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_projection_finds_its_own_row() {
        let rows = vec![
            ("referrals".to_owned(), 4),
            ("profiles".to_owned(), 2),
            ("wallets".to_owned(), -1),
        ];
        assert_eq!(from_rows(&rows, Projection::Profiles), Polled::Active(2));
        assert_eq!(from_rows(&rows, Projection::Activity), Polled::NoneYet);
        assert_eq!(from_rows(&rows, Projection::Wallets), Polled::Unknown);
        assert_eq!(from_rows(&[], Projection::Profiles), Polled::NoneYet);
    }
}
