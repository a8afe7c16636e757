//! The figures of a scaling run, read from its reports: `loadgen-baselines-<stamp>.json` for
//! the instance counts, `loadgen-spike-<stamp>.json` and its `.cpu.json` for the users.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use serde_json::{Value, json};

/// The roles whose memory and CPU `scripts/loadtest.sh` records, in its order.
pub(crate) const ROLES: [&str; 3] = ["write-api", "process", "query-api"];

/// What one run grew.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grew {
    /// `surge process` instances; measured by the baselines scenario's catch-up.
    Processors,
    /// `surge write-api` instances; measured by the baselines scenario's write peaks.
    WriteApis,
    /// Users arriving in a spike; measured by each role's memory and CPU.
    Users,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Run {
    pub(crate) grew: Grew,
    pub(crate) value: f64,
    pub(crate) stamp: String,
}

pub(crate) fn parse_manifest(text: &str) -> anyhow::Result<Vec<Run>> {
    let mut runs = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        let [grew, value, stamp] = fields[..] else {
            anyhow::bail!(
                "line {}: expected `<what grew> <value> <stamp>`, got {line:?}",
                n + 1
            );
        };
        let grew = match grew {
            "processors" => Grew::Processors,
            "write-apis" => Grew::WriteApis,
            "users" => Grew::Users,
            other => anyhow::bail!(
                "line {}: {other:?} is not processors, write-apis or users",
                n + 1
            ),
        };
        let value = value
            .parse::<f64>()
            .ok()
            .filter(|v| *v > 0.0)
            .with_context(|| format!("line {}: {value:?} is not a positive number", n + 1))?;
        runs.push(Run {
            grew,
            value,
            stamp: stamp.to_owned(),
        });
    }
    anyhow::ensure!(!runs.is_empty(), "the manifest lists no runs");
    Ok(runs)
}

/// Named series of (what grew, figure) points.
pub(crate) type Series = BTreeMap<String, Vec<(f64, f64)>>;

#[derive(Debug, Default)]
pub(crate) struct Figures {
    /// Per projection, events/s applied from a backlog, against processor instances.
    pub(crate) catch_up: Series,
    /// `single` (req/s) and `batched` (events/s) write peaks against write API instances.
    pub(crate) writes: Series,
    /// Per role, highest resident memory (MB, summed over its instances) against users.
    pub(crate) peak_rss_mb: Series,
    /// Per role, CPU seconds per 1,000 accepted events against users.
    pub(crate) cpu_per_1000_events: Series,
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text = std::fs::read(path).with_context(|| format!("Failed to read {}", path.display()))?;
    serde_json::from_slice(&text).with_context(|| format!("{} is not JSON", path.display()))
}

fn push(series: &mut Series, name: &str, point: (f64, f64)) {
    let points = series.entry(name.to_owned()).or_default();
    points.push(point);
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
}

impl Figures {
    pub(crate) fn read(runs: &[Run], results: &Path) -> anyhow::Result<Self> {
        let mut figures = Self::default();
        for run in runs {
            let x = run.value;
            match run.grew {
                Grew::Processors | Grew::WriteApis => {
                    let path = results.join(format!("loadgen-baselines-{}.json", run.stamp));
                    let report = read_json(&path)?;
                    let phases = &report["phases"];
                    if run.grew == Grew::WriteApis {
                        for (name, phase) in
                            [("single", "write_single"), ("batched", "write_batch")]
                        {
                            if let Some(rate) = phases[phase]["rate"].as_f64() {
                                push(&mut figures.writes, name, (x, rate));
                            }
                        }
                        continue;
                    }
                    let projections = phases["processors_catch_up"]["projections"]
                        .as_object()
                        .with_context(|| format!("{} has no catch-up", path.display()))?;
                    for (projection, caught_up) in projections {
                        if let Some(rate) = caught_up["rate"].as_f64() {
                            push(&mut figures.catch_up, projection, (x, rate));
                        }
                    }
                }
                Grew::Users => {
                    let base = format!("loadgen-spike-{}", run.stamp);
                    let report = read_json(&results.join(format!("{base}.json")))?;
                    let resources = read_json(&results.join(format!("{base}.cpu.json")))?;
                    let events = report["accepted_events"].as_f64().unwrap_or_default();
                    for role in ROLES {
                        if let Some(mb) = resources["peak_rss_mb"][role].as_f64() {
                            push(&mut figures.peak_rss_mb, role, (x, mb));
                        }
                        if let Some(secs) = resources["cpu_secs"][role].as_f64()
                            && events > 0.0
                        {
                            push(
                                &mut figures.cpu_per_1000_events,
                                role,
                                (x, secs / events * 1000.0),
                            );
                        }
                    }
                }
            }
        }
        Ok(figures)
    }

    pub(crate) fn to_json(&self) -> Value {
        json!({
            "catch_up_events_per_sec_by_processors": self.catch_up,
            "write_peaks_by_write_apis": self.writes,
            "peak_rss_mb_by_users": self.peak_rss_mb,
            "cpu_secs_per_1000_events_by_users": self.cpu_per_1000_events,
        })
    }

    pub(crate) fn print(&self) {
        let table = |title: &str, series: &Series| {
            if series.is_empty() {
                return;
            }
            println!("{title}");
            for (name, points) in series {
                let points: Vec<String> =
                    points.iter().map(|(x, y)| format!("{x}: {y:.3}")).collect();
                println!("  {name:<16} {}", points.join("  "));
            }
        };
        table("catch-up, events/s, by processor instances", &self.catch_up);
        table(
            "write peaks (single req/s, batched events/s), by write API instances",
            &self.writes,
        );
        table("peak resident memory, MB, by users", &self.peak_rss_mb);
        table(
            "CPU seconds per 1,000 accepted events, by users",
            &self.cpu_per_1000_events,
        );
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn a_manifest_names_what_grew_its_value_and_the_reports() {
        let runs = parse_manifest("processors 2 17\n\nusers 100000 18\n").unwrap();
        assert_eq!(
            runs,
            vec![
                Run {
                    grew: Grew::Processors,
                    value: 2.0,
                    stamp: "17".into()
                },
                Run {
                    grew: Grew::Users,
                    value: 100_000.0,
                    stamp: "18".into()
                },
            ]
        );
        let error = parse_manifest("cores 2 17").unwrap_err().to_string();
        assert!(error.contains("\"cores\" is not"), "{error}");
        let error = parse_manifest("users 0 17").unwrap_err().to_string();
        assert!(error.contains("not a positive number"), "{error}");
        let error = parse_manifest("users 10").unwrap_err().to_string();
        assert!(error.contains("expected"), "{error}");
        assert!(parse_manifest("\n").is_err());
    }

    /// Reports as `scripts/loadtest.sh` writes them, in a scratch directory.
    pub(crate) fn write_reports(dir: &Path) -> Vec<Run> {
        std::fs::create_dir_all(dir).unwrap();
        let baselines = |single: f64, feed: f64| {
            json!({ "phases": {
                "write_single": { "rate": single },
                "write_batch": { "rate": single * 10.0 },
                "processors_catch_up": { "projections": {
                    "feed.v1": { "rate": feed }, "wallets.v1": { "rate": feed * 2.0 },
                } },
            } })
        };
        let write = |name: &str, value: Value| {
            std::fs::write(dir.join(name), serde_json::to_vec(&value).unwrap()).unwrap();
        };
        write("loadgen-baselines-1.json", baselines(100.0, 10.0));
        write("loadgen-baselines-2.json", baselines(150.0, 18.0));
        write("loadgen-spike-3.json", json!({ "accepted_events": 2000 }));
        write(
            "loadgen-spike-3.cpu.json",
            json!({
                "cpu_secs": { "write-api": 1.0, "process": 4.0, "query-api": 0.5 },
                "peak_rss_mb": { "write-api": 40.0, "process": 70.0, "query-api": 20.0 },
            }),
        );
        parse_manifest("processors 1 1\nwrite-apis 1 1\nprocessors 2 2\nusers 10000 3\n").unwrap()
    }

    #[test]
    fn figures_come_from_the_reports_of_each_run() {
        let dir = std::env::temp_dir().join(format!("surge-scaling-{}", std::process::id()));
        let runs = write_reports(&dir);
        let figures = Figures::read(&runs, &dir).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(figures.catch_up["feed.v1"], vec![(1.0, 10.0), (2.0, 18.0)]);
        assert_eq!(
            figures.catch_up["wallets.v1"],
            vec![(1.0, 20.0), (2.0, 36.0)]
        );
        assert_eq!(figures.writes["single"], vec![(1.0, 100.0)]);
        assert_eq!(figures.writes["batched"], vec![(1.0, 1000.0)]);
        assert_eq!(figures.peak_rss_mb["process"], vec![(10_000.0, 70.0)]);
        assert_eq!(
            figures.cpu_per_1000_events["process"],
            vec![(10_000.0, 2.0)]
        );
    }

    #[test]
    fn a_missing_report_is_named() {
        let runs = parse_manifest("users 10 404").unwrap();
        let error = Figures::read(&runs, Path::new("/nonexistent")).unwrap_err();
        assert!(
            format!("{error:#}").contains("loadgen-spike-404.json"),
            "{error:#}"
        );
    }
}
