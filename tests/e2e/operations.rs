//! Health, metrics and logs as an operator sees them.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{BOT_TOKEN, init_data, json as body, spawn_app};

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

/// Every metric the Grafana dashboard and the Prometheus alert rules (`ops/`) read is one the
/// roles export: scraped from a running write API, processor and query API after real traffic,
/// or, for those that only appear once something rare happens (a Telegram 429, a failed
/// message), registered under that name in the sources. A renamed metric fails here instead of
/// leaving a panel empty or an alert silent.
#[tokio::test]
async fn the_dashboard_and_alerts_read_only_metrics_the_roles_export() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let ops = [
        "ops/prometheus/alerts.yml",
        "ops/grafana/dashboards/surge.json",
    ]
    .map(|file| std::fs::read_to_string(root.join(file)).unwrap())
    .join("\n");
    let used = metric_names(&ops);
    assert!(used.len() > 20, "{used:?}");

    let stack = crate::query::stack(true, vec![]).await;
    let token = crate::query::write(&stack, "POST", "/v1/taps", 7, json!({ "count": 3 })).await;
    let refused = stack
        .writer
        .write("POST", "/v1/taps", 7, json!({ "count": 0 }))
        .await;
    assert_eq!(refused.status(), 422);
    let read = stack
        .query
        .request("GET", "/v1/me")
        .header("authorization", format!("tma {}", init_data(7)))
        .header("x-consistency-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    let anonymous = stack.query.request("GET", "/v1/me").send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let processor = stack.processor.as_ref().unwrap();
    // These must be live: the ones every panel row and the paging alerts start from.
    let live = [
        "write_api_requests_total",
        "write_api_refusals_total",
        "write_api_request_duration_seconds_bucket",
        "processor_events_applied_total",
        "processor_consumer_lag",
        "processor_partition_stalled",
        "processor_dead_letters_total",
        "query_api_requests_total",
        "query_api_consistency_waits_total",
        "query_api_projection_version",
        "query_api_live_streams",
    ];
    let started = std::time::Instant::now();
    let scraped = loop {
        let scraped = [
            stack.writer.metrics().await,
            processor.metrics().await,
            stack.query.metrics().await,
        ]
        .join("\n");
        // The consumer's lag comes with librdkafka's statistics, every 5 s.
        if live.iter().all(|name| scraped.contains(name))
            || started.elapsed() > Duration::from_secs(60)
        {
            break scraped;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    for name in live {
        assert!(scraped.contains(name), "{name} is not exported:\n{scraped}");
    }
    let sources = rust_sources(root);
    for name in &used {
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(name);
        assert!(
            scraped.contains(&format!("# TYPE {base} "))
                || sources.contains(&format!("\"{base}\"")),
            "ops/ reads {name}, which no role exports"
        );
    }
}

/// The metric names an expression text mentions: Surge's own prefixes.
fn metric_names(text: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    for prefix in ["write_api_", "query_api_", "processor_", "notifier_"] {
        for (at, _) in text.match_indices(prefix) {
            let preceded = text[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
            if preceded {
                continue;
            }
            let name: String = text[at..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            names.insert(name);
        }
    }
    names
}

/// Every `.rs` file of the workspace's source folders, concatenated.
fn rust_sources(root: &std::path::Path) -> String {
    let mut text = String::new();
    let mut folders: Vec<std::path::PathBuf> = [
        "src",
        "producers/src",
        "processors/src",
        "projections/src",
        "shared",
    ]
    .iter()
    .map(|f| root.join(f))
    .collect();
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                text.push_str(&std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    text
}
