//! Reading which version of each projection of the catalog is active: one query for every
//! PostgreSQL-kept projection, and the Redis registry hash of each Redis-kept one. Each store is
//! read with the store timeout; a store that does not answer leaves its projections `Unknown`,
//! so the others can still switch.

use std::time::Duration;

use sqlx::PgPool;
use surge_redis::Redis;

use super::served::{ByProjection, Polled};
use crate::catalog::{ProjectionId, StoreKind};
use crate::positions::is_undefined_table;
use crate::versions::VersionRegistry;

const ACTIVE: &str = "SELECT projection, version FROM projection_versions WHERE state = 'active'";

/// The registries of the catalog's projections.
pub(super) struct Registries {
    pool: PgPool,
    /// Each Redis-kept projection's registry; the PostgreSQL-kept ones share one table.
    redis: Vec<(ProjectionId, VersionRegistry)>,
    timeout: Duration,
}

/// One poll: what was learnt, and why a store could not be read.
pub(super) struct Poll {
    pub(super) polled: ByProjection<Polled>,
    pub(super) postgres: Result<(), String>,
    pub(super) redis: Result<(), String>,
}

impl Registries {
    pub(super) fn new(pool: PgPool, redis: Redis, redis_prefix: &str, timeout: Duration) -> Self {
        let redis = kept_in(StoreKind::Redis)
            .map(|id| {
                let registry = VersionRegistry::redis(redis.clone(), redis_prefix, id.name());
                (id, registry)
            })
            .collect();
        Registries {
            pool,
            redis,
            timeout,
        }
    }

    pub(super) async fn poll(&self) -> Poll {
        let redis_reads = self
            .redis
            .iter()
            .map(|(id, registry)| async move { (*id, self.bounded(redis_active(registry)).await) });
        let (rows, outcomes) = tokio::join!(
            self.bounded(postgres_active(&self.pool)),
            futures::future::join_all(redis_reads),
        );
        let mut polled = ByProjection::from_fn(|_| Polled::Unknown);
        let postgres = rows.map(|rows| {
            for projection in kept_in(StoreKind::Postgres) {
                polled[projection] = from_rows(&rows, projection);
            }
        });
        let mut redis = Ok(());
        for (projection, outcome) in outcomes {
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

/// The catalog's projections kept in `store`.
fn kept_in(store: StoreKind) -> impl Iterator<Item = ProjectionId> {
    ProjectionId::ALL
        .iter()
        .copied()
        .filter(move |id| id.store() == store)
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
fn from_rows(rows: &[(String, i32)], projection: ProjectionId) -> Polled {
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
        assert_eq!(from_rows(&rows, ProjectionId::Profiles), Polled::Active(2));
        assert_eq!(from_rows(&rows, ProjectionId::Activity), Polled::NoneYet);
        assert_eq!(from_rows(&rows, ProjectionId::Wallets), Polled::Unknown);
        assert_eq!(from_rows(&[], ProjectionId::Profiles), Polled::NoneYet);
    }
}
