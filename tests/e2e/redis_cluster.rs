//! The write API on a Redis Cluster (`SURGE_REDIS_CLUSTER_URLS`, `scripts/services.sh
//! --redis-cluster`): idempotency and tap energy keep their rules with every user's keys in one
//! slot, on each of the three masters; the roles whose keys are not laid out for a cluster
//! refuse it at start, saying so. Payments on the cluster: `payments.rs`.

use serde_json::{Value, json};
use surge_redis::Redis;

use crate::helpers::{Options, TestApp, init_data, json as body, spawn_app_with, start};

/// Users whose keys live on each of the three masters (slots 1584, 5649 and 14039 of
/// 0-5460, 5461-10922 and 10923-16383).
const USERS: [i64; 3] = [3, 2, 4];

fn on_cluster(mut env: Vec<(&'static str, String)>) -> Options {
    env.push((
        "SURGE_REDIS_CLUSTER_URLS",
        surge_testkit::redis_cluster_urls(),
    ));
    // Nothing listens there: the write API must not need the single Redis.
    env.push(("SURGE_REDIS_URL", "redis://127.0.0.1:1".to_owned()));
    Options {
        env,
        ..Options::default()
    }
}

async fn tap(app: &TestApp, user: i64, key: &str, count: i64) -> reqwest::Response {
    app.request("POST", "/v1/taps")
        .header("authorization", format!("tma {}", init_data(user)))
        .header("idempotency-key", key)
        .json(&json!({ "count": count }))
        .send()
        .await
        .expect("the write API answers")
}

async fn slot_of(redis: &Redis, key: &str) -> i64 {
    redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(key)
        .query_async(&mut redis.clone())
        .await
        .unwrap()
}

#[tokio::test]
async fn the_write_api_on_redis_cluster_keeps_idempotency_and_energy_per_user_in_one_slot() {
    let app = spawn_app_with(on_cluster(vec![
        ("SURGE_TAP_ENERGY_CAPACITY", "10".into()),
        ("SURGE_TAP_ENERGY_REFILL_PER_SEC", "1".into()),
    ]))
    .await;
    for user in USERS {
        let first = tap(&app, user, "k1", 6).await;
        assert_eq!(first.status(), 202, "user {user}");
        let first: Value = body(first).await;
        let retry = tap(&app, user, "k1", 6).await;
        assert_eq!(retry.status(), 202);
        assert_eq!(retry.headers()["idempotent-replayed"], "true");
        assert_eq!(body(retry).await, first, "the retry answers the same");
        let reused = tap(&app, user, "k1", 7).await;
        assert_eq!(reused.status(), 422);
        let over = tap(&app, user, "k2", 6).await;
        assert_eq!(over.status(), 429, "6 taps of a bar holding about 4");
        assert_eq!(body(over).await["error"]["code"], "out_of_energy");
    }
    assert_eq!(
        app.record_count(),
        USERS.len() as i64,
        "one event per user: retries and refusals appended nothing"
    );

    let redis = surge_testkit::redis_cluster().await;
    let masters = USERS.len();
    let mut slots = Vec::new();
    for user in USERS {
        let energy = format!("{}:energy:{{{user}}}", app.id);
        let record = format!("{}:idem:{{{user}}}:k1", app.id);
        let exists: (bool, bool) = (
            redis::cmd("EXISTS")
                .arg(&energy)
                .query_async(&mut redis.clone())
                .await
                .unwrap(),
            redis::cmd("EXISTS")
                .arg(&record)
                .query_async(&mut redis.clone())
                .await
                .unwrap(),
        );
        assert_eq!(exists, (true, true), "user {user}'s bar and record");
        let slot = slot_of(&redis, &energy).await;
        assert_eq!(slot, slot_of(&redis, &record).await);
        slots.push(slot / 5461);
    }
    slots.dedup();
    assert_eq!(
        slots.len(),
        masters,
        "the users' keys are spread over the masters"
    );
    surge_testkit::delete_keys(&mut redis.clone(), &app.id)
        .await
        .unwrap();
}

#[tokio::test]
async fn the_processors_and_the_query_api_refuse_to_start_on_redis_cluster_saying_why() {
    for role in ["process", "query-api"] {
        let id = crate::helpers::unique_id();
        let options = Options {
            role: Some(role),
            ..on_cluster(Vec::new())
        };
        let logs = match start(&id, options) {
            Ok(_) => panic!("surge {role} started on a Redis Cluster"),
            Err(logs) => logs,
        };
        assert!(
            logs.contains("only the write API runs on a Redis Cluster"),
            "surge {role}:\n{logs}"
        );
    }
}
