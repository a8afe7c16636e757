//! Following `surge replay`'s switches: the router built once serves the new active version of a
//! projection within the poll interval, with no failed or empty read around the switch, and never
//! reads a version other than the one it confirmed. The switch is made as replay makes it (one
//! transaction or one Redis write moving the `active` mark), without any processor running.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::Value;
use surge_schemas::Position;

use super::helpers::{PARTITIONS, Stores, TOPIC, get, named_profile, until};
use crate::leaderboard::Board;
use crate::naming;
use crate::partitioning::partition_of_user;
use crate::profiles::{self, ProfileStore};
use crate::table_prefix::render;
use crate::versions::{self, VersionRegistry};
use crate::wallets;

const USER: i64 = 7_000_000_001;
/// How long a switch may take to show: the 100 ms poll, with room for a loaded machine.
const SWITCH_DEADLINE: Duration = Duration::from_secs(10);

/// Profiles v1 (active) and v2 (building), each holding `USER` under another display name, and
/// wallets v1 (its registry left empty: served at version 1).
async fn two_profile_versions(stores: &Stores) {
    let mut conn = stores.pool.acquire().await.unwrap();
    versions::migrate(&mut conn).await.unwrap();
    for (version, name) in [(1, "Version One"), (2, "Version Two")] {
        let prefix = naming::table_prefix("profiles", version);
        stores
            .execute(&render(profiles::MIGRATIONS[0], &prefix))
            .await;
        ProfileStore::new(&prefix)
            .upsert(&mut conn, &[named_profile(USER, name)])
            .await
            .unwrap();
    }
    for ddl in wallets::MIGRATIONS {
        stores
            .execute(&render(ddl, &naming::table_prefix("wallets", 1)))
            .await;
    }
    let registry = VersionRegistry::postgres(stores.pool.clone(), "profiles");
    registry.ensure_active(1).await.unwrap();
    let building = registry.create_building(1, None).await.unwrap();
    assert_eq!(building.version, 2);
}

/// Moves `active` from profiles v1 to v2 with the switch itself (no positions: nothing to
/// catch up on).
async fn switch_profiles(stores: &Stores) {
    let frozen = versions::freeze_postgres(&stores.pool, "profiles", "t", 1, 2)
        .await
        .unwrap();
    assert_eq!(frozen.switch().await.unwrap(), versions::Switch::Done);
}

/// The display name `/v1/me` shows, failing on anything but a 200 with a profile.
async fn me_name(app: &axum::Router, token: Option<&str>) -> String {
    let (status, body) = get(app, "/v1/me", Some(USER), token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["profile"]["display_name"]
        .as_str()
        .unwrap_or_else(|| panic!("a read without the profile: {body}"))
        .to_owned()
}

#[tokio::test]
async fn get_me_follows_a_switch_of_the_active_profiles_version() {
    let stores = Stores::new().await;
    two_profile_versions(&stores).await;
    let app = stores.app(|_| {});
    assert_eq!(me_name(&app, None).await, "Version One");

    switch_profiles(&stores).await;
    let switched = Instant::now();
    let mut reads = 0;
    until("/v1/me shows profiles v2", SWITCH_DEADLINE, || {
        reads += 1;
        let app = &app;
        async move {
            // Every read around the switch succeeds and shows one of the two versions.
            let name = me_name(app, None).await;
            assert!(name == "Version One" || name == "Version Two", "{name}");
            (name == "Version Two").then_some(())
        }
    })
    .await;
    println!(
        "the switch showed after {:?} ({reads} reads)",
        switched.elapsed()
    );
    let (_, metrics) = get(&app, "/admin/metrics", None, None).await;
    let metrics = metrics.as_str().unwrap_or_default();
    assert!(
        metrics.contains("query_api_projection_version{projection=\"profiles\"} 2")
            && metrics.contains("query_api_projection_version{projection=\"wallets\"} 1"),
        "the gauge shows the served versions:\n{metrics}"
    );
}

#[tokio::test]
async fn a_query_api_started_after_a_switch_never_reads_the_old_version() {
    let stores = Stores::new().await;
    two_profile_versions(&stores).await;
    switch_profiles(&stores).await;
    // The first read waits for the first poll rather than guessing version 1.
    let app = stores.app(|_| {});
    assert_eq!(me_name(&app, None).await, "Version Two");
}

#[tokio::test]
async fn a_consistency_wait_moves_to_the_version_switched_to() {
    let stores = Stores::new().await;
    two_profile_versions(&stores).await;
    // Profiles v1 stopped at offset 5 of partition 0 (a switched-away version is fenced and
    // never gets further); v2 and wallets v1 are past the token's offset 7.
    stores
        .execute(
            "INSERT INTO projection_positions (projection, version, topic, partition, next_offset) VALUES \
             ('profiles', 1, 'versions-test.events', 0, 5), \
             ('profiles', 2, 'versions-test.events', 0, 10), \
             ('wallets', 1, 'versions-test.events', 0, 10)",
        )
        .await;
    let app = stores.app(|config| config.consistency_wait = Duration::from_secs(30));
    assert_eq!(me_name(&app, None).await, "Version One");
    let token = super::helpers::token_keys().sign(&Position {
        topic: TOPIC.into(),
        partition: 0,
        offset: 7,
    });
    // This test's runtime has one thread: the request runs up to its wait on v1's watcher
    // before the switch below gets past its first await, and v1 cannot apply offset 7, so
    // only following the switch answers it (else a 504 after 30 s).
    let read = tokio::spawn({
        let app = app.clone();
        async move { me_name(&app, Some(&token)).await }
    });
    switch_profiles(&stores).await;
    assert_eq!(read.await.unwrap(), "Version Two");
}

#[tokio::test]
async fn the_cached_leaderboard_top_follows_a_switch() {
    let stores = Stores::new().await;
    let mut redis = stores.redis.clone();
    let registry = VersionRegistry::redis(redis.clone(), &stores.id, "leaderboard");
    let v1 = registry.ensure_active(1).await.unwrap();
    let v2 = registry.create_building(1, None).await.unwrap();
    for (version, leader) in [(1, 11), (2, 22)] {
        let base = naming::keys_base(&stores.id, "leaderboard", version);
        let board = Board {
            base: &base,
            partitions: PARTITIONS,
        };
        let partition = partition_of_user(leader, PARTITIONS);
        let () = redis::pipe()
            .zadd(board.key("all", partition), leader, 100)
            .hset(
                board.key("names", partition),
                leader,
                format!("leader of v{version}"),
            )
            .query_async(&mut redis)
            .await
            .unwrap();
    }
    // An hour: only a cache keyed by version can show the switch in time.
    let app = stores.app(|config| config.leaderboard_cache = Duration::from_secs(3600));
    let leader = |body: &Value| body["entries"][0]["user_id"].as_i64();
    let (status, body) = get(&app, "/v1/leaderboard/all", None, None).await;
    assert_eq!(
        (status, leader(&body)),
        (StatusCode::OK, Some(11)),
        "{body}"
    );

    // The switch script moves both marks at once (no positions: nothing to catch up on).
    let frozen = versions::freeze_redis(
        &redis,
        &stores.id,
        "leaderboard",
        "t",
        PARTITIONS,
        v1.version,
        v2.version,
    )
    .await
    .unwrap();
    assert_eq!(frozen.switch().await.unwrap(), versions::Switch::Done);
    until("the leaderboard shows v2's top", SWITCH_DEADLINE, || {
        let app = &app;
        async move {
            let (status, body) = get(app, "/v1/leaderboard/all", None, None).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let leader = leader(&body);
            assert!(matches!(leader, Some(11 | 22)), "{body}");
            (leader == Some(22)).then_some(())
        }
    })
    .await;
}
