//! The processors and the query API on a Redis Cluster (`SURGE_REDIS_CLUSTER_URLS`,
//! `scripts/services.sh --redis-cluster`). Each partition of a projection version has a key
//! space tagged with the partition (`<prefix>:feed:v1:{p3}:...`), so a partition's batch, its
//! position and its users' keys are one script in one slot, and the partitions spread over the
//! masters: processors killed mid-stream, reads that wait for their writes (and a live stream
//! fed through the cluster's pub/sub), and a master holding partitions killed under
//! processing, each ending with every projection equal to an independent fold.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::json;
use surge_projections::naming;
use surge_projections::partitioning::partition_of_user;
use surge_redis::Redis;

use crate::fold::fold_topic;
use crate::helpers::{Options, PARTITIONS, TestApp, spawn_app_with, started};
use crate::live::{Resume, Stream};
use crate::processing::{processor_options, referrers_first, traffic};
use crate::projected::{assert_projections_equal_fold, wait_caught_up};
use crate::query::{get, ok, stack_with, tap};
use crate::redis_cluster::{
    RestartsTheCluster, failed, kill, master_port, on_cluster, pid_of, slot_of,
};

const DEADLINE: Duration = Duration::from_secs(120);

fn processor_on_cluster(writer: &TestApp) -> TestApp {
    let mut options = processor_options();
    options.env.extend(on_cluster(Vec::new()).env);
    started(&writer.id, options)
}

/// The keys of the Redis projections' versions of test `id` on every master of the cluster
/// (their versions hashes left out), and the slots they are in.
async fn projection_keys(redis: &Redis, id: &str) -> (Vec<String>, BTreeSet<i64>) {
    let mut keys = Vec::new();
    for projection in ["leaderboard", "feed"] {
        let pattern = naming::all_versions_keys_pattern(id, projection);
        let versions = naming::versions_key(id, projection);
        let mut scan = redis.scan(&pattern, 1000).await.unwrap();
        while let Some(page) = scan.next_page(redis).await.unwrap() {
            keys.extend(page.into_iter().filter(|key| *key != versions));
        }
    }
    let mut slots = BTreeSet::new();
    for key in &keys {
        slots.insert(slot_of(redis, key).await);
    }
    (keys, slots)
}

/// Deletes what test `id` left on the cluster: the write API's keys and the projections'.
async fn clean_up(redis: &Redis, id: &str) {
    surge_testkit::delete_keys(&mut redis.clone(), id)
        .await
        .unwrap();
}

/// The slot of `partition`'s key space (of any projection version).
async fn partition_slot(redis: &Redis, partition: i32) -> i64 {
    slot_of(redis, &naming::partition_keys_base("any", partition)).await
}

#[tokio::test]
async fn processors_sigkilled_on_redis_cluster_lose_nothing_and_count_nothing_twice() {
    let writer = spawn_app_with(on_cluster(Vec::new())).await;
    let mut processor = processor_on_cluster(&writer);
    referrers_first(&writer, 1..16).await;
    wait_caught_up(&writer, &[&processor]).await;
    for round in 0..3 {
        traffic(&writer, 1..16, round).await;
        processor.kill(); // SIGKILL, mid-stream
        processor = processor_on_cluster(&writer);
    }
    traffic(&writer, 1..16, 3).await;
    wait_caught_up(&writer, &[&processor]).await;
    let expected = fold_topic(&writer, writer.record_count() as usize).await;
    assert_eq!(expected.len(), 15);
    assert_projections_equal_fold(&writer, &expected).await;

    let redis = surge_testkit::redis_cluster().await;
    let (keys, slots) = projection_keys(&redis, &writer.id).await;
    for projection in ["leaderboard", "feed"] {
        assert!(
            keys.iter()
                .any(|k| k.starts_with(&format!("{}:{projection}:v1:{{p", writer.id))),
            "{projection}'s keys are on the cluster, in partitions' key spaces: {keys:?}"
        );
    }
    let mut expected_slots = BTreeSet::new();
    for partition in 0..PARTITIONS {
        expected_slots.insert(partition_slot(&redis, partition).await);
    }
    assert!(
        slots.is_subset(&expected_slots) && slots.len() > 1,
        "every projection key in the slot of a partition, over several: {slots:?} of {expected_slots:?}"
    );
    let mut masters = BTreeSet::new();
    for &slot in &slots {
        masters.insert(master_port(&redis, slot).await);
    }
    assert!(
        masters.len() > 1,
        "the projections spread over the masters: {masters:?}"
    );
    clean_up(&redis, &writer.id).await;
}

#[tokio::test]
async fn reads_on_redis_cluster_wait_for_their_writes_and_live_streams_get_them() {
    let stack = stack_with(on_cluster(Vec::new()).env, true, Vec::new()).await;
    let user = 21;
    let mut stream = Stream::open(&stack, user, Resume::Fresh).await;
    for i in 1..=40_i64 {
        let (token, event_id) = tap(&stack, user, i).await;
        let expected = i * (i + 1) / 2;
        let feed = ok(get(&stack, "/v1/me/feed?limit=1", Some(user), Some(&token)).await).await;
        assert_eq!(
            feed["items"][0]["event_id"],
            event_id.as_str(),
            "write {i}: feed"
        );
        let board = ok(get(&stack, "/v1/leaderboard/all", Some(user), Some(&token)).await).await;
        assert_eq!(board["me"]["score"], expected, "write {i}: leaderboard");
        let me = ok(get(&stack, "/v1/me", Some(user), Some(&token)).await).await;
        assert_eq!(me["wallet"]["balance"], expected, "write {i}: /v1/me");
        let (live, _) = stream
            .first("feed", |feed| {
                feed["items"][0]["event_id"] == event_id.as_str()
            })
            .await;
        assert_eq!(live["items"][0]["count"], i, "write {i}: live feed");
    }
    clean_up(&surge_testkit::redis_cluster().await, &stack.writer.id).await;
}

/// The users of `1..` whose events are on a partition whose key space is on the master on
/// `victim`, and whose write API keys are not there, so the write API keeps accepting their taps
/// while that master fails over and their batches meet the failover.
async fn users_of(redis: &Redis, victim: u16, count: usize) -> Vec<i64> {
    let mut users = Vec::new();
    let mut user = 1;
    while users.len() < count {
        let writes = slot_of(redis, &format!("{{{user}}}")).await;
        let projected = partition_slot(redis, partition_of_user(user, PARTITIONS)).await;
        if master_port(redis, writes).await != victim
            && master_port(redis, projected).await == victim
        {
            users.push(user);
        }
        user += 1;
    }
    users
}

#[tokio::test]
async fn the_projections_master_killed_under_processing_on_redis_cluster_loses_nothing_and_counts_nothing_twice()
 {
    let writer = spawn_app_with(Options {
        env: [
            on_cluster(Vec::new()).env,
            vec![
                ("SURGE_USER_RATE_PER_SEC", "1000".into()),
                ("SURGE_USER_BURST", "1000".into()),
            ],
        ]
        .concat(),
        ..Options::default()
    })
    .await;
    let processor = processor_on_cluster(&writer);
    let redis = surge_testkit::redis_cluster().await;
    // The master of partition 0's key space, with every partition it holds.
    let slot = partition_slot(&redis, 0).await;
    let victim = master_port(&redis, slot).await;
    let pid = pid_of(victim).await;
    let users = users_of(&redis, victim, 12).await;
    let _restart = RestartsTheCluster;

    // Taps and batches of those users, round after round, while the master is killed.
    let tapping = {
        let (url, users) = (writer.url.clone(), users.clone());
        tokio::spawn(async move {
            let http = reqwest::Client::builder().no_proxy().build().unwrap();
            for round in 0..40_i64 {
                for user in &users {
                    let response = http
                        .post(format!("{url}/v1/batch"))
                        .header(
                            "authorization",
                            format!("tma {}", crate::helpers::init_data(*user)),
                        )
                        .json(&json!({ "actions": [
                            { "type": "taps", "count": 1 + (round + user) % 9 },
                            { "type": "taps", "count": 2 },
                        ]}))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status(), 202, "user {user}, round {round}");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    // Kill the master once the processors have applied some of it.
    let started = Instant::now();
    loop {
        let (keys, _) = projection_keys(&redis, &writer.id).await;
        if keys.iter().any(|k| k.ends_with("}:all")) {
            break;
        }
        assert!(started.elapsed() < DEADLINE, "nothing was projected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    kill(pid);
    let killed = Instant::now();
    while !failed(&redis, victim).await {
        assert!(
            killed.elapsed() < DEADLINE,
            "the cluster never saw {victim} fail"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tapping.await.unwrap();
    let new_master = master_port(&redis, slot).await;
    assert_ne!(new_master, victim, "a replica took over partition 0's slot");

    wait_caught_up(&writer, &[&processor]).await;
    let expected = fold_topic(&writer, writer.record_count() as usize).await;
    assert_projections_equal_fold(&writer, &expected).await;
    let logs = processor.logs();
    eprintln!(
        "master {victim} killed; {} batches found the store behind what they had applied",
        logs.matches("the store lost writes").count()
    );
    clean_up(&redis, &writer.id).await;
}
