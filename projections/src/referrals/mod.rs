//! The `referrals` deriver's storage: `<prefix>_users` (prefix `referrals_v<version>`), each
//! user's first session. The deriver that decides and emits referral credits lives with the
//! processors (`surge_processors::projectors::referrals`); this module only owns its tables, so
//! every PostgreSQL projection's DDL is in this crate (see [`crate::migrations`]).

/// `CREATE TABLE IF NOT EXISTS` statements, one per string, with `{t}` for the table prefix.
pub const MIGRATIONS: &[&str] = &[include_str!("sql/users.sql")];
