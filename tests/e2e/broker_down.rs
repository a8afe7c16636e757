//! With the broker down the API answers 503 with Retry-After within its timeout, never 202, and
//! sheds load past its in-flight bound. Uses librdkafka's mock cluster for fault injection.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{MockCluster, Options, init_data, json, mock_cluster, start, unique_id};

fn mock_options(cluster: &MockCluster, produce_timeout_ms: u64) -> Options {
    Options {
        brokers: Some(cluster.bootstrap_servers()),
        env: vec![
            ("SURGE_PRODUCE_TIMEOUT_MS", produce_timeout_ms.to_string()),
            ("SURGE_WRITE_MAX_IN_FLIGHT", "2".into()),
        ],
        ..Options::default()
    }
}

#[tokio::test]
async fn broker_down_gives_503_with_retry_after_never_202_then_recovers() {
    let id = unique_id();
    let cluster = mock_cluster(&id);
    let app = start(&id, mock_options(&cluster, 1500)).unwrap();
    assert_eq!(
        app.write("POST", "/v1/taps", 1, json!({ "count": 1 }))
            .await
            .status(),
        202
    );

    cluster.broker_down(1).unwrap();
    let started = Instant::now();
    let response = app
        .write("POST", "/v1/taps", 1, json!({ "count": 2 }))
        .await;
    let waited = started.elapsed();
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(json(response).await["error"]["code"], "broker_unavailable");
    // Bounded by the produce timeout (1.5 s) plus slack, never a hang. Not a speed assertion.
    assert!(waited < Duration::from_secs(10), "{waited:?}");

    let ready = app.request("GET", "/health/ready").send().await.unwrap();
    assert_eq!(ready.status(), 503);
    assert_eq!(json(ready).await["checks"]["kafka"], "down");

    cluster.broker_up(1).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let response = app
            .write("POST", "/v1/taps", 1, json!({ "count": 3 }))
            .await;
        match response.status().as_u16() {
            202 => break,
            503 => assert!(Instant::now() < deadline, "never recovered: {}", app.logs()),
            other => panic!("unexpected {other}"),
        }
    }
}

#[tokio::test]
async fn past_its_in_flight_bound_the_api_sheds_load_with_503() {
    let id = unique_id();
    let cluster = mock_cluster(&id);
    // A long produce timeout keeps the first requests in flight while the probe arrives.
    let app = start(&id, mock_options(&cluster, 4000)).unwrap();
    assert_eq!(
        app.write("POST", "/v1/taps", 1, json!({ "count": 1 }))
            .await
            .status(),
        202
    );
    cluster.broker_down(1).unwrap();
    // Two requests hold both in-flight slots while the broker is down; more must be shed at once.
    let stuck: Vec<_> = (0..2)
        .map(|i| {
            let request = app
                .request("POST", "/v1/taps")
                .header("authorization", format!("tma {}", init_data(100 + i)))
                .json(&json!({ "count": 1 }));
            tokio::spawn(request.send())
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while in_flight(&app).await < 2 {
        assert!(
            Instant::now() < deadline,
            "the first requests never got in flight"
        );
    }
    let response = app
        .write("POST", "/v1/taps", 200, json!({ "count": 1 }))
        .await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(json(response).await["error"]["code"], "overloaded");
    for handle in stuck {
        assert_eq!(handle.await.unwrap().unwrap().status(), 503);
    }
}

async fn in_flight(app: &crate::helpers::TestApp) -> i64 {
    let metrics = app.metrics().await;
    let line = metrics
        .lines()
        .find(|l| l.starts_with("write_api_requests_in_flight "))
        .expect("gauge");
    line.rsplit(' ').next().unwrap().parse().unwrap()
}
