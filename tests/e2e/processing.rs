//! Processors against the real broker process: crashes, duplicates, poison events, scale-out and
//! a paused instance, each ending with every projection equal to an independent fold.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::json;
use surge_projections::{ProjectionId, StoreKind, naming};

use crate::fold::fold_topic;
use crate::helpers::{
    Options, PARTITIONS, TestApp, header, init_data, init_data_with, spawn_app, start, started,
};
use crate::projected::{assert_projections_equal_fold, wait_caught_up};

const DEADLINE: Duration = Duration::from_secs(120);

pub fn processor_options() -> Options {
    Options {
        role: Some("process"),
        env: vec![
            ("SURGE_PROCESS_BATCH_MAX", "25".into()),
            ("SURGE_PROCESS_SESSION_TIMEOUT_MS", "6000".into()),
            ("SURGE_PROCESS_MAX_POLL_INTERVAL_MS", "10000".into()),
        ],
        ..Options::default()
    }
}

pub fn processor(writer: &TestApp) -> TestApp {
    started(&writer.id, processor_options())
}

/// Every projection of `writer`'s test equals an independent fold of its whole topic.
async fn assert_folded(writer: &TestApp) {
    let expected = fold_topic(writer, writer.record_count() as usize).await;
    assert_projections_equal_fold(writer, &expected).await;
}

/// A write API and a processor that applied a first round of traffic from users 1 to 12.
async fn a_processor_after_a_round() -> (TestApp, TestApp) {
    let writer = spawn_app().await;
    let processor = processor(&writer);
    referrers_first(&writer, 1..13).await;
    traffic(&writer, 1..13, 0).await;
    wait_caught_up(&writer, &[&processor]).await;
    (writer, processor)
}

/// A round of Mini App traffic from `users` users.
pub async fn traffic(app: &TestApp, users: std::ops::Range<i64>, round: i64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let yesterday = now - 23 * 3600 * 1000;
    for user in users {
        let referrer = if user % 3 == 0 {
            Some(format!("ref_{}", user - 1))
        } else {
            None
        };
        let session = app
            .request("POST", "/v1/sessions")
            .header(
                "authorization",
                format!("tma {}", init_data_with(user, referrer.as_deref())),
            )
            .send();
        let writes = [
            session,
            app.request("POST", "/v1/taps")
                .header("authorization", format!("tma {}", init_data(user)))
                .json(&json!({ "count": 1 + (user + round) % 50 }))
                .send(),
            app.request("POST", "/v1/checkins")
                .header("authorization", format!("tma {}", init_data(user)))
                .json(&json!({ "occurred_at": if round % 2 == 0 { yesterday } else { now } }))
                .send(),
            app.request("POST", "/v1/batch")
                .header("authorization", format!("tma {}", init_data(user)))
                .json(&json!({ "actions": [
                    { "type": "taps", "count": 7 },
                    { "type": "profile", "display_name": format!("player {user}") },
                    { "type": "checkin" },
                ]}))
                .send(),
        ];
        for response in futures::future::join_all(writes).await {
            assert_eq!(response.unwrap().status(), 202);
        }
    }
}

/// Sessions, without a referral, of the users who will be named as referrers.
pub async fn referrers_first(app: &TestApp, users: std::ops::Range<i64>) {
    for user in users.filter(|u| u % 3 == 2) {
        let response = app
            .request("POST", "/v1/sessions")
            .header("authorization", format!("tma {}", init_data(user)))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
    }
}

/// Exactly one ReferralCredited (by event id) per referred user. In idempotent mode a crash may
/// leave copies of it (same event id); in transactional mode a `read_committed` reader sees
/// exactly one record, which `records_each` then requires.
pub async fn assert_one_credit_per_referred_user(app: &TestApp, referred: &[i64]) {
    assert_credits(app, referred, false).await;
}

async fn assert_credits(app: &TestApp, referred: &[i64], one_record_each: bool) {
    let (codec, _registry) = app.codec().await;
    let mut credits: BTreeMap<i64, std::collections::BTreeSet<String>> = BTreeMap::new();
    let mut records: BTreeMap<i64, usize> = BTreeMap::new();
    for record in app.read_records(app.record_count() as usize) {
        let Ok(event) = codec.decode(record.payload().unwrap_or_default()).await else {
            continue;
        };
        if let surge_schemas::Payload::ReferralCredited(credit) = &event.payload {
            assert_eq!(
                event.envelope.user_id,
                credit.referred_user_id - 1,
                "keyed by the referrer"
            );
            credits
                .entry(credit.referred_user_id)
                .or_default()
                .insert(event.envelope.event_id.to_string());
            *records.entry(credit.referred_user_id).or_default() += 1;
        }
    }
    let users: Vec<i64> = credits.keys().copied().collect();
    assert_eq!(users, referred, "credited users");
    for (user, ids) in &credits {
        assert_eq!(
            ids.len(),
            1,
            "user {user} credited under several event ids: {ids:?}"
        );
    }
    if one_record_each {
        assert!(
            records.values().all(|n| *n == 1),
            "committed ReferralCredited records per referred user: {records:?}"
        );
    }
}

/// Every kill leaves a dead member in each consumer group until the broker expires its session;
/// the replacement instance joins at once and gets the partitions when it does.
#[tokio::test]
async fn sigkill_mid_stream_loses_nothing_and_counts_nothing_twice() {
    let env = vec![("SURGE_DERIVED_DELIVERY", "idempotent".into())];
    let (writer, _) = sigkill_mid_stream(env).await;
    assert_one_credit_per_referred_user(&writer, &REFERRED).await;
}

/// The same crashes with the referrals deriver in Kafka transactions: a transaction a kill cut
/// short is aborted, so a `read_committed` reader sees exactly one ReferralCredited record per
/// referred user, not merely one credit in every projection.
#[tokio::test]
async fn sigkill_mid_stream_in_transactional_mode_credits_each_referral_once() {
    let env = vec![("SURGE_DERIVED_DELIVERY", "transactional".into())];
    let (writer, logs) = sigkill_mid_stream(env).await;
    assert!(
        logs.contains(r#""transactional":true"#),
        "the deriver ran in transactional mode:\n{logs}"
    );
    assert_credits(&writer, &REFERRED, true).await;
}

/// The users `traffic` refers (every third, by the user before them).
const REFERRED: [i64; 6] = [3, 6, 9, 12, 15, 18];

/// Kills the processor mid-stream four times on the real broker, then checks every projection
/// against a fold of the topic. `env` is added to the processor's; returns the writer and the
/// logs of every processor it ran.
async fn sigkill_mid_stream(env: Vec<(&'static str, String)>) -> (TestApp, String) {
    let on_broker = || {
        let mut options = processor_options();
        options.env.extend(env.iter().cloned());
        options
    };
    let writer = spawn_app().await;
    let id = writer.id.clone();
    let mut processor = start(&id, on_broker()).unwrap();
    let mut logs = Vec::new();
    // The referrers (users 2, 5, 8 ...) open the app first, so every referred user's first
    // session (users 3, 6, 9 ...) names a referrer the deriver already knows.
    referrers_first(&writer, 1..21).await;
    wait_caught_up(&writer, &[&processor]).await;
    for round in 0..4 {
        traffic(&writer, 1..21, round).await;
        logs.push(processor.logs());
        processor.kill(); // SIGKILL, mid-stream: it was still consuming the round's events
        processor = start(&id, on_broker()).unwrap();
    }
    // Duplicates of already-processed events (as a retried write or re-emission would make).
    reproduce(&writer, 5);
    traffic(&writer, 1..21, 4).await;
    wait_caught_up(&writer, &[&processor]).await;
    let expected = fold_topic(&writer, writer.record_count() as usize).await;
    assert_eq!(expected.len(), 20);
    assert_projections_equal_fold(&writer, &expected).await;
    logs.push(processor.logs());
    (writer, logs.join("\n"))
}

#[tokio::test]
async fn a_poison_event_goes_to_the_dead_letter_topic_and_others_flow() {
    let writer = spawn_app().await;
    let processor = processor(&writer);
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &writer.brokers)
        .create()
        .unwrap();
    producer
        .send(
            BaseRecord::to(&writer.topic)
                .key("666")
                .payload(&b"\x00\x00\x00\x00\x63not avro"[..]),
        )
        .map_err(|(e, _)| e)
        .unwrap();
    producer.flush(Duration::from_secs(10)).unwrap();
    traffic(&writer, 1..6, 0).await;
    wait_caught_up(&writer, &[&processor]).await;

    // Every processor `surge process` runs by default (version 1 of each, a fresh deployment)
    // dead-letters the poison event once.
    let running: Vec<String> = surge_processors::projectors::CATALOG
        .iter()
        .map(|e| naming::processor_id(e.name(), 1))
        .collect();
    let dead = read_topic(
        &writer,
        &naming::dead_letter_topic(&writer.topic),
        running.len(),
    );
    let mut projections: Vec<&str> = dead
        .iter()
        .map(|m| header(m, "surge-dlq-projection").unwrap())
        .collect();
    projections.sort();
    let mut expected: Vec<&str> = running.iter().map(String::as_str).collect();
    expected.sort();
    assert_eq!(projections, expected);
    for message in &dead {
        assert_eq!(message.key(), Some(&b"666"[..]));
        assert!(header(message, "surge-dlq-reason").unwrap().len() > 5);
        assert_eq!(
            header(message, "surge-dlq-origin-topic"),
            Some(writer.topic.as_str())
        );
        assert!(
            header(message, "surge-dlq-origin-partition")
                .unwrap()
                .parse::<i32>()
                .is_ok()
        );
        assert!(
            header(message, "surge-dlq-origin-offset")
                .unwrap()
                .parse::<i64>()
                .is_ok()
        );
    }
    assert_folded(&writer).await;
    drop(processor);
}

#[tokio::test]
async fn two_instances_split_the_work_and_end_equal_to_one() {
    let writer = spawn_app().await;
    let first = processor(&writer);
    let second = processor(&writer);
    wait_for_split(&[&first, &second]).await;
    traffic(&writer, 1..16, 0).await;
    wait_caught_up(&writer, &[&first, &second]).await;
    assert_folded(&writer).await;
}

/// A SIGKILLed instance never leaves its group; the broker expires its session (6 s here) and
/// the live instance gets every partition, then catches up alone.
#[tokio::test]
async fn a_killed_instances_partitions_move_to_the_live_one() {
    let writer = spawn_app().await;
    let first = processor(&writer);
    let second = processor(&writer);
    wait_for_split(&[&first, &second]).await;
    traffic(&writer, 1..16, 0).await;
    let killed = Instant::now();
    second.kill();
    let started = Instant::now();
    while assigned(&first, "wallets.v1").len() < PARTITIONS as usize {
        assert!(
            started.elapsed() < DEADLINE,
            "the live instance never got the killed one's partitions:\n{}",
            first.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "partitions moved {:?} after the SIGKILL (session timeout 6 s)",
        killed.elapsed()
    );
    traffic(&writer, 1..16, 1).await;
    wait_caught_up(&writer, &[&first]).await;
    assert_folded(&writer).await;
}

/// Waits until each of `processors` holds some of the wallets partitions and together they
/// hold all of them.
pub async fn wait_for_split(processors: &[&TestApp]) {
    let started = Instant::now();
    loop {
        let held: Vec<Vec<i32>> = processors
            .iter()
            .map(|p| assigned(p, "wallets.v1"))
            .collect();
        let total: usize = held.iter().map(Vec::len).sum();
        if held.iter().all(|h| !h.is_empty()) && total == PARTITIONS as usize {
            return;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "the group never split: {held:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The broker expires the paused member's session and gives its partitions to the other.
#[tokio::test]
async fn a_paused_instance_loses_its_partitions_and_cannot_overwrite_when_resumed() {
    let writer = spawn_app().await;
    let first = processor(&writer);
    let second = processor(&writer);
    traffic(&writer, 1..16, 0).await;
    wait_caught_up(&writer, &[&first, &second]).await;

    // Pause one instance past its session timeout while traffic continues: the projections can
    // only catch up if the other takes over its partitions.
    first.signal("STOP");
    traffic(&writer, 1..16, 1).await;
    wait_caught_up(&writer, &[&first, &second]).await;
    // Resumed, the paused instance may still hold a batch from before; fencing refuses it.
    first.signal("CONT");
    traffic(&writer, 1..16, 2).await;
    wait_caught_up(&writer, &[&first, &second]).await;

    assert_folded(&writer).await;
}

/// The partitions `processor` (e.g. `wallets.v1`) last logged as assigned to this instance.
pub fn assigned(instance: &TestApp, processor: &str) -> Vec<i32> {
    let logs = instance.logs();
    let last = logs.lines().rev().find_map(|line| {
        let json: serde_json::Value = serde_json::from_str(line).ok()?;
        let fields = &json["fields"];
        let message = fields["message"].as_str()?;
        if fields["processor"].as_str()? != processor {
            return None;
        }
        if message.starts_with("Partitions revoked") {
            return Some(String::new());
        }
        message
            .starts_with("Partitions assigned")
            .then(|| fields["partitions"].as_str().unwrap_or("").to_owned())
    });
    let list = last.unwrap_or_default();
    list.trim_matches(|c| c == '[' || c == ']')
        .split(", ")
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Appends copies of the first `n` records (same key, payload, event id) to their partitions.
pub fn reproduce(app: &TestApp, n: usize) {
    let records = app.read_records(app.record_count() as usize);
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &app.brokers)
        .create()
        .unwrap();
    for record in records.iter().take(n) {
        let copy = BaseRecord::to(&app.topic)
            .key(record.key().unwrap())
            .payload(record.payload().unwrap())
            .partition(record.partition());
        producer.send(copy).map_err(|(e, _)| e).unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();
}

pub fn read_topic(app: &TestApp, topic: &str, count: usize) -> Vec<rdkafka::message::OwnedMessage> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &app.brokers)
        .set("group.id", crate::helpers::unique_id())
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let started = Instant::now();
    let mut out = Vec::new();
    while out.len() < count && started.elapsed() < DEADLINE {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            out.push(m.detach());
        }
    }
    assert_eq!(out.len(), count, "records in {topic}");
    out
}

/// The names of the projections kept in Redis, from the catalog.
fn redis_projections() -> impl Iterator<Item = &'static str> {
    (ProjectionId::ALL.iter())
        .filter(|id| id.store() == StoreKind::Redis)
        .map(|id| id.name())
}

/// Every key of the Redis projections' versions (version 1) of test `id`.
async fn redis_projection_keys(redis: &mut surge_redis::Redis, id: &str) -> Vec<String> {
    let mut keys = Vec::new();
    for projection in redis_projections() {
        let pattern = naming::version_keys_pattern(&naming::keys_base(id, projection, 1));
        let found: Vec<String> = redis::cmd("KEYS")
            .arg(pattern)
            .query_async(redis)
            .await
            .unwrap();
        keys.extend(found);
    }
    keys
}

/// Every key of the Redis projections' versions of test `id`, as `DUMP` has them, with their
/// time to live in milliseconds (-1: none).
async fn redis_snapshot(id: &str) -> Vec<(String, Vec<u8>, i64)> {
    let mut redis = surge_testkit::redis().await;
    let mut snapshot = Vec::new();
    for key in redis_projection_keys(&mut redis, id).await {
        let (dump, ttl): (Option<Vec<u8>>, i64) = redis::pipe()
            .cmd("DUMP")
            .arg(&key)
            .cmd("PTTL")
            .arg(&key)
            .query_async(&mut redis)
            .await
            .unwrap();
        if let Some(dump) = dump {
            snapshot.push((key, dump, ttl));
        }
    }
    snapshot
}

/// Puts the Redis projections' versions back to `snapshot`: what a failover to a replica that
/// had not received the writes since leaves (positions, seen ids and data alike).
async fn restore_redis(id: &str, snapshot: &[(String, Vec<u8>, i64)]) {
    let mut redis = surge_testkit::redis().await;
    let keys = redis_projection_keys(&mut redis, id).await;
    if !keys.is_empty() {
        redis::cmd("DEL")
            .arg(keys)
            .query_async::<()>(&mut redis)
            .await
            .unwrap();
    }
    for (key, dump, ttl) in snapshot {
        redis::cmd("RESTORE")
            .arg(key)
            .arg((*ttl).max(0))
            .arg(dump.as_slice())
            .query_async::<()>(&mut redis)
            .await
            .unwrap();
    }
}

/// A Redis that lost acknowledged writes (after a failover to a replica that had not received
/// them; here, put back to an earlier snapshot while the processor runs) holds positions behind
/// what the processor applied. The processor reads those partitions again from the positions
/// the store holds, so each event counts once, and none is skipped: found by the next batch
/// when new events come, and by its periodic check of the positions when none does.
#[tokio::test]
async fn a_redis_that_lost_acknowledged_writes_is_caught_up_again_each_event_once() {
    let (writer, processor) = a_processor_after_a_round().await;
    let snapshot = redis_snapshot(&writer.id).await;
    assert!(!snapshot.is_empty());
    traffic(&writer, 1..13, 1).await;
    wait_caught_up(&writer, &[&processor]).await;
    // New events follow the loss.
    restore_redis(&writer.id, &snapshot).await;
    traffic(&writer, 1..13, 2).await;
    wait_caught_up(&writer, &[&processor]).await;
    assert_folded(&writer).await;
    // None does.
    let snapshot = redis_snapshot(&writer.id).await;
    traffic(&writer, 1..13, 3).await;
    wait_caught_up(&writer, &[&processor]).await;
    restore_redis(&writer.id, &snapshot).await;
    wait_caught_up(&writer, &[&processor]).await;
    assert_folded(&writer).await;
    assert!(
        processor.logs().contains("the store lost writes"),
        "the processor said why it read partitions again:\n{}",
        processor.logs()
    );
}

/// Moves every claim of test `id`'s projections (PostgreSQL and Redis, version 1) back by one:
/// what a failover to a replica that had not received the claims' writes leaves, while the
/// processors that made them go on.
async fn lose_claims(app: &TestApp) {
    let pool = crate::helpers::pg_pool(&app.id).await;
    let lowered = sqlx::query("UPDATE projection_positions SET generation = generation - 1")
        .execute(&pool)
        .await
        .unwrap()
        .rows_affected();
    assert!(lowered > 0, "no PostgreSQL claim to lose");
    let mut redis = surge_testkit::redis().await;
    for projection in redis_projections() {
        let version = naming::keys_base(&app.id, projection, 1);
        let mut lowered = 0;
        for partition in 0..PARTITIONS {
            let base = naming::partition_keys_base(&version, partition);
            let key = naming::generations_key(&base);
            let generations: BTreeMap<String, i64> = redis::cmd("HGETALL")
                .arg(&key)
                .query_async(&mut redis)
                .await
                .unwrap();
            for (field, generation) in generations {
                redis::cmd("HSET")
                    .arg(&key)
                    .arg(field)
                    .arg(generation - 1)
                    .query_async::<()>(&mut redis)
                    .await
                    .unwrap();
                lowered += 1;
            }
        }
        assert!(lowered > 0, "no Redis claim of {projection} to lose");
    }
}

/// A store that lost a processor's claim (its fencing generation went back below the claim's)
/// fences nobody: no one claimed since. The processor claims the partitions again and goes on,
/// where it would otherwise drop them as fenced and leave them behind until the next rebalance.
#[tokio::test]
async fn a_store_that_lost_a_claim_is_claimed_again_and_goes_on() {
    let (writer, processor) = a_processor_after_a_round().await;
    lose_claims(&writer).await;
    traffic(&writer, 1..13, 1).await;
    wait_caught_up(&writer, &[&processor]).await;
    assert_folded(&writer).await;
    assert!(
        processor.logs().contains("the store lost the claim"),
        "the processor said why it claimed partitions again:\n{}",
        processor.logs()
    );
}

/// A Redis restarted without persistence has nothing: no data, no positions, no claims, no
/// versions. The processor finds its positions gone (on its next batch, or its periodic check
/// for a quiet partition), claims the partitions again and folds them from the topic's start,
/// so each event counts once.
#[tokio::test]
async fn a_redis_restarted_empty_is_filled_again_from_the_topic() {
    let (writer, processor) = a_processor_after_a_round().await;
    let mut redis = surge_testkit::redis().await;
    for projection in redis_projections() {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(naming::all_versions_keys_pattern(&writer.id, projection))
            .query_async(&mut redis)
            .await
            .unwrap();
        assert!(keys.iter().any(|k| k.ends_with(":versions")), "{keys:?}");
        redis::cmd("DEL")
            .arg(keys)
            .query_async::<()>(&mut redis)
            .await
            .unwrap();
    }
    // Found by the periodic check alone: no new event comes.
    wait_caught_up(&writer, &[&processor]).await;
    assert_folded(&writer).await;
    // And with new events.
    traffic(&writer, 1..13, 1).await;
    wait_caught_up(&writer, &[&processor]).await;
    assert_folded(&writer).await;
}
