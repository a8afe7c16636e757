//! Query API read throughput and latency beside two baselines measured in the same run, on the
//! same Redis data, with the same load generator:
//!
//! - **webdis** (Debian package `webdis`), a C HTTP gateway to Redis, answering the same reads
//!   as raw Redis commands (`ZREVRANGE ... WITHSCORES`, `LRANGE`);
//! - **bare axum**: a handler returning the query API's exact response bytes from memory, the
//!   ceiling of any axum service on this machine.
//!
//! Endpoints: `GET /v1/leaderboard/daily` (anonymous: the top 100 of 10 000 players with names),
//! by the query API as configured by default (its top cached for 1 s) and with the cache off
//! (`query_api_uncached`: every request reads Redis), and `GET /v1/me/feed` (authenticated with
//! initData, 20 items, never cached). For each target and endpoint it
//! runs closed-loop load at several concurrency levels (requests/s, p50, p99), then open-loop load
//! at half the query API's peak rate (p99 measured from each request's scheduled send time, so
//! queueing is not hidden). Prints a table and the ratios, and writes JSON to
//! `bench/results/query-api-<unix time>.json`.
//!
//! Goals (printed, never asserted): query API >= 1.5x webdis requests/s; p99 <= 5 ms at half of
//! peak load.
//!
//! ```text
//! apt-get install webdis        # once
//! cargo bench -p surge-projections --bench query_api
//! SURGE_BENCH_SECS=2 SURGE_BENCH_CONCURRENCY=1,16 cargo bench -p surge-projections --bench query_api
//! ```
//! Also: `SURGE_BENCH_DATABASE_URL` (default postgres://postgres@127.0.0.1:5432/surge_bench),
//! `SURGE_REDIS_URL`, `SURGE_BENCH_RESULTS`. The server side (query API or bare axum) runs on a
//! 2-thread runtime of its own; the load generator on another; webdis with 2 threads.

mod data;
mod load;
mod report;
mod targets;

use std::time::Duration;

use anyhow::Context;

use load::{Request, Stats};
use report::{Measured, Report};

/// The `surge` binary's allocator, so the benchmark measures the code as it runs in production.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Settings {
    secs: Duration,
    concurrency: Vec<usize>,
    database_url: String,
    redis_url: String,
    results: std::path::PathBuf,
}

fn settings() -> anyhow::Result<Settings> {
    let var =
        |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
    let secs: f64 = var("SURGE_BENCH_SECS", "5")
        .parse()
        .context("SURGE_BENCH_SECS")?;
    let concurrency = var("SURGE_BENCH_CONCURRENCY", "1,8,32,128")
        .split(',')
        .map(|c| c.trim().parse::<usize>().context("SURGE_BENCH_CONCURRENCY"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    Ok(Settings {
        secs: Duration::from_secs_f64(secs),
        concurrency,
        database_url: var(
            "SURGE_BENCH_DATABASE_URL",
            "postgres://postgres@127.0.0.1:5432/surge_bench",
        ),
        redis_url: var("SURGE_REDIS_URL", "redis://127.0.0.1:6379"),
        results: std::env::var_os("SURGE_BENCH_RESULTS")
            .map_or_else(|| workspace.join("bench/results"), Into::into),
    })
}

fn main() -> anyhow::Result<()> {
    let settings = settings()?;
    let client = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    client.block_on(run(&settings))
}

async fn run(settings: &Settings) -> anyhow::Result<()> {
    let fixture = data::Fixture::create(&settings.database_url, &settings.redis_url).await?;
    let query = targets::QueryApi::start(&fixture, Duration::from_secs(1)).await?;
    let uncached = targets::QueryApi::start(&fixture, Duration::ZERO).await?;
    let requests = [
        ("leaderboard", fixture.leaderboard_request()),
        ("feed", fixture.feed_request()),
    ];
    // The bare handler serves exactly what the query API answered.
    let mut bodies = Vec::new();
    for (name, request) in &requests {
        bodies.push((*name, load::fetch(query.addr, request).await?));
    }
    let bare = targets::Bare::start(&bodies)?;
    let webdis = surge_baselines::Webdis::start(&settings.redis_url)?;
    let webdis_requests = [
        ("leaderboard", fixture.webdis_leaderboard_request()),
        ("feed", fixture.webdis_feed_request()),
    ];

    let mut report = Report::new(settings.secs);
    for (i, (endpoint, request)) in requests.iter().enumerate() {
        let bare_request = Request::get(&format!("/{endpoint}"));
        let webdis_request = &webdis_requests[i].1;
        let mut query_peak = 0.0_f64;
        for &concurrency in &settings.concurrency {
            let mut targets = vec![
                ("query_api", query.addr, request),
                ("webdis", webdis.addr, webdis_request),
                ("bare_axum", bare.addr, &bare_request),
            ];
            if *endpoint == "leaderboard" {
                targets.insert(1, ("query_api_uncached", uncached.addr, request));
            }
            for (target, addr, request) in targets {
                let stats = load::closed_loop(addr, request, concurrency, settings.secs).await?;
                if target == "query_api" {
                    query_peak = query_peak.max(stats.rps);
                }
                print_row(endpoint, target, &format!("c={concurrency}"), &stats);
                report.push(Measured::closed(endpoint, target, concurrency, stats));
            }
        }
        let rate = query_peak / 2.0;
        for (target, addr, request) in [
            ("query_api", query.addr, request),
            ("webdis", webdis.addr, webdis_request),
            ("bare_axum", bare.addr, &bare_request),
        ] {
            let stats = load::open_loop(addr, request, rate, settings.secs).await?;
            print_row(endpoint, target, &format!("{rate:.0}/s"), &stats);
            report.push(Measured::half_peak(endpoint, target, rate, stats));
        }
    }
    report.print_summary();
    let path = report.write(&settings.results)?;
    println!("\nwritten to {}", path.display());
    drop(webdis);
    fixture.remove().await?;
    Ok(())
}

fn print_row(endpoint: &str, target: &str, load: &str, stats: &Stats) {
    println!(
        "{endpoint:<12} {target:<10} {load:>9}  {:>9.0} req/s  p50 {:>7.3} ms  p99 {:>7.3} ms  errors {}",
        stats.rps, stats.p50_ms, stats.p99_ms, stats.errors
    );
}
