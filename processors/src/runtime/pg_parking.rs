//! PostgreSQL side of per-user parking (guarantees in `parking`): the version's `{t}_parked`
//! table, written in the batch's transaction, and releases that lock the partition's position
//! row, so they never interleave with a processor's batch of the same partition.

use std::collections::HashSet;

use sqlx::{Acquire, PgConnection, Row};
use surge_projections::positions::postgres as positions;
use surge_projections::table_prefix::render;

use super::parking::{self, Parked, Release, Released};
use super::pg_sink::PgSink;
use super::sink::{Sink, SinkError};
use super::{PgProjection, Record};

/// The records to apply and the events to park of a batch's fresh records and dead letters
/// (see `parking::split`), given the parked users the table holds.
pub(super) async fn split<'a>(
    tx: &mut PgConnection,
    prefix: &str,
    fresh: Vec<&'a Record>,
    dead: &[Parked],
) -> Result<(Vec<&'a Record>, Vec<Parked>), sqlx::Error> {
    let users = parking::users(&fresh, dead);
    let parked_users: HashSet<i64> = if users.is_empty() {
        HashSet::new()
    } else {
        let found: Vec<i64> =
            sqlx::query_scalar(&render(include_str!("sql/parking/users.sql"), prefix))
                .bind(&users)
                .fetch_all(&mut *tx)
                .await?;
        found.into_iter().collect()
    };
    let (apply, waiting) = parking::split(fresh, &parked_users, dead);
    Ok((apply, parking::to_park(dead, waiting)))
}

/// Parks `events` (their `reason` says which are heads).
pub(super) async fn park(
    tx: &mut PgConnection,
    prefix: &str,
    events: &[Parked],
) -> Result<(), sqlx::Error> {
    if events.is_empty() {
        return Ok(());
    }
    let json = |p: &Parked| {
        let event = Parked {
            reason: None,
            ..p.clone()
        };
        serde_json::to_string(&event).expect("a parked event serialises")
    };
    sqlx::query(&render(include_str!("sql/parking/park.sql"), prefix))
        .bind(events.iter().map(|p| p.user_id).collect::<Vec<_>>())
        .bind(events.iter().map(|p| p.partition).collect::<Vec<_>>())
        .bind(events.iter().map(|p| p.offset).collect::<Vec<_>>())
        .bind(events.iter().map(json).collect::<Vec<_>>())
        .bind(events.iter().map(|p| p.reason.clone()).collect::<Vec<_>>())
        .execute(tx)
        .await?;
    Ok(())
}

fn read(event: &str, reason: Option<String>) -> Result<Parked, SinkError> {
    let parked: Parked = serde_json::from_str(event)
        .map_err(|e| SinkError::Transient(format!("unreadable parked event: {e}")))?;
    Ok(Parked { reason, ..parked })
}

/// Every parked event of the version whose tables start with `prefix`.
pub(super) async fn list(pool: &sqlx::PgPool, prefix: &str) -> Result<Vec<Parked>, SinkError> {
    let rows = sqlx::query(&render(include_str!("sql/parking/list.sql"), prefix))
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|row| read(row.get("event"), row.get("reason")))
        .collect()
}

/// A user's first parked event, and how many they have.
async fn head(
    tx: &mut PgConnection,
    prefix: &str,
    user: i64,
) -> Result<Option<(Parked, usize)>, SinkError> {
    let row = sqlx::query(&render(include_str!("sql/parking/head.sql"), prefix))
        .bind(user)
        .fetch_optional(tx)
        .await?;
    row.map(|row| {
        let parked = read(row.get("event"), row.get("reason"))?;
        Ok((parked, row.get::<i64, _>("parked") as usize))
    })
    .transpose()
}

async fn remove(tx: &mut PgConnection, prefix: &str, p: &Parked) -> Result<(), sqlx::Error> {
    sqlx::query(&render(include_str!("sql/parking/remove.sql"), prefix))
        .bind(p.user_id)
        .bind(p.partition)
        .bind(p.offset)
        .execute(tx)
        .await
        .map(drop)
}

impl<P: PgProjection> PgSink<P> {
    /// Releases `user`'s parked events, one transaction per event (see `parking`).
    pub(super) async fn release_user(
        &self,
        topic: &str,
        user: i64,
        how: Release,
    ) -> Result<Released, SinkError> {
        let prefix = self.prefix();
        let mut released = Released::default();
        let mut skip = how == Release::Skip;
        loop {
            let mut tx = self.pool.begin().await?;
            let Some((first, _)) = head(&mut tx, &prefix, user).await? else {
                break;
            };
            // The partition's position row, locked as a batch of the partition locks it; then
            // the head again, now that no batch of it can run.
            let partition = [first.partition];
            positions::lock_many(&mut tx, P::NAME, self.version(), topic, &partition).await?;
            let Some((head, count)) = head(&mut tx, &prefix, user).await? else {
                break;
            };
            if skip {
                remove(&mut tx, &prefix, &head).await?;
                tx.commit().await?;
                released.skipped += 1;
                skip = false;
                continue;
            }
            let reason = match head.record() {
                Ok(record) => {
                    // A savepoint: a rejected event leaves nothing behind but its new reason.
                    let mut attempt = (&mut *tx).begin().await?;
                    match self.apply_fresh(&mut attempt, vec![&record]).await {
                        Ok(_) => {
                            attempt.commit().await?;
                            remove(&mut tx, &prefix, &head).await?;
                            tx.commit().await?;
                            released.applied += 1;
                            continue;
                        }
                        Err(error) => {
                            attempt.rollback().await?;
                            parking::rejected_again(error)?
                        }
                    }
                }
                Err(error) => format!("this build cannot read the parked event: {error}"),
            };
            sqlx::query(&render(include_str!("sql/parking/reason.sql"), &prefix))
                .bind(head.user_id)
                .bind(head.partition)
                .bind(head.offset)
                .bind(&reason)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            released.still_parked = count;
            released.rejected = Some(reason);
            break;
        }
        Ok(released)
    }
}
