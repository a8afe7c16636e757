//! `GET /v1/stats/activity`: the activity projection's figures equal a fold over the topic, and
//! only the operator's bearer token opens it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{Options, init_data, json as body, started};
use crate::query::{Stack, ok, stack, write};

const OPERATOR_TOKEN: &str = "operator-secret-for-the-e2e-suite";

async fn stats(stack: &Stack, query: &str, authorization: Option<&str>) -> reqwest::Response {
    let mut request = stack
        .query
        .request("GET", &format!("/v1/stats/activity{query}"));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    request.send().await.expect("the query API answers")
}

fn total_events(stats: &Value) -> i64 {
    stats["events_per_minute"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["total"].as_i64().unwrap())
        .sum()
}

#[tokio::test]
async fn activity_figures_equal_a_fold_over_the_topic() {
    let stack = stack(true, vec![("SURGE_OPERATOR_TOKEN", OPERATOR_TOKEN.into())]).await;
    for user in 1..=4_i64 {
        write(&stack, "POST", "/v1/sessions", user, json!({})).await;
        for _ in 0..user {
            write(&stack, "POST", "/v1/taps", user, json!({ "count": 3 })).await;
        }
    }
    write(&stack, "POST", "/v1/checkins", 2, json!({})).await;
    write(
        &stack,
        "PATCH",
        "/v1/profile",
        3,
        json!({ "display_name": "Three" }),
    )
    .await;

    let records = stack.writer.read_all();
    let bearer = format!("Bearer {OPERATOR_TOKEN}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let figures = loop {
        let figures = ok(stats(&stack, "?minutes=10", Some(&bearer)).await).await;
        if total_events(&figures) == records.len() as i64 {
            break figures;
        }
        assert!(
            Instant::now() < deadline,
            "activity never counted all {} events: {figures}",
            records.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    // The fold: every event by the minute and day of its recorded_at.
    let (codec, _registry) = stack.writer.codec().await;
    let mut minutes: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    let mut days: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    for record in &records {
        use rdkafka::Message;
        let event = codec.decode(record.payload().unwrap()).await.unwrap();
        let at = event.envelope.recorded_at;
        let minute =
            surge_projections::feed::rfc3339_millis(at.div_euclid(60_000) * 60_000).unwrap();
        *minutes
            .entry(minute)
            .or_default()
            .entry(event.payload.event_type().name().to_owned())
            .or_default() += 1;
        let day = surge_projections::feed::iso_date(at.div_euclid(86_400_000) as i32).unwrap();
        days.entry(day).or_default().insert(event.envelope.user_id);
    }
    let served_minutes: BTreeMap<String, BTreeMap<String, i64>> = figures["events_per_minute"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let by_type = m["by_type"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(ty, n)| (ty.clone(), n.as_i64().unwrap()))
                .collect();
            (m["minute"].as_str().unwrap().to_owned(), by_type)
        })
        .collect();
    assert_eq!(served_minutes, minutes);
    let served_days: BTreeMap<String, i64> = figures["daily_active_users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["day"].as_str().unwrap().to_owned(),
                d["users"].as_i64().unwrap(),
            )
        })
        .collect();
    let folded_days: BTreeMap<String, i64> = days
        .iter()
        .map(|(day, users)| (day.clone(), users.len() as i64))
        .collect();
    assert_eq!(served_days, folded_days);
    let today = &figures["as_of"].as_str().unwrap()[..10];
    assert_eq!(
        figures["active_users"]["daily"].as_i64(),
        Some(days.get(today).map_or(0, |u| u.len() as i64))
    );
    let everyone: BTreeSet<i64> = days.values().flatten().copied().collect();
    assert_eq!(
        figures["active_users"]["weekly"].as_i64(),
        Some(everyone.len() as i64)
    );
    assert_eq!(
        figures["active_users"]["monthly"].as_i64(),
        Some(everyone.len() as i64)
    );
}

#[tokio::test]
async fn only_the_operator_token_opens_the_stats() {
    let stack = stack(false, vec![("SURGE_OPERATOR_TOKEN", OPERATOR_TOKEN.into())]).await;
    let user = format!("tma {}", init_data(1));
    let wrong = format!("Bearer {OPERATOR_TOKEN}x");
    for (authorization, status, code) in [
        (None, 401, "operator_token_required"),
        (Some(user.as_str()), 401, "operator_token_required"),
        (Some(wrong.as_str()), 401, "invalid_operator_token"),
        (
            Some("Basic b3BlcmF0b3I6c2VjcmV0"),
            401,
            "operator_token_required",
        ),
    ] {
        let response = stats(&stack, "", authorization).await;
        assert_eq!(response.status(), status, "{authorization:?}");
        assert_eq!(
            body(response).await["error"]["code"],
            code,
            "{authorization:?}"
        );
    }
    let bearer = format!("Bearer {OPERATOR_TOKEN}");
    for bad in ["?minutes=0", "?minutes=1441", "?days=91", "?days=a"] {
        let response = stats(&stack, bad, Some(&bearer)).await;
        assert_eq!(response.status(), 400, "{bad}");
        assert_eq!(body(response).await["error"]["code"], "invalid_window");
    }
    let empty = ok(stats(&stack, "", Some(&bearer)).await).await;
    assert_eq!(empty["events_per_minute"], json!([]));
    assert_eq!(empty["active_users"]["daily"], 0);

    // Without a configured token the route is closed to everyone.
    let closed = started(
        &stack.writer.id,
        Options {
            role: Some("query-api"),
            ..Options::default()
        },
    );
    let response = closed
        .request("GET", "/v1/stats/activity")
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(
        body(response).await["error"]["code"],
        "operator_access_disabled"
    );
}

/// Day partitions of the activity tables, by name.
async fn activity_partitions(pool: &sqlx::PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = current_schema() AND c.relkind = 'r' ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_processor_drops_days_past_retention_when_it_starts() {
    let writer = crate::helpers::spawn_app().await;
    let process = || {
        started(
            &writer.id,
            Options {
                role: Some("process"),
                env: vec![
                    ("SURGE_PROJECTIONS", "activity".into()),
                    ("SURGE_ACTIVITY_RETENTION_DAYS", "30".into()),
                ],
                ..Options::default()
            },
        )
    };
    let first = process();
    let pool = crate::helpers::pg_pool(&writer.id).await;
    let taps = writer
        .write("POST", "/v1/taps", 1, json!({ "count": 1 }))
        .await;
    assert_eq!(taps.status(), 202);
    // Today's partitions come with the first event; then add a day from long ago, as a
    // processor with a longer retention would have left it.
    let deadline = Instant::now() + Duration::from_secs(60);
    while activity_partitions(&pool).await.len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the event never reached activity"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sqlx::query(
        "CREATE TABLE activity_v1_daily_users_p20200101 PARTITION OF activity_v1_daily_users \
         FOR VALUES FROM ('2020-01-01') TO ('2020-01-02')",
    )
    .execute(&pool)
    .await
    .unwrap();
    first.kill();

    let _second = process();
    let deadline = Instant::now() + Duration::from_secs(60);
    let kept = loop {
        let partitions = activity_partitions(&pool).await;
        if !partitions.iter().any(|p| p.ends_with("_p20200101")) {
            break partitions;
        }
        assert!(
            Instant::now() < deadline,
            "the old day was never dropped: {partitions:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(kept.len(), 2, "today's partitions stay: {kept:?}");
}
