//! The tap economy: taps spend a per-user energy bar kept in Redis, shared by every write-API
//! instance; over it a request gets 429 and appends nothing; without Redis no taps are accepted.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{Options, TestApp, init_data, json, spawn_app, spawn_app_with, started};
use crate::proxy::write_api_behind_redis_proxy;

/// A small, slow bar: 10 taps, one more per second.
fn small_bar() -> Vec<(&'static str, String)> {
    vec![
        ("SURGE_TAP_ENERGY_CAPACITY", "10".into()),
        ("SURGE_TAP_ENERGY_REFILL_PER_SEC", "1".into()),
    ]
}

async fn taps(app: &TestApp, user: i64, count: i64) -> reqwest::Response {
    app.write("POST", "/v1/taps", user, json!({ "count": count }))
        .await
}

async fn code(response: reqwest::Response) -> String {
    let body: Value = json(response).await;
    body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn retry_after(response: &reqwest::Response) -> u64 {
    response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn batches_of_a_thousand_taps_cannot_exceed_the_default_capacity() {
    let app = spawn_app().await;
    let user = 4_000_000_001;
    let flood = json!({ "actions": vec![json!({ "type": "taps", "count": 1000 }); 100] });
    let over = app.write("POST", "/v1/batch", user, flood).await;
    assert_eq!(
        over.status(),
        422,
        "100,000 taps can never fit a bar of 1,000"
    );
    let body: Value = json(over).await;
    assert_eq!(body["error"]["code"], "invalid_field");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("actions:") && message.contains("1000"),
        "{message}"
    );

    // 40 batches at once, each a full bar: one is accepted, every other one refused whole (a
    // second full bar takes 333 s to refill at 3 taps a second).
    let full_bar = json!({ "actions": vec![json!({ "type": "taps", "count": 100 }); 10] });
    let attempts = (0..40).map(|_| app.write("POST", "/v1/batch", user, full_bar.clone()));
    let mut accepted = 0;
    for response in futures::future::join_all(attempts).await {
        match response.status().as_u16() {
            202 => {
                accepted += 1;
                let energy = json(response).await["energy"].clone();
                assert_eq!(energy["capacity"], 1000, "{energy}");
                assert_eq!(energy["refill_per_sec"], 3, "{energy}");
                assert!(energy["left"].as_u64().unwrap() < 100, "{energy}");
            }
            429 => {
                assert!(retry_after(&response) >= 1);
                let code = code(response).await;
                assert!(
                    ["out_of_energy", "rate_limited"].contains(&code.as_str()),
                    "{code}"
                );
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(accepted, 1);
    assert_eq!(
        app.record_count(),
        10,
        "only the accepted batch was appended"
    );
}

#[tokio::test]
async fn an_empty_bar_refills_at_its_rate() {
    let app = spawn_app_with(Options {
        env: small_bar(),
        ..Options::default()
    })
    .await;
    let user = 4_000_000_002;
    let drained = taps(&app, user, 10).await;
    assert_eq!(drained.status(), 202);
    let drained_at = Instant::now();
    assert_eq!(json(drained).await["energy"]["left"], 0);

    let refused = taps(&app, user, 5).await;
    assert_eq!(refused.status(), 429);
    let wait = retry_after(&refused);
    assert!((1..=5).contains(&wait), "5 taps at 1 per second: {wait}");
    assert_eq!(code(refused).await, "out_of_energy");

    // Wait on the condition: the same 5 taps are accepted once 5 s of refill are in.
    let deadline = drained_at + Duration::from_secs(60);
    loop {
        let response = taps(&app, user, 5).await;
        if response.status() == 202 {
            break;
        }
        assert_eq!(response.status(), 429);
        assert!(Instant::now() < deadline, "the bar never refilled");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        drained_at.elapsed() >= Duration::from_secs(4),
        "5 taps refilled after {:?}, faster than 1 per second",
        drained_at.elapsed()
    );
    assert_eq!(app.record_count(), 2, "refused attempts appended nothing");
}

#[tokio::test]
async fn two_write_api_instances_share_one_bar() {
    let first = spawn_app_with(Options {
        env: small_bar(),
        ..Options::default()
    })
    .await;
    let second = started(
        &first.id,
        Options {
            env: small_bar(),
            ..Options::default()
        },
    );
    let user = 4_000_000_003;
    assert_eq!(taps(&first, user, 8).await.status(), 202);
    let refused = taps(&second, user, 8).await;
    assert_eq!(
        refused.status(),
        429,
        "the second instance sees the spent bar"
    );
    assert_eq!(code(refused).await, "out_of_energy");
    assert_eq!(taps(&second, user, 2).await.status(), 202);
    assert_eq!(first.record_count(), 2);
}

#[tokio::test]
async fn a_retry_with_its_idempotency_key_does_not_pay_twice() {
    let app = spawn_app_with(Options {
        env: small_bar(),
        ..Options::default()
    })
    .await;
    let user = 4_000_000_004;
    let send = |count: i64| {
        app.request("POST", "/v1/taps")
            .header("authorization", format!("tma {}", init_data(user)))
            .header("idempotency-key", "six-taps")
            .json(&json!({ "count": count }))
            .send()
    };
    let first = send(6).await.unwrap();
    assert_eq!(first.status(), 202);
    let first: Value = json(first).await;
    assert_eq!(first["energy"]["left"], 4);
    let replay = send(6).await.unwrap();
    assert_eq!(replay.status(), 202);
    assert_eq!(
        json(replay).await,
        first,
        "the first answer, energy included"
    );
    // 4 left, not 10 - 12: the replay paid nothing, and 5 more do not fit.
    assert_eq!(taps(&app, user, 5).await.status(), 429);
    assert_eq!(taps(&app, user, 4).await.status(), 202);
    assert_eq!(app.record_count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_taps_are_refused_with_503_and_other_writes_go_on() {
    let (redis, app) = write_api_behind_redis_proxy(small_bar()).await;
    let user = 4_000_000_005;
    assert_eq!(taps(&app, user, 1).await.status(), 202);

    redis.cut();
    let started = Instant::now();
    let refused = taps(&app, user, 1).await;
    assert_eq!(
        refused.status(),
        503,
        "fail closed: no taps without the bar"
    );
    assert!(started.elapsed() < Duration::from_secs(5), "failed fast");
    assert_eq!(retry_after(&refused), 1);
    assert_eq!(code(refused).await, "energy_store_unavailable");
    let checkin = app.write("POST", "/v1/checkins", user, json!({})).await;
    assert_eq!(checkin.status(), 202, "writes without taps need no energy");
    assert_eq!(app.record_count(), 2);
}
