//! The switch in PostgreSQL: the freeze is a transaction holding the serving version's position
//! rows; the switch compares, fences and moves the `active` mark in that same transaction.

use std::collections::HashMap;

use sqlx::{Postgres, Transaction};

use super::{Hold, Switch, behind, check_states};
use crate::projectors::Stores;
use crate::runtime::SinkError;

pub(super) async fn freeze(
    stores: &Stores,
    name: &str,
    topic: &str,
    from: u32,
    to: u32,
) -> Result<(Hold, HashMap<i32, i64>), SinkError> {
    let mut tx = stores.pool.begin().await?;
    surge_projections::versions::lock(&mut tx, name).await?;
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

pub(super) async fn switch(
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
