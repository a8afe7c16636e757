//! A poll's batches of several partitions applied in one transaction (`Sink::apply_together`),
//! against a real PostgreSQL: the store ends exactly as when each batch is applied on its own,
//! and it is all or nothing: a partition fenced off, or an event the store rejects, writes
//! nothing of any batch, so the runtime can go on to apply each alone (with its usual fencing and
//! dead-lettering) without anything applied twice.

use surge_processors::runtime::{Claim, PartitionBatch, PgProjection};
use surge_schemas::ProfileUpdated;

use super::*;

const PARTITIONS: [i32; 3] = [0, 1, 2];

/// Each partition's batch: `records` with three users of its own.
fn batches() -> Vec<Vec<Record>> {
    (PARTITIONS.iter())
        .map(|&partition| {
            let mut batch = records();
            for record in &mut batch {
                record.partition = partition;
                record.event.envelope.user_id += 10 * i64::from(partition);
            }
            batch
        })
        .collect()
}

fn together<'a>(claims: &[Claim], batches: &'a [Vec<Record>]) -> Vec<PartitionBatch<'a>> {
    (claims.iter().zip(batches))
        .map(|(claim, records)| PartitionBatch {
            claim: *claim,
            records,
            dead: &[],
            next_offset: records.last().unwrap().offset + 1,
        })
        .collect()
}

/// Every row of `tables` as text, and the version's positions.
async fn dump(pool: &PgPool, tables: &[&str]) -> BTreeMap<String, Vec<String>> {
    let mut out = pg_dump(pool, tables).await;
    let positions = "SELECT concat_ws(' ', projection, partition, next_offset) AS r \
                     FROM projection_positions ORDER BY partition";
    out.insert("positions".into(), column_r(pool, positions).await);
    out
}

/// A fresh schema and a sink of `P` migrated in it.
async fn sink<P: PgProjection>(projection: P, prefix: &str) -> (String, PgPool, PgSink<P>) {
    let schema = surge_testkit::unique_id(prefix);
    let pool = surge_testkit::pg_pool_with(&schema, 2).await;
    let sink = PgSink::new(projection, pool.clone());
    sink.migrate().await.unwrap();
    (schema, pool, sink)
}

#[tokio::test]
async fn applying_partitions_together_leaves_the_store_as_applying_each_alone() {
    let batches = batches();
    for name in ["wallets", "profiles"] {
        let tables: &[&str] = if name == "wallets" {
            &[
                "wallets_v1_balances",
                "wallets_v1_ledger",
                "wallets_v1_streaks",
            ]
        } else {
            &["profiles_v1_users"]
        };
        let (alone, together_) = if name == "wallets" {
            (
                each_alone(Wallets::at(1), &batches, tables).await,
                all_together(Wallets::at(1), &batches, tables).await,
            )
        } else {
            (
                each_alone(Profiles::at(1), &batches, tables).await,
                all_together(Profiles::at(1), &batches, tables).await,
            )
        };
        assert!(
            alone.values().all(|rows| !rows.is_empty()),
            "{name}: applying alone wrote every table: {alone:?}"
        );
        assert_eq!(together_, alone, "{name}");
    }
}

async fn each_alone<P: PgProjection>(
    projection: P,
    batches: &[Vec<Record>],
    tables: &[&str],
) -> BTreeMap<String, Vec<String>> {
    let (schema, pool, sink) = sink(projection, "together_alone_").await;
    let claims = sink.claim(TOPIC, &PARTITIONS).await.unwrap();
    for batch in together(&claims, batches) {
        sink.apply(TOPIC, batch.claim, batch.records, batch.next_offset)
            .await
            .unwrap();
    }
    let dumped = dump(&pool, tables).await;
    surge_testkit::drop_schema(&schema).await.unwrap();
    dumped
}

async fn all_together<P: PgProjection>(
    projection: P,
    batches: &[Vec<Record>],
    tables: &[&str],
) -> BTreeMap<String, Vec<String>> {
    let (schema, pool, sink) = sink(projection, "together_all_").await;
    let claims = sink.claim(TOPIC, &PARTITIONS).await.unwrap();
    let applied = sink
        .apply_together(TOPIC, &together(&claims, batches))
        .await
        .expect("a PostgreSQL projection applies partitions together")
        .unwrap();
    let counts: Vec<usize> = applied.iter().map(|a| a.events).collect();
    let expected: Vec<usize> = batches.iter().map(Vec::len).collect();
    assert_eq!(counts, expected, "what each partition's batch applied");
    // Delivered again (a re-poll after a crash): nothing more.
    let again = sink
        .apply_together(TOPIC, &together(&claims, batches))
        .await
        .unwrap()
        .unwrap();
    assert!(again.iter().all(|a| a.events == 0), "{again:?}");
    let dumped = dump(&pool, tables).await;
    surge_testkit::drop_schema(&schema).await.unwrap();
    dumped
}

#[tokio::test]
async fn a_partition_fenced_off_makes_applying_together_write_nothing() {
    let batches = batches();
    let tables = ["wallets_v1_balances", "wallets_v1_ledger"];
    let (schema, pool, sink) = sink(Wallets::at(1), "together_fenced_").await;
    let claims = sink.claim(TOPIC, &PARTITIONS).await.unwrap();
    let before = dump(&pool, &tables).await;
    // Another processor claims partition 1.
    sink.claim(TOPIC, &[1]).await.unwrap();
    let outcome = sink
        .apply_together(TOPIC, &together(&claims, &batches))
        .await
        .unwrap();
    assert!(matches!(outcome, Err(SinkError::Fenced)), "{outcome:?}");
    assert_eq!(dump(&pool, &tables).await, before, "nothing was written");
    // Partition 0, still ours, applies alone.
    let applied = sink
        .apply(TOPIC, claims[0], &batches[0], batches[0].len() as i64)
        .await
        .unwrap();
    assert_eq!(applied.events, batches[0].len());
    surge_testkit::drop_schema(&schema).await.unwrap();
}

#[tokio::test]
async fn an_event_the_store_rejects_makes_applying_together_write_nothing() {
    let mut batches = batches();
    // PostgreSQL refuses a NUL in text: partition 1's profile change can never be stored.
    batches[1][3].event.payload = ProfileUpdated {
        display_name: Some("bad\0name".into()),
        language_code: None,
        photo_url: None,
    }
    .into();
    let tables = ["profiles_v1_users"];
    let (schema, pool, sink) = sink(Profiles::at(1), "together_rejected_").await;
    let claims = sink.claim(TOPIC, &PARTITIONS).await.unwrap();
    let before = dump(&pool, &tables).await;
    let outcome = sink
        .apply_together(TOPIC, &together(&claims, &batches))
        .await
        .unwrap();
    assert!(
        matches!(outcome, Err(SinkError::Rejected(_))),
        "{outcome:?}"
    );
    assert_eq!(dump(&pool, &tables).await, before, "nothing was written");
    surge_testkit::drop_schema(&schema).await.unwrap();
}
