//! A Kafka broker of one test's own, started with `scripts/broker.sh` on a free port in a
//! directory of its own, for tests that kill, pause or restart the broker (the suite's shared
//! broker must stay up for every other test).

use std::path::PathBuf;
use std::process::Command;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/broker.sh");

pub struct BrokerProcess {
    pub port: u16,
    pub brokers: String,
    dir: PathBuf,
}

impl BrokerProcess {
    /// Formats a fresh log in a new directory and starts the broker; returns once it answers.
    pub fn start() -> Self {
        let dir = std::env::temp_dir().join(crate::helpers::unique_id());
        let port = free_port();
        let broker = BrokerProcess {
            port,
            brokers: format!("127.0.0.1:{port}"),
            dir,
        };
        broker.run("start");
        broker
    }

    /// Starts the broker again on the same port and log directory (after a kill).
    pub fn restart(&self) {
        self.run("start");
    }

    /// Sends a signal by name (KILL, STOP, CONT) to the broker's JVM; after KILL, waits until
    /// the process is gone so that a restart finds its log directory free.
    pub fn signal(&self, name: &str) {
        let pid = self.pid().expect("the broker runs");
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(pid.to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} {pid} failed");
        if name == "KILL" {
            let gone = std::time::Instant::now() + std::time::Duration::from_secs(30);
            while std::path::Path::new(&format!("/proc/{pid}/stat")).exists() && !is_zombie(pid) {
                assert!(
                    std::time::Instant::now() < gone,
                    "broker {pid} survived SIGKILL"
                );
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }

    fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.join("broker.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    fn run(&self, verb: &str) {
        let dir = self.dir.to_string_lossy();
        match verb {
            "start" => run_script(SCRIPT, &[verb, &self.port.to_string(), &dir]),
            _ => run_script(SCRIPT, &[verb, &dir]),
        }
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        // A paused broker cannot shut down; let it continue first.
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill")
                .arg("-CONT")
                .arg(pid.to_string())
                .status();
        }
        let _ = Command::new("bash")
            .arg(SCRIPT)
            .arg("stop")
            .arg(&self.dir)
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs one of the project's scripts with `args`; panics with what it printed if it fails.
pub fn run_script(script: &str, args: &[&str]) {
    let output = Command::new("bash")
        .arg(script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {script}: {e}"));
    assert!(
        output.status.success(),
        "{script} {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A process killed but not yet reaped by its parent.
fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            stat.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(true)
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
