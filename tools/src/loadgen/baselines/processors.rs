//! The processors' catch-up after a burst of writes: their `/metrics`
//! (`processor_events_applied_total`, per projection and partition) polled until no projection
//! has applied anything for a while. Each projection's rate over that time is its peak apply
//! rate on this machine when it had a backlog; waiting also keeps the backlog's work out of the
//! limits measured next.
//!
//! The backlog is only certain when the processors are [`Held`] while the burst is written: a
//! machine slow to write lets running processors keep up, and their catch-up then has nothing
//! left to measure.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};

/// No projection applied anything for this long: caught up. Well above the processors' batch
/// wait and the broker's fetch wait.
const QUIET: Duration = Duration::from_millis(1500);
const POLL_EVERY: Duration = Duration::from_millis(100);

/// Events applied, per projection, summed over partitions.
pub(super) type Applied = BTreeMap<String, f64>;

/// `surge process` instances stopped (`SIGSTOP`) until this is dropped (`SIGCONT`), also when
/// the phase it spans fails. Their consumers keep their partitions while the hold stays under
/// the processors' session timeout (10 s by default).
pub(super) struct Held(Vec<u32>);

impl Held {
    pub(super) fn stop(pids: &[u32]) -> anyhow::Result<Self> {
        let mut held = Self(Vec::with_capacity(pids.len()));
        for &pid in pids {
            signal(pid, "STOP")?;
            held.0.push(pid);
        }
        Ok(held)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        for &pid in &self.0 {
            if let Err(e) = signal(pid, "CONT") {
                eprintln!("baselines: the processors (pid {pid}) stay stopped: {e:#}");
            }
        }
    }
}

fn signal(pid: u32, name: &str) -> anyhow::Result<()> {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .context("Failed to run kill")?;
    anyhow::ensure!(status.success(), "kill -{name} {pid} failed: {status}");
    Ok(())
}

/// Events applied so far, per projection, summed over partitions.
pub(super) fn applied(metrics: &str) -> Applied {
    let mut applied = BTreeMap::new();
    for line in metrics.lines() {
        let Some(rest) = line.strip_prefix("processor_events_applied_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.split_once("} ") else {
            continue;
        };
        let projection = labels
            .split(',')
            .find_map(|label| label.strip_prefix("projection=\""))
            .and_then(|v| v.strip_suffix('"'));
        if let (Some(projection), Ok(value)) = (projection, value.trim().parse::<f64>()) {
            *applied.entry(projection.to_owned()).or_default() += value;
        }
    }
    applied
}

/// Events applied so far, per projection, summed over every processor instance at `urls`;
/// `None` when one's metrics could not be read (a partial sum would look like a change).
pub(super) async fn sample(client: &reqwest::Client, urls: &[String]) -> Option<Applied> {
    let mut total = Applied::new();
    for url in urls {
        let response = client.get(url).send().await.ok()?;
        let text = response.error_for_status().ok()?.text().await.ok()?;
        for (projection, events) in applied(&text) {
            *total.entry(projection).or_default() += events;
        }
    }
    Some(total)
}

/// Polls the processors' metrics from now until they have been quiet for [`QUIET`] (or
/// `deadline` passes): per projection, the events applied since `from` (a [`sample`] taken
/// before the processors were held; now when `None`) and their rate from now up to its last
/// batch.
pub(super) async fn catch_up(
    client: &reqwest::Client,
    urls: &[String],
    deadline: Duration,
    from: Option<Applied>,
) -> Value {
    let started = Instant::now();
    let Some(first) = (match from {
        Some(from) => Some(from),
        None => sample(client, urls).await,
    }) else {
        return json!({ "skipped": format!("the processors' metrics at {urls:?} could not be read") });
    };
    let mut last = first.clone();
    let mut last_change: BTreeMap<String, Instant> = BTreeMap::new();
    let mut quiet_since = Instant::now();
    let caught_up = loop {
        if quiet_since.elapsed() >= QUIET {
            break true;
        }
        if started.elapsed() >= deadline {
            break false;
        }
        tokio::time::sleep(POLL_EVERY).await;
        let Some(now) = sample(client, urls).await else {
            continue;
        };
        for (projection, applied) in &now {
            if last.get(projection) != Some(applied) {
                last_change.insert(projection.clone(), Instant::now());
                quiet_since = Instant::now();
            }
        }
        last = now;
    };
    let projections: BTreeMap<&String, Value> = last
        .iter()
        .map(|(projection, applied)| {
            let events = applied - first.get(projection).copied().unwrap_or_default();
            let secs = last_change
                .get(projection)
                .map(|at| at.duration_since(started).as_secs_f64());
            let rate = secs.filter(|s| *s > 0.0).map(|s| events / s);
            (
                projection,
                json!({ "events": events, "secs": secs, "rate": rate }),
            )
        })
        .collect();
    json!({
        "caught_up": caught_up,
        "waited_secs": started.elapsed().as_secs_f64(),
        "projections": projections,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applied_events_are_summed_per_projection_over_partitions() {
        let metrics = "\
# TYPE processor_events_applied_total counter
processor_events_applied_total{partition=\"0\",projection=\"feed.v1\"} 10
processor_events_applied_total{partition=\"1\",projection=\"feed.v1\"} 5
processor_events_applied_total{partition=\"0\",projection=\"wallets.v1\"} 7
processor_applied_offset{partition=\"0\",projection=\"feed.v1\"} 999
";
        let applied = applied(metrics);
        assert_eq!(applied.len(), 2);
        assert_eq!(applied["feed.v1"], 15.0);
        assert_eq!(applied["wallets.v1"], 7.0);
    }

    /// A `/metrics` endpoint answering `text` on a port of its own.
    async fn metrics_server(text: &'static str) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app =
            axum::Router::new().route("/metrics", axum::routing::get(move || async move { text }));
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}/metrics")
    }

    #[tokio::test]
    async fn several_instances_are_summed_and_one_unreadable_instance_is_no_sample() {
        let first = metrics_server(
            "processor_events_applied_total{partition=\"0\",projection=\"feed.v1\"} 10\n\
             processor_consumer_lag{partition=\"0\",projection=\"feed.v1\"} 4\n",
        )
        .await;
        let second = metrics_server(
            "processor_events_applied_total{partition=\"1\",projection=\"feed.v1\"} 5\n\
             processor_consumer_lag{partition=\"1\",projection=\"feed.v1\"} 3\n",
        )
        .await;
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let both = [first.clone(), second.clone()];
        assert_eq!(sample(&client, &both).await.unwrap()["feed.v1"], 15.0);
        assert_eq!(crate::loadgen::lag::sample(&client, &both).await, Some(7));
        // An instance that does not answer would make a partial sum look like progress.
        let gone = [first, "http://127.0.0.1:9/metrics".to_owned()];
        assert!(sample(&client, &gone).await.is_none());
        assert!(crate::loadgen::lag::sample(&client, &gone).await.is_none());
    }
}
