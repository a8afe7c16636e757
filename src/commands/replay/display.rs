//! Drawing a rebuild's progress: bars on a terminal (total and per partition: events done,
//! events/s, ETA), plain lines every few seconds otherwise (logs, CI, pipes).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use surge_processors::replay::{Phase, Report, Snapshot};
use tokio::sync::watch;

/// How often a plain line is printed.
const LINE_EVERY: Duration = Duration::from_secs(2);

/// Draws every snapshot until the rebuild's sender is gone.
pub(super) async fn draw(snapshots: watch::Receiver<Option<Snapshot>>) {
    if std::io::stderr().is_terminal() {
        bars(snapshots).await;
    } else {
        lines(snapshots).await;
    }
}

async fn lines(mut snapshots: watch::Receiver<Option<Snapshot>>) {
    let mut last: Option<(tokio::time::Instant, Phase)> = None;
    while snapshots.changed().await.is_ok() {
        let Some(snapshot) = snapshots.borrow_and_update().clone() else {
            continue;
        };
        let due =
            last.is_none_or(|(at, phase)| at.elapsed() >= LINE_EVERY || phase != snapshot.phase);
        if due {
            println!("{}", line(&snapshot));
            last = Some((tokio::time::Instant::now(), snapshot.phase));
        }
    }
}

/// One plain progress line: the total, then each partition's share done.
pub(super) fn line(s: &Snapshot) -> String {
    let partitions: Vec<String> = s
        .partitions
        .iter()
        .map(|p| format!("p{}:{}", p.partition, percent(p.done, p.target)))
        .collect();
    format!(
        "replay {} v{} {}: {}/{} events ({}), {}/s, ETA {}, {} elapsed | {}",
        s.projection,
        s.version,
        s.phase.as_str(),
        thousands(s.done),
        thousands(s.target),
        percent(s.done, s.target),
        thousands(s.rate as i64),
        eta(s.eta),
        secs(s.elapsed),
        partitions.join(" ")
    )
}

async fn bars(mut snapshots: watch::Receiver<Option<Snapshot>>) {
    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(4));
    let style = ProgressStyle::with_template("{prefix:>14} [{bar:40.cyan/blue}] {msg}")
        .expect("a valid template")
        .progress_chars("=> ");
    let total = multi.add(ProgressBar::new(0).with_style(style.clone()));
    let mut partitions: Vec<ProgressBar> = Vec::new();
    while snapshots.changed().await.is_ok() {
        let Some(s) = snapshots.borrow_and_update().clone() else {
            continue;
        };
        if partitions.is_empty() {
            partitions = s
                .partitions
                .iter()
                .map(|p| {
                    let bar = multi.add(ProgressBar::new(0).with_style(style.clone()));
                    bar.set_prefix(format!("partition {}", p.partition));
                    bar
                })
                .collect();
        }
        total.set_prefix(format!("{} v{}", s.projection, s.version));
        set(&total, s.done, s.target, s.rate, s.eta, s.phase.as_str());
        for (bar, p) in partitions.iter().zip(&s.partitions) {
            let note = if p.handed_over { "handed over" } else { "" };
            set(bar, p.done, p.target, p.rate, p.eta, note);
        }
    }
    total.finish();
    for bar in partitions {
        bar.finish();
    }
}

fn set(bar: &ProgressBar, done: i64, target: i64, rate: f64, eta_: Option<Duration>, note: &str) {
    bar.set_length(target.max(0) as u64);
    bar.set_position(done.max(0) as u64);
    bar.set_message(format!(
        "{}/{} events, {}/s, ETA {} {note}",
        thousands(done),
        thousands(target),
        thousands(rate as i64),
        eta(eta_)
    ));
}

/// The last thing a rebuild prints.
pub(super) fn summary(report: &Report) -> String {
    let mut text = format!(
        "{} v{} is active in place of v{}: {} events applied in {} ({}/s), switched after {}",
        report.projection,
        report.version,
        report.replaced,
        thousands(report.applied),
        secs(report.elapsed),
        thousands((report.applied as f64 / report.until_switch.as_secs_f64().max(1e-3)) as i64),
        secs(report.until_switch),
    );
    if report.resumed {
        text.push_str("; resumed an interrupted rebuild");
    }
    text.push_str(if report.dropped_old {
        "; the old version is dropped"
    } else {
        "; the old version is kept (retired; `surge projections --drop-retired` drops it)"
    });
    if !report.not_handed_over.is_empty() {
        text.push_str(&format!(
            "; no `surge process` took over partitions {:?} yet",
            report.not_handed_over
        ));
    }
    text
}

fn percent(done: i64, target: i64) -> String {
    if target <= 0 {
        return "100%".into();
    }
    format!("{:.0}%", (done as f64 / target as f64 * 100.0).min(100.0))
}

fn eta(eta: Option<Duration>) -> String {
    eta.map_or_else(|| "?".into(), secs)
}

fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 60.0 {
        format!("{s:.1} s")
    } else {
        format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64)
    }
}

/// 1234567 as `1,234,567`.
fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;
    use surge_processors::replay::PartitionProgress;

    #[test]
    fn numbers_durations_and_shares_read_like_a_person_wrote_them() {
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(-1000), "-1,000");
        assert_eq!(secs(Duration::from_millis(1500)), "1.5 s");
        assert_eq!(secs(Duration::from_secs(125)), "2m05s");
        assert_eq!(percent(1, 3), "33%");
        assert_eq!(percent(0, 0), "100%");
        assert_eq!(eta(None), "?");
    }

    #[test]
    fn a_plain_line_shows_the_total_and_every_partition() {
        let snapshot = Snapshot {
            projection: "wallets",
            version: 2,
            phase: Phase::Rebuilding,
            elapsed: Duration::from_secs(3),
            applied_this_run: 4000,
            done: 4000,
            target: 10_000,
            rate: 1333.4,
            eta: Some(Duration::from_secs(4)),
            partitions: vec![
                PartitionProgress {
                    partition: 0,
                    done: 3000,
                    target: 5000,
                    rate: 1000.0,
                    eta: Some(Duration::from_secs(2)),
                    handed_over: false,
                },
                PartitionProgress {
                    partition: 1,
                    done: 1000,
                    target: 5000,
                    rate: 333.0,
                    eta: None,
                    handed_over: false,
                },
            ],
        };
        assert_eq!(
            line(&snapshot),
            "replay wallets v2 rebuilding: 4,000/10,000 events (40%), 1,333/s, ETA 4.0 s, 3.0 s elapsed | p0:60% p1:20%"
        );
    }
}
