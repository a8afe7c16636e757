//! `surge`: one binary, one subcommand per role. Each role also runs alone so it can be scaled
//! horizontally; `surge dev` runs everything in one process on embedded defaults.

mod commands;

use surge::{infra, serve, settings, telemetry};

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc's malloc: the request paths allocate small, short-lived buffers on
/// two worker threads, and glibc's arenas spent about a quarter of the write API's cycles under
/// load (malloc, free, consolidation; `perf` during the load test's single-write phase).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "surge",
    version,
    about = "Event-sourced backend for Telegram Mini Apps"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Everything in one process: embedded Kafka (unless SURGE_KAFKA_BROKERS) and schema registry
    /// (unless SURGE_SCHEMA_REGISTRY_URL), migrations, the write API and the query API.
    Dev(Box<commands::dev::Args>),
    /// The write API alone: Mini App writes become Avro events on Kafka.
    WriteApi(commands::write_api::Args),
    /// Stream processors: fold the events into projections (all, or --projection NAME ...).
    Process(commands::process::Args),
    /// The query API alone: serves the projections, with read-your-writes.
    QueryApi(commands::query_api::Args),
    /// Creates the database, its schema and the registry tables, creates the topic and registers
    /// every event schema (refused if incompatible with what is registered).
    Migrate(commands::migrate::Args),
    /// Lists each projection's versions in the stores, their positions and lag behind the
    /// events topic, and which version this build runs (--json for scripts).
    Projections(commands::projections::Args),
    /// Lists the events each projection holds parked behind a user's dead-lettered event, with
    /// the reason; `retry` applies them again once a fix is deployed, `skip` drops the
    /// dead-lettered one and applies the rest, in order, exactly once.
    Dlq(commands::dlq::Args),
    /// Rebuilds a projection's next version from the topic while the current one serves, then
    /// switches to it atomically and drops the old one (resumes an interrupted rebuild).
    Replay(commands::replay::Args),
    /// The latest broadcasts (or one): sent, failed, blocked, cancelled, remaining and an ETA,
    /// as progress bars (--watch redraws until done; --json for scripts).
    Broadcasts(commands::broadcasts::Args),
    /// Prints a topic's events as JSON lines, decoded through the schema registry; joins no
    /// serving group and commits nothing unless --group is given.
    Tap(commands::tap::Args),
    /// Prints valid initData for the configured bot token, for development, tests and load tests.
    SignInitData(commands::sign_init_data::Args),
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::SignInitData(_)) {
        telemetry::init();
    }
    let result = match cli.command {
        Command::Dev(args) => commands::dev::run(*args).await,
        Command::WriteApi(args) => commands::write_api::run(args).await,
        Command::Process(args) => commands::process::run(args).await,
        Command::QueryApi(args) => commands::query_api::run(args).await,
        Command::Migrate(args) => commands::migrate::run(args).await,
        Command::Projections(args) => commands::projections::run(args).await,
        Command::Dlq(args) => commands::dlq::run(args).await,
        Command::Broadcasts(args) => commands::broadcasts::run(args).await,
        Command::Replay(args) => commands::replay::run(args).await,
        Command::Tap(args) => commands::tap::run(args).await,
        Command::SignInitData(args) => commands::sign_init_data::run(args),
    };
    telemetry::exit_code(result)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
