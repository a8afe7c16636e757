//! What a load run measured: per endpoint, latency from each request's *scheduled* send time
//! (so a server that falls behind shows its queueing, not only its service time) in an HDR
//! histogram, and answers by status.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{Value, json};

use super::crowd::Action;

pub(super) struct Endpoint {
    latency_us: Histogram<u64>,
    statuses: BTreeMap<String, u64>,
}

impl Endpoint {
    fn new() -> Self {
        Endpoint {
            // 1 µs to 10 minutes at 3 significant figures.
            latency_us: Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds"),
            statuses: BTreeMap::new(),
        }
    }
}

/// One second of the run, by the requests' due time.
struct Second {
    requests: u64,
    accepted_writes: u64,
    errors: u64,
    latency_us: Histogram<u64>,
    /// Summed consumer lag of the processors, sampled during this second.
    lag: Option<i64>,
}

impl Second {
    fn new() -> Self {
        Second {
            requests: 0,
            accepted_writes: 0,
            errors: 0,
            latency_us: Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds"),
            lag: None,
        }
    }
}

pub(super) struct Report {
    endpoints: BTreeMap<Action, Endpoint>,
    timeline: Vec<Second>,
    /// Requests the generator did not send because too many were already in flight.
    pub(super) dropped: u64,
    accepted_writes: u64,
    accepted_events: u64,
}

impl Report {
    pub(super) fn new() -> Self {
        Report {
            endpoints: Action::ALL.iter().map(|a| (*a, Endpoint::new())).collect(),
            timeline: Vec::new(),
            dropped: 0,
            accepted_writes: 0,
            accepted_events: 0,
        }
    }

    fn second(&mut self, second: usize) -> &mut Second {
        while self.timeline.len() <= second {
            self.timeline.push(Second::new());
        }
        &mut self.timeline[second]
    }

    /// `status` is the HTTP status, or `error` when no answer came; `second` is when the
    /// request was due, counted from the start of the run.
    pub(super) fn record(
        &mut self,
        action: Action,
        status: &str,
        latency: Duration,
        second: usize,
    ) {
        let endpoint = self
            .endpoints
            .get_mut(&action)
            .expect("every action has an entry");
        let micros = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        endpoint.latency_us.saturating_record(micros);
        *endpoint.statuses.entry(status.to_owned()).or_default() += 1;
        let accepted = action.is_write() && status == "202";
        if accepted {
            self.accepted_writes += 1;
            self.accepted_events += action.events();
        }
        let error = !is_expected(status);
        let bucket = self.second(second);
        bucket.requests += 1;
        bucket.accepted_writes += u64::from(accepted);
        bucket.errors += u64::from(error);
        bucket.latency_us.saturating_record(micros);
    }

    /// The processors' summed consumer lag, sampled `second` into the run.
    pub(super) fn record_lag(&mut self, second: usize, lag: i64) {
        self.second(second).lag = Some(lag);
    }

    pub(super) fn to_json(&self, run: Value, elapsed: Duration) -> Value {
        let secs = elapsed.as_secs_f64().max(f64::EPSILON);
        let endpoints: Vec<Value> = self
            .endpoints
            .iter()
            .filter(|(_, e)| !e.latency_us.is_empty())
            .map(|(action, e)| {
                let ms = |q: f64| e.latency_us.value_at_quantile(q) as f64 / 1000.0;
                json!({
                    "endpoint": action.endpoint(),
                    "requests": e.latency_us.len(),
                    "statuses": e.statuses,
                    "p50_ms": ms(0.5),
                    "p90_ms": ms(0.9),
                    "p99_ms": ms(0.99),
                    "p999_ms": ms(0.999),
                    "max_ms": e.latency_us.max() as f64 / 1000.0,
                })
            })
            .collect();
        let errors: u64 = self
            .endpoints
            .values()
            .flat_map(|e| e.statuses.iter())
            .filter(|(status, _)| !is_expected(status))
            .map(|(_, n)| n)
            .sum();
        let requests: u64 = self.endpoints.values().map(|e| e.latency_us.len()).sum();
        json!({
            "run": run,
            "elapsed_secs": secs,
            "requests": requests,
            "dropped_by_generator": self.dropped,
            "accepted_writes": self.accepted_writes,
            "accepted_events": self.accepted_events,
            "accepted_writes_per_sec": self.accepted_writes as f64 / secs,
            "errors_other_than_429": errors,
            "error_rate": errors as f64 / (requests.max(1) as f64),
            "endpoints": endpoints,
            "timeline": self.timeline.iter().enumerate().map(|(second, s)| json!({
                "second": second,
                "requests": s.requests,
                "accepted_writes": s.accepted_writes,
                "errors": s.errors,
                "p99_ms": s.latency_us.value_at_quantile(0.99) as f64 / 1000.0,
                "consumer_lag": s.lag,
            })).collect::<Vec<_>>(),
        })
    }
}

/// Answers that are not errors: successes, 304, and deliberate 429s.
fn is_expected(status: &str) -> bool {
    matches!(status, "200" | "202" | "304" | "429")
}

/// The summary table of a report's JSON.
pub(super) fn print_summary(report: &Value) {
    println!(
        "{:<26} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}  statuses",
        "endpoint", "requests", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms"
    );
    for e in report["endpoints"].as_array().into_iter().flatten() {
        println!(
            "{:<26} {:>9} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}  {}",
            e["endpoint"].as_str().unwrap_or_default(),
            e["requests"],
            e["p50_ms"].as_f64().unwrap_or_default(),
            e["p90_ms"].as_f64().unwrap_or_default(),
            e["p99_ms"].as_f64().unwrap_or_default(),
            e["p999_ms"].as_f64().unwrap_or_default(),
            e["max_ms"].as_f64().unwrap_or_default(),
            e["statuses"],
        );
    }
    println!(
        "accepted writes {} ({:.0}/s, {} events); errors other than 429: {} ({:.3}%); not sent (generator saturated): {}",
        report["accepted_writes"],
        report["accepted_writes_per_sec"]
            .as_f64()
            .unwrap_or_default(),
        report["accepted_events"],
        report["errors_other_than_429"],
        report["error_rate"].as_f64().unwrap_or_default() * 100.0,
        report["dropped_by_generator"],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_writes_count_their_events_and_errors_leave_out_429() {
        let mut report = Report::new();
        report.record(Action::TapBatch, "202", Duration::from_millis(3), 0);
        report.record(Action::Tap, "202", Duration::from_millis(1), 0);
        report.record(Action::Tap, "429", Duration::from_millis(1), 0);
        report.record(Action::Tap, "503", Duration::from_millis(1), 0);
        report.record(Action::ReadFeed, "error", Duration::from_secs(2), 1);
        let json = report.to_json(json!({}), Duration::from_secs(1));
        assert_eq!(json["accepted_writes"], 2);
        assert_eq!(json["accepted_events"], 1 + 5);
        assert_eq!(json["errors_other_than_429"], 2);
        assert_eq!(json["requests"], 5);
        let taps = &json["endpoints"].as_array().unwrap()[0];
        assert_eq!(taps["endpoint"], "POST /v1/taps");
        assert_eq!(taps["statuses"]["429"], 1);
        let timeline = json["timeline"].as_array().unwrap();
        assert_eq!(timeline[0]["requests"], 4);
        assert_eq!(timeline[0]["accepted_writes"], 2);
        assert_eq!(timeline[1]["errors"], 1);
    }
}
