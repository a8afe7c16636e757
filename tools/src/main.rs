//! `surge-loadgen`: a crowd of Mini App users against a running write API and query API, open
//! loop, with a latency report per endpoint; or the machine's limits beside the system's peaks
//! (see [`loadgen`]). Tooling that drives Surge from outside: it ships apart from the `surge`
//! binary and reads the same `SURGE_*` settings.

mod loadgen;

// The roles' own settings, connections and logging, so one environment drives the stack and
// its load test alike.
use surge::{infra, settings, telemetry};

use clap::Parser;

/// The allocator the `surge` binary uses, so the limits this process measures (the bare axum
/// handler above all) run on the same footing as the roles they are compared with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "surge-loadgen",
    version,
    about = "A crowd of Mini App users against a running write API and query API, open loop, with a latency report per endpoint"
)]
struct Cli {
    #[command(flatten)]
    args: loadgen::Args,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    telemetry::init();
    telemetry::exit_code(loadgen::run(cli.args).await)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
