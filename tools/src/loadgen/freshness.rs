//! Freshness: how long after a write is acknowledged a read shows it. A probe writes a tap every
//! 50 ms (rotating over its own users, well under the per-user rate limit), then reads its feed
//! with the write's consistency token; the query API answers once the feed projection has
//! applied the write. The time from the write's 202 to the read's answer is the sample: an upper
//! bound of freshness by one read round trip. A `504` (not visible within the query API's wait
//! bound) is counted apart.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{Value, json};

use super::crowd::sign;

const PROBE_EVERY: Duration = Duration::from_millis(50);
const PROBE_USERS: i64 = 20;

pub(super) struct Probe<'a> {
    pub(super) client: &'a reqwest::Client,
    pub(super) write_url: &'a str,
    pub(super) query_url: &'a str,
    pub(super) bot_token: &'a str,
    pub(super) first_user_id: i64,
}

impl Probe<'_> {
    /// Probes until `until`; the distribution of the samples, timeouts and failures.
    pub(super) async fn run(&self, until: Instant) -> Value {
        let auths: Vec<String> = (0..PROBE_USERS)
            .map(|k| format!("tma {}", sign(self.bot_token, self.first_user_id + k)))
            .collect();
        let mut samples = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).expect("bounds");
        let (mut timeouts, mut failures) = (0_u64, 0_u64);
        let mut tick = tokio::time::interval(PROBE_EVERY);
        let mut k = 0;
        while Instant::now() < until {
            tick.tick().await;
            let auth = &auths[k % auths.len()];
            k += 1;
            match self.once(auth).await {
                Ok(Some(sample)) => {
                    samples.saturating_record(sample.as_micros().max(1) as u64);
                }
                Ok(None) => timeouts += 1,
                Err(()) => failures += 1,
            }
        }
        let ms = |q: f64| samples.value_at_quantile(q) as f64 / 1000.0;
        json!({
            "samples": samples.len(),
            "p50_ms": ms(0.5),
            "p99_ms": ms(0.99),
            "max_ms": samples.max() as f64 / 1000.0,
            "not_visible_in_time": timeouts,
            "failed_probes": failures,
        })
    }

    /// One write and its read: `Some(ack → visible)`, `None` on 504, `Err` on anything else.
    async fn once(&self, auth: &str) -> Result<Option<Duration>, ()> {
        let written = self
            .client
            .post(format!("{}/v1/taps", self.write_url))
            .header("authorization", auth)
            .json(&json!({ "count": 1 }))
            .send()
            .await
            .map_err(drop)?;
        let acked = Instant::now();
        if written.status() != 202 {
            return Err(());
        }
        let token = written
            .headers()
            .get("x-consistency-token")
            .and_then(|v| v.to_str().ok())
            .ok_or(())?
            .to_owned();
        let read = self
            .client
            .get(format!("{}/v1/me/feed?limit=1", self.query_url))
            .header("authorization", auth)
            .header("x-consistency-token", token)
            .send()
            .await
            .map_err(drop)?;
        let visible = acked.elapsed();
        match read.status().as_u16() {
            200 => Ok(Some(visible)),
            504 => Ok(None),
            _ => Err(()),
        }
    }
}
