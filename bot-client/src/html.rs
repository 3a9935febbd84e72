//! The `--html` report: one self-contained page with the summary and three line charts drawn
//! as inline SVG (latency percentiles, connected bots, messages per second over time).
//!
//! No JavaScript, no external CSS or fonts: the file must open the same way from a CI artifact
//! store, an email attachment or a machine without network. Every string that comes from the
//! run is escaped.

use crate::report::{Report, TimelinePoint};
use std::fmt::Write as _;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 240.0;
const MARGIN_LEFT: f64 = 64.0;
const MARGIN_RIGHT: f64 = 16.0;
const MARGIN_TOP: f64 = 28.0;
const MARGIN_BOTTOM: f64 = 36.0;
const Y_TICKS: u32 = 4;

/// One line of a chart.
struct Series<'a> {
    name: &'a str,
    color: &'a str,
    value: fn(&TimelinePoint) -> f64,
}

/// Renders the whole page.
pub fn render(report: &Report) -> String {
    let timeline = &report.timeline;
    let latency = line_chart(
        "Input latency per second (ms)",
        timeline,
        &[
            Series {
                name: "p50",
                color: "#1f77b4",
                value: |point| point.p50_ms,
            },
            Series {
                name: "p99",
                color: "#d62728",
                value: |point| point.p99_ms,
            },
            Series {
                name: "max",
                color: "#7f7f7f",
                value: |point| point.max_ms,
            },
        ],
    );
    let connected = line_chart(
        "Connected bots",
        timeline,
        &[Series {
            name: "connected",
            color: "#2ca02c",
            value: |point| point.connected as f64,
        }],
    );
    let messages = line_chart(
        "Server messages per second",
        timeline,
        &[Series {
            name: "messages/s",
            color: "#9467bd",
            value: |point| point.messages_per_s,
        }],
    );
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Ludus bots: {scenario}</title>\
         <style>body{{font-family:sans-serif;margin:2em;color:#222}}\
         pre{{background:#f6f6f6;padding:1em}}svg{{display:block;margin:1em 0}}</style>\
         </head><body><h1>Ludus bots: {scenario}</h1><pre>{summary}</pre>{latency}{connected}{messages}\
         </body></html>\n",
        scenario = escape(report.scenario.name()),
        summary = escape(&report.summary_table()),
    )
}

/// One SVG line chart of `series` over the timeline's seconds.
fn line_chart(title: &str, timeline: &[TimelinePoint], series: &[Series<'_>]) -> String {
    let max_t = timeline.iter().map(|point| point.t_s).fold(1.0, f64::max);
    let max_y = nice_ceiling(
        timeline
            .iter()
            .flat_map(|point| series.iter().map(move |line| (line.value)(point)))
            .fold(0.0, f64::max),
    );
    let plot_width = WIDTH - MARGIN_LEFT - MARGIN_RIGHT;
    let plot_height = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM;
    let x = |t: f64| MARGIN_LEFT + t / max_t * plot_width;
    let y = |value: f64| MARGIN_TOP + plot_height - value / max_y * plot_height;

    let mut svg = String::new();
    // Writing to a String cannot fail; the results below are ignored for that reason.
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         viewBox=\"0 0 {WIDTH} {HEIGHT}\" font-size=\"11\" role=\"img\" aria-label=\"{title}\">\
         <text x=\"{MARGIN_LEFT}\" y=\"16\" font-size=\"13\" font-weight=\"bold\">{title}</text>",
        title = escape(title),
    );
    for step in 0..=Y_TICKS {
        let value = max_y * f64::from(step) / f64::from(Y_TICKS);
        let _ = write!(
            svg,
            "<line x1=\"{MARGIN_LEFT}\" x2=\"{right}\" y1=\"{py:.1}\" y2=\"{py:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{label_x}\" y=\"{label_y:.1}\" text-anchor=\"end\">{label}</text>",
            right = WIDTH - MARGIN_RIGHT,
            py = y(value),
            label_x = MARGIN_LEFT - 6.0,
            label_y = y(value) + 4.0,
            label = format_axis(value),
        );
    }
    let _ = write!(
        svg,
        "<text x=\"{MARGIN_LEFT}\" y=\"{bottom}\">0 s</text>\
         <text x=\"{right}\" y=\"{bottom}\" text-anchor=\"end\">{max_t:.0} s</text>",
        bottom = HEIGHT - 12.0,
        right = WIDTH - MARGIN_RIGHT,
    );
    for (index, line) in series.iter().enumerate() {
        let points = timeline
            .iter()
            .map(|point| format!("{:.1},{:.1}", x(point.t_s), y((line.value)(point))))
            .collect::<Vec<_>>()
            .join(" ");
        let legend_x = MARGIN_LEFT + 80.0 * index as f64 + 200.0;
        let _ = write!(
            svg,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\" points=\"{points}\"/>\
             <rect x=\"{legend_x}\" y=\"8\" width=\"10\" height=\"10\" fill=\"{color}\"/>\
             <text x=\"{text_x}\" y=\"17\">{name}</text>",
            color = line.color,
            text_x = legend_x + 14.0,
            name = escape(line.name),
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The smallest 1, 2 or 5 × 10ⁿ at or above `value`, so axis labels are round numbers.
fn nice_ceiling(value: f64) -> f64 {
    if !value.is_finite() || value <= 0.0 {
        return 1.0;
    }
    let magnitude = 10_f64.powf(value.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|step| step * magnitude)
        .find(|candidate| *candidate >= value)
        .unwrap_or(10.0 * magnitude)
}

fn format_axis(value: f64) -> String {
    if value >= 10_000.0 {
        format!("{:.0}k", value / 1000.0)
    } else if value >= 10.0 || value == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '&' => escaped.push_str("&amp;"),
            '"' => escaped.push_str("&quot;"),
            other => escaped.push(other),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(t_s: f64, p99_ms: f64) -> TimelinePoint {
        TimelinePoint {
            t_s,
            unix_ms: 0,
            connected: 10,
            messages_per_s: 200.0,
            deltas_per_s: 200.0,
            bytes_per_s: 1e5,
            p50_ms: p99_ms / 2.0,
            p99_ms,
            max_ms: p99_ms * 1.5,
            errors: 0,
        }
    }

    #[test]
    fn axis_tops_are_round_numbers() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(43.0), 50.0);
        assert_eq!(nice_ceiling(101.0), 200.0);
        assert_eq!(nice_ceiling(f64::NAN), 1.0);
    }

    #[test]
    fn charts_plot_every_point_inside_the_canvas() {
        let timeline = vec![point(1.0, 40.0), point(2.0, 55.0), point(3.0, 48.0)];
        let svg = line_chart(
            "latency <ms>",
            &timeline,
            &[Series {
                name: "p99",
                color: "red",
                value: |point| point.p99_ms,
            }],
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("latency &lt;ms&gt;"));
        let points = svg
            .split("points=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("a polyline");
        for pair in points.split(' ') {
            let (px, py) = pair.split_once(',').expect("x,y");
            let px: f64 = px.parse().expect("number");
            let py: f64 = py.parse().expect("number");
            assert!((0.0..=WIDTH).contains(&px) && (0.0..=HEIGHT).contains(&py));
        }
    }

    #[test]
    fn an_empty_timeline_still_renders() {
        let svg = line_chart("empty", &[], &[]);
        assert!(svg.ends_with("</svg>"));
    }
}
