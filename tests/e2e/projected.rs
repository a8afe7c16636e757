//! What the projections hold, read straight from their stores at each projection's *active*
//! version (as the query API serves it): waiting until they have caught up with the topic, and
//! comparing them with an independent fold.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use sqlx::Row;
use surge_projections::feed::Feeds;
use surge_projections::leaderboard::{self, Board, Period};
use surge_projections::positions::PositionSource;
use surge_projections::versions::VersionRegistry;
use surge_projections::{ProjectionId, StoreKind, naming};
use surge_redis::Redis;

use crate::fold::UserFold;
use crate::helpers::{PARTITIONS, TestApp, pg_pool};

const DEADLINE: Duration = Duration::from_secs(120);

/// A connection to the test Redis.
pub async fn redis_conn() -> redis::aio::MultiplexedConnection {
    redis::Client::open(surge_testkit::redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// The Redis `app`'s projections live in and the prefix of their keys: the test Redis, or the
/// test Redis Cluster.
pub async fn projections_redis(app: &TestApp) -> (Redis, String) {
    let redis = if app.redis_cluster {
        surge_testkit::redis_cluster().await
    } else {
        surge_testkit::redis().await
    };
    (redis, app.id.clone())
}

/// The active version of `projection` (1 before any processor registered one).
pub async fn active_version(app: &TestApp, projection: &'static str) -> u32 {
    let store = ProjectionId::named(projection).map(ProjectionId::store);
    let registry = if store == Some(StoreKind::Redis) {
        let (redis, prefix) = projections_redis(app).await;
        VersionRegistry::redis(redis, &prefix, projection)
    } else {
        VersionRegistry::postgres(pg_pool(&app.id).await, projection)
    };
    registry
        .active()
        .await
        .unwrap()
        .map_or(1, |active| active.version)
}

/// Waits until every projection's active version reached the end of every partition.
pub async fn wait_caught_up(app: &TestApp, processors: &[&TestApp]) {
    let pool = pg_pool(&app.id).await;
    let (redis, prefix) = projections_redis(app).await;
    let started = Instant::now();
    loop {
        // Re-read the ends each time: the referrals deriver appends while it catches up, and
        // once it is caught up every event it derived is already in the topic.
        let ends = app.end_offsets();
        let mut behind = Vec::new();
        for id in ProjectionId::ALL {
            let name = id.name();
            let version = active_version(app, name).await;
            let topic = app.topic.clone();
            let source = match id.store() {
                StoreKind::Postgres => PositionSource::Postgres {
                    pool: pool.clone(),
                    projection: name,
                    version,
                    topic,
                },
                StoreKind::Redis => PositionSource::Redis {
                    redis: redis.clone(),
                    keys_base: naming::keys_base(&prefix, name, version),
                    topic,
                    partitions: PARTITIONS,
                },
            };
            let done = source.read().await.unwrap_or_default();
            for (p, end) in ends.iter().enumerate() {
                if *end > 0 && done.get(&(p as i32)).copied().unwrap_or(0) < *end {
                    behind.push(format!("{}/{p}", naming::processor_id(name, version)));
                }
            }
        }
        if behind.is_empty() {
            return;
        }
        if started.elapsed() > DEADLINE {
            let logs: Vec<String> = processors.iter().map(|p| p.logs()).collect();
            panic!(
                "projections still behind: {behind:?}\nprocessor logs:\n{}",
                logs.join("\n---\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every projection's active version equals the fold: balances, ledger counts, streaks,
/// sessions, leaderboard, feed.
pub async fn assert_projections_equal_fold(app: &TestApp, expected: &BTreeMap<i64, UserFold>) {
    let pool = pg_pool(&app.id).await;
    let (mut redis, prefix) = projections_redis(app).await;
    let wallets_v = active_version(app, "wallets").await;
    let profiles_v = active_version(app, "profiles").await;
    let leaderboard_v = active_version(app, "leaderboard").await;
    let feed_v = active_version(app, "feed").await;
    let wallets_t = naming::table_prefix("wallets", wallets_v);
    let wallets: BTreeMap<i64, (i64, i64)> = sqlx::query(&format!(
        "SELECT user_id, balance, entries FROM {wallets_t}_balances"
    ))
    .fetch_all(&pool)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get("user_id"), (r.get("balance"), r.get("entries"))))
    .collect();
    let ledger_sums: BTreeMap<i64, (i64, i64)> = sqlx::query(&format!(
        "SELECT user_id, sum(amount)::bigint AS s, count(*) AS c FROM {wallets_t}_ledger GROUP BY user_id"
    ))
    .fetch_all(&pool)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get("user_id"), (r.get("s"), r.get("c"))))
    .collect();
    let profiles: BTreeMap<i64, (i64, i32, i32)> = sqlx::query(&format!(
        "SELECT user_id, sessions_count, streak_current, streak_best FROM {}_users",
        naming::table_prefix("profiles", profiles_v)
    ))
    .fetch_all(&pool)
    .await
    .unwrap()
    .iter()
    .map(|r| {
        (
            r.get("user_id"),
            (
                r.get("sessions_count"),
                r.get("streak_current"),
                r.get("streak_best"),
            ),
        )
    })
    .collect();
    let base = naming::keys_base(&prefix, "leaderboard", leaderboard_v);
    let board = Board {
        base: &base,
        partitions: PARTITIONS,
    };
    let scores = leaderboard::scores(&redis, board, Period::AllTime)
        .await
        .unwrap();

    let expected_wallets: BTreeMap<i64, (i64, i64)> = expected
        .iter()
        .filter(|(_, u)| u.ledger_entries > 0)
        .map(|(id, u)| (*id, (u.balance, u.ledger_entries)))
        .collect();
    assert_eq!(
        wallets, expected_wallets,
        "wallet balances and entry counts (wallets v{wallets_v})"
    );
    assert_eq!(
        ledger_sums, expected_wallets,
        "every balance equals the sum of its ledger"
    );
    let expected_scores: BTreeMap<i64, i64> = expected_wallets
        .iter()
        .map(|(id, (b, _))| (*id, *b))
        .collect();
    assert_eq!(
        scores, expected_scores,
        "all-time leaderboard scores (leaderboard v{leaderboard_v})"
    );
    let expected_profiles: BTreeMap<i64, (i64, i32, i32)> = expected
        .iter()
        .map(|(id, u)| (*id, (u.sessions, u.streak.current, u.streak.best)))
        .collect();
    assert_eq!(
        profiles, expected_profiles,
        "sessions and streaks (profiles v{profiles_v})"
    );
    let feed_base = naming::keys_base(&prefix, "feed", feed_v);
    let feeds = Feeds {
        base: &feed_base,
        partitions: PARTITIONS,
    };
    for (user, fold) in expected {
        let items: Vec<String> = redis::cmd("LRANGE")
            .arg(feeds.key(*user))
            .arg(0)
            .arg(-1)
            .query_async(&mut redis)
            .await
            .unwrap();
        let ids: Vec<String> = items
            .iter()
            .map(|i| {
                serde_json::from_str::<serde_json::Value>(i).unwrap()["event_id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(ids, fold.feed, "feed of user {user} (feed v{feed_v})");
    }
}
