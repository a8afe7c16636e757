//! `surge-loadgen`: a crowd of Mini App users against a running write API and query API.
//!
//! Open loop: request `i` is due at `start + i / rate` whatever happened to the earlier ones,
//! and its latency counts from that due time, so a server that falls behind shows the queueing
//! its users would feel (no coordinated omission). Scenarios:
//! - `steady`: the target rate for the duration, spread over all users;
//! - `spike`: users arrive at a constant pace over `--ramp-secs` (0 to `--users`), each one's
//!   first request a session, then the crowd keeps the same rate to the end;
//! - `freshness`: for each of `--freshness-rates`, the steady crowd at that rate while a probe
//!   measures write-acknowledged → visible-in-the-query-API (see [`freshness`]);
//! - `baselines`: the machine's physical limits beside the system's matching peaks, closed
//!   loop, each phase `--duration-secs` long (see [`baselines`]).
//!
//! Prints a summary table and writes the JSON report (per endpoint p50/p90/p99/p99.9, statuses,
//! accepted writes and events) to `--out` or `bench/results/loadgen-<scenario>-<unix>.json`.

mod baselines;
mod crowd;
mod freshness;
mod lag;
mod plot;
mod report;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use rand::Rng;
use secrecy::ExposeSecret;
use serde_json::json;

use crate::settings::{Common, Telegram};
use crowd::Crowd;
use report::Report;

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scenario {
    Steady,
    Spike,
    Freshness,
    Baselines,
}

#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) telegram: Telegram,
    /// Baselines: the broker, events topic, database and Redis the system uses.
    #[command(flatten)]
    common: Common,
    #[arg(long, value_enum, default_value_t = Scenario::Steady)]
    scenario: Scenario,
    /// The write API; several (comma-separated instances) take the writes in turn.
    #[arg(long, value_delimiter = ',', default_value = "http://127.0.0.1:8080")]
    write_url: Vec<String>,
    #[arg(long, default_value = "http://127.0.0.1:8081")]
    query_url: String,
    /// Requests per second the crowd sends, all endpoints together.
    #[arg(long, default_value_t = 200.0)]
    rate: f64,
    #[arg(long, default_value_t = 30.0)]
    duration_secs: f64,
    /// Distinct users (Telegram ids from --first-user-id on).
    #[arg(long, default_value_t = 1_000)]
    users: usize,
    #[arg(long, default_value_t = 6_000_000_000)]
    first_user_id: i64,
    /// Spike: how long the users take to arrive.
    #[arg(long, default_value_t = 60.0)]
    ramp_secs: f64,
    /// Requests in flight past which the generator skips (and counts) due requests.
    #[arg(long, default_value_t = 10_000)]
    max_in_flight: usize,
    /// Freshness: the crowd's request rates to probe at, one run of --duration-secs each.
    #[arg(long, value_delimiter = ',', default_values_t = vec![100.0, 300.0, 1000.0])]
    freshness_rates: Vec<f64>,
    /// Baselines: closed-loop HTTP workers (the same for every server); enough to keep a
    /// server busy whose requests each wait for the broker's acknowledgement.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Baselines: `name=pid` of processes whose CPU each phase records (roles, broker, Redis).
    #[arg(long, value_delimiter = ',')]
    cpu_pids: Vec<String>,
    /// The processors' metrics (`surge process` /metrics; comma-separated, one per instance,
    /// summed), sampled each second for consumer lag over time (baselines: for the
    /// processors' catch-up).
    #[arg(long, value_delimiter = ',')]
    lag_url: Vec<String>,
    /// Baselines: the pids of the `surge process` instances behind --lag-url, stopped
    /// (SIGSTOP) while the batched writes are made and resumed for their catch-up, so the
    /// catch-up always applies the whole batch as a backlog. Keep --duration-secs under the
    /// processors' session timeout (10 s) or the hold costs them a rebalance.
    #[arg(long, value_delimiter = ',')]
    hold_processors_pid: Vec<u32>,
    /// Where the JSON report goes.
    #[arg(long)]
    out: Option<PathBuf>,
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.rate > 0.0 && args.duration_secs > 0.0,
        "--rate and --duration-secs must be positive"
    );
    anyhow::ensure!(args.users > 0, "--users must be at least 1");
    anyhow::ensure!(
        !args.write_url.is_empty(),
        "--write-url needs at least one URL"
    );
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(args.max_in_flight)
        .build()?;
    let json = match args.scenario {
        Scenario::Steady | Scenario::Spike => {
            let json = drive(&args, args.scenario, args.rate, &client).await?;
            report::print_summary(&json);
            json
        }
        Scenario::Freshness => {
            let mut runs = Vec::new();
            for &rate in &args.freshness_rates {
                anyhow::ensure!(rate > 0.0, "--freshness-rates must be positive");
                let probe = freshness::Probe {
                    client: &client,
                    write_url: &args.write_url[0],
                    query_url: &args.query_url,
                    bot_token: args.telegram.bot_token.expose_secret(),
                    first_user_id: args.first_user_id + args.users as i64,
                };
                let until = Instant::now() + Duration::from_secs_f64(args.duration_secs);
                let (crowd, fresh) = tokio::join!(
                    drive(&args, Scenario::Steady, rate, &client),
                    probe.run(until)
                );
                let crowd = crowd?;
                println!(
                    "crowd at {rate:.0} req/s ({:.0} accepted writes/s): write -> visible p50 {} ms, p99 {} ms, max {} ms over {} probes; not visible within the wait: {}",
                    crowd["accepted_writes_per_sec"]
                        .as_f64()
                        .unwrap_or_default(),
                    fresh["p50_ms"],
                    fresh["p99_ms"],
                    fresh["max_ms"],
                    fresh["samples"],
                    fresh["not_visible_in_time"],
                );
                runs.push(json!({ "rate": rate, "freshness": fresh, "crowd": crowd }));
            }
            json!({ "run": { "scenario": "freshness", "duration_secs": args.duration_secs, "users": args.users }, "rates": runs })
        }
        Scenario::Baselines => {
            let json = baselines::Baselines {
                common: &args.common,
                client: &client,
                write_urls: &args.write_url,
                query_url: &args.query_url,
                bot_token: args.telegram.bot_token.expose_secret(),
                users: (0..args.users as i64)
                    .map(|k| args.first_user_id + k)
                    .collect(),
                concurrency: args.concurrency,
                duration: Duration::from_secs_f64(args.duration_secs),
                processors_urls: &args.lag_url,
                hold_processors: &args.hold_processors_pid,
                cpu_pids: baselines::parse_pids(&args.cpu_pids)?,
            }
            .run()
            .await?;
            baselines::print_summary(&json);
            json
        }
    };
    let out = args.out.unwrap_or_else(|| {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        PathBuf::from(format!(
            "bench/results/loadgen-{}-{now}.json",
            json["run"]["scenario"].as_str().unwrap_or("run")
        ))
    });
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("Failed to create {}", dir.display()))?;
    }
    std::fs::write(&out, serde_json::to_vec_pretty(&json)?)
        .with_context(|| format!("Failed to write {}", out.display()))?;
    println!("report written to {}", out.display());
    if json["timeline"].as_array().is_some_and(|t| t.len() >= 2) {
        let svg = out.with_extension("svg");
        plot::timeline(&json, &svg).with_context(|| format!("Failed to draw {}", svg.display()))?;
        println!("timeline plotted to {}", svg.display());
    }
    Ok(())
}

/// The crowd at `rate` for the duration; the report's JSON.
async fn drive(
    args: &Args,
    scenario: Scenario,
    rate: f64,
    client: &reqwest::Client,
) -> anyhow::Result<serde_json::Value> {
    let crowd = Arc::new(Crowd::new(
        args.first_user_id,
        args.users,
        args.telegram.bot_token.expose_secret().to_owned(),
    ));
    let report = Arc::new(Mutex::new(Report::new()));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let total = (rate * args.duration_secs).round() as u64;
    let mut arrived = 0_usize;
    let mut tasks = tokio::task::JoinSet::new();
    let start = Instant::now();
    let sampler = (!args.lag_url.is_empty()).then(|| {
        let (client, report, urls) = (client.clone(), report.clone(), args.lag_url.clone());
        let end = start + Duration::from_secs_f64(total as f64 / rate);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                // A sample taken after the last request was due would add an empty second.
                if Instant::now() >= end {
                    break;
                }
                let second = start.elapsed().as_secs() as usize;
                if let Some(lag) = lag::sample(&client, &urls).await {
                    report.lock().expect("not poisoned").record_lag(second, lag);
                }
            }
        })
    });
    for i in 0..total {
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
        if in_flight.load(Ordering::Relaxed) >= args.max_in_flight {
            report.lock().expect("not poisoned").dropped += 1;
            continue;
        }
        let index = match scenario {
            Scenario::Steady | Scenario::Freshness | Scenario::Baselines => {
                rand::rng().random_range(0..crowd.size())
            }
            Scenario::Spike => {
                let due_arrivals = arrivals(start.elapsed(), args.ramp_secs, crowd.size()).max(1);
                if arrived < due_arrivals {
                    arrived += 1;
                    arrived - 1
                } else {
                    rand::rng().random_range(0..arrived)
                }
            }
        };
        let (action, authorization, token) = crowd.next(index);
        let (method, path, body) = action.request();
        let base = if action.is_write() {
            &args.write_url[i as usize % args.write_url.len()]
        } else {
            &args.query_url
        };
        let mut request = client
            .request(method, format!("{base}{path}"))
            .header("authorization", authorization);
        if let Some(body) = body {
            request = request.json(&body);
        }
        if let Some(token) = token {
            request = request.header("x-consistency-token", token);
        }
        let second = (i as f64 / rate) as usize;
        let (report, crowd, in_flight) = (report.clone(), crowd.clone(), in_flight.clone());
        in_flight.fetch_add(1, Ordering::Relaxed);
        tasks.spawn(async move {
            let answer = request.send().await;
            let latency = due.elapsed();
            let status = match &answer {
                Ok(response) => {
                    if response.status() == 202
                        && let Some(token) = response
                            .headers()
                            .get("x-consistency-token")
                            .and_then(|v| v.to_str().ok())
                    {
                        crowd.wrote(index, token.to_owned());
                    }
                    response.status().as_u16().to_string()
                }
                Err(_) => "error".to_owned(),
            };
            // Read the body so the connection goes back to the pool.
            if let Ok(response) = answer {
                let _ = response.bytes().await;
            }
            report
                .lock()
                .expect("not poisoned")
                .record(action, &status, latency, second);
            in_flight.fetch_sub(1, Ordering::Relaxed);
        });
        // Reap finished tasks as we go, so the set stays the size of what is in flight.
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    if let Some(sampler) = sampler {
        let _ = sampler.await;
    }
    let elapsed = start.elapsed();

    let run = json!({
        "scenario": format!("{:?}", scenario).to_lowercase(),
        "target_rate": rate,
        "duration_secs": args.duration_secs,
        "users": args.users,
        "ramp_secs": (scenario == Scenario::Spike).then_some(args.ramp_secs),
        "write_urls": args.write_url,
        "query_url": args.query_url,
    });
    let json = report.lock().expect("not poisoned").to_json(run, elapsed);
    Ok(json)
}

/// Users due to have arrived `elapsed` into a ramp of `ramp_secs` towards `users`.
fn arrivals(elapsed: Duration, ramp_secs: f64, users: usize) -> usize {
    if ramp_secs <= 0.0 {
        return users;
    }
    let share = (elapsed.as_secs_f64() / ramp_secs).min(1.0);
    ((users as f64) * share).ceil() as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_arrive_at_a_constant_pace_over_the_ramp() {
        assert_eq!(arrivals(Duration::ZERO, 60.0, 100_000), 0);
        assert_eq!(arrivals(Duration::from_secs(30), 60.0, 100_000), 50_000);
        assert_eq!(arrivals(Duration::from_secs(90), 60.0, 100_000), 100_000);
        assert_eq!(arrivals(Duration::ZERO, 0.0, 7), 7);
    }
}
