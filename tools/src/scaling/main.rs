//! `surge-scaling`: how Surge's cost grows, drawn from the load-test reports `scripts/scaling.sh`
//! collects: the processors' catch-up with 1, 2 and 3 instances, the write API's peaks with 1
//! and 2, and each role's memory and CPU per 1,000 events against the users of a spike. Prints
//! each figure, writes them to `scaling-<stamp>.json` and draws one SVG per question beside it.

mod figures;
mod plot;

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

#[derive(Parser)]
#[command(
    name = "surge-scaling",
    version,
    about = "How Surge's cost grows: plots load-test reports against the instances or users that grew"
)]
struct Cli {
    /// The runs, a line each: `<what grew: processors|write-apis|users> <its value> <the
    /// reports' stamp>` (scripts/scaling.sh writes it as `scaling-<stamp>.runs`).
    manifest: PathBuf,
    /// Where the reports are and the figures go.
    #[arg(long, default_value = "bench/results")]
    results: PathBuf,
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&cli.manifest)
        .with_context(|| format!("Failed to read {}", cli.manifest.display()))?;
    let runs = figures::parse_manifest(&text)?;
    let figures = figures::Figures::read(&runs, &cli.results)?;
    figures.print();
    let stem = cli
        .manifest
        .file_stem()
        .and_then(|s| s.to_str())
        .context("the manifest needs a file name")?
        .to_owned();
    let out = cli.results.join(format!("{stem}.json"));
    std::fs::write(&out, serde_json::to_vec_pretty(&figures.to_json())?)
        .with_context(|| format!("Failed to write {}", out.display()))?;
    println!("figures written to {}", out.display());
    for svg in plot::draw(&figures, &cli.results, &stem)? {
        println!("plotted {}", svg.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
