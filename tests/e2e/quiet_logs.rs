//! Under a flood of refusals the log stays short and the metrics count every one: a shed or
//! refused request is not logged one by one (one minute of flood once wrote 193 MB).

use std::time::Duration;

use crate::helpers::init_data;
use crate::query::{stack, write};
use serde_json::json;

#[tokio::test]
async fn a_flood_of_refused_reads_is_counted_in_metrics_and_logged_once() {
    let stack = stack(
        false,
        vec![
            ("SURGE_CONSISTENCY_WAIT_MS", "2000".into()),
            ("SURGE_QUERY_MAX_WAITERS", "1".into()),
        ],
    )
    .await;
    // No processor runs: the write is never applied, so one read waits and the rest are refused.
    let token = write(&stack, "POST", "/v1/taps", 5, json!({ "count": 1 })).await;
    let reads = (0..200).map(|user| {
        let (query, token) = (&stack.query, token.clone());
        async move {
            query
                .request("GET", "/v1/me")
                .header("authorization", format!("tma {}", init_data(100 + user)))
                .header("x-consistency-token", token)
                .send()
                .await
                .expect("the query API answers")
                .status()
                .as_u16()
        }
    });
    let statuses = futures::future::join_all(reads).await;
    let refused = statuses.iter().filter(|s| **s == 503).count();
    assert!(refused >= 150, "most reads are refused: {statuses:?}");

    // Served on the query API's admin address, never its public one.
    assert!(
        stack
            .query
            .request("GET", "/metrics")
            .send()
            .await
            .unwrap()
            .status()
            == 404
    );
    let metrics = stack.query.metrics().await;
    let counted =
        format!(r#"query_api_refusals_total{{code="too_many_waiters",route="/v1/me"}} {refused}"#);
    assert!(
        metrics.contains(&counted),
        "every refusal counted:\n{metrics}"
    );

    // The 504 of the waiting read is logged too; wait for it so the log is complete.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !stack.query.logs().contains("consistency_timeout") {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            stack.query.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let logs = stack.query.logs();
    let refusal_lines = logs
        .lines()
        .filter(|line| line.contains("too_many_waiters"))
        .count();
    // One per 10 s window: two if the flood happened to straddle a window's end.
    assert!(
        (1..=2).contains(&refusal_lines),
        "{refusal_lines} lines for {refused} refusals:\n{logs}"
    );
}
