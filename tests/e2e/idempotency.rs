//! `Idempotency-Key`: a retry returns the first response and appends nothing.

use serde_json::json;

use crate::helpers::{Options, TestApp, init_data, json, spawn_app, started};

#[tokio::test]
async fn a_retry_with_the_same_key_appends_nothing_and_answers_the_same() {
    let app = spawn_app().await;
    let send = |key: &'static str, user: i64, count: i64| {
        app.request("POST", "/v1/taps")
            .header("authorization", format!("tma {}", init_data(user)))
            .header("idempotency-key", key)
            .json(&json!({ "count": count }))
            .send()
    };
    let first = send("key-1", 1, 5).await.unwrap();
    assert_eq!(first.status(), 202);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first = json(first).await;

    let retry = send("key-1", 1, 5).await.unwrap();
    assert_eq!(retry.status(), 202);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(json(retry).await, first, "the same response");
    assert_eq!(app.record_count(), 1, "the retry appended nothing");

    let reused = send("key-1", 1, 6).await.unwrap();
    assert_eq!(reused.status(), 422);
    assert_eq!(
        json(reused).await["error"]["code"],
        "idempotency_key_reused"
    );

    let other_user = send("key-1", 2, 5).await.unwrap();
    assert_eq!(other_user.status(), 202, "keys are scoped to their user");
    assert_eq!(app.record_count(), 2);

    // A key that looks like another key's lock does not block that key.
    assert_eq!(send("abc:lock", 1, 1).await.unwrap().status(), 202);
    let abc = send("abc", 1, 1).await.unwrap();
    assert_eq!(abc.status(), 202, "{:?}", json(abc).await);
    assert_eq!(app.record_count(), 4);
}

#[tokio::test]
async fn concurrent_duplicates_make_one_event() {
    let app = spawn_app().await;
    let attempts = (0..8).map(|_| {
        app.request("POST", "/v1/checkins")
            .header("authorization", format!("tma {}", init_data(9)))
            .header("idempotency-key", "same-moment")
            .json(&json!({}))
            .send()
    });
    let statuses: Vec<u16> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.unwrap().status().as_u16())
        .collect();
    assert!(
        statuses.iter().all(|s| *s == 202 || *s == 409),
        "{statuses:?}"
    );
    assert!(statuses.contains(&202));
    assert_eq!(app.record_count(), 1);
}

/// `SURGE_IDEMPOTENCY_REPLICAS=1` on the single test Redis, which has no replica: the write API
/// says so at start, refuses keyed writes with a code that names the reason and writes
/// nothing for them, and takes writes without a key.
#[tokio::test]
async fn keyed_writes_that_wait_for_a_replica_redis_lacks_are_refused_and_the_start_warns() {
    let app = crate::helpers::spawn_app_with(crate::helpers::Options {
        env: vec![
            ("SURGE_IDEMPOTENCY_REPLICAS", "1".into()),
            ("SURGE_IDEMPOTENCY_REPLICA_WAIT_MS", "50".into()),
        ],
        ..Default::default()
    })
    .await;
    assert!(
        app.logs()
            .contains("fewer replicas than SURGE_IDEMPOTENCY_REPLICAS"),
        "{}",
        app.logs()
    );
    let keyed = app
        .request("POST", "/v1/taps")
        .header("authorization", format!("tma {}", init_data(5)))
        .header("idempotency-key", "k")
        .json(&json!({ "count": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(keyed.status(), 503);
    assert!(keyed.headers().contains_key("retry-after"));
    let refused = json(keyed).await;
    assert_eq!(refused["error"]["code"], "idempotency_not_replicated");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("reached 0 of the 1 Redis replicas"),
        "{refused}"
    );
    let unkeyed = app
        .write("POST", "/v1/taps", 5, json!({ "count": 1 }))
        .await;
    assert_eq!(unkeyed.status(), 202);
    assert_eq!(app.record_count(), 1, "the refused write appended nothing");
}

#[tokio::test]
async fn a_replica_wait_longer_than_half_the_redis_timeout_is_refused_at_start() {
    let options = crate::helpers::Options {
        env: vec![
            ("SURGE_IDEMPOTENCY_REPLICAS", "1".into()),
            ("SURGE_IDEMPOTENCY_REPLICA_WAIT_MS", "1500".into()),
        ],
        ..Default::default()
    };
    let logs = match crate::helpers::start(&crate::helpers::unique_id(), options) {
        Ok(_) => panic!("the write API started with a wait past its Redis client's timeout"),
        Err(logs) => logs,
    };
    assert!(
        logs.contains("SURGE_IDEMPOTENCY_REPLICA_WAIT_MS is 1500 ms; it must be at most 1000 ms"),
        "{logs}"
    );
}

/// On the embedded mock cluster (no `SURGE_KAFKA_BROKERS`) the event log starts empty on every
/// run, so a key sent again after a restart is a new write: answering it with the first run's
/// event would acknowledge an event that is gone, whose token no read could ever satisfy.
#[tokio::test]
async fn on_an_embedded_log_a_key_from_an_earlier_run_is_a_new_write() {
    let id = crate::helpers::unique_id();
    let run = || {
        started(
            &id,
            Options {
                brokers: Some(String::new()),
                ..Options::default()
            },
        )
    };
    let tap = |app: &TestApp| {
        app.request("POST", "/v1/taps")
            .header("authorization", format!("tma {}", init_data(5)))
            .header("idempotency-key", "the-readme-key")
            .json(&json!({ "count": 1 }))
            .send()
    };
    let first = run();
    let before = json(tap(&first).await.unwrap()).await;
    let again = tap(&first).await.unwrap();
    assert!(again.headers().get("idempotent-replayed").is_some());
    first.kill();
    let second = run();
    let after = tap(&second).await.unwrap();
    assert_eq!(after.status(), 202);
    assert!(after.headers().get("idempotent-replayed").is_none());
    assert_ne!(json(after).await["event_id"], before["event_id"]);
}
