//! Derivers: processors that turn events into new events back on the topic.

pub mod emit;
pub mod quests;
pub mod referrals;
