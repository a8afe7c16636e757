//! `surge loadgen` against a real stack: its report accounts for every request, and every write
//! it saw accepted is in the topic (no acknowledged write lost under load).

use std::process::Command;

use serde_json::Value;

use crate::helpers::BOT_TOKEN;
use crate::query::{Stack, stack};

/// Runs `surge loadgen <args>` against the stack; its stdout and JSON report.
fn loadgen(stack: &Stack, args: &[&str]) -> (String, Value) {
    let out = std::env::temp_dir().join(format!("{}-loadgen.json", uuid::Uuid::now_v7()));
    let output = Command::new(env!("CARGO_BIN_EXE_surge"))
        .arg("loadgen")
        .args(args)
        .args([
            "--write-url",
            &stack.writer.url,
            "--query-url",
            &stack.query.url,
        ])
        .arg("--out")
        .arg(&out)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SURGE_BOT_TOKEN", BOT_TOKEN)
        .output()
        .expect("run surge loadgen");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let _ = std::fs::remove_file(&out);
    let _ = std::fs::remove_file(out.with_extension("svg"));
    (stdout, report)
}

#[tokio::test]
async fn every_write_the_crowd_saw_accepted_is_in_the_topic() {
    let stack = stack(true, vec![]).await;
    let lag_url = format!("{}/metrics", stack.processor.as_ref().unwrap().url);
    let (stdout, report) = loadgen(
        &stack,
        &[
            "--scenario",
            "spike",
            "--ramp-secs",
            "1",
            "--rate",
            "150",
            "--duration-secs",
            "2",
            "--users",
            "30",
            "--first-user-id",
            "7100000000",
            "--lag-url",
            &lag_url,
        ],
    );
    assert!(stdout.contains("POST /v1/sessions"), "{stdout}");

    assert_eq!(report["dropped_by_generator"], 0);
    assert_eq!(report["requests"], 300, "{report}");
    let endpoints = report["endpoints"].as_array().unwrap();
    let mut sessions = 0;
    for endpoint in endpoints {
        for (status, count) in endpoint["statuses"].as_object().unwrap() {
            // 504: a token read before the processors' first assignment, the documented answer.
            assert!(
                ["200", "202", "504"].contains(&status.as_str()),
                "{} answered {status} {count} times: {report}",
                endpoint["endpoint"]
            );
        }
        if endpoint["endpoint"] == "POST /v1/sessions" {
            sessions = endpoint["statuses"]["202"].as_i64().unwrap();
        }
    }
    assert_eq!(
        sessions, 30,
        "every user arrived within the ramp and opened a session"
    );
    let timeline = report["timeline"].as_array().unwrap();
    let per_second: u64 = timeline
        .iter()
        .map(|s| s["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(per_second, 300, "the timeline accounts for every request");
    assert!(
        timeline.iter().any(|s| s["consumer_lag"].is_i64()),
        "lag was sampled from the processors: {report}"
    );
    let accepted = report["accepted_events"].as_i64().unwrap();
    assert!(accepted > 0);
    assert_eq!(stack.writer.record_count(), accepted, "{report}");
}

#[tokio::test]
async fn freshness_probes_see_their_writes_through_the_query_api() {
    let stack = stack(true, vec![]).await;
    let (_, report) = loadgen(
        &stack,
        &[
            "--scenario",
            "freshness",
            "--freshness-rates",
            "40,80",
            "--duration-secs",
            "2",
            "--users",
            "10",
            "--first-user-id",
            "7200000000",
        ],
    );
    let rates = report["rates"].as_array().unwrap();
    assert_eq!(rates.len(), 2, "{report}");
    for run in rates {
        let fresh = &run["freshness"];
        assert_eq!(fresh["failed_probes"], 0, "{report}");
        assert!(fresh["samples"].as_u64().unwrap() > 0, "{report}");
        assert!(fresh["p50_ms"].as_f64().unwrap() > 0.0);
        assert!(run["crowd"]["accepted_writes"].as_u64().unwrap() > 0);
    }
}
