//! The capacity model's measurements (README, "Capacity"): what one active user and one event
//! cost in Redis and PostgreSQL, and the CPU each role spends per 1,000 events. Ignored by the
//! test command; run it with
//! `cargo nextest run -p surge --test e2e --run-ignored only --no-capture capacity`
//! (`SURGE_CAPACITY_USERS`, default 2,000; the debug processor applies about 600 events/s here,
//! so at 10,000 users it does not catch up with phase B within `wait_caught_up`'s deadline).
//!
//! Two phases on the real broker, stores and binaries: phase A makes every user active (a
//! session, a check-in and 5 taps each), phase B adds 20 more taps per user. Store bytes are
//! summed per key family (Redis: `MEMORY USAGE` of every key of the deployment, digits folded)
//! and per table (PostgreSQL: `pg_total_relation_size`, indexes and TOAST included). A family
//! that grows from A to B grows with events; one that does not is per user.

use std::collections::BTreeMap;
use std::time::Instant;

use futures::StreamExt;
use serde_json::json;

use crate::helpers::{TestApp, init_data, pg_pool, spawn_app};
use crate::processing::processor;
use crate::projected::{redis_conn, wait_caught_up};

/// Bytes per key family (Redis) or table (PostgreSQL).
type Sizes = BTreeMap<String, i64>;

async fn redis_sizes(prefix: &str) -> Sizes {
    let mut redis = redis_conn().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut redis)
        .await
        .unwrap();
    let mut sizes = Sizes::new();
    for key in keys {
        let bytes: Option<i64> = redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(&key)
            .arg("SAMPLES")
            .arg(0)
            .query_async(&mut redis)
            .await
            .unwrap();
        let family = key[prefix.len() + 1..]
            .split(':')
            .map(|part| {
                // User ids, event ids, days and weeks; not versions (`v1`).
                let numbered = part.bytes().any(|b| b.is_ascii_digit());
                if numbered && (part.len() >= 4 || part.bytes().all(|b| b.is_ascii_digit())) {
                    "#"
                } else {
                    part
                }
            })
            .collect::<Vec<_>>()
            .join(":");
        *sizes.entry(format!("redis {family}")).or_default() += bytes.unwrap_or(0);
    }
    sizes
}

async fn postgres_sizes(schema: &str) -> Sizes {
    let pool = pg_pool(schema).await;
    sqlx::query_as::<_, (String, i64)>(
        "SELECT c.relname::text, pg_total_relation_size(c.oid) FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')",
    )
    .bind(schema)
    .fetch_all(&pool)
    .await
    .unwrap()
    .into_iter()
    .map(|(table, bytes)| (format!("postgres {table}"), bytes))
    .collect()
}

/// CPU seconds (user + system) `pid` has used, and its resident memory in bytes.
fn cpu_and_rss(pid: u32) -> (f64, i64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command's closing parenthesis; utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss_kb: i64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0);
    // CLK_TCK is 100 on Linux.
    (ticks / 100.0, rss_kb * 1024)
}

/// One request per user at a time, 64 users at once; every answer must be a 202.
async fn each_user(writer: &TestApp, users: i64, path: &str, body: serde_json::Value) {
    futures::stream::iter(1..=users)
        .map(|user| {
            let request = writer
                .request("POST", path)
                .header("authorization", format!("tma {}", init_data(user)))
                .json(&body)
                .send();
            async move { request.await.unwrap().status() }
        })
        .buffer_unordered(64)
        .for_each(|status| async move { assert_eq!(status, 202) })
        .await;
}

struct Phase {
    events: i64,
    sizes: Sizes,
    writer_cpu: f64,
    processor_cpu: f64,
}

async fn measure(writer: &TestApp, processor: &TestApp) -> Phase {
    wait_caught_up(writer, &[processor]).await;
    let mut sizes = redis_sizes(&writer.id).await;
    sizes.extend(postgres_sizes(&writer.id).await);
    Phase {
        events: writer.end_offsets().iter().sum(),
        sizes,
        writer_cpu: cpu_and_rss(writer.pid()).0,
        processor_cpu: cpu_and_rss(processor.pid()).0,
    }
}

#[tokio::test]
#[ignore = "a measurement for the README's capacity model, not a check"]
async fn capacity_bytes_per_user_and_event_and_cpu_per_thousand_events() {
    let users: i64 = std::env::var("SURGE_CAPACITY_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let writer = spawn_app().await;
    let processor = processor(&writer);
    let started = Instant::now();

    each_user(&writer, users, "/v1/sessions", json!({})).await;
    each_user(&writer, users, "/v1/checkins", json!({})).await;
    for _ in 0..5 {
        each_user(&writer, users, "/v1/taps", json!({ "count": 3 })).await;
    }
    let a = measure(&writer, &processor).await;
    for _ in 0..20 {
        each_user(&writer, users, "/v1/taps", json!({ "count": 3 })).await;
    }
    let b = measure(&writer, &processor).await;

    let added = (b.events - a.events) as f64;
    println!(
        "{users} users; phase A {} events, phase B {} more (taps); {:.0} s",
        a.events,
        b.events - a.events,
        started.elapsed().as_secs_f64()
    );
    println!(
        "| store: family or table | bytes after A | bytes after B | per user after A | per added tap event |"
    );
    println!("|---|---:|---:|---:|---:|");
    let (mut total_a, mut total_b) = (0, 0);
    for (name, after_b) in &b.sizes {
        let after_a = a.sizes.get(name).copied().unwrap_or(0);
        total_a += after_a;
        total_b += after_b;
        println!(
            "| {name} | {after_a} | {after_b} | {:.1} | {:.1} |",
            after_a as f64 / users as f64,
            (after_b - after_a) as f64 / added
        );
    }
    for store in ["redis", "postgres"] {
        let sum = |sizes: &Sizes| -> i64 {
            sizes
                .iter()
                .filter(|(name, _)| name.starts_with(store))
                .map(|(_, bytes)| bytes)
                .sum()
        };
        let (in_a, in_b) = (sum(&a.sizes), sum(&b.sizes));
        println!(
            "| **{store}, all** | {in_a} | {in_b} | {:.1} | {:.1} |",
            in_a as f64 / users as f64,
            (in_b - in_a) as f64 / added
        );
    }
    assert!(total_b >= total_a);
    let (_, writer_rss) = cpu_and_rss(writer.pid());
    let (_, processor_rss) = cpu_and_rss(processor.pid());
    println!(
        "CPU seconds per 1,000 events in phase B: write API {:.3}, processor (every projection) {:.3}",
        (b.writer_cpu - a.writer_cpu) / added * 1000.0,
        (b.processor_cpu - a.processor_cpu) / added * 1000.0
    );
    println!(
        "resident memory after B: write API {:.1} MiB, processor {:.1} MiB",
        writer_rss as f64 / 1048576.0,
        processor_rss as f64 / 1048576.0
    );
}
