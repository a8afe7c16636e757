//! The herd's favourite read, the top of a leaderboard, is the same for every caller: a short
//! in-process cache serves it with one Redis read per period and limit per TTL, and concurrent
//! misses wait on that one read instead of each running it. Clients may already keep the
//! anonymous answer 5 s (Cache-Control), so a TTL of a second adds no staleness they could not
//! see anyway; a read with a consistency token bypasses it.

use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use serde_json::json;
use surge_http::ApiError;

use super::QueryState;
use super::caching::etag_of;
use super::consistency::{read_store, store_unavailable};
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

/// By period suffix and limit.
type Tops = Cache<(String, usize), Arc<Top>>;

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

    /// The best `limit` of `period`; straight from Redis when `fresh` or uncached.
    pub(crate) async fn top(
        &self,
        state: &QueryState,
        period: Period,
        limit: usize,
        fresh: bool,
    ) -> Result<Arc<Top>, ApiError> {
        let read = async {
            let mut redis = state.redis.clone();
            let keys = &state.leaderboard_keys;
            read_store(state, "leaderboard", top(&mut redis, keys, period, limit))
                .await
                .map(|entries| Arc::new(Top::new(period, entries)))
        };
        match &self.cache {
            Some(cache) if !fresh => cache
                .try_get_with((period.suffix(), limit), read)
                .await
                .map_err(|_| store_unavailable()),
            _ => read.await,
        }
    }
}
