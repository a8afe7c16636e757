//! The load generator: one HTTP/1.1 keep-alive connection per worker (hyper, no pooling layer),
//! latencies in an HDR histogram. Closed loop: each worker sends its next request when the last
//! answered. Open loop: each worker sends on a fixed schedule and latency counts from the
//! scheduled time, so a server that falls behind shows it in p99 (no coordinated omission).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

const WARMUP: Duration = Duration::from_millis(500);
/// Connections of the open-loop run; the rate is split evenly between them.
const OPEN_LOOP_CONNECTIONS: usize = 64;

#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) path: String,
    pub(crate) headers: Vec<(String, String)>,
}

impl Request {
    pub(crate) fn get(path: &str) -> Request {
        Request {
            path: path.to_owned(),
            headers: Vec::new(),
        }
    }

    pub(crate) fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    fn build(&self) -> hyper::Request<Empty<Bytes>> {
        let mut builder = hyper::Request::get(&self.path).header("host", "bench");
        for (name, value) in &self.headers {
            builder = builder.header(name, value);
        }
        builder.body(Empty::new()).expect("valid request")
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Stats {
    pub(crate) rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub(crate) requests: u64,
    pub(crate) errors: u64,
}

struct Worker {
    sender: SendRequest<Empty<Bytes>>,
    histogram: Histogram<u64>,
    errors: u64,
}

impl Worker {
    async fn connect(addr: SocketAddr) -> anyhow::Result<Worker> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        Ok(Worker {
            sender,
            histogram: Histogram::new_with_bounds(1, 60_000_000, 3)?,
            errors: 0,
        })
    }

    /// One request to completion (body read); false on a non-200 answer.
    async fn send(&mut self, request: &Request) -> anyhow::Result<Bytes> {
        self.sender.ready().await?;
        let response = self.sender.send_request(request.build()).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        if status != 200 {
            bail!("{} answered {status}", request.path);
        }
        Ok(body)
    }

    fn record(&mut self, started: Instant, outcome: anyhow::Result<Bytes>) {
        match outcome {
            Ok(_) => {
                let micros = started.elapsed().as_micros() as u64;
                let _ = self.histogram.record(micros.max(1));
            }
            Err(_) => self.errors += 1,
        }
    }
}

/// The body of one successful request, to check a target and to copy its answer.
pub(crate) async fn fetch(addr: SocketAddr, request: &Request) -> anyhow::Result<Bytes> {
    let mut worker = Worker::connect(addr).await?;
    worker
        .send(request)
        .await
        .context("fetching a sample answer")
}

pub(crate) async fn closed_loop(
    addr: SocketAddr,
    request: &Request,
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<Stats> {
    let start = Instant::now() + WARMUP;
    let end = start + duration;
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let mut worker = Worker::connect(addr).await?;
        let request = request.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let now = Instant::now();
                if now >= end {
                    break;
                }
                let outcome = worker.send(&request).await;
                if now >= start {
                    worker.record(now, outcome);
                }
            }
            worker
        }));
    }
    collect(tasks, duration).await
}

pub(crate) async fn open_loop(
    addr: SocketAddr,
    request: &Request,
    rate: f64,
    duration: Duration,
) -> anyhow::Result<Stats> {
    let start = Instant::now() + WARMUP;
    let end = start + duration;
    let interval = Duration::from_secs_f64(OPEN_LOOP_CONNECTIONS as f64 / rate.max(1.0));
    let mut tasks = Vec::new();
    for i in 0..OPEN_LOOP_CONNECTIONS {
        let mut worker = Worker::connect(addr).await?;
        let request = request.clone();
        // Spread the workers' schedules across one interval.
        let offset = interval.mul_f64(i as f64 / OPEN_LOOP_CONNECTIONS as f64);
        tasks.push(tokio::spawn(async move {
            let mut scheduled = start + offset;
            while scheduled < end {
                tokio::time::sleep_until(scheduled).await;
                let outcome = worker.send(&request).await;
                worker.record(scheduled, outcome);
                scheduled += interval;
            }
            worker
        }));
    }
    collect(tasks, duration).await
}

async fn collect(
    tasks: Vec<tokio::task::JoinHandle<Worker>>,
    duration: Duration,
) -> anyhow::Result<Stats> {
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut errors = 0;
    for task in tasks {
        let worker = task.await?;
        histogram.add(&worker.histogram)?;
        errors += worker.errors;
    }
    let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    Ok(Stats {
        rps: histogram.len() as f64 / duration.as_secs_f64(),
        p50_ms: ms(0.5),
        p99_ms: ms(0.99),
        requests: histogram.len(),
        errors,
    })
}
