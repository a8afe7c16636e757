//! The `profiles` projection's storage: one row per user in `<prefix>_users` (prefix
//! `profiles_v<version>`). The fold that computes the rows lives with the processors
//! (`surge_processors::projectors::profiles`); this module only stores and reads them.

pub(crate) mod http;
mod store;

pub use store::ProfileStore;

use serde::Serialize;

/// `CREATE TABLE IF NOT EXISTS` statements, one per string, with `{t}` for the table prefix.
pub const MIGRATIONS: &[&str] = &[include_str!("sql/users.sql")];

/// A user's profile row. Times are unix milliseconds of event time; days are days since
/// 1970-01-01 (UTC), as in the events.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Profile {
    pub user_id: i64,
    /// Telegram snapshot from the latest SessionStarted; `None` until the first session.
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub username: Option<String>,
    pub is_premium: bool,
    /// The user's choice from ProfileUpdated once made (`language_code_chosen`), else Telegram's.
    pub language_code: Option<String>,
    pub language_code_chosen: bool,
    /// The user's choice from ProfileUpdated once made (`photo_url_chosen`), else Telegram's.
    pub photo_url: Option<String>,
    pub photo_url_chosen: bool,
    pub display_name: Option<String>,
    pub first_seen_at_ms: i64,
    pub last_seen_at_ms: i64,
    pub sessions_count: i64,
    /// The referrer named by the first session's `start_param`; never changes afterwards.
    pub referred_by: Option<i64>,
    pub streak_current: i32,
    pub streak_best: i32,
    pub streak_last_day: Option<i32>,
}
