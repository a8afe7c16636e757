//! Reads and writes of one version's recipients and broadcasts, rendered for its table prefix
//! once.

use std::collections::HashMap;

use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::outbox::{OUTBOX, Outbox};
use crate::catalog::{ProjectionId, VersionedStore};
use crate::table_prefix::render;

/// What the projection keeps about a user.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Recipient {
    pub user_id: i64,
    pub telegram_language: Option<String>,
    pub chosen_language: Option<String>,
    pub allows_write: bool,
    pub blocked: bool,
    pub first_seen_at_ms: i64,
    pub last_active_at_ms: i64,
}

impl Recipient {
    /// A user first seen at `at_ms`, who has not (yet) let the bot write to them.
    pub fn new(user_id: i64, at_ms: i64) -> Recipient {
        Recipient {
            user_id,
            telegram_language: None,
            chosen_language: None,
            allows_write: false,
            blocked: false,
            first_seen_at_ms: at_ms,
            last_active_at_ms: at_ms,
        }
    }

    /// The language messages to them are written in: the one chosen in the Mini App, else
    /// Telegram's.
    pub fn language(&self) -> Option<&str> {
        self.chosen_language
            .as_deref()
            .or(self.telegram_language.as_deref())
    }

    /// Whether the bot may message them now.
    pub fn reachable(&self) -> bool {
        self.allows_write && !self.blocked
    }
}

/// A broadcast as requested.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Broadcast {
    pub broadcast_id: Uuid,
    pub text: String,
    pub button_text: Option<String>,
    pub active_within_days: Option<i32>,
    pub language: Option<String>,
    pub requested_at_ms: i64,
    pub cancelled_at_ms: Option<i64>,
}

/// The recipients and broadcasts tables of one version.
#[derive(Debug, Clone)]
pub struct NotificationStore {
    load_recipients: String,
    save_recipients: String,
    record_broadcast: String,
    cancel_broadcast: String,
    expand: String,
    broadcast: String,
    broadcasts: String,
}

impl VersionedStore for NotificationStore {
    const ID: ProjectionId = ProjectionId::Notifications;

    fn at(table_prefix: &str) -> Self {
        NotificationStore::new(table_prefix)
    }
}

const MS: &str = "TIMESTAMPTZ 'epoch' + {ms}::bigint * INTERVAL '1 millisecond'";

fn at_ms(param: &str) -> String {
    MS.replace("{ms}", param)
}

const BROADCAST_COLUMNS: &str = "broadcast_id, text, button_text, active_within_days, language, \
     (extract(epoch FROM requested_at) * 1000)::bigint AS requested_at_ms, \
     (extract(epoch FROM cancelled_at) * 1000)::bigint AS cancelled_at_ms";

impl NotificationStore {
    pub fn new(table_prefix: &str) -> Self {
        let sql = |s: &str| render(s, table_prefix);
        NotificationStore {
            load_recipients: sql(
                "SELECT user_id, telegram_language, chosen_language, allows_write, blocked, \
                 (extract(epoch FROM first_seen_at) * 1000)::bigint AS first_seen_at_ms, \
                 (extract(epoch FROM last_active_at) * 1000)::bigint AS last_active_at_ms \
                 FROM {t}_recipients WHERE user_id = ANY($1)",
            ),
            save_recipients: sql(&format!(
                "INSERT INTO {{t}}_recipients AS r (user_id, telegram_language, chosen_language, \
                 allows_write, blocked, first_seen_at, last_active_at) \
                 SELECT u, tl, cl, w, b, {}, {} \
                 FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::bool[], $5::bool[], \
                             $6::bigint[], $7::bigint[]) AS x(u, tl, cl, w, b, f, l) \
                 ON CONFLICT (user_id) DO UPDATE SET telegram_language = EXCLUDED.telegram_language, \
                 chosen_language = EXCLUDED.chosen_language, allows_write = EXCLUDED.allows_write, \
                 blocked = EXCLUDED.blocked, first_seen_at = EXCLUDED.first_seen_at, \
                 last_active_at = EXCLUDED.last_active_at",
                at_ms("f"),
                at_ms("l")
            )),
            record_broadcast: sql(&format!(
                "INSERT INTO {{t}}_broadcasts (broadcast_id, text, button_text, active_within_days, \
                 language, requested_at) VALUES ($1, $2, $3, $4, $5, {}) \
                 ON CONFLICT (broadcast_id) DO NOTHING",
                at_ms("$6")
            )),
            cancel_broadcast: sql(&format!(
                "UPDATE {{t}}_broadcasts SET cancelled_at = {} \
                 WHERE broadcast_id = $1 AND cancelled_at IS NULL",
                at_ms("$2")
            )),
            // One delivery per reachable user of the audience who was seen by the request:
            // the id is computed from the broadcast and the user, so expanding again adds
            // nothing. A language matches itself and its regional forms (`pt` picks `pt-BR`).
            expand: sql(&format!(
                "INSERT INTO {OUTBOX} (message_id, user_id, broadcast_id, kind, text, button_text) \
                 SELECT md5('broadcast:' || $1::text || ':' || r.user_id)::uuid, r.user_id, $1, \
                        'broadcast', $2, $3 \
                 FROM {{t}}_recipients r \
                 WHERE r.allows_write AND NOT r.blocked AND r.first_seen_at <= {requested} \
                   AND ($4::int IS NULL \
                        OR r.last_active_at >= {requested} - $4::int * INTERVAL '1 day') \
                   AND ($5::text IS NULL \
                        OR lower(coalesce(r.chosen_language, r.telegram_language)) = lower($5) \
                        OR lower(coalesce(r.chosen_language, r.telegram_language)) \
                           LIKE lower($5) || '-%') \
                 ON CONFLICT (message_id) DO NOTHING",
                requested = at_ms("$6")
            )),
            broadcast: sql(&format!(
                "SELECT {BROADCAST_COLUMNS} FROM {{t}}_broadcasts WHERE broadcast_id = $1"
            )),
            broadcasts: sql(&format!(
                "SELECT {BROADCAST_COLUMNS} FROM {{t}}_broadcasts \
                 ORDER BY requested_at DESC LIMIT $1"
            )),
        }
    }

    /// The stored rows of `users`.
    pub async fn recipients(
        &self,
        tx: &mut PgConnection,
        users: &[i64],
    ) -> sqlx::Result<HashMap<i64, Recipient>> {
        let rows: Vec<Recipient> = sqlx::query_as(&self.load_recipients)
            .bind(users)
            .fetch_all(&mut *tx)
            .await?;
        Ok(rows.into_iter().map(|r| (r.user_id, r)).collect())
    }

    /// Writes `recipients` whole, in one statement.
    pub async fn save(&self, tx: &mut PgConnection, recipients: &[Recipient]) -> sqlx::Result<()> {
        if recipients.is_empty() {
            return Ok(());
        }
        let column = |f: fn(&Recipient) -> i64| recipients.iter().map(f).collect::<Vec<_>>();
        let text =
            |f: fn(&Recipient) -> Option<String>| recipients.iter().map(f).collect::<Vec<_>>();
        let flag = |f: fn(&Recipient) -> bool| recipients.iter().map(f).collect::<Vec<_>>();
        sqlx::query(&self.save_recipients)
            .bind(column(|r| r.user_id))
            .bind(text(|r| r.telegram_language.clone()))
            .bind(text(|r| r.chosen_language.clone()))
            .bind(flag(|r| r.allows_write))
            .bind(flag(|r| r.blocked))
            .bind(column(|r| r.first_seen_at_ms))
            .bind(column(|r| r.last_active_at_ms))
            .execute(&mut *tx)
            .await?;
        Ok(())
    }

    /// Records a requested broadcast; a repeat changes nothing.
    pub async fn record(&self, tx: &mut PgConnection, broadcast: &Broadcast) -> sqlx::Result<()> {
        with_broadcast(&self.record_broadcast, tx, broadcast)
            .await
            .map(drop)
    }

    /// Queues one delivery of `broadcast` per recipient of its audience, in the outbox; returns
    /// how many were added.
    pub async fn expand(&self, tx: &mut PgConnection, broadcast: &Broadcast) -> sqlx::Result<u64> {
        let queued = with_broadcast(&self.expand, tx, broadcast).await?;
        Outbox
            .tally_queued(tx, broadcast.broadcast_id, queued)
            .await?;
        Ok(queued)
    }

    /// Marks `broadcast_id` cancelled at `at_ms` (the first cancellation's time stays).
    pub async fn cancel(
        &self,
        tx: &mut PgConnection,
        broadcast_id: Uuid,
        at_ms: i64,
    ) -> sqlx::Result<()> {
        sqlx::query(&self.cancel_broadcast)
            .bind(broadcast_id)
            .bind(at_ms)
            .execute(&mut *tx)
            .await?;
        Ok(())
    }

    /// The broadcast `broadcast_id`, if this version has it.
    pub async fn broadcast(
        &self,
        db: impl PgExecutor<'_>,
        broadcast_id: Uuid,
    ) -> sqlx::Result<Option<Broadcast>> {
        sqlx::query_as(&self.broadcast)
            .bind(broadcast_id)
            .fetch_optional(db)
            .await
    }

    /// The latest `limit` broadcasts, newest first.
    pub async fn latest(
        &self,
        db: impl PgExecutor<'_>,
        limit: i64,
    ) -> sqlx::Result<Vec<Broadcast>> {
        sqlx::query_as(&self.broadcasts)
            .bind(limit)
            .fetch_all(db)
            .await
    }
}

/// Runs `sql`, whose parameters `$1` to `$6` are the broadcast's id, text, button, activity
/// window, language and request time (as `record_broadcast` and `expand` take them); returns
/// the rows it changed.
async fn with_broadcast(
    sql: &str,
    tx: &mut PgConnection,
    broadcast: &Broadcast,
) -> sqlx::Result<u64> {
    let done = sqlx::query(sql)
        .bind(broadcast.broadcast_id)
        .bind(&broadcast.text)
        .bind(&broadcast.button_text)
        .bind(broadcast.active_within_days)
        .bind(&broadcast.language)
        .bind(broadcast.requested_at_ms)
        .execute(&mut *tx)
        .await?;
    Ok(done.rows_affected())
}
