//! The report: a table on stdout, and the same as JSON in `bench/results/projectors-<unix>.json`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::{Value, json};

use super::Baseline;
use super::fill::Mix;
use super::run::{Projection, RunStats, Store};

/// Projectors should reach at least this share of their store's raw write speed.
pub(crate) const GOAL: f64 = 0.5;

pub(crate) struct Machine {
    pub(crate) cpus: usize,
    pub(crate) memory_gib: f64,
    pub(crate) load_at_start: String,
    pub(crate) load_at_end: String,
}

impl Machine {
    pub(crate) fn probe() -> Machine {
        let memory_kib: f64 = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find(|l| l.starts_with("MemTotal:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|kib| kib.parse().ok())
            })
            .unwrap_or(0.0);
        Machine {
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            memory_gib: memory_kib / 1024.0 / 1024.0,
            load_at_start: load_average(),
            load_at_end: String::new(),
        }
    }
}

pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

pub(crate) struct Conditions {
    pub(crate) events: usize,
    pub(crate) users: u64,
    pub(crate) partitions: i32,
    pub(crate) batch_max: usize,
    pub(crate) batch_wait_ms: u128,
    pub(crate) mix: Mix,
    pub(crate) brokers: String,
    pub(crate) topic: String,
    pub(crate) postgres: String,
    pub(crate) redis: String,
}

/// A step that is not a projection: producing, reading.
pub(crate) struct Stage {
    pub(crate) name: &'static str,
    pub(crate) events: u64,
    pub(crate) secs: f64,
    pub(crate) note: String,
}

pub(crate) struct Row {
    pub(crate) projection: Projection,
    pub(crate) stats: RunStats,
    pub(crate) baseline: Baseline,
}

impl Row {
    fn ratio(&self) -> f64 {
        self.stats.rate() / self.baseline.rate().max(f64::EPSILON)
    }

    fn baseline_name(&self) -> &'static str {
        match self.projection.store {
            Store::Postgres => "COPY",
            Store::Redis => "pipelined raw writes",
        }
    }
}

pub(crate) struct Report {
    pub(crate) unix_time: u64,
    pub(crate) machine: Machine,
    pub(crate) conditions: Conditions,
    pub(crate) stages: Vec<Stage>,
    pub(crate) rows: Vec<Row>,
}

impl Report {
    pub(crate) fn print(&self) {
        let (m, c) = (&self.machine, &self.conditions);
        println!("\nSurge projector benchmark");
        println!(
            "machine:   {} CPUs, {:.1} GiB memory; load average {} at start, {} at end",
            m.cpus, m.memory_gib, m.load_at_start, m.load_at_end
        );
        println!(
            "settings:  {} events, {} users, {} partitions, batch_max {}, batch_wait {} ms",
            c.events, c.users, c.partitions, c.batch_max, c.batch_wait_ms
        );
        println!(
            "mix:       {} TapsSubmitted, {} SessionStarted, {} DailyCheckedIn, {} ProfileUpdated",
            c.mix.taps, c.mix.sessions, c.mix.checkins, c.mix.profile_updates
        );
        println!("broker:    {} (topic {})", c.brokers, c.topic);
        println!("stores:    {}; {}", c.postgres, c.redis);
        println!();
        println!(
            "{:<22} {:>10} {:>9} {:>12}  notes",
            "stage", "events", "seconds", "events/s"
        );
        for s in &self.stages {
            println!(
                "{:<22} {:>10} {:>9.2} {:>12}  {}",
                s.name,
                s.events,
                s.secs,
                thousands(s.events as f64 / s.secs.max(f64::EPSILON)),
                s.note
            );
        }
        println!();
        println!(
            "{:<12} {:>9} {:>9} {:>8} {:>10} {:<21} {:>12} {:>6}  goal",
            "projection",
            "events",
            "startup s",
            "seconds",
            "events/s",
            "baseline",
            "baseline e/s",
            "ratio"
        );
        for r in &self.rows {
            let verdict = if r.ratio() >= GOAL { "met" } else { "MISSED" };
            println!(
                "{:<12} {:>9} {:>9.2} {:>8.2} {:>10} {:<21} {:>12} {:>6.2}  >= {GOAL:.2} {verdict}",
                r.projection.name,
                r.stats.events,
                r.stats.startup_secs,
                r.stats.steady_secs,
                thousands(r.stats.rate()),
                r.baseline_name(),
                thousands(r.baseline.rate()),
                r.ratio(),
            );
        }
        println!(
            "\nseconds and events/s exclude start-up (migrate, group join, claim: from start() to the \
             first stored position moving);\nbaselines time only their store round trips, {} events \
             per batch, one transaction (PostgreSQL) or pipeline (Redis) per batch.",
            c.batch_max
        );
        println!();
        for r in &self.rows {
            let b = &r.baseline;
            println!(
                "baseline {:<12} {}: {} writes in {} batches, {:.2} s",
                r.projection.name, b.what, b.writes, b.batches, b.secs
            );
        }
        println!();
        println!(
            "where time goes: the processor's batches and its time inside the sink's apply (store \
             round trips and fold), and CPU\nover the whole run in % of one core (200 % = 2 cores \
             busy); bench = this process, which runs the processor; other = the rest of the machine"
        );
        println!(
            "{:<12} {:>10} {:>8} {:>10} {:>9}  {:>6} {:>8} {:>6} {:>6} {:>6}",
            "projection",
            "mean batch",
            "batches",
            "in apply",
            "of run",
            "bench",
            "postgres",
            "redis",
            "broker",
            "other"
        );
        for r in &self.rows {
            let s = &r.stats;
            println!(
                "{:<12} {:>10.0} {:>8} {:>8.2} s {:>8.0}%  {:>5.0}% {:>7.0}% {:>5.0}% {:>5.0}% {:>5.0}%",
                r.projection.name,
                s.mean_batch,
                s.batches,
                s.apply_secs,
                s.apply_secs / s.total_secs.max(f64::EPSILON) * 100.0,
                s.cpu.bench,
                s.cpu.postgres,
                s.cpu.redis,
                s.cpu.broker,
                s.cpu.other,
            );
        }
        for r in &self.rows {
            let basis = match r.projection.store {
                Store::Postgres => format!(
                    "pg_stat_activity of the run's connections, sampled every {} ms; % of samples",
                    super::server::PG_SAMPLE_EVERY.as_millis()
                ),
                Store::Redis => {
                    "INFO commandstats, server time per command; % of the run's wall time \
                                 (script commands count again inside evalsha; other clients' too)"
                        .to_owned()
                }
            };
            println!("\n{} store side ({basis}):", r.projection.name);
            for slice in r.stats.server.iter().take(10) {
                println!("  {:>5.1}%  {:<70} {}", slice.share, slice.what, slice.note);
            }
        }
        if self.rows.iter().any(|r| r.stats.retries > 0) {
            for r in self.rows.iter().filter(|r| r.stats.retries > 0) {
                println!("{}: {} batch retries", r.projection.name, r.stats.retries);
            }
        }
    }

    pub(crate) fn json(&self) -> Value {
        let (m, c) = (&self.machine, &self.conditions);
        json!({
            "benchmark": "projectors",
            "unix_time": self.unix_time,
            "machine": {
                "cpus": m.cpus,
                "memory_gib": m.memory_gib,
                "load_average_at_start": m.load_at_start,
                "load_average_at_end": m.load_at_end,
            },
            "settings": {
                "events": c.events,
                "users": c.users,
                "partitions": c.partitions,
                "batch_max": c.batch_max,
                "batch_wait_ms": c.batch_wait_ms,
                "mix": {
                    "TapsSubmitted": c.mix.taps,
                    "SessionStarted": c.mix.sessions,
                    "DailyCheckedIn": c.mix.checkins,
                    "ProfileUpdated": c.mix.profile_updates,
                },
                "brokers": c.brokers,
                "topic": c.topic,
                "postgres": c.postgres,
                "redis": c.redis,
            },
            "stages": self.stages.iter().map(|s| json!({
                "name": s.name,
                "events": s.events,
                "seconds": s.secs,
                "events_per_sec": s.events as f64 / s.secs.max(f64::EPSILON),
                "note": s.note,
            })).collect::<Vec<_>>(),
            "projections": self.rows.iter().map(|r| json!({
                "projection": r.projection.name,
                "store": match r.projection.store { Store::Postgres => "postgres", Store::Redis => "redis" },
                "events": r.stats.events,
                "applied": r.stats.applied,
                "startup_seconds": r.stats.startup_secs,
                "seconds": r.stats.steady_secs,
                "seconds_including_startup": r.stats.total_secs,
                "events_per_sec": r.stats.rate(),
                "mean_batch": r.stats.mean_batch,
                "batches": r.stats.batches,
                "apply_seconds": r.stats.apply_secs,
                "retries": r.stats.retries,
                "cpu_percent_of_one_core": {
                    "bench": r.stats.cpu.bench,
                    "postgres": r.stats.cpu.postgres,
                    "redis": r.stats.cpu.redis,
                    "broker": r.stats.cpu.broker,
                    "other": r.stats.cpu.other,
                },
                "store_side": r.stats.server.iter().map(|s| json!({
                    "what": s.what,
                    "percent": s.share,
                    "note": s.note,
                })).collect::<Vec<_>>(),
                "baseline": {
                    "kind": r.baseline_name(),
                    "what": r.baseline.what,
                    "events": r.baseline.events,
                    "writes": r.baseline.writes,
                    "batches": r.baseline.batches,
                    "seconds": r.baseline.secs,
                    "events_per_sec": r.baseline.rate(),
                },
                "ratio": r.ratio(),
                "goal": GOAL,
                "goal_met": r.ratio() >= GOAL,
            })).collect::<Vec<_>>(),
        })
    }

    /// Writes `projectors-<unix time>.json` into `dir` (created if missing).
    pub(crate) fn write(&self, dir: &Path) -> anyhow::Result<PathBuf> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("Failed to create {}", dir.display()))?;
        let path = dir.join(format!("projectors-{}.json", self.unix_time));
        let text = serde_json::to_string_pretty(&self.json()).expect("JSON values serialise");
        std::fs::write(&path, text + "\n")
            .with_context(|| format!("Failed to write {}", path.display()))?;
        Ok(path)
    }
}

/// `1234567.8` as `1,234,568`.
fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}
