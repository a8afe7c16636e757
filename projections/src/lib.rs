//! The read side of Surge: projection stores, their migrations, and the query API that serves
//! them (never the topics, never the write side). Each projection is a module here and a line
//! of the catalog below.

pub mod activity;
pub mod catalog;
pub mod feed;
pub mod leaderboard;
pub mod live;
pub mod migrations;
pub mod naming;
pub mod notifications;
pub mod partitioning;
pub mod positions;
pub mod profiles;
pub mod purchases;
pub mod query_api;
pub mod quests;
pub mod referrals;
pub mod table_prefix;
pub mod timescaledb;
pub mod versions;
pub mod wallets;

pub use catalog::StoreKind;

// Every projection Surge has, written once: its id, the name it goes by everywhere (its module
// here and its projector's module in the processors are named so), the revision of its code,
// its store, in PostgreSQL its tables, and the query API endpoints of its folder's `http.rs`
// (see `catalog.rs`).
catalog::catalog! {
    /// Each user's profile, sessions, streak and referrer.
    Profiles => profiles, revision 1, in Postgres(crate::profiles::MIGRATIONS),
        serves crate::profiles::http::routes;
    /// Coin balances and the ledger of every coin earned.
    Wallets => wallets, revision 1, in Postgres(crate::wallets::MIGRATIONS);
    /// Coins per user all time, per day and per week, with names to show.
    Leaderboard => leaderboard, revision 3, in Redis, serves crate::leaderboard::http::routes;
    /// Each user's latest events, newest first.
    Feed => feed, revision 2, in Redis, serves crate::feed::http::routes;
    /// First sessions and the referral credits derived from them.
    Referrals => referrals, revision 1, in Postgres(crate::referrals::MIGRATIONS);
    /// Active users per minute and day, for the operator's stats.
    Activity => activity, revision 1, in Postgres(
        crate::activity::MIGRATIONS,
        timescaledb crate::activity::TIMESCALE_MIGRATIONS
    ), serves crate::activity::http::routes;
    /// Each user's progress toward the quest book's goals, and the quests completed.
    Quests => quests, revision 1, in Postgres(crate::quests::MIGRATIONS),
        serves crate::quests::http::routes;
    /// Each user's opened invoices and Stars payments, refunds and subscriptions.
    Purchases => purchases, revision 1, in Postgres(crate::purchases::MIGRATIONS),
        serves crate::purchases::http::routes;
    /// Who can be messaged, the broadcasts requested, and the outbox of messages the bot sends.
    Notifications => notifications, revision 1, in Postgres(crate::notifications::MIGRATIONS),
        serves crate::notifications::http::routes;
}
