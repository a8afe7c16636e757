//! The write API on a Redis Cluster (`SURGE_REDIS_CLUSTER_URLS`, `scripts/services.sh
//! --redis-cluster`): idempotency and tap energy keep their rules with every user's keys in one
//! slot, on each of the three masters, through a master's failover. Payments on the cluster:
//! `payments.rs`; the processors and the query API: `redis_cluster_projections.rs`.

use serde_json::{Value, json};
use surge_redis::Redis;

use crate::helpers::{Options, TestApp, init_data, json as body, spawn_app_with};

/// Users whose keys live on each of the three masters (slots 1584, 5649 and 14039 of
/// 0-5460, 5461-10922 and 10923-16383).
const USERS: [i64; 3] = [3, 2, 4];

pub fn on_cluster(mut env: Vec<(&'static str, String)>) -> Options {
    env.push((
        "SURGE_REDIS_CLUSTER_URLS",
        surge_testkit::redis_cluster_urls(),
    ));
    // Nothing listens there: the write API must not need the single Redis.
    env.push(("SURGE_REDIS_URL", "redis://127.0.0.1:1".to_owned()));
    Options {
        env,
        ..Options::default()
    }
}

async fn tap(app: &TestApp, user: i64, key: &str, count: i64) -> reqwest::Response {
    app.request("POST", "/v1/taps")
        .header("authorization", format!("tma {}", init_data(user)))
        .header("idempotency-key", key)
        .json(&json!({ "count": count }))
        .send()
        .await
        .expect("the write API answers")
}

pub async fn slot_of(redis: &Redis, key: &str) -> i64 {
    redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(key)
        .query_async(&mut redis.clone())
        .await
        .unwrap()
}

#[tokio::test]
async fn the_write_api_on_redis_cluster_keeps_idempotency_and_energy_per_user_in_one_slot() {
    let app = spawn_app_with(on_cluster(vec![
        ("SURGE_TAP_ENERGY_CAPACITY", "100".into()),
        ("SURGE_TAP_ENERGY_REFILL_PER_SEC", "1".into()),
    ]))
    .await;
    for user in USERS {
        // 60 of a bar of 100, then 60 more: refused unless 20 s passed in between.
        let first = tap(&app, user, "k1", 60).await;
        assert_eq!(first.status(), 202, "user {user}");
        let first: Value = body(first).await;
        let retry = tap(&app, user, "k1", 60).await;
        assert_eq!(retry.status(), 202);
        assert_eq!(retry.headers()["idempotent-replayed"], "true");
        assert_eq!(body(retry).await, first, "the retry answers the same");
        let reused = tap(&app, user, "k1", 61).await;
        assert_eq!(reused.status(), 422);
        let over = tap(&app, user, "k2", 60).await;
        assert_eq!(over.status(), 429, "60 taps of a bar holding about 40");
        assert_eq!(body(over).await["error"]["code"], "out_of_energy");
    }
    assert_eq!(
        app.record_count(),
        USERS.len() as i64,
        "one event per user: retries and refusals appended nothing"
    );

    let redis = surge_testkit::redis_cluster().await;
    let masters = USERS.len();
    let mut slots = Vec::new();
    for user in USERS {
        let energy = format!("{}:energy:{{{user}}}", app.id);
        let record = format!("{}:idem:{{{user}}}:k1", app.id);
        let exists: (bool, bool) = (
            redis::cmd("EXISTS")
                .arg(&energy)
                .query_async(&mut redis.clone())
                .await
                .unwrap(),
            redis::cmd("EXISTS")
                .arg(&record)
                .query_async(&mut redis.clone())
                .await
                .unwrap(),
        );
        assert_eq!(exists, (true, true), "user {user}'s bar and record");
        let slot = slot_of(&redis, &energy).await;
        assert_eq!(slot, slot_of(&redis, &record).await);
        slots.push(slot / 5461);
    }
    slots.dedup();
    assert_eq!(
        slots.len(),
        masters,
        "the users' keys are spread over the masters"
    );
    surge_testkit::delete_keys(&mut redis.clone(), &app.id)
        .await
        .unwrap();
}

/// Starts the test cluster's killed node again when dropped, even after a failed assertion,
/// and waits until the cluster is whole (`scripts/services.sh --redis-cluster`, which knows
/// the cluster it made on 7101-7106, not one named by `SURGE_TEST_REDIS_CLUSTER_URLS`).
pub struct RestartsTheCluster;

impl Drop for RestartsTheCluster {
    fn drop(&mut self) {
        let status = std::process::Command::new("bash")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/services.sh"))
            .arg("--redis-cluster")
            .status()
            .expect("run scripts/services.sh");
        assert!(status.success(), "the Redis Cluster is not whole again");
    }
}

/// One line of `CLUSTER NODES`: the node's id, port and flags, its master's id (`-` for a
/// master) and the slot ranges it serves.
struct Node {
    id: String,
    port: u16,
    flags: String,
    master: String,
    slots: Vec<(i64, i64)>,
}

/// The nodes of the cluster as one of them sees them (empty when none answers).
async fn cluster_nodes(redis: &Redis) -> Vec<Node> {
    let nodes: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query_async(&mut redis.clone())
        .await
        .unwrap_or_default();
    nodes
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let addr = fields[1].split('@').next().unwrap();
            let slots = fields[8..]
                .iter()
                .filter_map(|range| {
                    let (from, to) = range.split_once('-').unwrap_or((range, range));
                    Some((from.parse().ok()?, to.parse().ok()?))
                })
                .collect();
            Node {
                id: fields[0].to_owned(),
                port: addr.rsplit(':').next().unwrap().parse().unwrap(),
                flags: fields[2].to_owned(),
                master: fields[3].to_owned(),
                slots,
            }
        })
        .collect()
}

/// The port of the master serving `slot`.
pub async fn master_port(redis: &Redis, slot: i64) -> u16 {
    let nodes = cluster_nodes(redis).await;
    nodes
        .iter()
        .find(|node| {
            node.flags.contains("master")
                && !node.flags.contains("fail")
                && node
                    .slots
                    .iter()
                    .any(|(from, to)| (*from..=*to).contains(&slot))
        })
        .unwrap_or_else(|| panic!("no master serves slot {slot}"))
        .port
}

/// The ports of the cluster's replicas that are up.
async fn replica_ports(redis: &Redis) -> Vec<u16> {
    let nodes = cluster_nodes(redis).await;
    nodes
        .iter()
        .filter(|node| node.flags.contains("slave") && !node.flags.contains("fail"))
        .map(|node| node.port)
        .collect()
}

/// The port of the replica of the master on `master_port`.
async fn replica_of(redis: &Redis, master_port: u16) -> u16 {
    let nodes = cluster_nodes(redis).await;
    let master = nodes.iter().find(|node| node.port == master_port).unwrap();
    nodes
        .iter()
        .find(|node| node.master == master.id)
        .unwrap_or_else(|| panic!("master {master_port} has no replica"))
        .port
}

/// Whether the node on `port` reads as failed to the others.
pub async fn failed(redis: &Redis, port: u16) -> bool {
    let nodes = cluster_nodes(redis).await;
    nodes
        .iter()
        .any(|node| node.port == port && node.flags.contains("fail"))
}

pub fn kill(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -KILL {pid}");
}

async fn ready(app: &TestApp) -> u16 {
    let response = app.request("GET", "/health/ready").send().await.unwrap();
    response.status().as_u16()
}

/// The process id of the Redis on `port`.
pub async fn pid_of(port: u16) -> u32 {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut conn)
        .await
        .unwrap();
    surge_redis::info_field(&info, "process_id")
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_master_killed_on_redis_cluster_costs_its_users_seconds_of_503_and_no_acknowledged_tap() {
    let app = spawn_app_with(on_cluster(Vec::new())).await;
    let redis = surge_testkit::redis_cluster().await;
    let (victim, bystander) = (USERS[0], USERS[1]);
    let port = master_port(&redis, slot_of(&redis, &format!("{{{victim}}}")).await).await;
    let pid = pid_of(port).await;
    let _restart = RestartsTheCluster;

    let mut accepted = 0;
    let mut statuses = Vec::new();
    let mut killed_at = None;
    let mut back_after_kill = 0;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    // Taps of both users, one at a time, until the victim's taps have been accepted ten times
    // in a row after the kill.
    while back_after_kill < 10 {
        assert!(
            std::time::Instant::now() < deadline,
            "the victim's taps were not accepted again within 90 s: {statuses:?}"
        );
        if killed_at.is_none() && accepted >= 10 {
            kill(pid);
            killed_at = Some(statuses.len());
        }
        for user in [victim, bystander] {
            let response = app
                .write("POST", "/v1/taps", user, json!({ "count": 1 }))
                .await;
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            assert!(
                status == 202 || (status == 503 && text.contains("unavailable")),
                "user {user}: {status} {text}"
            );
            accepted += usize::from(status == 202);
            if user == victim && killed_at.is_some() {
                back_after_kill = if status == 202 {
                    back_after_kill + 1
                } else {
                    0
                };
            }
            statuses.push((user, status));
        }
    }
    assert_eq!(
        app.record_count(),
        accepted as i64,
        "every 202 is in the topic, and no 503 appended anything"
    );
    let refused = statuses.iter().filter(|(_, s)| *s == 503).count();
    eprintln!(
        "master {port} (pid {pid}) killed after {} taps; {refused} answered 503, {accepted} accepted",
        killed_at.unwrap()
    );
    let new_master = master_port(&redis, slot_of(&redis, &format!("{{{victim}}}")).await).await;
    assert_ne!(new_master, port, "a replica took over the victim's slot");
    assert_eq!(ready(&app).await, 200, "ready once every slot has a master");
}

#[tokio::test]
async fn a_replica_down_on_redis_cluster_leaves_the_write_api_ready_and_writing() {
    let app = spawn_app_with(on_cluster(Vec::new())).await;
    let redis = surge_testkit::redis_cluster().await;
    assert_eq!(ready(&app).await, 200);
    let port = replica_ports(&redis).await[0];
    let pid = pid_of(port).await;
    let _restart = RestartsTheCluster;
    kill(pid);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !failed(&redis, port).await {
        assert!(
            std::time::Instant::now() < deadline,
            "replica {port} never read as failed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    for _ in 0..5 {
        assert_eq!(ready(&app).await, 200, "a replica down is not an outage");
    }
    for user in USERS {
        let response = app
            .write("POST", "/v1/taps", user, json!({ "count": 1 }))
            .await;
        assert_eq!(response.status(), 202, "user {user}");
    }
}

#[tokio::test]
async fn a_keyed_tap_on_redis_cluster_waits_for_its_record_on_a_replica_and_without_one_is_undone()
{
    let app = spawn_app_with(on_cluster(vec![
        ("SURGE_IDEMPOTENCY_REPLICAS", "1".into()),
        // A replica slowed by a busy machine still answers in time; a dead one costs 1 s.
        ("SURGE_IDEMPOTENCY_REPLICA_WAIT_MS", "1000".into()),
        ("SURGE_TAP_ENERGY_CAPACITY", "100".into()),
        ("SURGE_TAP_ENERGY_REFILL_PER_SEC", "1".into()),
    ]))
    .await;
    let redis = surge_testkit::redis_cluster().await;
    let user = USERS[0];
    let record = |key: &str| format!("{}:idem:{{{user}}}:{key}", app.id);
    let master = master_port(&redis, slot_of(&redis, &record("k1")).await).await;
    let replica = replica_of(&redis, master).await;

    let first = tap(&app, user, "k1", 40).await;
    assert_eq!(first.status(), 202);
    // Acknowledged only once the replica has the record: it is there without waiting.
    let client = redis::Client::open(format!("redis://127.0.0.1:{replica}")).unwrap();
    let mut on_replica = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("READONLY")
        .query_async(&mut on_replica)
        .await
        .unwrap();
    let copy: Option<String> = redis::cmd("GET")
        .arg(record("k1"))
        .query_async(&mut on_replica)
        .await
        .unwrap();
    assert!(
        copy.is_some_and(|r| r.contains("event_ids")),
        "on replica {replica}"
    );

    let restart = RestartsTheCluster;
    kill(pid_of(replica).await);
    let refused = tap(&app, user, "k2", 30).await;
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key("retry-after"));
    let refused: Value = body(refused).await;
    assert_eq!(
        refused["error"]["code"], "idempotency_not_replicated",
        "{refused}"
    );
    let left: bool = redis::cmd("EXISTS")
        .arg(record("k2"))
        .query_async(&mut redis.clone())
        .await
        .unwrap();
    assert!(!left, "the refused attempt's record is undone");
    assert_eq!(app.record_count(), 1, "the refused tap appended nothing");

    drop(restart);
    // The retry with the same key goes through once the replica is back and in sync.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let retry = tap(&app, user, "k2", 30).await;
        match retry.status().as_u16() {
            202 => break,
            503 => assert!(
                std::time::Instant::now() < deadline,
                "the retry never went through: {}",
                retry.text().await.unwrap()
            ),
            status => panic!("{status} {}", retry.text().await.unwrap()),
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // 100 - 40 - 30 leaves 30 (and the refill) only if the refused attempt's 30 were given
    // back; else 28 more would wait 28 s for the bar.
    let rest = app
        .write("POST", "/v1/taps", user, json!({ "count": 28 }))
        .await;
    assert_eq!(rest.status(), 202, "{}", rest.text().await.unwrap());
    assert_eq!(app.record_count(), 3);
    surge_testkit::delete_keys(&mut redis.clone(), &app.id)
        .await
        .unwrap();
}

#[tokio::test]
async fn keyed_taps_retried_across_a_master_failover_on_redis_cluster_are_appended_once_each() {
    let app = spawn_app_with(on_cluster(vec![
        ("SURGE_IDEMPOTENCY_REPLICAS", "1".into()),
        ("SURGE_IDEMPOTENCY_REPLICA_WAIT_MS", "1000".into()),
    ]))
    .await;
    let redis = surge_testkit::redis_cluster().await;
    let user = USERS[0];
    let port = master_port(&redis, slot_of(&redis, &format!("{{{user}}}")).await).await;
    let pid = pid_of(port).await;
    let mut restart = Some(RestartsTheCluster);

    // Thirty keyed taps, each retried with its key until accepted, as the TypeScript client
    // does; the user's master is killed before the eleventh.
    let started = std::time::Instant::now();
    let deadline = started + std::time::Duration::from_secs(90);
    let mut answers = std::collections::BTreeMap::<String, usize>::new();
    let (mut killed_at, mut unreplicated_at, mut rejoined_at) = (None, None, None);
    for i in 0..30 {
        if i == 10 {
            kill(pid);
            killed_at = Some(started.elapsed());
        }
        let key = format!("tap-{i}");
        loop {
            let response = tap(&app, user, &key, 1).await;
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            let code = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["error"]["code"].as_str().map(str::to_owned));
            *answers
                .entry(format!("{status} {}", code.as_deref().unwrap_or("")))
                .or_default() += 1;
            match (status, code.as_deref()) {
                (202, _) => break,
                // The replica took over, with no replica of its own: keyed writes wait for
                // one, so they are refused until the killed node rejoins as its replica.
                (503, Some("idempotency_not_replicated")) => {
                    if restart.is_some() {
                        unreplicated_at = Some(started.elapsed());
                        drop(restart.take());
                        rejoined_at = Some(started.elapsed());
                    }
                }
                // The master down, or an attempt cut off by it still holding the key's lock
                // until the lock expires.
                (503 | 409, _) => {}
                _ => panic!("tap {i}: {status} {text}"),
            }
            assert!(
                std::time::Instant::now() < deadline,
                "tap {i} was not accepted within 90 s: {answers:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
    eprintln!(
        "master {port} killed at {killed_at:?}; first refusal for want of a replica at \
         {unreplicated_at:?}; the killed node rejoined by {rejoined_at:?}; done at {:?}; \
         answers: {answers:?}",
        started.elapsed()
    );
    assert!(
        unreplicated_at.is_some(),
        "the promoted replica, with no replica of its own, refused keyed writes: {answers:?}"
    );
    assert_eq!(
        app.record_count(),
        30,
        "each key appended once, through the failover and its retries"
    );
    let new_master = master_port(&redis, slot_of(&redis, &format!("{{{user}}}")).await).await;
    assert_ne!(new_master, port, "a replica took over the user's slot");
}

/// `Redis::scan` reads every master, so a pattern need not lie within one hash tag: keys of
/// users on each of the three masters are all found, and dropped by one `UNLINK` per page
/// (which the cluster client splits by slot).
#[tokio::test]
async fn a_scan_on_redis_cluster_finds_the_keys_of_every_master() {
    let redis = surge_testkit::redis_cluster().await;
    let prefix = surge_testkit::unique_id("scan");
    let mut written = std::collections::BTreeSet::new();
    for user in USERS {
        for i in 0..40 {
            let key = format!("{prefix}:{}:{i}", redis.slot(user));
            let _: () = redis::cmd("SET")
                .arg(&key)
                .arg(i)
                .query_async(&mut redis.clone())
                .await
                .unwrap();
            written.insert(key);
        }
    }
    let outside = format!("{prefix}x:{}", redis.slot(USERS[0]));
    let _: () = redis::cmd("SET")
        .arg(&outside)
        .arg(1)
        .query_async(&mut redis.clone())
        .await
        .unwrap();
    let mut slots = std::collections::BTreeSet::new();
    for key in &written {
        slots.insert(slot_of(&redis, key).await / 5461);
    }
    assert_eq!(slots.len(), 3, "the keys lie on the three masters");

    let pattern = format!("{prefix}:*");
    let found = scan_all(&redis, &pattern).await;
    assert_eq!(found, written);

    let mut scan = redis.scan(&pattern, 7).await.unwrap();
    while let Some(keys) = scan.next_page(&redis).await.unwrap() {
        if !keys.is_empty() {
            let _: () = redis::cmd("UNLINK")
                .arg(&keys)
                .query_async(&mut redis.clone())
                .await
                .unwrap();
        }
    }
    assert!(scan_all(&redis, &pattern).await.is_empty());
    let left: i64 = redis::cmd("EXISTS")
        .arg(&outside)
        .query_async(&mut redis.clone())
        .await
        .unwrap();
    assert_eq!(left, 1, "a key outside the pattern stays");
    let _: () = redis::cmd("UNLINK")
        .arg(&outside)
        .query_async(&mut redis.clone())
        .await
        .unwrap();
}

async fn scan_all(redis: &Redis, pattern: &str) -> std::collections::BTreeSet<String> {
    let mut found = std::collections::BTreeSet::new();
    let mut scan = redis.scan(pattern, 10).await.unwrap();
    while let Some(keys) = scan.next_page(redis).await.unwrap() {
        found.extend(keys);
    }
    found
}
