//! The projection versions the query API serves, and a position watcher for each. One place to
//! change when a rebuilt version becomes the one served.

use redis::aio::ConnectionManager;
use sqlx::PgPool;

use super::QueryApiConfig;
use super::watcher::PositionWatcher;
use crate::positions::PositionSource;

/// A projection version, named as its processor names it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Served {
    pub(crate) name: &'static str,
    pub(crate) version: u32,
}

pub(crate) const PROFILES: Served = Served::new("profiles", 1);
pub(crate) const WALLETS: Served = Served::new("wallets", 1);
pub(crate) const LEADERBOARD: Served = Served::new("leaderboard", 1);
pub(crate) const FEED: Served = Served::new("feed", 1);
pub(crate) const ACTIVITY: Served = Served::new("activity", 1);

impl Served {
    const fn new(name: &'static str, version: u32) -> Self {
        Served { name, version }
    }

    /// PostgreSQL table prefix, `<name>_v<version>`.
    pub(crate) fn table_prefix(self) -> String {
        format!("{}_v{}", self.name, self.version)
    }

    /// Redis key space, `<deployment prefix>:<name>:v<version>`.
    pub(crate) fn keys_base(self, redis_prefix: &str) -> String {
        format!("{redis_prefix}:{}:v{}", self.name, self.version)
    }
}

pub(crate) struct Watchers {
    pub(crate) profiles: PositionWatcher,
    pub(crate) wallets: PositionWatcher,
    pub(crate) leaderboard: PositionWatcher,
    pub(crate) feed: PositionWatcher,
    pub(crate) activity: PositionWatcher,
}

impl Watchers {
    pub(crate) fn spawn(config: &QueryApiConfig, pool: &PgPool, redis: &ConnectionManager) -> Self {
        let topic = config.events_topic.clone();
        let pg = |served: Served| PositionSource::Postgres {
            pool: pool.clone(),
            projection: served.name,
            version: served.version,
            topic: topic.clone(),
        };
        let redis = |served: Served| PositionSource::Redis {
            redis: redis.clone(),
            keys_base: served.keys_base(&config.redis_prefix),
            topic: topic.clone(),
        };
        let watch = |served: Served, source| {
            PositionWatcher::spawn(
                served.name,
                source,
                config.consistency_poll,
                config.store_timeout,
            )
        };
        Watchers {
            profiles: watch(PROFILES, pg(PROFILES)),
            wallets: watch(WALLETS, pg(WALLETS)),
            leaderboard: watch(LEADERBOARD, redis(LEADERBOARD)),
            feed: watch(FEED, redis(FEED)),
            activity: watch(ACTIVITY, pg(ACTIVITY)),
        }
    }
}
