//! Several instances of every role on the real broker: two write APIs, three processors and two
//! query APIs (one of them reading through the test database's streaming replica), with requests
//! spread over them, and one instance of each role SIGKILLed mid-run.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::fold::fold_topic;
use crate::helpers::{Options, TestApp, init_data, json as body_of, spawn_app, start, started};
use crate::processing::{processor, referrers_first, traffic, wait_for_split};
use crate::projected::{assert_projections_equal_fold, wait_caught_up};

const DEADLINE: Duration = Duration::from_secs(120);
const USERS: std::ops::Range<i64> = 1..31;

/// A query API of test `id`. Its consistency wait outlasts a killed processor's session timeout
/// (6 s) and the rebalance after it, so a read with the token of an event on a partition the
/// killed processor held waits for the new owner instead of answering 504.
fn query_api(id: &str, read_replica: bool) -> TestApp {
    let mut env = vec![("SURGE_CONSISTENCY_WAIT_MS", "60000".to_owned())];
    if read_replica {
        env.push((
            "SURGE_DATABASE_READ_URLS",
            surge_testkit::read_replica_url(),
        ));
    }
    let options = Options {
        role: Some("query-api"),
        env,
        ..Options::default()
    };
    started(id, options)
}

/// Taps for every user, each on the next write API in turn, each read back with its token on
/// the next query API in turn: every read answers 200 with the caller's wallet. Counts the
/// users done in `done`.
async fn taps_read_back(
    writers: &[&TestApp],
    readers: &[&TestApp],
    users: std::ops::Range<i64>,
    done: &AtomicUsize,
) {
    for (turn, user) in users.enumerate() {
        let writer = writers[turn % writers.len()];
        let written = writer
            .request("POST", "/v1/taps")
            .header("authorization", format!("tma {}", init_data(user)))
            .json(&json!({ "count": 2 }))
            .send()
            .await
            .unwrap();
        assert_eq!(written.status(), 202, "a write on {}", writer.url);
        let token = body_of(written).await["position"]
            .as_str()
            .unwrap()
            .to_owned();
        let reader = readers[turn % readers.len()];
        let read = reader
            .request("GET", "/v1/me")
            .header("authorization", format!("tma {}", init_data(user)))
            .header("x-consistency-token", &token)
            .send()
            .await
            .unwrap();
        let status = read.status();
        let body = body_of(read).await;
        assert_eq!(status, 200, "a read on {}: {body}", reader.url);
        assert!(body["wallet"]["balance"].as_i64().unwrap() >= 2, "{body}");
        done.fetch_add(1, Ordering::Relaxed);
    }
}

#[tokio::test]
async fn several_instances_of_every_role_lose_nothing_when_one_of_each_is_sigkilled_reading_through_a_read_replica()
 {
    let writer = spawn_app().await;
    let id = writer.id.clone();
    let second_writer = start(&id, Options::default()).expect("a second write API");
    let processors = [processor(&writer), processor(&writer), processor(&writer)];
    let reader = query_api(&id, false);
    let replica_reader = query_api(&id, true);
    wait_for_split(&processors.iter().collect::<Vec<_>>()).await;

    referrers_first(&writer, USERS).await;
    traffic(&writer, 1..16, 0).await;
    traffic(&second_writer, 16..31, 0).await;
    let done = AtomicUsize::new(0);
    taps_read_back(
        &[&writer, &second_writer],
        &[&reader, &replica_reader],
        USERS,
        &done,
    )
    .await;
    let replica_reads = replica_reader.metrics().await;
    assert!(
        replica_reads.lines().any(|l| {
            l.starts_with("query_api_postgres_reads_total{database=") && !l.contains("\"primary\"")
        }),
        "the second query API read through the replica:\n{replica_reads}"
    );

    // Mid-run: writes and reads go on against the instances that stay while one of each role
    // is killed, once a few of them are through (a load balancer sends nothing to the killed
    // ones). Reads whose tokens fall on the killed processor's partitions wait for their new
    // owner.
    traffic(&second_writer, 1..16, 1).await;
    let [first, second, third] = processors;
    let done = AtomicUsize::new(0);
    let survivors = async {
        traffic(&writer, 16..31, 1).await;
        taps_read_back(&[&writer], &[&reader], USERS, &done).await;
    };
    let kill = async {
        let started = Instant::now();
        while done.load(Ordering::Relaxed) < 3 {
            assert!(
                started.elapsed() < DEADLINE,
                "no read-back within {DEADLINE:?}"
            );
            // Paces the check; the condition is what is waited for.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        third.kill();
        second_writer.kill();
        replica_reader.kill();
    };
    tokio::join!(survivors, kill);
    assert_eq!(done.load(Ordering::Relaxed), USERS.count());

    wait_caught_up(&writer, &[&first, &second]).await;
    let expected = fold_topic(&writer, writer.record_count() as usize).await;
    assert_eq!(expected.len(), USERS.count());
    assert_projections_equal_fold(&writer, &expected).await;
}
