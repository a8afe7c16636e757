//! Slow and idle clients cannot hold the API: a connection that does not finish its request's
//! headers within `SURGE_HTTP_HEADER_TIMEOUT_MS` is closed by the server (an idle keep-alive
//! connection too), and while a slowloris of 1,000 such connections is open, normal requests
//! are still answered. The normal requests' latency is printed beside a baseline taken before
//! the attack, not asserted.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{Options, spawn_app_with};

const SLOW: usize = 1_000;

#[tokio::test]
async fn a_slowloris_is_closed_by_the_server_and_others_are_served_meanwhile() {
    let app = spawn_app_with(Options {
        env: vec![("SURGE_HTTP_HEADER_TIMEOUT_MS", "2000".into())],
        ..Options::default()
    })
    .await;
    let addr = app.url.trim_start_matches("http://").to_owned();
    let before = latencies(&app, 50).await;

    // Half the crowd sends part of a request's headers and stops; the other half sends nothing.
    let mut slow = Vec::with_capacity(SLOW);
    for n in 0..SLOW {
        let mut stream = TcpStream::connect(&addr).await.expect("connect");
        if n % 2 == 0 {
            stream
                .write_all(b"GET /health/live HTTP/1.1\r\nHost: surge\r\nX-Slow: ")
                .await
                .unwrap();
        }
        slow.push(stream);
    }
    let during = latencies(&app, 50).await;
    println!(
        "normal requests' p99 with no attack: {:?}; with {SLOW} slow connections open: {:?}",
        p99(before),
        p99(during)
    );

    // Every slow connection is closed by the server (EOF or reset) once its time is up.
    let started = Instant::now();
    for (n, mut stream) in slow.into_iter().enumerate() {
        let mut byte = [0u8; 1];
        let left = Duration::from_secs(30).saturating_sub(started.elapsed());
        match tokio::time::timeout(left, stream.read(&mut byte)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {}
            Ok(Ok(_)) => {} // a 408 before closing is fine too
            Err(_) => panic!(
                "slow connection {n} still open {:?} after the attack began",
                started.elapsed()
            ),
        }
    }
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "the server waited for the headers before closing"
    );
}

/// Times of `n` sequential health checks, each on a fresh client (a new connection).
async fn latencies(app: &crate::helpers::TestApp, n: usize) -> Vec<Duration> {
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let started = Instant::now();
        let response = client
            .get(format!("{}/health/live", app.url))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .expect("a normal request is answered during the attack");
        assert_eq!(response.status(), 200);
        times.push(started.elapsed());
    }
    times
}

fn p99(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[(times.len() * 99 / 100).min(times.len() - 1)]
}
