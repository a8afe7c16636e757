//! `surge broadcasts [ID] [--json] [--watch]`: the latest broadcasts, or one, with what was
//! sent, failed, blocked and cancelled, what remains and when it should be done, read from the
//! `notifications` projection's active version and its outbox (as `GET /v1/admin/broadcasts`
//! shows them). `--watch` redraws every second until the broadcasts shown are done.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;
use sqlx::PgPool;
use surge_projections::ProjectionId;
use surge_projections::naming::table_prefix;
use surge_projections::notifications::{NotificationStore, Outbox, view};
use surge_projections::versions::VersionRegistry;
use uuid::Uuid;

use crate::infra;
use crate::settings::Common;

#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) common: Common,
    /// One broadcast; default: the latest ten.
    broadcast_id: Option<Uuid>,
    /// Print JSON lines (one per broadcast) instead of progress bars.
    #[arg(long)]
    json: bool,
    /// Redraw every second until every broadcast shown is done or cancelled.
    #[arg(long)]
    watch: bool,
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let pool = infra::database(&args.common).await?;
    let terminal = std::io::stdout().is_terminal() && !args.json;
    let mut drawn = 0;
    loop {
        let views = read(&pool, args.broadcast_id).await?;
        if views.is_empty() {
            match args.broadcast_id {
                Some(id) => anyhow::bail!("no broadcast {id}"),
                None => println!("no broadcasts yet"),
            }
            return Ok(());
        }
        let mut out = std::io::stdout().lock();
        if terminal && drawn > 0 {
            // Back up over the previous drawing.
            write!(out, "\x1b[{drawn}A")?;
        }
        for view in &views {
            let line = if args.json {
                view.to_string()
            } else {
                line(view)
            };
            writeln!(out, "{line}\x1b[K")?;
        }
        out.flush()?;
        drawn = views.len();
        let busy = views.iter().any(|v| v["status"] == "sending");
        if !args.watch || !busy {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn read(pool: &PgPool, id: Option<Uuid>) -> anyhow::Result<Vec<Value>> {
    let name = ProjectionId::Notifications.name();
    let version = VersionRegistry::postgres(pool.clone(), name)
        .active()
        .await
        .context("Failed to read the notifications projection's versions")?
        .map_or(1, |active| active.version);
    let store = NotificationStore::new(&table_prefix(name, version));
    let broadcasts = match id {
        Some(id) => store.broadcast(pool, id).await?.into_iter().collect(),
        None => store.latest(pool, 10).await?,
    };
    let ids: Vec<Uuid> = broadcasts.iter().map(|b| b.broadcast_id).collect();
    let mut progress = Outbox.progresses(pool, &ids).await?;
    Ok(broadcasts
        .iter()
        .map(|b| view(b, &progress.remove(&b.broadcast_id).unwrap_or_default()))
        .collect())
}

/// `<id> <status> [#####-----] 45% sent 4,500 failed 0 blocked 12 cancelled 0 remaining 5,488 · 29.8/s · ETA 3m04s`
fn line(view: &Value) -> String {
    let n = |key: &str| view[key].as_i64().unwrap_or(0);
    let total = n("recipients");
    let done = total - n("remaining");
    let share = if total == 0 {
        1.0
    } else {
        done as f64 / total as f64
    };
    const WIDTH: usize = 24;
    let filled = (share * WIDTH as f64).round() as usize;
    let bar = format!("{}{}", "#".repeat(filled), "-".repeat(WIDTH - filled));
    let eta = view["eta_seconds"]
        .as_i64()
        .map_or("ETA ?".to_owned(), |s| {
            format!("ETA {}m{:02}s", s / 60, s % 60)
        });
    format!(
        "{} {:<9} [{bar}] {:>3.0}% sent {} failed {} blocked {} cancelled {} remaining {} · {:.1}/s · {eta}",
        view["broadcast_id"].as_str().unwrap_or("?"),
        view["status"].as_str().unwrap_or("?"),
        share * 100.0,
        n("sent"),
        n("failed"),
        n("blocked"),
        n("cancelled"),
        n("remaining"),
        view["per_second"].as_f64().unwrap_or(0.0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_line_shows_the_bar_the_counts_and_the_eta() {
        let view = json!({
            "broadcast_id": "b1", "status": "sending", "recipients": 100, "sent": 40,
            "failed": 2, "blocked": 3, "cancelled": 0, "remaining": 55, "per_second": 5.0,
            "eta_seconds": 71,
        });
        let shown = line(&view);
        assert!(
            shown.starts_with("b1 sending   [###########-------------]  45%"),
            "{shown}"
        );
        assert!(
            shown.ends_with("remaining 55 · 5.0/s · ETA 1m11s"),
            "{shown}"
        );
        let empty =
            json!({"broadcast_id": "b2", "status": "done", "recipients": 0, "remaining": 0});
        assert!(line(&empty).contains("[########################] 100%"));
    }
}
