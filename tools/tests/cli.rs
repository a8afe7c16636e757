//! `surge-loadgen` as a process: the flags `surge loadgen` took, and a refusal before any
//! request. Also what makes `cargo nextest run --workspace` build the binary that the root
//! package's e2e tests (`tests/e2e/loadgen.rs`) run against a real stack.

use std::process::Command;

fn loadgen() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_surge-loadgen"));
    command.env_clear().env("SURGE_LOG", "warn");
    command
}

#[test]
fn it_takes_the_flags_surge_loadgen_took() {
    let output = loadgen().arg("--help").output().expect("run surge-loadgen");
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for flag in [
        "--scenario",
        "--write-url",
        "--query-url",
        "--rate",
        "--duration-secs",
        "--users",
        "--first-user-id",
        "--ramp-secs",
        "--max-in-flight",
        "--freshness-rates",
        "--concurrency",
        "--cpu-pids",
        "--lag-url",
        "--out",
        "--bot-token",
        "--kafka-brokers",
        "--database-url",
        "--database-schema",
        "--redis-url",
        "--redis-prefix",
        "--events-topic",
        "--events-partitions",
        "--topic-replication",
    ] {
        assert!(help.contains(flag), "{flag} is missing from:\n{help}");
    }
}

#[test]
fn a_rate_of_zero_is_refused_before_any_request() {
    let output = loadgen()
        .args(["--rate", "0", "--write-url", "http://127.0.0.1:9"])
        .output()
        .expect("run surge-loadgen");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--rate and --duration-secs must be positive"),
        "{stderr}"
    );
}
