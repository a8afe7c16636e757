//! The herd's favourite read, the top of a leaderboard, is the same for every caller: a short
//! in-process cache serves it with one Redis read per period and limit per TTL, and concurrent
//! misses wait on that one read instead of each running it. Clients may already keep the
//! anonymous answer 5 s (Cache-Control), so a TTL of a second adds no staleness they could not
//! see anyway. Each entry remembers the positions it reflects, so a read with a consistency
//! token is served from it when its write is among them, and reads Redis (refreshing the entry)
//! only when it is not: replaying an old token cannot bypass the cache. Entries are keyed by
//! leaderboard version too, so after a switch the old version's top is never served as the new
//! one's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::future::Cache;
use serde_json::json;
use surge_http::ApiError;
use surge_schemas::Position;

use super::QueryState;
use super::caching::etag_of;
use super::consistency::{read_store, store_unavailable};
use super::databases::Database;
use super::sources::Version;
use super::watcher::applied;
use crate::catalog::ProjectionId;
use crate::leaderboard::{Entry, Period, top};
use crate::positions::Positions;

/// A top slice with its anonymous answer rendered once, since most readers get exactly that.
pub(crate) struct Top {
    pub entries: Vec<Entry>,
    pub anonymous_body: String,
    pub anonymous_etag: String,
    /// Positions the leaderboard had applied before this top was read: every event they
    /// include is in it.
    reflects: Arc<Positions>,
    /// When its read began: it holds every change announced before.
    read_at: Instant,
}

impl Top {
    fn new(
        period: Period,
        entries: Vec<Entry>,
        reflects: Arc<Positions>,
        read_at: Instant,
    ) -> Self {
        let anonymous_body = json!({ "period": period.suffix(), "entries": entries }).to_string();
        let anonymous_etag = etag_of(anonymous_body.as_bytes());
        Top {
            entries,
            anonymous_body,
            anonymous_etag,
            reflects,
            read_at,
        }
    }

    fn satisfies(&self, needs: &Needs) -> bool {
        match needs {
            Needs::Cached => true,
            Needs::Covers(position) => applied(&self.reflects, position.partition, position.offset),
            Needs::ReadSince(at) => self.read_at >= *at,
        }
    }
}

/// What a cached top must hold to be served.
pub(crate) enum Needs<'a> {
    /// Whatever is cached (at most the TTL old).
    Cached,
    /// The write a consistency token names.
    Covers(&'a Position),
    /// Every change announced before this instant: its read began no earlier.
    ReadSince(Instant),
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

    /// The best `limit` of `period` in `board` (one leaderboard version), from memory unless
    /// the cached entry does not hold what `needs` asks (or nothing is cached).
    pub(crate) async fn top(
        &self,
        state: &QueryState,
        board: &Version,
        period: Period,
        limit: usize,
        needs: Needs<'_>,
    ) -> Result<Arc<Top>, ApiError> {
        let read = async {
            // Taken before the read, so the read holds at least what they name.
            let reflects = board.watcher(Database::Primary).confirmed();
            let read_at = Instant::now();
            let mut redis = state.redis.clone();
            read_store(
                state,
                ProjectionId::Leaderboard,
                top(&mut redis, state.leaderboard(board), period, limit),
            )
            .await
            .map(|entries| Arc::new(Top::new(period, entries, reflects, read_at)))
        };
        let Some(cache) = &self.cache else {
            return read.await;
        };
        let key = key(board.number, period, limit);
        if let Some(cached) = cache.get(&key).await
            && cached.satisfies(&needs)
        {
            return Ok(cached);
        }
        match needs {
            Needs::Cached => {}
            // Many streams wake on one notice: dropping the stale entry lets them share one
            // read instead of each running its own.
            Needs::ReadSince(_) => cache.invalidate(&key).await,
            Needs::Covers(_) => {
                let fresh = read.await?;
                cache.insert(key, fresh.clone()).await;
                return Ok(fresh);
            }
        }
        cache
            .try_get_with(key, read)
            .await
            .map_err(|_| store_unavailable())
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

    #[test]
    fn a_top_covers_only_the_writes_its_positions_include_and_changes_announced_before_its_read() {
        let period = Period::containing(PeriodKind::Daily, 1_700_000_000_000).unwrap();
        let read_at = Instant::now();
        let top = Top::new(period, vec![], Arc::new([(3, 10)].into()), read_at);
        let at = |partition, offset| Position {
            topic: "events".into(),
            partition,
            offset,
        };
        assert!(top.satisfies(&Needs::Covers(&at(3, 9))));
        assert!(
            !top.satisfies(&Needs::Covers(&at(3, 10))),
            "10 is the next offset to apply"
        );
        assert!(
            !top.satisfies(&Needs::Covers(&at(4, 0))),
            "nothing known of partition 4"
        );
        assert!(top.satisfies(&Needs::Cached));
        assert!(top.satisfies(&Needs::ReadSince(read_at)));
        assert!(
            !top.satisfies(&Needs::ReadSince(read_at + Duration::from_millis(1))),
            "a change announced after the read began may be missing"
        );
    }
}
