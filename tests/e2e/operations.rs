//! Health, metrics and logs as an operator sees them.

use serde_json::{Value, json};

use crate::helpers::{BOT_TOKEN, json as body, spawn_app};

#[tokio::test]
async fn health_metrics_and_logs() {
    let app = spawn_app().await;
    let live = app.request("GET", "/health/live").send().await.unwrap();
    assert_eq!(live.status(), 200);
    let ready = app.request("GET", "/health/ready").send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let checks = body(ready).await["checks"].clone();
    assert_eq!(
        checks,
        json!({ "kafka": "up", "schema_registry": "up", "redis": "up" })
    );

    assert_eq!(
        app.write("POST", "/v1/taps", 3, json!({ "count": 2 }))
            .await
            .status(),
        202
    );
    assert_eq!(
        app.write("POST", "/v1/taps", 3, json!({ "count": 0 }))
            .await
            .status(),
        422
    );
    let metrics = app.metrics().await;
    for line in [
        r#"write_api_requests_total{route="/v1/taps",status="202"} 1"#,
        r#"write_api_requests_total{route="/v1/taps",status="422"} 1"#,
        r#"write_api_events_produced_total{event_type="TapsSubmitted"} 1"#,
        "write_api_request_duration_seconds_bucket",
        "write_api_producer_queue_depth",
        r#"write_api_refusals_total{code="invalid_field",route="/v1/taps"} 1"#,
    ] {
        assert!(metrics.contains(line), "missing {line} in\n{metrics}");
    }
    // Metrics are on the admin address only: the public port does not serve them.
    assert_ne!(app.admin_url, app.url);
    let public = app.request("GET", "/metrics").send().await.unwrap();
    assert_eq!(public.status(), 404);
    assert_eq!(body(public).await["error"]["code"], "not_found");

    let logs = app.logs();
    assert!(
        !logs.contains(BOT_TOKEN),
        "the bot token leaked into the logs"
    );
    assert!(
        !logs.contains(BOT_TOKEN.split(':').nth(1).unwrap()),
        "the token's secret part leaked"
    );
    for line in logs.lines() {
        assert!(
            serde_json::from_str::<Value>(line).is_ok(),
            "not a JSON log line: {line}"
        );
    }
}

#[tokio::test]
async fn unknown_routes_are_json_404() {
    let app = spawn_app().await;
    let response = app.request("GET", "/v1/nope").send().await.unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(body(response).await["error"]["code"], "not_found");
}
