//! Events the store refuses (PostgreSQL's SQLSTATE classes 22 and 23) are poison, not outages:
//! the runtime narrows a rejected batch down to the event causing it, dead-letters that event
//! with the store's reason, and applies the rest of the batch and the partition in order. The
//! poisoned user's later events for that projection are parked behind it until `surge dlq`
//! releases them.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::Value;
use sqlx::Row;
use surge_projections::naming;
use surge_schemas::{Envelope, Event, Payload, ProfileUpdated};
use uuid::Uuid;

use crate::fold::fold_topic;
use crate::helpers::{PARTITIONS, TestApp, header, java_partition, pg_pool, spawn_app};
use crate::processing::{processor, read_topic, traffic};
use crate::projected::{assert_projections_equal_fold, wait_caught_up};

/// A ProfileUpdated setting `photo_url`, produced straight to the topic (see [`produce_raw`]).
pub async fn produce_photo(app: &TestApp, partition: i32, user_id: i64, photo_url: &str) -> Uuid {
    let payload = ProfileUpdated {
        display_name: None,
        language_code: None,
        photo_url: Some(photo_url.into()),
    };
    produce_raw(app, partition, user_id, payload.into()).await
}

/// Produced straight to the topic, as a write API that let it through would have: the test
/// does not depend on what the write API accepts.
pub async fn produce_raw(app: &TestApp, partition: i32, user_id: i64, payload: Payload) -> Uuid {
    let (codec, _registry) = app.codec().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let event = Event {
        envelope: Envelope {
            event_id: Uuid::now_v7(),
            user_id,
            occurred_at: now,
            recorded_at: now,
        },
        payload,
    };
    let bytes = codec.encode(&event).await.unwrap();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &app.brokers)
        .create()
        .unwrap();
    let key = user_id.to_string();
    producer
        .send(
            FutureRecord::to(&app.topic)
                .partition(partition)
                .key(&key)
                .payload(&bytes),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)
        .unwrap();
    event.envelope.event_id
}

pub async fn photo_of(app: &TestApp, user: i64) -> Option<String> {
    let pool = pg_pool(&app.id).await;
    sqlx::query("SELECT photo_url FROM profiles_v1_users WHERE user_id = $1")
        .bind(user)
        .fetch_one(&pool)
        .await
        .unwrap_or_else(|e| panic!("user {user} has no profile: {e}"))
        .get("photo_url")
}

/// `surge dlq <args>`: whether it succeeded, and what it printed.
pub fn dlq(app: &TestApp, args: &[&str]) -> (bool, String) {
    let output = app.cli("dlq").args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    (output.status.success(), format!("{stdout}{stderr}"))
}

/// The events `projection` (e.g. `profiles.v1`) holds parked, as `surge dlq --json` lists them.
pub fn parked(app: &TestApp, projection: &str) -> Vec<Value> {
    let (ok, out) = dlq(app, &["--json"]);
    assert!(ok, "surge dlq --json failed: {out}");
    let all: Value = serde_json::from_str(out.lines().next().unwrap_or_default())
        .unwrap_or_else(|e| panic!("surge dlq --json printed no JSON ({e}): {out}"));
    (all.as_array().unwrap().iter())
        .filter(|p| p["projection"] == projection)
        .map(|p| p["parked"].clone())
        .collect()
}

#[tokio::test]
async fn a_nul_byte_is_dead_lettered_by_profiles_alone_and_the_rest_of_its_partition_flows() {
    let writer = spawn_app().await;
    traffic(&writer, 1..7, 0).await;
    // The poisoned user and a user of the same partition whose update comes right after it.
    let poisoned = 1;
    let partition = java_partition(&poisoned.to_string(), PARTITIONS);
    let neighbour = (1000..)
        .find(|u: &i64| java_partition(&u.to_string(), PARTITIONS) == partition)
        .unwrap();
    let poison_id = produce_photo(&writer, partition, poisoned, "https://x/\u{0}y").await;
    let good_url = "https://t.me/i/neighbour.jpg";
    produce_photo(&writer, partition, neighbour, good_url).await;
    // Later events on every partition, the poisoned one included.
    traffic(&writer, 1..7, 1).await;

    // Started after everything was produced, so the poison event shares a batch with the
    // events around it: the batch is rejected as a whole and must be narrowed down.
    let processor = processor(&writer);
    wait_caught_up(&writer, &[&processor]).await;

    let dead = read_topic(&writer, &naming::dead_letter_topic(&writer.topic), 1);
    let message = &dead[0];
    assert_eq!(header(message, "surge-dlq-projection"), Some("profiles.v1"));
    let reason = header(message, "surge-dlq-reason").unwrap();
    assert!(
        reason.contains("invalid byte sequence") && reason.contains("0x00"),
        "the reason names PostgreSQL's refusal: {reason}"
    );
    assert_eq!(
        header(message, "surge-dlq-origin-partition"),
        Some(partition.to_string().as_str())
    );
    let (codec, _registry) = writer.codec().await;
    let event = codec.decode(message.payload().unwrap()).await.unwrap();
    assert_eq!(
        event.envelope.event_id, poison_id,
        "only the NUL event is dead-lettered"
    );

    // The event after it in the same partition was applied; the poisoned user's profile keeps
    // what the other events made of it.
    assert_eq!(
        photo_of(&writer, neighbour).await.as_deref(),
        Some(good_url)
    );
    assert_ne!(
        photo_of(&writer, poisoned).await.as_deref(),
        Some("https://x/\u{0}y")
    );
    // The poisoned user's later events wait behind it in profiles, in order; nobody else's.
    let held = parked(&writer, "profiles.v1");
    assert!(
        held.len() > 1,
        "the user's round-1 events are parked: {held:?}"
    );
    assert_eq!(held[0]["event_id"], poison_id.to_string());
    let reason = held[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("0x00"),
        "the head keeps its reason: {reason}"
    );
    for (earlier, later) in held.iter().zip(&held[1..]) {
        assert_eq!(later["user_id"], poisoned);
        assert_eq!(later["reason"], Value::Null);
        assert!(
            later["offset"].as_i64() > earlier["offset"].as_i64(),
            "{held:?}"
        );
    }
    assert!(
        parked(&writer, "wallets.v1").is_empty(),
        "wallets applied it all"
    );

    // A NUL byte can never be stored: the operator skips it and the rest applies, in order.
    let (ok, out) = dlq(&writer, &["skip", "profiles", "--user", "1"]);
    assert!(ok, "{out}");
    let applied = format!("profiles.v1 user 1: {} applied, 1 skipped", held.len() - 1);
    assert!(out.contains(&applied), "{out}");
    assert!(parked(&writer, "profiles.v1").is_empty());

    // Every projection equals a fold of the topic. The dead-lettered event changes nothing the
    // fold compares for profiles (sessions and streaks); the feed, which keeps it, must show it.
    let expected = fold_topic(&writer, writer.record_count() as usize).await;
    assert_projections_equal_fold(&writer, &expected).await;
    drop(processor);
}
