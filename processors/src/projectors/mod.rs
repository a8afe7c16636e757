//! The projectors of the reference domain, one folder or file each, and the one list that maps
//! every projection of the catalog to its projector. Derivers (`referrals`, `quests`) are
//! projectors that also emit events back to the topic ([`crate::emit`]).

pub mod activity;
pub mod economy;
pub mod feed;
pub mod leaderboard;
pub mod profiles;
pub mod purchases;
pub mod quests;
pub mod referrals;
mod registry;
pub mod wallets;

pub use registry::{
    CATALOG, CatalogSink, Entry, Projector, SinkContext, StartError, StoreKind, Stores, UseSink,
    entry, names, start, with_sink,
};

registry::registry! {
    Profiles => profiles::Profiles,
    Wallets => wallets::Wallets,
    Leaderboard => leaderboard::Leaderboard,
    Feed => feed::Feed,
    Referrals => referrals::Referrals,
    Activity => activity::Activity,
    Quests => quests::Quests,
    Purchases => purchases::Purchases,
    Notifications => crate::notifications::Notifications,
}
