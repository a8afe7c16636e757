//! The run over time as an SVG: requests and accepted writes per second, p99 latency, and the
//! processors' consumer lag, one panel each, sharing the time axis.

use std::path::Path;

use plotters::prelude::*;
use serde_json::Value;

/// A named series of (second, value) points and its colour.
type Line<'a> = (&'a str, Vec<(f64, f64)>, RGBColor);

/// Draws `report`'s timeline to `path`.
pub(super) fn timeline(report: &Value, path: &Path) -> anyhow::Result<()> {
    let seconds = report["timeline"].as_array().cloned().unwrap_or_default();
    anyhow::ensure!(
        seconds.len() >= 2,
        "a plot needs at least two seconds of timeline"
    );
    let series = |field: &str| -> Vec<(f64, f64)> {
        seconds
            .iter()
            .filter_map(|s| Some((s["second"].as_f64()?, s[field].as_f64()?)))
            .collect()
    };
    let end = seconds.len() as f64;
    let root = SVGBackend::new(path, (900, 720)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((3, 1));
    let plots: [(&str, Vec<Line>); 3] = [
        (
            "per second",
            vec![
                ("requests", series("requests"), BLUE),
                ("accepted writes", series("accepted_writes"), GREEN),
                ("errors", series("errors"), RED),
            ],
        ),
        ("p99 latency, ms", vec![("p99", series("p99_ms"), MAGENTA)]),
        (
            "consumer lag, events",
            vec![("lag", series("consumer_lag"), BLACK)],
        ),
    ];
    for (panel, (title, lines)) in panels.iter().zip(plots) {
        let top = lines
            .iter()
            .flat_map(|(_, points, _)| points.iter().map(|(_, y)| *y))
            .fold(1.0_f64, f64::max);
        let mut chart = ChartBuilder::on(panel)
            .caption(title, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..end, 0.0..top * 1.1)?;
        chart.configure_mesh().x_desc("seconds").draw()?;
        for (name, points, color) in lines {
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_timeline_becomes_an_svg_with_a_line_per_series() {
        let report = json!({ "timeline": [
            { "second": 0, "requests": 10, "accepted_writes": 8, "errors": 0, "p99_ms": 12.5, "consumer_lag": 40 },
            { "second": 1, "requests": 12, "accepted_writes": 9, "errors": 1, "p99_ms": 30.0, "consumer_lag": null },
            { "second": 2, "requests": 11, "accepted_writes": 9, "errors": 0, "p99_ms": 8.0, "consumer_lag": 2 },
        ]});
        let path = std::env::temp_dir().join(format!("surge-plot-{}.svg", std::process::id()));
        timeline(&report, &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert!(svg.starts_with("<svg"), "{}", &svg[..80.min(svg.len())]);
        let series = svg
            .lines()
            .filter(|l| l.contains("<polyline") && l.contains("stroke-width=\"2\""))
            .count();
        assert_eq!(series, 5, "a line per series: {svg}");
        assert!(svg.contains("consumer lag, events"));
    }

    #[test]
    fn one_second_is_not_a_plot() {
        let report = json!({ "timeline": [{ "second": 0, "requests": 1 }] });
        let error = timeline(&report, Path::new("/nonexistent/x.svg")).unwrap_err();
        assert!(error.to_string().contains("two seconds"));
    }
}
