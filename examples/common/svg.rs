//! A small line-chart writer for the measuring examples (`ladder --svg`,
//! `backends --svg`): panels side by side, one `<polyline>` per series (a
//! `<title>` inside names it), log or linear axes, one legend. Hand-rolled
//! SVG 1.1 with no script, font or stylesheet from outside, so the file shows
//! as it is on a code host and in rustdoc. Included with
//! `#[path = "common/svg.rs"] mod svg;`.
#![allow(dead_code)] // each example uses a different part

use std::fmt::Write;

/// One line: a name for the legend and its (x, y) points, in x order.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// One chart: a title, the axes' labels and scales, its series.
pub struct Panel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub log_x: bool,
    pub log_y: bool,
    pub series: Vec<Series>,
}

const PANEL_W: f64 = 360.0;
const PANEL_H: f64 = 260.0;
const MARGIN_L: f64 = 62.0;
const MARGIN_R: f64 = 14.0;
const MARGIN_T: f64 = 28.0;
const MARGIN_B: f64 = 44.0;
const COLOURS: [&str; 10] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f",
    "#bcbd22",
];

/// The colour of the `i`th series name (the same name, the same colour in
/// every panel: the legend is shared).
fn colour(i: usize) -> &'static str {
    COLOURS[i % COLOURS.len()]
}

/// Escapes text for an SVG text node or attribute.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A number as an axis label: 1k, 2.5M, 0.5, 120.
fn label(v: f64) -> String {
    let (value, suffix) = match v.abs() {
        a if a >= 1e6 => (v / 1e6, "M"),
        a if a >= 1e4 => (v / 1e3, "k"),
        _ => (v, ""),
    };
    let text = if value.fract().abs() < 1e-9 { format!("{value:.0}") } else { format!("{value:.1}") };
    format!("{}{suffix}", text.trim_end_matches(".0"))
}

/// One axis: its range in data units (log10 of them on a log axis) and ticks.
struct Axis {
    log: bool,
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
}

impl Axis {
    fn new(values: impl Iterator<Item = f64>, log: bool) -> Axis {
        let values: Vec<f64> = values.filter(|v| v.is_finite() && (!log || *v > 0.0)).collect();
        let (mut min, mut max) = values.iter().fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        if values.is_empty() {
            (min, max) = (1.0, 10.0);
        }
        if log {
            let (lo, mut hi) = (min.log10().floor(), max.log10().ceil());
            if hi <= lo {
                hi = lo + 1.0;
            }
            let ticks = (lo as i32..=hi as i32).map(|e| 10f64.powi(e)).collect();
            Axis { log, lo, hi, ticks }
        } else {
            let lo = min.min(0.0);
            let hi = if max > lo { max } else { lo + 1.0 };
            let raw = (hi - lo) / 5.0;
            let step = 10f64.powf(raw.log10().floor());
            let step =
                [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * step).find(|s| *s >= raw).unwrap_or(step * 10.0);
            let hi = (hi / step).ceil() * step;
            let ticks = (0..).map(|i| lo + i as f64 * step).take_while(|t| *t <= hi + step / 2.0).collect();
            Axis { log, lo, hi, ticks }
        }
    }

    /// Where `v` falls, from 0 (lo) to 1 (hi).
    fn fraction(&self, v: f64) -> f64 {
        let v = if self.log { v.max(f64::MIN_POSITIVE).log10() } else { v };
        (v - self.lo) / (self.hi - self.lo)
    }
}

/// The whole figure: a title, the panels in a row, the legend under them
/// (every series name, in order of first appearance).
pub fn render(title: &str, note: &str, panels: &[Panel]) -> String {
    let mut names: Vec<&str> = Vec::new();
    for s in panels.iter().flat_map(|p| &p.series) {
        if !names.contains(&s.name.as_str()) {
            names.push(&s.name);
        }
    }
    let per_row = 4;
    let legend_rows = names.len().div_ceil(per_row);
    let width = PANEL_W * panels.len().max(1) as f64;
    let top = 46.0;
    let height = top + PANEL_H + 16.0 + 18.0 * legend_rows as f64 + 8.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(out, "<title>{}</title>", escape(title));
    let _ = writeln!(out, r##"<rect width="{width}" height="{height}" fill="#ffffff"/>"##);
    let _ = writeln!(
        out,
        r#"<text x="{}" y="18" text-anchor="middle" font-size="14" font-weight="bold">{}</text>"#,
        width / 2.0,
        escape(title)
    );
    let _ = writeln!(
        out,
        r##"<text x="{}" y="34" text-anchor="middle" fill="#555555">{}</text>"##,
        width / 2.0,
        escape(note)
    );
    for (i, panel) in panels.iter().enumerate() {
        panel_svg(&mut out, panel, PANEL_W * i as f64, top, &names);
    }
    let legend_top = top + PANEL_H + 16.0;
    let _ = writeln!(out, r#"<g class="legend">"#);
    for (i, name) in names.iter().enumerate() {
        let x = 20.0 + (i % per_row) as f64 * (width - 40.0) / per_row as f64;
        let y = legend_top + 18.0 * (i / per_row) as f64;
        let _ = writeln!(
            out,
            r#"<line x1="{x}" y1="{y}" x2="{}" y2="{y}" stroke="{}" stroke-width="2.5"/><text x="{}" y="{}">{}</text>"#,
            x + 22.0,
            colour(i),
            x + 27.0,
            y + 4.0,
            escape(name)
        );
    }
    let _ = writeln!(out, "</g>");
    out.push_str("</svg>\n");
    out
}

fn panel_svg(out: &mut String, panel: &Panel, left: f64, top: f64, names: &[&str]) {
    let points = || panel.series.iter().flat_map(|s| s.points.iter());
    let x = Axis::new(points().map(|p| p.0), panel.log_x);
    let y = Axis::new(points().map(|p| p.1), panel.log_y);
    let (x0, x1) = (left + MARGIN_L, left + PANEL_W - MARGIN_R);
    let (y0, y1) = (top + PANEL_H - MARGIN_B, top + MARGIN_T);
    let px = |v: f64| x0 + x.fraction(v) * (x1 - x0);
    let py = |v: f64| y0 - y.fraction(v) * (y0 - y1);
    let _ = writeln!(out, r#"<g class="panel">"#);
    let _ = writeln!(out, "<title>{}</title>", escape(&panel.title));
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle" font-size="12" font-weight="bold">{}</text>"#,
        (x0 + x1) / 2.0,
        top + 14.0,
        escape(&panel.title)
    );
    for &t in &x.ticks {
        let p = px(t);
        let _ = writeln!(
            out,
            r##"<line x1="{p:.1}" y1="{y1}" x2="{p:.1}" y2="{y0}" stroke="#e0e0e0"/><text x="{p:.1}" y="{}" text-anchor="middle">{}</text>"##,
            y0 + 14.0,
            label(t)
        );
    }
    for &t in &y.ticks {
        let p = py(t);
        let _ = writeln!(
            out,
            r##"<line x1="{x0}" y1="{p:.1}" x2="{x1}" y2="{p:.1}" stroke="#e0e0e0"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            x0 - 4.0,
            p + 4.0,
            label(t)
        );
    }
    let _ = writeln!(
        out,
        r##"<rect x="{x0}" y="{y1}" width="{}" height="{}" fill="none" stroke="#333333"/>"##,
        x1 - x0,
        y0 - y1
    );
    let scale = |log: bool| if log { " (log)" } else { "" };
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle">{}{}</text>"#,
        (x0 + x1) / 2.0,
        y0 + 32.0,
        escape(&panel.x_label),
        scale(panel.log_x)
    );
    let (lx, ly) = (left + 14.0, (y0 + y1) / 2.0);
    let _ = writeln!(
        out,
        r#"<text x="{lx}" y="{ly}" text-anchor="middle" transform="rotate(-90 {lx} {ly})">{}{}</text>"#,
        escape(&panel.y_label),
        scale(panel.log_y)
    );
    for series in &panel.series {
        let i = names.iter().position(|n| *n == series.name).unwrap_or(0);
        let drawn: Vec<String> = series
            .points
            .iter()
            .filter(|(a, b)| a.is_finite() && b.is_finite() && (!x.log || *a > 0.0) && (!y.log || *b > 0.0))
            .map(|&(a, b)| format!("{:.1},{:.1}", px(a), py(b)))
            .collect();
        let _ = writeln!(out, r#"<g class="series">"#);
        let _ = writeln!(out, "<title>{}</title>", escape(&series.name));
        let _ = writeln!(
            out,
            r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"/>"#,
            drawn.join(" "),
            colour(i)
        );
        for point in &drawn {
            let (a, b) = point.split_once(',').unwrap_or(("0", "0"));
            let _ = writeln!(out, r#"<circle cx="{a}" cy="{b}" r="2.5" fill="{}"/>"#, colour(i));
        }
        let _ = writeln!(out, "</g>");
    }
    let _ = writeln!(out, "</g>");
}
