//! Positions in PostgreSQL: table `projection_positions` (`sql/positions.sql`), one row per
//! projection, version, topic and partition.

use std::collections::HashMap;

use sqlx::PgPool;

use super::{Claim, Generations, Positions, is_undefined_table};

/// The version's positions on `topic`; none before any processor created the table.
pub(super) async fn read(
    pool: &PgPool,
    projection: &str,
    version: u32,
    topic: &str,
) -> Result<Positions, sqlx::Error> {
    let rows: Result<Vec<(i32, i64)>, _> = sqlx::query_as(include_str!("sql/read.sql"))
        .bind(projection)
        .bind(i32::try_from(version).unwrap_or(i32::MAX))
        .bind(topic)
        .fetch_all(pool)
        .await;
    match rows {
        Ok(rows) => Ok(rows.into_iter().collect()),
        // No processor has created the table yet: nothing is applied.
        Err(e) if is_undefined_table(&e) => Ok(Positions::new()),
        Err(e) => Err(e),
    }
}

/// The version's positions on `topic`, read in `tx` with their rows locked until it ends: the
/// version's next batch waits (how a switch freezes the serving version).
pub async fn read_locked(
    tx: &mut sqlx::PgConnection,
    projection: &str,
    version: u32,
    topic: &str,
) -> Result<Positions, sqlx::Error> {
    read_in(
        tx,
        include_str!("sql/read_for_update.sql"),
        projection,
        version,
        topic,
    )
    .await
}

/// The version's positions on `topic`, read in `tx`.
pub async fn read_in_tx(
    tx: &mut sqlx::PgConnection,
    projection: &str,
    version: u32,
    topic: &str,
) -> Result<Positions, sqlx::Error> {
    read_in(tx, include_str!("sql/read.sql"), projection, version, topic).await
}

async fn read_in(
    tx: &mut sqlx::PgConnection,
    sql: &str,
    projection: &str,
    version: u32,
    topic: &str,
) -> Result<Positions, sqlx::Error> {
    Ok(sqlx::query_as::<_, (i32, i64)>(sql)
        .bind(projection)
        .bind(version as i32)
        .bind(topic)
        .fetch_all(tx)
        .await?
        .into_iter()
        .collect())
}

pub(super) async fn generations(
    pool: &PgPool,
    projection: &str,
    version: u32,
    topic: &str,
) -> Result<Generations, sqlx::Error> {
    Ok(sqlx::query_as(include_str!("sql/generations.sql"))
        .bind(projection)
        .bind(version as i32)
        .bind(topic)
        .fetch_all(pool)
        .await?
        .into_iter()
        .collect())
}

pub(super) async fn versions(
    pool: &PgPool,
    projection: &str,
    topic: &str,
) -> Result<Vec<u32>, sqlx::Error> {
    let found: Result<Vec<i32>, _> = sqlx::query_scalar(include_str!("sql/versions.sql"))
        .bind(projection)
        .bind(topic)
        .fetch_all(pool)
        .await;
    match found {
        Ok(versions) => Ok(versions.into_iter().map(|v| v as u32).collect()),
        // No processor has run here yet.
        Err(e) if is_undefined_table(&e) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Claims `partitions` of `topic` for a processor of `version`: bumps each generation (fencing
/// older owners) and returns where to resume. Empty when the version no longer serves (retired
/// by a switch, or dropped): it is never claimed again.
pub async fn claim(
    pool: &PgPool,
    projection: &str,
    version: u32,
    topic: &str,
    partitions: &[i32],
) -> Result<Vec<Claim>, sqlx::Error> {
    let rows: Vec<(i32, i64, i64)> = sqlx::query_as(include_str!("sql/claim.sql"))
        .bind(projection)
        .bind(version as i32)
        .bind(topic)
        .bind(partitions)
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(partition, next_offset, generation)| Claim {
            partition,
            next_offset,
            generation,
        })
        .collect())
}

/// Locks the position rows of `partitions` in `tx` (a batch's, or a release's, which so never
/// interleaves with a batch): each claimed partition's next offset and generation (a partition
/// never claimed is absent).
pub async fn lock_many(
    tx: &mut sqlx::PgConnection,
    projection: &str,
    version: u32,
    topic: &str,
    partitions: &[i32],
) -> Result<HashMap<i32, (i64, i64)>, sqlx::Error> {
    let rows: Vec<(i32, i64, i64)> = sqlx::query_as(include_str!("sql/lock_many.sql"))
        .bind(projection)
        .bind(version as i32)
        .bind(topic)
        .bind(partitions)
        .fetch_all(&mut *tx)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(partition, next_offset, generation)| (partition, (next_offset, generation)))
        .collect())
}

/// Moves each `(partition, next_offset)` of `moves` in `tx`, the transaction of the batches
/// whose writes they cover.
pub async fn advance_many(
    tx: &mut sqlx::PgConnection,
    projection: &str,
    version: u32,
    topic: &str,
    moves: &[(i32, i64)],
) -> Result<(), sqlx::Error> {
    if moves.is_empty() {
        return Ok(());
    }
    sqlx::query(include_str!("sql/advance_many.sql"))
        .bind(projection)
        .bind(version as i32)
        .bind(topic)
        .bind(moves.iter().map(|m| m.0).collect::<Vec<_>>())
        .bind(moves.iter().map(|m| m.1).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Fences every processor of `version` on `topic` in `tx`: their next batch finds their
/// generation moved.
pub async fn fence(
    tx: &mut sqlx::PgConnection,
    projection: &str,
    version: u32,
    topic: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(include_str!("sql/fence.sql"))
        .bind(projection)
        .bind(version as i32)
        .bind(topic)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Forgets the positions of `version` of `projection`, or of all its versions (`None`).
pub async fn forget(
    pool: &PgPool,
    projection: &str,
    version: Option<u32>,
) -> Result<(), sqlx::Error> {
    sqlx::query(include_str!("sql/forget.sql"))
        .bind(projection)
        .bind(version.map(|v| v as i32))
        .execute(pool)
        .await?;
    Ok(())
}
