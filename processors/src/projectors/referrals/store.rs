//! The deriver's state in PostgreSQL, written in the runtime's transaction.

use std::collections::{HashMap, HashSet};

use sqlx::PgConnection;
use uuid::Uuid;

use crate::runtime::Record;

/// Records each user's first session (earliest in partition order) unless one is already known,
/// and returns the first-session event id of every user in `sessions`.
pub(super) async fn record_first_sessions(
    tx: &mut PgConnection,
    table: &str,
    sessions: &[&Record],
) -> sqlx::Result<HashMap<i64, Uuid>> {
    let mut seen = HashSet::new();
    let (mut users, mut ids, mut times) = (Vec::new(), Vec::new(), Vec::new());
    for record in sessions {
        let envelope = &record.event.envelope;
        if seen.insert(envelope.user_id) {
            users.push(envelope.user_id);
            ids.push(envelope.event_id);
            times.push(envelope.occurred_at);
        }
    }
    let insert = format!(
        "INSERT INTO {table} (user_id, first_session_event_id, first_seen_at)
         SELECT u, e, to_timestamp(t / 1000.0) FROM unnest($1::bigint[], $2::uuid[], $3::bigint[]) AS x(u, e, t)
         ON CONFLICT (user_id) DO NOTHING"
    );
    sqlx::query(&insert)
        .bind(&users)
        .bind(&ids)
        .bind(&times)
        .execute(&mut *tx)
        .await?;
    let select =
        format!("SELECT user_id, first_session_event_id FROM {table} WHERE user_id = ANY($1)");
    let rows: Vec<(i64, Uuid)> = sqlx::query_as(&select)
        .bind(&users)
        .fetch_all(&mut *tx)
        .await?;
    Ok(rows.into_iter().collect())
}

/// Which of `users` have had a session (in any partition, as far as applied).
pub(super) async fn known_users(
    tx: &mut PgConnection,
    table: &str,
    users: &HashSet<i64>,
) -> sqlx::Result<HashSet<i64>> {
    if users.is_empty() {
        return Ok(HashSet::new());
    }
    let ids: Vec<i64> = users.iter().copied().collect();
    let select = format!("SELECT user_id FROM {table} WHERE user_id = ANY($1)");
    let rows: Vec<(i64,)> = sqlx::query_as(&select)
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}
