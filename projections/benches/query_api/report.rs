//! The summary (peaks, ratios, the goals) and the JSON record of a run.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use super::load::Stats;

#[derive(Serialize)]
pub(crate) struct Measured {
    endpoint: &'static str,
    target: &'static str,
    /// `closed` (concurrency workers back to back) or `half_peak` (open loop at `rate`).
    mode: &'static str,
    concurrency: Option<usize>,
    rate: Option<f64>,
    #[serde(flatten)]
    stats: Stats,
}

impl Measured {
    pub(crate) fn closed(
        endpoint: &'static str,
        target: &'static str,
        concurrency: usize,
        stats: Stats,
    ) -> Self {
        Measured {
            endpoint,
            target,
            mode: "closed",
            concurrency: Some(concurrency),
            rate: None,
            stats,
        }
    }

    pub(crate) fn half_peak(
        endpoint: &'static str,
        target: &'static str,
        rate: f64,
        stats: Stats,
    ) -> Self {
        Measured {
            endpoint,
            target,
            mode: "half_peak",
            concurrency: None,
            rate: Some(rate),
            stats,
        }
    }
}

#[derive(Serialize)]
pub(crate) struct Report {
    seconds_per_run: f64,
    cores: usize,
    load_average_before: String,
    rows: Vec<Measured>,
}

impl Report {
    pub(crate) fn new(duration: Duration) -> Report {
        Report {
            seconds_per_run: duration.as_secs_f64(),
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            load_average_before: load_average(),
            rows: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, row: Measured) {
        self.rows.push(row);
    }

    fn peak(&self, endpoint: &str, target: &str) -> f64 {
        self.rows
            .iter()
            .filter(|r| r.endpoint == endpoint && r.target == target && r.mode == "closed")
            .map(|r| r.stats.rps)
            .fold(0.0, f64::max)
    }

    pub(crate) fn print_summary(&self) {
        println!(
            "\nsummary ({} cores, load average before: {})",
            self.cores, self.load_average_before
        );
        for endpoint in ["leaderboard", "feed"] {
            let query = self.peak(endpoint, "query_api");
            let webdis = self.peak(endpoint, "webdis");
            let bare = self.peak(endpoint, "bare_axum");
            let uncached = self.peak(endpoint, "query_api_uncached");
            if uncached > 0.0 {
                println!(
                    "{endpoint:<12} without the leaderboard cache: {uncached:.0} req/s, {:.2} of webdis",
                    uncached / webdis.max(1.0)
                );
            }
            let half = self.rows.iter().find(|r| {
                r.endpoint == endpoint && r.target == "query_api" && r.mode == "half_peak"
            });
            println!(
                "{endpoint:<12} peak req/s: query API {query:.0}, webdis {webdis:.0}, bare axum {bare:.0}; \
                 query/webdis {:.2} (goal >= 1.5), query/bare {:.2}",
                query / webdis.max(1.0),
                query / bare.max(1.0),
            );
            if let Some(half) = half {
                println!(
                    "{endpoint:<12} at half of peak ({:.0} req/s): p50 {:.3} ms, p99 {:.3} ms (goal p99 <= 5 ms)",
                    half.rate.unwrap_or_default(),
                    half.stats.p50_ms,
                    half.stats.p99_ms
                );
            }
        }
    }

    pub(crate) fn write(&self, folder: &Path) -> anyhow::Result<PathBuf> {
        std::fs::create_dir_all(folder)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs();
        let path = folder.join(format!("query-api-{now}.json"));
        std::fs::write(&path, serde_json::to_string_pretty(self)?)?;
        Ok(path)
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
