//! Structured logs: JSON lines by default (`SURGE_LOG_FORMAT=pretty` for humans), filtered by
//! `SURGE_LOG` (default `info`). Span fields such as `trace_id` appear on every line inside a span.

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_env("SURGE_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,rdkafka=warn,sqlx=warn"));
    let pretty = std::env::var("SURGE_LOG_FORMAT").is_ok_and(|f| f == "pretty");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if pretty {
        builder.init();
    } else {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init();
    }
}

/// The exit code of a process whose work ended with `outcome`; an error's whole cause chain is
/// logged and printed once, as the last thing the process says.
pub fn exit_code(outcome: anyhow::Result<()>) -> std::process::ExitCode {
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "Surge stopped on an error.");
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
