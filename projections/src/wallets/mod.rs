//! The `wallets` projection's storage (prefix `wallets_v<version>`): `<prefix>_balances` (one
//! row per user), the append-only `<prefix>_ledger` (one row per coin-earning event, unique by
//! event id) and `<prefix>_streaks` (the check-in streak the coin rules need). The fold that
//! decides amounts lives with the processors (`surge_processors::projectors::wallets`).

mod store;

pub use store::WalletStore;

use std::collections::HashMap;

use serde::Serialize;
use uuid::Uuid;

/// Idempotent DDL statements, one per string, with `{t}` for the table prefix.
pub const MIGRATIONS: &[&str] = &[
    include_str!("sql/balances.sql"),
    include_str!("sql/ledger.sql"),
    include_str!("sql/ledger_kinds.sql"),
    include_str!("sql/streaks.sql"),
];

/// A ledger row the fold found earned, before it is numbered into its user's ledger (which
/// makes it a [`LedgerEntry`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry {
    pub event_id: Uuid,
    pub user_id: i64,
    /// Why the coins were earned (`taps`, `quest`...), as the coin rules name it.
    pub kind: &'static str,
    pub amount: i64,
    pub occurred_at_ms: i64,
    pub partition: i32,
    pub offset: i64,
}

/// A stored check-in streak; `last_day` in days since 1970-01-01 (UTC).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StreakRow {
    pub user_id: i64,
    pub current: i32,
    pub best: i32,
    pub last_day: Option<i32>,
}

/// One ledger row: what a batch appends and what reads return.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerEntry {
    pub event_id: Uuid,
    pub user_id: i64,
    /// 1, 2, 3... per user, in the order the events were applied.
    pub seq: i64,
    /// Why the coins were earned, as stored.
    pub kind: String,
    pub amount: i64,
    /// The user's balance including this row.
    pub balance_after: i64,
    pub occurred_at_ms: i64,
    pub partition: i32,
    pub offset: i64,
}

/// A user's balance and ledger length as stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Balance {
    pub balance: i64,
    /// How many ledger rows the user has (the `seq` of the newest).
    pub entries: i64,
}

/// The stored state of a batch's users, by user id; users without a row are absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stored {
    pub balances: HashMap<i64, Balance>,
    pub streaks: HashMap<i64, StreakRow>,
}

/// A user's wallet with its latest ledger rows, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Wallet {
    pub user_id: i64,
    pub balance: i64,
    /// How many ledger rows the user has (the `seq` of the newest).
    pub entries: i64,
    pub updated_at_ms: i64,
    pub streak: StreakRow,
    pub latest: Vec<LedgerEntry>,
}
