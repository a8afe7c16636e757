//! The switch in PostgreSQL: the freeze is a transaction holding the serving version's position
//! rows; the switch compares, fences and moves the `active` mark in that same transaction.

use std::collections::HashMap;

use sqlx::{PgPool, Postgres, Transaction};

use super::{Switch, behind, check_states};
use crate::positions::{Positions, postgres as positions};
use crate::versions::VersionsError;

pub(super) async fn freeze(
    pool: &PgPool,
    name: &str,
    topic: &str,
    from: u32,
    to: u32,
) -> Result<(Transaction<'static, Postgres>, Positions), VersionsError> {
    let mut tx = pool.begin().await?;
    crate::versions::lock(&mut tx, name).await?;
    let states: HashMap<i32, String> = sqlx::query_as(include_str!("../sql/two_states.sql"))
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
    let serving = positions::read_locked(&mut tx, name, from, topic).await?;
    Ok((tx, serving))
}

pub(super) async fn switch(
    mut tx: Transaction<'static, Postgres>,
    serving: &HashMap<i32, i64>,
    name: &str,
    topic: &str,
    from: u32,
    to: u32,
) -> Result<Switch, VersionsError> {
    let rebuilt = positions::read_in_tx(&mut tx, name, to, topic).await?;
    let behind = behind(serving, &rebuilt);
    if !behind.is_empty() {
        tx.rollback().await?;
        return Ok(Switch::Behind(behind));
    }
    positions::fence(&mut tx, name, from, topic).await?;
    // Two statements: the one-active index is checked row by row.
    sqlx::query(include_str!("../sql/retire.sql"))
        .bind(name)
        .bind(from as i32)
        .execute(&mut *tx)
        .await?;
    sqlx::query(include_str!("../sql/activate.sql"))
        .bind(name)
        .bind(to as i32)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Switch::Done)
}
