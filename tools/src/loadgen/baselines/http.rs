//! Closed-loop HTTP peaks: `concurrency` workers, each sending its next request as soon as the
//! last one answered, for a fixed duration after a short warm-up, through the crowd's own
//! reqwest client. Every HTTP figure of the scenario (bare axum, write API, webdis, query API)
//! is measured by this one loop, so their ratios compare servers, not clients.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::routing::post;
use hdrhistogram::Histogram;
use serde_json::{Value, json};

/// Answers before the measured window are not counted (connections open, caches fill).
const WARMUP: Duration = Duration::from_millis(500);

/// The write API's answer to a single write, byte for byte in shape and size.
const BARE_BODY: &str = r#"{"event_id":"01a204e1-1b58-713c-b28e-221ed28b18a0","position":"v1.c3VyZ2UuZXZlbnRzLzExLzE"}"#;

/// One closed-loop run's outcome over the measured window.
pub(super) struct HttpPeak {
    /// Answers with the expected status per second.
    pub(super) rate: f64,
    pub(super) p50_ms: f64,
    pub(super) p99_ms: f64,
    pub(super) ok: u64,
    pub(super) statuses: BTreeMap<String, u64>,
}

impl HttpPeak {
    pub(super) fn to_json(&self) -> Value {
        json!({
            "rate": self.rate,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "ok": self.ok,
            "statuses": self.statuses,
        })
    }
}

struct Worker {
    latency_us: Histogram<u64>,
    statuses: BTreeMap<String, u64>,
}

/// Runs `make(i)` (the `i`th request) closed loop; answers other than `expect` are counted by
/// status and left out of the rate and latencies.
pub(super) async fn closed_loop<F>(
    client: &reqwest::Client,
    concurrency: usize,
    duration: Duration,
    expect: u16,
    make: F,
) -> anyhow::Result<HttpPeak>
where
    F: Fn(&reqwest::Client, u64) -> reqwest::RequestBuilder + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let next = Arc::new(AtomicU64::new(0));
    let measured_from = Instant::now() + WARMUP;
    let end = measured_from + duration;
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (client, make, next) = (client.clone(), make.clone(), next.clone());
        workers.spawn(async move {
            let mut worker = Worker {
                latency_us: Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds"),
                statuses: BTreeMap::new(),
            };
            loop {
                let started = Instant::now();
                if started >= end {
                    break;
                }
                let request = make(&client, next.fetch_add(1, Ordering::Relaxed));
                let status = match request.send().await {
                    // Read the body so the connection goes back to the pool.
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let _ = response.bytes().await;
                        Some(status)
                    }
                    Err(_) => None,
                };
                if started < measured_from {
                    continue;
                }
                if status == Some(expect) {
                    let micros = started.elapsed().as_micros().max(1) as u64;
                    worker.latency_us.saturating_record(micros);
                }
                let label = status.map_or_else(|| "error".to_owned(), |s| s.to_string());
                *worker.statuses.entry(label).or_default() += 1;
            }
            worker
        });
    }
    let mut latency_us = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
    let mut statuses = BTreeMap::new();
    while let Some(worker) = workers.join_next().await {
        let worker = worker?;
        latency_us.add(&worker.latency_us)?;
        for (status, n) in worker.statuses {
            *statuses.entry(status).or_default() += n;
        }
    }
    let ms = |q: f64| latency_us.value_at_quantile(q) as f64 / 1000.0;
    Ok(HttpPeak {
        rate: latency_us.len() as f64 / duration.as_secs_f64(),
        p50_ms: ms(0.5),
        p99_ms: ms(0.99),
        ok: latency_us.len(),
        statuses,
    })
}

/// A bare axum server in this process, on a 2-thread runtime of its own (as a deployed write
/// API instance runs on this machine): `POST /v1/taps` reads the body and answers 202 with a
/// fixed body the size of the write API's. The ceiling of any axum write handler here.
pub(super) fn start_bare_axum() -> anyhow::Result<SocketAddr> {
    surge_baselines::serve_on_own_runtime(2, || {
        Box::pin(async {
            let app = Router::new().route(
                "/v1/taps",
                post(|_body: Bytes| async {
                    (
                        StatusCode::ACCEPTED,
                        [(CONTENT_TYPE, "application/json")],
                        BARE_BODY,
                    )
                }),
            );
            Ok(app)
        })
    })
}
