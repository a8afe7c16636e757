//! The projectors of the reference domain.

pub mod activity;
pub mod economy;
pub mod feed;
pub mod leaderboard;
pub mod profiles;
pub mod purchases;
mod registry;
pub mod wallets;

pub use registry::{
    CATALOG, Entry, SinkContext, StartError, StoreKind, Stores, UseSink, entry, names, start,
    with_sink,
};
