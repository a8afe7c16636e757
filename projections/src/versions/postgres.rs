//! The version registry in PostgreSQL: table `projection_versions`.

use sqlx::{PgPool, Row};

use super::{VersionInfo, VersionState, VersionsError};
use crate::naming;

/// Creates the registry and positions tables, idempotently. Callers hold the migrations lock
/// (see `ensure_tables`): DDL on an existing table still takes locks, and two transactions
/// each migrating and then writing the same table deadlock.
pub async fn migrate(conn: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    execute_script(&mut *conn, include_str!("../positions/sql/positions.sql")).await?;
    execute_script(conn, include_str!("sql/versions.sql")).await
}

/// Several statements in one round trip. A plain function, so the connection is reborrowed at
/// the call and not inside a generic `Executor` bound (which trips callers' `Send` checks).
async fn execute_script(conn: &mut sqlx::PgConnection, sql: &str) -> Result<(), sqlx::Error> {
    sqlx::Executor::execute(conn, sql).await.map(drop)
}

/// [`migrate`] in a transaction of its own, under the lock every Surge migration takes.
async fn ensure_tables(pool: &PgPool) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    lock_migrations(&mut tx).await?;
    migrate(&mut tx).await?;
    tx.commit().await
}

pub(super) async fn list(
    pool: &PgPool,
    projection: &str,
) -> Result<Vec<VersionInfo>, VersionsError> {
    let rows = match sqlx::query(include_str!("sql/list_versions.sql"))
        .bind(projection)
        .fetch_all(pool)
        .await
    {
        Ok(rows) => rows,
        // Nothing has migrated this schema yet: no versions.
        Err(e) if crate::positions::is_undefined_table(&e) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    rows.iter()
        .map(|row| {
            let version: i32 = row.try_get("version")?;
            let state: String = row.try_get("state")?;
            let corrupt = |reason: String| VersionsError::Corrupt {
                projection: projection.to_owned(),
                version: version.to_string(),
                reason,
            };
            Ok(VersionInfo {
                version: u32::try_from(version).map_err(|_| corrupt("negative version".into()))?,
                revision: u32::try_from(row.try_get::<i32, _>("revision")?)
                    .map_err(|_| corrupt("negative revision".into()))?,
                state: VersionState::parse(&state)
                    .ok_or_else(|| corrupt(format!("unknown state {state:?}")))?,
                from_ms: row.try_get("from_ms")?,
                created_at_ms: row.try_get("created_at_ms")?,
                switched_at_ms: row.try_get("switched_at_ms")?,
            })
        })
        .collect()
}

/// Takes the lock every Surge migration holds ([`naming::MIGRATIONS_LOCK`]) until the
/// transaction ends.
pub async fn lock_migrations(tx: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    advisory_xact_lock(tx, naming::MIGRATIONS_LOCK).await
}

/// Takes the registry's lock for `projection` until the transaction ends: every change of its
/// versions (numbering, the switch) holds it.
pub async fn lock(tx: &mut sqlx::PgConnection, projection: &str) -> Result<(), sqlx::Error> {
    advisory_xact_lock(tx, &naming::versions_lock(projection)).await
}

async fn advisory_xact_lock(tx: &mut sqlx::PgConnection, name: &str) -> Result<(), sqlx::Error> {
    sqlx::query(include_str!("sql/advisory_lock.sql"))
        .bind(name)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

async fn insert(
    tx: &mut sqlx::PgConnection,
    projection: &str,
    info: &VersionInfo,
) -> Result<(), sqlx::Error> {
    sqlx::query(include_str!("sql/insert_version.sql"))
        .bind(projection)
        .bind(info.version as i32)
        .bind(info.revision as i32)
        .bind(info.state.as_str())
        .bind(info.from_ms)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

pub(super) async fn insert_if_none(
    pool: &PgPool,
    projection: &str,
    first: &VersionInfo,
) -> Result<(), VersionsError> {
    ensure_tables(pool).await?;
    let mut tx = pool.begin().await?;
    lock(&mut tx, projection).await?;
    let any: Option<i32> = sqlx::query_scalar(include_str!("sql/any_version.sql"))
        .bind(projection)
        .fetch_optional(&mut *tx)
        .await?;
    if any.is_none() {
        insert(&mut tx, projection, first).await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(super) async fn insert_next(
    pool: &PgPool,
    projection: &str,
    mut info: VersionInfo,
) -> Result<VersionInfo, VersionsError> {
    ensure_tables(pool).await?;
    let mut tx = pool.begin().await?;
    lock(&mut tx, projection).await?;
    let next: i32 = sqlx::query_scalar(include_str!("sql/next_version.sql"))
        .bind(projection)
        .fetch_one(&mut *tx)
        .await?;
    info.version = next as u32;
    insert(&mut tx, projection, &info).await?;
    tx.commit().await?;
    Ok(info)
}

pub(super) async fn set_state(
    pool: &PgPool,
    projection: &str,
    version: u32,
    state: VersionState,
) -> Result<(), VersionsError> {
    sqlx::query(include_str!("sql/set_state.sql"))
        .bind(projection)
        .bind(version as i32)
        .bind(state.as_str())
        .execute(pool)
        .await?;
    Ok(())
}
