//! The herd's favourite read, the top of a leaderboard, is the same for every caller: a short
//! in-process cache serves it with one Redis read per period and limit per TTL, and concurrent
//! misses wait on that one read instead of each running it. Clients may already keep the
//! anonymous answer 5 s (Cache-Control), so a TTL of a second adds no staleness they could not
//! see anyway; a read with a consistency token bypasses it. Entries are keyed by leaderboard
//! version too, so after a switch the old version's top is never served as the new one's.

use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use serde_json::json;
use surge_http::ApiError;

use super::QueryState;
use super::caching::etag_of;
use super::consistency::{read_store, store_unavailable};
use super::sources::Version;
use crate::leaderboard::{Entry, Period, top};

/// A top slice with its anonymous answer rendered once, since most readers get exactly that.
pub(crate) struct Top {
    pub entries: Vec<Entry>,
    pub anonymous_body: String,
    pub anonymous_etag: String,
}

impl Top {
    fn new(period: Period, entries: Vec<Entry>) -> Self {
        let anonymous_body = json!({ "period": period.suffix(), "entries": entries }).to_string();
        let anonymous_etag = etag_of(anonymous_body.as_bytes());
        Top {
            entries,
            anonymous_body,
            anonymous_etag,
        }
    }
}

/// By leaderboard version, period suffix and limit.
type Tops = Cache<TopKey, Arc<Top>>;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct TopKey {
    version: u32,
    period: String,
    limit: usize,
}

pub(crate) struct TopCache {
    /// `None` when the TTL is zero: every read goes to Redis.
    cache: Option<Tops>,
}

impl TopCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        let cache =
            (!ttl.is_zero()).then(|| Cache::builder().max_capacity(256).time_to_live(ttl).build());
        TopCache { cache }
    }

    /// The best `limit` of `period` in `board` (one leaderboard version); straight from Redis
    /// when `fresh` or uncached.
    pub(crate) async fn top(
        &self,
        state: &QueryState,
        board: &Version<String>,
        period: Period,
        limit: usize,
        fresh: bool,
    ) -> Result<Arc<Top>, ApiError> {
        let read = async {
            let mut redis = state.redis.clone();
            let keys = &board.store;
            read_store(state, "leaderboard", top(&mut redis, keys, period, limit))
                .await
                .map(|entries| Arc::new(Top::new(period, entries)))
        };
        match &self.cache {
            Some(cache) if !fresh => cache
                .try_get_with(key(board.number, period, limit), read)
                .await
                .map_err(|_| store_unavailable()),
            _ => read.await,
        }
    }
}

fn key(version: u32, period: Period, limit: usize) -> TopKey {
    TopKey {
        version,
        period: period.suffix(),
        limit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leaderboard::PeriodKind;

    #[test]
    fn the_same_top_of_two_versions_has_two_keys() {
        let period = Period::containing(PeriodKind::Daily, 1_700_000_000_000).unwrap();
        assert_eq!(key(1, period, 100), key(1, period, 100));
        assert_ne!(key(1, period, 100), key(2, period, 100));
        assert_ne!(key(1, period, 100), key(1, period, 10));
    }
}
