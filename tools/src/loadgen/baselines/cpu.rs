//! CPU used during each phase, per named process (the roles, the broker, Redis: `--cpu-pids
//! write-api=PID,...`), by this load generator, and by the whole machine, from `/proc`. With
//! every part on the same cores, this says which one a peak was waiting for.

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::{Value, json};

/// Linux reports process CPU time in USER_HZ ticks, 100 per second on every architecture
/// Surge runs on.
const TICKS_PER_SEC: f64 = 100.0;

/// Ticks at the start of a phase.
pub(super) struct Snapshot {
    at: Instant,
    processes: BTreeMap<String, Option<u64>>,
    machine_busy: Option<u64>,
}

/// Takes a snapshot of `pids` (name, pid), this process and the machine.
pub(super) fn snapshot(pids: &[(String, u32)]) -> Snapshot {
    let mut processes: BTreeMap<String, Option<u64>> = pids
        .iter()
        .map(|(name, pid)| (name.clone(), process_ticks(&pid.to_string())))
        .collect();
    processes.insert("loadgen".into(), process_ticks("self"));
    Snapshot {
        at: Instant::now(),
        processes,
        machine_busy: machine_busy_ticks(),
    }
}

impl Snapshot {
    /// Cores each process kept busy on average since the snapshot (1.0 = one core), and the
    /// machine's busy cores. A process that could not be read is left out.
    pub(super) fn cores_since(&self, pids: &[(String, u32)]) -> Value {
        let now = snapshot(pids);
        let secs = self.at.elapsed().as_secs_f64().max(f64::EPSILON);
        let cores = |before: Option<u64>, after: Option<u64>| {
            Some(after?.saturating_sub(before?) as f64 / TICKS_PER_SEC / secs)
        };
        let mut processes = serde_json::Map::new();
        for (name, before) in &self.processes {
            if let Some(used) = cores(*before, now.processes.get(name).copied().flatten()) {
                processes.insert(name.clone(), json!((used * 100.0).round() / 100.0));
            }
        }
        let machine =
            cores(self.machine_busy, now.machine_busy).map(|c| (c * 100.0).round() / 100.0);
        json!({ "cores_by_process": processes, "machine_busy_cores": machine })
    }
}

/// utime + stime of `/proc/<pid>/stat` (fields 14 and 15, counted after the command name,
/// which may hold spaces and parentheses).
fn process_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_process_ticks(&stat)
}

fn parse_process_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // After the name come field 3 (state) onwards: utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// All CPUs' busy ticks (everything but idle and iowait) from `/proc/stat`'s first line.
fn machine_busy_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    parse_machine_busy(stat.lines().next()?)
}

fn parse_machine_busy(cpu_line: &str) -> Option<u64> {
    let ticks: Vec<u64> = cpu_line
        .split_whitespace()
        .skip(1)
        .map(|t| t.parse().ok())
        .collect::<Option<_>>()?;
    let (idle, iowait) = (*ticks.get(3)?, *ticks.get(4)?);
    // guest and guest_nice (fields 9 and 10) are already counted in user and nice.
    let total: u64 = ticks.iter().take(8).sum();
    Some(total - idle - iowait)
}

/// `name=pid` pairs, as `--cpu-pids` takes them.
pub(crate) fn parse_pids(list: &[String]) -> anyhow::Result<Vec<(String, u32)>> {
    list.iter()
        .map(|pair| {
            let (name, pid) = pair
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("--cpu-pids wants name=pid, got {pair}"))?;
            let pid = pid
                .parse()
                .map_err(|_| anyhow::anyhow!("--cpu-pids: {pid} is not a process id"))?;
            Ok((name.to_owned(), pid))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_ticks_are_utime_plus_stime_even_when_the_name_has_spaces() {
        let stat = "4242 (tokio (worker) 1) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 70 0 0 20 0";
        assert_eq!(parse_process_ticks(stat), Some(320));
    }

    #[test]
    fn machine_busy_leaves_out_idle_and_iowait() {
        let line = "cpu  100 5 50 1000 30 2 3 0 7 0";
        assert_eq!(parse_machine_busy(line), Some(100 + 5 + 50 + 2 + 3));
    }

    #[test]
    fn pids_are_name_equals_pid() {
        let pids = parse_pids(&["write-api=12".into(), "broker=7".into()]).unwrap();
        assert_eq!(pids, vec![("write-api".into(), 12), ("broker".into(), 7)]);
        assert!(parse_pids(&["12".into()]).is_err());
    }
}
