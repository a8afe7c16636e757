//! The read side of Surge: projection stores, their migrations, and the query API that serves
//! them (never the topics, never the write side).

pub mod activity;
pub mod catalog;
pub mod feed;
pub mod leaderboard;
pub mod live;
pub mod migrations;
pub mod naming;
pub mod notifications;
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

pub use catalog::{ProjectionId, StoreKind};
