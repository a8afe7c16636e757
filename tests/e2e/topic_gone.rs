//! Stored positions that no longer match the topic: it was deleted and recreated (positions
//! beyond its end), or its first events were deleted (DeleteRecords, retention). Surge never
//! resumes elsewhere and silently skips events: the partition stalls with a clear reason in the
//! logs, a metric and `/health/ready`, the other partitions keep flowing, and a rebuild from
//! offset zero refuses a topic that lost its first events.

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::{Value, json};

use crate::helpers::{
    Options, PARTITIONS, TestApp, java_partition, json, pg_pool, spawn_app, start, started,
};

const DEADLINE: Duration = Duration::from_secs(90);

fn wallets_processor(app: &TestApp) -> TestApp {
    started(
        &app.id,
        Options {
            role: Some("process"),
            env: vec![("SURGE_PROJECTIONS", "wallets".into())],
            ..Options::default()
        },
    )
}

fn admin(brokers: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap()
}

/// wallets.v1's stored position of each partition it has one for.
async fn positions(app: &TestApp) -> Vec<(i32, i64)> {
    let pool = pg_pool(&app.id).await;
    sqlx::query_as(
        "SELECT partition, next_offset FROM projection_positions \
         WHERE projection = 'wallets' AND version = 1 ORDER BY partition",
    )
    .fetch_all(&pool)
    .await
    .unwrap_or_default()
}

async fn wait_until<T>(what: &str, app: &TestApp, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(started.elapsed() < DEADLINE, "no {what}:\n{}", app.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn taps(app: &TestApp, user: i64, times: usize) {
    for _ in 0..times {
        let response = app
            .write("POST", "/v1/taps", user, json!({ "count": 1 }))
            .await;
        assert_eq!(response.status(), 202);
    }
}

/// Two users in different partitions.
fn two_users() -> ((i64, i32), (i64, i32)) {
    let first = (5, java_partition("5", PARTITIONS));
    let second = (6..)
        .map(|u| (u, java_partition(&u.to_string(), PARTITIONS)))
        .find(|(_, p)| *p != first.1)
        .unwrap();
    (first, second)
}

#[tokio::test]
async fn a_position_beyond_a_recreated_topics_end_stalls_only_that_partition_and_says_so() {
    let writer = spawn_app().await;
    let ((old_user, stale), (new_user, fresh)) = two_users();
    taps(&writer, old_user, 5).await;
    let processor = wallets_processor(&writer);
    wait_until("wallets at offset 5", &processor, async || {
        positions(&writer).await.contains(&(stale, 5)).then_some(())
    })
    .await;
    drop(processor);

    // The topic is deleted and created again: its offsets restart from zero.
    let (id, brokers, topic) = (
        writer.id.clone(),
        writer.brokers.clone(),
        writer.topic.clone(),
    );
    drop(writer);
    admin(&brokers)
        .delete_topics(&[&topic], &AdminOptions::new())
        .await
        .unwrap();
    let metadata: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .unwrap();
    let started = Instant::now();
    while metadata
        .fetch_metadata(None, Duration::from_secs(5))
        .unwrap()
        .topics()
        .iter()
        .any(|t| t.name() == topic)
    {
        assert!(started.elapsed() < DEADLINE, "{topic} was never deleted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let writer = start(&id, Options::default()).expect("the write API recreates the topic");
    taps(&writer, old_user, 1).await;
    taps(&writer, new_user, 2).await;

    let processor = wallets_processor(&writer);
    let ready = wait_until(
        "a stalled partition in /health/ready",
        &processor,
        async || {
            let response = processor
                .request("GET", "/health/ready")
                .send()
                .await
                .ok()?;
            let status = response.status();
            let body: Value = response.json().await.ok()?;
            (status == 503 && !body["stalled"].as_object()?.is_empty()).then_some(body)
        },
    )
    .await;
    assert_eq!(ready["checks"]["partitions"], "down", "{ready}");
    let reason = ready["stalled"]["wallets.v1"][stale.to_string()]
        .as_str()
        .unwrap_or_else(|| panic!("partition {stale} of wallets.v1 is named: {ready}"));
    assert!(
        reason.contains("beyond the topic's end offset 1"),
        "{reason}"
    );
    assert_eq!(
        ready["stalled"]["wallets.v1"].as_object().unwrap().len(),
        1,
        "only that partition stalls: {ready}"
    );

    // The other partition flows; the stalled one keeps its position instead of skipping.
    wait_until("the fresh partition applied", &processor, async || {
        positions(&writer).await.contains(&(fresh, 2)).then_some(())
    })
    .await;
    assert!(positions(&writer).await.contains(&(stale, 5)));
    let metrics = processor.metrics().await;
    let stalled_line =
        format!("processor_partition_stalled{{partition=\"{stale}\",projection=\"wallets.v1\"}} 1");
    assert!(
        metrics.contains(&stalled_line),
        "{stalled_line} in:\n{metrics}"
    );
    let logs = processor.logs();
    assert!(
        logs.contains("Partition stalled.") && logs.contains("surge replay"),
        "the log says why and what to do:\n{logs}"
    );
}

#[tokio::test]
async fn events_deleted_from_the_topics_start_stall_the_processor_and_refuse_a_rebuild() {
    let writer = spawn_app().await;
    let ((user, partition), _) = two_users();
    taps(&writer, user, 4).await;
    // DeleteRecords moves the partition's start to offset 2: events 0 and 1 are gone.
    let mut before = TopicPartitionList::new();
    before
        .add_partition_offset(&writer.topic, partition, Offset::Offset(2))
        .unwrap();
    let deleted = admin(&writer.brokers)
        .delete_records(&before, &AdminOptions::new())
        .await
        .unwrap();
    assert_eq!(
        deleted
            .find_partition(&writer.topic, partition)
            .unwrap()
            .offset(),
        Offset::Offset(2),
        "the broker moved the start"
    );

    // A processor that never applied them must not start after them.
    let processor = wallets_processor(&writer);
    let reason = wait_until("a stalled partition", &processor, async || {
        let body = json(
            processor
                .request("GET", "/health/ready")
                .send()
                .await
                .ok()?,
        )
        .await;
        body["stalled"]["wallets.v1"][partition.to_string()]
            .as_str()
            .map(str::to_owned)
    })
    .await;
    assert!(reason.contains("events 0..2"), "{reason}");
    drop(processor);
    assert!(
        !positions(&writer)
            .await
            .iter()
            .any(|(p, at)| *p == partition && *at > 0),
        "nothing of partition {partition} was applied past the gap"
    );

    let output = writer.cli("replay").arg("wallets").output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "the rebuild must refuse");
    assert!(
        stderr.contains("deleted the first events")
            && stderr.contains(&format!("({partition}, 2)")),
        "{stderr}"
    );
}
