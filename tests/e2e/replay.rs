//! `surge replay` against the real stack: rebuilding every projection while the query API is
//! read and written, an interrupted rebuild resuming, and point-in-time rebuilds.

use std::collections::BTreeMap;
use std::process::{Child, Output};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use surge_projections::naming;

use crate::fold::fold_topic;
use crate::helpers::{PARTITIONS, TestApp, init_data, pg_pool};
use crate::processing::{referrers_first, traffic};
use crate::projected::{assert_projections_equal_fold, redis_conn, wait_caught_up};
use crate::projections::projections;
use crate::query::{Stack, stack};

const DEADLINE: Duration = Duration::from_secs(120);

/// `surge replay <args>` for the stack's deployment, with a short drop grace.
fn replay(app: &TestApp, args: &[&str]) -> std::process::Command {
    let mut command = app.cli("replay");
    command
        .args(args)
        .args(["--drop-grace-secs", "2", "--handover-timeout-secs", "30"])
        .env("SURGE_PROCESS_BATCH_WAIT_MS", "5")
        .env("SURGE_PROCESS_FETCH_WAIT_MS", "20");
    command
}

fn finished(output: Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "surge replay failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn versions_of(rows: &[Value], name: &str) -> Vec<(u64, String)> {
    rows.iter()
        .filter(|r| r["projection"] == name)
        .map(|r| {
            (
                r["version"].as_u64().unwrap(),
                r["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// What a reader saw that it should not have: a failed or an empty read.
type Failures = Arc<Mutex<Vec<String>>>;

/// Reads every user's `/v1/me`, feed and the all-time leaderboard until `stop`, recording any
/// answer that is not a 200 with the user's data in it.
async fn read_until(
    stack: Arc<Stack>,
    users: Vec<i64>,
    stop: Arc<AtomicBool>,
    reads: Arc<AtomicUsize>,
    failures: Failures,
) {
    let get = |path: String, user: i64| {
        stack
            .query
            .request("GET", &path)
            .header("authorization", format!("tma {}", init_data(user)))
            .send()
    };
    while !stop.load(Ordering::Relaxed) {
        for &user in &users {
            let (me, feed, board) = tokio::join!(
                get("/v1/me".into(), user),
                get("/v1/me/feed?limit=5".into(), user),
                get("/v1/leaderboard/all?limit=3".into(), user),
            );
            for (what, response) in [("me", me), ("feed", feed), ("leaderboard", board)] {
                reads.fetch_add(1, Ordering::Relaxed);
                let problem = match response {
                    Err(error) => Some(format!("{error}")),
                    Ok(r) if r.status() != 200 => Some(format!("status {}", r.status())),
                    Ok(r) => {
                        let body: Value = r.json().await.unwrap_or_default();
                        let empty = match what {
                            "me" => body["profile"].is_null() || body["wallet"]["balance"] == 0,
                            "feed" => body["items"].as_array().is_none_or(Vec::is_empty),
                            _ => body["entries"].as_array().is_none_or(Vec::is_empty),
                        };
                        empty.then(|| format!("empty: {body}"))
                    }
                };
                if let Some(problem) = problem {
                    failures
                        .lock()
                        .unwrap()
                        .push(format!("{what} of user {user}: {problem}"));
                }
            }
        }
    }
}

/// Taps from `users` until `stop`; every write must be accepted.
async fn tap_until(stack: Arc<Stack>, users: Vec<i64>, stop: Arc<AtomicBool>) -> usize {
    let mut writes = 0;
    while !stop.load(Ordering::Relaxed) {
        let user = users[writes % users.len()];
        let response = stack
            .writer
            .write("POST", "/v1/taps", user, json!({ "count": 3 }))
            .await;
        assert_eq!(response.status(), 202);
        writes += 1;
    }
    writes
}

fn referral_credits(app: &TestApp) -> usize {
    app.read_all()
        .iter()
        .filter(|m| {
            crate::helpers::header(m, "surge-event-type")
                .is_some_and(|t| t.ends_with("ReferralCredited"))
        })
        .count()
}

async fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(started.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn rebuilding_every_projection_under_reads_and_writes_fails_no_read_and_equals_a_fold() {
    // Five rebuilds, their processors and the rest of the suite share two cores here; a read
    // may then take longer than production's 1 s store bound, which would be a 503 about load,
    // not about the switch this test is for.
    let stack = Arc::new(stack(true, vec![("SURGE_QUERY_STORE_TIMEOUT_MS", "5000".into())]).await);
    let writer = &stack.writer;
    let processor = stack.processor.as_ref().unwrap();
    let users: Vec<i64> = (1..13).collect();
    referrers_first(writer, 1..13).await;
    traffic(writer, 1..13, 0).await;
    wait_caught_up(writer, &[processor]).await;
    let credits_before = referral_credits(writer);
    assert!(credits_before > 0, "the traffic credits referrals");

    let stop = Arc::new(AtomicBool::new(false));
    let (reads, failures) = (Arc::new(AtomicUsize::new(0)), Failures::default());
    let readers: Vec<_> = (0..2)
        .map(|_| {
            tokio::spawn(read_until(
                stack.clone(),
                users.clone(),
                stop.clone(),
                reads.clone(),
                failures.clone(),
            ))
        })
        .collect();
    let tapper = tokio::spawn(tap_until(stack.clone(), users.clone(), stop.clone()));

    // Every projection at once, while the readers read and the tapper writes.
    let names: Vec<&str> = surge_processors::projectors::names().collect();
    let rebuilds: Vec<Child> = names
        .iter()
        .map(|name| {
            replay(writer, &[name])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs = tokio::task::spawn_blocking(move || {
        rebuilds
            .into_iter()
            .map(|child| child.wait_with_output().unwrap())
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    for (name, output) in names.iter().zip(outputs) {
        let stdout = finished(output);
        assert!(
            stdout.contains(&format!("{name} v2 is active in place of v1")),
            "{stdout}"
        );
        assert!(stdout.contains("the old version is dropped"), "{stdout}");
    }
    let rows = projections(writer);
    for name in &names {
        assert_eq!(
            versions_of(&rows, name),
            [(2, "active".to_owned())],
            "{name}: {rows:?}"
        );
    }

    stop.store(true, Ordering::Relaxed);
    let taps = tapper.await.unwrap();
    for reader in readers {
        reader.await.unwrap();
    }
    let reads = reads.load(Ordering::Relaxed);
    let failures = failures.lock().unwrap().clone();
    assert!(
        failures.is_empty(),
        "{} of {reads} reads failed or were empty: {failures:#?}",
        failures.len()
    );
    assert!(
        reads >= 100 && taps >= 10,
        "too little traffic to tell: {reads} reads, {taps} taps"
    );

    // The serving processors took over the new versions: they follow new writes...
    traffic(writer, 1..13, 1).await;
    wait_caught_up(writer, &[processor]).await;
    // ...and the new versions equal a fresh fold of the whole topic.
    let expected = fold_topic(writer, writer.record_count() as usize).await;
    assert_projections_equal_fold(writer, &expected).await;
    // The rebuilt deriver emitted nothing while rebuilding: one credit per referral, as before.
    assert_eq!(referral_credits(writer), credits_before);

    // The old versions are gone from both stores.
    let pool = pg_pool(&writer.id).await;
    let old_tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE '%\\_v1\\_%'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(old_tables.is_empty(), "{old_tables:?}");
    let mut redis = redis_conn().await;
    let old_keys: Vec<String> = redis::cmd("KEYS")
        .arg(naming::version_keys_pattern(&naming::keys_base(
            &writer.id, "*", 1,
        )))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(old_keys.is_empty(), "{old_keys:?}");
}

#[tokio::test]
async fn an_interrupted_rebuild_resumes_where_it_stopped() {
    let stack = stack(true, vec![]).await;
    let writer = &stack.writer;
    for user in 1..=20 {
        let actions: Vec<Value> = (1..=100)
            .map(|n| json!({ "type": "taps", "count": n }))
            .collect();
        let response = writer
            .write("POST", "/v1/batch", user, json!({ "actions": actions }))
            .await;
        assert_eq!(response.status(), 202);
    }
    let total = 2000;
    wait_caught_up(writer, &[stack.processor.as_ref().unwrap()]).await;

    // Slowed down so it can be caught mid-way, then killed without warning: at 150 events a
    // second it needs over 13 s, room for `surge projections` to answer on a loaded machine
    // (at 400 a second a busy CI machine once saw it finish before the kill).
    let mut first = replay(
        writer,
        &["wallets", "--max-rate", "150", "--bulk-batch", "50"],
    )
    .stdout(std::process::Stdio::null())
    .spawn()
    .unwrap();
    // Counts are offsets over every topic wallets reads: the quest completions these taps
    // earn, and the transaction markers they are derived under, take offsets too. So the
    // heads, not the 2,000 taps, bound what the two runs apply between them.
    let (applied_before_kill, head) = wait_for("the rebuild to be under way", || {
        let rows = projections(writer);
        let v2 = rows
            .iter()
            .find(|r| r["projection"] == "wallets" && r["version"] == 2)?;
        let applied = v2["applied"].as_i64()?;
        (applied >= 400).then_some((applied, v2["head"].as_i64()?))
    })
    .await;
    first.kill().unwrap();
    first.wait().unwrap();
    let rows = projections(writer);
    assert_eq!(
        versions_of(&rows, "wallets"),
        [(1, "active".to_owned()), (2, "building".to_owned())]
    );
    assert!(applied_before_kill < head, "killed too late to tell");

    // The processors report the stopped rebuild's progress, for the dashboard.
    let processor = stack.processor.as_ref().unwrap();
    let deadline = Instant::now() + DEADLINE;
    loop {
        let metrics = processor.metrics().await;
        let value = |name: &str| {
            let series = format!("{name}{{projection=\"wallets\",version=\"2\"}} ");
            metrics
                .lines()
                .find_map(|line| line.strip_prefix(&series)?.parse::<i64>().ok())
        };
        // Read every few seconds: a reading from before the kill shows less.
        if let (Some(applied), Some(remaining)) = (
            value("processor_rebuild_applied_events"),
            value("processor_rebuild_remaining_events"),
        ) && applied >= applied_before_kill
        {
            assert!(
                remaining > 0 && applied + remaining <= head + 100,
                "{applied} applied, {remaining} remaining of {head}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no rebuild progress past the kill in the processor's metrics:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The same command again picks up version 2 where it stopped.
    let stdout = finished(replay(writer, &["wallets"]).output().unwrap());
    assert!(
        stdout.contains("wallets v2 is active in place of v1"),
        "{stdout}"
    );
    assert!(
        stdout.contains("resumed an interrupted rebuild"),
        "{stdout}"
    );
    let applied: i64 = stdout
        .lines()
        .last()
        .and_then(|l| l.split(": ").nth(1))
        .and_then(|l| l.split(' ').next())
        .map(|n| n.replace(',', "").parse().unwrap())
        .expect("the summary names the events applied");
    assert!(
        applied > 0 && applied <= head - applied_before_kill,
        "the second run applied {applied} of {head} offsets ({total} events), after {applied_before_kill} before the kill"
    );
    wait_caught_up(writer, &[stack.processor.as_ref().unwrap()]).await;
    let expected = fold_topic(writer, writer.record_count() as usize).await;
    assert_projections_equal_fold(writer, &expected).await;
}

/// The query API finds a user's leaderboard shard by `SURGE_EVENTS_PARTITIONS`, so a rebuild
/// (or a processor: both build their sinks alike) told another count than the topic's refuses
/// to start, rather than write shards the readers would miss.
#[tokio::test]
async fn a_rebuild_told_another_partition_count_than_the_topics_refuses_to_start() {
    let stack = stack(false, vec![]).await;
    let output = replay(&stack.writer, &["leaderboard"])
        .env("SURGE_EVENTS_PARTITIONS", (PARTITIONS + 1).to_string())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let expected = format!(
        "the events topic {} has {PARTITIONS} partitions but SURGE_EVENTS_PARTITIONS is {}",
        stack.writer.topic,
        PARTITIONS + 1
    );
    assert!(stderr.contains(&expected), "{stderr}");
    let rows = projections(&stack.writer);
    assert!(
        !rows
            .iter()
            .any(|r| r["projection"] == "leaderboard" && r["version"] == 2),
        "no version was made: {rows:?}"
    );
}

#[tokio::test]
async fn point_in_time_rebuilds_copy_the_days_before_and_are_refused_where_the_state_needs_every_event()
 {
    let stack = stack(true, vec![]).await;
    let writer = &stack.writer;
    traffic(writer, 1..6, 0).await;
    wait_caught_up(writer, &[stack.processor.as_ref().unwrap()]).await;
    let today_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        / 86_400_000
        * 86_400_000;

    // A projection that folds every event since the first cannot start anywhere else.
    let output = replay(writer, &["profiles", "--from", &today_ms.to_string()])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("profiles cannot be rebuilt from a point in time: its state folds every event since the first"),
        "{stderr}"
    );
    assert_eq!(
        versions_of(&projections(writer), "profiles"),
        [(1, "active".to_owned())],
        "nothing changed"
    );

    // Activity keeps days: a day before the start is copied from the serving version as it is
    // (a marker proves it was copied, not replayed); the days from the start are replayed.
    let pool = pg_pool(&writer.id).await;
    let yesterday = today_ms - 86_400_000;
    let date = |ms: i64| {
        time::OffsetDateTime::from_unix_timestamp(ms / 1000)
            .unwrap()
            .date()
    };
    let (day, next) = (date(yesterday), date(today_ms));
    let partition = format!(
        "activity_v1_per_minute_p{:04}{:02}{:02}",
        day.year(),
        u8::from(day.month()),
        day.day()
    );
    sqlx::raw_sql(&format!(
        "CREATE TABLE IF NOT EXISTS {partition} PARTITION OF activity_v1_per_minute \
           FOR VALUES FROM ('{day} 00:00:00+00') TO ('{next} 00:00:00+00'); \
         INSERT INTO activity_v1_per_minute VALUES (to_timestamp({from}), 'Marker', 42)",
        from = yesterday / 1000,
    ))
    .execute(&pool)
    .await
    .unwrap();
    let before: BTreeMap<String, i64> = per_minute(&pool, 1).await;
    let stdout = finished(
        replay(
            writer,
            &[
                "activity",
                "--from",
                &(today_ms + 3_600_000).to_string(),
                "--keep-old",
            ],
        )
        .output()
        .unwrap(),
    );
    assert!(
        stdout.contains("activity v2 is active in place of v1"),
        "{stdout}"
    );
    let after = per_minute(&pool, 2).await;
    assert_eq!(
        after.get("Marker"),
        Some(&42),
        "the day before the start was copied"
    );
    assert_eq!(
        after, before,
        "the copied and the replayed days equal the serving version"
    );

    // Kept with --keep-old, the old version stays, retired, until dropped on request.
    assert_eq!(
        versions_of(&projections(writer), "activity"),
        [(1, "retired".to_owned()), (2, "active".to_owned())]
    );
    assert_eq!(
        per_minute(&pool, 1).await,
        before,
        "the old version is intact"
    );
    let dropped = writer
        .cli("projections")
        .arg("--drop-retired")
        .output()
        .unwrap();
    assert!(dropped.status.success(), "{dropped:?}");
    assert!(String::from_utf8_lossy(&dropped.stderr).contains("dropped activity v1"));
    assert_eq!(
        versions_of(&projections(writer), "activity"),
        [(2, "active".to_owned())]
    );
    let left: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE 'activity\\_v1\\_%'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(left, 0, "the retired version's tables are gone");
}

/// Events per type in `activity_v<version>_per_minute`.
async fn per_minute(pool: &sqlx::PgPool, version: u32) -> BTreeMap<String, i64> {
    sqlx::query_as(&format!(
        "SELECT event_type, sum(events)::bigint FROM {}_per_minute GROUP BY 1",
        naming::table_prefix("activity", version)
    ))
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .collect()
}
