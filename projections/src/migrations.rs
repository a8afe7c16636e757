//! Creating each PostgreSQL projection version's tables, as the catalog ([`ProjectionId`]) lists
//! them: the processors build and run versions with them, and `surge migrate` and the query
//! API's start create the active versions' tables with [`migrate_all`] without linking the
//! processors.
//!
//! A PostgreSQL version's tables are the runtime's (positions, versions, the version's
//! seen-events and parked-events tables) and the projection's own ([`ddl`]).

use sqlx::PgPool;

use crate::catalog::{ProjectionId, StoreKind};
use crate::naming::{self, table_prefix};
use crate::table_prefix::render;
use crate::timescaledb::TimescaleDb;
use crate::versions::{VersionRegistry, VersionsError};

/// The DDL of `version` of the PostgreSQL projection `id`'s own tables, as one script (several
/// statements, one simple-protocol round trip): its TimescaleDB layout with the extension's
/// schema when the database has it (`timescaledb`) and the projection has such a layout, its
/// plain layout otherwise. `None` for a projection kept in Redis.
pub fn ddl(id: ProjectionId, version: u32, timescaledb: Option<&TimescaleDb>) -> Option<String> {
    let tables = id.tables()?;
    let prefix = table_prefix(id.name(), version);
    let render = |d: &str| render(d, &prefix) + ";\n";
    Some(match (timescaledb, tables.timescaledb) {
        (Some(timescaledb), Some(migrations)) => migrations
            .iter()
            .map(|d| timescaledb.render(&render(d)))
            .collect(),
        _ => tables.plain.iter().map(|d| render(d)).collect(),
    })
}

/// Creates the positions and versions tables, and the tables of `version` of the PostgreSQL
/// projection `id`: its seen-events and parked-events tables and its own ([`ddl`], given whether
/// and where the database has TimescaleDB). Idempotent; DDL is transactional in PostgreSQL and
/// the transaction-scoped lock serialises processes migrating at the same moment.
///
/// # Panics
/// If `id` is kept in Redis.
pub async fn migrate(pool: &PgPool, id: ProjectionId, version: u32) -> Result<(), sqlx::Error> {
    assert_eq!(id.store(), StoreKind::Postgres, "{id} is kept in Redis");
    let mut tx = pool.begin().await?;
    crate::versions::lock_migrations(&mut tx).await?;
    crate::versions::migrate(&mut tx).await?;
    let prefix = table_prefix(id.name(), version);
    let seen = format!(
        "CREATE TABLE IF NOT EXISTS {} (event_id uuid PRIMARY KEY, seen_at timestamptz NOT NULL DEFAULT now())",
        naming::seen_events_table(&prefix)
    );
    sqlx::query(&seen).execute(&mut *tx).await?;
    sqlx::query(&render(include_str!("migrations/parked.sql"), &prefix))
        .execute(&mut *tx)
        .await?;
    let timescaledb = TimescaleDb::find(&mut tx).await?;
    let ddl = ddl(id, version, timescaledb.as_ref()).expect("kept in PostgreSQL");
    sqlx::Executor::execute(&mut *tx, ddl.as_str()).await?;
    tx.commit().await?;
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(transparent)]
    Versions(#[from] VersionsError),
    #[error("migrating {projection}.v{version} failed: {source}")]
    Migrate {
        projection: ProjectionId,
        version: u32,
        source: sqlx::Error,
    },
}

/// Creates the tables of every PostgreSQL projection's active version (version 1 where none is
/// active yet), for `surge migrate` and the query API's start. A version built by another
/// revision is left as it is.
pub async fn migrate_all(pool: &PgPool) -> Result<(), MigrateError> {
    for &id in ProjectionId::ALL {
        if id.store() != StoreKind::Postgres {
            continue;
        }
        let revision = id.revision();
        let registry = VersionRegistry::postgres(pool.clone(), id.name());
        let active = registry.ensure_active(revision).await?;
        if active.revision == revision {
            migrate(pool, id, active.version)
                .await
                .map_err(|source| MigrateError::Migrate {
                    projection: id,
                    version: active.version,
                    source,
                })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_projections_have_tables_and_redis_ones_none() {
        for &id in ProjectionId::ALL {
            assert_eq!(
                ddl(id, 1, None).is_some(),
                id.store() == StoreKind::Postgres,
                "{id}"
            );
        }
        let wallets = ddl(ProjectionId::Wallets, 7, None).unwrap();
        assert!(wallets.contains("wallets_v7_ledger"), "{wallets}");
        let referrals = ddl(ProjectionId::Referrals, 2, None).unwrap();
        assert!(referrals.contains("referrals_v2_users"), "{referrals}");
    }

    #[test]
    fn activity_takes_the_timescale_layout_in_the_extensions_schema_when_there_is_one() {
        let ddl = |timescaledb| ddl(ProjectionId::Activity, 2, timescaledb).unwrap();
        let plain = ddl(None);
        assert!(plain.contains("PARTITION BY RANGE"), "{plain}");
        assert!(!plain.contains("create_hypertable"), "{plain}");
        let timescale = ddl(Some(&TimescaleDb::in_schema("tools")));
        assert!(
            timescale.contains(r#""tools".create_hypertable('activity_v2_events'"#),
            "{timescale}"
        );
        assert!(!timescale.contains("PARTITION BY"), "{timescale}");
    }
}
