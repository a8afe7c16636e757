//! Resuming a partition at a stored position that falls inside one of the broker's record
//! batches (a processor crashed after applying part of what one produce request carried). The
//! processor fetches from exactly the stored position, rereading nothing before it: Kafka
//! answers a fetch there with the batch that contains the offset, and every event from the
//! stored position on is applied once.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{Options, PARTITIONS, java_partition, pg_pool, spawn_app, started};

#[tokio::test]
async fn a_processor_resuming_inside_a_record_batch_applies_the_rest_of_it() {
    let writer = spawn_app().await;
    let user = 5;
    // One request, ten events: one produce request, one record batch, offsets 0..=9.
    let actions: Vec<_> = (1..=10)
        .map(|n| json!({ "type": "taps", "count": n }))
        .collect();
    let response = writer
        .write("POST", "/v1/batch", user, json!({ "actions": actions }))
        .await;
    assert_eq!(response.status(), 202);
    let partition = java_partition(&user.to_string(), PARTITIONS);

    // A processor applied offsets 0..=3 and crashed: its stored position is 4.
    let pool = pg_pool(&writer.id).await;
    sqlx::raw_sql(include_str!(
        "../../projections/src/positions/sql/positions.sql"
    ))
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO projection_positions (projection, version, topic, partition, next_offset) \
         VALUES ('wallets', 1, $1, $2, 4)",
    )
    .bind(&writer.topic)
    .bind(partition)
    .execute(&pool)
    .await
    .unwrap();

    let processor = started(
        &writer.id,
        Options {
            role: Some("process"),
            env: vec![("SURGE_PROJECTIONS", "wallets".into())],
            ..Options::default()
        },
    );
    let started = Instant::now();
    loop {
        let at: Option<i64> = sqlx::query_scalar(
            "SELECT next_offset FROM projection_positions WHERE projection = 'wallets' AND partition = $1",
        )
        .bind(partition)
        .fetch_optional(&pool)
        .await
        .unwrap();
        if at == Some(10) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "wallets stuck at {at:?}:\n{}",
            processor.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let offsets: Vec<i64> = sqlx::query_scalar(
        "SELECT kafka_offset FROM wallets_v1_ledger WHERE user_id = $1 ORDER BY kafka_offset",
    )
    .bind(user)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        offsets,
        [4, 5, 6, 7, 8, 9],
        "every event from the stored position on, once"
    );
    let balance: i64 =
        sqlx::query_scalar("SELECT balance FROM wallets_v1_balances WHERE user_id = $1")
            .bind(user)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(balance, (5..=10).sum::<i64>());
    let resumed = format!("({partition}, 4)");
    assert!(
        processor
            .logs()
            .lines()
            .any(|line| line.contains("Partitions assigned")
                && line.contains("wallets.v1")
                && line.contains(&resumed)),
        "wallets.v1 fetched partition {partition} from its stored position 4:\n{}",
        processor.logs()
    );
}
