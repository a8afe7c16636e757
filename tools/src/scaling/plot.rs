//! One SVG per question: `<stem>-processors.svg` (catch-up per projection against instances),
//! `<stem>-write-apis.svg` (single and batched write peaks against instances) and
//! `<stem>-users.svg` (each role's peak memory and CPU per 1,000 events against users, on a
//! logarithmic axis).

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::figures::{Figures, Series};

/// How a panel's x axis reads.
#[derive(Clone, Copy)]
enum Axis {
    /// Instances: whole numbers.
    Instances,
    /// Users: drawn at log10, labelled with the count.
    Users,
}

/// One panel of a plot: its title, its x axis and its lines.
type Panel = (String, Axis, Series);

/// Draws every question that has figures; the files written.
pub(crate) fn draw(figures: &Figures, dir: &Path, stem: &str) -> anyhow::Result<Vec<PathBuf>> {
    let writes = |name: &str| -> Series {
        let only = figures.writes.iter().filter(|(n, _)| n.as_str() == name);
        only.map(|(n, points)| (n.clone(), points.clone()))
            .collect()
    };
    let plots: [(&str, Vec<Panel>); 3] = [
        (
            "processors",
            vec![(
                "projections catching up, events/s, by processor instances".into(),
                Axis::Instances,
                figures.catch_up.clone(),
            )],
        ),
        (
            "write-apis",
            vec![
                (
                    "single writes, req/s, by write API instances".into(),
                    Axis::Instances,
                    writes("single"),
                ),
                (
                    "batched writes, events/s, by write API instances".into(),
                    Axis::Instances,
                    writes("batched"),
                ),
            ],
        ),
        (
            "users",
            vec![
                (
                    "peak resident memory, MB, by users".into(),
                    Axis::Users,
                    figures.peak_rss_mb.clone(),
                ),
                (
                    "CPU seconds per 1,000 accepted events, by users".into(),
                    Axis::Users,
                    figures.cpu_per_1000_events.clone(),
                ),
            ],
        ),
    ];
    let mut written = Vec::new();
    for (question, panels) in plots {
        if panels.iter().all(|(_, _, series)| series.is_empty()) {
            continue;
        }
        let path = dir.join(format!("{stem}-{question}.svg"));
        stacked(&path, &panels)?;
        written.push(path);
    }
    Ok(written)
}

/// `panels` one above the other in one SVG at `path`.
fn stacked(path: &Path, panels: &[Panel]) -> anyhow::Result<()> {
    let height = 320 * u32::try_from(panels.len())?;
    let root = SVGBackend::new(path, (900, height)).into_drawing_area();
    root.fill(&WHITE)?;
    for (area, (title, axis, series)) in root.split_evenly((panels.len(), 1)).iter().zip(panels) {
        panel(area, title, *axis, series)?;
    }
    root.present()?;
    Ok(())
}

fn panel(
    area: &DrawingArea<SVGBackend, Shift>,
    title: &str,
    axis: Axis,
    series: &Series,
) -> anyhow::Result<()> {
    let at = |x: f64| match axis {
        Axis::Instances => x,
        Axis::Users => x.log10(),
    };
    let xs = series.values().flatten().map(|(x, _)| at(*x));
    let (lo, hi) = xs.fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(x), hi.max(x)));
    let (lo, hi) = if lo > hi {
        (0.0, 1.0)
    } else {
        (lo - 0.5, hi + 0.5)
    };
    let top = series
        .values()
        .flatten()
        .map(|(_, y)| *y)
        .fold(0.0_f64, f64::max)
        .max(f64::MIN_POSITIVE);
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 16))
        .margin(8)
        .x_label_area_size(28)
        .y_label_area_size(70)
        .build_cartesian_2d(lo..hi, 0.0..top * 1.15)?;
    let label = move |x: &f64| match axis {
        Axis::Instances if x.fract() == 0.0 => format!("{x:.0}"),
        Axis::Instances => String::new(),
        Axis::Users => format!("{:.0}", 10_f64.powf(*x)),
    };
    chart
        .configure_mesh()
        .x_label_formatter(&label)
        .x_desc(match axis {
            Axis::Instances => "instances",
            Axis::Users => "users (log scale)",
        })
        .draw()?;
    for (i, (name, points)) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let points: Vec<(f64, f64)> = points.iter().map(|(x, y)| (at(*x), *y)).collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
        chart.draw_series(
            points
                .into_iter()
                .map(|p| Circle::new(p, 3, color.filled())),
        )?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_question_becomes_an_svg_with_a_line_per_series() {
        let dir = std::env::temp_dir().join(format!("surge-scaling-plot-{}", std::process::id()));
        let runs = crate::figures::tests::write_reports(&dir);
        let figures = Figures::read(&runs, &dir).unwrap();
        let written = draw(&figures, &dir, "scaling-1").unwrap();
        let lines = |path: &Path| {
            let svg = std::fs::read_to_string(path).unwrap();
            assert!(svg.starts_with("<svg"), "{}", &svg[..80.min(svg.len())]);
            svg.lines()
                .filter(|l| l.contains("<polyline") && l.contains("stroke-width=\"2\""))
                .count()
        };
        let counts: Vec<usize> = written.iter().map(|p| lines(p)).collect();
        let _ = std::fs::remove_dir_all(&dir);
        let names: Vec<String> = written
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "scaling-1-processors.svg",
                "scaling-1-write-apis.svg",
                "scaling-1-users.svg"
            ]
        );
        // Two projections; single and batched; three roles in each of two panels.
        assert_eq!(counts, [2, 2, 6]);
    }
}
