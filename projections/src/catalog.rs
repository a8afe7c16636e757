//! Every projection Surge has, written once: its id, the name it goes by (in tables, Redis keys,
//! metrics, commands and the HTTP API's errors) and the store that keeps it. Everything else
//! that depends on which projections exist (the processors' registry, the query API's served
//! versions, `surge projections`, the tests and benchmarks) reads [`ProjectionId::ALL`] or
//! matches on [`ProjectionId`] exhaustively, so adding a line here makes the compiler point at
//! every place that must decide about the new projection.

use std::fmt;

/// Where a projection keeps its state (and its positions and versions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreKind {
    Postgres,
    Redis,
}

impl StoreKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            StoreKind::Postgres => "postgres",
            StoreKind::Redis => "redis",
        }
    }
}

macro_rules! catalog {
    ($($(#[$doc:meta])* $id:ident => $name:literal in $store:ident;)+) => {
        /// A projection, as [the catalog](self) lists it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ProjectionId {
            $($(#[$doc])* $id,)+
        }

        impl ProjectionId {
            /// Every projection, in the catalog's order (which is also each one's index).
            pub const ALL: &'static [ProjectionId] = &[$(ProjectionId::$id),+];

            /// How many there are, for arrays indexed by [`index`](Self::index).
            pub const COUNT: usize = Self::ALL.len();

            /// The name it goes by everywhere.
            pub const fn name(self) -> &'static str {
                match self {
                    $(ProjectionId::$id => $name,)+
                }
            }

            /// The store that keeps it.
            pub const fn store(self) -> StoreKind {
                match self {
                    $(ProjectionId::$id => StoreKind::$store,)+
                }
            }
        }
    };
}

catalog! {
    /// Each user's profile, sessions, streak and referrer.
    Profiles => "profiles" in Postgres;
    /// Coin balances and the ledger of every coin earned.
    Wallets => "wallets" in Postgres;
    /// Coins per user all time, per day and per week, with names to show.
    Leaderboard => "leaderboard" in Redis;
    /// Each user's latest events, newest first.
    Feed => "feed" in Redis;
    /// First sessions and the referral credits derived from them.
    Referrals => "referrals" in Postgres;
    /// Active users per minute and day, for the operator's stats.
    Activity => "activity" in Postgres;
    /// Each user's progress toward the quest book's goals, and the quests completed.
    Quests => "quests" in Postgres;
    /// Each user's opened invoices and Stars payments, refunds and subscriptions.
    Purchases => "purchases" in Postgres;
    /// Who can be messaged, the broadcasts requested, and the outbox of messages the bot sends.
    Notifications => "notifications" in Postgres;
}

impl ProjectionId {
    /// The projection named `name`.
    pub fn named(name: &str) -> Option<ProjectionId> {
        Self::ALL.iter().copied().find(|id| id.name() == name)
    }

    /// Its place in [`ALL`](Self::ALL), for tables indexed by projection.
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// A PostgreSQL projection's typed store (its reads and writes), built from one version's table
/// prefix (`<name>_v<N>`, see [`crate::versions::table_prefix`]). Lets code that holds
/// versions by [`ProjectionId`] (the query API's served snapshot) hand out typed stores without
/// a line per projection.
pub trait VersionedStore: Send + Sync + 'static {
    /// The projection whose tables it reads and writes.
    const ID: ProjectionId;
    /// The store of the version whose tables are named `table_prefix`.
    fn at(table_prefix: &str) -> Self;
}

impl fmt::Display for ProjectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_plain_identifiers_and_name_back_to_their_id() {
        for (index, id) in ProjectionId::ALL.iter().copied().enumerate() {
            assert_eq!(id.index(), index);
            assert_eq!(ProjectionId::named(id.name()), Some(id));
            // Names go into table names and key names as they are.
            assert!(
                id.name()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{id}"
            );
        }
        assert_eq!(ProjectionId::named("nope"), None);
        assert_eq!(ProjectionId::Feed.store(), StoreKind::Redis);
    }
}
