//! Where a phase's time goes: CPU time of this process (the processor under test runs in it),
//! of PostgreSQL, Redis and the broker, and of everything else on the machine, from `/proc`.
//! The stores and the broker may be shared with other work; "other" shows how busy the rest of
//! the machine was, so a figure taken on a busy machine is recognisable as such.

use std::fs;
use std::time::Instant;

/// Linux reports process CPU time in USER_HZ ticks, 100 per second on every mainstream platform
/// (reading it properly needs `sysconf`, which is `unsafe`).
const TICKS_PER_SEC: f64 = 100.0;

/// Cumulative CPU ticks at one instant.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    at: Instant,
    bench: u64,
    postgres: u64,
    redis: u64,
    broker: u64,
    machine: u64,
}

/// CPU used between two samples, in percent of one core (so 200 % is both cores of a 2-core
/// machine busy).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CpuUse {
    pub(crate) bench: f64,
    pub(crate) postgres: f64,
    pub(crate) redis: f64,
    pub(crate) broker: f64,
    pub(crate) other: f64,
}

pub(crate) fn sample() -> Sample {
    let (mut postgres, mut redis, mut broker) = (0, 0, 0);
    if let Ok(entries) = fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
            else {
                continue;
            };
            let Ok(comm) = fs::read_to_string(format!("/proc/{pid}/comm")) else {
                continue;
            };
            let slot = match comm.trim() {
                "postgres" => &mut postgres,
                "redis-server" => &mut redis,
                // Kafka runs in a JVM.
                "java" => &mut broker,
                _ => continue,
            };
            *slot += process_ticks(&format!("/proc/{pid}/stat")).unwrap_or(0);
        }
    }
    Sample {
        at: Instant::now(),
        bench: process_ticks("/proc/self/stat").unwrap_or(0),
        postgres,
        redis,
        broker,
        machine: machine_ticks().unwrap_or(0),
    }
}

impl Sample {
    pub(crate) fn until(&self, later: &Sample) -> CpuUse {
        let wall = later
            .at
            .duration_since(self.at)
            .as_secs_f64()
            .max(f64::EPSILON);
        let pct = |a: u64, b: u64| b.saturating_sub(a) as f64 / TICKS_PER_SEC / wall * 100.0;
        let bench = pct(self.bench, later.bench);
        let postgres = pct(self.postgres, later.postgres);
        let redis = pct(self.redis, later.redis);
        let broker = pct(self.broker, later.broker);
        let machine = pct(self.machine, later.machine);
        CpuUse {
            bench,
            postgres,
            redis,
            broker,
            other: (machine - bench - postgres - redis - broker).max(0.0),
        }
    }
}

/// utime + stime + cutime + cstime (children that exited, e.g. PostgreSQL backends, count in
/// the postmaster).
fn process_ticks(stat_path: &str) -> Option<u64> {
    let stat = fs::read_to_string(stat_path).ok()?;
    // The command name is in parentheses and may hold spaces: fields start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // fields[0] is field 3 (state); utime..cstime are fields 14..17.
    let ticks = fields.get(11..15)?;
    ticks
        .iter()
        .map(|t| t.parse::<i64>().ok())
        .sum::<Option<i64>>()
        .map(|t| t.max(0) as u64)
}

/// Busy ticks of all CPUs: everything in the `cpu` line of `/proc/stat` but idle and iowait
/// (guest time is already inside user time).
fn machine_ticks() -> Option<u64> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().ok())
        .collect::<Option<_>>()?;
    let busy = [0, 1, 2, 5, 6, 7]; // user nice system irq softirq steal
    Some(busy.iter().filter_map(|&i| values.get(i)).sum())
}
