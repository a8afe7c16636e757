//! Reads and writes of the quests tables, rendered for one version's table prefix once.

use std::collections::HashMap;

use sqlx::{PgConnection, PgExecutor, PgPool};
use uuid::Uuid;

use super::Progress;
use crate::catalog::{ProjectionId, VersionedStore};
use crate::table_prefix::render;

const LOAD_PROGRESS: &str = include_str!("sql/load_progress.sql");
const UPSERT_PROGRESS: &str = include_str!("sql/upsert_progress.sql");
const LOAD_COMPLETED: &str = include_str!("sql/load_completed.sql");
const INSERT_COMPLETED: &str = include_str!("sql/insert_completed.sql");

/// A quest a user completed.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Completed {
    pub user_id: i64,
    pub quest_id: String,
    pub reward: i64,
    /// The QuestCompleted event's id.
    pub event_id: Uuid,
    pub completed_at_ms: i64,
}

/// The quests tables of one version, e.g. prefix `quests_v1`.
#[derive(Debug, Clone)]
pub struct QuestStore {
    load_progress: String,
    upsert_progress: String,
    load_completed: String,
    insert_completed: String,
}

impl VersionedStore for QuestStore {
    const ID: ProjectionId = ProjectionId::Quests;

    fn at(table_prefix: &str) -> Self {
        QuestStore::new(table_prefix)
    }
}

impl QuestStore {
    /// # Panics
    /// If `prefix` is not a plain SQL identifier (see [`render`]).
    pub fn new(prefix: &str) -> Self {
        let render = |sql: &str| render(sql, prefix);
        QuestStore {
            load_progress: render(LOAD_PROGRESS),
            upsert_progress: render(UPSERT_PROGRESS),
            load_completed: render(LOAD_COMPLETED),
            insert_completed: render(INSERT_COMPLETED),
        }
    }

    /// The stored progress of `user_ids`, by user id (users without a row are absent).
    pub async fn progress<'e>(
        &self,
        db: impl PgExecutor<'e>,
        user_ids: &[i64],
    ) -> sqlx::Result<HashMap<i64, Progress>> {
        let rows: Vec<Progress> = sqlx::query_as(&self.load_progress)
            .bind(user_ids)
            .fetch_all(db)
            .await?;
        Ok(rows.into_iter().map(|p| (p.user_id, p)).collect())
    }

    /// The completions of `user_ids`.
    pub async fn completed<'e>(
        &self,
        db: impl PgExecutor<'e>,
        user_ids: &[i64],
    ) -> sqlx::Result<Vec<Completed>> {
        sqlx::query_as(&self.load_completed)
            .bind(user_ids)
            .fetch_all(db)
            .await
    }

    /// One user's progress and completions, for the query API: two reads on two pooled
    /// connections at once.
    pub async fn of_user(
        &self,
        pool: &PgPool,
        user_id: i64,
    ) -> sqlx::Result<(Option<Progress>, Vec<Completed>)> {
        let users = [user_id];
        let (mut progress, completed) =
            tokio::try_join!(self.progress(pool, &users), self.completed(pool, &users),)?;
        Ok((progress.remove(&user_id), completed))
    }

    /// Writes back folded progress rows (one per user).
    pub async fn write_progress(
        &self,
        tx: &mut PgConnection,
        rows: &[Progress],
    ) -> sqlx::Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let column = |f: fn(&Progress) -> i64| rows.iter().map(f).collect::<Vec<i64>>();
        let small = |f: fn(&Progress) -> i32| rows.iter().map(f).collect::<Vec<i32>>();
        let last_days: Vec<Option<i32>> = rows.iter().map(|p| p.streak_last_day).collect();
        sqlx::query(&self.upsert_progress)
            .bind(column(|p| p.user_id))
            .bind(column(|p| p.taps))
            .bind(column(|p| p.sessions))
            .bind(column(|p| p.referrals))
            .bind(small(|p| p.streak_current))
            .bind(small(|p| p.streak_best))
            .bind(last_days)
            .execute(tx)
            .await?;
        Ok(())
    }

    /// Records completions; a quest already recorded for its user stays as it was.
    pub async fn record_completed(
        &self,
        tx: &mut PgConnection,
        rows: &[Completed],
    ) -> sqlx::Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let users: Vec<i64> = rows.iter().map(|c| c.user_id).collect();
        let quests: Vec<&str> = rows.iter().map(|c| c.quest_id.as_str()).collect();
        let rewards: Vec<i64> = rows.iter().map(|c| c.reward).collect();
        let ids: Vec<Uuid> = rows.iter().map(|c| c.event_id).collect();
        let times: Vec<i64> = rows.iter().map(|c| c.completed_at_ms).collect();
        sqlx::query(&self.insert_completed)
            .bind(users)
            .bind(quests)
            .bind(rewards)
            .bind(ids)
            .bind(times)
            .execute(tx)
            .await?;
        Ok(())
    }
}
