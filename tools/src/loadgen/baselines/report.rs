//! Every system figure beside its limit: the ratios (with the goals where it sets one)
//! and the summary table.

use serde_json::{Map, Value, json};
use surge_projections::ProjectionId;

/// (system figure, its limit, goal for the ratio). Keys are phases of the report.
const PAIRS: [(&str, &str, Option<f64>); 4] = [
    ("write_single", "bare_axum", Some(0.5)),
    ("write_single_keyed", "bare_axum", Some(0.5)),
    ("write_batch", "raw_produce", Some(0.5)),
    ("query_feed", "webdis", None),
];

/// The limit each projection's catch-up rate is compared with, besides the raw read: the
/// store baseline whose rows have the projection's shape. Any other projection (a new one
/// included) is compared with the raw read only: the derivers (referrals, quests) write rows of
/// another shape, purchases writes only for payment events, which the load does not send, and
/// notifications upserts one row per user of a batch, not per event.
fn store_limit(projection: &str) -> Option<(&'static str, &'static str)> {
    match ProjectionId::named(projection.split('.').next()?)? {
        ProjectionId::Profiles | ProjectionId::Wallets | ProjectionId::Activity => {
            Some(("copy", "rate"))
        }
        ProjectionId::Leaderboard | ProjectionId::Feed => {
            Some(("redis_pipeline", "events_per_sec"))
        }
        _ => None,
    }
}

fn ratio(figure: String, rate: f64, limit: &str, limit_rate: f64, goal: Option<f64>) -> Value {
    let ratio = rate / limit_rate;
    json!({
        "figure": figure,
        "rate": rate,
        "limit": limit,
        "limit_rate": limit_rate,
        "ratio": ratio,
        "goal": goal,
        "met": goal.map(|g| ratio >= g),
    })
}

fn rate(phases: &Map<String, Value>, phase: &str, field: &str) -> Option<f64> {
    phases.get(phase)?.get(field)?.as_f64().filter(|r| *r > 0.0)
}

/// The ratios of every figure that has a limit measured in this run.
pub(super) fn ratios(phases: &Map<String, Value>) -> Vec<Value> {
    let mut ratios = Vec::new();
    for (figure, limit, goal) in PAIRS {
        if let (Some(r), Some(l)) = (rate(phases, figure, "rate"), rate(phases, limit, "rate")) {
            ratios.push(ratio(figure.to_owned(), r, limit, l, goal));
        }
    }
    let projections = phases
        .get("processors_catch_up")
        .and_then(|c| c.get("projections"))
        .and_then(Value::as_object);
    for (projection, caught_up) in projections.into_iter().flatten() {
        let Some(r) = caught_up
            .get("rate")
            .and_then(Value::as_f64)
            .filter(|r| *r > 0.0)
        else {
            continue;
        };
        let figure = format!("processors_catch_up.{projection}");
        if let Some(l) = rate(phases, "raw_read", "rate") {
            ratios.push(ratio(figure.clone(), r, "raw_read", l, None));
        }
        if let Some((limit, field)) = store_limit(projection)
            && let Some(l) = rate(phases, limit, field)
        {
            ratios.push(ratio(figure, r, limit, l, None));
        }
    }
    ratios
}

/// The phases' rates, then the ratios with their goals.
pub(crate) fn print_summary(report: &Value) {
    println!(
        "\n{:<22} {:>12} {:>9} {:>9}  cores busy (machine)  what",
        "phase", "rate /s", "p50 ms", "p99 ms"
    );
    for (name, phase) in report["phases"].as_object().into_iter().flatten() {
        let ms = |field: &str| {
            phase[field]
                .as_f64()
                .map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"))
        };
        let rate = phase["rate"]
            .as_f64()
            .map_or_else(|| "-".to_owned(), |r| format!("{r:.0}"));
        let busy = phase["cpu"]["machine_busy_cores"]
            .as_f64()
            .map_or_else(|| "-".to_owned(), |b| format!("{b:.2}"));
        let what = phase["skipped"]
            .as_str()
            .map(|reason| format!("skipped: {reason}"))
            .or_else(|| phase["what"].as_str().map(str::to_owned))
            .unwrap_or_default();
        println!(
            "{name:<22} {rate:>12} {:>9} {:>9}  {busy:>20}  {what}",
            ms("p50_ms"),
            ms("p99_ms")
        );
    }
    println!(
        "\n{:<36} {:>10} {:>16} {:>10} {:>7}  goal",
        "figure", "rate /s", "limit", "limit /s", "ratio"
    );
    for r in report["ratios"].as_array().into_iter().flatten() {
        let goal = match (r["goal"].as_f64(), r["met"].as_bool()) {
            (Some(goal), Some(met)) => {
                format!(">= {goal:.2} {}", if met { "met" } else { "missed" })
            }
            _ => String::new(),
        };
        println!(
            "{:<36} {:>10.0} {:>16} {:>10.0} {:>7.2}  {goal}",
            r["figure"].as_str().unwrap_or_default(),
            r["rate"].as_f64().unwrap_or_default(),
            r["limit"].as_str().unwrap_or_default(),
            r["limit_rate"].as_f64().unwrap_or_default(),
            r["ratio"].as_f64().unwrap_or_default(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_meet_or_miss_their_goals_and_projections_compare_with_their_store() {
        let phases = json!({
            "bare_axum": { "rate": 1000.0 },
            "write_single": { "rate": 600.0 },
            "write_batch": { "rate": 2000.0 },
            "raw_produce": { "rate": 10000.0 },
            "webdis": { "skipped": "webdis is not installed" },
            "query_feed": { "rate": 900.0 },
            "raw_read": { "rate": 50000.0 },
            "copy": { "rate": 40000.0 },
            "redis_pipeline": { "rate": 90000.0, "events_per_sec": 30000.0 },
            "processors_catch_up": { "projections": {
                "wallets.v1": { "rate": 10000.0 },
                "feed.v1": { "rate": 15000.0 },
                "profiles.v1": { "rate": null },
            }},
        });
        let ratios = ratios(phases.as_object().unwrap());
        let find = |figure: &str, limit: &str| {
            ratios
                .iter()
                .find(|r| r["figure"] == figure && r["limit"] == limit)
                .unwrap_or_else(|| panic!("no {figure} / {limit} in {ratios:?}"))
        };
        assert_eq!(find("write_single", "bare_axum")["ratio"], 0.6);
        assert_eq!(find("write_single", "bare_axum")["met"], true);
        assert_eq!(find("write_batch", "raw_produce")["met"], false);
        assert_eq!(
            find("processors_catch_up.wallets.v1", "copy")["ratio"],
            0.25
        );
        assert_eq!(
            find("processors_catch_up.feed.v1", "redis_pipeline")["ratio"],
            0.5
        );
        assert_eq!(
            find("processors_catch_up.feed.v1", "raw_read")["ratio"],
            0.3
        );
        // A skipped limit and a projection with no backlog give no ratio.
        assert!(ratios.iter().all(|r| r["figure"] != "query_feed"));
        assert!(
            ratios
                .iter()
                .all(|r| r["figure"] != "processors_catch_up.profiles.v1")
        );
        assert_eq!(ratios.len(), 2 + 2 + 2);
    }
}
