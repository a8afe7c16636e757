//! Reads and writes of `<prefix>_users`. The SQL is rendered for one table prefix once, so a
//! store value serves one projection version.

use std::collections::HashMap;

use sqlx::{PgConnection, PgExecutor};

use crate::catalog::{ProjectionId, VersionedStore};
use crate::table_prefix::render;

use super::Profile;

const LOAD: &str = include_str!("sql/load.sql");
const UPSERT: &str = include_str!("sql/upsert.sql");
const PROFILE: &str = include_str!("sql/profile.sql");

/// The profiles tables of one version, e.g. prefix `profiles_v1`.
#[derive(Debug, Clone)]
pub struct ProfileStore {
    load: String,
    upsert: String,
    profile: String,
}

impl VersionedStore for ProfileStore {
    const ID: ProjectionId = ProjectionId::Profiles;

    fn at(table_prefix: &str) -> Self {
        ProfileStore::new(table_prefix)
    }
}

impl ProfileStore {
    /// # Panics
    /// If `prefix` is not a plain SQL identifier (`[a-z0-9_]`, not starting with a digit): it
    /// is spliced into the statements, so it must come from code, never from input.
    pub fn new(prefix: &str) -> Self {
        let render = |sql: &str| render(sql, prefix);
        ProfileStore {
            load: render(LOAD),
            upsert: render(UPSERT),
            profile: render(PROFILE),
        }
    }

    /// The stored rows of `user_ids`, by user id (users without a row are absent).
    pub async fn load(
        &self,
        conn: &mut PgConnection,
        user_ids: &[i64],
    ) -> sqlx::Result<HashMap<i64, Profile>> {
        let rows: Vec<Profile> = sqlx::query_as(&self.load)
            .bind(user_ids)
            .fetch_all(conn)
            .await?;
        Ok(rows.into_iter().map(|p| (p.user_id, p)).collect())
    }

    /// Inserts or wholly replaces `profiles` in one statement. Each user at most once.
    pub async fn upsert(&self, conn: &mut PgConnection, profiles: &[Profile]) -> sqlx::Result<()> {
        if profiles.is_empty() {
            return Ok(());
        }
        let col = |f: fn(&Profile) -> Option<&str>| profiles.iter().map(f).collect::<Vec<_>>();
        sqlx::query(&self.upsert)
            .bind(profiles.iter().map(|p| p.user_id).collect::<Vec<_>>())
            .bind(col(|p| p.first_name.as_deref()))
            .bind(col(|p| p.last_name.as_deref()))
            .bind(col(|p| p.username.as_deref()))
            .bind(profiles.iter().map(|p| p.is_premium).collect::<Vec<_>>())
            .bind(col(|p| p.language_code.as_deref()))
            .bind(
                profiles
                    .iter()
                    .map(|p| p.language_code_chosen)
                    .collect::<Vec<_>>(),
            )
            .bind(col(|p| p.photo_url.as_deref()))
            .bind(
                profiles
                    .iter()
                    .map(|p| p.photo_url_chosen)
                    .collect::<Vec<_>>(),
            )
            .bind(col(|p| p.display_name.as_deref()))
            .bind(
                profiles
                    .iter()
                    .map(|p| p.first_seen_at_ms)
                    .collect::<Vec<_>>(),
            )
            .bind(
                profiles
                    .iter()
                    .map(|p| p.last_seen_at_ms)
                    .collect::<Vec<_>>(),
            )
            .bind(
                profiles
                    .iter()
                    .map(|p| p.sessions_count)
                    .collect::<Vec<_>>(),
            )
            .bind(profiles.iter().map(|p| p.referred_by).collect::<Vec<_>>())
            .bind(
                profiles
                    .iter()
                    .map(|p| p.streak_current)
                    .collect::<Vec<_>>(),
            )
            .bind(profiles.iter().map(|p| p.streak_best).collect::<Vec<_>>())
            .bind(
                profiles
                    .iter()
                    .map(|p| p.streak_last_day)
                    .collect::<Vec<_>>(),
            )
            .execute(conn)
            .await?;
        Ok(())
    }

    /// One user's profile, `None` if the projection has no row for them.
    pub async fn profile(
        &self,
        executor: impl PgExecutor<'_>,
        user_id: i64,
    ) -> sqlx::Result<Option<Profile>> {
        sqlx::query_as(&self.profile)
            .bind(user_id)
            .fetch_optional(executor)
            .await
    }
}
